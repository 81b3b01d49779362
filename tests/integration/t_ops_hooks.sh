#!/usr/bin/env bash
# Hooks and metrics through a real failover: n0 is SIGKILLed as in t_failover_kill.sh.  A hook
# script records its argv and environment into a file: hooks.on_incident runs for
# incident-open and incident-close, hooks.on_failover for promoted, each with the documented
# PGVIGIL_* variables; each run is a journaled "hook" begin/end pair with exit status and
# output; a hook that outlives hooks.timeout_ms is killed and journaled as timeout; the
# failover itself does not wait for any of them.  Afterwards /metrics counts the failover and
# /primary names the winner, and pgvigil journal verify finds the chain intact.
source "$(dirname "$0")/../lib.sh"

command -v curl >/dev/null || t_bail "curl is not installed"
t_cluster
t_tmpdir
PORT=$((CL_BASE + 5))
URL=http://127.0.0.1:$PORT
ENVDIR=$T_TMP/hook-env
mkdir -p "$ENVDIR"
HOOK=$T_TMP/record-env.sh
SLOW=$T_TMP/slow-failover.sh
cat >"$HOOK" <<EOF
#!/bin/sh
{ echo "argc=\$#"; env | grep '^PGVIGIL_' | sort; } >"$ENVDIR/\$PGVIGIL_EVENT.env"
echo "recorded \$PGVIGIL_EVENT"
EOF
# the failover hook records too, then hangs past its deadline
cat >"$SLOW" <<EOF
#!/bin/sh
"$HOOK"
sleep 60
EOF
chmod 755 "$HOOK" "$SLOW"
chmod 755 "$T_TMP"
cat >>"$CL_DIR/pgvigil.conf" <<EOF
metrics = { listen = "127.0.0.1:$PORT"; };
hooks = { on_incident = "$HOOK"; on_failover = "$SLOW"; timeout_ms = 1500; };
EOF

metric() { curl -s --max-time 5 "$URL/metrics" | grep -qxF "$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL$1"; }
_hook_ends() { (($(grep -c '"event":"hook","phase":"end"' "$CL_DIR/journal.jsonl") >= $1)); }
# block EVENT: the hook environment recorded for that event
block() { cat "$ENVDIR/$1.env"; }

t_daemon_start
t_wait_primary_found
check_wait "metrics up before the failover" 10 metric 'pgvigil_failovers_total 0'

cluster_kill n0 || t_bail "cannot kill n0"
note "n0 killed"
check_wait "incident closes within 30 s of the kill" 30 journal_find 0 '"event":"incident-close"' ||
	t_bail "no incident-close"
close_line=$(journal_line "$(journal_find 0 '"event":"incident-close"')")
incident=$(json_str "$close_line" incident)
winner=$(json_str "$close_line" new_primary)
note "incident $incident, new primary $winner"
[[ $winner == n1 || $winner == n2 ]] || t_bail "no winner in incident-close"

check_wait "three hook runs end (incident-open, promoted, incident-close)" 20 _hook_ends 3
t_journal_order "journal: incident-open, promote end, then the hook runs begin" \
	'"event":"incident-open"' \
	'"event":"promote"|"phase":"end"|"outcome":"ok"' \
	'"event":"hook"|"phase":"begin"' \
	'"event":"hook"|"phase":"end"'
check "the promotion did not wait for a hook: promote ends before any hook begins" \
	bash -c "(( \$(grep -n '\"event\":\"promote\",\"phase\":\"end\"' '$CL_DIR/journal.jsonl' | cut -d: -f1) < \$(grep -n '\"event\":\"hook\",\"phase\":\"begin\"' '$CL_DIR/journal.jsonl' | head -1 | cut -d: -f1) ))"
check "hook begin records carry the incident id" journal_find 0 '"event":"hook"' '"phase":"begin"' "\"incident\":\"$incident\""
check "the on_incident runs end ok" \
	bash -c "[[ \$(grep '\"event\":\"hook\",\"phase\":\"end\"' '$CL_DIR/journal.jsonl' | grep -c '\"outcome\":\"ok\".*\"hook\":\"on_incident\"') == 2 ]]"
check "their output is journaled" grep -q '"stdout":"recorded incident-open\\n"' "$CL_DIR/journal.jsonl"
check "the on_failover run ends timeout, killed by SIGTERM" \
	grep -qE '"event":"hook","phase":"end".*"outcome":"timeout".*"hook":"on_failover","exit_status":null,"signal":15' "$CL_DIR/journal.jsonl"

check "each hook recorded its environment" test -s "$ENVDIR/incident-open.env" -a -s "$ENVDIR/promoted.env" -a -s "$ENVDIR/incident-close.env"
check "argv is the program only" bash -c "! grep -qh '^argc=[1-9]' '$ENVDIR'/*.env"
for ev in incident-open promoted incident-close; do
	check "$ev: PGVIGIL_EVENT" grep -qx "PGVIGIL_EVENT=$ev" <(block "$ev")
	check "$ev: PGVIGIL_INCIDENT" grep -qx "PGVIGIL_INCIDENT=$incident" <(block "$ev")
	check "$ev: PGVIGIL_CLUSTER" grep -qx "PGVIGIL_CLUSTER=test" <(block "$ev")
	check "$ev: PGVIGIL_JOURNAL" grep -qx "PGVIGIL_JOURNAL=$CL_DIR/journal.jsonl" <(block "$ev")
	check "$ev: PGVIGIL_CONFIG" grep -qx "PGVIGIL_CONFIG=$CL_DIR/pgvigil.conf" <(block "$ev")
	check "$ev: PGVIGIL_OLD_PRIMARY" grep -qx "PGVIGIL_OLD_PRIMARY=n0" <(block "$ev")
	check "$ev: PGVIGIL_SEQ" grep -qE "^PGVIGIL_SEQ=[1-9][0-9]*$" <(block "$ev")
done
check "incident-open: PGVIGIL_HOOK=on_incident" grep -qx "PGVIGIL_HOOK=on_incident" <(block incident-open)
check "incident-open: PGVIGIL_NODE is the old primary" grep -qx "PGVIGIL_NODE=n0" <(block incident-open)
check "incident-open: no new primary yet" grep -qx "PGVIGIL_NEW_PRIMARY=" <(block incident-open)
check "promoted: PGVIGIL_HOOK=on_failover" grep -qx "PGVIGIL_HOOK=on_failover" <(block promoted)
check "promoted: PGVIGIL_NODE is the winner" grep -qx "PGVIGIL_NODE=$winner" <(block promoted)
check "promoted: PGVIGIL_NEW_PRIMARY is the winner" grep -qx "PGVIGIL_NEW_PRIMARY=$winner" <(block promoted)
check "incident-close: PGVIGIL_NEW_PRIMARY is the winner" grep -qx "PGVIGIL_NEW_PRIMARY=$winner" <(block incident-close)
seq_open=$(block incident-open | sed -n 's/^PGVIGIL_SEQ=//p')
check "incident-open: PGVIGIL_SEQ names the incident-open record" \
	journal_find 0 "\"seq\":$seq_open," '"event":"incident-open"'
seq_close=$(block incident-close | sed -n 's/^PGVIGIL_SEQ=//p')
check "incident-close: PGVIGIL_SEQ names the incident-close record" \
	journal_find 0 "\"seq\":$seq_close," '"event":"incident-close"'

check_wait "metrics: pgvigil_failovers_total 1" 10 metric 'pgvigil_failovers_total 1'
check 'metrics: pgvigil_incidents_total 1' metric 'pgvigil_incidents_total 1'
check 'metrics: pgvigil_incident_open 0' metric 'pgvigil_incident_open 0'
check 'metrics: pgvigil_last_failover_duration_ms' \
	bash -c "curl -s '$URL/metrics' | grep -qE '^pgvigil_last_failover_duration_ms [0-9]+$'"
check "metrics: $winner is the primary" metric "pgvigil_node_is_primary{node=\"$winner\"} 1"
check 'metrics: n0 is the failed former primary' metric 'pgvigil_node_failed_primary{node="n0"} 1'
check_eq "/primary/$winner: 200" 200 "$(code "/primary/$winner")"
check_eq "/primary/n0: 503" 503 "$(code /primary/n0)"
check_eq "/primary names $winner" "$winner" "$(curl -s "$URL/primary")"

check "pgvigil journal verify: the chain is intact" pgvigil journal verify
check "pgvigild still running" t_daemon_alive
rc=0
pgvigild_stop || rc=$?
check_eq "pgvigild exits 0 on SIGTERM" 0 "$rc"

t_done
