#!/usr/bin/env bash
# Restore drill to an incident's restore point: a base backup, rows written, an incident opened
# by hand (restore point + WAL switch, its LSN journaled, its segment archived), more rows
# written; `pgvigil restore --incident ID --start` builds a copy that holds exactly the rows
# committed before the incident.  Then the refusals (non-empty target, unknown incident or
# backup, bad arguments) change nothing, and with backup.restore_points off a restore point is
# journaled as skipped.
source "$(dirname "$0")/../lib.sh"
source "$T_ROOT/tests/backup_lib.sh"

_tcp_listening() { ss -Hltn "sport = :$1" | grep -q .; }

t_cluster
bk_conf ''
RPORT=$((CL_BASE + 5))
t_tmpdir
chmod 755 "$T_TMP" # the postgres user must reach the copies made in it
RDIR=$T_TMP/copy
bk_on_exit "bk_restored_stop '$RDIR'"
t_daemon_start
t_wait_primary_found

out=$(pgvigil backup --wait 2>&1)
check_eq "pgvigil backup --wait exits 0" 0 "$?"
note "$out"
check "the backup is listed as verified" test "$(bk_count verified)" -eq 1
label=$(bk_label_of 1)
t_journal_order "journal: backup begin, backup-verify end ok, backup end ok" \
	'"event":"backup"|"phase":"begin"' '"event":"backup-verify"|"phase":"end"|"outcome":"ok"' \
	'"event":"backup"|"phase":"end"|"outcome":"ok"'
check "the backup holds backup_label and backup_manifest" test -f "$CL_DIR/backups/$label/backup_label" -a \
	-f "$CL_DIR/backups/$label/backup_manifest"
check_not "no .partial directory is left" compgen -G "$CL_DIR/backups/*.partial"

cluster_psql n0 "CREATE TABLE drill (x int); INSERT INTO drill SELECT generate_series(1, 100)" >/dev/null ||
	t_bail "cannot write on n0"
id=$(pgvigil incident open --reason "restore drill" 2>&1) || t_bail "incident open failed: $id"
note "incident $id"
cluster_psql n0 "INSERT INTO drill SELECT generate_series(101, 150)" >/dev/null || t_bail "cannot write"

check "restore-point end ok in the incident" journal_find 0 '"event":"restore-point"' '"phase":"end"' \
	'"outcome":"ok"' "\"incident\":\"$id\""
rp=$(journal_line "$(journal_find 0 '"event":"restore-point"' '"phase":"end"')")
rp_lsn=$(json_str "$rp" lsn)
rp_wal=$(json_str "$rp" wal_file)
note "restore point at $rp_lsn in $rp_wal"
check_eq "it is named after the incident" "pgvigil-$id" "$(json_str "$rp" name)"
check "its LSN is a WAL position the primary has passed" test \
	"$(cluster_psql n0 "SELECT pg_current_wal_lsn() >= '$rp_lsn'::pg_lsn")" = t
check_wait "restore-point-archived ok" 30 journal_find 0 '"event":"restore-point-archived"' '"outcome":"ok"'
check "its WAL segment is in the archive" test -s "$CL_DIR/wal-archive/$rp_wal"

t0=${EPOCHREALTIME//[.,]/}
rout=$(pgvigil restore --incident "$id" --to "$RDIR" --start --port "$RPORT" 2>&1)
rc=$?
t1=${EPOCHREALTIME//[.,]/}
check_eq "pgvigil restore --incident --start exits 0" 0 "$rc"
note "$rout"
note "restore drill took $(((t1 - t0) / 1000)) ms"
check "it names the restore point and what it recovered to" grep -q "recovered to: LSN" <<<"$rout"
check "the server stopped at the restore point" grep -q "recovery stopping at restore point \"pgvigil-$id\"" <<<"$rout"
check_eq "the copy holds exactly the 100 rows committed before the incident" 100 \
	"$(bk_psql_restored "$RDIR" "$RPORT" "SELECT count(*) FROM drill" 2>&1)"
check_eq "the primary holds all 150" 150 "$(cluster_psql n0 "SELECT count(*) FROM drill")"
check_eq "the copy is paused in recovery" "t|paused" \
	"$(bk_psql_restored "$RDIR" "$RPORT" "SELECT pg_is_in_recovery(), pg_get_wal_replay_pause_state()" | tr -d ' ')"
check_eq "the copy does not archive" off "$(bk_psql_restored "$RDIR" "$RPORT" "SHOW archive_mode")"
check_eq "the copy is owned by postgres, mode 700" "postgres 700" "$(stat -c '%U %a' "$RDIR")"
check_not "the copy listens on no TCP port" _tcp_listening "$RPORT"
bk_restored_stop "$RDIR"
check "the copy stopped" test ! -f "$RDIR/postmaster.pid"

# refusals: nothing changes
before=$(find "$RDIR" | wc -l)
pgvigil restore --incident "$id" --to "$RDIR" >/dev/null 2>&1
check_eq "restore into a non-empty directory: exit 1" 1 "$?"
check_eq "... and nothing in it changed" "$before" "$(find "$RDIR" | wc -l)"
pgvigil restore --incident 20990101T000000Z-1 --to "$T_TMP/x" >/dev/null 2>&1
check_eq "unknown incident: exit 1" 1 "$?"
pgvigil restore --backup nope --to "$T_TMP/x" >/dev/null 2>&1
check_eq "unknown backup: exit 1" 1 "$?"
check "... and the target was not created" test ! -e "$T_TMP/x"
pgvigil restore --backup "$label" --to "$T_TMP/x" --start >/dev/null 2>&1
check_eq "--start without --port: exit 2" 2 "$?"
pgvigil restore --incident "$id" --backup "$label" --to "$T_TMP/x" >/dev/null 2>&1
check_eq "--incident and --backup together: exit 2" 2 "$?"
pgvigil restore --backup "$label" --target-lsn nonsense --to "$T_TMP/x" >/dev/null 2>&1
check_eq "a malformed --target-lsn: exit 2" 2 "$?"

# a target name that is not in the WAL: the copy never reaches it, and is removed again
pgvigil restore --backup "$label" --target-name no-such-point --to "$T_TMP/y" --start \
	--port "$RPORT" --timeout 60 >"$T_TMP/missing.out" 2>&1
check_eq "a restore point that does not exist: exit 1" 1 "$?"
note "$(tail -n 5 "$T_TMP/missing.out")"
check "... saying why" grep -q "recovery ended before configured recovery target was reached" "$T_TMP/missing.out"
check "... and the copy is gone" test ! -e "$T_TMP/y"

# pgvigil backup list works without the daemon; restore points can be turned off
pgvigil incident close "$id" --reason done >/dev/null || t_bail "incident close failed"
sed -i "s|^  archive_dir = |  restore_points = \"off\"; archive_dir = |" "$CL_DIR/pgvigil.conf"
kill -HUP "$PGVIGILD_PID"
check_wait "the reload is accepted" 10 journal_find 0 '"event":"config-reload"' '"outcome":"ok"'
id2=$(pgvigil incident open --reason "no restore point" 2>&1)
check "with restore_points off: restore-point skipped" journal_find 0 '"event":"restore-point"' \
	'"outcome":"skipped"' "\"incident\":\"$id2\""
rc=0
pgvigild_stop >/dev/null || rc=$?
check_eq "pgvigild exits 0 on SIGTERM (under PGVIGILD_WRAPPER too: no valgrind error)" 0 "$rc"
check "pgvigil backup list works with the daemon stopped" grep -q "$label" <<<"$(pgvigil backup list)"
pgvigil backup >/dev/null 2>&1
check_eq "pgvigil backup without a daemon: exit 1" 1 "$?"

t_done
