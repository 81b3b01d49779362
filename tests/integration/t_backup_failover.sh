#!/usr/bin/env bash
# After a failover a base backup of the new primary exists and verifies: n0 is killed, the
# incident's restore point is skipped (the primary is gone) with the reason, the winner is
# promoted and pgvigild takes a backup of it (trigger promotion, the incident's id, the new
# timeline), verified by pg_verifybackup; the catalog says so and pg_verifybackup agrees when
# run again by hand.  No configuration needed: the backup group is absent.
source "$(dirname "$0")/../lib.sh"
source "$T_ROOT/tests/backup_lib.sh"

t_cluster
t_daemon_start
t_wait_primary_found

cluster_kill n0 || t_bail "cannot kill n0"
note "n0 killed"
check_wait "incident closes within 30 s" 30 journal_find 0 '"event":"incident-close"' ||
	t_bail "no incident-close"
close_line=$(journal_line "$(journal_find 0 '"event":"incident-close"')")
incident=$(json_str "$close_line" incident)
winner=$(json_str "$close_line" new_primary)
note "incident $incident, new primary $winner"
check "restore-point skipped in the incident: the primary is down" journal_find 0 \
	'"event":"restore-point"' '"outcome":"skipped"' "\"incident\":\"$incident\""
check "... with the reason" grep -q '"event":"restore-point".*does not answer as a primary' \
	"$CL_DIR/journal.jsonl"

check_wait "a backup of the new primary ends ok within 60 s" 60 journal_find 0 '"event":"backup"' \
	'"phase":"end"' '"outcome":"ok"' || t_bail "no backup after the promotion"
t_journal_order "the backup begins after the promotion, verifies, ends ok" \
	'"event":"promote"|"phase":"end"|"outcome":"ok"' \
	"\"event\":\"backup\"|\"phase\":\"begin\"|\"node\":\"$winner\"" \
	'"event":"backup-verify"|"phase":"end"|"outcome":"ok"' \
	'"event":"backup"|"phase":"end"|"outcome":"ok"'
end=$(journal_line "$(journal_find 0 '"event":"backup"' '"phase":"end"')")
check "its records belong to the incident" grep -q "\"incident\":\"$incident\"" <<<"$end"
check "its trigger is promotion" grep -q '"trigger":"promotion"' <<<"$end"

list=$(pgvigil backup list --json)
note "$list"
label=$(bk_label_of 1)
check_eq "one backup, verified" "1 1" "$(bk_count verified) $(bk_list | grep -o '"label"' | wc -l)"
check "the catalog names the incident" grep -q "\"incident\":\"$incident\"" <<<"$list"
check "the catalog names the new primary" grep -q "\"node\":\"$winner\"" <<<"$list"
check "it is on the new timeline 2" grep -q '"timeline":2' <<<"$list"
check "its backup_label says timeline 2" grep -q "START TIMELINE: 2" "$CL_DIR/backups/$label/backup_label"
check "pg_verifybackup run by hand agrees" "$PG_BIN/pg_verifybackup" -q "$CL_DIR/backups/$label"
check "pgvigil backup list shows it" grep -q "$label.*verified.*promotion.*$incident" <<<"$(pgvigil backup list)"
check "pgvigil incident show lists the backup" grep -q "backup" <<<"$(pgvigil incident show "$incident")"
check "pgvigild still running" t_daemon_alive
rc=0
pgvigild_stop >/dev/null || rc=$?
check_eq "pgvigild exits 0 on SIGTERM (under PGVIGILD_WRAPPER too: no valgrind error)" 0 "$rc"

t_done
