#!/usr/bin/env bash
# The primary dies (SIGKILL of the postmaster and all its children) while pgvigild watches:
# the journal's winner is promoted, the other standby follows it, PgBouncer points at it, writes
# go through, the journal tells the story in order, and no password leaks anywhere.
source "$(dirname "$0")/../lib.sh"

_replicated_43() { [[ $(cluster_psql "$1" "SELECT count(*) FROM before_kill WHERE x = 43") == 1 ]]; }
_status_primary() {
	local s
	s=$(pgvigil status --json 2>/dev/null) || return 1
	[[ $(json_str "$s" primary) == "$1" ]]
}
_contains() { [[ $1 == *"$2"* ]]; }
# _leaks WORD FILE...: WORD appears in a file or on stdin.
_leaks() {
	local w=$1
	shift
	grep -qF "$w" - && return 0
	grep -qsF "$w" "$@"
}


t_cluster
# trust auth ignores the password: it is there to prove nothing prints it.
sed -i "s/port=$((CL_BASE + 1)) user=postgres/& password=s3cret/" "$CL_DIR/pgvigil.conf"
grep -q 'password=s3cret' "$CL_DIR/pgvigil.conf" || t_bail "could not add the password to the config"

# A row written before the kill, replayed by both standbys: it must survive the failover.
cluster_psql n0 "CREATE TABLE before_kill (x int); INSERT INTO before_kill VALUES (42)" >/dev/null ||
	t_bail "cannot write on n0"
{ cluster_wait_replayed n1 && cluster_wait_replayed n2; } || t_bail "standbys did not replay"

t_daemon_start
t_wait_primary_found
check "primary-found names n0" journal_find 0 '"event":"primary-found"' '"node":"n0"'

cluster_kill n0 || t_bail "cannot kill n0"
note "n0 killed"

check_wait "incident closes within 30 s of the kill" 30 journal_find 0 '"event":"incident-close"' ||
	t_bail "no incident-close"

close_line=$(journal_line "$(journal_find 0 '"event":"incident-close"')")
check "incident-close outcome is ok" journal_find 0 '"event":"incident-close"' '"outcome":"ok"'

decision=$(journal_line "$(journal_find 0 '"event":"failover-decision"')")
winner=$(json_str "$decision" winner)
note "failover-decision winner: ${winner:-none}"
case $winner in
n1) other=n2 ;;
n2) other=n1 ;;
*) t_bail "failover-decision names no standby as winner (got '$winner')" ;;
esac
check_eq "incident-close names the winner as new primary" "$winner" "$(json_str "$close_line" new_primary)"

check "winner $winner is out of recovery" cluster_is_primary "$winner"
check "$other is still a standby" cluster_is_standby "$other"
check_wait "$other streams from $winner" 15 cluster_streams_from "$other" "$winner"
check_eq "PgBouncer's app points at $winner" "$(cluster_port "$winner")" "$(cluster_bouncer_port app)"
check_wait "a write through PgBouncer succeeds" 10 \
	cluster_psql app "INSERT INTO before_kill VALUES (43)"
check_eq "the row written before the kill survived" 1 \
	"$(cluster_psql "$winner" "SELECT count(*) FROM before_kill WHERE x = 42")"
check_wait "the write through PgBouncer reached $other" 10 _replicated_43 "$other"

t_journal_order "journal: incident-open, decision, promote, endpoint-switch, repoint, incident-close in order" \
	'"event":"incident-open"' \
	'"event":"failover-decision"' \
	'"event":"promote"|"phase":"begin"' \
	'"event":"promote"|"phase":"end"|"outcome":"ok"' \
	'"event":"endpoint-switch"|"phase":"begin"' \
	'"event":"endpoint-switch"|"phase":"end"|"outcome":"ok"' \
	'"event":"repoint"|"phase":"begin"' \
	'"event":"repoint"|"phase":"end"' \
	'"event":"incident-close"|"outcome":"ok"'
check "the finding that n0 is out of reach is journaled" journal_find 0 '"event":"fence"' '"outcome":"ok"' '"node":"n0"'
check "the PgBouncer fence (KILL) held before the promotion" grep -q '"event":"fence","phase":"end","node":"n0","outcome":"ok".*"method":"pgbouncer"' "$CL_DIR/journal.jsonl"
check "promote begin and end name $winner" journal_find 0 '"event":"promote"' '"phase":"end"' "\"node\":\"$winner\""
check "repoint names $other" journal_find 0 '"event":"repoint"' '"phase":"end"' "\"node\":\"$other\""

status=$(pgvigil status --json 2>&1)
check "pgvigil status --json exits 0" pgvigil status --json
check_wait "pgvigil status --json reports $winner as primary" 10 _status_primary "$winner"

incident=$(json_str "$close_line" incident)
check "pgvigil incident list shows the incident" _contains "$(pgvigil incident list 2>&1)" "$incident"
shown=$(pgvigil incident show "$incident" 2>&1)
check "pgvigil incident show $incident exits 0" pgvigil incident show "$incident"

check_not "no password in the journal, the logs or the CLI output" \
	_leaks s3cret "$CL_DIR/journal.jsonl" "$CL_DIR/pgvigild.log" "$CL_DIR/pgvigild.stderr" \
	<<<"$status$shown"
check "pgvigild still running" t_daemon_alive
rc=0
pgvigild_stop || rc=$?
check_eq "pgvigild exits 0 on SIGTERM (under PGVIGILD_WRAPPER too: no valgrind error)" 0 "$rc"

t_done
