#!/usr/bin/env bash
# An operator opens an incident by hand (marking a moment for the review), sees it in the list,
# cannot open a second one, and closes it; a healthy primary does not close it behind their back.
source "$(dirname "$0")/../lib.sh"

t_cluster
t_daemon_start
t_wait_primary_found

id=$(pgvigil incident open --reason "slow checkout reported by support" 2>&1)
rc=$?
check_eq "incident open exits 0" 0 "$rc"
note "  opened: $id"
check "the id looks like an incident id" grep -qE '^[0-9]{8}T[0-9]{6}Z-[0-9]+$' <<<"$id"
check "incident-open journaled with trigger operator and the reason" \
	journal_find 0 '"event":"incident-open"' "\"incident\":\"$id\""
check "the reason is in the record" grep -q "slow checkout reported by support" "$CL_DIR/journal.jsonl"
check_not "incident open without --reason is a usage error" pgvigil incident open
pgvigil incident open --reason again >/dev/null 2>&1
check_eq "a second incident open is refused (exit 1)" 1 "$?"
# a few probe rounds of a healthy primary must not close it
check_wait "probes keep running (status answers)" 5 pgvigil status
check_not "the incident is still open" journal_find 0 '"event":"incident-close"'
check "incident list shows it open" grep -q "$id.*open" <<<"$(pgvigil incident list)"
pgvigil incident close "20990101T000000Z-1" >/dev/null 2>&1
check_eq "closing another id is refused (exit 1)" 1 "$?"
check "incident close exits 0" pgvigil incident close "$id" --reason "false alarm"
check "incident-close journaled" journal_find 0 '"event":"incident-close"' "\"incident\":\"$id\"" '"outcome":"ok"'
check "incident show has the note" grep -q "false alarm" <<<"$(pgvigil incident show "$id" --json)"

t_done
