#!/usr/bin/env bash
# tests/bench/detect.sh (as root): what detection costs and buys: lock storms on the writer's table
# and a primary frozen for good, BENCH_RUNS times each (default 5): the "lockstorm" and "freeze"
# scenarios of tests/bench/scenarios.sh, which `make bench` runs with all the others.  (The
# probes' cost: tests/bench/cost.sh.)
exec env BENCH_SCENARIOS="lockstorm freeze" bash "$(dirname "$0")/scenarios.sh"
