#!/usr/bin/env bash
# Lock chains on the primary: detected with their root blocker, answered by the ladder (an
# active root is cancelled, an idle-in-transaction root terminated), the writer's inserts
# resume, the journal holds the chain; a blocker whose user is excluded is reported, never
# touched.  Defaults: cancel after 5 s, terminate after 10 s.
source "$(dirname "$0")/../lib.sh"

t_cluster
PORT=$(cluster_port n0)
cluster_psql n0 "CREATE ROLE app LOGIN; CREATE ROLE batch LOGIN;
	CREATE TABLE t (id serial PRIMARY KEY, v int); GRANT ALL ON t, t_id_seq TO app, batch" ||
	t_bail "cannot create roles and table"
sed -i 's/^probe = {/locks = { exclude_users = "batch"; };\nprobe = {/' "$CL_DIR/pgvigil.conf"
printf '#!/bin/sh\nenv | grep ^PGVIGIL_ >> "%s"\necho --- >> "%s"\n' "$CL_DIR/onlock.env" "$CL_DIR/onlock.env" >"$CL_DIR/onlock.sh"
chmod 755 "$CL_DIR/onlock.sh"
printf 'hooks = { on_lock = "%s"; };\n' "$CL_DIR/onlock.sh" >>"$CL_DIR/pgvigil.conf"
check "the config with locks.exclude_users is valid" pgvigil check-config
t_daemon_start
t_wait_primary_found

# a journal line holding all the given strings, detail included
_journal_has() {
	local l
	while IFS= read -r l; do
		local p hit=1
		for p in "$@"; do [[ $l == *"$p"* ]] || { hit=0; break; }; done
		((hit)) && return 0
	done <"$CL_DIR/journal.jsonl"
	return 1
}

PSQL="$PG_BIN/psql -X -q -At -h 127.0.0.1 -p $PORT -d postgres"
# the writer: one insert every 100 ms as app (each waits as long as a lock holds it)
t_bg runuser -u postgres -- bash -c "cd /; while :; do $PSQL -U app -c 'INSERT INTO t (v) VALUES (1)' >/dev/null 2>&1; sleep 0.1; done"
rows() { cluster_psql n0 "SELECT count(*) FROM t"; }
_rows_over() { (($(rows) > $1)); }
check_wait "the writer writes" 15 _rows_over 5

# 1. an active root blocker: ACCESS EXCLUSIVE held by a running statement
t_bg runuser -u postgres -- bash -c "cd /; $PSQL -U app -c 'BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120)'"
check "the chain is journaled with its root" journal_wait 15 '"event":"lock-chain"'
line=$(journal_line "$(journal_find 0 '"event":"lock-chain"')")
check "the root is app's session, active, blocking the writer on t" \
	grep -qE '"user":"app".*"state":"active".*"relations":"t"' <<<"$line"
check "the active root is cancelled (ladder: cancel)" \
	journal_wait 20 '"event":"lock-cancel"' '"phase":"end"' '"outcome":"ok"'
n=$(rows)
check_wait "the writer's inserts resume" 15 _rows_over $((n + 3))
check "the cleared chain is journaled" journal_wait 10 '"event":"lock-cleared"'
_hook_ran() { grep -q '^PGVIGIL_EVENT=lock-chain$' "$CL_DIR/onlock.env" 2>/dev/null; }
check_wait "hooks.on_lock ran with PGVIGIL_EVENT=lock-chain" 10 _hook_ran
check "and PGVIGIL_NODE=n0" grep -q '^PGVIGIL_NODE=n0$' "$CL_DIR/onlock.env"

# 2. an idle-in-transaction root: a cancel would do nothing, so it is terminated
from=$(wc -l <"$CL_DIR/journal.jsonl")
t_bg runuser -u postgres -- bash -c "cd /; (echo 'BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;'; sleep 120) | $PSQL -U app"
check_wait "the new chain is journaled" 15 _journal_has '"event":"lock-chain"' '"state":"idle in transaction"'
check "the idle-in-transaction root is terminated, not cancelled" \
	journal_wait 20 '"event":"lock-terminate"' '"phase":"end"' '"outcome":"ok"'
check_not "no cancel was tried on it" journal_find "$from" '"event":"lock-cancel"'
n=$(rows)
check_wait "the writer's inserts resume again" 15 _rows_over $((n + 3))

# 3. an excluded user: reported, never touched
from=$(wc -l <"$CL_DIR/journal.jsonl")
t_bg runuser -u postgres -- bash -c "cd /; (echo 'BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;'; sleep 120) | $PSQL -U batch"
BATCH=$T_BG_LAST
check_wait "the batch chain is journaled as protected" 15 _journal_has '"event":"lock-chain"' '"user":"batch"' '"ladder":"protected"'
_blocked_long() { pgvigil status --json | grep -qE '"user":"batch","state":"idle in transaction","blocked":[0-9]+,"blocked_for_ms":(1[2-9]|[2-9][0-9])[0-9]{3}'; }
check_wait "status shows it blocking for over 12 s (past terminate_after)" 30 _blocked_long
check_not "it was never cancelled or terminated" journal_find "$from" '"event":"lock-terminate"'
check "status reports the primary as locked" grep -q '"health":"locked"' <<<"$(pgvigil status --json)"
tree=$(pgvigil locks 2>&1)
note "$tree"
check "pgvigil locks shows the batch root first" grep -qE '^root pid [0-9]+ batch/psql, idle in transaction' <<<"$tree"
check "and the writer waiting under it" grep -qE '^  └ pid [0-9]+ app/psql waits [0-9]+ ms for RowExclusiveLock on t' <<<"$tree"
check "pgvigil locks --json names the root and its waiter" \
	grep -qE '"roots":\[\{"pid":[0-9]+,"user":"batch".*"waiters":\[\{"pid":[0-9]+,"user":"app"' <<<"$(pgvigil locks --json)"
t_bg_stop "$BATCH"
cluster_psql n0 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'batch'" >/dev/null
n=$(rows)
check_wait "the writer resumes once the operator ends it" 15 _rows_over $((n + 3))
check "no failover happened" cluster_is_primary n0
check_not "no incident was opened" journal_find 0 '"event":"incident-open"'

t_done
