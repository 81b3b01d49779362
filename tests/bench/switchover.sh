#!/usr/bin/env bash
# tests/bench/switchover.sh (as root): BENCH_RUNS (default 5) planned switchovers under pgbench:
# the "switchover" scenario of tests/bench/scenarios.sh, which `make bench` runs with all the others.
exec env BENCH_SCENARIOS=switchover bash "$(dirname "$0")/scenarios.sh"
