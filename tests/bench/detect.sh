#!/usr/bin/env bash
# tests/bench/detect.sh (as root): what detection costs and buys: lock storms on the writer's table,
# a primary frozen for good (BENCH_RUNS times each, default 5), and the probes' cost with 500 idle
# clients: the "lockstorm", "freeze" and "probecost" scenarios of tests/bench/scenarios.sh, which
# `make bench` runs with all the others.
exec env BENCH_SCENARIOS="lockstorm freeze probecost" bash "$(dirname "$0")/scenarios.sh"
