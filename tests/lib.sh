# shellcheck shell=bash
# tests/lib.sh: sourced by tests/integration/t_*.sh.
#
#   source "$(dirname "$0")/../lib.sh"
#   t_cluster              # a fresh cluster (scripts/cluster.sh), destroyed when the script exits
#   t_daemon_start         # bin/pgvigild -c $CL_DIR/pgvigil.conf --foreground, in the background
#   check "n1 promoted" cluster_is_primary n1
#   t_done                 # summary; exit status 1 if anything failed
#
# Output is TAP-like: "ok - DESC" / "not ok - DESC"; everything else starts with "# ".  The EXIT
# trap stops pgvigild and destroys the cluster whatever happens (failure, set -e, Ctrl-C); after
# a failure it first prints the tail of pgvigild's log and stderr and of the journal.
# Waits poll to a deadline (wait_for, journal_wait); there are no fixed sleeps in assertions.

T_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/cluster.sh
source "$T_ROOT/scripts/cluster.sh"

T_PASSED=0
T_FAILED=0
T_DIRS=()
T_NAME=$(basename "$0" .sh)

ok() {
	T_PASSED=$((T_PASSED + 1))
	echo "ok - $*"
}

not_ok() {
	T_FAILED=$((T_FAILED + 1))
	echo "not ok - $*"
}

# note TEXT...: diagnostic lines ("# TEXT", each line of a multi-line TEXT prefixed).
note() { printf '%s\n' "$*" | sed 's/^/# /'; }

# check DESC CMD...: ok if CMD succeeds, else not ok (CMD's output is shown as # lines).
check() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if ((rc == 0)); then
		ok "$desc"
	else
		not_ok "$desc"
		[[ -n $out ]] && printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
		note "  (exit status $rc: $*)"
	fi
	return "$rc"
}

# check_not DESC CMD...: ok if CMD fails.
check_not() {
	local desc=$1
	shift
	if "$@" >/dev/null 2>&1; then
		not_ok "$desc"
		note "  (succeeded but should not: $*)"
		return 1
	fi
	ok "$desc"
}

# check_eq DESC EXPECTED ACTUAL
check_eq() {
	if [[ $2 == "$3" ]]; then
		ok "$1"
	else
		not_ok "$1"
		note "  expected: '$2'"
		note "  got:      '$3'"
		return 1
	fi
}

# check_wait DESC SECS CMD...: ok once CMD succeeds within SECS seconds.
check_wait() {
	local desc=$1 secs=$2
	shift 2
	if wait_for "$secs" "$@"; then
		ok "$desc"
	else
		not_ok "$desc"
		note "  (not true within ${secs}s: $*)"
		return 1
	fi
}

# t_tmpdir: makes a temporary directory, removed at exit, and sets T_TMP to it.  (Not for
# $(...): a subshell could not register it for removal.)
t_tmpdir() {
	T_TMP=$(mktemp -d "/tmp/pgvigil-$T_NAME.XXXXXX") || return 1
	T_DIRS+=("$T_TMP")
}

# t_cluster: creates this test's cluster (ports from PGVIGIL_TEST_PORT_BASE) or bails out.
t_cluster() {
	local d
	d=$(mktemp -d "/tmp/pgvigil-$T_NAME.XXXXXX") || t_bail "mktemp failed"
	T_CLUSTER=$d
	cluster_create "$d" || t_bail "cluster create failed (base port ${PGVIGIL_TEST_PORT_BASE:-25300})"
	note "cluster $CL_DIR created in ${CL_CREATE_MS} ms (base port $CL_BASE)"
}

# t_daemon_start [CONF]: starts pgvigild in the foreground, in the background; waits until it
# answers on its control socket or writes its daemon-start record (10 s).
t_daemon_start() {
	local conf=${1:-$CL_DIR/pgvigil.conf}
	pgvigild_start "$conf" || t_bail "cannot start pgvigild"
	if ! wait_for 10 _t_daemon_up; then
		_cl_alive "$PGVIGILD_PID" || t_bail "pgvigild exited at start"
		t_bail "pgvigild did not start within 10 s (no control socket, no daemon-start record)"
	fi
	note "pgvigild running, pid $PGVIGILD_PID"
}
_t_daemon_up() {
	# this daemon's own daemon-start record (a restarted daemon must not pass on its
	# predecessor's), and its control socket
	_cl_alive "$PGVIGILD_PID" && [[ -S $CL_DIR/pgvigil.sock ]] &&
		grep -qE "\"event\":\"daemon-start\".*\"pid\":$PGVIGILD_PID[,}]" "$CL_DIR/journal.jsonl" 2>/dev/null
}

# t_daemon_alive: pgvigild started by t_daemon_start is still running.
t_daemon_alive() { [[ -n ${PGVIGILD_PID:-} ]] && _cl_alive "$PGVIGILD_PID"; }

# t_wait_primary_found [SECS]: waits for the daemon's primary-found record.
t_wait_primary_found() {
	journal_wait "${1:-20}" '"event":"primary-found"' || t_bail "no primary-found record within ${1:-20} s"
}

# t_journal_order DESC SPEC...: ok if the journal holds records matching each SPEC in that order
# (each after the previous).  A SPEC is a |-separated list of fixed strings, e.g.
# 'event":"promote|"phase":"end|"outcome":"ok'.
t_journal_order() {
	local desc=$1 from=0 spec n
	shift
	local -a pats
	for spec in "$@"; do
		IFS='|' read -r -a pats <<<"$spec"
		if ! n=$(journal_find "$from" "${pats[@]}"); then
			not_ok "$desc"
			note "  no record matching [$spec] after journal line $from"
			return 1
		fi
		from=$n
	done
	ok "$desc"
}

# t_bail MESSAGE: a not-ok line and exit (the trap cleans up).
t_bail() {
	not_ok "$T_NAME: $*"
	exit 1
}

# t_done: prints the summary; the script's exit status is 1 if any check failed.
t_done() {
	note "$T_NAME: $T_PASSED passed, $T_FAILED failed"
	((T_FAILED == 0))
	exit $?
}

_t_debug_tail() {
	local f
	[[ -n ${CL_DIR:-} && -d $CL_DIR ]] || return 0
	for f in pgvigild.log pgvigild.stderr journal.jsonl pgbouncer.log; do
		[[ -s $CL_DIR/$f ]] || continue
		note "--- tail of $CL_DIR/$f ---"
		tail -n 30 "$CL_DIR/$f" | sed 's/^/# /'
	done
	note "--- cluster ---"
	cluster_status 2>/dev/null | sed 's/^/# /'
}

# t_bg CMD...: runs CMD in the background in its own process group; the cleanup kills the group
# (a test's helper sessions and loops never outlive it).  Sets T_BG_LAST to its pid.
T_BG_PIDS=()
t_bg() {
	setsid "$@" </dev/null >/dev/null 2>&1 &
	T_BG_LAST=$!
	T_BG_PIDS+=("$T_BG_LAST")
}

# t_bg_stop PID: kills a t_bg group now.
t_bg_stop() {
	kill -KILL -- "-$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

_t_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local p
	for p in "${T_BG_PIDS[@]}"; do t_bg_stop "$p"; done
	if ((rc != 0 || T_FAILED > 0)); then
		_t_debug_tail
		((rc == 0)) && rc=1
	fi
	[[ -n ${PGVIGILD_PID:-} ]] && pgvigild_stop >/dev/null 2>&1
	if [[ -n ${T_CLUSTER:-} && -d $T_CLUSTER ]]; then
		if [[ -e $T_CLUSTER/.pgvigil-test-cluster ]]; then
			cluster_destroy "$T_CLUSTER" || true
		else
			rm -rf "$T_CLUSTER"
		fi
	fi
	local d
	for d in "${T_DIRS[@]}"; do rm -rf "$d"; done
	exit "$rc"
}

trap _t_cleanup EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM

if [[ $EUID -ne 0 ]]; then
	t_bail "integration tests run as root (PostgreSQL and PgBouncer are started as postgres)"
fi
