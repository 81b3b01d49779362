#!/usr/bin/env bash
# tests/bench/scenarios.sh (`make bench`, as root): what each kind of failure costs the application,
# with pgvigil's default settings (the pgvigil.conf scripts/cluster.sh and scripts/netns.sh write).
#
# Scenarios (BENCH_SCENARIOS, default all of them, in this order):
#   kill            the primary's postmaster and children SIGKILLed
#   freeze          every process of the primary SIGSTOPped (cluster_freeze), for good; thawed after
#                   the run to see what became of the old primary
#   partition       the primary's host cut off from everyone (scripts/netns.sh: each node, PgBouncer
#                   and pgvigild in their own network namespace; silent nftables drops)
#   lockstorm       a non-superuser takes ACCESS EXCLUSIVE on the writer's table inside a long
#                   statement (active root: cancel) and in an idle transaction (idle root: terminate)
#   switchover      a planned switchover under `pgbench -c 16` through PgBouncer
#   freeze-flaps    BENCH_FLAPS freezes of the primary of 1 to 2 s (evenly spread; BENCH_FLAP_MIN_S
#                   and BENCH_FLAP_MAX_S change the range), 2 s apart
#   partition-flaps BENCH_FLAPS cuts of the primary of 1 to 2 s, 2 s apart
#   (flaps = both flap scenarios)
# (What the probes cost the primary: tests/bench/cost.sh, which `make bench` runs after this.)
# kill, freeze, partition and lockstorm run BENCH_RUNS times (default 5), each on a fresh cluster,
# with the bench writer (build/bench/writer) writing through PgBouncer: one INSERT every
# BENCH_INTERVAL_MS (20) ms, each under a BENCH_TIMEOUT_MS (1000) ms deadline.  switchover runs
# BENCH_RUNS switchovers back and forth on one cluster.  The flaps count false failovers: a
# promotion while the primary was only frozen or cut for 1 to 2 s (after one, a fresh cluster).
#
# Each scenario prints one row per run, then a table: figure | median | min | max | n.  The end of
# the output repeats every table as one markdown table (for docs/benchmarks.md).  Figures, not
# assertions: the exit status is 0 unless a scenario could not run at all.
#
# Ports: PGVIGIL_TEST_PORT_BASE (default 25300) .. +3; the network namespaces' addresses derive
# from it too (scripts/netns.sh).  partition and partition-flaps are skipped when network
# namespaces are not available.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=../../scripts/cluster.sh
source "$ROOT/scripts/cluster.sh"
# shellcheck source=../../scripts/netns.sh
source "$ROOT/scripts/netns.sh"
# shellcheck source=lib.sh
source "$ROOT/tests/bench/lib.sh"

WRITER=${WRITER:-$ROOT/build/bench/writer}
RUNS=${BENCH_RUNS:-5}
FLAPS=${BENCH_FLAPS:-20}
FLAP_MIN=${BENCH_FLAP_MIN_S:-1} # a flap lasts FLAP_MIN to FLAP_MAX seconds, evenly spread
FLAP_MAX=${BENCH_FLAP_MAX_S:-2}
INTERVAL_MS=${BENCH_INTERVAL_MS:-20}
TIMEOUT_MS=${BENCH_TIMEOUT_MS:-1000}
SCENARIOS=
for s in ${BENCH_SCENARIOS:-kill freeze partition lockstorm switchover flaps}; do
	[[ $s == flaps ]] && s="freeze-flaps partition-flaps"
	SCENARIOS+="${SCENARIOS:+ }$s"
done
KEEP=${BENCH_KEEP_DIR:-/tmp/pgvigil-bench-evidence} # journals of runs worth a look (false failovers)
NC=         # the namespace cluster's directory
NETNS_UP=0  # the topology exists
TMP=
W_PID=      # the writer
P_PID=      # the probe

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	bench_kill_all
	if [[ -n ${CL_DIR:-} && -d $CL_DIR ]]; then
		cluster_thaw n0 2>/dev/null
		pgvigild_stop >/dev/null 2>&1
		cluster_destroy "$CL_DIR"
	fi
	[[ -n $NC ]] && netns_cluster_destroy "$NC"
	((NETNS_UP)) && netns_destroy
	[[ -n $TMP ]] && rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

((EUID == 0)) || bench_die "run as root (make bench)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_RUNS must be a positive integer"
[[ $FLAPS =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_FLAPS must be a positive integer"
[[ $FLAP_MIN =~ ^[0-9]+(\.[0-9]+)?$ && $FLAP_MAX =~ ^[0-9]+(\.[0-9]+)?$ ]] ||
	bench_die "BENCH_FLAP_MIN_S and BENCH_FLAP_MAX_S must be numbers of seconds"
for s in $SCENARIOS; do
	case $s in
	kill | freeze | partition | lockstorm | switchover | freeze-flaps | partition-flaps) ;;
	*) bench_die "unknown scenario '$s' (kill freeze partition lockstorm switchover freeze-flaps partition-flaps flaps)" ;;
	esac
done
for f in "$PGVIGIL_BIN/pgvigild" "$PGVIGIL_BIN/pgvigil" "$WRITER"; do
	[[ -x $f ]] || bench_die "$f not built: run make"
done
TMP=$(mktemp -d /tmp/pgvigil-bench-scenarios.XXXXXX) || bench_die "mktemp failed"
chmod 755 "$TMP"

# --- clusters -------------------------------------------------------------------------------------

# local_fresh: a new cluster of scripts/cluster.sh (127.0.0.1) with pgvigild settled on n0.
local_fresh() {
	local_drop
	unset JOURNAL
	CL_DIR=$(mktemp -d "$TMP/local.XXXXXX") || return 1
	cluster_create "$CL_DIR" >/dev/null 2>&1 || { echo "bench: cluster_create failed" >&2; return 1; }
	pgvigild_start "$CL_DIR/pgvigil.conf" || return 1
	journal_wait 20 '"event":"primary-found"' || { echo "bench: no primary-found" >&2; return 1; }
	wait_for 30 bench_settled "$CL_DIR/pgvigil.conf" n0 || { echo "bench: the cluster did not settle on n0" >&2; return 1; }
}
local_drop() {
	[[ -n ${CL_DIR:-} && -d $CL_DIR ]] || return 0
	cluster_thaw n0 2>/dev/null
	pgvigild_stop >/dev/null 2>&1
	cluster_destroy "$CL_DIR"
	CL_DIR=
}

# netns_fresh: a new namespace cluster (scripts/netns.sh, with the local stop fence) settled on n0.
ncl=0
netns_fresh() {
	netns_drop
	if ((!NETNS_UP)); then
		netns_create >/dev/null || { echo "bench: netns_create failed" >&2; return 1; }
		NETNS_UP=1
	fi
	netns_heal_all
	ncl=$((ncl + 1))
	NC=$TMP/netns$ncl
	export JOURNAL=$NC/journal.jsonl
	netns_cluster_create "$NC" >/dev/null || { echo "bench: netns_cluster_create failed" >&2; return 1; }
	netns_cluster_local_fence "$NC" || return 1
	netns_pgvigild_start "$NC" || return 1
	journal_wait 20 '"event":"primary-found"' || { echo "bench: no primary-found" >&2; return 1; }
	wait_for 30 bench_settled "$NC/pgvigil.conf" n0 || { echo "bench: the cluster did not settle on n0" >&2; return 1; }
}
netns_drop() {
	[[ -n $NC ]] || return 0
	netns_heal_all 2>/dev/null
	netns_cluster_destroy "$NC"
	NC=
}

# keep_evidence NAME: copies the current cluster's journal and pgvigild log to KEEP/NAME.*; prints KEEP/NAME.
keep_evidence() {
	local d=${NC:-$CL_DIR}
	[[ $1 == freeze* || $1 == kill* ]] && d=$CL_DIR
	mkdir -p "$KEEP" || return 0
	cp "$(_bench_journal)" "$KEEP/$1.journal.jsonl" 2>/dev/null
	cp "$d/pgvigild.log" "$KEEP/$1.pgvigild.log" 2>/dev/null
	echo "$KEEP/$1"
}

# --- the writer -----------------------------------------------------------------------------------

# writer_start DIR WHERE [PREFIX...]: the writer on conninfo WHERE (run through PREFIX, e.g.
# ip netns exec NS), its mark file DIR/mark, its summary in DIR/writer.out, progress in
# DIR/writer.err; returns once it has written 50 rows (ROWS_CMD tells).
writer_start() {
	local dir=$1 where=$2
	shift 2
	rm -f "$dir/mark"
	_launch "$dir" writer "$where" "$INTERVAL_MS" --truncate -- "$@"
	W_PID=$LAUNCHED
	wait_for 20 "${ROWS_CMD[@]}" || { echo "bench: the writer wrote nothing: $(tail -n 2 "$dir/writer.err")" >&2; return 1; }
}

# probe_start DIR WHERE [PREFIX...]: a second writer, the probe, straight to the standbys (WHERE: a
# multi-host read-write conninfo), one INSERT every 100 ms into the database benchprobe: when a new
# primary takes writes, whatever the path to it.  Its files: DIR/probe.out, DIR/probe.err.
probe_start() {
	local dir=$1 where=$2
	shift 2
	_launch "$dir" probe "$where" 100 -- "$@"
	P_PID=$LAUNCHED
}

# _launch DIR NAME WHERE INTERVAL [WRITER ARGS...] -- [PREFIX...]
_launch() {
	local dir=$1 name=$2 where=$3 interval=$4 args=()
	shift 4
	while (($#)) && [[ $1 != -- ]]; do
		args+=("$1")
		shift
	done
	shift
	setsid "$@" "$WRITER" -c "$where" -i "$interval" -t "$TIMEOUT_MS" -V 10000 -m "$dir/mark" "${args[@]}" \
		</dev/null >"$dir/$name.out" 2>"$dir/$name.err" &
	LAUNCHED=$!
	bench_track "$LAUNCHED"
}
_app_rows() { [[ $(cluster_psql app "SELECT count(*) >= 50 FROM pgvigil_bench" 2>/dev/null) == t ]]; }
_local_rows() { [[ $(cluster_psql n0 "SELECT count(*) >= 50 FROM pgvigil_bench" 2>/dev/null) == t ]]; }
_netns_rows() { [[ $(netns_cluster_psql ctl n0 "SELECT count(*) >= 50 FROM pgvigil_bench" 2>/dev/null) == t ]]; }

# writer_mark DIR NSFILE: the failure's instant (ns, in NSFILE) becomes the writer's mark.
writer_mark() { cp "$2" "$1/mark.tmp" && mv "$1/mark.tmp" "$1/mark"; }

# writer_stop DIR [NAME PID]: stops the writer (or NAME, pid PID); it verifies, then prints its
# summary; W_LINE = the summary.
writer_stop() {
	local name=${2:-writer} pid=${3:-$W_PID}
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	W_LINE=$(grep '^writer:' "$1/$name.out" | tail -n 1)
}

# writes_flow DIR [NAME]: waits until the writer (or NAME) reports writes succeeding again after
# its first failure (or 30 s), then one more second of writes.
_writes_again() { grep -q 'writes succeed again' "$1/${2:-writer}.err"; }
writes_flow() {
	wait_for 30 _writes_again "$1" "${2:-writer}"
	sleep 1
}

# --- failures with a failover: kill, freeze, partition ------------------------------------------------

# failover_run SCENARIO: one run on a fresh cluster; prints its row and adds its figures.
failover_run() {
	local scen=$1 run=$2 dir where L t_ns close open close_ms det newp outcome old=- prefix=()
	if [[ $scen == partition ]]; then
		netns_fresh || return 1
		dir=$NC
		where="host=$(netns_addr bnc) port=6432 dbname=app user=postgres"
		prefix=(ip netns exec "$(netns_name bnc)")
		ROWS_CMD=(_netns_rows)
	else
		local_fresh || return 1
		dir=$CL_DIR
		where="host=127.0.0.1 port=$(cluster_port pgbouncer) dbname=app user=postgres"
		ROWS_CMD=(_local_rows)
	fi
	writer_start "$dir" "$where" "${prefix[@]}" || return 1
	if [[ $scen == partition ]]; then
		netns_cluster_psql ctl n0 "CREATE DATABASE benchprobe" >/dev/null
		probe_start "$dir" "host=$(netns_addr n1),$(netns_addr n2) port=5432 dbname=benchprobe user=postgres target_session_attrs=read-write" "${prefix[@]}"
	else
		cluster_psql n0 "CREATE DATABASE benchprobe" >/dev/null
		probe_start "$dir" "host=127.0.0.1,127.0.0.1 port=$(cluster_port n1),$(cluster_port n2) dbname=benchprobe user=postgres target_session_attrs=read-write"
	fi
	L=$(jlines)
	case $scen in
	kill)
		cluster_kill n0 || return 1
		writer_mark "$dir" "$dir/kill.ns"
		;;
	freeze)
		cluster_freeze n0 || return 1
		writer_mark "$dir" "$dir/freeze.ns"
		;;
	partition)
		date +%s%N >"$dir/cut.ns"
		netns_cut n0 || return 1
		writer_mark "$dir" "$dir/cut.ns"
		;;
	esac
	t_ns=$(cat "$dir/mark")
	if jwait 60 "$L" '"event":"incident-close"'; then
		close=$(journal_line "$(journal_find "$L" '"event":"incident-close"')")
		open=$(journal_line "$(journal_find "$L" '"event":"incident-open"')")
		close_ms=$((($(bench_ts_ns "$(json_str "$close" ts)") - t_ns) / 1000000))
		det=$(json_num "$open" detection_ms)
		newp=$(json_str "$close" node)
		outcome=$(json_str "$close" outcome)
		[[ $outcome == ok ]] || newp="${newp:-none}($outcome)"
	else
		close_ms=-1 det=-1 newp=none
	fi
	writes_flow "$dir"
	wait_for 10 _writes_again "$dir" probe
	writer_stop "$dir" probe "$P_PID"
	local probe
	probe=$(bench_field first_ok_after_kill_ms "$W_LINE")
	writer_stop "$dir"
	case $scen in
	freeze)
		# what the thawed old primary is now: gone (fenced), a standby, or still a writable primary
		cluster_thaw n0 2>/dev/null
		sleep 2
		case $(cluster_in_recovery n0 2>/dev/null) in
		t) old=standby ;;
		f) old=PRIMARY ;;
		*) old=down ;;
		esac
		;;
	partition)
		# what the old primary is once the link is back: gone (fenced), a standby, or a primary
		netns_heal n0
		sleep 3
		case $(netns_cluster_psql ctl n0 "SELECT pg_is_in_recovery()" 2>/dev/null) in
		t) old=standby ;;
		f) old=PRIMARY ;;
		*) old=down ;;
		esac
		;;
	esac
	local first failed missing gap
	first=$(bench_field first_ok_after_kill_ms "$W_LINE")
	failed=$(bench_field failed "$W_LINE")
	missing=$(bench_field missing_acked "$W_LINE")
	gap=$(bench_field max_gap_ms "$W_LINE")
	printf '  %-4s %-12s %10s %10s %10s %10s %8s %8s %8s %s\n' "$run" "$newp" "${det:--}" "$close_ms" "${probe:--}" "${first:--}" \
		"${failed:--}" "${missing:--}" "${gap:--}" "$old"
	fig_add "first write ms" "$first"
	fig_add "new primary takes writes ms (probe)" "$probe"
	fig_add "incident close ms" "$close_ms"
	fig_add "detection ms (incident-open)" "$det"
	fig_add "failed writes" "$failed"
	fig_add "missing acknowledged writes" "$missing"
	fig_add "writer max gap ms" "$gap"
	if [[ $scen != kill ]]; then
		fig_add "old primary still a primary after (1 = yes)" "$([[ $old == PRIMARY ]] && echo 1 || echo 0)"
		[[ $old == PRIMARY ]] && echo "       split brain: evidence in $(keep_evidence "$scen-$run")"
	fi
	return 0
}

scenario_failover() {
	local scen=$1 i what
	case $scen in
	kill) what="primary SIGKILLed (postmaster and children)" ;;
	freeze) what="primary frozen for good (SIGSTOP of every process), thawed after the run" ;;
	partition) what="primary's host cut off from everyone (network namespaces, silent drops)" ;;
	esac
	echo "== $scen: $what; $RUNS runs"
	printf '  %-4s %-12s %10s %10s %10s %10s %8s %8s %8s %s\n' run "new primary" "detect ms" "close ms" "probe ms" "write ms" failed missing "gap ms" \
		"$(case $scen in freeze) echo "old primary after thaw" ;; partition) echo "old primary after heal" ;; esac)"
	fig_reset
	for ((i = 1; i <= RUNS; i++)); do
		failover_run "$scen" "$i" || printf '  %-4s run failed\n' "$i"
		bench_kill_all
	done
	if [[ $scen == partition ]]; then netns_drop; else local_drop; fi
	fig_table "$scen"
}

# --- lock storm ------------------------------------------------------------------------------------

PSQL_APP="$PG_BIN/psql -X -q -At -h 127.0.0.1 -d postgres -U app"

# lock_one KIND: the writer's table locked by a non-superuser; prints cleared ms and the writer's figures.
lock_one() {
	local kind=$1 L t0 cleared
	ROWS_CMD=(_local_rows)
	writer_start "$CL_DIR" "host=127.0.0.1 port=$(cluster_port pgbouncer) dbname=app user=postgres" || return 1
	cluster_psql n0 "GRANT ALL ON pgvigil_bench TO app" >/dev/null
	L=$(jlines)
	t0=
	if [[ $kind == active ]]; then
		bench_bg runuser -u postgres -- bash -c "cd /; $PSQL_APP -p $(cluster_port n0) -c 'BEGIN; LOCK TABLE pgvigil_bench IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)'"
	else
		bench_bg runuser -u postgres -- bash -c "cd /; (echo 'BEGIN; LOCK TABLE pgvigil_bench IN ACCESS EXCLUSIVE MODE;'; sleep 60) | $PSQL_APP -p $(cluster_port n0)"
	fi
	# the lock's instant: the locking transaction's start (the server's clock is this machine's)
	_locked() {
		local v
		v=$(cluster_psql n0 "SELECT (extract(epoch FROM xact_start) * 1000)::bigint FROM pg_stat_activity WHERE usename = 'app' AND xact_start IS NOT NULL LIMIT 1" 2>/dev/null)
		[[ $v =~ ^[0-9]+$ ]] && t0=$v
	}
	wait_for 10 _locked || { echo "bench: the lock was not taken" >&2; return 1; }
	_locked
	if jwait 30 "$L" '"event":"lock-cleared"'; then
		cleared=$((($(bench_ts_ns "$(json_str "$(journal_line "$(journal_find "$L" '"event":"lock-cleared"')")" ts)") / 1000000) - t0))
	else
		cleared=-1
	fi
	local locker=$BENCH_LAST
	sleep 1
	writer_stop "$CL_DIR"
	bench_stop_bg "$locker"
	LK_CLEARED=$cleared
	LK_GAP=$(bench_field max_gap_ms "$W_LINE")
	LK_FAILED=$(bench_field failed "$W_LINE")
}

scenario_lockstorm() {
	local i
	echo "== lockstorm: ACCESS EXCLUSIVE on the writer's table by a non-superuser, active root (default ladder:"
	echo "   cancel) and idle-in-transaction root (terminate); $RUNS runs, a fresh cluster each"
	printf '  %-4s %16s %14s %14s %16s %14s %14s\n' run "active clear ms" "active gap ms" "active failed" "idle clear ms" "idle gap ms" "idle failed"
	fig_reset
	for ((i = 1; i <= RUNS; i++)); do
		if ! local_fresh || ! cluster_psql n0 "CREATE ROLE app LOGIN" >/dev/null; then
			printf '  %-4s run failed\n' "$i"
			continue
		fi
		local a=(- - -) b=(- - -)
		lock_one active && a=("$LK_CLEARED" "$LK_GAP" "$LK_FAILED")
		bench_kill_all
		lock_one idle && b=("$LK_CLEARED" "$LK_GAP" "$LK_FAILED")
		bench_kill_all
		printf '  %-4s %16s %14s %14s %16s %14s %14s\n' "$i" "${a[@]}" "${b[@]}"
		fig_add "active root: lock -> chain cleared ms" "${a[0]}"
		fig_add "active root: writer max gap ms" "${a[1]}"
		fig_add "active root: failed writes" "${a[2]}"
		fig_add "idle root: lock -> chain cleared ms" "${b[0]}"
		fig_add "idle root: writer max gap ms" "${b[1]}"
		fig_add "idle root: failed writes" "${b[2]}"
	done
	local_drop
	fig_table lockstorm
}

# --- switchover ------------------------------------------------------------------------------------

# the clients' worst waits in a pgbench per-transaction log set: "median max" over clients of
# each client's longest transaction (ms)
_client_waits() {
	cat "$@" 2>/dev/null | awk '$3 ~ /^[0-9]+$/ { if ($3 + 0 > m[$1] + 0) m[$1] = $3 } END { for (c in m) print int(m[c] / 1000) }' |
		sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- -"; exit } print v[int((NR + 1) / 2)], v[NR] }'
}

scenario_switchover() {
	local r from=n0 to out q failed brc med mx aborted L bench_pid
	echo "== switchover: $RUNS planned switchovers back and forth, each under pgbench -c 16 (one INSERT per"
	echo "   transaction) through PgBouncer"
	fig_reset
	local_fresh || { echo "  no cluster"; return 1; }
	cluster_psql n0 "CREATE TABLE sw (id bigserial PRIMARY KEY, t timestamptz DEFAULT now())" >/dev/null
	printf 'INSERT INTO sw DEFAULT VALUES;\n' >"$CL_DIR/sw.sql"
	chmod 644 "$CL_DIR/sw.sql"
	printf '  %-4s %-4s %10s %10s %16s %16s %10s %8s %10s %10s %s\n' run to "queued ms" "command ms" "client wait med" "client wait max" "failed tx" tps "writer gap" "w. failed" "aborted clients"
	for ((r = 1; r <= RUNS; r++)); do
		to=n1
		[[ $from == n1 ]] && to=n0
		if ! wait_for 30 bench_settled "$CL_DIR/pgvigil.conf" "$from"; then
			printf '  %-4s %s is not settled on %s\n' "$r" "the cluster" "$from"
			break
		fi
		mkdir -p "$CL_DIR/pgb.$r" && chown postgres: "$CL_DIR/pgb.$r"
		# the bench writer too, through PgBouncer: the write outage one client sees
		ROWS_CMD=(_app_rows)
		writer_start "$CL_DIR" "host=127.0.0.1 port=$(cluster_port pgbouncer) dbname=app user=postgres" || break
		runuser -u postgres -- "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$(cluster_port pgbouncer)" -U postgres \
			-c 16 -j 2 -T 10 -l --log-prefix="$CL_DIR/pgb.$r/log" -f "$CL_DIR/sw.sql" app >"$CL_DIR/pgbench.$r" 2>&1 &
		bench_pid=$!
		bench_track "$bench_pid"
		sleep 3 # the switchover happens under load
		L=$(jlines)
		local c0 cmd_ms
		c0=$(_cl_now_ms)
		out=$("$PGVIGIL_BIN/pgvigil" -c "$CL_DIR/pgvigil.conf" switchover --to "$to" --reason "bench run $r" 2>&1)
		cmd_ms=$(($(_cl_now_ms) - c0))
		wait "$bench_pid"
		writer_stop "$CL_DIR"
		brc=$?
		q=$(grep -oE "clients queued -?[0-9]+ ms" <<<"$out" | grep -oE -- "-?[0-9]+")
		failed=$(grep -oE "number of failed transactions: [0-9]+" "$CL_DIR/pgbench.$r" | grep -oE "[0-9]+$")
		tps=$(grep -oE "^tps = [0-9]+" "$CL_DIR/pgbench.$r" | grep -oE "[0-9]+$" | head -1)
		aborted=0
		((brc == 0)) || aborted="yes (pgbench exit $brc)"
		read -r med mx < <(_client_waits "$CL_DIR/pgb.$r"/log*)
		local wgap wfailed
		wgap=$(bench_field max_gap_ms "$W_LINE")
		wfailed=$(bench_field failed "$W_LINE")
		printf '  %-4s %-4s %10s %10s %16s %16s %10s %8s %10s %10s %s\n' "$r" "$to" "${q:--}" "$cmd_ms" "$med" "$mx" "${failed:--}" "${tps:--}" \
			"${wgap:--}" "${wfailed:--}" "$aborted"
		[[ -z $q ]] && echo "       pgvigil switchover: $(tail -n 1 <<<"$out")"
		fig_add "queued ms (pgvigil: PAUSE to RESUME)" "${q:--}"
		fig_add "client's longest transaction ms, median over clients" "$med"
		fig_add "client's longest transaction ms, max over clients" "$mx"
		fig_add "failed transactions" "${failed:--}"
		fig_add "aborted clients" "$( ((brc == 0)) && echo 0 || echo -)"
		fig_add "switchover command ms" "$cmd_ms"
		fig_add "writer's longest gap ms" "$wgap"
		fig_add "writer's failed writes" "$wfailed"
		jwait 30 "$L" '"event":"incident-close"'
		from=$to
	done
	local_drop
	fig_table switchover
}

# --- flaps: false failovers --------------------------------------------------------------------------

# flaps KIND: FLAPS short faults of n0 (KIND freeze or partition), 1 to 2 s each, 2 s apart.
scenario_flaps() {
	local kind=$1 i secs L p opened false_fo=0 incidents=0 blips=0 parts=0 wedged=0 conf o
	echo "== $kind-flaps: $FLAPS ${kind}s of the primary of $FLAP_MIN to $FLAP_MAX s, 2 s apart (false failovers)"
	fig_reset
	if [[ $kind == partition ]]; then netns_fresh; else local_fresh; fi || { echo "  no cluster"; return 1; }
	for ((i = 0; i < FLAPS; i++)); do
		secs=$(awk -v i="$i" -v n="$FLAPS" -v a="$FLAP_MIN" -v b="$FLAP_MAX" 'BEGIN { printf "%.2f", a + (n > 1 ? (b - a) * i / (n - 1) : 0) }')
		if [[ $kind == partition ]]; then conf=$NC/pgvigil.conf; else conf=$CL_DIR/pgvigil.conf; fi
		L=$(jlines)
		local t_fault t_heal
		t_fault=$(date -u +%T.%3N)
		if [[ $kind == partition ]]; then
			netns_cut n0
			sleep "$secs"
			netns_heal n0
		else
			cluster_freeze n0
			sleep "$secs"
			cluster_thaw n0
		fi
		t_heal=$(date -u +%T.%3N)
		sleep 2
		wait_for 20 bench_settled "$conf" n0
		local settled=$?
		p=$(jcount "$L" promote '"phase":"end"')
		opened=$(jcount "$L" incident-open)
		incidents=$((incidents + opened))
		blips=$((blips + $(jcount "$L" primary-blip)))
		parts=$((parts + $(jcount "$L" watchdog-partition)))
		wedged=$((wedged + $(jcount "$L" primary-wedged)))
		if ((p > 0)); then
			false_fo=$((false_fo + 1))
			o=$(journal_line "$(journal_find "$L" '"event":"incident-open"')")
			echo "  $kind $((i + 1)) (${secs} s, $t_fault to $t_heal UTC): FAILOVER at $(json_str "$o" ts | cut -c12-23): $(json_str "$o" reason) (detection_ms $(json_num "$o" detection_ms)); journal and log kept in $(keep_evidence "$kind-flap-$((i + 1))")"
		elif ((opened > 0)); then
			echo "  $kind $((i + 1)) (${secs} s): incident opened without a promotion: $(json_str "$(journal_line "$(journal_find "$L" '"event":"incident-open"')")" reason)"
		fi
		if ((p > 0 || settled != 0)); then
			((p > 0)) || echo "  $kind $((i + 1)) (${secs} s): no promotion, but not settled on n0 within 20 s: a fresh cluster"
			if [[ $kind == partition ]]; then netns_fresh; else local_fresh; fi || { echo "  no cluster"; return 1; }
		fi
	done
	echo "  false failovers: $false_fo of $FLAPS; incidents opened $incidents; primary-blip $blips, watchdog-partition $parts, primary-wedged $wedged"
	fig_add "false failovers (of $FLAPS)" "$false_fo"
	fig_add "incidents opened (of $FLAPS)" "$incidents"
	if [[ $kind == partition ]]; then netns_drop; else local_drop; fi
	fig_table "$kind-flaps"
}

# --- main -----------------------------------------------------------------------------------------

echo "pgvigil scenarios: $SCENARIOS"
echo "BENCH_RUNS=$RUNS BENCH_FLAPS=$FLAPS; writer through PgBouncer every ${INTERVAL_MS} ms, ${TIMEOUT_MS} ms deadline;"
echo "settings: the pgvigil.conf of scripts/cluster.sh / scripts/netns.sh; PGVIGIL_TEST_PORT_BASE=${PGVIGIL_TEST_PORT_BASE:-25300}"
echo "started $(date -u +%FT%TZ) on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
t_start=$(_cl_now_ms)
for s in $SCENARIOS; do
	echo
	t0=$(_cl_now_ms)
	case $s in
	partition | partition-flaps)
		if ! netns_available; then
			echo "== $s: skipped: $NETNS_SKIP_REASON"
			continue
		fi
		;;
	esac
	case $s in
	kill | freeze | partition) scenario_failover "$s" ;;
	lockstorm) scenario_lockstorm ;;
	switchover) scenario_switchover ;;
	freeze-flaps) scenario_flaps freeze ;;
	partition-flaps) scenario_flaps partition ;;
	esac
	echo "  ($s: $((($(_cl_now_ms) - t0) / 1000)) s)"
done
echo
echo "== summary ($((($(_cl_now_ms) - t_start) / 1000)) s in all; finished $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| scenario | figure | median | min | max | n |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${BENCH_SUMMARY[@]}"
