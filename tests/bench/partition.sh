#!/usr/bin/env bash
# tests/bench/partition.sh (as root): the primary's host cut off from everyone, BENCH_RUNS times
# (default 5), and BENCH_FLAPS (default 20) cuts of 1 to 2 s (false failovers), in the network
# namespaces of scripts/netns.sh: the "partition" and "partition-flaps" scenarios of
# tests/bench/scenarios.sh, which `make bench` runs with all the others.
exec env BENCH_SCENARIOS="partition partition-flaps" bash "$(dirname "$0")/scenarios.sh"
