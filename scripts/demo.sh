#!/usr/bin/env bash
# demo.sh (`make demo`, as root): a failover under write load, start to finish.
#
# Creates a throw-away cluster (n0 primary, n1 n2 standbys, PgBouncer; scripts/cluster.sh),
# starts pgvigild on it, runs the bench writer through PgBouncer (one INSERT every 20 ms),
# SIGKILLs the primary's postmaster and all its children, waits for pgvigild to close the
# incident, then shows the new primary, the incident's timeline and what the writer saw.
# Everything it started is stopped and removed on exit, Ctrl-C or failure.
# Ports: PGVIGIL_TEST_PORT_BASE (default 25300) .. +3.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=cluster.sh
source "$ROOT/scripts/cluster.sh"
WRITER=${WRITER:-$ROOT/build/bench/writer}
WRITER_PID=

say() {
	if [[ -t 1 ]]; then
		printf '\n\033[1m== %s\033[0m\n' "$*"
	else
		printf '\n== %s\n' "$*"
	fi
}
die() {
	echo "demo: $*" >&2
	exit 1
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $WRITER_PID ]] && _cl_alive "$WRITER_PID"; then
		kill -KILL "$WRITER_PID" 2>/dev/null
		wait "$WRITER_PID" 2>/dev/null
	fi
	if [[ -n ${CL_DIR:-} && -d $CL_DIR ]]; then
		if ((rc != 0)); then
			echo "demo: failed; tail of pgvigild's log and journal:" >&2
			tail -n 15 "$CL_DIR/pgvigild.log" "$CL_DIR/pgvigild.stderr" "$CL_DIR/journal.jsonl" 2>/dev/null >&2
		fi
		pgvigild_stop >/dev/null 2>&1
		cluster_destroy "$CL_DIR"
		echo "demo: cluster stopped and removed"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

((EUID == 0)) || die "run as root (make demo): PostgreSQL and PgBouncer are started as postgres"
for f in "$PGVIGIL_BIN/pgvigild" "$PGVIGIL_BIN/pgvigil" "$WRITER"; do
	[[ -x $f ]] || die "$f not built: run make"
done

say "1. a cluster: n0 primary, n1 and n2 streaming standbys, PgBouncer in front"
dir=$(mktemp -d /tmp/pgvigil-demo.XXXXXX) || die "mktemp failed"
CL_DIR=$dir
cluster_create "$dir" || die "could not create the cluster"
echo "in $CL_DIR, created in ${CL_CREATE_MS} ms"
cluster_status | sed 's/^/   /'
BOUNCER="host=127.0.0.1 port=$(cluster_port pgbouncer) dbname=app user=postgres"

say "2. pgvigild watching it ($CL_DIR/pgvigil.conf)"
pgvigild_start || die "cannot start pgvigild"
journal_wait 15 '"event":"primary-found"' || die "pgvigild found no primary within 15 s"
pgvigil status

say "3. a writer through PgBouncer: one INSERT every 20 ms, 1 s deadline each"
"$WRITER" -c "$BOUNCER" -i 20 -t 1000 -m "$CL_DIR/kill.mark" --truncate \
	>"$CL_DIR/writer.out" 2>"$CL_DIR/writer.err" &
WRITER_PID=$!
_demo_rows() { [[ $(cluster_psql n0 "SELECT count(*) >= 100 FROM pgvigil_bench" 2>/dev/null) == t ]]; }
wait_for 20 _demo_rows || die "the writer wrote nothing through PgBouncer"
echo "$(cluster_psql n0 "SELECT count(*) FROM pgvigil_bench") rows so far"

say "4. SIGKILL n0: the postmaster and all its children, no shutdown"
cluster_kill n0 || die "could not kill n0"
kill_ns=$(cat "$CL_DIR/kill.ns")
echo "$kill_ns" >"$CL_DIR/kill.mark.tmp" && mv "$CL_DIR/kill.mark.tmp" "$CL_DIR/kill.mark"
echo "killed at $(date -u -d "@${kill_ns:0:10}.${kill_ns:10:6}" +%H:%M:%S.%6N) UTC"

say "5. waiting for pgvigild to close the incident (60 s at most)"
journal_wait 60 '"event":"incident-close"' || die "no incident-close within 60 s"
close_line=$(journal_line "$(journal_find 0 '"event":"incident-close"')")
incident=$(json_str "$close_line" incident)
echo "incident $incident closed: outcome $(json_str "$close_line" outcome), new primary $(json_str "$close_line" new_primary), $(($(_cl_now_ms) - ${kill_ns:0:13})) ms after the kill"
# Let the writer show it writes again, then stop it: it counts acknowledged rows that are missing.
wait_for 20 grep -q "writes succeed again" "$CL_DIR/writer.err" || echo "(the writer has not written again yet)"
sleep 1
kill -TERM "$WRITER_PID"
wait "$WRITER_PID"
WRITER_PID=

say "6. the new primary: pgvigil status"
pgvigil status

say "7. the incident: pgvigil incident list / show $incident"
pgvigil incident list
echo
pgvigil incident show "$incident"

say "8. what the writer saw"
sed 's/^/   /' "$CL_DIR/writer.err"
summary=$(grep '^writer:' "$CL_DIR/writer.out" | tail -n 1)
echo "   $summary"
_field() { [[ $summary =~ (^| )$1=(-?[0-9]+) ]] && echo "${BASH_REMATCH[2]}"; }
cat <<EOF

   writes acknowledged                     $(_field ok)
   writes failed                           $(_field failed)
   kill -> first successful write          $(_field first_ok_after_kill_ms) ms
   longest gap between two acknowledged    $(_field max_gap_ms) ms
   acknowledged writes missing afterwards  $(_field missing_acked)
EOF
if [[ $(_field missing_acked) != 0 ]]; then
	echo
	echo "   (replication is asynchronous: writes acknowledged by n0 but not yet received by the"
	echo "    standby when it died are lost)"
fi
[[ $(json_str "$close_line" outcome) == ok ]]
