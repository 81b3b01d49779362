#!/usr/bin/env bash
# tests/bench/run.sh (as root): the primary SIGKILLed, BENCH_RUNS times (default 5): the "kill"
# scenario of tests/bench/scenarios.sh, which `make bench` runs with all the others.
exec env BENCH_SCENARIOS=kill bash "$(dirname "$0")/scenarios.sh"
