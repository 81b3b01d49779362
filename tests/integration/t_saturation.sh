#!/usr/bin/env bash
# Exhaustion is not death: clients filling max_connections make the primary SATURATED (pgvigil
# keeps its own connections, no failover); a PgBouncer pool with more clients than servers, all
# in long transactions, is reported as exhausted; a primary that answers but cannot commit is
# WEDGED and, after failover.wedged_after_ms, failed over.
source "$(dirname "$0")/../lib.sh"

t_cluster
PORT=$(cluster_port n0)
cluster_psql n0 "CREATE ROLE app LOGIN" || t_bail "cannot create role app"
sed -i 's/^failover = {/failover = { wedged_after_ms = 4000;/' "$CL_DIR/pgvigil.conf"
check "config valid" pgvigil check-config
t_daemon_start
t_wait_primary_found
_hb() { pgvigil status --json | grep -q '"write":"ok"'; }
check_wait "heartbeat running" 10 _hb

# 1. connections: 44 sessions of app sleeping (with pgvigil's own two: 46 of 47 open slots)
printf 'SELECT pg_sleep(60);\n' >"$CL_DIR/sleep.sql"
chmod 644 "$CL_DIR/sleep.sql"
t_bg runuser -u postgres -- "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$PORT" -U app -c 44 -j 4 -T 60 -f "$CL_DIR/sleep.sql" postgres
FILL=$T_BG_LAST
_saturated() { pgvigil status --json | grep -qE '"name":"n0"[^]]*"health":"saturated"'; }
check_wait "the primary is SATURATED" 30 _saturated
check "the transition is journaled with its reason" journal_wait 5 '"event":"node-health"'
check "the journal says client backends" grep -q '"to":"saturated".*client backends' "$CL_DIR/journal.jsonl"
check "pgvigil still reaches n0 (reachable in status)" grep -qE '"name":"n0","role":"primary","probe":"up"' <<<"$(pgvigil status --json)"
check_not "n0 was never reported down" journal_find 0 '"event":"node-down"'
check_not "no incident" journal_find 0 '"event":"incident-open"'
t_bg_stop "$FILL"
cluster_psql n0 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'" >/dev/null
_healthy() { pgvigil status --json | grep -qE '"name":"n0"[^]]*"health":"healthy"'; }
check_wait "healthy again once they leave" 15 _healthy

# 2. PgBouncer: default_pool_size 10, 14 clients in 5 s transactions: 4 queue
printf 'BEGIN;\nSELECT pg_sleep(5);\nCOMMIT;\n' >"$CL_DIR/tx.sql"
t_bg runuser -u postgres -- "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$(cluster_port pgbouncer)" -U postgres -c 14 -j 2 -T 20 -f "$CL_DIR/tx.sql" app
POOL=$T_BG_LAST
check "the exhausted pool is journaled" journal_wait 20 '"event":"pool-exhausted"'
check "with the queued clients" grep -qE '"event":"pool-exhausted".*"database":"app".*"cl_waiting":[1-9]' "$CL_DIR/journal.jsonl"
check "status shows it" grep -q '"exhausted":true' <<<"$(pgvigil status --json)"
t_bg_stop "$POOL"
check "the pool's recovery is journaled" journal_wait 20 '"event":"pool-recovered"'

# 3. a wedged primary: commits wait for a synchronous standby that does not exist
cluster_psql n0 "ALTER SYSTEM SET synchronous_standby_names = 'ghost'" && cluster_psql n0 "SELECT pg_reload_conf()" >/dev/null
check "the wedge is journaled" journal_wait 20 '"event":"primary-wedged"'
check "and failed over after wedged_after_ms" journal_wait 30 '"event":"incident-close"'
decision=$(journal_line "$(journal_find 0 '"event":"failover-decision"')")
check "the decision names the wedge" grep -q 'wedged: cannot commit' <<<"$decision"
winner=$(json_str "$(journal_line "$(journal_find 0 '"event":"incident-close"')")" node)
check "$winner is the primary" cluster_is_primary "$winner"
check "PgBouncer points at $winner" test "$(cluster_bouncer_port app)" = "$(cluster_port "$winner")"
# the wedged n0 still answered: it is fenced at the endpoint before, and stopped after, the promotion
check "the endpoint fence held before the promotion" \
	grep -q '"event":"fence","phase":"end","node":"n0","outcome":"ok".*"method":"pgbouncer"' "$CL_DIR/journal.jsonl"
check "then n0 was stopped" grep -q '"event":"fence","phase":"end","node":"n0","outcome":"ok".*"method":"stop"' "$CL_DIR/journal.jsonl"
_n0_gone() { ! cluster_psql n0 "SELECT 1" >/dev/null 2>&1; }
check_wait "n0 no longer accepts connections (never two writable primaries)" 10 _n0_gone

t_done
