# shellcheck shell=bash
# tests/bench/peers/common.sh: sourced by repmgr.sh and pg_auto_failover.sh, the side-by-side
# benchmarks of two established failover tools on the same machine, cluster shape and client as
# pgvigil's own tests/bench/run.sh and detect.sh.  Opt-in: not part of `make bench` or `make test`.
#
# A tool script defines these hooks, then calls peer_main "$@":
#   peer_setup CONFIG         a fresh cluster in PEER_DIR (already made, owned by postgres) with the
#                             tool running under CONFIG (default | aggressive); ready for a failure
#   peer_teardown             stops everything peer_setup started (idempotent; also after a failure)
#   peer_writer_conninfo      where the bench writer writes (PgBouncer, or a libpq multi-host string)
#   peer_probe_conninfo       the standbys only, multi-host, read-write, database peerprobe
#   peer_primary_port         the current primary's port
#   peer_victims SCENARIO     the pids to signal for SCENARIO (see below), one per line
#   peer_switchover           the tool's planned switchover from n0 to a standby, its output in
#                             PEER_DIR/switchover.log; returns the command's exit status
#   peer_logs                 the tool's log files (lock storm: what it logged during the lock)
#   PEER_ACTION_RE            an extended regex: the log lines that mean the tool acted
#   PEER_TOOL PEER_SCENARIOS PEER_EXTRA_SCENARIOS   names
# Nodes are numbered 0 1 2 (n0 n1 n2); peer_node_host N and peer_node_port N say where node N
# listens (127.0.0.1 and PEER_BASE+N; in the partition scenario, node N's own network namespace
# address and PEER_NS_PORT if the tool sets it).  PEER_NS is 1 while a run's cluster lives in the
# network namespaces of scripts/netns.sh (partition): peer_setup then builds it there.
#
# Scenarios:
#   kill         the primary's postmaster and all its children SIGKILLed (the tool's agent on that
#                node, if it has one, keeps running): the definition of pgvigil's run.sh
#   freeze       every process of the primary node SIGSTOPped, by pid: the postmaster, its children
#                and the tool's agent on that node (a hung host)
#   kill-node    kill plus the tool's agent on that node (a host that died)
#   freeze-pg    freeze without the agent (only PostgreSQL hangs): the definition of pgvigil's
#                detect.sh, whose watcher runs off the node
#   switchover   the tool's own planned switchover (peer_switchover), timed; the writer runs through
#   switchover-load   the same under load: `pgbench -c 16 -j 2 -T 15` on the writer's conninfo
#                (one INSERT per transaction), the switchover 3 s after pgbench started, as
#                pgvigil's tests/bench/switchover.sh does; outcome adds pgbench's failed
#                transactions and aborted clients
#   lockstorm    a session on the primary holds ACCESS EXCLUSIVE on the writer's table for
#                LOCK_S (30) s (BEGIN; LOCK TABLE; pg_sleep; COMMIT): nothing is wrong with the
#                primary, so the right answer is to do nothing; the tool's logs are searched for
#                PEER_ACTION_RE lines written meanwhile
#   partition    the cluster in network namespaces (scripts/netns.sh: a host per node, clients on
#                bnc); n0's host is cut off from everyone (netns_cut n0: silent drops); after the
#                wait the cut is healed and the old primary is asked for a write, as after a freeze
#
# Each run: a fresh cluster; the bench writer (build/bench/writer: one INSERT every 20 ms, 1 s
# deadline per attempt, connect included) on peer_writer_conninfo, and a second one, the probe, on
# peer_probe_conninfo (one INSERT every 100 ms into another database, standbys only: it measures when
# a new primary takes writes, whatever the path to it); the failure; then the wait, which ends when
# the writer writes again (and the probe has, or 5 s passed), or GRACE_S after the probe succeeded
# while the writer still fails, or at CAP_S.  After a freeze the victims are thawed; if a standby
# had become primary, the old primary is asked (directly) 5 s later to take a write: split brain
# if it does.
#
# Row columns: max gap is the writer's longest time between two acknowledged writes; outcome is the
# split brain check (freeze, partition), the command's result and duration (switchover), or what
# the tool logged during the lock (lockstorm).
#
# Environment: BENCH_RUNS (3) runs of each main scenario, BENCH_EXTRA_RUNS (1) of each extra one,
# BENCH_CONFIGS ("default aggressive"), BENCH_SCENARIOS (the tool's main and extra ones),
# BENCH_CAP_S (90), BENCH_GRACE_S (15), PGVIGIL_TEST_PORT_BASE (the tool's default), WRITER,
# BENCH_KEEP=1 keeps the directory of a failed run, BENCH_LOGS=DIR copies every run's logs there.

# shellcheck disable=SC2153 # PEER_TOOL, PEER_BASE...: set by the tool script before it sources this
PEER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# shellcheck source=scripts/cluster.sh
source "$PEER_ROOT/scripts/cluster.sh"
export PGVIGIL_TEST_PORT_BASE=$PEER_BASE # the namespaces' names and addresses derive from it
# shellcheck source=scripts/netns.sh
source "$PEER_ROOT/scripts/netns.sh"

WRITER=${WRITER:-$PEER_ROOT/build/bench/writer}
RUNS=${BENCH_RUNS:-3}
EXTRA_RUNS=${BENCH_EXTRA_RUNS:-1}
CAP_S=${BENCH_CAP_S:-90}
GRACE_S=${BENCH_GRACE_S:-15}
INTERVAL_MS=${BENCH_INTERVAL_MS:-20}
TIMEOUT_MS=${BENCH_TIMEOUT_MS:-1000}
PROBE_INTERVAL_MS=100
SPLIT_WAIT_S=5
LOCK_S=${BENCH_LOCK_S:-30}
PEER_NS=0
PEER_SCENARIO= # the current run's (peer_setup may depend on it)
PEER_NS_PORT=${PEER_NS_PORT:-} # the tool script sets it before it sources this
PEER_CLIENT=bnc # the namespace of the writer, the probe and the checks (partition)

PEER_DIR=
PEER_BG=()     # pids of writers and daemons this script started (each its own session)
PEER_FROZEN=() # pids SIGSTOPped by the current run (thawed before any teardown)

peer_log() { echo "peer-bench: $*" >&2; }
peer_die() {
	peer_log "$*"
	exit 1
}

peer_now_ns() {
	local t=${EPOCHREALTIME//[.,]/}
	echo "${t}000"
}

# peer_install PACKAGE...: apt-get install -y those not installed yet (the benchmark is opt-in, so
# they are not in scripts/deps.sh).
peer_install() {
	local p missing=()
	for p in "$@"; do
		[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	peer_log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 && apt-get install -y "${missing[@]}" >/dev/null; } ||
		peer_die "apt-get install ${missing[*]} failed"
}

# peer_as_pg CMD...: runs CMD as postgres, from /, with PEER_ENV added to the environment.  Run
# in the background as "${PEER_AS[@]}" CMD & (after _peer_as), $! is CMD's own pid: setpriv and env
# exec.
# PEER_IN (a role of scripts/netns.sh: n0 n1 n2 ctl bnc) puts CMD in that host's network
# namespace when PEER_NS is 1 (ip netns exec execs too); PEER_PATH goes before PATH.
PEER_ENV=()
PEER_IN=
PEER_PATH=
_peer_as() {
	PEER_AS=()
	[[ $PEER_NS == 1 && -n $PEER_IN ]] && PEER_AS=(ip netns exec "$(netns_name "$PEER_IN")")
	PEER_AS+=(setpriv --reuid=postgres --regid=postgres --init-groups
		env -C / HOME="$PEER_DIR" PATH="${PEER_PATH:+$PEER_PATH:}$PG_BIN:/usr/bin:/bin" "${PEER_ENV[@]}")
}
peer_as_pg() {
	_peer_as
	"${PEER_AS[@]}" "$@"
}

# peer_daemon LOG CMD...: starts CMD as postgres in a session of its own (setsid execs too), output
# appended to LOG; sets PEER_LAST to its pid and remembers it for the cleanup.
peer_daemon() {
	local log=$1
	shift
	_peer_as
	setsid "${PEER_AS[@]}" "$@" </dev/null >>"$log" 2>&1 &
	PEER_LAST=$!
	PEER_BG+=("$PEER_LAST")
	disown "$PEER_LAST" # no "Killed" job notice when a scenario kills it
}

# peer_psql PORT DB SQL: one statement as postgres on 127.0.0.1:PORT, tuples only, 10 s cap.
peer_psql() { peer_psql_at 127.0.0.1 "$@"; }

# peer_psql_at HOST PORT DB SQL [PSQL-OPTION...]: the same on HOST (from PEER_CLIENT's namespace
# when PEER_NS is 1).
peer_psql_at() {
	local host=$1 port=$2 db=$3 sql=$4 in=()
	shift 4
	[[ $PEER_NS == 1 ]] && in=(ip netns exec "$(netns_name "$PEER_CLIENT")")
	PGCONNECT_TIMEOUT=3 timeout -k 1 10 "${in[@]}" "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h "$host" -p "$port" -U postgres -d "$db" "$@" -c "$sql" 2>/dev/null
}

peer_node_host() { if [[ $PEER_NS == 1 ]]; then netns_addr "n$1"; else echo 127.0.0.1; fi; }
peer_node_port() { if [[ $PEER_NS == 1 && -n $PEER_NS_PORT ]]; then echo "$PEER_NS_PORT"; else echo $((PEER_BASE + $1)); fi; }
# peer_node_sql N DB SQL [PSQL-OPTION...]: one statement on node N.
peer_node_sql() {
	local n=$1
	shift
	peer_psql_at "$(peer_node_host "$n")" "$(peer_node_port "$n")" "$@"
}
peer_is_primary() { [[ $(peer_node_sql "$1" postgres "SELECT pg_is_in_recovery()") == f ]]; }

# peer_hosts_conninfo DB N...: a libpq multi-host, read-write conninfo for nodes N...
peer_hosts_conninfo() {
	local db=$1 n hosts='' ports=''
	shift
	for n in "$@"; do
		hosts+=${hosts:+,}$(peer_node_host "$n")
		ports+=${ports:+,}$(peer_node_port "$n")
	done
	echo "host=$hosts port=$ports dbname=$db user=postgres target_session_attrs=read-write connect_timeout=1"
}
peer_probe_conninfo() { peer_hosts_conninfo peerprobe 1 2; }

# peer_children PID: the pids of PID's children.
peer_children() { pgrep -P "$1" 2>/dev/null; }

peer_postmaster_pid() { # DATADIR
	local pid
	[[ -r $1/postmaster.pid ]] || return 1
	pid=$(head -n 1 "$1/postmaster.pid")
	_cl_alive_as "$pid" postgres || return 1
	echo "$pid"
}

# peer_pg_victims DATADIR: the postmaster and its children (the postmaster is SIGSTOPped first, as
# in cluster.sh, so it cannot fork a child between the listing and the signal).
peer_pg_victims() {
	local pm
	pm=$(peer_postmaster_pid "$1") || return 1
	kill -STOP "$pm" 2>/dev/null
	echo "$pm"
	peer_children "$pm"
}

peer_thaw() {
	local p
	for p in "${PEER_FROZEN[@]}"; do kill -CONT "$p" 2>/dev/null; done
	PEER_FROZEN=()
}

# peer_stop_pids SECS PID...: SIGTERM, then SIGKILL whatever is left after SECS.
peer_stop_pids() {
	local secs=$1 p
	shift
	(($#)) || return 0
	for p in "$@"; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
	wait_gone "$secs" "$@" || for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
	wait_gone 5 "$@"
}

# peer_stop_cluster_pg DATADIR...: pg_ctl stop -m immediate, else SIGKILL of the postmaster and its
# children, for every data directory whose postmaster still runs.
peer_stop_cluster_pg() {
	local d pm kids
	for d in "$@"; do
		pm=$(peer_postmaster_pid "$d") || continue
		kids=$(peer_children "$pm" | tr '\n' ' ')
		# shellcheck disable=SC2086
		kill -CONT "$pm" $kids 2>/dev/null
		peer_as_pg "$PG_BIN/pg_ctl" -D "$d" -m immediate -w -t 10 -s stop >/dev/null 2>&1 && continue
		kids=$(peer_children "$pm" | tr '\n' ' ')
		# shellcheck disable=SC2086
		kill -KILL "$pm" $kids 2>/dev/null
		# shellcheck disable=SC2086
		wait_gone 10 "$pm" $kids
	done
}

# peer_drop_shm DATADIR: removes the SysV interlock segment a SIGKILLed postmaster left (the id in
# its postmaster.pid), only if nothing is attached to it.
peer_drop_shm() {
	local f=$1/postmaster.pid id nattch
	[[ -r $f ]] || return 0
	peer_postmaster_pid "$1" >/dev/null && return 0
	read -r _ id < <(sed -n 7p "$f")
	[[ $id =~ ^[0-9]+$ ]] || return 0
	nattch=$(ipcs -m -i "$id" 2>/dev/null | awk -F'nattch=' 'NF > 1 { split($2, a, /[ \t]/); print a[1] }')
	[[ $nattch == 0 ]] && ipcrm -m "$id" 2>/dev/null
	return 0
}

_peer_stop_bg() {
	local p
	for p in "${PEER_BG[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	PEER_BG=()
}

_peer_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	peer_thaw
	peer_teardown >/dev/null 2>&1
	_peer_stop_bg
	[[ $PEER_NS == 1 ]] && netns_destroy
	if [[ -n $PEER_DIR && -d $PEER_DIR ]]; then
		if [[ ${BENCH_KEEP:-0} == 1 && $rc != 0 ]]; then
			peer_log "kept $PEER_DIR"
		else
			rm -rf "$PEER_DIR"
		fi
	fi
	exit "$rc"
}

# --- one run --------------------------------------------------------------------------------------

_peer_count() { grep -c "$1" "$2" 2>/dev/null || true; }
_field() { [[ $2 =~ (^| )$1=(-?[0-9]+) ]] && echo "${BASH_REMATCH[2]}"; }
_rows() { [[ $(peer_node_sql 0 postgres "SELECT count(*) >= 50 FROM pgvigil_bench") == t ]]; }

# _peer_log_lines: "FILE LINES" for every file of peer_logs (what they held before the lock).
_peer_log_lines() {
	local f
	for f in $(peer_logs); do echo "$f $(wc -l <"$f" 2>/dev/null || echo 0)"; done
}

# _peer_actions SNAPSHOT: the PEER_ACTION_RE lines the tool's logs gained since SNAPSHOT
# (_peer_log_lines), each prefixed with its file's name.
_peer_actions() {
	local f n
	while read -r f n; do
		tail -n +$((n + 1)) "$f" 2>/dev/null | grep -E "$PEER_ACTION_RE" | sed "s|^|${f##*/}: |"
	done <<<"$1"
}

# _peer_lock: the lock storm, as postgres, straight on the primary (n0): returns when it commits.
_peer_lock() {
	PEER_IN=$PEER_CLIENT _peer_as
	timeout -k 1 $((LOCK_S + 30)) "${PEER_AS[@]}" "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h "$(peer_node_host 0)" -p "$(peer_node_port 0)" -U postgres -d postgres -c "BEGIN" \
		-c "LOCK TABLE pgvigil_bench IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep($LOCK_S)" -c "COMMIT" \
		>"$PEER_DIR/lock.out" 2>&1
}

# _peer_mark NS: the failure's instant, for both writers.
_peer_mark() { echo "$1" >"$PEER_DIR/mark.tmp" && mv "$PEER_DIR/mark.tmp" "$PEER_DIR/mark"; }

# peer_run CONFIG SCENARIO: one run on a fresh cluster; sets R_FIRST (ms or none), R_PROBE,
# R_FAILED, R_MISSING, R_GAP (the writer's longest gap, ms), R_PRIMARY (the nodes answering as
# primaries when the wait ended), R_OUTCOME (freeze, partition: the split brain check: YES when
# the old primary took a direct write after the thaw or the heal, else standby / refused / down;
# switchover: ok or rc=N, and R_CMD, the command's duration in ms; lockstorm: "no action" or the
# number of PEER_ACTION_RE lines the tool logged), R_WAITED (s); returns 1 when the run could not
# be carried out.
peer_run() {
	local config=$1 scenario=$2 victims t0 t1 now w1 w2 w1_at=0 w2_at=0 line p rc snap pgb=
	R_FIRST=none R_PROBE=none R_FAILED=- R_MISSING=- R_GAP=- R_OUTCOME=- R_CMD=- R_WAITED=0 R_PRIMARY=-
	# shellcheck disable=SC2034 # read by the tool's peer_setup
	PEER_SCENARIO=$scenario
	PEER_NS=0
	[[ $scenario == partition ]] && PEER_NS=1
	PEER_DIR=$(mktemp -d "/tmp/pgvigil-peer-$PEER_TOOL.XXXXXX") || return 1
	chown postgres:postgres "$PEER_DIR"
	chmod 755 "$PEER_DIR"
	if [[ $PEER_NS == 1 ]]; then
		netns_create >/dev/null || {
			peer_log "$PEER_TOOL: netns_create failed"
			return 1
		}
	fi
	peer_setup "$config" || {
		peer_log "$PEER_TOOL: setup failed (logs in $PEER_DIR)"
		return 1
	}
	if ! peer_node_sql 0 postgres "CREATE DATABASE peerprobe" >/dev/null ||
		! peer_node_sql 0 postgres "CREATE TABLE peer_splitbrain (id serial, t timestamptz DEFAULT now())" >/dev/null; then
		peer_log "$PEER_TOOL: cannot prepare the primary n0"
		return 1
	fi
	PEER_IN=$PEER_CLIENT _peer_as
	"${PEER_AS[@]}" "$WRITER" -c "$(peer_writer_conninfo)" -i "$INTERVAL_MS" -t "$TIMEOUT_MS" -V 5000 \
		-m "$PEER_DIR/mark" --truncate >"$PEER_DIR/writer.out" 2>"$PEER_DIR/writer.err" &
	PEER_BG+=($!)
	w1=$!
	"${PEER_AS[@]}" "$WRITER" -c "$(peer_probe_conninfo)" -i "$PROBE_INTERVAL_MS" -t "$TIMEOUT_MS" -V 5000 \
		-m "$PEER_DIR/mark" >"$PEER_DIR/probe.out" 2>"$PEER_DIR/probe.err" &
	PEER_BG+=($!)
	w2=$!
	wait_for 20 _rows || {
		peer_log "$PEER_TOOL: the writer wrote nothing: $(tail -n 2 "$PEER_DIR/writer.err")"
		return 1
	}
	sleep 1
	local base1 base2 fail1
	base1=$(_peer_count "writes succeed again" "$PEER_DIR/writer.err")
	base2=$(_peer_count "writes succeed again" "$PEER_DIR/probe.err")
	fail1=$(_peer_count "write failed" "$PEER_DIR/writer.err")

	# The failure, or the planned event (which has ended when t1 is set)
	t1=0
	case $scenario in
	kill | kill-node | freeze | freeze-pg)
		# peer_victims has SIGSTOPped the postmaster already (no fork in between)
		mapfile -t victims < <(peer_victims "$scenario")
		PEER_FROZEN+=("${victims[@]}") # the postmaster is stopped already: thawed if anything fails
		((${#victims[@]})) || {
			peer_log "$PEER_TOOL: no victim pids for $scenario"
			return 1
		}
		t0=$(peer_now_ns)
		case $scenario in
		kill | kill-node) kill -KILL "${victims[@]}" 2>/dev/null ;;
		freeze | freeze-pg) kill -STOP "${victims[@]}" 2>/dev/null ;;
		esac
		_peer_mark "$t0"
		[[ $scenario == kill* ]] && PEER_FROZEN=()
		;;
	partition)
		t0=$(peer_now_ns)
		netns_cut n0 || {
			peer_log "$PEER_TOOL: netns_cut n0 failed"
			return 1
		}
		_peer_mark "$t0"
		;;
	switchover | switchover-load)
		if [[ $scenario == switchover-load ]]; then
			printf 'INSERT INTO pgvigil_bench (v) VALUES (-1);\n' >"$PEER_DIR/load.sql"
			chmod 644 "$PEER_DIR/load.sql"
			PEER_IN=$PEER_CLIENT _peer_as
			"${PEER_AS[@]}" "$PG_BIN/pgbench" -n -c 16 -j 2 -T 15 -f "$PEER_DIR/load.sql" "$(peer_writer_conninfo)" \
				>"$PEER_DIR/pgbench.out" 2>&1 &
			PEER_BG+=($!)
			pgb=$!
			sleep 3
		fi
		t0=$(peer_now_ns)
		_peer_mark "$t0"
		peer_switchover
		rc=$?
		t1=$(peer_now_ns)
		R_CMD=$(((t1 - t0) / 1000000))
		R_OUTCOME="ok $(_peer_fmt_ms "$R_CMD")"
		((rc == 0)) || R_OUTCOME="rc=$rc $(_peer_fmt_ms "$R_CMD")"
		;;
	lockstorm)
		snap=$(_peer_log_lines)
		t0=$(peer_now_ns)
		_peer_mark "$t0"
		_peer_lock || peer_log "$PEER_TOOL: the lock session failed: $(tail -n 1 "$PEER_DIR/lock.out")"
		t1=$(peer_now_ns)
		;;
	*)
		peer_log "unknown scenario $scenario"
		return 1
		;;
	esac
	peer_after_failure "$scenario"

	while :; do
		now=$(peer_now_ns)
		if ((t1)); then
			# a planned event, over: the writer succeeded again (or never failed), the probe too
			# (a switchover) or not (a lock storm: the standbys stay standbys); then 2 s more
			((w1_at == 0)) && { (($(_peer_count "writes succeed again" "$PEER_DIR/writer.err") > base1)) ||
				(($(_peer_count "write failed" "$PEER_DIR/writer.err") == fail1)); } && w1_at=$now
			((w2_at == 0)) && { [[ $scenario == lockstorm ]] ||
				(($(_peer_count "writes succeed again" "$PEER_DIR/probe.err") > base2)); } && w2_at=$now
			((w1_at && w2_at && now - w1_at >= 2000000000 && now - w2_at >= 2000000000)) && break
		else
			((w1_at == 0)) && (($(_peer_count "writes succeed again" "$PEER_DIR/writer.err") > base1)) && w1_at=$now
			((w2_at == 0)) && (($(_peer_count "writes succeed again" "$PEER_DIR/probe.err") > base2)) && w2_at=$now
			((w1_at && w2_at)) && break
			((w1_at && now - w1_at >= 5000000000)) && break
		fi
		((w2_at && !w1_at && now - w2_at >= GRACE_S * 1000000000)) && break
		((now - t0 >= CAP_S * 1000000000)) && break
		sleep 0.1
	done
	R_WAITED=$(((now - t0) / 1000000000))
	# Which nodes answer as primaries now (n0, frozen or cut off, is not asked)
	R_PRIMARY=
	for p in 0 1 2; do
		[[ $p == 0 && $scenario == @(freeze*|partition) ]] && continue
		peer_is_primary "$p" && R_PRIMARY+="${R_PRIMARY:+,}n$p"
	done
	R_PRIMARY=${R_PRIMARY:-none}
	kill -TERM "$w2" 2>/dev/null
	kill -TERM "$w1" 2>/dev/null
	wait "$w1" "$w2" 2>/dev/null
	line=$(grep '^writer:' "$PEER_DIR/writer.out" | tail -n 1)
	p=$(_field first_ok_after_kill_ms "$line")
	[[ -n $p && $p != -1 ]] && R_FIRST=$p
	R_FAILED=$(_field failed "$line")
	R_GAP=$(_field max_gap_ms "$line")
	[[ $R_FIRST == none ]] && R_GAP=- # the gap that matters has not ended
	R_MISSING=$(_field missing_acked "$line")
	[[ $R_MISSING == -1 ]] && R_MISSING='?' # the check could not connect
	line=$(grep '^writer:' "$PEER_DIR/probe.out" | tail -n 1)
	p=$(_field first_ok_after_kill_ms "$line")
	[[ -n $p && $p != -1 ]] && R_PROBE=$p

	if [[ -n $pgb ]]; then
		wait "$pgb"
		rc=$?
		p=$(grep -oE 'number of failed transactions: [0-9]+' "$PEER_DIR/pgbench.out" | grep -oE '[0-9]+$')
		R_OUTCOME+="; pgbench: failed tx ${p:-?}, aborted clients $(grep -cE 'client [0-9]+ (script [0-9]+ )?aborted' "$PEER_DIR/pgbench.out")/16, exit $rc"
	fi
	if [[ $scenario == lockstorm ]]; then
		_peer_actions "$snap" >"$PEER_DIR/actions.log"
		R_OUTCOME="no action"
		[[ -s $PEER_DIR/actions.log ]] && R_OUTCOME="ACTED ($(wc -l <"$PEER_DIR/actions.log") lines)"
	fi
	[[ $scenario == freeze* ]] && peer_thaw
	[[ $scenario == partition ]] && netns_heal n0
	if [[ $scenario == @(freeze*|partition) && $R_PRIMARY != none ]]; then
		sleep "$SPLIT_WAIT_S"
		# A write straight to the old primary, 3 s at most: does it still take writes?
		case $(peer_node_sql 0 postgres "SELECT pg_is_in_recovery()") in
		f)
			if peer_node_sql 0 postgres "INSERT INTO peer_splitbrain DEFAULT VALUES" -c "SET synchronous_commit = local" >/dev/null; then
				R_OUTCOME=YES
			else
				R_OUTCOME=refused
			fi
			;;
		t) R_OUTCOME=standby ;;
		*) R_OUTCOME=down ;;
		esac
	fi
	if [[ -n ${BENCH_LOGS:-} ]]; then
		local keep
		keep=$BENCH_LOGS/$PEER_TOOL-$config-$scenario-$(date +%H%M%S)
		mkdir -p "$keep" && find "$PEER_DIR" -maxdepth 1 -type f \( -name '*.log' -o -name '*.err' -o \
			-name '*.out' -o -name '*.conf' -o -name '*.ini' -o -name '*.sh' -o -name '*.stderr' \) -exec cp {} "$keep/" \;
	fi
	peer_teardown
	_peer_stop_bg
	[[ $PEER_NS == 1 ]] && netns_destroy
	rm -rf "$PEER_DIR"
	PEER_DIR=
}

# Hook: called right after the failure (default: nothing).
peer_after_failure() { :; }

# stats V...: "median min max" of the numeric values (median of an even count: the mean of the two
# in the middle), "- - -" when there are none.
peer_stats() {
	printf '%s\n' "$@" | grep -E '^[0-9]+$' | sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "- - -"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)
		print m, v[1], v[NR] }'
}

_peer_fmt_ms() { [[ $1 =~ ^[0-9]+$ ]] && printf '%.1f s' "$(awk -v v="$1" 'BEGIN { print v / 1000 }')" || printf '%s' "$1"; }

# peer_main: runs every CONFIG x SCENARIO BENCH_RUNS (or BENCH_EXTRA_RUNS) times; prints a row per
# run, then per CONFIG x SCENARIO the median / min / max of the figures.
peer_main() {
	((EUID == 0)) || peer_die "run as root (PostgreSQL and the tools run as the postgres user)"
	[[ $RUNS =~ ^[1-9][0-9]*$ && $EXTRA_RUNS =~ ^[0-9]+$ ]] || peer_die "BENCH_RUNS must be a positive integer"
	if [[ ! -x $WRITER ]]; then
		make -C "$PEER_ROOT" -s "build/bench/writer" >/dev/null || peer_die "cannot build $WRITER"
	fi
	trap _peer_cleanup EXIT
	trap 'peer_log interrupted; exit 130' INT
	trap 'exit 143' TERM

	local configs=${BENCH_CONFIGS:-default aggressive}
	local scenarios=${BENCH_SCENARIOS:-$PEER_SCENARIOS $PEER_EXTRA_SCENARIOS}
	local c s i n t_start summary=() firsts probes gaps cmds runs_ok bad=0 row='%-10s %-10s %-4s %16s %16s %8s %7s %8s %8s  %s\n'
	t_start=$(_cl_now_ms)
	if [[ " $scenarios " == *" partition "* ]]; then
		netns_available || peer_die "partition: $NETNS_SKIP_REASON"
	fi
	echo "$PEER_TOOL bench: writer on $(peer_writer_conninfo)"
	[[ " $scenarios " == *" partition "* ]] && echo "partition: writer on $(PEER_NS=1 peer_writer_conninfo) (in $(netns_name "$PEER_CLIENT"))"
	echo "every ${INTERVAL_MS} ms, ${TIMEOUT_MS} ms deadline per attempt; cap ${CAP_S} s; ports from $PEER_BASE"
	echo
	# shellcheck disable=SC2059
	printf "$row" config scenario run "first write" "new primary" "max gap" failed missing "primary" "outcome"
	for c in $configs; do
		for s in $scenarios; do
			n=$RUNS
			[[ " $PEER_EXTRA_SCENARIOS " == *" $s "* ]] && n=$EXTRA_RUNS
			firsts=() probes=() gaps=() cmds=() runs_ok=0
			local nones=0
			for ((i = 1; i <= n; i++)); do
				if ! peer_run "$c" "$s"; then
					printf '%-10s %-10s %-4s %s\n' "$c" "$s" "$i" "run failed"
					bad=$((bad + 1))
					peer_thaw
					peer_teardown >/dev/null 2>&1
					_peer_stop_bg
					[[ $PEER_NS == 1 ]] && netns_destroy
					if [[ ${BENCH_KEEP:-0} == 1 ]]; then
						peer_log "kept $PEER_DIR"
					else
						[[ -n $PEER_DIR ]] && rm -rf "$PEER_DIR"
					fi
					PEER_DIR=
					continue
				fi
				runs_ok=$((runs_ok + 1))
				local fw=$R_FIRST
				[[ $fw == none ]] && fw="none in ${R_WAITED} s" && nones=$((nones + 1))
				local pw=$R_PROBE
				[[ $pw == none ]] && pw="none in ${R_WAITED} s"
				# shellcheck disable=SC2059
				printf "$row" "$c" "$s" "$i" "$fw" "$pw" "$R_GAP" "$R_FAILED" "$R_MISSING" "$R_PRIMARY" "$R_OUTCOME"
				firsts+=("$R_FIRST") probes+=("$R_PROBE") gaps+=("$R_GAP") cmds+=("$R_CMD")
			done
			local a b d e f g h j k l m o
			read -r a b d < <(peer_stats "${firsts[@]}")
			read -r e f g < <(peer_stats "${probes[@]}")
			read -r h j k < <(peer_stats "${gaps[@]}")
			read -r l m o < <(peer_stats "${cmds[@]}")
			summary+=("$(printf '%-10s %-10s %5s  %8s %8s %8s   %8s %8s %8s   %8s %8s %8s   %8s %8s %8s' "$c" "$s" \
				"$((runs_ok - nones))/$runs_ok" "$a" "$b" "$d" "$e" "$f" "$g" "$h" "$j" "$k" "$l" "$m" "$o")")
		done
	done
	echo
	echo "summary, ms: median min max of first write (the writer), new primary (the probe, straight to the"
	echo "standbys), max gap (the writer's longest gap between acknowledged writes), command (switchover)"
	printf '%-10s %-10s %5s  %-26s   %-26s   %-26s   %-26s\n' "" "" "" "first write" "new primary" "max gap" "command"
	printf '%-10s %-10s %5s  %8s %8s %8s   %8s %8s %8s   %8s %8s %8s   %8s %8s %8s\n' config scenario "ok" \
		median min max median min max median min max median min max
	printf '%s\n' "${summary[@]}"
	echo
	echo "total $(((($(_cl_now_ms) - t_start) + 500) / 1000)) s; $bad runs failed"
	((bad == 0))
}
