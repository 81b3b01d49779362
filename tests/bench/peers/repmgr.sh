#!/usr/bin/env bash
# tests/bench/peers/repmgr.sh (as root; opt-in, not part of `make bench`): repmgr 5 / repmgrd on
# the cluster of scripts/cluster.sh (n0 primary, n1 n2 streaming standbys, PgBouncer), measured with
# pgvigil's bench writer through PgBouncer.  repmgr repoints PgBouncer the way its documentation
# shows (repmgrd-node-fencing.md, "Fencing a failed master node with repmgrd and PgBouncer"): the
# promote_command is a script that runs `repmgr standby promote`, rewrites the PgBouncer %include
# file to the new primary and RELOADs PgBouncer.
#
# Configurations (repmgr-nX.conf, written by write_conf below; docs/benchmarks.md shows them):
#   default     repmgr's defaults plus what automatic failover requires (failover=automatic,
#               promote_command, follow_command) and connect_timeout=2 in conninfo, which the
#               repmgrd documentation ("repmgrd connection settings") tells you to set
#   aggressive  monitor_interval_secs=1, reconnect_attempts=0, reconnect_interval=0: the smallest
#               values repmgr 5.3's configuration parser accepts (it rejects monitor_interval_secs=0;
#               reconnect_attempts=0 fails over after the first failed check); connect_timeout=2 is
#               the effective minimum the repmgrd documentation gives
# Scenarios: kill, freeze (see common.sh).  The agent on the primary node is its repmgrd.
#
#   bash tests/bench/peers/repmgr.sh                      # 3 runs of each, about 10 minutes
#   BENCH_RUNS=1 BENCH_CONFIGS=aggressive BENCH_SCENARIOS=kill bash tests/bench/peers/repmgr.sh
# Ports: PGVIGIL_TEST_PORT_BASE (default 61100) .. +3.
set -uo pipefail
# shellcheck disable=SC2034 # the PEER_* settings are read by common.sh

PEER_TOOL=repmgr
PEER_SCENARIOS="kill freeze"
PEER_EXTRA_SCENARIOS=""
PEER_BASE=${PGVIGIL_TEST_PORT_BASE:-61100}
export PGVIGIL_TEST_PORT_BASE=$PEER_BASE
# shellcheck source=tests/bench/peers/common.sh
source "$(dirname "$0")/common.sh"

REPMGRD_PIDS=()

peer_writer_conninfo() { echo "host=127.0.0.1 port=$((PEER_BASE + 3)) dbname=app user=postgres"; }
peer_probe_conninfo() {
	echo "host=127.0.0.1,127.0.0.1 port=$((PEER_BASE + 1)),$((PEER_BASE + 2)) dbname=peerprobe user=postgres target_session_attrs=read-write connect_timeout=1"
}
peer_primary_port() { echo "$PEER_BASE"; }

peer_victims() {
	peer_pg_victims "$PEER_DIR/n0" || return 1
	[[ $1 == freeze ]] && echo "${REPMGRD_PIDS[0]}"
	return 0
}

# write_conf NODE ID PORT CONFIG: the repmgr.conf of one node.
write_conf() {
	local node=$1 id=$2 port=$3 config=$4 f=$PEER_DIR/repmgr-$1.conf
	cat >"$f" <<EOF
node_id=$id
node_name='$node'
conninfo='host=127.0.0.1 port=$port user=postgres dbname=repmgr connect_timeout=2'
data_directory='$PEER_DIR/$node'
pg_bindir='$PG_BIN'
log_file='$PEER_DIR/repmgrd-$node.log'
repmgrd_pid_file='$PEER_DIR/repmgrd-$node.pid'
service_start_command='$PG_BIN/pg_ctl -D $PEER_DIR/$node -l $PEER_DIR/$node.log -w start'
service_stop_command='$PG_BIN/pg_ctl -D $PEER_DIR/$node -w -m fast stop'
service_restart_command='$PG_BIN/pg_ctl -D $PEER_DIR/$node -l $PEER_DIR/$node.log -w -m fast restart'
failover=automatic
promote_command='$PEER_DIR/promote.sh $f $port'
follow_command='/usr/bin/repmgr standby follow -f $f --log-to-file --upstream-node-id=%n'
EOF
	if [[ $config == aggressive ]]; then
		cat >>"$f" <<EOF
monitor_interval_secs=1
reconnect_attempts=0
reconnect_interval=0
EOF
	fi
	chown postgres:postgres "$f"
}

# The promote_command: repmgr's documented PgBouncer recipe, for one local PgBouncer.
write_promote() {
	cat >"$PEER_DIR/promote.sh" <<EOF
#!/bin/sh
# promote.sh CONF PORT: promote this node, then point PgBouncer's app database at it
set -e
/usr/bin/repmgr standby promote -f "\$1" --log-to-file
printf '[databases]\\napp = host=127.0.0.1 port=%s dbname=postgres\\n' "\$2" >$PEER_DIR/pgvigil-databases.ini.tmp
mv -f $PEER_DIR/pgvigil-databases.ini.tmp $PEER_DIR/pgvigil-databases.ini
$PG_BIN/psql -X -q -h 127.0.0.1 -p $((PEER_BASE + 3)) -U postgres -d pgbouncer -c RELOAD
EOF
	chmod 755 "$PEER_DIR/promote.sh"
	chown postgres:postgres "$PEER_DIR/promote.sh" "$PEER_DIR/pgvigil-databases.ini"
}

_standbys_monitoring() {
	local n
	for n in n1 n2; do
		grep -q 'monitoring connection to upstream node' "$PEER_DIR/repmgrd-$n.log" 2>/dev/null || return 1
	done
}

# step WHAT CMD...: runs CMD; on failure says which step failed (and the tail of LOG, if set).
step() {
	local what=$1
	shift
	"$@" && return 0
	peer_log "repmgr setup: $what failed"
	[[ -n ${LOG:-} && -r $LOG ]] && tail -n 5 "$LOG" | sed 's/^/    /' >&2
	return 1
}

peer_setup() {
	local config=$1 n i LOG=
	REPMGRD_PIDS=()
	cluster_create "$PEER_DIR" || return 1 # prints nothing unless it fails
	# repmgr's library in every node (a restart), its metadata database on the primary
	for n in n0 n1 n2; do
		echo "shared_preload_libraries = 'repmgr'" >>"$PEER_DIR/$n/postgresql.conf"
	done
	for n in n2 n1 n0; do step "stop $n" cluster_stop "$n" || return 1; done
	for n in n0 n1 n2; do step "start $n" cluster_start "$n" || return 1; done
	step "streaming after the restart" wait_for 30 _cl_both_streaming || return 1
	step "CREATE DATABASE repmgr" peer_psql "$PEER_BASE" postgres "CREATE DATABASE repmgr" >/dev/null || return 1
	i=0
	for n in n0 n1 n2; do
		i=$((i + 1))
		write_conf "$n" "$i" $((PEER_BASE + i - 1)) "$config"
	done
	write_promote
	LOG=$PEER_DIR/register.log
	step "primary register" peer_as_pg /usr/bin/repmgr -f "$PEER_DIR/repmgr-n0.conf" primary register >>"$LOG" 2>&1 || return 1
	for n in n1 n2; do
		step "standby register $n" peer_as_pg /usr/bin/repmgr -f "$PEER_DIR/repmgr-$n.conf" standby register \
			--upstream-node-id=1 >>"$LOG" 2>&1 || return 1
	done
	for n in n0 n1 n2; do
		peer_daemon "$PEER_DIR/repmgrd-$n.stderr" /usr/bin/repmgrd -f "$PEER_DIR/repmgr-$n.conf" --daemonize=false
		REPMGRD_PIDS+=("$PEER_LAST")
	done
	LOG=$PEER_DIR/repmgrd-n1.log
	step "repmgrd monitoring within 30 s" wait_for 30 _standbys_monitoring || return 1
}

peer_teardown() {
	[[ -n $PEER_DIR && -d $PEER_DIR ]] || return 0
	peer_stop_pids 5 "${REPMGRD_PIDS[@]}"
	REPMGRD_PIDS=()
	[[ -e $PEER_DIR/.pgvigil-test-cluster ]] && cluster_destroy "$PEER_DIR" >/dev/null 2>&1
	return 0
}

peer_install postgresql-15-repmgr
peer_main "$@"
