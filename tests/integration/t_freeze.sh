#!/usr/bin/env bash
# A hung primary (every process SIGSTOPped, by pid): a 2-second freeze is ridden out and
# journaled as a blip; a freeze for good is failed over, and when the old primary wakes up it
# takes no writes through the endpoint.  The standbys' wal_receiver_timeout is 5 s (test cluster).
source "$(dirname "$0")/../lib.sh"

t_cluster
t_daemon_start
t_wait_primary_found
_hb_seen() { pgvigil status --json | grep -q '"write":"ok"'; }
check_wait "the heartbeat writes on the primary" 10 _hb_seen
_standby_fresh() { pgvigil status --json | grep -q '"heartbeat_age_ms":[0-9]'; }
check_wait "the standbys' heartbeat copies are tracked" 10 _standby_fresh

# 1. a 2-second freeze
cluster_freeze n0
t0=$(_cl_now_ms)
_suspect() { journal_find 0 '"event":"primary-suspect"'; }
check_wait "the frozen primary is suspected" 5 _suspect
# the scenario itself is a freeze of two seconds (not a wait for a result)
sleep "$(awk -v t0="$t0" -v now="$(_cl_now_ms)" 'BEGIN { d = (2000 - (now - t0)) / 1000; print (d > 0 ? d : 0) }')"
cluster_thaw n0
check "the blip is journaled" journal_wait 15 '"event":"primary-blip"' '"outcome":"recovered"'
check_not "no incident was opened" journal_find 0 '"event":"incident-open"'
check "n0 is still the primary" cluster_is_primary n0

# 2. a freeze for good
cluster_freeze n0
t0=$(_cl_now_ms)
check "the frozen primary is failed over" journal_wait 30 '"event":"incident-close"' '"outcome":"ok"'
close=$(journal_line "$(journal_find 0 '"event":"incident-close"')")
winner=$(json_str "$close" node)
note "  new primary: $winner, incident closed at most $(($(_cl_now_ms) - t0)) ms after the freeze"
check "a standby was promoted" cluster_is_primary "$winner"
decision=$(journal_line "$(journal_find 0 '"event":"failover-decision"')")
check "the decision counted no standby still hearing n0" grep -q '"standbys_seeing_primary":0' <<<"$decision"
check "PgBouncer points at $winner" test "$(cluster_bouncer_port app)" = "$(cluster_port "$winner")"

cluster_thaw n0
# whatever n0 does once awake, the endpoint does not lead to it
check "a write through PgBouncer succeeds after the thaw" \
	cluster_psql app "CREATE TABLE IF NOT EXISTS after_thaw (x int); INSERT INTO after_thaw VALUES (1)"
check "the write landed on $winner" test "$(cluster_psql "$winner" "SELECT count(*) FROM after_thaw")" = 1
check "PgBouncer still points at $winner" test "$(cluster_bouncer_port app)" = "$(cluster_port "$winner")"

t_done
