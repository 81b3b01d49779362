#!/usr/bin/env bash
# Planned switchover under load: pgbench through PgBouncer keeps running with zero failed
# transactions while n1 becomes the primary; the old primary comes back as a standby of n1, n2
# follows n1, PgBouncer points at n1.  --dry-run changes nothing; bad requests are refused.
source "$(dirname "$0")/../lib.sh"

t_cluster
t_daemon_start
t_wait_primary_found
_hb() { pgvigil status --json | grep -q '"write":"ok"'; }
check_wait "daemon probing" 10 _hb

out=$(pgvigil switchover --to n1 --dry-run --reason drill 2>&1)
note "$out"
check "--dry-run prints the plan and a predicted pause" grep -q "predicted pause: [0-9]* ms" <<<"$out"
check "--dry-run changed nothing" cluster_is_primary n0
check_not "switchover to the primary itself is refused" pgvigil switchover --to n0 --reason x
check_not "switchover to an unknown node is refused" pgvigil switchover --to n9 --reason x
check_not "switchover without a reason is refused" pgvigil switchover --to n1

cluster_psql n0 "CREATE TABLE sw (id bigserial PRIMARY KEY, t timestamptz DEFAULT now())" >/dev/null
printf 'INSERT INTO sw DEFAULT VALUES;\n' >"$CL_DIR/sw.sql"
chmod 644 "$CL_DIR/sw.sql"
runuser -u postgres -- "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$(cluster_port pgbouncer)" -U postgres \
	-c 8 -j 2 -T 12 -f "$CL_DIR/sw.sql" app >"$CL_DIR/pgbench.out" 2>&1 &
BENCH=$!
_rows() { (($(cluster_psql n0 "SELECT count(*) FROM sw") > 200)); }
check_wait "pgbench writes through PgBouncer" 15 _rows
out=$(pgvigil switchover --to n1 --reason "planned maintenance of n0" 2>&1)
rc=$?
note "$out"
check_eq "switchover exits 0" 0 "$rc"
wait "$BENCH"
brc=$?
note "$(grep -E 'failed|processed|aborted|error' "$CL_DIR/pgbench.out")"
check_eq "pgbench finished without an aborted client" 0 "$brc"
check "zero failed transactions" grep -qE "number of failed transactions: 0 " "$CL_DIR/pgbench.out"
check "n1 is the primary" cluster_is_primary n1
check "PgBouncer points at n1" test "$(cluster_bouncer_port app)" = "$(cluster_port n1)"
check_wait "n0 is back as a standby streaming from n1" 20 cluster_streams_from n0 n1
check_wait "n2 streams from n1" 20 cluster_streams_from n2 n1
check "the incident closes" journal_wait 30 '"event":"incident-close"' '"outcome":"ok"'
n0rows=$(cluster_psql n0 "SELECT count(*) FROM sw")
n1rows=$(cluster_psql n1 "SELECT count(*) FROM sw")
check_eq "n0 (now a standby) has every row the primary has" "$n1rows" "$n0rows"
queued=$(grep -oE "clients queued -?[0-9]+ ms" <<<"$out")
note "  $queued"

t_done
