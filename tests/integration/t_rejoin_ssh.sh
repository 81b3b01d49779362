#!/usr/bin/env bash
# t_rejoin_ssh: pgvigil rejoin of a node reached over ssh (a private sshd on 127.0.0.1, user
# postgres, ed25519 key, strict known_hosts): the old primary n0, SIGKILLed, failed over,
# started by hand for a split-brain write and crashed again, comes back as a standby of the
# new primary with every command run detached on its host and polled.  Every conninfo carries
# a password (trust ignores it); with the other standby down, primary_conninfo is built from
# the configuration: the password must reach no command line, no journal, no log, and not
# n0's postgresql.auto.conf (an ssh node's host keeps it in ~/.pgpass).  No temporary file is
# left on the host.
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../../scripts/sshd.sh
source "$T_ROOT/scripts/sshd.sh"

_count() { cluster_psql "$1" "SELECT count(*) FROM t WHERE x = $2" 2>/dev/null; }
_has_row() { [[ $(_count "$1" "$2") == 1 ]]; }
_status_primary() {
	local s
	s=$(pgvigil status --json 2>/dev/null) || return 1
	[[ $(json_str "$s" primary) == "$1" ]]
}
_leaks() {
	local w=$1
	shift
	grep -qF "$w" - && return 0
	grep -qsF "$w" "$@"
}
_remote_files() { find /tmp -maxdepth 1 -user postgres -name 'pgvigil-rejoin*' 2>/dev/null | sort; }

t_cluster
SIDE_PORT=$((CL_BASE + 5))
SSH_PORT=$((CL_BASE + 6))
for p in "$SIDE_PORT" "$SSH_PORT"; do
	_cl_port_free "$p" || t_bail "port $p is in use"
done
t_tmpdir
D=$T_TMP
# sshd goes before lib.sh's cleanup removes its directory
trap 'rc=$?; sshd_stop "$D"; (exit $rc); _t_cleanup' EXIT
sshd_start "$D" "$SSH_PORT" || t_bail "cannot start sshd on 127.0.0.1:$SSH_PORT"
sshd_user_key "$D" pv || t_bail "ssh-keygen failed"
sshd_known_hosts_line "$D" "$SSH_PORT" >"$D/known_hosts"

conf=$CL_DIR/pgvigil.conf
sed -i "s|pgdata = \"$CL_DIR/n0\"; pg_bin = \"$PG_BIN\"; }|pgdata = \"$CL_DIR/n0\"; pg_bin = \"$PG_BIN\";\n      ssh = { host = \"127.0.0.1\"; port = $SSH_PORT; user = \"postgres\"; key = \"$D/id_pv\"; known_hosts = \"$D/known_hosts\"; timeout_ms = 5000; }; }|" "$conf"
sed -i 's/user=postgres dbname=postgres"/user=postgres dbname=postgres password=s3cret"/' "$conf"
grep -q 'ssh = { host = "127.0.0.1"' "$conf" || t_bail "could not give n0 an ssh group"
[[ $(grep -c 'password=s3cret' "$conf") == 3 ]] || t_bail "could not add the passwords"
check "pgvigil ssh-check n0" pgvigil ssh-check n0

cluster_psql n0 "CREATE TABLE t (x int); INSERT INTO t VALUES (42)" >/dev/null || t_bail "cannot write on n0"
{ cluster_wait_replayed n1 && cluster_wait_replayed n2; } || t_bail "standbys did not replay"
files_before=$(_remote_files)
t_daemon_start
t_wait_primary_found

cluster_kill n0 || t_bail "cannot kill n0"
journal_wait 40 '"event":"incident-close"' || t_bail "no incident-close"
WINNER=$(json_str "$(journal_line "$(journal_find 0 '"event":"failover-decision"')")" winner)
note "n0 killed, $WINNER promoted"
wait_for 20 _status_primary "$WINNER" || t_bail "pgvigild does not report $WINNER as primary"

# the split-brain write, then a crash
_cl_pg "$PG_BIN/pg_ctl" -D "$CL_DIR/n0" -o "-p $SIDE_PORT -c archive_mode=off" -l "$CL_DIR/n0-side.log" \
	-w -t 30 -s start || t_bail "cannot start n0 on the side port"
_cl_pg "$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "$SIDE_PORT" -U postgres -d postgres \
	-c "INSERT INTO t VALUES (661)" || t_bail "cannot write on the side n0"
_cl_kill_tree "$(head -n 1 "$CL_DIR/n0/postmaster.pid")" || t_bail "cannot SIGKILL the side n0"

out=$(pgvigil rejoin n0 --dry-run --reason drill 2>&1)
check_eq "rejoin --dry-run exits 0" 0 "$?"
check "the dry run says the commands go over ssh" grep -qF "(ssh postgres@127.0.0.1:$SSH_PORT)" <<<"$out"
dry=$out

# with the other standby down there is no primary_conninfo to copy: it is built from the
# primary's conninfo in the configuration, which has the password
cluster_stop n2 || t_bail "cannot stop n2"
out=$(pgvigil rejoin n0 --reason "back after the failover" 2>&1)
rc=$?
note "$out"
check_eq "pgvigil rejoin n0 exits 0" 0 "$rc"
check "it says n0 streams from $WINNER by rewind" grep -q "^n0 streams from $WINNER (rewind, " <<<"$out"
check "it says the password stays out of primary_conninfo" grep -q "the password is left out of primary_conninfo on an ssh node" <<<"$out"
check "the journal says where the commands ran" \
	grep -qF "\"where\":\"ssh postgres@127.0.0.1:$SSH_PORT\"" "$CL_DIR/journal.jsonl"
check "n0 is in recovery" cluster_is_standby n0
check "n0 streams from $WINNER" cluster_streams_from n0 "$WINNER"
check_eq "the split-brain row is gone from n0" 0 "$(_count n0 661)"
cluster_psql "$WINNER" "INSERT INTO t VALUES (1000)" >/dev/null
check_wait "a write on $WINNER reaches n0" 10 _has_row n0 1000
check_eq "n0 keeps its own port" "port = $(cluster_port n0)" \
	"$(grep -E '^port = ' "$CL_DIR/n0/postgresql.conf" | tail -n 1)"
check_eq "one primary_conninfo, application_name n0" "1 1" \
	"$(grep -c '^primary_conninfo' "$CL_DIR/n0/postgresql.auto.conf") $(grep -c "application_name=''n0''" "$CL_DIR/n0/postgresql.auto.conf")"
check "the rejoin ended ok in the journal" \
	grep -q '"event":"rejoin","phase":"end","node":"n0","outcome":"ok"' "$CL_DIR/journal.jsonl"
check "primary_conninfo was built from the configuration" \
	grep -q '"event":"rejoin-step","phase":"end","node":"n0".*"template":"configuration"' "$CL_DIR/journal.jsonl"
cluster_start n2 || t_bail "cannot start n2"
check_wait "n2 streams from $WINNER again" 15 cluster_streams_from n2 "$WINNER"
check_not "no password in the journal, the logs, n0's configuration or the CLI output" \
	_leaks s3cret "$CL_DIR/journal.jsonl" "$CL_DIR/pgvigild.log" "$CL_DIR/pgvigild.stderr" \
	"$CL_DIR/n0/postgresql.auto.conf" <<<"$out$dry"
check_eq "no temporary file left on the host" "$files_before" "$(_remote_files)"
saved=$(getent passwd postgres | cut -d: -f6)/.pgvigil-rejoin/${CL_DIR//[^A-Za-z0-9._-]/_}_n0
check_not "the saved configuration files are gone" test -e "$saved"

check "pgvigild still running" t_daemon_alive
rc=0
pgvigild_stop || rc=$?
check_eq "pgvigild exits 0 on SIGTERM" 0 "$rc"
t_done
