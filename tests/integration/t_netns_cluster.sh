#!/usr/bin/env bash
# t_netns_cluster: the multi-host cluster of scripts/netns.sh (netns_cluster_create): a primary
# and two standbys each in its own namespace, streaming across the bridge; PgBouncer in bnc
# routes clients in ctl to the primary; pgvigild runs in ctl, finds the primary and answers
# "pgvigil status" over its socket.  The base the partition scenarios start from.  Skipped when
# not root or without network namespaces; everything is torn down on exit.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/netns.sh
source "$ROOT/scripts/netns.sh"
if ! netns_available; then
	echo "ok - t_netns_cluster: network namespaces # SKIP $NETNS_SKIP_REASON"
	exit 0
fi
source "$(dirname "$0")/../lib.sh"

[[ -x $PGVIGIL_BIN/pgvigild ]] || t_bail "$PGVIGIL_BIN/pgvigild not built (make)"
t_tmpdir
chmod 755 "$T_TMP"
NC=$T_TMP/cluster
cleanup_netns_cluster() {
	netns_cluster_destroy "$NC"
	netns_destroy
}
trap 'rc=$?; cleanup_netns_cluster; (exit $rc); _t_cleanup' EXIT

t0=$(_cl_now_ms)
netns_create || t_bail "netns_create failed"
netns_cluster_create "$NC" || t_bail "netns_cluster_create failed"
note "topology and cluster (n0 $(netns_addr n0), n1 $(netns_addr n1), n2 $(netns_addr n2), PgBouncer $(netns_addr bnc):6432) up in $(($(_cl_now_ms) - t0)) ms"

check_eq "n0 is the primary" f "$(netns_cluster_psql ctl n0 "SELECT pg_is_in_recovery()")"
check_eq "n1 streams from n0's address" "true $(netns_addr n0)" \
	"$(netns_cluster_psql ctl n1 "SELECT pg_is_in_recovery() || ' ' || sender_host FROM pg_stat_wal_receiver" 2>&1)"
check_eq "n2 too" "$(netns_addr n0)" "$(netns_cluster_psql ctl n2 "SELECT sender_host FROM pg_stat_wal_receiver" 2>&1)"
check "a client in ctl writes through PgBouncer" \
	netns_cluster_psql ctl app "CREATE TABLE t (i int); INSERT INTO t VALUES (42)"
check_eq "PgBouncer sends it to n0" "$(netns_addr n0)" "$(netns_cluster_psql ctl app "SELECT inet_server_addr()")"
check_wait "the row reaches n2" 10 bash -c "[[ \$(source '$ROOT/scripts/netns.sh'; netns_cluster_psql ctl n2 'SELECT i FROM t' 2>/dev/null) == 42 ]]"

netns_pgvigild_start "$NC" || t_bail "cannot start pgvigild in ctl"
JOURNAL=$NC/journal.jsonl
if journal_wait 20 '"event":"primary-found"'; then
	ok "pgvigild in ctl finds the primary"
else
	not_ok "pgvigild in ctl finds the primary"
	note "$(tail -n 20 "$NC/pgvigild.stderr" "$NC/pgvigild.log" 2>/dev/null)"
fi
check "the primary it found is n0" grep -q '"event":"primary-found".*"n0"' "$JOURNAL"
check "pgvigil status answers over the control socket" "$PGVIGIL_BIN/pgvigil" -c "$NC/pgvigil.conf" status
note "$("$PGVIGIL_BIN/pgvigil" -c "$NC/pgvigil.conf" status 2>&1 | head -n 8)"
netns_pgvigild_stop "$NC"
check_not "pgvigild stopped" test -e "$NC/pgvigild.fgpid"

t_done
