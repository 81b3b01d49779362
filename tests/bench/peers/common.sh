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
#   PEER_TOOL PEER_SCENARIOS PEER_EXTRA_SCENARIOS   names
#
# Scenarios:
#   kill         the primary's postmaster and all its children SIGKILLed (the tool's agent on that
#                node, if it has one, keeps running): the definition of pgvigil's run.sh
#   freeze       every process of the primary node SIGSTOPped, by pid: the postmaster, its children
#                and the tool's agent on that node (a hung host)
#   kill-node    kill plus the tool's agent on that node (a host that died)
#   freeze-pg    freeze without the agent (only PostgreSQL hangs): the definition of pgvigil's
#                detect.sh, whose watcher runs off the node
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
# Environment: BENCH_RUNS (3) runs of each main scenario, BENCH_EXTRA_RUNS (1) of each extra one,
# BENCH_CONFIGS ("default aggressive"), BENCH_SCENARIOS (the tool's main and extra ones),
# BENCH_CAP_S (90), BENCH_GRACE_S (15), PGVIGIL_TEST_PORT_BASE (the tool's default), WRITER,
# BENCH_KEEP=1 keeps the directory of a failed run, BENCH_LOGS=DIR copies every run's logs there.

# shellcheck disable=SC2153 # PEER_TOOL, PEER_BASE...: set by the tool script before it sources this
PEER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# shellcheck source=scripts/cluster.sh
source "$PEER_ROOT/scripts/cluster.sh"

WRITER=${WRITER:-$PEER_ROOT/build/bench/writer}
RUNS=${BENCH_RUNS:-3}
EXTRA_RUNS=${BENCH_EXTRA_RUNS:-1}
CAP_S=${BENCH_CAP_S:-90}
GRACE_S=${BENCH_GRACE_S:-15}
INTERVAL_MS=${BENCH_INTERVAL_MS:-20}
TIMEOUT_MS=${BENCH_TIMEOUT_MS:-1000}
PROBE_INTERVAL_MS=100
SPLIT_WAIT_S=5

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
PEER_ENV=()
_peer_as() {
	PEER_AS=(setpriv --reuid=postgres --regid=postgres --init-groups
		env -C / HOME="$PEER_DIR" PATH="$PG_BIN:/usr/bin:/bin" "${PEER_ENV[@]}")
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
peer_psql() {
	PGCONNECT_TIMEOUT=3 timeout -k 1 10 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$1" -U postgres -d "$2" -c "$3" 2>/dev/null
}

peer_is_primary() { [[ $(peer_psql "$1" postgres "SELECT pg_is_in_recovery()") == f ]]; }

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
_rows() { [[ $(peer_psql "$(peer_primary_port)" postgres "SELECT count(*) >= 50 FROM pgvigil_bench") == t ]]; }

# peer_run CONFIG SCENARIO: one run on a fresh cluster; sets R_FIRST (ms or none), R_PROBE,
# R_FAILED, R_MISSING, R_PRIMARY (the nodes answering as primaries when the wait ended), R_SPLIT
# (after a freeze that ended in a failover: YES when the thawed old primary took a direct write,
# else standby / refused / down), R_WAITED (s); returns 1 when the run could not be carried out.
peer_run() {
	local config=$1 scenario=$2 victims t0 now w1 w2 w1_at=0 w2_at=0 old_port line p
	R_FIRST=none R_PROBE=none R_FAILED=- R_MISSING=- R_SPLIT=- R_WAITED=0 R_PRIMARY=-
	PEER_DIR=$(mktemp -d "/tmp/pgvigil-peer-$PEER_TOOL.XXXXXX") || return 1
	chown postgres:postgres "$PEER_DIR"
	chmod 755 "$PEER_DIR"
	peer_setup "$config" || {
		peer_log "$PEER_TOOL: setup failed (logs in $PEER_DIR)"
		return 1
	}
	old_port=$(peer_primary_port)
	if ! peer_psql "$old_port" postgres "CREATE DATABASE peerprobe" >/dev/null ||
		! peer_psql "$old_port" postgres "CREATE TABLE peer_splitbrain (id serial, t timestamptz DEFAULT now())" >/dev/null; then
		peer_log "$PEER_TOOL: cannot prepare the primary on port $old_port"
		return 1
	fi
	_peer_as
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
	local base1 base2
	base1=$(_peer_count "writes succeed again" "$PEER_DIR/writer.err")
	base2=$(_peer_count "writes succeed again" "$PEER_DIR/probe.err")

	# The failure.  peer_victims has SIGSTOPped the postmaster already (no fork in between).
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
	echo "$t0" >"$PEER_DIR/mark.tmp" && mv "$PEER_DIR/mark.tmp" "$PEER_DIR/mark"
	[[ $scenario == kill* ]] && PEER_FROZEN=()
	peer_after_failure "$scenario"

	while :; do
		now=$(peer_now_ns)
		((w1_at == 0)) && (($(_peer_count "writes succeed again" "$PEER_DIR/writer.err") > base1)) && w1_at=$now
		((w2_at == 0)) && (($(_peer_count "writes succeed again" "$PEER_DIR/probe.err") > base2)) && w2_at=$now
		((w1_at && w2_at)) && break
		((w1_at && now - w1_at >= 5000000000)) && break
		((w2_at && !w1_at && now - w2_at >= GRACE_S * 1000000000)) && break
		((now - t0 >= CAP_S * 1000000000)) && break
		sleep 0.1
	done
	R_WAITED=$(((now - t0) / 1000000000))
	# Which nodes answer as primaries now (n0, frozen, is not asked)
	R_PRIMARY=
	for p in 0 1 2; do
		[[ $p == 0 && $scenario == freeze* ]] && continue
		peer_is_primary $((PEER_BASE + p)) && R_PRIMARY+="${R_PRIMARY:+,}n$p"
	done
	R_PRIMARY=${R_PRIMARY:-none}
	kill -TERM "$w2" 2>/dev/null
	kill -TERM "$w1" 2>/dev/null
	wait "$w1" "$w2" 2>/dev/null
	line=$(grep '^writer:' "$PEER_DIR/writer.out" | tail -n 1)
	p=$(_field first_ok_after_kill_ms "$line")
	[[ -n $p && $p != -1 ]] && R_FIRST=$p
	R_FAILED=$(_field failed "$line")
	R_MISSING=$(_field missing_acked "$line")
	[[ $R_MISSING == -1 ]] && R_MISSING='?' # the check could not connect
	line=$(grep '^writer:' "$PEER_DIR/probe.out" | tail -n 1)
	p=$(_field first_ok_after_kill_ms "$line")
	[[ -n $p && $p != -1 ]] && R_PROBE=$p

	[[ $scenario == freeze* ]] && peer_thaw
	if [[ $scenario == freeze* && $R_PRIMARY != none ]]; then
		sleep "$SPLIT_WAIT_S"
		# A write straight to the old primary, 3 s at most: does it still take writes?
		case $(peer_psql "$old_port" postgres "SELECT pg_is_in_recovery()") in
		f)
			if PGCONNECT_TIMEOUT=2 timeout -k 1 3 "$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "$old_port" \
				-U postgres -d postgres -c "SET synchronous_commit = local" \
				-c "INSERT INTO peer_splitbrain DEFAULT VALUES" >/dev/null 2>&1; then
				R_SPLIT=YES
			else
				R_SPLIT=refused
			fi
			;;
		t) R_SPLIT=standby ;;
		*) R_SPLIT=down ;;
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
# run, then per CONFIG x SCENARIO the median / min / max of the two figures.
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
	local c s i n t_start summary=() firsts probes runs_ok bad=0
	t_start=$(_cl_now_ms)
	echo "$PEER_TOOL bench: writer on $(peer_writer_conninfo)"
	echo "every ${INTERVAL_MS} ms, ${TIMEOUT_MS} ms deadline per attempt; cap ${CAP_S} s; ports from $PEER_BASE"
	echo
	printf '%-10s %-10s %-4s %16s %16s %7s %8s %8s %12s\n' config scenario run "first write" "new primary" failed missing "primary" "split brain"
	for c in $configs; do
		for s in $scenarios; do
			n=$RUNS
			[[ " $PEER_EXTRA_SCENARIOS " == *" $s "* ]] && n=$EXTRA_RUNS
			firsts=() probes=() runs_ok=0
			local nones=0
			for ((i = 1; i <= n; i++)); do
				if ! peer_run "$c" "$s"; then
					printf '%-10s %-10s %-4s %s\n' "$c" "$s" "$i" "run failed"
					bad=$((bad + 1))
					peer_thaw
					peer_teardown >/dev/null 2>&1
					_peer_stop_bg
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
				printf '%-10s %-10s %-4s %16s %16s %7s %8s %8s %12s\n' "$c" "$s" "$i" "$fw" "$pw" "$R_FAILED" "$R_MISSING" "$R_PRIMARY" "$R_SPLIT"
				firsts+=("$R_FIRST") probes+=("$R_PROBE")
			done
			local a b d e f g
			read -r a b d < <(peer_stats "${firsts[@]}")
			read -r e f g < <(peer_stats "${probes[@]}")
			summary+=("$(printf '%-10s %-10s %5s  %8s %8s %8s   %8s %8s %8s' "$c" "$s" "$((runs_ok - nones))/$runs_ok" "$a" "$b" "$d" "$e" "$f" "$g")")
		done
	done
	echo
	echo "summary, ms (first write: the writer; new primary: the probe, straight to the standbys)"
	printf '%-10s %-10s %5s  %8s %8s %8s   %8s %8s %8s\n' config scenario "ok" "median" min max "median" min max
	printf '%s\n' "${summary[@]}"
	echo
	echo "total $(((($(_cl_now_ms) - t_start) + 500) / 1000)) s; $bad runs failed"
	((bad == 0))
}
