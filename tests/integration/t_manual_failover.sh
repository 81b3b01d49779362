#!/usr/bin/env bash
# failover.mode = "manual": a reachable primary is never failed over; a dead one is journaled but
# not replaced until an operator asks; --dry-run plans without acting; `failover --to n2` does it.
source "$(dirname "$0")/../lib.sh"

_none_promoted() { ! journal_find 0 '"event":"promote"' >/dev/null; }
_both_standbys() { cluster_is_standby n1 && cluster_is_standby n2; }
_manual_noticed() {
	journal_find 0 '"event":"failover-refused"' >/dev/null && return 0
	# or confirm_failures (3) primary-suspect records for n0
	local from=0
	for _ in 1 2 3; do from=$(journal_find "$from" '"event":"primary-suspect"') || return 1; done
}
_status_primary() {
	local s
	s=$(pgvigil status --json 2>/dev/null) || return 1
	[[ $(json_str "$s" primary) == "$1" ]]
}

t_cluster
sed -i 's/mode = "automatic"/mode = "manual"/' "$CL_DIR/pgvigil.conf"
grep -q 'mode = "manual"' "$CL_DIR/pgvigil.conf" || t_bail "could not set failover.mode"

t_daemon_start
t_wait_primary_found

# 1. With every node up the primary is reachable: a failover is refused.
out=$(pgvigil failover --to n1 --reason x 2>&1)
rc=$?
check_eq "failover --to n1 with n0 reachable exits 1" 1 "$rc"
note "  said: $out"
check "n1 still a standby after the refused failover" cluster_is_standby n1
check "n0 still the primary" cluster_is_primary n0
check "no promote record" _none_promoted

# 2. n0 dies: journaled, nothing promoted.
cluster_kill n0 || t_bail "cannot kill n0"
note "n0 killed"
check_wait "the daemon notices (failover-refused, or 3 primary-suspect records)" 20 _manual_noticed
check "no promote record in manual mode" _none_promoted
check "n1 and n2 still in recovery" _both_standbys

# 3. A dry run plans and changes nothing.
out=$(pgvigil failover --to n2 --dry-run --reason drill 2>&1)
rc=$?
check_eq "failover --to n2 --dry-run exits 0" 0 "$rc"
printf '%s\n' "$out" | sed 's/^/#   /'
check "the plan mentions n2" grep -q n2 <<<"$out"
check "dry run: n1 and n2 still in recovery" _both_standbys
check "dry run: no promote record" _none_promoted
check "dry run: manual-failover journaled with dry_run" \
	journal_find 0 '"event":"manual-failover"'
check_eq "dry run: PgBouncer still points at n0" "$(cluster_port n0)" "$(cluster_bouncer_port app)"

# 4. The real thing.
out=$(pgvigil failover --to n2 --reason "test" 2>&1)
rc=$?
check_eq "failover --to n2 exits 0" 0 "$rc"
printf '%s\n' "$out" | sed 's/^/#   /'
check_wait "incident closes ok with n2 as new primary (30 s)" 30 \
	journal_find 0 '"event":"incident-close"' '"outcome":"ok"'
close_line=$(journal_line "$(journal_find 0 '"event":"incident-close"' '"outcome":"ok"')")
check_eq "incident-close names n2" n2 "$(json_str "$close_line" new_primary)"
check_wait "n2 is out of recovery" 10 cluster_is_primary n2
check "n1 still a standby" cluster_is_standby n1
check_wait "n1 streams from n2" 15 cluster_streams_from n1 n2
check_eq "PgBouncer's app points at n2" "$(cluster_port n2)" "$(cluster_bouncer_port app)"
check_wait "a write through PgBouncer succeeds" 10 cluster_psql app "CREATE TABLE after_manual (x int)"
check "promote record names n2" journal_find 0 '"event":"promote"' '"phase":"end"' '"outcome":"ok"' '"node":"n2"'
check_wait "pgvigil status reports n2 as primary" 10 _status_primary n2

t_done
