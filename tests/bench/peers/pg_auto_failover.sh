#!/usr/bin/env bash
# tests/bench/peers/pg_auto_failover.sh (as root; opt-in, not part of `make bench`):
# pg_auto_failover 2.0 (Debian packages pg-auto-failover-cli, postgresql-15-auto-failover): a
# monitor node and three keepers (`pg_autoctl run`), n0 primary and n1 n2 secondaries, all on
# 127.0.0.1, as the postgres user, data (and pg_autoctl's XDG config, state and runtime files) in a
# temporary directory.  pg_auto_failover has no PgBouncer integration: its documented client path
# is a libpq multi-host connection string with target_session_attrs=read-write (`pg_autoctl show
# uri`), so the bench writer uses
#   host=127.0.0.1,127.0.0.1,127.0.0.1 port=B,B+1,B+2 dbname=postgres user=postgres
#   target_session_attrs=read-write connect_timeout=1
# Caveat (docs/benchmarks.md): the writer drives libpq's asynchronous API with its own 1 s deadline,
# and libpq ignores connect_timeout there, so an attempt never gets past a frozen first host.
#
# Configurations:
#   default     pg_autoctl's and the monitor's defaults (pgautofailover.* GUCs untouched)
#   aggressive  the monitor's GUCs (its docs' "Configuring pg_auto_failover"; they accept anything
#               from 1 ms) at the smallest values that still mean something with keepers that
#               report every second (PG_AUTOCTL_KEEPER_SLEEP_TIME, fixed): see AGGRESSIVE below
# Scenarios (see common.sh): kill, freeze, switchover, partition (main), kill-node, freeze-pg,
# lockstorm (extra).  The agent on the primary node is its keeper, `pg_autoctl run` and its two
# children (which start Postgres and talk to the monitor).
#   switchover  `pg_autoctl perform switchover` (on n0's host; it waits until the switchover is done)
#   partition   the hosts of scripts/netns.sh: the monitor on ctl, a keeper and its node on each of
#               n0 n1 n2 (the same ports as below, each at its host's address), the writer and the
#               probe on bnc
#
#   bash tests/bench/peers/pg_auto_failover.sh            # about 30 minutes
# Ports: PGVIGIL_TEST_PORT_BASE (default 61200): nodes B .. B+2, monitor B+3.
set -uo pipefail
# shellcheck disable=SC2034 # the PEER_* settings are read by common.sh

PEER_TOOL=pg_auto_failover
PEER_SCENARIOS="kill freeze switchover partition"
PEER_EXTRA_SCENARIOS="kill-node freeze-pg lockstorm switchover-load"
PEER_ACTION_RE='goal state|unhealthy|failover|promot|demot'
PEER_BASE=${PGVIGIL_TEST_PORT_BASE:-61200}
# shellcheck source=tests/bench/peers/common.sh
source "$(dirname "$0")/common.sh"

AGGRESSIVE="pgautofailover.health_check_period = 1000
pgautofailover.health_check_timeout = 1000
pgautofailover.health_check_max_retries = 1
pgautofailover.health_check_retry_delay = 100
pgautofailover.node_considered_unhealthy_timeout = 2000
pgautofailover.primary_demote_timeout = 1000"

MONITOR_PID=
KEEPER_PIDS=()
MON_PORT=$((PEER_BASE + 3))
mon_host() { if [[ $PEER_NS == 1 ]]; then netns_addr ctl; else echo 127.0.0.1; fi; }
mon_uri() { echo "postgres://autoctl_node@$(mon_host):$MON_PORT/pg_auto_failover?sslmode=disable"; }

peer_writer_conninfo() { peer_hosts_conninfo postgres 0 1 2; }
peer_logs() { echo "$PEER_DIR/monitor.log $PEER_DIR/n0.log $PEER_DIR/n1.log $PEER_DIR/n2.log"; }
mon_sql() { peer_psql_at "$(mon_host)" "$MON_PORT" "$@"; }

peer_switchover() {
	PEER_IN=n0 peer_as_pg /usr/bin/pg_autoctl perform switchover --pgdata "$PEER_DIR/n0" >"$PEER_DIR/switchover.log" 2>&1
}

peer_victims() {
	local keeper=() p
	case $1 in
	freeze | kill-node)
		mapfile -t keeper < <(peer_children "${KEEPER_PIDS[0]}")
		keeper=("${KEEPER_PIDS[0]}" "${keeper[@]}")
		kill -STOP "${keeper[@]}" 2>/dev/null # first, so it sees nothing of what follows
		;;
	esac
	peer_pg_victims "$PEER_DIR/n0" || return 1
	for p in "${keeper[@]}"; do echo "$p"; done
}

# The nodes as the monitor sees them: "n0:primary/primary n1:secondary/secondary ...".
pgaf_state() {
	mon_sql pg_auto_failover "SELECT string_agg(nodename || ':' || reportedstate || '/' || goalstate, ' ' ORDER BY nodeid) FROM pgautofailover.node"
}
_pgaf_ready() {
	[[ $(pgaf_state) == "n0:primary/primary n1:secondary/secondary n2:secondary/secondary" ]]
}
_pgaf_node_up() { # NAME STATE
	[[ " $(pgaf_state) " == *" $1:$2/$2 "* ]]
}
# The monitor fails nothing over in its first startup_grace_period (10 s) after it started.
_pgaf_grace_over() {
	[[ $(mon_sql postgres "SELECT now() - pg_postmaster_start_time() > interval '12 s'") == t ]]
}

pgaf() { peer_as_pg /usr/bin/pg_autoctl "$@" >>"$PEER_DIR/create.log" 2>&1; }
# The address node N (0 1 2) or the monitor (3) listens on
listen_addr() {
	if [[ $PEER_NS != 1 ]]; then
		echo 127.0.0.1
	elif [[ $1 == 3 ]]; then
		netns_addr ctl
	else
		netns_addr "n$1"
	fi
}

peer_setup() {
	local config=$1 i state
	MONITOR_PID='' KEEPER_PIDS=()
	mkdir -p "$PEER_DIR/xdg/config" "$PEER_DIR/xdg/data" "$PEER_DIR/xdg/run"
	chmod 700 "$PEER_DIR/xdg/run"
	chown -R postgres:postgres "$PEER_DIR"
	# (the Unix sockets stay in Debian's /var/run/postgresql: pg_autoctl runs initdb and starts
	# Postgres in one step, with no way to set unix_socket_directories first)
	PEER_ENV=(XDG_CONFIG_HOME="$PEER_DIR/xdg/config" XDG_DATA_HOME="$PEER_DIR/xdg/data"
		XDG_RUNTIME_DIR="$PEER_DIR/xdg/run")

	local PEER_IN=ctl
	pgaf create monitor --pgdata "$PEER_DIR/monitor" --pgport "$MON_PORT" --hostname "$(listen_addr 3)" \
		--auth trust --no-ssl || return 1
	pgaf config set --pgdata "$PEER_DIR/monitor" postgresql.listen_addresses "$(listen_addr 3)" || return 1
	if [[ $config == aggressive ]]; then
		printf '\n# pgvigil peer bench: aggressive failover settings\n%s\n' "$AGGRESSIVE" >>"$PEER_DIR/monitor/postgresql.conf"
	fi
	[[ $PEER_NS == 1 ]] && printf 'host all all %s.0/24 trust\n' "$(netns_net)" >>"$PEER_DIR/monitor/pg_hba.conf"
	peer_daemon "$PEER_DIR/monitor.log" /usr/bin/pg_autoctl run --pgdata "$PEER_DIR/monitor"
	MONITOR_PID=$PEER_LAST
	wait_for 30 mon_sql pg_auto_failover "SELECT 1" || return 1

	for i in 0 1 2; do
		PEER_IN=n$i
		pgaf create postgres --pgdata "$PEER_DIR/n$i" --pgport $((PEER_BASE + i)) --listen "$(listen_addr "$i")" \
			--hostname "$(listen_addr "$i")" --name "n$i" --auth trust --no-ssl --monitor "$(mon_uri)" || return 1
		[[ $PEER_NS == 1 ]] && printf 'host all all %s.0/24 trust\n' "$(netns_net)" >>"$PEER_DIR/n$i/pg_hba.conf"
		peer_daemon "$PEER_DIR/n$i.log" /usr/bin/pg_autoctl run --pgdata "$PEER_DIR/n$i"
		KEEPER_PIDS+=("$PEER_LAST")
		state=secondary
		((i == 0)) && state=single
		wait_for 60 _pgaf_node_up "n$i" "$state" || {
			peer_log "n$i did not reach $state: $(pgaf_state)"
			return 1
		}
		# the clients' host too (hba_level minimal lets in the other nodes only)
		[[ $PEER_NS == 1 ]] && { wait_for 20 peer_as_pg "$PG_BIN/pg_ctl" -D "$PEER_DIR/n$i" reload -s || return 1; }
	done
	wait_for 60 _pgaf_ready || {
		peer_log "formation not ready: $(pgaf_state)"
		return 1
	}
	wait_for 30 _pgaf_grace_over
}

peer_teardown() {
	local d
	[[ -n $PEER_DIR && -d $PEER_DIR ]] || return 0
	# pg_autoctl run stops its Postgres on SIGTERM; whatever is left (a keeper killed on purpose)
	# is stopped by pid
	peer_stop_pids 20 "${KEEPER_PIDS[@]}" $MONITOR_PID
	KEEPER_PIDS=() MONITOR_PID=''
	peer_stop_cluster_pg "$PEER_DIR/n0" "$PEER_DIR/n1" "$PEER_DIR/n2" "$PEER_DIR/monitor"
	for d in n0 n1 n2 monitor; do peer_drop_shm "$PEER_DIR/$d"; done
	# the socket files a SIGKILLed postmaster left behind (nothing listens on these ports any more)
	for d in 0 1 2 3; do
		d=/var/run/postgresql/.s.PGSQL.$((PEER_BASE + d))
		[[ -e $d ]] && _cl_port_free "${d##*.}" && rm -f "$d" "$d.lock"
	done
	# pg_autoctl falls back to /tmp/pg_autoctl/<pgdata> for its runtime files
	if [[ -d /tmp/pg_autoctl$PEER_DIR ]]; then
		rm -rf "/tmp/pg_autoctl$PEER_DIR"
		rmdir -p "$(dirname "/tmp/pg_autoctl$PEER_DIR")" 2>/dev/null
	fi
	return 0
}

peer_install pg-auto-failover-cli postgresql-15-auto-failover
peer_main "$@"
