#!/usr/bin/env bash
# Maintenance and split brain.  Paused, the daemon reports a dead primary but does not fail over,
# and stays paused across a restart; resumed, it fails over.  When the old primary is started
# again by hand (a second primary on the old timeline), the daemon fences it and the endpoint
# stays on the new primary.
source "$(dirname "$0")/../lib.sh"

t_cluster
t_daemon_start
t_wait_primary_found
check "pgvigil pause needs a reason" test "$(pgvigil pause >/dev/null 2>&1; echo $?)" = 2
check "pgvigil pause" pgvigil pause --reason "storage maintenance"
check "the pause is journaled" journal_wait 5 '"event":"maintenance"' '"outcome":"paused"'
check "status says PAUSED" grep -q PAUSED <<<"$(pgvigil status)"
cluster_kill n0
check "the dead primary is reported, failover refused" journal_wait 20 '"event":"failover-refused"'
check_not "nothing was promoted" journal_find 0 '"event":"promote"'
check "n1 is still a standby" cluster_is_standby n1
pgvigild_stop >/dev/null
t_daemon_start
_paused_again() { grep -q '"paused":true' <<<"$(pgvigil status --json)"; }
check_wait "still paused after a restart" 10 _paused_again
check_not "still nothing promoted" journal_find 0 '"event":"promote"'
check "pgvigil resume" pgvigil resume --reason "maintenance done"
check "resumed: the failover happens" journal_wait 30 '"event":"incident-close"' '"outcome":"ok"'
winner=$(json_str "$(journal_line "$(journal_find 0 '"event":"incident-close"')")" node)
check "a standby was promoted" cluster_is_primary "$winner"

# split brain: the old primary started again by hand, as a primary, on the old timeline
cluster_start n0 >/dev/null 2>&1
check "the second primary is seen" journal_wait 30 '"event":"split-brain-suspected"'
check "and the old one fenced" journal_wait 20 '"event":"split-brain-fence"'
line=$(journal_line "$(journal_find 0 '"event":"split-brain-fence"')")
check "fencing n0, keeping $winner" grep -q "\"keep\":\"$winner\".*\"fence\":\"n0\"" <<<"$line"
_n0_down() { ! cluster_psql n0 "SELECT 1" >/dev/null 2>&1; }
check_wait "n0 is stopped" 15 _n0_down
check "PgBouncer still points at $winner" test "$(cluster_bouncer_port app)" = "$(cluster_port "$winner")"

t_done
