#!/usr/bin/env bash
# tests/bench/cost.sh (part of `make bench`, as root): what pgvigil's probes cost the primary.
#
# A fresh cluster of 5 nodes (scripts/cluster.sh's n0, n1, n2 plus two more streaming standbys
# n3, n4 on ports B+5, B+6) with max_connections = 1300, pgvigild with its default probe
# settings watching all five, then
# on the primary: COST_CLIENTS (1000) client connections, of which COST_WAITERS (200) wait
# for a lock: one session holds ACCESS EXCLUSIVE on a table (a superuser's: the lock ladder
# reports it and leaves it alone, so the waiters stay for the whole measurement) and the
# waiters SELECT from it; the others sleep.  Over COST_SECONDS (30) it reads, from /proc:
#   - the CPU time of pgvigil's own backends on the primary (application_name 'pgvigil'),
#     as a percentage of one core: the issue's target is under 1 %;
#   - pgvigild's CPU (percentage of one core) and resident set: target under 1 % and 10 MiB;
#   - the statements pgvigil ran on the primary per second (pg_stat_statements is not needed:
#     the status, heartbeat and lock-chain probes are counted from pgvigild's own journal of
#     chain reports and the probe interval) and whether any client ever waited on a lock
#     pgvigil held (pg_locks joined to pg_stat_activity, sampled every second).
# Figures, not assertions.  Ports: PGVIGIL_TEST_PORT_BASE (default 25300) .. +3.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=../../scripts/cluster.sh
source "$ROOT/scripts/cluster.sh"
CLIENTS=${COST_CLIENTS:-1000}
WAITERS=${COST_WAITERS:-200}
SECONDS_=${COST_SECONDS:-30}
BG=()
extra=()

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${BG[@]}"; do kill -KILL -- "-$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	if [[ -n ${CL_DIR:-} && -d $CL_DIR ]]; then
		pgvigild_stop >/dev/null 2>&1
		for p in "${extra[@]}"; do _cl_pg "$PG_BIN/pg_ctl" -D "$CL_DIR/$p" -m immediate -w stop >/dev/null 2>&1; done
		cluster_destroy "$CL_DIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
((EUID == 0)) || { echo "bench: run as root" >&2; exit 1; }
((WAITERS < CLIENTS)) || { echo "bench: COST_WAITERS must be below COST_CLIENTS" >&2; exit 1; }

bg() { setsid "$@" </dev/null >/dev/null 2>&1 & BG+=($!); }
ticks() { # utime+stime of the given pids, in clock ticks
	local t=0 p
	for p in "$@"; do [[ -r /proc/$p/stat ]] && t=$((t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat"))); done
	echo "$t"
}
count() { cluster_psql n0 "SELECT count(*) FROM pg_stat_activity WHERE $1" 2>/dev/null; }

ulimit -n 8192
CL_DIR=$(mktemp -d /tmp/pgvigil-bench-cost.XXXXXX)
cluster_create "$CL_DIR" >/dev/null 2>&1 || { echo "bench: cluster create failed" >&2; exit 1; }
for n in n0 n1 n2; do cluster_psql "$n" "ALTER SYSTEM SET max_connections = $((CLIENTS + 300))" >/dev/null 2>&1; done
for n in n1 n2 n0; do cluster_stop "$n" >/dev/null 2>&1; done
for n in n0 n1 n2; do cluster_start "$n" >/dev/null 2>&1 || { echo "bench: $n did not restart" >&2; exit 1; }; done
# n3, n4: more standbys of n0, so pgvigild watches 5 nodes
extra=()
for k in 3 4; do
	n=n$k
	p=$(($(cluster_port n0) + k + 2))
	_cl_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$(cluster_port n0)" -U postgres -w -D "$CL_DIR/$n" \
		-X stream -c fast --no-sync >/dev/null 2>&1 || { echo "bench: pg_basebackup of $n failed" >&2; exit 1; }
	_cl_node_conf "$n" "$p"
	_cl_pg touch "$CL_DIR/$n/standby.signal"
	echo "primary_conninfo = 'host=127.0.0.1 port=$(cluster_port n0) user=postgres application_name=$n'" |
		_cl_pg sh -c "cat >>'$CL_DIR/$n/postgresql.auto.conf'"
	_cl_pg_start "$n" || exit 1
	extra+=("$n")
	sed -i "s|^  );|    ,{ name = \"$n\"; conninfo = \"host=127.0.0.1 port=$p user=postgres dbname=postgres\"; priority = 10; pgdata = \"$CL_DIR/$n\"; pg_bin = \"$PG_BIN\"; }\n  );|" "$CL_DIR/pgvigil.conf"
done
pgvigild_start >/dev/null
journal_wait 20 '"event":"primary-found"' >/dev/null || { echo "bench: no primary-found" >&2; exit 1; }
cluster_psql n0 "CREATE TABLE cost_locked (x int)" >/dev/null

printf '\\sleep 600 s\n' >"$CL_DIR/idle.sql"
printf 'SELECT count(*) FROM cost_locked;\n' >"$CL_DIR/wait.sql"
chmod 644 "$CL_DIR/idle.sql" "$CL_DIR/wait.sql"
port=$(cluster_port n0)
pgb() { bg runuser -u postgres -- env PGAPPNAME="$1" "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$port" \
	-c "$2" -j 4 -T 600 -f "$3" postgres; }
# the lock holder first, then the waiters, then the idle crowd (pgbench: at most 1000 a process)
bg runuser -u postgres -- "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -d postgres -Xq \
	-c "BEGIN; LOCK TABLE cost_locked IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600); COMMIT"
_held() { (($(count "wait_event = 'PgSleep'") >= 1)); }
wait_for 20 _held || { echo "bench: the lock holder did not start" >&2; exit 1; }
pgb cost-waiter "$WAITERS" "$CL_DIR/wait.sql"
idle=$((CLIENTS - WAITERS - 1))
while ((idle > 0)); do
	c=$((idle > 500 ? 500 : idle))
	pgb cost-idle "$c" "$CL_DIR/idle.sql"
	idle=$((idle - c))
done
_all() { (($(count "backend_type = 'client backend'") >= CLIENTS)); }
wait_for 120 _all || echo "bench: only $(count "backend_type = 'client backend'") client connections"
_waiting() { (($(count "wait_event_type = 'Lock'") >= WAITERS)); }
wait_for 30 _waiting || echo "bench: only $(count "wait_event_type = 'Lock'") lock waiters"
sleep 5 # let pgvigild see the chain and settle into its steady state

clients=$(count "backend_type = 'client backend'")
waiters=$(count "wait_event_type = 'Lock'")
pids=$(cluster_psql n0 "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE application_name = 'pgvigil'")
hbpid=$(cluster_psql n0 "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgvigil' AND query LIKE '%pgvigil.heartbeat%' LIMIT 1")
hb0=$(ticks "$hbpid")
chains0=$(grep -c '"event":"lock-chain"' "$CL_DIR/journal.jsonl")
# shellcheck disable=SC2086
b0=$(ticks $pids)
d0=$(ticks "$PGVIGILD_PID")
blocked=0
for ((s = 0; s < SECONDS_; s++)); do
	sleep 1
	# a client waiting on a lock that one of pgvigil's backends holds
	n=$(cluster_psql n0 "SELECT count(*) FROM pg_stat_activity w, unnest(pg_blocking_pids(w.pid)) b
		JOIN pg_stat_activity a ON a.pid = b WHERE a.application_name = 'pgvigil'" 2>/dev/null)
	blocked=$((blocked + ${n:-0}))
done
# shellcheck disable=SC2086
b1=$(ticks $pids)
d1=$(ticks "$PGVIGILD_PID")
hb1=$(ticks "$hbpid")
hz=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$PGVIGILD_PID/status")
chains=$(($(grep -c '"event":"lock-chain"' "$CL_DIR/journal.jsonl") - chains0))
echo "probe cost on the primary: pgvigild watching $(grep -c 'name = "n' "$CL_DIR/pgvigil.conf") nodes, $clients client connections, $waiters lock waiters, ${SECONDS_} s, default probe settings"
awk -v b=$((b1 - b0)) -v d=$((d1 - d0)) -v hz="$hz" -v s="$SECONDS_" -v rss="$rss" \
	-v n="$(wc -w <<<"$pids")" -v bl="$blocked" -v ch="$chains" -v hb=$((hb1 - hb0)) 'BEGIN {
	printf "  pgvigil backends on the primary (%d): %.2f %% of one core (target < 1 %%)\n", n, 100 * b / hz / s
	printf "    of which the heartbeat connection: %.2f %%, the status connection: %.2f %%\n", 100 * hb / hz / s, 100 * (b - hb) / hz / s
	printf "  pgvigild: %.2f %% of one core, RSS %.1f MiB (targets < 1 %%, < 10 MiB)\n", 100 * d / hz / s, rss / 1024
	printf "  clients seen waiting on a lock held by pgvigil: %d (sampled every second)\n", bl
	printf "  lock-chain journal records in the window: %d\n", ch
}'
