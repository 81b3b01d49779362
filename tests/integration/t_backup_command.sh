#!/usr/bin/env bash
# backup.method = "command": the program runs without a shell with its placeholders replaced,
# the password kept off its command line; a copy with a backup_manifest is verified, one without
# is listed as unverified, a failing command fails the backup and leaves nothing behind.
source "$(dirname "$0")/../lib.sh"
source "$T_ROOT/tests/backup_lib.sh"

_set_command() {
	sed -i "s|^  command = .*|  command = \"$1\";|" "$CL_DIR/pgvigil.conf"
	local n
	n=$(bk_journal_count '"event":"config-reload"' '"outcome":"ok"')
	kill -HUP "$PGVIGILD_PID"
	wait_for 10 bk_journal_at_least $((n + 1)) '"event":"config-reload"' '"outcome":"ok"' ||
		t_bail "reload with command $1 not accepted"
}

t_cluster
# a password in the conninfo (trust auth ignores it) must reach the command as PGPASSWORD only
sed -i "s/port=$CL_BASE user=postgres/& password=s3cret/" "$CL_DIR/pgvigil.conf"
bk_conf "method = \"command\";
  command = \"true\";"
t_daemon_start
t_wait_primary_found

_set_command "$PG_BIN/pg_basebackup -d '%c' -D %d -X stream -c fast -w -l 'cmd %l'"
out=$(pgvigil backup --wait 2>&1)
check_eq "a pg_basebackup command: pgvigil backup --wait exits 0" 0 "$?"
note "$out"
check_eq "its copy has a manifest: verified" 1 "$(bk_count verified)"
check "the command got the label" grep -q "LABEL: cmd $(bk_label_of 1)" "$CL_DIR/backups/$(bk_label_of 1)/backup_label"
check "the journal says method command" grep -q '"event":"backup","phase":"begin".*"method":"command"' "$CL_DIR/journal.jsonl"

t_tmpdir
printf '#!/bin/sh\necho "$PGPASSWORD $1 $2" >"$3/seen"\n' >"$T_TMP/tool.sh"
_set_command "sh $T_TMP/tool.sh %p %n %d"
pgvigil backup --wait >/dev/null 2>&1
check_eq "a command that leaves no manifest: exit 0" 0 "$?"
check_eq "... listed as unverified" 1 "$(bk_count unverified)"
label=$(bk_label_of 2)
check_eq "the command saw the password in PGPASSWORD, the port and the node" "s3cret $CL_BASE n0" \
	"$(cat "$CL_DIR/backups/$label/seen")"
check_not "no password in the journal or the log" grep -qs s3cret "$CL_DIR/journal.jsonl" "$CL_DIR/pgvigild.log"

_set_command "false"
out=$(pgvigil backup --wait 2>&1)
check_eq "a failing command: exit 1" 1 "$?"
note "$out"
check "backup end failed, failed_step command" journal_find 0 '"event":"backup"' '"phase":"end"' '"outcome":"failed"'
check_wait "nothing left of it" 10 bash -c "! compgen -G '$CL_DIR/backups/*.partial' && ! compgen -G '$CL_DIR/backups/*.deleting'"
check_eq "the two good backups are still listed" 2 "$(bk_list | grep -o '"label"' | wc -l)"

_set_command "nosuchprogram-pgvigil %d"
pgvigil backup --wait >/dev/null 2>&1
check_eq "a command that does not exist: exit 1" 1 "$?"
check "pgvigild still running" t_daemon_alive
rc=0
pgvigild_stop >/dev/null || rc=$?
check_eq "pgvigild exits 0 on SIGTERM (under PGVIGILD_WRAPPER too: no valgrind error)" 0 "$rc"

t_done
