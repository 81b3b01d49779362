#!/usr/bin/env bash
# tests/bench/backup.sh (as root): base backups through pgvigil against plain pg_basebackup on
# the same data, and the time of a restore drill.  Figures, not a test.
#
# One cluster (ports PGVIGIL_TEST_PORT_BASE, default 57400, .. +3; the drill's copy on +5),
# `pgbench -i -s BENCH_SCALE` (default 50) on the primary, then BENCH_RUNS (default 3) rounds
# of, alternately:
#   plain    pg_basebackup -X stream -c fast (the arguments pgvigil uses), then pg_verifybackup
#   pgvigil  pgvigil backup --wait (pg_basebackup in the daemon's child, pg_verifybackup, catalog)
# Throughput is the backup's size over the copy time (pg_basebackup alone); the ratio is
# pgvigil's over plain's (target 0.95 or better).  The end-to-end ratio compares pgvigil's total
# with plain pg_basebackup + pg_verifybackup.  Then a drill: an incident opened (restore point),
# BENCH_DRILL_S seconds of pgbench writes, and `pgvigil restore --incident --start` timed until
# the copy is paused at the restore point.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
export PGVIGIL_TEST_PORT_BASE=${PGVIGIL_TEST_PORT_BASE:-57400}
# shellcheck source=../../scripts/cluster.sh
source "$ROOT/scripts/cluster.sh"
SCALE=${BENCH_SCALE:-50}
RUNS=${BENCH_RUNS:-3}
DRILL_S=${BENCH_DRILL_S:-10}
WORK=

die() {
	echo "bench: $*" >&2
	exit 1
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[[ -n $WORK && -f $WORK/drill/postmaster.pid ]] &&
		_cl_pg "$PG_BIN/pg_ctl" -D "$WORK/drill" -m immediate -w -s stop >/dev/null 2>&1
	if [[ -n ${CL_DIR:-} && -d $CL_DIR ]]; then
		pgvigild_stop >/dev/null 2>&1
		cluster_destroy "$CL_DIR"
	fi
	[[ -n $WORK ]] && rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

((EUID == 0)) || die "run as root"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
for f in "$PGVIGIL_BIN/pgvigild" "$PGVIGIL_BIN/pgvigil"; do
	[[ -x $f ]] || die "$f not built: run make"
done

now_ms() { _cl_now_ms; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
rate() { awk -v b="$1" -v ms="$2" 'BEGIN { printf "%.1f", (ms > 0 ? b / 1e6 / (ms / 1000) : 0) }'; }
json_int() { [[ $1 =~ \"$2\":([0-9]+) ]] && echo "${BASH_REMATCH[1]}"; }

WORK=$(mktemp -d /tmp/pgvigil-bench-backup.XXXXXX) || die "mktemp failed"
chmod 755 "$WORK"
dir=$(mktemp -d /tmp/pgvigil-bench-cluster.XXXXXX) || die "mktemp failed"
cluster_create "$dir" || die "cluster create failed"
cat >>"$CL_DIR/pgvigil.conf" <<EOF
backup = { directory = "$WORK/pgvigil"; archive_dir = "$CL_DIR/wal-archive"; pg_bin_dir = "$PG_BIN"; keep = 100; };
EOF
PORT=$(cluster_port n0)
echo "bench: pgbench -i -s $SCALE on n0 (port $PORT)..."
t0=$(now_ms)
_cl_pg "$PG_BIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$PORT" -U postgres postgres >/dev/null 2>&1 ||
	die "pgbench -i failed"
cluster_psql n0 "CHECKPOINT" >/dev/null
echo "bench: loaded in $(($(now_ms) - t0)) ms; database $(cluster_psql n0 "SELECT pg_size_pretty(pg_database_size('postgres'))")"
pgvigild_start || die "cannot start pgvigild"
wait_for 20 journal_find 0 '"event":"primary-found"' || die "pgvigild found no primary"

mkdir -p "$WORK/plain"
chown postgres "$WORK/plain"
declare -a P_MS P_BYTES P_VMS V_COPY V_VMS V_TOTAL V_BYTES V_WAIT
printf '%-4s %-8s %10s %10s %10s %10s %10s\n' RUN KIND SIZE_MB COPY_MS MB/S VERIFY_MS TOTAL_MS
for ((r = 1; r <= RUNS; r++)); do
	# plain pg_basebackup, the arguments pgvigil passes
	out=$WORK/plain/$r
	t0=$(now_ms)
	"$PG_BIN/pg_basebackup" -d "host=127.0.0.1 port=$PORT user=postgres" -D "$out" -X stream \
		-c fast -l "plain $r" -w || die "plain pg_basebackup failed"
	t1=$(now_ms)
	"$PG_BIN/pg_verifybackup" -q "$out" || die "plain pg_verifybackup failed"
	t2=$(now_ms)
	bytes=$(du -sb "$out" | cut -f1)
	P_MS+=($((t1 - t0)))
	P_VMS+=($((t2 - t1)))
	P_BYTES+=("$bytes")
	printf '%-4s %-8s %10s %10s %10s %10s %10s\n' "$r" plain "$(mb "$bytes")" $((t1 - t0)) \
		"$(rate "$bytes" $((t1 - t0)))" $((t2 - t1)) $((t2 - t0))
	rm -rf "$out"

	# through pgvigil
	t0=$(now_ms)
	"$PGVIGIL_BIN/pgvigil" -c "$CL_DIR/pgvigil.conf" backup --wait >"$WORK/out" 2>&1 ||
		die "pgvigil backup failed: $(cat "$WORK/out")"
	t1=$(now_ms)
	label=$(sed -n 's/^backup \([^ ]*\) started$/\1/p' "$WORK/out" | head -n 1)
	rec=$(cat "$WORK/pgvigil/$label.json")
	copy=$(json_int "$rec" copy_ms)
	vms=$(json_int "$rec" verify_ms)
	total=$(json_int "$rec" duration_ms)
	bytes=$(json_int "$rec" size_bytes)
	V_COPY+=("$copy")
	V_VMS+=("$vms")
	V_TOTAL+=("$total")
	V_WAIT+=($((t1 - t0)))
	V_BYTES+=("$bytes")
	LAST_LABEL=$label
	printf '%-4s %-8s %10s %10s %10s %10s %10s\n' "$r" pgvigil "$(mb "$bytes")" "$copy" \
		"$(rate "$bytes" "$copy")" "$vms" "$total"
done

p_ms=$(printf '%s\n' "${P_MS[@]}" | median)
p_bytes=$(printf '%s\n' "${P_BYTES[@]}" | median)
p_vms=$(printf '%s\n' "${P_VMS[@]}" | median)
v_copy=$(printf '%s\n' "${V_COPY[@]}" | median)
v_bytes=$(printf '%s\n' "${V_BYTES[@]}" | median)
v_total=$(printf '%s\n' "${V_TOTAL[@]}" | median)
v_wait=$(printf '%s\n' "${V_WAIT[@]}" | median)
p_rate=$(rate "$p_bytes" "$p_ms")
v_rate=$(rate "$v_bytes" "$v_copy")
echo
echo "median plain pg_basebackup:   $(mb "$p_bytes") MB in $p_ms ms = $p_rate MB/s (+ pg_verifybackup $p_vms ms)"
echo "median pgvigil backup (copy): $(mb "$v_bytes") MB in $v_copy ms = $v_rate MB/s (total with verification $v_total ms; pgvigil backup --wait returned after $v_wait ms)"
echo "throughput ratio pgvigil/plain (copy):        $(awk -v a="$v_rate" -v b="$p_rate" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
echo "end-to-end ratio (plain copy+verify / pgvigil total): $(awk -v p=$((p_ms + p_vms)) -v v="$v_total" 'BEGIN { printf "%.3f", (v > 0 ? p / v : 0) }')"

# the drill: an incident, writes after it, a copy recovered to its restore point
id=$("$PGVIGIL_BIN/pgvigil" -c "$CL_DIR/pgvigil.conf" incident open --reason "bench drill") ||
	die "incident open failed"
wait_for 30 journal_find 0 '"event":"restore-point-archived"' '"outcome":"ok"' || die "restore point not archived"
before=$(cluster_psql n0 "SELECT count(*) FROM pgbench_history")
_cl_pg "$PG_BIN/pgbench" -n -T "$DRILL_S" -c 4 -h 127.0.0.1 -p "$PORT" -U postgres postgres >/dev/null 2>&1 ||
	die "pgbench run failed"
wal_after=$(cluster_psql n0 "SELECT pg_size_pretty(pg_current_wal_lsn() - '0/0'::pg_lsn)")
t0=$(now_ms)
"$PGVIGIL_BIN/pgvigil" -c "$CL_DIR/pgvigil.conf" restore --incident "$id" --to "$WORK/drill" --start \
	--port $((PGVIGIL_TEST_PORT_BASE + 5)) >"$WORK/drill.out" 2>&1 || die "restore failed: $(cat "$WORK/drill.out")"
t1=$(now_ms)
got=$(_cl_pg "$PG_BIN/psql" -X -At -h "$WORK/drill" -p $((PGVIGIL_TEST_PORT_BASE + 5)) -U postgres postgres \
	-c "SELECT count(*) FROM pgbench_history")
after=$(cluster_psql n0 "SELECT count(*) FROM pgbench_history")
copied=$(sed -n 's/^copied in \([0-9.]*\) s.*/\1/p' "$WORK/drill.out")
recovered=$(sed -n 's/^recovered in \([0-9.]*\) s/\1/p' "$WORK/drill.out")
echo
echo "restore drill to incident $id (after $DRILL_S s of pgbench writes; WAL position $wal_after):"
echo "  total $((t1 - t0)) ms: copy $copied s, start and recovery to the restore point $recovered s"
echo "  pgbench_history rows: the copy $got, the primary at the incident $before ($([[ $got == "$before" ]] && echo same || echo DIFFERENT)), the primary now $after"
