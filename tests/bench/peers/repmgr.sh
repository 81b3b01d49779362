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
# Scenarios (see common.sh): kill, freeze, switchover, partition; lockstorm (one run).  The agent
# on the primary node is its repmgrd.
#   switchover  `repmgr standby switchover --siblings-follow` on n1, its documented procedure.  It
#               runs its commands on the other nodes over ssh; here every "host" is this machine,
#               so an ssh stand-in (sshbin/ssh, first in repmgr's PATH) runs them locally (each
#               node's repmgr.conf is the one registered in repmgr.nodes).  PgBouncer follows
#               through an event notification: event_notifications=standby_promote runs
#               event.sh, which repoints PgBouncer as promote.sh does (switchover runs only)
#   partition   the cluster of scripts/netns.sh (netns_cluster_create: a host per node, port 5432,
#               PgBouncer on bnc) with repmgr as above, a repmgrd in every node's namespace; the
#               writer and the probe on bnc
#
#   bash tests/bench/peers/repmgr.sh                      # 3 runs of each, about 20 minutes
#   BENCH_RUNS=1 BENCH_CONFIGS=aggressive BENCH_SCENARIOS=kill bash tests/bench/peers/repmgr.sh
# Ports: PGVIGIL_TEST_PORT_BASE (default 61100) .. +3.
set -uo pipefail
# shellcheck disable=SC2034 # the PEER_* settings are read by common.sh

PEER_TOOL=repmgr
PEER_SCENARIOS="kill freeze switchover partition"
PEER_EXTRA_SCENARIOS="lockstorm switchover-load"
PEER_BASE=${PGVIGIL_TEST_PORT_BASE:-61100}
PEER_NS_PORT=5432 # netns_cluster_create's
PEER_ACTION_RE='unable to (ping|connect)|failover|promot|election|reconnect|fenc|WARNING|ERROR'
# shellcheck source=tests/bench/peers/common.sh
source "$(dirname "$0")/common.sh"

REPMGRD_PIDS=()

# PgBouncer's address and port
bouncer_host() { if [[ $PEER_NS == 1 ]]; then netns_addr bnc; else echo 127.0.0.1; fi; }
bouncer_port() { if [[ $PEER_NS == 1 ]]; then echo 6432; else echo $((PEER_BASE + 3)); fi; }
peer_writer_conninfo() { echo "host=$(bouncer_host) port=$(bouncer_port) dbname=app user=postgres"; }
peer_logs() { echo "$PEER_DIR"/repmgrd-n?.log; }

peer_victims() {
	peer_pg_victims "$PEER_DIR/n0" || return 1
	[[ $1 == freeze ]] && echo "${REPMGRD_PIDS[0]}"
	return 0
}

# write_conf N CONFIG: the repmgr.conf of node N.
write_conf() {
	local node=n$1 id=$(($1 + 1)) config=$2 f=$PEER_DIR/repmgr-n$1.conf host port
	host=$(peer_node_host "$1")
	port=$(peer_node_port "$1")
	cat >"$f" <<EOF
node_id=$id
node_name='$node'
conninfo='host=$host port=$port user=postgres dbname=repmgr connect_timeout=2'
data_directory='$PEER_DIR/$node'
pg_bindir='$PG_BIN'
log_file='$PEER_DIR/repmgrd-$node.log'
repmgrd_pid_file='$PEER_DIR/repmgrd-$node.pid'
service_start_command='$PG_BIN/pg_ctl -D $PEER_DIR/$node -l $PEER_DIR/$node.log -w start'
service_stop_command='$PG_BIN/pg_ctl -D $PEER_DIR/$node -w -m fast stop'
service_restart_command='$PG_BIN/pg_ctl -D $PEER_DIR/$node -l $PEER_DIR/$node.log -w -m fast restart'
failover=automatic
promote_command='$PEER_DIR/promote.sh $f $host $port'
follow_command='/usr/bin/repmgr standby follow -f $f --log-to-file --upstream-node-id=%n'
EOF
	if [[ $config == aggressive ]]; then
		cat >>"$f" <<EOF
monitor_interval_secs=1
reconnect_attempts=0
reconnect_interval=0
EOF
	fi
	if [[ $PEER_SCENARIO == switchover* ]]; then
		cat >>"$f" <<EOF
event_notification_command='$PEER_DIR/event.sh %n %e %s'
event_notifications='standby_promote'
EOF
	fi
	chown postgres:postgres "$f"
}

# The promote_command: repmgr's documented PgBouncer recipe, for one PgBouncer (the repoint is
# repoint.sh); event.sh: the same repoint on a standby_promote event (node ids 1 2 3: n0 n1 n2);
# sshbin/ssh: the ssh stand-in of the switchover.
write_scripts() {
	local n
	cat >"$PEER_DIR/repoint.sh" <<EOF
#!/bin/sh
# repoint.sh HOST PORT: point PgBouncer's app database at HOST:PORT
set -e
printf '[databases]\\napp = host=%s port=%s dbname=postgres\\n' "\$1" "\$2" >$PEER_DIR/pgvigil-databases.ini.tmp
mv -f $PEER_DIR/pgvigil-databases.ini.tmp $PEER_DIR/pgvigil-databases.ini
$PG_BIN/psql -X -q -h $(bouncer_host) -p $(bouncer_port) -U postgres -d pgbouncer -c RELOAD
EOF
	cat >"$PEER_DIR/promote.sh" <<EOF
#!/bin/sh
# promote.sh CONF HOST PORT: promote this node, then point PgBouncer's app database at it
set -e
/usr/bin/repmgr standby promote -f "\$1" --log-to-file
exec $PEER_DIR/repoint.sh "\$2" "\$3"
EOF
	{
		printf '#!/bin/sh\n# event.sh NODE-ID EVENT SUCCESS: PgBouncer follows a promoted node\n'
		# shellcheck disable=SC2016 # the script's own arguments
		printf '%s\n' '[ "$3" = 1 ] || exit 0' 'case $1 in'
		for n in 0 1 2; do
			printf '%s) exec %s %s %s ;;\n' $((n + 1)) "$PEER_DIR/repoint.sh" "$(peer_node_host "$n")" "$(peer_node_port "$n")"
		done
		printf 'esac\n'
	} >"$PEER_DIR/event.sh"
	mkdir -p "$PEER_DIR/sshbin"
	cat >"$PEER_DIR/sshbin/ssh" <<EOF
#!/bin/bash
# ssh [OPTION...] HOST COMMAND...: every host is this machine: runs COMMAND here, from HOME
while ((\$#)); do
	case \$1 in
	-[bcDEeFIiJLlmOopQRSWw]) shift 2 ;;
	-*) shift ;;
	*) break ;;
	esac
done
host=\$1
shift
echo "\$(date +%T.%N) ssh \$host: \$*" >>$PEER_DIR/ssh.log
cd "\$HOME" || exit 255
exec /bin/sh -c "\$*"
EOF
	chmod 755 "$PEER_DIR/repoint.sh" "$PEER_DIR/promote.sh" "$PEER_DIR/event.sh" "$PEER_DIR/sshbin/ssh"
	chown -R postgres:postgres "$PEER_DIR/repoint.sh" "$PEER_DIR/promote.sh" "$PEER_DIR/event.sh" \
		"$PEER_DIR/sshbin" "$PEER_DIR/pgvigil-databases.ini"
}

peer_switchover() {
	PEER_PATH=$PEER_DIR/sshbin peer_as_pg /usr/bin/repmgr -f "$PEER_DIR/repmgr-n1.conf" standby switchover \
		--siblings-follow --verbose >"$PEER_DIR/switchover.log" 2>&1
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

to_log() { "$@" >>"$LOG" 2>&1; }
_sees_primary() { [[ $(peer_node_sql "$1" repmgr "SELECT count(*) FROM repmgr.nodes WHERE type = 'primary'") == 1 ]]; }

# make_cluster: the cluster of scripts/cluster.sh, or in the partition scenario the one of
# scripts/netns.sh, with repmgr's library in every node (a restart).
make_cluster() {
	local n
	if [[ $PEER_NS == 1 ]]; then
		netns_cluster_create "$PEER_DIR" >/dev/null || return 1
	else
		cluster_create "$PEER_DIR" || return 1 # prints nothing unless it fails
	fi
	for n in n0 n1 n2; do
		echo "shared_preload_libraries = 'repmgr'" >>"$PEER_DIR/$n/postgresql.conf"
	done
	if [[ $PEER_NS == 1 ]]; then
		for n in n2 n1 n0; do step "stop $n" netns_pg_stop "$PEER_DIR/$n" || return 1; done
		for n in n0 n1 n2; do step "start $n" netns_pg_start "$n" "$PEER_DIR/$n" || return 1; done
		step "streaming after the restart" wait_for 30 _nn_streaming
	else
		for n in n2 n1 n0; do step "stop $n" cluster_stop "$n" || return 1; done
		for n in n0 n1 n2; do step "start $n" cluster_start "$n" || return 1; done
		step "streaming after the restart" wait_for 30 _cl_both_streaming
	fi
}

peer_setup() {
	local config=$1 n LOG=
	REPMGRD_PIDS=()
	make_cluster || return 1
	step "CREATE DATABASE repmgr" peer_node_sql 0 postgres "CREATE DATABASE repmgr" >/dev/null || return 1
	for n in 0 1 2; do write_conf "$n" "$config"; done
	write_scripts
	LOG=$PEER_DIR/register.log
	PEER_IN=n0 step "primary register" to_log peer_as_pg /usr/bin/repmgr -f "$PEER_DIR/repmgr-n0.conf" primary register || return 1
	for n in 1 2; do # standby register reads the primary's record on the standby: replayed yet?
		step "n$n replaying the primary's record" wait_for 10 _sees_primary "$n" || return 1
	done
	for n in n1 n2; do
		PEER_IN=$n step "standby register $n" to_log peer_as_pg /usr/bin/repmgr -f "$PEER_DIR/repmgr-$n.conf" standby register \
			--upstream-node-id=1 || return 1
	done
	for n in n0 n1 n2; do
		PEER_IN=$n peer_daemon "$PEER_DIR/repmgrd-$n.stderr" /usr/bin/repmgrd -f "$PEER_DIR/repmgr-$n.conf" --daemonize=false
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
	[[ -e $PEER_DIR/.pgvigil-netns-cluster ]] && netns_cluster_destroy "$PEER_DIR" >/dev/null 2>&1
	return 0
}

peer_install postgresql-15-repmgr
peer_main "$@"
