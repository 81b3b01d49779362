#!/usr/bin/env bash
# netns.sh: a multi-host test topology in network namespaces, and silent network faults in it.
# Run as root (ip netns, nft).
#
# Topology, N derived from PGVIGIL_TEST_PORT_BASE (N = BASE/10 mod 12800, so the bases that
# tests/run.sh hands out, 10 apart, never share an N):
#
#   pgv<N>_br    a namespace holding only the bridge pgvbr<N>, one port per host namespace
#   pgv<N>_n0    10.A.B.10   PostgreSQL nodes, one per namespace ("hosts")
#   pgv<N>_n1    10.A.B.11
#   pgv<N>_n2    10.A.B.12
#   pgv<N>_ctl   10.A.B.2    pgvigild
#   pgv<N>_bnc   10.A.B.3    PgBouncer
#
# with A = 200 + N mod 50 and B = N / 50: a private /24 per topology, assigned only inside
# namespaces this script creates.  The root namespace gets no interface and no address: the
# bridge lives in its own namespace, so no host firewall sees the traffic and nothing outside
# can reach it.  Each host namespace has lo up and eth0, a veth whose other end pgv<N>v<I> is a
# port of the bridge.
#
# Faults are nftables rules on the bridge (table "bridge pgvigil" in pgv<N>_br), dropping the
# IPv4/IPv6 frames of one port.  That is what a partition looks like: packets vanish, senders
# time out.  Dropping inside the cut namespace would not do: an OUTPUT drop fails the sender's
# own send() at once with EPERM, and a link set down answers "Network is unreachable".  ARP
# still passes, so no neighbour entry fails into "Destination Host Unreachable".
#
# As a library (source scripts/netns.sh):
#   netns_available              0 if usable; else 1 and NETNS_SKIP_REASON says why
#   netns_create / netns_destroy the whole topology; destroy is idempotent, kills what still
#                                runs inside, removes the nft table and every namespace
#   netns_name ROLE / netns_addr ROLE / netns_net   pgv<N>_ROLE, its IPv4 address, "10.A.B"
#   netns_exec ROLE CMD...       runs CMD inside ROLE's namespace (ROLE: n0 n1 n2 ctl bnc)
#   netns_cut ROLE               silent partition of ROLE from everyone (lo still works)
#   netns_cut_between R1 R2      silent partition between two hosts only
#   netns_loss ROLE PERCENT      drops PERCENT % of ROLE's packets, each direction
#   netns_heal ROLE              removes every rule naming ROLE; netns_heal_all: all rules
#   netns_rules                  the bridge's rule set
#   netns_pg_start ROLE DIR [PORT]   a PostgreSQL 15 instance inside ROLE, listening on ROLE's
#                                    address (default port 5432), data in DIR (initdb'd when
#                                    empty, owned by postgres; DIR's parent must be traversable),
#                                    its Unix socket in DIR.sock, its log DIR.log
#   netns_pg_stop DIR            stops it (fast, then immediate)
#   netns_psql FROM ROLE SQL [PORT]   psql from namespace FROM to ROLE's address, as postgres,
#                                    connect_timeout=2, unaligned tuples only
#   netns_cluster_create DIR ...     a primary, two standbys, PgBouncer and a pgvigil.conf, each
#                                    on its own host (see "a whole cluster" below)
# As a command:  scripts/netns.sh create | destroy | status | cut ROLE | cut-between R1 R2 |
#                loss ROLE PERCENT | heal ROLE | heal-all | addr ROLE | exec ROLE CMD...

NETNS_ROLES=(n0 n1 n2 ctl bnc)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

_nn_err() { echo "netns.sh: $*" >&2; }

_nn_now_ms() {
	local t=${EPOCHREALTIME//[.,]/}
	echo $((t / 1000))
}

# Sets NN_N, NN_BRNS, NN_BRIDGE, NN_NET from PGVIGIL_TEST_PORT_BASE.
_nn_init() {
	local base=${PGVIGIL_TEST_PORT_BASE:-25300}
	NN_N=$(((base / 10) % 12800))
	NN_BRNS=pgv${NN_N}_br
	NN_BRIDGE=pgvbr${NN_N}
	NN_NET=10.$((200 + NN_N % 50)).$((NN_N / 50))
}

_nn_index() {
	case $1 in
	n0) echo 0 ;;
	n1) echo 1 ;;
	n2) echo 2 ;;
	ctl) echo 3 ;;
	bnc) echo 4 ;;
	*)
		_nn_err "unknown role '$1' (n0 n1 n2 ctl bnc)"
		return 1
		;;
	esac
}

netns_name() {
	_nn_init
	_nn_index "$1" >/dev/null || return 1
	echo "pgv${NN_N}_$1"
}

netns_addr() {
	_nn_init
	case $1 in
	n0) echo "$NN_NET.10" ;;
	n1) echo "$NN_NET.11" ;;
	n2) echo "$NN_NET.12" ;;
	ctl) echo "$NN_NET.2" ;;
	bnc) echo "$NN_NET.3" ;;
	*)
		_nn_err "unknown role '$1' (n0 n1 n2 ctl bnc)"
		return 1
		;;
	esac
}

netns_net() {
	_nn_init
	echo "$NN_NET"
}

# The bridge-side port of ROLE's veth.
_nn_port() {
	local i
	_nn_init
	i=$(_nn_index "$1") || return 1
	echo "pgv${NN_N}v$i"
}

_nn_exists() { [[ -e /run/netns/$1 ]]; }

netns_available() {
	NETNS_SKIP_REASON=
	if [[ $EUID -ne 0 ]]; then
		NETNS_SKIP_REASON="not root (network namespaces need root)"
		return 1
	fi
	if ! command -v ip >/dev/null 2>&1; then
		NETNS_SKIP_REASON="no ip command (iproute2)"
		return 1
	fi
	if ! command -v nft >/dev/null 2>&1; then
		NETNS_SKIP_REASON="no nft command (nftables)"
		return 1
	fi
	_nn_init
	local probe=pgv${NN_N}_probe out
	ip netns del "$probe" 2>/dev/null
	if ! out=$(ip netns add "$probe" 2>&1); then
		NETNS_SKIP_REASON="ip netns add fails here: $out"
		return 1
	fi
	if ! out=$(ip netns exec "$probe" nft add table bridge pgvprobe 2>&1); then
		ip netns del "$probe" 2>/dev/null
		NETNS_SKIP_REASON="nftables bridge family unavailable: $out"
		return 1
	fi
	ip netns del "$probe"
	return 0
}

netns_exec() {
	local ns
	ns=$(netns_name "$1") || return 2
	shift
	ip netns exec "$ns" "$@"
}

# Kills every process inside namespace ns (TERM, KILL after 3 s) and waits for them.
_nn_kill_inside() {
	local ns=$1 pids end
	pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
	[[ -n ${pids// /} ]] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	end=$(($(_nn_now_ms) + 3000))
	while [[ -n $(ip netns pids "$ns" 2>/dev/null) ]]; do
		if (($(_nn_now_ms) > end)); then
			pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
			# shellcheck disable=SC2086
			kill -KILL $pids 2>/dev/null
			sleep 0.1
			break
		fi
		sleep 0.05
	done
	return 0
}

netns_destroy() {
	local r ns
	_nn_init
	for r in "${NETNS_ROLES[@]}"; do
		ns=pgv${NN_N}_$r
		_nn_exists "$ns" || continue
		_nn_kill_inside "$ns"
		ip netns del "$ns" 2>/dev/null || _nn_err "cannot delete namespace $ns"
	done
	if _nn_exists "$NN_BRNS"; then
		ip netns exec "$NN_BRNS" nft delete table bridge pgvigil 2>/dev/null
		_nn_kill_inside "$NN_BRNS"
		ip netns del "$NN_BRNS" 2>/dev/null || _nn_err "cannot delete namespace $NN_BRNS"
	fi
	ip netns del "pgv${NN_N}_probe" 2>/dev/null
	return 0
}

netns_create() {
	local r ns port addr
	_nn_init
	netns_destroy
	ip netns add "$NN_BRNS" || return 1
	ip -n "$NN_BRNS" link set lo up &&
		ip -n "$NN_BRNS" link add "$NN_BRIDGE" type bridge &&
		ip -n "$NN_BRNS" link set "$NN_BRIDGE" up || {
		_nn_err "cannot create the bridge $NN_BRIDGE"
		return 1
	}
	for r in "${NETNS_ROLES[@]}"; do
		ns=pgv${NN_N}_$r
		port=$(_nn_port "$r")
		addr=$(netns_addr "$r")
		ip netns add "$ns" &&
			ip -n "$NN_BRNS" link add "$port" type veth peer name eth0 netns "$ns" &&
			ip -n "$NN_BRNS" link set "$port" master "$NN_BRIDGE" up &&
			ip -n "$ns" link set lo up &&
			ip -n "$ns" addr add "$addr/24" dev eth0 &&
			ip -n "$ns" link set eth0 up || {
			_nn_err "cannot set up namespace $ns"
			return 1
		}
	done
	ip netns exec "$NN_BRNS" nft -f - <<EOF || return 1
table bridge pgvigil {
	chain forward {
		type filter hook forward priority 0; policy accept;
	}
}
EOF
}

_nn_nft() {
	_nn_init
	ip netns exec "$NN_BRNS" nft "$@"
}

netns_rules() { _nn_nft list table bridge pgvigil; }

netns_cut() {
	local p
	p=$(_nn_port "$1") || return 2
	_nn_nft add rule bridge pgvigil forward iifname "$p" ether type '{ ip, ip6 }' drop comment "\"[$1] cut\"" &&
		_nn_nft add rule bridge pgvigil forward oifname "$p" ether type '{ ip, ip6 }' drop comment "\"[$1] cut\""
}

netns_cut_between() {
	local p1 p2
	p1=$(_nn_port "$1") || return 2
	p2=$(_nn_port "$2") || return 2
	_nn_nft add rule bridge pgvigil forward iifname "$p1" oifname "$p2" ether type '{ ip, ip6 }' drop comment "\"[$1][$2] cut\"" &&
		_nn_nft add rule bridge pgvigil forward iifname "$p2" oifname "$p1" ether type '{ ip, ip6 }' drop comment "\"[$1][$2] cut\""
}

netns_loss() {
	local p pct=$2
	p=$(_nn_port "$1") || return 2
	[[ $pct =~ ^[0-9]+$ ]] && ((pct <= 100)) || {
		_nn_err "loss: PERCENT must be 0..100, got '$pct'"
		return 2
	}
	_nn_nft add rule bridge pgvigil forward iifname "$p" ether type '{ ip, ip6 }' numgen random mod 100 '<' "$pct" drop comment "\"[$1] loss $pct\"" &&
		_nn_nft add rule bridge pgvigil forward oifname "$p" ether type '{ ip, ip6 }' numgen random mod 100 '<' "$pct" drop comment "\"[$1] loss $pct\""
}

netns_heal() {
	local role=$1 h
	_nn_index "$role" >/dev/null || return 2
	for h in $(_nn_nft -a list chain bridge pgvigil forward | awk -v tag="[$role]" 'index($0, tag) && /# handle/ { print $NF }'); do
		_nn_nft delete rule bridge pgvigil forward handle "$h" || return 1
	done
}

netns_heal_all() { _nn_nft flush chain bridge pgvigil forward; }

# --- PostgreSQL inside a namespace ---------------------------------------------------------------

_nn_pg() { (cd / && runuser -u postgres -- "$@"); }

# _nn_pg_conf ROLE DIR PORT: appends ROLE's own settings to DIR's postgresql.conf (later lines
# win over what a base backup copied) and the topology's lines to pg_hba.conf.
_nn_pg_conf() {
	local role=$1 dir=$2 port=$3 ns addr net
	ns=$(netns_name "$role") || return 2
	addr=$(netns_addr "$role")
	net=$(netns_net)
	# sockets beside the data directory: a base backup would copy their lock files
	mkdir -p "$dir.sock" && chown postgres: "$dir.sock" && chmod 700 "$dir.sock" || return 1
	rm -f "$dir"/.s.PGSQL.*
	cat >>"$dir/postgresql.conf" <<EOF || return 1

# --- pgvigil test node $role in namespace $ns (scripts/netns.sh) ---
listen_addresses = '$addr'
port = $port
unix_socket_directories = '$dir.sock'
cluster_name = '$role'
max_connections = 30
shared_buffers = 16MB
huge_pages = off
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 256MB
hot_standby = on
wal_log_hints = on
wal_retrieve_retry_interval = 1s
wal_receiver_status_interval = 1s
wal_receiver_timeout = 5s
log_line_prefix = '%m [%p] %q%a '
EOF
	grep -q "^host all all $net.0/24 trust" "$dir/pg_hba.conf" && return 0
	cat >>"$dir/pg_hba.conf" <<EOF
# every host of the test topology (scripts/netns.sh)
host all all $net.0/24 trust
host replication all $net.0/24 trust
EOF
}

netns_pg_start() {
	local role=$1 dir=$2 port=${3:-5432} ns
	ns=$(netns_name "$role") || return 2
	[[ -n $dir ]] || {
		_nn_err "usage: netns_pg_start ROLE DIR [PORT]"
		return 2
	}
	mkdir -p "$dir" && chown postgres: "$dir" && chmod 700 "$dir" || return 1
	dir=$(cd "$dir" && pwd)
	if [[ ! -e $dir/PG_VERSION ]]; then
		_nn_pg "$PG_BIN/initdb" -D "$dir" --auth=trust -U postgres -E UTF8 --locale=C \
			--no-sync --no-instructions >"$dir.initdb.log" 2>&1 || {
			_nn_err "initdb failed:"
			cat "$dir.initdb.log" >&2
			return 1
		}
		_nn_pg_conf "$role" "$dir" "$port" || return 1
	fi
	touch "$dir.log" && chown postgres: "$dir.log"
	ip netns exec "$ns" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir" -l "$dir.log" -w -t 60 -s start >/dev/null || {
		_nn_err "$role: pg_ctl start failed; tail of $dir.log:"
		tail -n 20 "$dir.log" >&2
		return 1
	}
}

netns_pg_stop() {
	local dir=$1
	[[ -r $dir/postmaster.pid ]] || return 0
	_nn_pg "$PG_BIN/pg_ctl" -D "$dir" -m fast -w -t 20 -s stop >/dev/null 2>&1 ||
		_nn_pg "$PG_BIN/pg_ctl" -D "$dir" -m immediate -w -t 10 -s stop >/dev/null 2>&1
}

netns_psql() {
	local from=$1 role=$2 sql=$3 port=${4:-5432} addr
	addr=$(netns_addr "$role") || return 2
	netns_exec "$from" runuser -u postgres -- timeout -k 2 15 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-d "host=$addr port=$port user=postgres dbname=postgres connect_timeout=2" -c "$sql"
}

# --- a whole cluster in the topology -------------------------------------------------------------
#
# netns_cluster_create DIR: like scripts/cluster.sh, but each server on its own "host": n0 the
# primary and n1, n2 streaming standbys (pg_basebackup across the bridge) at their namespaces'
# addresses, port 5432; PgBouncer in bnc at its address, port 6432; DIR/pgvigil.conf for a
# pgvigild in ctl (netns_pgvigild_start).  DIR (absent or empty) holds everything, like a
# cluster.sh directory: n0/ n1/ n2/ NODE.log pgbouncer.* pgvigil-databases.ini pgvigil.conf
# journal.jsonl pgvigil.sock pgvigild.*.  Waits until both standbys stream (30 s).
#   netns_cluster_psql FROM NODE SQL   NODE: n0 n1 n2, app (PgBouncer database app), admin
#   netns_pgvigild_start DIR / netns_pgvigild_stop DIR    pgvigild --foreground inside ctl
#   netns_cluster_destroy DIR          stops all of it and removes DIR
#   netns_cluster_local_fence DIR      gives each node of DIR/pgvigil.conf its pgdata and pg_bin
#                                      (before pgvigild starts): the fence's pg_ctl stop / SIGKILL

_nn_wait() {
	local secs=$1 end
	shift
	end=$(($(_nn_now_ms) + secs * 1000))
	until "$@" >/dev/null 2>&1; do
		(($(_nn_now_ms) >= end)) && return 1
		sleep 0.1
	done
}

netns_cluster_psql() {
	local from=$1 node=$2 sql=$3 db=postgres port=5432 host
	case $node in
	app | admin)
		host=$(netns_addr bnc)
		port=6432
		[[ $node == admin ]] && db=pgbouncer || db=app
		;;
	*) host=$(netns_addr "$node") || return 2 ;;
	esac
	netns_exec "$from" runuser -u postgres -- timeout -k 2 15 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-d "host=$host port=$port user=postgres dbname=$db connect_timeout=2" -c "$sql"
}

_nn_streaming() {
	[[ $(netns_cluster_psql ctl n0 "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name IN ('n1', 'n2')") == 2 ]]
}

netns_cluster_create() {
	local dir=$1 n pids=() p rc=0 n0 bnc net
	[[ -n $dir ]] || {
		_nn_err "usage: netns_cluster_create DIR"
		return 2
	}
	_nn_exists "$(netns_name ctl)" || {
		_nn_err "no topology: netns_create first"
		return 1
	}
	mkdir -p "$dir" && [[ -z $(ls -A "$dir") ]] || {
		_nn_err "$dir is not empty"
		return 1
	}
	dir=$(cd "$dir" && pwd)
	touch "$dir/.pgvigil-netns-cluster"
	chown postgres: "$dir" && chmod 755 "$dir"
	n0=$(netns_addr n0)
	bnc=$(netns_addr bnc)
	net=$(netns_net)
	netns_pg_start n0 "$dir/n0" || return 1
	for n in n1 n2; do
		netns_exec "$n" runuser -u postgres -- "$PG_BIN/pg_basebackup" -h "$n0" -p 5432 -U postgres -w \
			-D "$dir/$n" -X stream -c fast --no-sync >"$dir/basebackup-$n.log" 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	((rc)) && {
		_nn_err "pg_basebackup failed:"
		cat "$dir"/basebackup-n?.log >&2
		return 1
	}
	for n in n1 n2; do
		_nn_pg_conf "$n" "$dir/$n" 5432 || return 1
		touch "$dir/$n/standby.signal" && chown postgres: "$dir/$n/standby.signal"
		echo "primary_conninfo = 'host=$n0 port=5432 user=postgres application_name=$n connect_timeout=2'" \
			>>"$dir/$n/postgresql.auto.conf"
		netns_pg_start "$n" "$dir/$n" || return 1
	done

	printf '[databases]\napp = host=%s port=5432 dbname=postgres\n' "$n0" >"$dir/pgvigil-databases.ini"
	printf '"postgres" ""\n' >"$dir/pgbouncer-users.txt"
	mkdir -p "$dir/sock" && chown postgres: "$dir/sock"
	cat >"$dir/pgbouncer.ini" <<EOF
%include $dir/pgvigil-databases.ini

[pgbouncer]
listen_addr = $bnc
listen_port = 6432
unix_socket_dir = $dir/sock
auth_type = trust
auth_file = $dir/pgbouncer-users.txt
admin_users = postgres
pool_mode = transaction
max_client_conn = 200
default_pool_size = 10
ignore_startup_parameters = extra_float_digits
server_login_retry = 0.1
server_connect_timeout = 2
query_wait_timeout = 15
client_login_timeout = 15
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
	chmod 644 "$dir/pgvigil-databases.ini" "$dir/pgbouncer.ini" "$dir/pgbouncer-users.txt"
	netns_exec bnc runuser -u postgres -- /usr/sbin/pgbouncer -d -q "$dir/pgbouncer.ini" || {
		_nn_err "pgbouncer failed to start:"
		tail -n 20 "$dir/pgbouncer.log" >&2
		return 1
	}
	_nn_wait 10 netns_cluster_psql ctl admin "SHOW VERSION" || {
		_nn_err "pgbouncer not answering on $bnc:6432"
		return 1
	}

	cat >"$dir/pgvigil.conf" <<EOF
# pgvigil configuration for the namespace cluster in $dir (written by scripts/netns.sh);
# pgvigild runs in $(netns_name ctl) ($(netns_addr ctl)), every node on its own host.
cluster = {
  name = "netns";
  nodes = (
    { name = "n0"; conninfo = "host=$n0 port=5432 user=postgres dbname=postgres"; priority = 100; },
    { name = "n1"; conninfo = "host=$(netns_addr n1) port=5432 user=postgres dbname=postgres"; priority = 100; },
    { name = "n2"; conninfo = "host=$(netns_addr n2) port=5432 user=postgres dbname=postgres"; priority = 50; }
  );
};
probe = { interval_ms = 500; timeout_ms = 1000; retry_interval_ms = 100; };
failover = { mode = "automatic"; confirm_failures = 3; promote_timeout_ms = 30000; repoint_timeout_ms = 10000; };
journal = { path = "$dir/journal.jsonl"; };
control = { socket = "$dir/pgvigil.sock"; pidfile = "$dir/pgvigild.pid"; };
log = { path = "$dir/pgvigild.log"; level = "info"; };
pgbouncer = {
  admin_conninfo = "host=$bnc port=6432 dbname=pgbouncer user=postgres";
  include_file = "$dir/pgvigil-databases.ini";
  timeout_ms = 2000;
  databases = ( { name = "app"; dbname = "postgres"; } );
};
EOF
	_nn_wait 30 _nn_streaming || {
		_nn_err "standbys not streaming from n0 after 30 s"
		return 1
	}
}

# netns_cluster_local_fence DIR: adds pgdata and pg_bin to each node of DIR/pgvigil.conf, as
# scripts/cluster.sh does.  The namespaces share this machine's file system and pid space, so
# pgvigild's "stop" fence (pg_ctl stop -m immediate, SIGKILL of a local server) reaches a node
# whatever the network does to it: a stand-in for the fence a real host gets over ssh.
netns_cluster_local_fence() {
	local dir=$1 n
	[[ -r $dir/pgvigil.conf ]] || {
		_nn_err "usage: netns_cluster_local_fence DIR (no DIR/pgvigil.conf)"
		return 2
	}
	dir=$(cd "$dir" && pwd)
	for n in n0 n1 n2; do
		sed -i "s|^\(    { name = \"$n\"; conninfo = \"[^\"]*\"; priority = [0-9]*;\) }|\1 pgdata = \"$dir/$n\"; pg_bin = \"$PG_BIN\"; }|" \
			"$dir/pgvigil.conf" || return 1
	done
	[[ $(grep -c 'pgdata = ' "$dir/pgvigil.conf") == 3 ]] || {
		_nn_err "netns_cluster_local_fence: cannot add pgdata to $dir/pgvigil.conf"
		return 1
	}
}

netns_pgvigild_start() {
	local dir=$1 bin=${PGVIGIL_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bin}
	[[ -x $bin/pgvigild ]] || {
		_nn_err "$bin/pgvigild not built (make)"
		return 1
	}
	# shellcheck disable=SC2086
	ip netns exec "$(netns_name ctl)" ${PGVIGILD_WRAPPER:-} "$bin/pgvigild" -c "$dir/pgvigil.conf" --foreground \
		>>"$dir/pgvigild.stderr" 2>&1 </dev/null &
	echo $! >"$dir/pgvigild.fgpid"
}

netns_pgvigild_stop() {
	local dir=$1 pid end
	[[ -r $dir/pgvigild.fgpid ]] || return 0
	pid=$(cat "$dir/pgvigild.fgpid")
	kill -TERM "$pid" 2>/dev/null
	end=$(($(_nn_now_ms) + 10000))
	while kill -0 "$pid" 2>/dev/null; do
		if (($(_nn_now_ms) > end)); then
			kill -KILL "$pid" 2>/dev/null
			break
		fi
		sleep 0.05
	done
	wait "$pid" 2>/dev/null
	rm -f "$dir/pgvigild.fgpid"
	return 0
}

netns_cluster_destroy() {
	local dir=$1 n pid
	[[ -n $dir && -d $dir ]] || return 0
	[[ -e $dir/.pgvigil-netns-cluster ]] || {
		_nn_err "refusing to destroy $dir: not made by netns_cluster_create"
		return 1
	}
	netns_pgvigild_stop "$dir"
	if [[ -r $dir/pgbouncer.pid ]]; then
		pid=$(cat "$dir/pgbouncer.pid")
		[[ $pid =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null
	fi
	for n in n0 n1 n2; do
		[[ -r $dir/$n/postmaster.pid ]] &&
			_nn_pg "$PG_BIN/pg_ctl" -D "$dir/$n" -m immediate -w -t 10 -s stop >/dev/null 2>&1
	done
	rm -rf "$dir"
}

# --- command line ----------------------------------------------------------------------------

netns_status() {
	local r ns
	_nn_init
	echo "topology N=$NN_N net $NN_NET.0/24 bridge $NN_BRIDGE in $NN_BRNS"
	for r in "${NETNS_ROLES[@]}"; do
		ns=pgv${NN_N}_$r
		if _nn_exists "$ns"; then
			echo "$r $ns $(netns_addr "$r") port $(_nn_port "$r") processes $(ip netns pids "$ns" | wc -l)"
		else
			echo "$r $ns absent"
		fi
	done
	_nn_exists "$NN_BRNS" && netns_rules
}

_nn_main() {
	local cmd=${1:-}
	shift || true
	case $cmd in
	create) netns_available || {
		_nn_err "$NETNS_SKIP_REASON"
		return 1
	} && netns_create && netns_status ;;
	destroy) netns_destroy ;;
	status) netns_status ;;
	cut) netns_cut "$@" ;;
	cut-between) netns_cut_between "$@" ;;
	loss) netns_loss "$@" ;;
	heal) netns_heal "$@" ;;
	heal-all) netns_heal_all ;;
	addr) netns_addr "$@" ;;
	exec) netns_exec "$@" ;;
	*)
		sed -n '/^# As a library/,/^#                loss ROLE/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
		return 2
		;;
	esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -uo pipefail
	_nn_main "$@"
	exit $?
fi
