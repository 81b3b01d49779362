#!/usr/bin/env bash
# The data-loss guard: a standby further behind the old primary's last seen LSN than
# failover.max_lag_bytes (16 MiB) is not promoted, the refusal records the gap, and
# `pgvigil failover --allow-data-loss` overrides it after printing the gap.  With synchronous
# replication configured, only the synchronous standby is promoted.
source "$(dirname "$0")/../lib.sh"

# --- 1. synchronous replication: the sync standby wins over a higher-priority async one
t_cluster
cluster_psql n0 "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (n2)'" >/dev/null &&
	cluster_psql n0 "SELECT pg_reload_conf()" >/dev/null
_sync() { [[ $(cluster_psql n0 "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'n2'") == sync ]]; }
check_wait "n2 is the synchronous standby" 15 _sync
t_daemon_start
t_wait_primary_found
_seen_sync() { pgvigil status --json >/dev/null && journal_find 0 '"event":"primary-found"' >/dev/null; }
check_wait "daemon up" 5 _seen_sync
cluster_psql n0 "CREATE TABLE acked (x int); INSERT INTO acked VALUES (1)" >/dev/null
cluster_kill n0
check "the failover completes" journal_wait 30 '"event":"incident-close"'
decision=$(journal_line "$(journal_find 0 '"event":"failover-decision"')")
check "n2, the synchronous standby, won over n1 (priority 100 vs 50)" grep -q '"winner":"n2"' <<<"$decision"
check "the decision says only synchronous standbys were eligible" grep -q '"sync_guarded":true' <<<"$decision"
check "n1 was refused as not synchronous" grep -q '"node":"n1"[^}]*"reason":"not a synchronous standby' <<<"$decision"
check "the acknowledged row is on n2" test "$(cluster_psql n2 "SELECT count(*) FROM acked")" = 1
pgvigild_stop >/dev/null
cluster_destroy "$CL_DIR" >/dev/null 2>&1
T_CLUSTER=

# --- 2. a standby too far behind
t_cluster
sed -i 's/^failover = {/failover = { mode = "manual";/; s/mode = "automatic"; //' "$CL_DIR/pgvigil.conf"
check "manual-mode config valid" pgvigil check-config
t_daemon_start
t_wait_primary_found
# n1 stops receiving (its primary_conninfo points nowhere), n2 is stopped: n1 is the only candidate
cluster_psql n1 "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=postgres application_name=n1'" >/dev/null &&
	cluster_psql n1 "SELECT pg_reload_conf()" >/dev/null
_n1_cut() { [[ -z $(cluster_psql n1 "SELECT status FROM pg_stat_wal_receiver") ]]; }
check_wait "n1 no longer receives WAL" 15 _n1_cut
cluster_psql n0 "CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 150000) g" >/dev/null
_lsn_num() { local h=${1%/*} l=${1#*/}; echo $(((16#$h << 32) + 16#$l)); }
target=$(_lsn_num "$(cluster_psql n0 "SELECT pg_current_wal_lsn()")")
_seen_big() {
	local l
	l=$(pgvigil status --json | grep -oE '"name":"n0"[^}]*"lsn":"[0-9A-F]+/[0-9A-F]+"' | grep -oE '[0-9A-F]+/[0-9A-F]+"$' | tr -d '"')
	[[ -n $l ]] && (($(_lsn_num "$l") >= target))
}
check_wait "the daemon saw the primary's LSN after the big write" 10 _seen_big
cluster_stop n2 >/dev/null 2>&1
cluster_kill n0
check "the daemon refuses (manual mode, and the guard)" journal_wait 20 '"event":"failover-refused"'
out=$(pgvigil failover --to n1 --reason "try it" 2>&1)
rc=$?
note "$out"
check_eq "failover to the lagging n1 is refused (exit 1)" 1 "$rc"
check "the refusal names the guard" grep -q "failover.max_lag_bytes" <<<"$out"
check "n1 is still a standby" cluster_is_standby n1
out=$(pgvigil failover --to n1 --allow-data-loss --reason "accept the loss" 2>&1)
rc=$?
note "$out"
check_eq "--allow-data-loss promotes n1 (exit 0)" 0 "$rc"
check "it printed the data-loss bound first" grep -qE "data loss bound: .* by [0-9]{8,} bytes" <<<"$out"
check "n1 is the primary" cluster_is_primary n1
check "the manual-failover record says allow_data_loss" grep -q '"event":"manual-failover".*"allow_data_loss":true' "$CL_DIR/journal.jsonl"

t_done
