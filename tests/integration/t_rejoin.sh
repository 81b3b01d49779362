#!/usr/bin/env bash
# t_rejoin: pgvigil rejoin brings a failed old primary back as a streaming standby of the
# current primary.  Three rounds, each a SIGKILL of the primary and pgvigild's failover, then
# a split-brain write on the old primary (started by hand, alone, on a side port) before the
# rejoin, which must throw that write away:
#   1. the old primary crashed again after its write (SIGKILL, postmaster.pid left, control
#      file "in production"): pg_rewind, crash recovery included;
#   2. its WAL since the fork is gone (segments switched and removed): pg_rewind fails and the
#      rejoin falls back to a base backup, the old data directory moved aside and kept;
#   3. it ran with wal_log_hints = off: pg_rewind is skipped, base backup at once; and an
#      earlier rejoin was interrupted after pg_rewind began (its saved copy of the node's
#      configuration files is used, not the primary's in the data directory).
# Every time: the node is in recovery, streams from the new primary, has its own port and
# application_name, a write on the new primary reaches it, the journal tells each step, and
# a former primary is a failover candidate again (round 2's winner may be round 1's node).
# Refusals first (the current primary, an unknown node, no --reason, while nothing changes)
# and --dry-run (prints the plan, changes nothing); last, pgvigild stopped while a rejoin waits
# in its verify step, and a node whose data directory is gone (a fresh base backup with its
# saved configuration files).  Prints the rewind and base backup times.
source "$(dirname "$0")/../lib.sh"

SIDE_PORT=
_sum() { cat "$@" 2>/dev/null | md5sum | cut -d' ' -f1; }
_rejoin_records() { grep -c '"event":"rejoin' "$CL_DIR/journal.jsonl"; }
_count() { cluster_psql "$1" "SELECT count(*) FROM t WHERE x = $2" 2>/dev/null; }
_has_row() { [[ $(_count "$1" "$2") == 1 ]]; }
_status_not_failed() {
	local s
	s=$(pgvigil status --json 2>/dev/null) || return 1
	[[ $s =~ \"name\":\"$1\"[^}]*\"failed_primary\":false ]]
}
_app_streams() {
	[[ $(cluster_psql "$1" "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$2' AND state = 'streaming'") == 1 ]]
}
# _side NODE OPTS SQL: starts NODE by hand, alone, on the side port (pgvigild does not probe
# it there), runs SQL on it.  The caller stops or kills it.
_side() {
	local node=$1 opts=$2 sql=$3
	_cl_pg "$PG_BIN/pg_ctl" -D "$CL_DIR/$node" -o "-p $SIDE_PORT -c archive_mode=off $opts" \
		-l "$CL_DIR/$node-side.log" -w -t 30 -s start || return 1
	_cl_pg env PGCONNECT_TIMEOUT=3 timeout 10 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$SIDE_PORT" -U postgres -d postgres -c "$sql"
}
_side_stop() { _cl_pg "$PG_BIN/pg_ctl" -D "$CL_DIR/$1" -m fast -w -t 30 -s stop; }
# the step's duration from the last rejoin-step end record of that step
_step_ms() {
	local line
	line=$(grep '"event":"rejoin-step","phase":"end"' "$CL_DIR/journal.jsonl" | grep "\"step\":\"$1\"" | tail -n 1)
	json_num "$line" duration_ms
}

# fail_over VICTIM: SIGKILL the primary VICTIM, wait for the incident to close; sets WINNER.
fail_over() {
	local victim=$1 from n decision
	from=$(wc -l <"$CL_DIR/journal.jsonl")
	cluster_kill "$victim" || t_bail "cannot kill $victim"
	n=$(wait_for 40 journal_find "$from" '"event":"incident-close"' && journal_find "$from" '"event":"incident-close"') ||
		t_bail "no incident-close within 40 s of killing $victim"
	check "round $ROUND: the failover from $victim ends ok" journal_find "$from" '"event":"incident-close"' '"outcome":"ok"'
	decision=$(journal_line "$(journal_find "$from" '"event":"failover-decision"')")
	WINNER=$(json_str "$decision" winner)
	[[ -n $WINNER && $WINNER != "$victim" ]] || t_bail "no winner in the failover from $victim"
	note "round $ROUND: $victim killed, $WINNER promoted"
	wait_for 20 _status_primary "$WINNER" || t_bail "pgvigild does not report $WINNER as primary"
}
_status_primary() {
	local s
	s=$(pgvigil status --json 2>/dev/null) || return 1
	[[ $(json_str "$s" primary) == "$1" ]]
}

# rejoin_ok NODE METHOD SPLITROW: pgvigil rejoin NODE succeeds with METHOD and NODE is a
# healthy standby of WINNER without the split-brain row.
rejoin_ok() {
	local node=$1 method=$2 row=$3 from out rc
	from=$(wc -l <"$CL_DIR/journal.jsonl")
	out=$(pgvigil rejoin "$node" --reason "round $ROUND: back after the failover" 2>&1)
	rc=$?
	note "$out"
	check_eq "round $ROUND: pgvigil rejoin $node exits 0" 0 "$rc"
	check "round $ROUND: it says $node streams from $WINNER by $method" \
		grep -q "^$node streams from $WINNER ($method, " <<<"$out"
	check "round $ROUND: $node is in recovery" cluster_is_standby "$node"
	check "round $ROUND: $node streams from $WINNER" cluster_streams_from "$node" "$WINNER"
	check "round $ROUND: $WINNER sees application_name $node streaming" _app_streams "$WINNER" "$node"
	check_eq "round $ROUND: the split-brain row is gone from $node" 0 "$(_count "$node" "$row")"
	check_eq "round $ROUND: the row written before the first kill is there" 1 "$(_count "$node" 42)"
	local w=$((ROUND * 1000))
	cluster_psql "$WINNER" "INSERT INTO t VALUES ($w)" >/dev/null
	check_wait "round $ROUND: a write on $WINNER reaches $node" 10 _has_row "$node" "$w"
	check_eq "round $ROUND: $node keeps its own port" "port = $(cluster_port "$node")" \
		"$(grep -E '^port = ' "$CL_DIR/$node/postgresql.conf" | tail -n 1)"
	check_eq "round $ROUND: postgresql.auto.conf has one primary_conninfo, application_name $node" \
		"1 1 0" "$(grep -c '^primary_conninfo' "$CL_DIR/$node/postgresql.auto.conf") $(grep -c "application_name=''$node''" "$CL_DIR/$node/postgresql.auto.conf") $(grep -c '^primary_slot_name' "$CL_DIR/$node/postgresql.auto.conf")"
	check "round $ROUND: standby.signal is there" test -f "$CL_DIR/$node/standby.signal"
	check_wait "round $ROUND: pgvigil status shows $node no longer as a failed primary" 10 _status_not_failed "$node"
	local steps=('"event":"rejoin"|"phase":"begin"'
		'"event":"rejoin-step"|"phase":"begin"|"node":"'"$node"'"'
		'"event":"rejoin-step"|"phase":"end"|"outcome":"ok"')
	t_journal_order "round $ROUND: journal: rejoin begin, steps, rejoin end ok" "${steps[@]}" \
		'"event":"rejoin"|"phase":"end"|"outcome":"ok"|"node":"'"$node"'"'
	for s in stop checkpoint "$method" configure start verify; do
		check "round $ROUND: journal: step $s ended ok" \
			grep -q "\"event\":\"rejoin-step\",\"phase\":\"end\",\"node\":\"$node\",\"outcome\":\"ok\".*\"step\":\"$s\"" \
			<(tail -n +"$((from + 1))" "$CL_DIR/journal.jsonl")
	done
}

t_cluster
SIDE_PORT=$((CL_BASE + 5))
_cl_port_free "$SIDE_PORT" || t_bail "port $SIDE_PORT is in use"
PG_HOME=$(getent passwd postgres | cut -d: -f6)
_saved() { echo "$PG_HOME/.pgvigil-rejoin/${1//[^A-Za-z0-9._-]/_}"; }
cluster_psql n0 "CREATE TABLE t (x int); INSERT INTO t VALUES (42)" >/dev/null || t_bail "cannot write on n0"
{ cluster_wait_replayed n1 && cluster_wait_replayed n2; } || t_bail "standbys did not replay"
t_daemon_start
t_wait_primary_found

# --- refusals and the dry run: nothing changes ---------------------------------------------
ROUND=0
before=$(_rejoin_records)
out=$(pgvigil rejoin n0 --reason test 2>&1)
check_eq "rejoin of the current primary: exit 1" 1 "$?"
check "it says n0 is the current primary" grep -q "rejoin refused: n0 is the current primary" <<<"$out"
out=$(pgvigil rejoin n7 --reason test 2>&1)
check_eq "rejoin of an unknown node: exit 2" 2 "$?"
check "it says there is no such node" grep -q "no such node n7" <<<"$out"
out=$(pgvigil rejoin n1 2>&1)
check_eq "rejoin without --reason: exit 2" 2 "$?"
check "it asks for a reason" grep -q -- "--reason TEXT is required" <<<"$out"
pid1=$(cluster_postmaster_pid n1)
sum1=$(_sum "$CL_DIR"/n1/*.conf "$CL_DIR/n1/standby.signal")
out=$(pgvigil rejoin n1 --dry-run --reason drill 2>&1)
check_eq "rejoin --dry-run of a standby: exit 0" 0 "$?"
note "$out"
check "the plan names every step" bash -c 'for s in stop checkpoint rewind basebackup configure start verify; do grep -q "[0-9]\. $s" <<<"$1" || exit 1; done' _ "$out"
check_eq "the dry run left n1 running (same postmaster)" "$pid1" "$(cluster_postmaster_pid n1)"
check_eq "the dry run left n1's files alone" "$sum1" "$(_sum "$CL_DIR"/n1/*.conf "$CL_DIR/n1/standby.signal")"
check_eq "refusals and the dry run journal no rejoin" "$before" "$(_rejoin_records)"
check "n1 still streams from n0" cluster_streams_from n1 n0

# --- round 1: crashed after a split-brain write: pg_rewind with crash recovery --------------
ROUND=1
fail_over n0
old1=$WINNER
_side n0 "" "INSERT INTO t VALUES (661)" >/dev/null || t_bail "cannot start n0 on the side port"
pm=$(head -n 1 "$CL_DIR/n0/postmaster.pid")
_cl_kill_tree "$pm" || t_bail "cannot SIGKILL the side n0"
check "round 1: n0 crashed: postmaster.pid left behind" test -f "$CL_DIR/n0/postmaster.pid"
check "round 1: n0's control file says in production" \
	bash -c "'$PG_BIN/pg_controldata' '$CL_DIR/n0' | grep -q 'in production'"
sum0=$(_sum "$CL_DIR"/n0/*.conf)
before=$(_rejoin_records)
out=$(pgvigil rejoin n0 --dry-run --reason drill 2>&1)
check_eq "round 1: rejoin --dry-run exits 0" 0 "$?"
check "round 1: the dry run names $WINNER" grep -q "as a standby of $WINNER" <<<"$out"
check_eq "round 1: the dry run changed no file and journaled nothing" "$sum0 $before" "$(_sum "$CL_DIR"/n0/*.conf) $(_rejoin_records)"
check_not "round 1: n0 still down after the dry run" cluster_postmaster_pid n0
rejoin_ok n0 rewind 661
check "round 1: journal: the stop step saw the crash" \
	grep -q '"event":"rejoin-step","phase":"end","node":"n0".*"cluster_state":"in production"' "$CL_DIR/journal.jsonl"
REWIND_MS=$(_step_ms rewind)
check_not "round 1: the saved configuration files are gone" test -e "$(_saved "$CL_DIR/n0")"
out=$(pgvigil rejoin "$WINNER" --reason test 2>&1)
check_eq "round 1: rejoin of the new primary $WINNER: exit 1" 1 "$?"

# --- round 2: its WAL since the fork is gone: pg_rewind fails, base backup --------------------
ROUND=2
fail_over "$old1"
victim=$old1
_side "$victim" "" "INSERT INTO t VALUES (662); SELECT pg_switch_wal(); INSERT INTO t VALUES (0); SELECT pg_switch_wal()" >/dev/null ||
	t_bail "cannot start $victim on the side port"
_side_stop "$victim" || t_bail "cannot stop the side $victim"
# keep only the newest WAL segment: what pg_rewind needs from the fork on is gone
segs=$(find "$CL_DIR/$victim/pg_wal" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' | sort)
newest=$(tail -n 1 <<<"$segs")
while read -r f; do [[ -n $f && $f != "$newest" ]] && rm -f "$f"; done <<<"$segs"
note "round 2: kept only $(basename "$newest") in $victim/pg_wal"
rejoin_ok "$victim" basebackup 662
check "round 2: the rewind step failed first" \
	grep -q "\"event\":\"rejoin-step\",\"phase\":\"end\",\"node\":\"$victim\",\"outcome\":\"failed\".*\"step\":\"rewind\"" "$CL_DIR/journal.jsonl"
aside=$(ls -d "$CL_DIR/$victim".pgvigil-old-* 2>/dev/null | head -n 1)
check "round 2: the old data directory is kept aside" test -f "$aside/PG_VERSION"
check "round 2: the journal names it" grep -qF "\"moved_aside_to\":\"$aside\"" "$CL_DIR/journal.jsonl"
BASEBACKUP_MS=$(_step_ms basebackup)

# --- round 3: it ran without wal_log_hints: rewind skipped, base backup ----------------------
ROUND=3
victim=$WINNER
fail_over "$victim"
_side "$victim" "-c wal_log_hints=off" "INSERT INTO t VALUES (663)" >/dev/null || t_bail "cannot start $victim on the side port"
_side_stop "$victim" || t_bail "cannot stop the side $victim"
# as if an earlier rejoin had been interrupted once pg_rewind began: its marked copy of the
# node's own files, and the primary's postgresql.conf (another port) in the data directory
saved=$(_saved "$CL_DIR/$victim")
_cl_pg mkdir -p -m 700 "$saved"
_cl_pg sh -c "cp -p '$CL_DIR/$victim'/*.conf '$saved/' && touch '$saved/.overwritten'"
_cl_pg cp "$CL_DIR/$WINNER/postgresql.conf" "$CL_DIR/$victim/postgresql.conf"
rejoin_ok "$victim" basebackup 663
check "round 3: the files an interrupted rejoin saved were used" \
	grep -q "\"event\":\"rejoin-step\",\"phase\":\"end\",\"node\":\"$victim\".*configuration files an interrupted rejoin saved" "$CL_DIR/journal.jsonl"
check_not "round 3: and removed once used" test -e "$saved"
check "round 3: the rewind step was skipped (no wal_log_hints, no checksums)" \
	grep -q "\"event\":\"rejoin-step\",\"phase\":\"event\",\"node\":\"$victim\",\"outcome\":\"skipped\".*\"step\":\"rewind\"" "$CL_DIR/journal.jsonl"

# --- round 4: pgvigild stops while a rejoin waits for streaming ------------------------------
# The primary refuses replication connections, so the rejoined node cannot stream and the
# verify step waits; pgvigild is stopped meanwhile: the client gets its answer, the journal
# the end records, and the node streams by itself once replication is allowed again.
ROUND=4
node=$victim
t_tmpdir
sed -i '1i host replication all 127.0.0.1/32 reject' "$CL_DIR/$WINNER/pg_hba.conf"
cluster_psql "$WINNER" "SELECT pg_reload_conf()" >/dev/null
from=$(wc -l <"$CL_DIR/journal.jsonl")
_verify_begun() { tail -n +"$((from + 1))" "$CL_DIR/journal.jsonl" | grep -q '"event":"rejoin-step","phase":"begin".*"step":"verify"'; }
(
	pgvigil rejoin "$node" --reason "round 4" >"$T_TMP/r4.out" 2>&1
	echo $? >"$T_TMP/r4.rc"
) &
bg=$!
check_wait "round 4: the rejoin of $node reaches its verify step" 30 _verify_begun
rc=0
pgvigild_stop || rc=$?
check_eq "round 4: pgvigild stopped mid-rejoin exits 0" 0 "$rc"
wait "$bg"
note "$(cat "$T_TMP/r4.out")"
check_eq "round 4: pgvigil rejoin exits 1" 1 "$(cat "$T_TMP/r4.rc")"
check "round 4: it says the daemon stopped during verify" grep -q "rejoin $node failed: step verify: the daemon stopped" "$T_TMP/r4.out"
check "round 4: journal: rejoin ended failed at verify" \
	grep -q "\"event\":\"rejoin\",\"phase\":\"end\",\"node\":\"$node\",\"outcome\":\"failed\".*\"failed_step\":\"verify\"" "$CL_DIR/journal.jsonl"
sed -i '1d' "$CL_DIR/$WINNER/pg_hba.conf"
cluster_psql "$WINNER" "SELECT pg_reload_conf()" >/dev/null
check_wait "round 4: $node streams from $WINNER once replication is allowed" 20 cluster_streams_from "$node" "$WINNER"
from=$(wc -l <"$CL_DIR/journal.jsonl")
t_daemon_start
# (t_daemon_start is satisfied by the first daemon's records: wait for this one's)
check_wait "round 4: pgvigild starts again" 30 journal_find "$from" '"event":"daemon-start"'
check_wait "round 4: the restarted pgvigild reports $WINNER as primary" 30 _status_primary "$WINNER"

# --- round 5: the data directory is gone (a base backup that failed removes its copy) --------
ROUND=5
cluster_stop "$node" || t_bail "cannot stop $node"
saved=$(_saved "$CL_DIR/$node")
_cl_pg mkdir -p -m 700 "$saved"
_cl_pg sh -c "cp -p '$CL_DIR/$node'/*.conf '$saved/' && touch '$saved/.overwritten'"
mv "$CL_DIR/$node" "$CL_DIR/$node.gone"
rejoin_ok "$node" basebackup 665
check "round 5: the rewind step was skipped: no data directory" \
	grep -q "\"event\":\"rejoin-step\",\"phase\":\"event\",\"node\":\"$node\",\"outcome\":\"skipped\".*no data directory to rewind" "$CL_DIR/journal.jsonl"

note "figures: pg_rewind step ${REWIND_MS:-?} ms (round 1), pg_basebackup step ${BASEBACKUP_MS:-?} ms (round 2; tiny test database)"
check "pgvigild still running" t_daemon_alive
rc=0
pgvigild_stop || rc=$?
check_eq "pgvigild exits 0 on SIGTERM" 0 "$rc"
t_done
