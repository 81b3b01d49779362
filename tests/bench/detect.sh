#!/usr/bin/env bash
# tests/bench/detect.sh (part of `make bench`, as root): what detection costs and buys.
#
#  1. lock storm: a writer through PgBouncer (one INSERT every 20 ms, 1 s deadline each); a
#     non-superuser session takes ACCESS EXCLUSIVE on the writer's table inside a long
#     statement: the writer's longest gap is the time from the lock to writes flowing again
#     (default ladder: cancel after 5 s).  Same with an idle-in-transaction root (terminate).
#  2. frozen primary: every process SIGSTOPped; time from the freeze to the first successful
#     write through PgBouncer, and to the incident's close.
#  3. probe cost: 500 idle client connections on the primary; the CPU pgvigil's own backends
#     use on the primary over 20 s at the default interval, pgvigild's CPU and RSS, and the
#     statements it sends per second.
# Figures, not assertions.  Ports: PGVIGIL_TEST_PORT_BASE (default 25300) .. +3.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=../../scripts/cluster.sh
source "$ROOT/scripts/cluster.sh"
WRITER=${WRITER:-$ROOT/build/bench/writer}
BG=()

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${BG[@]}"; do kill -KILL -- "-$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	if [[ -n ${CL_DIR:-} && -d $CL_DIR ]]; then
		cluster_thaw n0 2>/dev/null
		pgvigild_stop >/dev/null 2>&1
		cluster_destroy "$CL_DIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
((EUID == 0)) || { echo "bench: run as root" >&2; exit 1; }

bg() { setsid "$@" </dev/null >/dev/null 2>&1 & BG+=($!); LAST=$!; }
stop_bg() { kill -KILL -- "-$1" 2>/dev/null; wait "$1" 2>/dev/null; }
_field() { [[ $2 =~ (^| )$1=(-?[0-9]+) ]] && echo "${BASH_REMATCH[2]}"; }
_ts_ns() { date -u -d "$1" +%s%N; }

fresh_cluster() {
	[[ -n ${CL_DIR:-} && -d $CL_DIR ]] && { pgvigild_stop >/dev/null 2>&1; cluster_destroy "$CL_DIR"; }
	CL_DIR=$(mktemp -d /tmp/pgvigil-bench-detect.XXXXXX)
	cluster_create "$CL_DIR" >/dev/null 2>&1 || { echo "bench: cluster create failed" >&2; exit 1; }
	pgvigild_start
	journal_wait 20 '"event":"primary-found"' || { echo "bench: no primary-found" >&2; exit 1; }
}

writer_start() {
	rm -f "$CL_DIR/mark"
	bg "$WRITER" -c "host=127.0.0.1 port=$(cluster_port pgbouncer) dbname=app user=postgres" \
		-i 20 -t 1000 -m "$CL_DIR/mark" -q
	WRITER_PID=$LAST
	_rows() { [[ $(cluster_psql n0 "SELECT count(*) >= 50 FROM pgvigil_bench" 2>/dev/null) == t ]]; }
	wait_for 20 _rows || { echo "bench: writer wrote nothing" >&2; exit 1; }
}

writer_stop() { # prints the summary line
	kill -TERM "$WRITER_PID" 2>/dev/null
	wait "$WRITER_PID" 2>/dev/null
}

PSQL_APP="$PG_BIN/psql -X -q -At -h 127.0.0.1 -d postgres -U app"

echo "== 1. lock storm on the writer's table (default ladder)"
for kind in active idle; do
	fresh_cluster
	cluster_psql n0 "CREATE ROLE app LOGIN" >/dev/null
	writer_start
	cluster_psql n0 "GRANT ALL ON pgvigil_bench TO app" >/dev/null
	out=$CL_DIR/writer.out
	# the writer's output goes to a file this time: restart it with a redirect
	stop_bg "$WRITER_PID"
	setsid "$WRITER" -c "host=127.0.0.1 port=$(cluster_port pgbouncer) dbname=app user=postgres" \
		-i 20 -t 1000 -q </dev/null >"$out" 2>/dev/null &
	WRITER_PID=$!
	BG+=("$WRITER_PID")
	t0=$(_cl_now_ms)
	if [[ $kind == active ]]; then
		bg runuser -u postgres -- bash -c "cd /; $PSQL_APP -p $(cluster_port n0) -c 'BEGIN; LOCK TABLE pgvigil_bench IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)'"
	else
		bg runuser -u postgres -- bash -c "cd /; (echo 'BEGIN; LOCK TABLE pgvigil_bench IN ACCESS EXCLUSIVE MODE;'; sleep 60) | $PSQL_APP -p $(cluster_port n0)"
	fi
	journal_wait 30 '"event":"lock-cleared"' || echo "bench: the chain was not cleared within 30 s"
	cleared=$(($(_cl_now_ms) - t0))
	sleep 1
	kill -TERM "$WRITER_PID" 2>/dev/null; wait "$WRITER_PID" 2>/dev/null
	line=$(tail -n 1 "$out")
	printf '  %-6s root: chain cleared %5d ms after the lock; writer: longest gap %s ms, failed writes %s\n' \
		"$kind" "$cleared" "$(_field max_gap_ms "$line")" "$(_field failed "$line")"
done

echo "== 2. primary frozen for good (SIGSTOP of every process)"
fresh_cluster
writer_start
stop_bg "$WRITER_PID"
out=$CL_DIR/writer.out
rm -f "$CL_DIR/mark"
setsid "$WRITER" -c "host=127.0.0.1 port=$(cluster_port pgbouncer) dbname=app user=postgres" \
	-i 20 -t 1000 -m "$CL_DIR/mark" -q </dev/null >"$out" 2>/dev/null &
WRITER_PID=$!
BG+=("$WRITER_PID")
cluster_freeze n0
cp "$CL_DIR/freeze.ns" "$CL_DIR/mark"
freeze_ns=$(cat "$CL_DIR/freeze.ns")
journal_wait 60 '"event":"incident-close"' || echo "bench: no failover within 60 s"
close=$(journal_line "$(journal_find 0 '"event":"incident-close"')")
close_ms=$((($(_ts_ns "$(json_str "$close" ts)") - freeze_ns) / 1000000))
sleep 2
kill -TERM "$WRITER_PID" 2>/dev/null; wait "$WRITER_PID" 2>/dev/null
line=$(tail -n 1 "$out")
printf '  freeze -> incident closed %d ms; freeze -> first write through PgBouncer %s ms; failed writes %s; missing acknowledged %s\n' \
	"$close_ms" "$(_field first_ok_after_kill_ms "$line")" "$(_field failed "$line")" "$(_field missing_acked "$line")"
cluster_thaw n0

echo "== 3. probe cost with 500 idle client connections on the primary"
fresh_cluster
pgvigild_stop >/dev/null 2>&1
for n in n0 n1 n2; do cluster_psql "$n" "ALTER SYSTEM SET max_connections = 600" >/dev/null 2>&1; done
for n in n1 n2 n0; do cluster_stop "$n" >/dev/null 2>&1; done
for n in n0 n1 n2; do cluster_start "$n" >/dev/null 2>&1; done
pgvigild_start
journal_wait 20 '"event":"primary-found"' >/dev/null
printf '\\sleep 40 s\n' >"$CL_DIR/idle.sql"
chmod 644 "$CL_DIR/idle.sql"
bg runuser -u postgres -- "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$(cluster_port n0)" -c 500 -j 8 -T 45 -f "$CL_DIR/idle.sql" postgres
_many() { (($(cluster_psql n0 "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'") >= 500)); }
wait_for 60 _many || echo "bench: fewer than 500 connections"
ticks() { # utime+stime of the given pids, in clock ticks
	local t=0 p
	for p in "$@"; do [[ -r /proc/$p/stat ]] && t=$((t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat"))); done
	echo "$t"
}
pids=$(cluster_psql n0 "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE application_name = 'pgvigil'")
x0=$(cluster_psql n0 "SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database")
# shellcheck disable=SC2086
b0=$(ticks $pids)
d0=$(ticks "$PGVIGILD_PID")
sleep 20
# shellcheck disable=SC2086
b1=$(ticks $pids)
d1=$(ticks "$PGVIGILD_PID")
x1=$(cluster_psql n0 "SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database")
hz=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$PGVIGILD_PID/status")
awk -v b=$((b1 - b0)) -v d=$((d1 - d0)) -v hz="$hz" -v x=$((x1 - x0)) -v rss="$rss" -v n="$(wc -w <<<"$pids")" 'BEGIN {
	printf "  pgvigil backends on the primary (%d): %.2f %% of one core\n", n, 100 * b / hz / 20
	printf "  pgvigild: %.2f %% of one core, RSS %d KiB\n", 100 * d / hz / 20, rss
	printf "  transactions on the primary, all clients: %.1f per second (the idle clients send none)\n", x / 20
}'
