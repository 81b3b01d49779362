#!/usr/bin/env bash
# tests/bench/peers/run.sh (as root; opt-in): both peer benchmarks, repmgr then pg_auto_failover,
# each with its own ports (PGVIGIL_TEST_PORT_BASE and +100; default 61100 and 61200).  About 55
# minutes with the defaults (BENCH_RUNS=3).  Every variable of common.sh applies to both.
set -uo pipefail
dir=$(dirname "$0")
base=${PGVIGIL_TEST_PORT_BASE:-61100}
rc=0
PGVIGIL_TEST_PORT_BASE=$base bash "$dir/repmgr.sh" || rc=1
echo
PGVIGIL_TEST_PORT_BASE=$((base + 100)) bash "$dir/pg_auto_failover.sh" || rc=1
exit "$rc"
