#!/usr/bin/env bash
# SIGHUP reloads the configuration: an invalid file is refused (journaled with its errors, the
# running configuration keeps working), a valid one takes effect, as the next failover shows.
source "$(dirname "$0")/../lib.sh"

t_cluster
CONF=$CL_DIR/pgvigil.conf
cp "$CONF" "$CL_DIR/pgvigil.conf.orig"
t_daemon_start
t_wait_primary_found

# 1. an invalid configuration: an out-of-range value and an unknown setting
sed -e 's/interval_ms = 500;/interval_ms = 5;/' -e 's/^journal = {/journal = { colour = "blue";/' \
	"$CL_DIR/pgvigil.conf.orig" >"$CONF"
kill -HUP "$PGVIGILD_PID"
check "the refused reload is journaled" journal_wait 10 '"event":"config-reload"' '"outcome":"refused"'
line=$(journal_line "$(journal_find 0 '"event":"config-reload"' '"outcome":"refused"')")
check "the record names file, line and setting of the bad value" \
	grep -qE "pgvigil.conf:[0-9]+: probe.interval_ms: 5 is out of range" <<<"$line"
check "the record names the unknown setting" grep -qF "journal.colour: unknown setting" <<<"$line"
check "pgvigild keeps running" t_daemon_alive
check "status still answers with the old configuration" pgvigil -c "$CL_DIR/pgvigil.conf.orig" status

# 2. a valid configuration that changes the outcome of the next failover: n1 may not be promoted
sed -e '/name = "n1"/s/priority = [0-9]*/priority = 0/' "$CL_DIR/pgvigil.conf.orig" >"$CONF"
check "the new file names n1 with priority 0" grep -q 'name = "n1".*priority = 0' "$CONF"
kill -HUP "$PGVIGILD_PID"
check "the accepted reload is journaled" journal_wait 10 '"event":"config-reload"' '"outcome":"ok"'
_n1_prio0() { pgvigil status --json | grep -qE '"name":"n1"[^}]*"priority":0'; }
check_wait "status shows n1 with priority 0" 10 _n1_prio0
t_wait_primary_found

cluster_kill n0
check "the failover completes" journal_wait 30 '"event":"incident-close"'
check "n2 was promoted, not n1 (the reloaded priority is in effect)" \
	journal_find 0 '"event":"promote"' '"phase":"end"' '"outcome":"ok"' '"node":"n2"'
check "n2 is a primary" cluster_is_primary n2
check "n1 is still a standby" cluster_is_standby n1
check_wait "n1 streams from n2" 15 cluster_streams_from n1 n2

t_done
