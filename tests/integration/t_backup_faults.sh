#!/usr/bin/env bash
# Faults never cost a good backup.  A corrupted file in a finished backup is caught by
# `pgvigil backup verify` (backup-verify failed, the catalog says failed, restore refuses it);
# a backup that does not fit on its disk fails with a clear error and a journal record, its
# partial copy is removed, and the earlier backups are untouched.  The backups live on a small
# tmpfs mounted for the test.
source "$(dirname "$0")/../lib.sh"
source "$T_ROOT/tests/backup_lib.sh"

_no_partial() { [[ -z $(compgen -G "$BK/*.partial") && -z $(compgen -G "$BK/*.deleting") ]]; }

t_cluster
t_tmpdir
chmod 755 "$T_TMP"
BK=$T_TMP/backups
mkdir -p "$BK"
mount -t tmpfs -o size=200m,mode=0700 pgvigil-test "$BK" || t_bail "cannot mount a tmpfs on $BK"
bk_on_exit "umount '$BK'"
bk_conf "directory = \"$BK\"; keep = 5;"
t_daemon_start
t_wait_primary_found

pgvigil backup --wait >/dev/null 2>&1
check_eq "backup A --wait exits 0" 0 "$?"
pgvigil backup --wait >/dev/null 2>&1
check_eq "backup B --wait exits 0" 0 "$?"
A=$(bk_label_of 1)
B=$(bk_label_of 2)
check_eq "both verified" 2 "$(bk_count verified)"
check_eq "pgvigil backup verify A exits 0" 0 "$(pgvigil backup verify "$A" >/dev/null 2>&1; echo $?)"

# flip bytes in the middle of B's largest data file
victim=$(find "$BK/$B/base" -type f -size +16k -printf '%s %p\n' | sort -n | tail -n 1 | cut -d' ' -f2)
note "corrupting $victim"
printf 'pgvigil-corruption' | dd of="$victim" bs=1 seek=8192 conv=notrunc status=none ||
	t_bail "cannot corrupt $victim"
out=$(pgvigil backup verify "$B" 2>&1)
check_eq "pgvigil backup verify B exits 1" 1 "$?"
note "$out"
check "it names the damaged file" grep -q "${victim#"$BK/$B/"}" <<<"$out"
check "backup-verify end failed journaled" journal_find 0 '"event":"backup-verify"' '"phase":"end"' \
	'"outcome":"failed"'
check "the catalog says B failed" grep -q "\"label\":\"$B\",\"status\":\"failed\"" <<<"$(bk_list)"
check "A is still verified" grep -q "\"label\":\"$A\",\"status\":\"verified\"" <<<"$(bk_list)"
pgvigil restore --backup "$B" --to "$T_TMP/r" >/dev/null 2>&1
check_eq "restore of the failed backup: exit 1" 1 "$?"
check "... nothing created" test ! -e "$T_TMP/r"

# a full disk: shrink the tmpfs to what is used plus 4 MB
used_kb=$(df -k --output=used "$BK" | tail -n 1 | tr -d ' ')
mount -o remount,size=$((used_kb + 4096))k "$BK" || t_bail "cannot shrink the tmpfs"
note "backup disk: $(df -h --output=size,used,avail "$BK" | tail -n 1)"
out=$(pgvigil backup --wait 2>&1)
check_eq "a backup that does not fit: exit 1" 1 "$?"
note "$out"
check "the error says the disk is full" grep -qiE "space|No space left" <<<"$out"
check "backup end failed journaled" journal_find 0 '"event":"backup"' '"phase":"end"' '"outcome":"failed"'
check_wait "its partial copy is removed" 10 _no_partial
check "A is still there and verified" grep -q "\"label\":\"$A\",\"status\":\"verified\"" <<<"$(bk_list)"
check "A's directory is intact" "$PG_BIN/pg_verifybackup" -q "$BK/$A"
check "B is still there (failed, kept for inspection)" test -d "$BK/$B"
check_not "no backup-delete was journaled" journal_find 0 '"event":"backup-delete"'
check "pgvigild still running" t_daemon_alive
rc=0
pgvigild_stop >/dev/null || rc=$?
check_eq "pgvigild exits 0 on SIGTERM (under PGVIGILD_WRAPPER too: no valgrind error)" 0 "$rc"

t_done
