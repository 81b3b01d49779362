#!/usr/bin/env bash
# Crash-safe failover: pgvigild is made to die (a test-only fault point, PGVIGIL_FAULT_AFTER,
# ends it right after a given journal record is on disk) at each step of a failover; restarted,
# it finds the open incident in the journal and finishes it: exactly one standby promoted,
# PgBouncer pointing at it, the other standby following it, the incident closed.
source "$(dirname "$0")/../lib.sh"

one() {
	local fault=$1
	note "=== crash after $fault"
	t_cluster
	PGVIGILD_WRAPPER="env PGVIGIL_FAULT_AFTER=$fault" pgvigild_start
	_up() { journal_find 0 '"event":"primary-found"' >/dev/null; }
	wait_for 20 _up || t_bail "no primary-found"
	cluster_kill n0
	_died() { ! _cl_alive "$PGVIGILD_PID"; }
	check_wait "[$fault] pgvigild dies at the fault point" 30 _died
	local ev=${fault%%:*} ph=${fault##*:}
	check "[$fault] the journal ends with that record" \
		grep -q "\"event\":\"$ev\",\"phase\":\"$ph\"" <<<"$(tail -n 1 "$CL_DIR/journal.jsonl")"
	pgvigild_stop >/dev/null 2>&1
	t_daemon_start
	check "[$fault] the restarted daemon resumes the incident" journal_wait 10 '"event":"incident-resume"'
	check "[$fault] and closes it" journal_wait 30 '"event":"incident-close"'
	local promoted
	promoted=$(grep '"event":"promote","phase":"begin"' "$CL_DIR/journal.jsonl" | grep -oE '"node":"n[0-9]"' | sort -u | wc -l)
	check_eq "[$fault] promotions began on exactly one node" 1 "$promoted"
	local p=0 w=
	for n in n1 n2; do cluster_is_primary "$n" && { p=$((p + 1)); w=$n; }; done
	check_eq "[$fault] exactly one primary among n1, n2" 1 "$p"
	if [[ -n $w ]]; then
	check "[$fault] PgBouncer points at $w" test "$(cluster_bouncer_port app)" = "$(cluster_port "$w")"
	check "[$fault] a write through PgBouncer works" cluster_psql app "CREATE TABLE IF NOT EXISTS r (x int); INSERT INTO r VALUES (1)"
	local other=n1
	[[ $w == n1 ]] && other=n2
	check_wait "[$fault] $other streams from $w" 20 cluster_streams_from "$other" "$w"
	fi
	pgvigild_stop >/dev/null 2>&1
	cluster_destroy "$CL_DIR" >/dev/null 2>&1
	T_CLUSTER=
}

for f in failover-decision:event fence:end promote:begin promote:end endpoint-switch:end repoint:end; do
	one "$f"
done

t_done
