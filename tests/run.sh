#!/usr/bin/env bash
# tests/run.sh: runs pgvigil's tests and ends with exactly one line "N passed, N failed".
#
#   tests/run.sh                 unit (build/ then build-asan/) and integration tests
#   tests/run.sh unit            only the cmocka binaries
#   tests/run.sh integration     only tests/integration/t_*.sh
#   tests/run.sh PATH...         the given test scripts or unit binaries
#
# Unit binaries run with CMOCKA_MESSAGE_OUTPUT=TAP; integration scripts print "ok - ..." and
# "not ok - ...".  Every such line counts (a "# SKIP" one as skipped); a program that exits non-zero without a "not ok"
# line (a crash, a bail-out) counts as one failure.  Integration script number i (from 0) gets
# PGVIGIL_TEST_PORT_BASE = base + 10*i (base: PGVIGIL_TEST_PORT_BASE, default 25300), so no two
# share a port.  Exit status 0 only if something ran and nothing failed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
BASE=${PGVIGIL_TEST_PORT_BASE:-25300}
TEST_TIMEOUT=${PGVIGIL_TEST_TIMEOUT:-300}
PASSED=0
FAILED=0
SKIPPED=0
RAN=0
OUT=$(mktemp /tmp/pgvigil-run.XXXXXX) || exit 2
INTERRUPTED=0
trap 'rm -f "$OUT"' EXIT
# The running test gets the signal too and cleans up; stop after it.
trap 'INTERRUPTED=1' INT TERM

# run_one LABEL CMD...: runs CMD under a timeout, shows its output as it comes, counts its lines.
run_one() {
	local label=$1 rc p f s
	shift
	echo "# --- $label"
	# --foreground: Ctrl-C reaches the test itself, whose trap cleans up; on a timeout the test
	# gets SIGTERM (same cleanup) and SIGKILL 30 s later if it is still there.
	# tee ignores SIGINT so the test's cleanup output still gets through after a Ctrl-C.
	timeout --foreground -k 30 "$TEST_TIMEOUT" "$@" 2>&1 | (trap '' INT && exec tee "$OUT")
	rc=${PIPESTATUS[0]}
	if ((INTERRUPTED)); then
		echo "# interrupted"
		exit 130
	fi
	# A SKIP directive counts as skipped whatever precedes it (cmocka prints "not ok N # SKIP").
	s=$(grep -ciE '^(not )?ok( [^#]*)?# *skip' "$OUT")
	p=$(($(grep -cE '^ok( |$)' "$OUT") - $(grep -ciE '^ok( [^#]*)?# *skip' "$OUT")))
	f=$(($(grep -cE '^not ok( |$)' "$OUT") - $(grep -ciE '^not ok( [^#]*)?# *skip' "$OUT")))
	if ((rc != 0 && f == 0)); then
		if ((rc == 124 || rc == 137)); then
			echo "not ok - $label: timed out after ${TEST_TIMEOUT}s"
		else
			echo "not ok - $label: exited with status $rc"
		fi
		f=1
	fi
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
	SKIPPED=$((SKIPPED + s))
	RAN=$((RAN + 1))
}

run_unit_dir() {
	local dir=$1 b
	for b in "$dir"/tests/test_*; do
		[[ -f $b && -x $b ]] || continue
		CMOCKA_MESSAGE_OUTPUT=TAP run_one "$b" "$b"
	done
}

run_unit() {
	run_unit_dir build
	[[ -d build-asan/tests ]] && run_unit_dir build-asan
	return 0
}

run_scripts() {
	local i=0 t
	for t in "$@"; do
		PGVIGIL_TEST_PORT_BASE=$((BASE + 10 * i)) run_one "$t" bash "$t"
		i=$((i + 1))
	done
}

run_integration() {
	local scripts=()
	shopt -s nullglob
	scripts=(tests/integration/t_*.sh)
	shopt -u nullglob
	run_scripts "${scripts[@]}"
}

# The daemon under valgrind through one whole failover (make test sets PGVIGIL_VALGRIND_RUN to
# the valgrind command line; any valgrind error makes pgvigild exit non-zero: the test fails).
run_valgrind() {
	[[ -n ${PGVIGIL_VALGRIND_RUN:-} ]] || return 0
	PGVIGILD_WRAPPER="$PGVIGIL_VALGRIND_RUN" PGVIGIL_TEST_PORT_BASE=$((BASE + 500)) \
		run_one "valgrind: tests/integration/t_failover_kill.sh" bash tests/integration/t_failover_kill.sh
}

if (($# == 0)); then
	run_unit
	run_integration
	run_valgrind
else
	case $1 in
	unit) run_unit ;;
	integration) run_integration ;;
	*)
		scripts=()
		for a in "$@"; do
			if [[ $a == *.sh ]]; then
				scripts+=("$a")
			elif [[ -x $a ]]; then
				CMOCKA_MESSAGE_OUTPUT=TAP run_one "$a" "$a"
			else
				echo "run.sh: no such test: $a" >&2
				exit 2
			fi
		done
		((${#scripts[@]})) && run_scripts "${scripts[@]}"
		;;
	esac
fi

if ((RAN == 0)); then
	echo "# no test found (build first: make all unit)"
fi
if ((SKIPPED > 0)); then
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
	echo "$PASSED passed, $FAILED failed"
fi
((RAN > 0 && FAILED == 0 && PASSED > 0))
