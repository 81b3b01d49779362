#!/usr/bin/env bash
# tests/bench/switchover.sh (part of `make bench`, as root): what a planned switchover costs.
#
# One cluster; BENCH_RUNS (default 5) switchovers back and forth between n0 and n1, each under
# `pgbench -c 16` through PgBouncer (one INSERT per transaction): clients' queued time as pgvigil
# measured it (PAUSE to RESUME), pgbench's failed transactions and aborted clients, and the
# write throughput.  Prints a row per run and median / max.  Figures, not assertions.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=../../scripts/cluster.sh
source "$ROOT/scripts/cluster.sh"
RUNS=${BENCH_RUNS:-5}
BENCH=

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[[ -n $BENCH ]] && kill "$BENCH" 2>/dev/null
	if [[ -n ${CL_DIR:-} && -d $CL_DIR ]]; then
		pgvigild_stop >/dev/null 2>&1
		cluster_destroy "$CL_DIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
((EUID == 0)) || { echo "bench: run as root" >&2; exit 1; }

CL_DIR=$(mktemp -d /tmp/pgvigil-bench-switchover.XXXXXX)
cluster_create "$CL_DIR" >/dev/null 2>&1 || { echo "bench: cluster create failed" >&2; exit 1; }
pgvigild_start
journal_wait 20 '"event":"primary-found"' >/dev/null || { echo "bench: no primary" >&2; exit 1; }
cluster_psql n0 "CREATE TABLE sw (id bigserial PRIMARY KEY, t timestamptz DEFAULT now())" >/dev/null
printf 'INSERT INTO sw DEFAULT VALUES;\n' >"$CL_DIR/sw.sql"
chmod 644 "$CL_DIR/sw.sql"

echo "run  to   queued ms  failed tx  aborted clients  tps"
queued_all=()
from=n0
for ((r = 1; r <= RUNS; r++)); do
	to=n1
	[[ $from == n1 ]] && to=n0
	wait_for 30 cluster_streams_from "$to" "$from" || { echo "bench: $to does not stream from $from" >&2; exit 1; }
	runuser -u postgres -- "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$(cluster_port pgbouncer)" -U postgres \
		-c 16 -j 2 -T 10 -f "$CL_DIR/sw.sql" app >"$CL_DIR/pgbench.$r" 2>&1 &
	BENCH=$!
	sleep 3 # let the load settle: the switchover happens under it
	out=$("$PGVIGIL_BIN/pgvigil" -c "$CL_DIR/pgvigil.conf" switchover --to "$to" --reason "bench run $r" 2>&1)
	wait "$BENCH"
	brc=$?
	BENCH=
	q=$(grep -oE "clients queued -?[0-9]+ ms" <<<"$out" | grep -oE -- "-?[0-9]+")
	failed=$(grep -oE "number of failed transactions: [0-9]+" "$CL_DIR/pgbench.$r" | grep -oE "[0-9]+$")
	tps=$(grep -oE "^tps = [0-9.]+" "$CL_DIR/pgbench.$r" | grep -oE "[0-9.]+$" | head -1)
	aborted=$([[ $brc -eq 0 ]] && echo 0 || echo "yes (exit $brc)")
	printf '%-4s %-4s %9s  %9s  %15s  %s\n' "$r" "$to" "${q:--}" "${failed:--}" "$aborted" "${tps:--}"
	[[ -n $q ]] && queued_all+=("$q")
	journal_wait 30 '"event":"incident-close"' >/dev/null
	from=$to
done
if ((${#queued_all[@]})); then
	sorted=$(printf '%s\n' "${queued_all[@]}" | sort -n)
	n=${#queued_all[@]}
	printf 'queued ms: median %s, max %s (%d runs)\n' "$(sed -n "$(((n + 1) / 2))p" <<<"$sorted")" "$(tail -1 <<<"$sorted")" "$n"
fi
