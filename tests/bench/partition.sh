#!/usr/bin/env bash
# tests/bench/partition.sh (as root; not part of `make bench`): what a network partition of the
# primary costs the application, in the multi-host topology of scripts/netns.sh (n0 n1 n2, PgBouncer
# in bnc, pgvigild in ctl, each in its own network namespace; faults are silent nftables drops).
#
#  1. BENCH_RUNS times (default 5), each on a fresh cluster with the default settings (the
#     pgvigil.conf netns_cluster_create writes, plus pgdata for the stop fence): the bench writer
#     in bnc writes through PgBouncer (one INSERT every 20 ms, 1 s deadline each); n0 is cut off
#     from everyone (netns_cut n0); the time from the cut to the first successful write through
#     PgBouncer, and to the incident's close; failed writes, acknowledged writes missing afterwards.
#     Median, min and max of each.
#  2. BENCH_FLAPS cuts (default 10) of n0 of 1 to 2 s, 2 s apart, on one cluster: how many ended in
#     a promotion (false failovers; a fresh cluster after each one).
# Figures, not assertions.  The topology's addresses derive from PGVIGIL_TEST_PORT_BASE (default
# 25300): give it a base no test is using.  Everything is torn down on exit.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=../../scripts/netns.sh
source "$ROOT/scripts/netns.sh"
# shellcheck source=../../scripts/cluster.sh
source "$ROOT/scripts/cluster.sh"
WRITER=${WRITER:-$ROOT/build/bench/writer}
RUNS=${BENCH_RUNS:-5}
FLAPS=${BENCH_FLAPS:-10}
BG=()
NC=
TMP=

die() {
	echo "bench: $*" >&2
	exit 1
}

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${BG[@]}"; do kill -KILL -- "-$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	[[ -n $NC ]] && netns_cluster_destroy "$NC"
	netns_destroy
	[[ -n $TMP ]] && rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
((EUID == 0)) || die "run as root"
netns_available || die "$NETNS_SKIP_REASON"
[[ -x $WRITER && -x $PGVIGIL_BIN/pgvigild ]] || die "build first (make)"
TMP=$(mktemp -d /tmp/pgvigil-bench-partition.XXXXXX) || die "mktemp failed"
chmod 755 "$TMP"

_field() { [[ $2 =~ (^| )$1=(-?[0-9]+) ]] && echo "${BASH_REMATCH[2]}"; }
_ts_ns() { date -u -d "$1" +%s%N; }
jlines() { wc -l <"$JOURNAL"; }
jcount() { tail -n +$(($1 + 1)) "$JOURNAL" | grep -F "\"event\":\"$2\"" | grep -cF -- "${3:-}"; }

# settled: n0 the primary, healthy, heartbeat committing, both standbys streaming, no incident.
settled() {
	local js
	_nn_streaming || return 1
	js=$("$PGVIGIL_BIN/pgvigil" -c "$NC/pgvigil.conf" status --json 2>/dev/null) || return 1
	[[ $js == *'"incident":null'* && $js =~ \{\"name\":\"n0\"[^{}]* ]] || return 1
	local n=${BASH_REMATCH[0]}
	[[ $n == *'"role":"primary"'* && $n == *'"health":"healthy"'* && $n == *'"write":"ok"'* ]] || return 1
	[[ $js =~ \{\"name\":\"n1\"[^{}]*\"streaming\":true && $js =~ \{\"name\":\"n2\"[^{}]*\"streaming\":true ]]
}

ncl=0
fresh_cluster() {
	[[ -n $NC ]] && netns_cluster_destroy "$NC"
	netns_heal_all
	ncl=$((ncl + 1))
	NC=$TMP/c$ncl
	export JOURNAL=$NC/journal.jsonl
	netns_cluster_create "$NC" >/dev/null || die "netns_cluster_create failed"
	netns_cluster_local_fence "$NC" || die "netns_cluster_local_fence failed"
	netns_pgvigild_start "$NC" || die "cannot start pgvigild"
	journal_wait 20 '"event":"primary-found"' || die "no primary-found"
	wait_for 30 settled || die "the cluster did not settle on n0"
}

# median/min/max of the numbers given (ignoring empty and negative ones)
stats() {
	printf '%s\n' "$@" | grep -E '^[0-9]+$' | sort -n | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "no data"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "median %d  min %d  max %d  (n=%d)", m, v[1], v[NR], NR
		}'
}

netns_create >/dev/null || die "netns_create failed"
echo "topology $(netns_net).0/24 (PGVIGIL_TEST_PORT_BASE=${PGVIGIL_TEST_PORT_BASE:-25300})"

echo "== 1. n0 cut off from everyone: $RUNS runs, writer through PgBouncer every 20 ms (1 s deadline)"
W=() C=() F=() M=() D=()
for run in $(seq 1 "$RUNS"); do
	fresh_cluster
	out=$NC/writer.out
	rm -f "$NC/mark"
	setsid ip netns exec "$(netns_name bnc)" "$WRITER" -c "host=$(netns_addr bnc) port=6432 dbname=app user=postgres" \
		-i 20 -t 1000 -m "$NC/mark" -q </dev/null >"$out" 2>/dev/null &
	wpid=$!
	BG+=("$wpid")
	_rows() { [[ $(netns_cluster_psql ctl n0 "SELECT count(*) >= 50 FROM pgvigil_bench" 2>/dev/null) == t ]]; }
	wait_for 20 _rows || die "the writer wrote nothing"
	L=$(jlines)
	date +%s%N >"$NC/mark.tmp"
	netns_cut n0
	mv "$NC/mark.tmp" "$NC/mark"
	cut_ns=$(cat "$NC/mark")
	if journal_wait 60 '"event":"incident-close"'; then
		close=$(journal_line "$(journal_find "$L" '"event":"incident-close"')")
		close_ms=$((($(_ts_ns "$(json_str "$close" ts)") - cut_ns) / 1000000))
		open=$(journal_line "$(journal_find "$L" '"event":"incident-open"')")
		det=$(json_num "$open" detection_ms)
		newp=$(json_str "$close" node)
	else
		close_ms=-1 det=-1 newp=none
	fi
	# let the writer write through the new primary for a moment, then stop it: it counts the
	# acknowledged rows that are missing
	_count() { netns_cluster_psql bnc app "SELECT count(*) FROM pgvigil_bench" 2>/dev/null; }
	n1=$(wait_for 20 _count && _count)
	_more() { local n; n=$(_count) && ((n > ${n1:-0} + 25)); }
	wait_for 20 _more
	kill -TERM "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	line=$(tail -n 1 "$out")
	w=$(_field first_ok_after_kill_ms "$line")
	printf '  run %d: cut -> first write %6s ms   cut -> incident closed %6s ms (detection %s ms, new primary %s)   failed writes %s   acknowledged missing %s   longest gap %s ms\n' \
		"$run" "$w" "$close_ms" "$det" "$newp" "$(_field failed "$line")" "$(_field missing_acked "$line")" "$(_field max_gap_ms "$line")"
	W+=("$w") C+=("$close_ms") F+=("$(_field failed "$line")") M+=("$(_field missing_acked "$line")") D+=("$det")
	netns_heal n0
done
echo "  cut -> first successful write through PgBouncer (ms): $(stats "${W[@]}")"
echo "  cut -> incident closed (ms):                          $(stats "${C[@]}")"
echo "  detection (incident-open detection_ms):               $(stats "${D[@]}")"
echo "  failed writes:                                        $(stats "${F[@]}")"
echo "  acknowledged writes missing afterwards:               $(stats "${M[@]}")"

echo "== 2. flapping link: $FLAPS cuts of n0 of 1-2 s, 2 s apart"
fresh_cluster
false_failovers=0
blips=0 partitions=0 wedged=0 unsettled=0
for i in $(seq 0 $((FLAPS - 1))); do
	secs=$(awk -v i="$i" -v n="$FLAPS" 'BEGIN { printf "%.2f", 1 + (n > 1 ? i / (n - 1) : 0) }')
	L=$(jlines)
	netns_cut n0
	sleep "$secs"
	netns_heal n0
	sleep 2
	if ! wait_for 20 settled; then
		unsettled=$((unsettled + 1))
	fi
	p=$(jcount "$L" promote '"phase":"end"')
	blips=$((blips + $(jcount "$L" primary-blip)))
	partitions=$((partitions + $(jcount "$L" watchdog-partition)))
	wedged=$((wedged + $(jcount "$L" primary-wedged)))
	if ((p > 0)); then
		false_failovers=$((false_failovers + 1))
		o=$(journal_line "$(journal_find "$L" '"event":"incident-open"')")
		echo "  cut $((i + 1)) (${secs} s): FAILOVER: $(json_str "$o" reason) (detection_ms $(json_num "$o" detection_ms))"
		fresh_cluster
	elif ((unsettled)); then
		echo "  cut $((i + 1)) (${secs} s): no promotion, but the cluster did not settle within 20 s: a fresh one"
		unsettled=0
		fresh_cluster
	fi
done
echo "  false failovers: $false_failovers of $FLAPS cuts (primary-blip $blips, watchdog-partition $partitions, primary-wedged $wedged)"
