#!/usr/bin/env bash
# tests/bench/run.sh (`make bench`, as root): what a primary crash costs the application.
#
# BENCH_RUNS times (default 5): a fresh cluster, pgvigild with the default test config, the bench
# writer through PgBouncer (an INSERT every BENCH_INTERVAL_MS = 20 ms, BENCH_TIMEOUT_MS = 1000 ms
# deadline each), SIGKILL of the primary's postmaster and children, wait for the incident to
# close, let the writer write again, stop it (it counts acknowledged rows that are missing),
# destroy.  Prints one row per run and the median/min/max of each figure.
# Ports: PGVIGIL_TEST_PORT_BASE (default 25300) .. +3, reused by each run in turn.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=../../scripts/cluster.sh
source "$ROOT/scripts/cluster.sh"
WRITER=${WRITER:-$ROOT/build/bench/writer}
RUNS=${BENCH_RUNS:-5}
INTERVAL_MS=${BENCH_INTERVAL_MS:-20}
TIMEOUT_MS=${BENCH_TIMEOUT_MS:-1000}
WRITER_PID=

die() {
	echo "bench: $*" >&2
	exit 1
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $WRITER_PID ]] && _cl_alive "$WRITER_PID"; then
		kill -KILL "$WRITER_PID" 2>/dev/null
		wait "$WRITER_PID" 2>/dev/null
	fi
	if [[ -n ${CL_DIR:-} && -d $CL_DIR ]]; then
		pgvigild_stop >/dev/null 2>&1
		cluster_destroy "$CL_DIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

((EUID == 0)) || die "run as root (make bench)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
for f in "$PGVIGIL_BIN/pgvigild" "$PGVIGIL_BIN/pgvigil" "$WRITER"; do
	[[ -x $f ]] || die "$f not built: run make"
done

_rows() { [[ $(cluster_psql n0 "SELECT count(*) >= 50 FROM pgvigil_bench" 2>/dev/null) == t ]]; }
_ts_ns() { date -u -d "$1" +%s%N; }
_field() { [[ $2 =~ (^| )$1=(-?[0-9]+) ]] && echo "${BASH_REMATCH[2]}"; }

# One run; sets R_CLOSE R_FIRST R_FAILED R_MISSING R_GAP R_WINNER or returns 1.
one_run() {
	local dir close_line kill_ns summary
	dir=$(mktemp -d /tmp/pgvigil-bench.XXXXXX) || return 1
	CL_DIR=$dir
	cluster_create "$dir" || return 1
	pgvigild_start || return 1
	journal_wait 15 '"event":"primary-found"' || {
		echo "bench: no primary-found" >&2
		return 1
	}
	"$WRITER" -q -c "host=127.0.0.1 port=$(cluster_port pgbouncer) dbname=app user=postgres" \
		-i "$INTERVAL_MS" -t "$TIMEOUT_MS" -m "$CL_DIR/kill.mark" --truncate >"$CL_DIR/writer.out" &
	WRITER_PID=$!
	wait_for 20 _rows || {
		echo "bench: the writer wrote nothing" >&2
		return 1
	}
	cluster_kill n0 || return 1
	kill_ns=$(cat "$CL_DIR/kill.ns")
	echo "$kill_ns" >"$CL_DIR/kill.mark.tmp" && mv "$CL_DIR/kill.mark.tmp" "$CL_DIR/kill.mark"
	journal_wait 60 '"event":"incident-close"' || {
		echo "bench: no incident-close within 60 s" >&2
		tail -n 5 "$CL_DIR/journal.jsonl" >&2
		return 1
	}
	close_line=$(journal_line "$(journal_find 0 '"event":"incident-close"')")
	R_WINNER=$(json_str "$close_line" new_primary)
	[[ $(json_str "$close_line" outcome) == ok ]] || R_WINNER="${R_WINNER:-none}(failed)"
	R_CLOSE=$((($(_ts_ns "$(json_str "$close_line" ts)") - kill_ns) / 1000000))
	# Writes go through again, then a second more of them.
	wait_for 20 cluster_psql app "SELECT 1"
	sleep 1
	kill -TERM "$WRITER_PID"
	wait "$WRITER_PID"
	WRITER_PID=
	summary=$(grep '^writer:' "$CL_DIR/writer.out" | tail -n 1)
	R_FIRST=$(_field first_ok_after_kill_ms "$summary")
	R_FAILED=$(_field failed "$summary")
	R_MISSING=$(_field missing_acked "$summary")
	R_GAP=$(_field max_gap_ms "$summary")
	pgvigild_stop >/dev/null 2>&1
	cluster_destroy "$CL_DIR"
	CL_DIR=
}

# stats V...: "median min max" (median of an even count: the mean of the middle two).
stats() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "- - -"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)
		print m, v[1], v[NR] }'
}

echo "pgvigil bench: $RUNS runs; writer through PgBouncer every ${INTERVAL_MS} ms, ${TIMEOUT_MS} ms deadline;"
echo "primary SIGKILLed (postmaster and children); probe and failover settings of scripts/cluster.sh"
echo
printf '%-4s %-8s %14s %16s %13s %14s %12s\n' run winner "kill->close ms" "kill->write ms" "failed writes" "missing acked" "max gap ms"
closes=() firsts=() faileds=() missings=() gaps=()
bad=0
for ((i = 1; i <= RUNS; i++)); do
	if ! one_run; then
		printf '%-4s %s\n' "$i" "run failed"
		bad=$((bad + 1))
		[[ -n $WRITER_PID ]] && kill -KILL "$WRITER_PID" 2>/dev/null && wait "$WRITER_PID" 2>/dev/null
		WRITER_PID=
		pgvigild_stop >/dev/null 2>&1
		[[ -n $CL_DIR && -d $CL_DIR ]] && cluster_destroy "$CL_DIR"
		CL_DIR=
		continue
	fi
	printf '%-4s %-8s %14s %16s %13s %14s %12s\n' "$i" "$R_WINNER" "$R_CLOSE" "$R_FIRST" "$R_FAILED" "$R_MISSING" "$R_GAP"
	closes+=("$R_CLOSE") firsts+=("$R_FIRST") faileds+=("$R_FAILED") missings+=("$R_MISSING") gaps+=("$R_GAP")
done

if ((${#closes[@]})); then
	echo
	printf '%-24s %8s %8s %8s\n' "" median min max
	read -r a b c < <(stats "${closes[@]}")
	printf '%-24s %8s %8s %8s\n' "kill -> incident-close ms" "$a" "$b" "$c"
	read -r a b c < <(stats "${firsts[@]}")
	printf '%-24s %8s %8s %8s\n' "kill -> first write ms" "$a" "$b" "$c"
	read -r a b c < <(stats "${faileds[@]}")
	printf '%-24s %8s %8s %8s\n' "failed writes" "$a" "$b" "$c"
	read -r a b c < <(stats "${missings[@]}")
	printf '%-24s %8s %8s %8s\n' "missing acked writes" "$a" "$b" "$c"
	read -r a b c < <(stats "${gaps[@]}")
	printf '%-24s %8s %8s %8s\n' "max gap ms" "$a" "$b" "$c"
fi
echo
echo "$((RUNS - bad)) of $RUNS runs completed"
((bad == 0))
