#!/usr/bin/env bash
# t_backup_ssh: backups on another host (backup.host), reached over ssh: a private sshd on
# 127.0.0.1 (user postgres, ed25519 key, strict known_hosts) stands for n2's host, and the
# backup directory is a directory there owned by postgres.  pg_basebackup and pg_verifybackup
# run there (detached, polled); the catalog is there; `pgvigil backup list` reads it over ssh.
# Every conninfo carries a password (trust ignores it): it must reach no command line (a ps
# capture during a backup), no journal, no log and no file on the backup host.  Then: keep = 2
# retention there; a copy corrupted before its verification is failed and kept as LABEL.failed;
# `backup verify` catches a corrupted file; a restore drill from the remote backup (rows before
# vs after the incident's restore point), by label and by incident; a copy killed on the host
# without an exit status fails at once and is cleaned up; the daemon stopped mid-copy stops it
# there; a backup survives sshd going away and coming back; an unwritable directory and a stopped
# sshd are clear errors with a backup begin/end failed record, nothing deleted.
source "$(dirname "$0")/../lib.sh"
source "$T_ROOT/tests/backup_lib.sh"
# shellcheck source=../../scripts/sshd.sh
source "$T_ROOT/scripts/sshd.sh"

_leaks() {
	local w=$1
	shift
	grep -qF "$w" - && return 0
	grep -rqsF "$w" "$@"
}
_no_leftovers() { [[ -z $(compgen -G "$RB/*.partial") && -z $(compgen -G "$RB/*.deleting") ]]; }
_remote_tmp() { find /tmp -maxdepth 1 -user postgres -name 'pgvigil-backup*' 2>/dev/null | sort; }
_status_of() { bk_list | grep -o "\"label\":\"$1\",\"status\":\"[a-z]*\"" | cut -d'"' -f8; }
_primary_known() {
	local st
	st=$(pgvigil status --json 2>/dev/null) || return 1
	[[ $(json_str "$st" primary) == n0 ]] &&
		grep -qE '"name": ?"n0", ?"role": ?"primary", ?"probe": ?"[a-z]*", ?"reachable": ?true' <<<"$st"
}
# t_daemon_start again, and wait until this daemon knows the primary
_restart() {
	t_daemon_start
	wait_for 30 _primary_known || t_bail "the restarted pgvigild does not see n0 as primary"
}
_ms() {
	local t=${EPOCHREALTIME//[.,]/}
	echo $((t / 1000))
}

t_cluster
SSH_PORT=$((CL_BASE + 6))
RPORT=$((CL_BASE + 5))
for p in "$SSH_PORT" "$RPORT"; do
	_cl_port_free "$p" || t_bail "port $p is in use"
done
t_tmpdir
D=$T_TMP
chmod 755 "$D" # postgres reaches the backup directory and the restored copies in it
RB=$D/remote/backups
mkdir -p "$D/remote"
chown postgres: "$D/remote"
chmod 700 "$D/remote"
# a pg_bin for n2 whose pg_verifybackup can be told to damage the copy before checking it
mkdir "$D/bin"
for p in "$PG_BIN"/*; do ln -s "$p" "$D/bin/"; done
rm "$D/bin/pg_verifybackup"
cat >"$D/bin/pg_verifybackup" <<EOF
#!/bin/sh
# corrupts the backup first when $D/remote/corrupt-next exists (then removes it)
if [ -e "$D/remote/corrupt-next" ]; then
	rm -f "$D/remote/corrupt-next"
	f=\$(find "\$1/base" -type f -size +16k | head -n 1)
	printf 'pgvigil-corruption' | dd of="\$f" bs=1 seek=8192 conv=notrunc status=none
fi
exec "$PG_BIN/pg_verifybackup" "\$@"
EOF
chmod 755 "$D/bin/pg_verifybackup"
bk_on_exit "sshd_stop '$D'"
bk_on_exit "bk_restored_stop '$D/copy1'"
bk_on_exit "bk_restored_stop '$D/copy2'"
sshd_start "$D" "$SSH_PORT" || t_bail "cannot start sshd on 127.0.0.1:$SSH_PORT"
sshd_user_key "$D" pv || t_bail "ssh-keygen failed"
sshd_known_hosts_line "$D" "$SSH_PORT" >"$D/known_hosts"

conf=$CL_DIR/pgvigil.conf
sed -i "s|pgdata = \"$CL_DIR/n2\"; pg_bin = \"$PG_BIN\"; }|pgdata = \"$CL_DIR/n2\"; pg_bin = \"$D/bin\";\n      ssh = { host = \"127.0.0.1\"; port = $SSH_PORT; user = \"postgres\"; key = \"$D/id_pv\"; known_hosts = \"$D/known_hosts\"; timeout_ms = 5000; }; }|" "$conf"
sed -i 's/user=postgres dbname=postgres"/user=postgres dbname=postgres password=s3cret"/' "$conf"
grep -q 'ssh = { host = "127.0.0.1"' "$conf" || t_bail "could not give n2 an ssh group"
[[ $(grep -c 'password=s3cret' "$conf") == 3 ]] || t_bail "could not add the passwords"

# configuration errors name the setting and its line
cp "$conf" "$D/bad.conf"
cat >>"$D/bad.conf" <<EOF
backup = { host = "n9"; directory = "$RB"; };
EOF
sed -i '/^backup = { archive_dir/d' "$D/bad.conf"
out=$("$PGVIGIL_BIN/pgvigil" -c "$D/bad.conf" check-config 2>&1)
check_eq "backup.host naming no node: check-config exits 2" 2 "$?"
check "... FILE:LINE: backup.host: no node" grep -qE "^$D/bad.conf:[0-9]+: backup.host: no node \"n9\"" <<<"$out"
sed -i 's/host = "n9"/host = "n0"/' "$D/bad.conf"
out=$("$PGVIGIL_BIN/pgvigil" -c "$D/bad.conf" check-config 2>&1)
check "backup.host naming a node without ssh group: refused" grep -q "backup.host: node n0 has no ssh group" <<<"$out"
sed -i "s|host = \"n0\"; directory = \"$RB\"|host = \"n2\"; directory = \"backups\"|" "$D/bad.conf"
out=$("$PGVIGIL_BIN/pgvigil" -c "$D/bad.conf" check-config 2>&1)
check "a relative backup.directory with backup.host: refused" grep -q "backup.directory: must be an absolute path" <<<"$out"

bk_conf "host = \"n2\"; directory = \"$RB\"; keep = 2;"
check "pgvigil ssh-check n2" pgvigil ssh-check n2
cluster_psql n0 "CREATE TABLE drill (x int); INSERT INTO drill SELECT generate_series(1, 50)" >/dev/null ||
	t_bail "cannot write on n0"
tmp_before=$(_remote_tmp)
t_daemon_start
t_wait_primary_found

# --- a backup over ssh, and a process list captured while it runs
(
	while [[ ! -e $D/ps-stop ]]; do
		ps -eo args >>"$D/ps.txt" 2>/dev/null
		sleep 0.05
	done
) &
PS_PID=$!
t0=$(_ms)
out=$(pgvigil backup --wait 2>&1)
rc=$?
t1=$(_ms)
touch "$D/ps-stop"
wait "$PS_PID"
note "$out"
note "backup over ssh took $((t1 - t0)) ms"
check_eq "pgvigil backup --wait exits 0" 0 "$rc"
A=$(bk_label_of 1)
check_eq "one verified backup listed (over ssh)" 1 "$(bk_count verified)"
check "it is on the backup host: backup_label, backup_manifest, its catalog record" \
	test -f "$RB/$A/backup_label" -a -f "$RB/$A/backup_manifest" -a -f "$RB/$A.json"
check_eq "written by the ssh user" "postgres postgres" "$(stat -c %U "$RB/$A") $(stat -c %U "$RB/$A.json")"
check "pg_basebackup ran through ssh (seen in the process list)" grep -q "pg_basebackup.*-D.*$RB/$A.partial" "$D/ps.txt"
check "the catalog record is complete" grep -qE "\"status\":\"verified\".*\"start_lsn\":\"[0-9A-F]+/[0-9A-F]+\".*\"stop_lsn\":\"[0-9A-F]+/[0-9A-F]+\".*\"timeline\":1" "$RB/$A.json"
size=$(json_num "$(bk_list)" size_bytes)
check_eq "its size is du -sb of the directory" "$(du -sb "$RB/$A" | cut -f1)" "$size"
check "verify_ms and copy_ms are recorded" grep -qE '"copy_ms":[0-9]+,"verify_ms":[0-9]+' <<<"$(bk_list)"
check "no .partial left" _no_leftovers
t_journal_order "journal: backup begin (host n2), backup-verify ok, backup end ok" \
	'"event":"backup"|"phase":"begin"' '"event":"backup-verify"|"phase":"end"|"outcome":"ok"' \
	'"event":"backup"|"phase":"end"|"outcome":"ok"'
check "the begin record names the host" grep -q '"event":"backup","phase":"begin".*"host":"n2"' "$CL_DIR/journal.jsonl"
check "pgvigil backup list shows it" grep -q "^$A .*verified" <<<"$(pgvigil backup list)"
check_eq "no temporary file left on the host" "$tmp_before" "$(_remote_tmp)"

# --- a restore drill from the remote backup: rows before vs after the incident's restore point
cluster_psql n0 "INSERT INTO drill SELECT generate_series(51, 100)" >/dev/null || t_bail "cannot write"
id=$(pgvigil incident open --reason "restore drill over ssh" 2>&1) || t_bail "incident open failed: $id"
note "incident $id"
cluster_psql n0 "INSERT INTO drill SELECT generate_series(101, 150)" >/dev/null || t_bail "cannot write"
check_wait "restore-point-archived ok" 30 journal_find 0 '"event":"restore-point-archived"' '"outcome":"ok"'
t0=$(_ms)
rout=$(pgvigil restore --incident "$id" --to "$D/copy1" --start --port "$RPORT" 2>&1)
rc=$?
t1=$(_ms)
note "$rout"
note "restore drill from the remote backup took $((t1 - t0)) ms"
check_eq "pgvigil restore --incident --start (backup on the ssh host) exits 0" 0 "$rc"
check "it restored backup $A" grep -q "^backup $A (verified" <<<"$rout"
check "the copy stopped at the restore point" grep -q "recovery stopping at restore point \"pgvigil-$id\"" <<<"$rout"
check_eq "the copy holds exactly the 100 rows committed before the incident" 100 \
	"$(bk_psql_restored "$D/copy1" "$RPORT" "SELECT count(*) FROM drill" 2>&1)"
check_eq "the primary holds all 150" 150 "$(cluster_psql n0 "SELECT count(*) FROM drill")"
check_eq "the copy is here, owned by postgres, mode 700" "postgres 700" "$(stat -c '%U %a' "$D/copy1")"
bk_restored_stop "$D/copy1"
pgvigil incident close "$id" --reason done >/dev/null || t_bail "incident close failed"
seg=$(cluster_psql n0 "SELECT pg_walfile_name(pg_switch_wal())")
wait_for 30 test -s "$CL_DIR/wal-archive/$seg" || t_bail "WAL segment $seg not archived"
rout=$(pgvigil restore --backup "$A" --to "$D/copy2" --start --port "$RPORT" 2>&1)
check_eq "pgvigil restore --backup LABEL --start exits 0" 0 "$?"
check "... to the end of the archived WAL: all 150 rows" test \
	"$(bk_psql_restored "$D/copy2" "$RPORT" "SELECT count(*) FROM drill" 2>&1)" = 150
bk_restored_stop "$D/copy2"

# --- retention on the remote: keep = 2
pgvigil backup --wait >/dev/null 2>&1
check_eq "backup B exits 0" 0 "$?"
pgvigil backup --wait >/dev/null 2>&1
check_eq "backup C exits 0" 0 "$?"
check_eq "keep = 2: two verified backups listed" 2 "$(bk_count verified)"
check_not "A is gone from the list" grep -q "\"label\":\"$A\"" <<<"$(bk_list)"
check "backup-delete of A journaled" journal_find 0 '"event":"backup-delete"' '"outcome":"ok"'
check "A's record is gone from the host" test ! -e "$RB/$A.json"
check_wait "A's directory is removed from the host, nothing .deleting left" 20 \
	bash -c "[[ ! -e '$RB/$A' ]] && [[ -z \$(compgen -G '$RB/*.deleting') ]]"
B=$(bk_label_of 1)
C=$(bk_label_of 2)

# --- a copy corrupted before its verification: failed, kept as LABEL.failed, nothing else touched
touch "$D/remote/corrupt-next"
chmod 644 "$D/remote/corrupt-next"
out=$(pgvigil backup --wait 2>&1)
check_eq "a backup whose verification fails: exit 1" 1 "$?"
note "$out"
check "the error is pg_verifybackup's" grep -q "pg_verifybackup" <<<"$out"
Fl=$(bk_list | grep -o '"label":"[^"]*","status":"failed"' | cut -d'"' -f4)
check "it is listed as failed" test -n "$Fl"
check "its directory is kept as LABEL.failed on the host" test -d "$RB/$Fl.failed"
check "backup end failed (step verify) journaled" journal_find 0 '"event":"backup"' '"phase":"end"' '"outcome":"failed"'
check "B and C still verified" test "$(_status_of "$B") $(_status_of "$C")" = "verified verified"
pgvigil restore --backup "$Fl" --to "$D/r" >/dev/null 2>&1
check_eq "restore of the failed backup: exit 1" 1 "$?"
check "... nothing created" test ! -e "$D/r"

# --- backup verify over ssh catches a file corrupted later
victim=$(find "$RB/$C/base" -type f -size +16k | head -n 1)
printf 'pgvigil-corruption' | dd of="$victim" bs=1 seek=8192 conv=notrunc status=none
out=$(pgvigil backup verify "$C" 2>&1)
check_eq "pgvigil backup verify of a corrupted remote backup: exit 1" 1 "$?"
check "it names the damaged file" grep -q "${victim#"$RB/$C/"}" <<<"$out"
check_eq "the catalog there says C failed" failed "$(_status_of "$C")"
check_eq "B is untouched" verified "$(_status_of "$B")"

# --- the daemon stopped during a slow copy: pg_basebackup stopped on the host, its partial copy
# removed there, the backup end record says why
_bb_running() { pgrep -u postgres -f "pg_basebackup.*$RB/$1.partial" >/dev/null; }
rc=0
pgvigild_stop >/dev/null || rc=$?
check_eq "pgvigild exits 0 on SIGTERM" 0 "$rc"
sed -i 's|keep = 2;|keep = 2; max_rate = 32;|' "$conf"
_restart

# a copy that dies on the host without an exit status (as in a reboot): failed, not waited for
out=$(pgvigil backup 2>&1)
check_eq "a slow backup starts" 0 "$?"
K=$(sed -n 's/^backup \([^ ]*\) started.*/\1/p' <<<"$out")
check_wait "pg_basebackup runs on the host, into $K.partial" 20 _bb_running "$K"
pidf=$(compgen -G "/tmp/pgvigil-backup.*.pid" | head -n 1)
tp=$(cat "$pidf")
sp=$(ps -o ppid= -p "$tp" | tr -d ' ')
note "killing the waiting shell $sp and timeout(1) $tp with its pg_basebackup (SIGKILL)"
kill -KILL "$sp"
kill -KILL -- "-$tp"
check_wait "backup end failed: the command is gone without an exit status" 20 \
	grep -q "\"event\":\"backup\",\"phase\":\"end\".*\"label\":\"$K\".*gone without an exit status" "$CL_DIR/journal.jsonl"
check_wait "its partial copy is removed there" 20 _no_leftovers
check_eq "no temporary file left on the host" "$tmp_before" "$(_remote_tmp)"

out=$(pgvigil backup 2>&1)
check_eq "a slow backup starts" 0 "$?"
S=$(sed -n 's/^backup \([^ ]*\) started.*/\1/p' <<<"$out")
check_wait "pg_basebackup runs on the host, into $S.partial" 20 _bb_running "$S"
check_wait "its partial copy is there" 10 test -d "$RB/$S.partial"
rc=0
pgvigild_stop >/dev/null || rc=$?
check_eq "pgvigild stopped mid-copy exits 0" 0 "$rc"
check "backup end failed: the daemon stopped" grep -q "\"event\":\"backup\",\"phase\":\"end\".*\"label\":\"$S\".*\"error\":\"the daemon stopped\"" "$CL_DIR/journal.jsonl"
check_wait "pg_basebackup is stopped on the host" 10 bash -c "! pgrep -u postgres -f 'pg_basebackup.*$RB/$S.partial'"
check_wait "its partial copy is removed there" 20 _no_leftovers
check_eq "no temporary file left on the host" "$tmp_before" "$(_remote_tmp)"
check "B is still verified (nothing good touched)" test "$(_status_of "$B")" = verified
sed -i 's|keep = 2; max_rate = 32;|keep = 2;|' "$conf"
_restart

# sshd stopped and started again while a backup runs: the copy goes on there (detached), the
# daemon stays responsive, polls again and finishes it
nok=$(bk_journal_count '"event":"backup"' '"phase":"end"' '"outcome":"ok"')
out=$(pgvigil backup 2>&1)
check_eq "a backup starts" 0 "$?"
R=$(sed -n 's/^backup \([^ ]*\) started.*/\1/p' <<<"$out")
sshd_stop "$D"
t0=$(_ms)
pgvigil status >/dev/null 2>&1
check_eq "pgvigil status answers while the backup host is down" 0 "$?"
note "status took $(($(_ms) - t0)) ms"
sleep 3 # the host stays away for a while (not an assertion)
sshd_start "$D" "$SSH_PORT" || t_bail "cannot restart sshd"
check_wait "the backup ends ok once the host answers again" 60 \
	bk_journal_at_least $((nok + 1)) '"event":"backup"' '"phase":"end"' '"outcome":"ok"'
check_eq "it is listed verified" verified "$(_status_of "$R")"
check_wait "retention's removals there are done" 20 _no_leftovers

# --- an unwritable directory: a clear error and a journal record, nothing deleted
before=$(ls "$RB" | sort)
nbegin=$(bk_journal_count '"event":"backup"' '"phase":"begin"')
chmod 500 "$RB"
out=$(pgvigil backup --wait 2>&1)
check_eq "a backup into an unwritable directory: exit 1" 1 "$?"
note "$out"
check "the error says it is not writable" grep -q "not writable by postgres" <<<"$out"
check_eq "a backup begin record was written" $((nbegin + 1)) "$(bk_journal_count '"event":"backup"' '"phase":"begin"')"
check "... and its end record failed at prepare" grep -q '"event":"backup","phase":"end".*"outcome":"failed".*"failed_step":"prepare"' "$CL_DIR/journal.jsonl"
chmod 700 "$RB"
check_eq "nothing in the directory changed" "$before" "$(ls "$RB" | sort)"

# --- no password anywhere
check_not "no password in the journal, the logs, the files on the backup host, the CLI output or the process list" \
	_leaks s3cret "$CL_DIR/journal.jsonl" "$CL_DIR/pgvigild.log" "$CL_DIR/pgvigild.stderr" \
	"$RB" "$D/ps.txt" <<<"$out$rout"

# --- sshd stopped: a clear error and a journal record, nothing deleted
sshd_stop "$D"
nend=$(bk_journal_count '"event":"backup"' '"phase":"end"' '"outcome":"failed"')
out=$(pgvigil backup --wait 2>&1)
check_eq "a backup with the backup host unreachable: exit 1" 1 "$?"
note "$out"
check "the error names the host" grep -q "127.0.0.1:$SSH_PORT" <<<"$out"
check_eq "a backup end failed record was written" $((nend + 1)) \
	"$(bk_journal_count '"event":"backup"' '"phase":"end"' '"outcome":"failed"')"
check_eq "nothing in the directory changed" "$before" "$(ls "$RB" | sort)"
out=$(pgvigil backup list 2>&1)
check_eq "backup list with the host unreachable: exit 1" 1 "$?"
check "... saying why" grep -q "backup list: 127.0.0.1:$SSH_PORT" <<<"$out"
check "pgvigild still running" t_daemon_alive
rc=0
pgvigild_stop >/dev/null || rc=$?
check_eq "pgvigild exits 0 on SIGTERM" 0 "$rc"

t_done
