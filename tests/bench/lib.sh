#!/usr/bin/env bash
# tests/bench/lib.sh: helpers of pgvigil's benchmarks (sourced by scenarios.sh).
#
#   bench_die MSG...            prints "bench: MSG" on stderr, exits 1
#   bench_field KEY LINE        the number KEY=N in LINE (the writer's summary line)
#   bench_ts_ns TS              an ISO timestamp (the journal's "ts") as CLOCK_REALTIME ns
#   bench_bg CMD...             runs CMD in its own session, output discarded; BENCH_LAST = its pid
#   bench_stop_bg PID           SIGKILLs the session of PID and reaps it
#   bench_kill_all              bench_stop_bg for everything bench_bg (and bench_track) started
#   bench_track PID             remembers PID (a session leader) for bench_kill_all
#   bench_stats V...            "median min max n" of the non-negative integers among V, or "- - - 0"
#   fig_reset                   forgets the figures collected so far
#   fig_add FIGURE VALUE        one value of FIGURE (figures print in the order first added)
#   fig_table TITLE             the table: figure | median | min | max | n, and one summary line per
#                               figure into BENCH_SUMMARY (for the table at the end of a run)
#   bench_settled CONF NODE     pgvigild (config CONF) sees NODE as the healthy writable primary,
#                               both other nodes streaming, no incident open
#   jlines                      the number of lines in $JOURNAL (or CL_DIR's journal) so far
#   jcount FROM EVENT [FIXED]   journal records after line FROM of EVENT (containing FIXED)
#   jwait SECS FROM PATTERN...  waits until a journal record after line FROM matches every PATTERN
# Needs scripts/cluster.sh sourced first (wait_for, journal_find, json_*).

BENCH_BG=()
BENCH_SUMMARY=()

bench_die() {
	echo "bench: $*" >&2
	exit 1
}

bench_field() { [[ $2 =~ (^| )$1=(-?[0-9]+) ]] && echo "${BASH_REMATCH[2]}"; }
bench_ts_ns() { date -u -d "$1" +%s%N; }

bench_track() { BENCH_BG+=("$1"); }
bench_bg() {
	setsid "$@" </dev/null >/dev/null 2>&1 &
	BENCH_LAST=$!
	BENCH_BG+=("$BENCH_LAST")
}
bench_stop_bg() {
	kill -KILL -- "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}
bench_kill_all() {
	local p
	for p in "${BENCH_BG[@]}"; do bench_stop_bg "$p"; done
	BENCH_BG=()
}

# median of an even count: the mean of the middle two (rounded down)
bench_stats() {
	printf '%s\n' "$@" | grep -E '^[0-9]+$' | sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "- - - 0"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)
		print m, v[1], v[NR], NR }'
}

declare -A FIG_VALUES=()
FIG_ORDER=()
fig_reset() {
	FIG_VALUES=()
	FIG_ORDER=()
}
fig_add() {
	[[ -v FIG_VALUES[$1] ]] || FIG_ORDER+=("$1")
	FIG_VALUES[$1]+="${2:--} "
}
fig_table() {
	local title=$1 f med min max n
	((${#FIG_ORDER[@]})) || return 0
	echo
	printf '  %-52s %8s %8s %8s %4s\n' figure median min max n
	for f in "${FIG_ORDER[@]}"; do
		# shellcheck disable=SC2086
		read -r med min max n < <(bench_stats ${FIG_VALUES[$f]})
		printf '  %-52s %8s %8s %8s %4s\n' "$f" "$med" "$min" "$max" "$n"
		BENCH_SUMMARY+=("$(printf '| %s | %s | %s | %s | %s | %s |' "$title" "$f" "$med" "$min" "$max" "$n")")
	done
}

bench_settled() {
	local conf=$1 node=$2 js n o
	js=$("$PGVIGIL_BIN/pgvigil" -c "$conf" status --json 2>/dev/null) || return 1
	[[ $js == *'"incident":null'* && $js =~ \{\"name\":\"$node\"[^{}]* ]] || return 1
	n=${BASH_REMATCH[0]}
	[[ $n == *'"role":"primary"'* && $n == *'"health":"healthy"'* && $n == *'"write":"ok"'* ]] || return 1
	for o in n0 n1 n2; do
		[[ $o == "$node" ]] && continue
		[[ $js =~ \{\"name\":\"$o\"[^{}]*\"streaming\":true ]] || return 1
	done
}

_bench_journal() { echo "${JOURNAL:-$CL_DIR/journal.jsonl}"; }
jlines() { wc -l <"$(_bench_journal)"; }
jcount() { tail -n +$(($1 + 1)) "$(_bench_journal)" | grep -F "\"event\":\"$2\"" | grep -cF -- "${3:-}"; }
jwait() {
	local secs=$1 from=$2
	shift 2
	wait_for "$secs" journal_find "$from" "$@"
}
