#!/usr/bin/env bash
# A scheduled backup runs, and retention keeps N: with backup.interval_s = 2 and keep = 2 the
# daemon takes backups on its own (trigger schedule), each verified; after the third the oldest
# is deleted (backup-delete journaled, its directory and catalog record gone) and exactly the two
# newest stay listed.
source "$(dirname "$0")/../lib.sh"
source "$T_ROOT/tests/backup_lib.sh"

_gone() { [[ ! -e $CL_DIR/backups/$1 && ! -e $CL_DIR/backups/$1.json && -z $(compgen -G "$CL_DIR/backups/*.deleting") ]]; }

t_cluster
bk_conf 'interval_s = 2; keep = 2;'
t_daemon_start
t_wait_primary_found

check_wait "a scheduled backup ends ok within 30 s" 30 journal_find 0 '"event":"backup"' \
	'"phase":"end"' '"outcome":"ok"'
first=$(bk_label_of 1)
note "first scheduled backup: $first"
check "its trigger is schedule" grep -q '"trigger":"schedule"' <<<"$(bk_list)"
check "pgvigil backup status names the next one" grep -q "next scheduled backup in" <<<"$(pgvigil backup status)"
check_wait "three scheduled backups within 60 s" 60 bk_journal_at_least 3 '"event":"backup"' \
	'"phase":"end"' '"outcome":"ok"'
check_wait "backup-delete journaled for the first" 10 journal_find 0 '"event":"backup-delete"' '"outcome":"ok"'
check "backup-delete names it" grep -q "\"event\":\"backup-delete\".*\"label\":\"$first\"" "$CL_DIR/journal.jsonl"
check_wait "its directory and record are gone" 10 _gone "$first"
rc=0
pgvigild_stop >/dev/null || rc=$?
check_eq "pgvigild exits 0 on SIGTERM (under PGVIGILD_WRAPPER too: no valgrind error)" 0 "$rc"
ends=$(bk_journal_count '"event":"backup"' '"phase":"end"' '"outcome":"ok"')
deletes=$(bk_journal_count '"event":"backup-delete"' '"outcome":"ok"')
note "$ends backups, $deletes deleted"
check_eq "retention keeps 2 verified backups" 2 "$(bk_count verified)"
check_eq "every backup beyond 2 was deleted" $((ends - 2)) "$deletes"
check_eq "nothing else is listed" 2 "$(bk_list | grep -o '"label"' | wc -l)"
check "the two kept are the newest" test "$(bk_label_of 2)" \> "$(bk_label_of 1)" -a "$(bk_label_of 1)" \> "$first"
check "every scheduled backup has the trigger schedule" test \
	"$(bk_journal_count '"event":"backup"' '"phase":"begin"')" -eq \
	"$(grep -c '"event":"backup","phase":"begin".*"trigger":"schedule"' "$CL_DIR/journal.jsonl")"

t_done
