#!/usr/bin/env bash
# cluster.sh: throw-away PostgreSQL clusters for pgvigil's tests, demo and bench.
#
# A cluster lives in one temporary directory owned by the postgres OS user (PostgreSQL and
# PgBouncer refuse to run as root, and nothing they run may live in the repository):
#
#   n0/ n1/ n2/             data directories: n0 primary, n1 and n2 streaming standbys (no slots)
#   n0.log n1.log n2.log    server logs               sock/   Unix sockets
#   wal-archive/            WAL archive of every node (archive_mode = on, archive_command cp)
#   pgbouncer.ini           %includes pgvigil-databases.ini (root-writable, pgvigil rewrites it)
#   pgbouncer.log .pid      pgbouncer-users.txt
#   pgvigil.conf            the pgvigil configuration for this cluster
#   journal.jsonl pgvigil.sock pgvigild.pid pgvigild.log pgvigild.stderr   (pgvigild's files)
#   cluster.env             the ports, so later commands need only the directory
#
# Ports: base B = PGVIGIL_TEST_PORT_BASE (default 25300): n0 B, n1 B+1, n2 B+2, PgBouncer B+3.
# Everything listens on 127.0.0.1 only.  Waits poll to a deadline; no fixed sleeps.
#
# As a command (run as root):
#   scripts/cluster.sh create [DIR]          prints DIR (a new mktemp directory when omitted)
#   scripts/cluster.sh start|stop|kill DIR NODE   NODE: n0 n1 n2 pgbouncer
#   scripts/cluster.sh psql DIR NODE SQL     NODE: n0 n1 n2, app (through PgBouncer), admin
#   scripts/cluster.sh status DIR            one line per node: name port role pid
#   scripts/cluster.sh destroy DIR           stops pgvigild, PgBouncer, PostgreSQL; rm -rf DIR
# As a library: `source scripts/cluster.sh`, then cluster_create DIR, cluster_kill n0,
# cluster_psql n1 "SELECT 1", wait_for 10 cmd..., journal_wait 30 '"event":"incident-close"'...
# Functions act on the cluster named by CL_DIR (set by cluster_create / cluster_use).

CL_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PGVIGIL_BIN=${PGVIGIL_BIN:-$CL_REPO/bin}
CL_NODES=(n0 n1 n2)
CL_DIR=${CL_DIR:-}
CL_BASE=${CL_BASE:-}

_cl_err() { echo "cluster: $*" >&2; }

_cl_now_ms() {
	local t=${EPOCHREALTIME//[.,]/}
	echo $((t / 1000))
}

# Runs a command as the postgres OS user, from a directory that user can read.
_cl_pg() {
	if [[ $(id -un) == postgres ]]; then
		(cd / && "$@")
	else
		(cd / && runuser -u postgres -- "$@")
	fi
}

# True if pid names a live (not zombie) process.
_cl_alive() {
	local pid=$1 state
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/stat ]] || return 1
	state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]]
}

# True if pid is alive and its command name is comm (guards against a reused pid).
_cl_alive_as() {
	local pid=$1 comm=$2
	_cl_alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]
}

# wait_for SECS CMD...: runs CMD (output discarded) every 100 ms until it succeeds (return 0)
# or SECS seconds have passed (return 1).
wait_for() {
	local secs=$1
	shift
	local end=$(($(_cl_now_ms) + secs * 1000))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		(($(_cl_now_ms) >= end)) && return 1
		sleep 0.1
	done
}

# wait_gone SECS PID...: waits until none of the pids is alive.
wait_gone() {
	local secs=$1
	shift
	local end=$(($(_cl_now_ms) + secs * 1000)) p any
	while :; do
		any=0
		for p in "$@"; do _cl_alive "$p" && any=1; done
		((any)) || return 0
		(($(_cl_now_ms) >= end)) && return 1
		sleep 0.05
	done
}

# cluster_use DIR: makes DIR the current cluster (reads DIR/cluster.env).
cluster_use() {
	local dir=$1
	[[ -f $dir/cluster.env ]] || {
		_cl_err "$dir is not a pgvigil test cluster (no cluster.env)"
		return 1
	}
	CL_DIR=$(cd "$dir" && pwd)
	# shellcheck disable=SC1091
	source "$CL_DIR/cluster.env"
}

# cluster_port NODE: n0 n1 n2 pgbouncer (also: app, admin, bouncer = the PgBouncer port).
cluster_port() {
	case $1 in
	n0) echo $((CL_BASE + 0)) ;;
	n1) echo $((CL_BASE + 1)) ;;
	n2) echo $((CL_BASE + 2)) ;;
	pgbouncer | bouncer | app | admin) echo $((CL_BASE + 3)) ;;
	*)
		_cl_err "unknown node '$1'"
		return 1
		;;
	esac
}

# cluster_node_of_port PORT: the node name listening on PORT.
cluster_node_of_port() {
	local n
	for n in "${CL_NODES[@]}"; do
		[[ $(cluster_port "$n") == "$1" ]] && {
			echo "$n"
			return 0
		}
	done
	return 1
}

# cluster_psql NODE SQL [psql args...]: one psql as postgres, unaligned, tuples only, 10 s cap.
# NODE: n0 n1 n2 (database postgres), app (PgBouncer database app), admin (PgBouncer console).
cluster_psql() {
	local node=$1 sql=$2 port db
	shift 2
	port=$(cluster_port "$node") || return 2
	case $node in
	app) db=app ;;
	admin | pgbouncer | bouncer) db=pgbouncer ;;
	*) db=postgres ;;
	esac
	_cl_pg env PGCONNECT_TIMEOUT=3 timeout -k 2 10 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$port" -U postgres -d "$db" -c "$sql" "$@"
}

# cluster_in_recovery NODE: prints t or f (pg_is_in_recovery()).
cluster_in_recovery() { cluster_psql "$1" "SELECT pg_is_in_recovery()"; }

# cluster_is_primary NODE / cluster_is_standby NODE: succeed when the node answers as such.
cluster_is_primary() { [[ $(cluster_in_recovery "$1" 2>/dev/null) == f ]]; }
cluster_is_standby() { [[ $(cluster_in_recovery "$1" 2>/dev/null) == t ]]; }

# cluster_upstream_port NODE: the sender_port of NODE's walreceiver when it is streaming.
cluster_upstream_port() {
	cluster_psql "$1" "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'"
}

# cluster_streams_from NODE FROM: NODE's walreceiver is streaming from FROM's port.
cluster_streams_from() {
	[[ $(cluster_upstream_port "$1" 2>/dev/null) == "$(cluster_port "$2")" ]]
}

# cluster_bouncer_port DB: the port PgBouncer's SHOW DATABASES gives for DB (default app).
cluster_bouncer_port() {
	local db=${1:-app}
	cluster_psql admin "SHOW DATABASES" -F '|' | awk -F '|' -v db="$db" '$1 == db { print $3 }'
}

# cluster_postmaster_pid NODE: the pid in postmaster.pid if that process is alive.
cluster_postmaster_pid() {
	local f=$CL_DIR/$1/postmaster.pid pid
	[[ -r $f ]] || return 1
	pid=$(head -n 1 "$f")
	_cl_alive_as "$pid" postgres || return 1
	echo "$pid"
}

cluster_bouncer_pid() {
	local pid
	[[ -r $CL_DIR/pgbouncer.pid ]] || return 1
	pid=$(head -n 1 "$CL_DIR/pgbouncer.pid")
	_cl_alive_as "$pid" pgbouncer || return 1
	echo "$pid"
}

_cl_port_free() {
	! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

_cl_pg_start() {
	local node=$1
	_cl_pg "$PG_BIN/pg_ctl" -D "$CL_DIR/$node" -l "$CL_DIR/$node.log" -w -t 60 -s start >/dev/null || {
		_cl_err "$node: pg_ctl start failed; tail of $CL_DIR/$node.log:"
		tail -n 20 "$CL_DIR/$node.log" >&2
		return 1
	}
}

_cl_bouncer_start() {
	_cl_pg /usr/sbin/pgbouncer -d -q "$CL_DIR/pgbouncer.ini" || {
		_cl_err "pgbouncer failed to start; tail of $CL_DIR/pgbouncer.log:"
		tail -n 20 "$CL_DIR/pgbouncer.log" >&2
		return 1
	}
	wait_for 10 cluster_psql admin "SHOW VERSION" || {
		_cl_err "pgbouncer admin console not answering on port $(cluster_port pgbouncer)"
		return 1
	}
}

# cluster_start NODE: starts a stopped node (n0 n1 n2) or PgBouncer (pgbouncer).
cluster_start() {
	case $1 in
	pgbouncer | bouncer) _cl_bouncer_start ;;
	*) _cl_pg_start "$1" ;;
	esac
}

# cluster_stop NODE [MODE]: pg_ctl stop -m MODE (default fast) or SIGTERM PgBouncer.
cluster_stop() {
	local node=$1 mode=${2:-fast} pid
	case $node in
	pgbouncer | bouncer)
		pid=$(cluster_bouncer_pid) || return 0
		kill -TERM "$pid" 2>/dev/null
		wait_gone 10 "$pid" || return 1
		rm -f "$CL_DIR/pgbouncer.pid"
		;;
	*)
		cluster_postmaster_pid "$node" >/dev/null || return 0
		_cl_pg "$PG_BIN/pg_ctl" -D "$CL_DIR/$node" -m "$mode" -w -t 30 -s stop
		;;
	esac
}

# _cl_kill_tree PID: SIGKILLs a postmaster and all its children.  The postmaster is stopped
# first so it cannot fork a child between the listing and the kill.
_cl_kill_tree() {
	local pm=$1 kids
	kill -STOP "$pm" 2>/dev/null
	kids=$(pgrep -P "$pm" | tr '\n' ' ')
	# the instant of the kill itself (CLOCK_REALTIME ns), for the figures of demo and bench
	local t=${EPOCHREALTIME//[.,]/}
	echo "${t}000" >"$CL_DIR/kill.ns"
	# shellcheck disable=SC2086
	kill -KILL "$pm" $kids 2>/dev/null
	# shellcheck disable=SC2086
	wait_gone 10 "$pm" $kids
}

# Removes the SysV interlock segment of a node whose processes are all gone (a SIGKILLed
# postmaster cannot), using the id in its postmaster.pid, and only if nothing is attached.
_cl_drop_shm() {
	local f=$CL_DIR/$1/postmaster.pid id nattch
	[[ -r $f ]] || return 0
	read -r _ id < <(sed -n 7p "$f")
	[[ $id =~ ^[0-9]+$ ]] || return 0
	nattch=$(ipcs -m -i "$id" 2>/dev/null | awk -F'nattch=' 'NF > 1 { split($2, a, /[ \t]/); print a[1] }')
	[[ $nattch == 0 ]] && ipcrm -m "$id" 2>/dev/null
	return 0
}

# cluster_kill NODE: SIGKILL, no shutdown: the postmaster and all its children (n0 n1 n2), or
# PgBouncer.  Returns once every killed process is gone.
# cluster_freeze NODE / cluster_thaw NODE: SIGSTOP / SIGCONT the postmaster and every child, by
# pid (backends setsid(), so a process-group signal misses them): a hung server, not a dead one.
cluster_freeze() {
	local pm kids
	pm=$(cluster_postmaster_pid "$1") || return 1
	kids=$(pgrep -P "$pm" | tr '\n' ' ')
	local t=${EPOCHREALTIME//[.,]/}
	echo "${t}000" >"$CL_DIR/freeze.ns"
	# shellcheck disable=SC2086
	kill -STOP "$pm" $kids
}

cluster_thaw() {
	local pm kids
	pm=$(cluster_postmaster_pid "$1") || return 1
	kids=$(pgrep -P "$pm" | tr '\n' ' ')
	# shellcheck disable=SC2086
	kill -CONT "$pm" $kids
}

cluster_kill() {
	local node=$1 pm
	case $node in
	pgbouncer | bouncer)
		pm=$(cluster_bouncer_pid) || {
			_cl_err "pgbouncer is not running"
			return 1
		}
		kill -KILL "$pm"
		wait_gone 10 "$pm" || return 1
		rm -f "$CL_DIR/pgbouncer.pid" # see below: a zombie would hold it
		;;
	*)
		pm=$(cluster_postmaster_pid "$node") || {
			_cl_err "$node is not running"
			return 1
		}
		_cl_kill_tree "$pm" || {
			_cl_err "$node: processes survived SIGKILL"
			return 1
		}
		_cl_drop_shm "$node"
		# The dead postmaster may linger as a zombie (a container's init that does not reap):
		# kill(pid, 0) still succeeds on it, so a restart would take its lock file as held.
		# Same for the socket's lock file.
		rm -f "$CL_DIR/$node/postmaster.pid" "$CL_DIR/sock/.s.PGSQL.$(cluster_port "$node").lock"
		;;
	esac
}

# cluster_write_pgvigil_conf DIR BASE [FILE]: writes the pgvigil configuration of a cluster in
# DIR with base port BASE (to FILE, default DIR/pgvigil.conf).  Needs no running cluster.
cluster_write_pgvigil_conf() {
	local dir=$1 base=$2 file=${3:-$1/pgvigil.conf}
	cat >"$file" <<EOF
# pgvigil configuration for the test cluster in $dir (written by scripts/cluster.sh)
cluster = {
  name = "test";
  nodes = (
    { name = "n0"; conninfo = "host=127.0.0.1 port=$((base + 0)) user=postgres dbname=postgres"; priority = 100;
      pgdata = "$CL_DIR/n0"; pg_bin = "$PG_BIN"; },
    { name = "n1"; conninfo = "host=127.0.0.1 port=$((base + 1)) user=postgres dbname=postgres"; priority = 100;
      pgdata = "$CL_DIR/n1"; pg_bin = "$PG_BIN"; },
    { name = "n2"; conninfo = "host=127.0.0.1 port=$((base + 2)) user=postgres dbname=postgres"; priority = 50;
      pgdata = "$CL_DIR/n2"; pg_bin = "$PG_BIN"; }
  );
};
probe = { interval_ms = 500; timeout_ms = 1000; retry_interval_ms = 100; };
failover = { mode = "automatic"; confirm_failures = 3; promote_timeout_ms = 30000; repoint_timeout_ms = 10000; };
journal = { path = "$dir/journal.jsonl"; };
control = { socket = "$dir/pgvigil.sock"; pidfile = "$dir/pgvigild.pid"; };
log = { path = "$dir/pgvigild.log"; level = "info"; };
pgbouncer = {
  admin_conninfo = "host=127.0.0.1 port=$((base + 3)) dbname=pgbouncer user=postgres";
  include_file = "$dir/pgvigil-databases.ini";
  timeout_ms = 2000;
  databases = ( { name = "app"; dbname = "postgres"; } );
};
backup = { archive_dir = "$dir/wal-archive"; pg_bin_dir = "$PG_BIN"; };
EOF
}

# cluster_set_bouncer_target PORT [DB]: rewrites the include file atomically to point app at
# PORT and RELOADs PgBouncer, the way pgvigil does it (for harness checks and manual drills).
cluster_set_bouncer_target() {
	local port=$1 db=${2:-postgres} f=$CL_DIR/pgvigil-databases.ini
	printf '[databases]\napp = host=127.0.0.1 port=%s dbname=%s\n' "$port" "$db" >"$f.tmp" &&
		chmod 644 "$f.tmp" && mv -f "$f.tmp" "$f" && cluster_psql admin "RELOAD"
}

_cl_node_conf() {
	local node=$1 port=$2
	cat >>"$CL_DIR/$node/postgresql.conf" <<EOF

# --- pgvigil test node $node (scripts/cluster.sh) ---
port = $port
cluster_name = '$node'
EOF
}

# cluster_create [DIR]: creates, starts and checks a cluster; sets CL_DIR; prints nothing.
# DIR must be absent or empty; without DIR a new /tmp/pgvigil-cluster.XXXXXX is made.
cluster_create() {
	local dir=${1:-} base=${PGVIGIL_TEST_PORT_BASE:-25300} t0 n p
	t0=$(_cl_now_ms)
	if [[ $EUID -ne 0 ]]; then
		_cl_err "run as root (PostgreSQL and PgBouncer are started as the postgres user)"
		return 1
	fi
	id postgres >/dev/null 2>&1 || {
		_cl_err "no postgres OS user: run scripts/deps.sh"
		return 1
	}
	[[ -x $PG_BIN/initdb ]] || {
		_cl_err "$PG_BIN/initdb missing: run scripts/deps.sh"
		return 1
	}
	[[ -x /usr/sbin/pgbouncer ]] || {
		_cl_err "/usr/sbin/pgbouncer missing: run scripts/deps.sh"
		return 1
	}
	for p in "$base" $((base + 1)) $((base + 2)) $((base + 3)); do
		_cl_port_free "$p" || {
			_cl_err "port $p on 127.0.0.1 is in use (set PGVIGIL_TEST_PORT_BASE)"
			return 1
		}
	done
	if [[ -z $dir ]]; then
		dir=$(mktemp -d /tmp/pgvigil-cluster.XXXXXX) || return 1
	else
		mkdir -p "$dir" || return 1
		[[ -z $(ls -A "$dir") ]] || {
			_cl_err "$dir is not empty"
			return 1
		}
	fi
	CL_DIR=$(cd "$dir" && pwd)
	CL_BASE=$base
	touch "$CL_DIR/.pgvigil-test-cluster"
	printf 'CL_BASE=%s\nPG_BIN=%s\n' "$CL_BASE" "$PG_BIN" >"$CL_DIR/cluster.env"
	mkdir -p "$CL_DIR/sock" "$CL_DIR/wal-archive"
	chown postgres:postgres "$CL_DIR" "$CL_DIR/sock" "$CL_DIR/wal-archive"
	chmod 755 "$CL_DIR"
	chmod 700 "$CL_DIR/sock" "$CL_DIR/wal-archive"

	# n0: the primary.  fsync stays on (tests count acknowledged writes); initdb's own files are
	# not synced (--no-sync), which only matters if the machine crashes during the test.
	_cl_pg "$PG_BIN/initdb" -D "$CL_DIR/n0" --auth=trust -U postgres -E UTF8 --locale=C \
		--no-sync --no-instructions >"$CL_DIR/initdb.log" 2>&1 || {
		_cl_err "initdb failed:"
		cat "$CL_DIR/initdb.log" >&2
		return 1
	}
	cat >>"$CL_DIR/n0/postgresql.conf" <<EOF

# --- pgvigil test cluster (scripts/cluster.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$CL_DIR/sock'
max_connections = 50
shared_buffers = 16MB
huge_pages = off
wal_level = replica
hot_standby = on
wal_log_hints = on
# WAL archive for point-in-time restores (pgvigil backup.archive_dir); the standbys inherit it
# and archive once promoted.  Never overwrites a segment already there.
archive_mode = on
archive_command = 'test ! -f $CL_DIR/wal-archive/%f && cp %p $CL_DIR/wal-archive/%f'
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 256MB
fsync = on
synchronous_commit = on
# A repointed or orphaned walreceiver retries every second instead of every 5 s.
wal_retrieve_retry_interval = 1s
wal_receiver_status_interval = 1s
# What pgvigil's docs recommend: a standby pings an idle primary every 2.5 s, so one that heard
# nothing for longer (failover.standby_stale_ms = 0: 3.5 s) has lost it, and gives up on a
# frozen primary after 5 s.
wal_receiver_timeout = 5s
log_line_prefix = '%m [%p] %q%a '
log_min_messages = info
EOF
	_cl_node_conf n0 "$base" || return 1
	_cl_pg_start n0 || return 1

	# n1, n2: base backups of n0 in parallel, then standby.signal and their own primary_conninfo
	# (the same as pg_basebackup -R would write, minus its noise, plus application_name = node).
	local pids=() rc=0
	for n in n1 n2; do
		_cl_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$base" -U postgres -w -D "$CL_DIR/$n" \
			-X stream -c fast --no-sync >"$CL_DIR/basebackup-$n.log" 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	if ((rc)); then
		_cl_err "pg_basebackup failed:"
		cat "$CL_DIR"/basebackup-n?.log >&2
		return 1
	fi
	for n in n1 n2; do
		_cl_node_conf "$n" "$(cluster_port "$n")" || return 1
		_cl_pg touch "$CL_DIR/$n/standby.signal"
		_cl_pg sh -c "cat >>'$CL_DIR/$n/postgresql.auto.conf'" <<EOF
primary_conninfo = 'host=127.0.0.1 port=$base user=postgres application_name=$n connect_timeout=2'
EOF
	done
	pids=()
	for n in n1 n2; do
		_cl_pg_start "$n" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	((rc)) && return 1

	# PgBouncer.  The databases live in a file of their own that pgvigil rewrites (as root) and
	# PgBouncer (as postgres) reads; pgbouncer.ini %includes it before its own section.
	printf '[databases]\napp = host=127.0.0.1 port=%s dbname=postgres\n' "$base" >"$CL_DIR/pgvigil-databases.ini"
	chmod 644 "$CL_DIR/pgvigil-databases.ini"
	printf '"postgres" ""\n' >"$CL_DIR/pgbouncer-users.txt"
	cat >"$CL_DIR/pgbouncer.ini" <<EOF
%include $CL_DIR/pgvigil-databases.ini

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $((base + 3))
unix_socket_dir = $CL_DIR/sock
auth_type = trust
auth_file = $CL_DIR/pgbouncer-users.txt
admin_users = postgres
pool_mode = transaction
max_client_conn = 200
default_pool_size = 10
ignore_startup_parameters = extra_float_digits
; After one failed login PgBouncer refuses every client needing a new server connection for
; server_login_retry seconds (default 15), and RELOAD does not reset it (only a successful
; login does): with 0.1 s the pool reaches the new primary right after pgvigil's RELOAD.
server_login_retry = 0.1
; A blackholed (frozen, partitioned) target fails after 2 s instead of 15.  On loopback a good
; connection takes a few ms, so 2 s is ample.
server_connect_timeout = 2
; Clients queued for a server (during a failover) give up after 15 s instead of 120.
query_wait_timeout = 15
client_login_timeout = 15
logfile = $CL_DIR/pgbouncer.log
pidfile = $CL_DIR/pgbouncer.pid
EOF
	chmod 644 "$CL_DIR/pgbouncer.ini" "$CL_DIR/pgbouncer-users.txt"
	_cl_bouncer_start || return 1

	cluster_write_pgvigil_conf "$CL_DIR" "$base" || return 1

	# Both standbys stream from n0.
	wait_for 30 _cl_both_streaming || {
		_cl_err "standbys not streaming after 30 s"
		cluster_psql n0 "SELECT application_name, state FROM pg_stat_replication" >&2
		return 1
	}
	CL_CREATE_MS=$(($(_cl_now_ms) - t0))
}

_cl_both_streaming() {
	[[ $(cluster_psql n0 "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name IN ('n1', 'n2')") == 2 ]]
}

# cluster_wait_replayed NODE [SECS]: waits until NODE has replayed the primary n0's current
# WAL position (call while n0 is the primary).
cluster_wait_replayed() {
	local node=$1 secs=${2:-10} lsn
	lsn=$(cluster_psql n0 "SELECT pg_current_wal_lsn()") || return 1
	wait_for "$secs" _cl_replayed "$node" "$lsn"
}
_cl_replayed() {
	[[ $(cluster_psql "$1" "SELECT pg_last_wal_replay_lsn() >= '$2'::pg_lsn") == t ]]
}

# --- pgvigild and its journal ------------------------------------------------------------------

# pgvigild_start [CONF]: starts bin/pgvigild -c CONF --foreground in the background (stdout and
# stderr to CL_DIR/pgvigild.stderr); sets PGVIGILD_PID.  Does not wait for anything.
pgvigild_start() {
	local conf=${1:-$CL_DIR/pgvigil.conf}
	[[ -x $PGVIGIL_BIN/pgvigild ]] || {
		_cl_err "$PGVIGIL_BIN/pgvigild not built (make)"
		return 1
	}
	# PGVIGILD_WRAPPER runs the daemon under a tool, e.g. valgrind (make valgrind)
	# shellcheck disable=SC2086
	${PGVIGILD_WRAPPER:-} "$PGVIGIL_BIN/pgvigild" -c "$conf" --foreground >>"$CL_DIR/pgvigild.stderr" 2>&1 </dev/null &
	PGVIGILD_PID=$!
	echo "$PGVIGILD_PID" >"$CL_DIR/pgvigild.fgpid"
}

# pgvigild_stop: SIGTERM the pgvigild started by pgvigild_start (SIGKILL after 10 s); returns
# its exit status (or 0 if it was not running).
pgvigild_stop() {
	local pid=${PGVIGILD_PID:-} rc=0
	[[ -z $pid && -r $CL_DIR/pgvigild.fgpid ]] && pid=$(cat "$CL_DIR/pgvigild.fgpid")
	[[ -n $pid ]] || return 0
	if _cl_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		wait_gone 10 "$pid" || kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || rc=$?
	PGVIGILD_PID=
	rm -f "$CL_DIR/pgvigild.fgpid"
	return "$rc"
}

# pgvigil ARGS...: the CLI on this cluster's config.
pgvigil() { "$PGVIGIL_BIN/pgvigil" -c "$CL_DIR/pgvigil.conf" "$@"; }

# journal_head LINE: a journal record without its detail object, with ": " and ", " squeezed,
# so fixed strings like '"phase":"end"' match top-level fields only.
journal_head() {
	local l=${1%%,\"detail\":*}
	l=${l//\": /\":}
	l=${l//, \"/,\"}
	printf '%s\n' "$l"
}

# journal_find FROM PATTERN...: the number of the first journal line after line FROM whose
# top-level fields contain every PATTERN (fixed strings).  Returns 1 if there is none.
journal_find() {
	local from=$1 n=0 line head p hit
	shift
	local j=${JOURNAL:-$CL_DIR/journal.jsonl}
	[[ -r $j ]] || return 1
	while IFS= read -r line || [[ -n $line ]]; do
		n=$((n + 1))
		((n > from)) || continue
		head=$(journal_head "$line")
		hit=1
		for p in "$@"; do
			[[ $head == *"$p"* ]] || {
				hit=0
				break
			}
		done
		((hit)) && {
			echo "$n"
			return 0
		}
	done <"$j"
	return 1
}

# journal_line N: the journal's Nth line.
journal_line() { sed -n "${1}p" "${JOURNAL:-$CL_DIR/journal.jsonl}"; }

# journal_wait SECS PATTERN...: waits until a journal line matches every PATTERN.
journal_wait() {
	local secs=$1
	shift
	wait_for "$secs" journal_find 0 "$@"
}

# journal_event NAME [PHASE]: the patterns for an event, e.g. journal_find 0 $(journal_event promote end)
journal_event() {
	printf '"event":"%s"\n' "$1"
	[[ -n ${2:-} ]] && printf '"phase":"%s"\n' "$2"
	return 0
}

# json_str TEXT KEY: the first string value of "KEY" in TEXT (one JSON line).
json_str() {
	local t=${1//\": \"/\":\"}
	[[ $t =~ \"$2\":\"([^\"]*)\" ]] && printf '%s\n' "${BASH_REMATCH[1]}"
}

# json_num TEXT KEY: the first number value of "KEY" in TEXT.
json_num() {
	local t=${1//\": /\":}
	[[ $t =~ \"$2\":(-?[0-9]+) ]] && printf '%s\n' "${BASH_REMATCH[1]}"
}

# --- teardown --------------------------------------------------------------------------------

# cluster_destroy [DIR]: stops pgvigild (its pidfile or the one pgvigild_start remembered),
# PgBouncer and every node, then removes DIR.  Refuses a directory cluster_create did not make.
cluster_destroy() {
	local dir=${1:-$CL_DIR} pid n
	[[ -n $dir && -d $dir ]] || return 0
	[[ -e $dir/.pgvigil-test-cluster ]] || {
		_cl_err "refusing to destroy $dir: not made by cluster_create"
		return 1
	}
	local saved_dir=$CL_DIR saved_base=$CL_BASE
	cluster_use "$dir" 2>/dev/null || CL_DIR=$(cd "$dir" && pwd)
	for f in pgvigild.fgpid pgvigild.pid; do
		[[ -r $CL_DIR/$f ]] || continue
		pid=$(head -n 1 "$CL_DIR/$f" | tr -dc 0-9)
		if [[ -n $pid ]] && _cl_alive_as "$pid" pgvigild; then
			kill -TERM "$pid" 2>/dev/null
			wait_gone 5 "$pid" || {
				kill -KILL "$pid" 2>/dev/null
				wait_gone 5 "$pid"
			}
		fi
	done
	if pid=$(cluster_bouncer_pid); then
		kill -KILL "$pid" 2>/dev/null
		wait_gone 5 "$pid"
	fi
	for n in "${CL_NODES[@]}"; do
		[[ -d $CL_DIR/$n ]] || continue
		if pid=$(cluster_postmaster_pid "$n"); then
			# immediate: the postmaster removes its shared memory itself
			_cl_pg "$PG_BIN/pg_ctl" -D "$CL_DIR/$n" -m immediate -w -t 10 -s stop >/dev/null 2>&1 ||
				_cl_kill_tree "$pid"
		fi
		_cl_drop_shm "$n"
	done
	rm -rf "$CL_DIR"
	if [[ $saved_dir != "$CL_DIR" ]]; then
		CL_DIR=$saved_dir CL_BASE=$saved_base
	else
		CL_DIR="" CL_BASE=""
	fi
}

# cluster_status: one line per node: name port role(primary/standby/down) upstream-port.
cluster_status() {
	local n r up
	for n in "${CL_NODES[@]}"; do
		case $(cluster_in_recovery "$n" 2>/dev/null) in
		f) r=primary up=- ;;
		t) r=standby up=$(cluster_upstream_port "$n" 2>/dev/null) ;;
		*) r=down up=- ;;
		esac
		echo "$n $(cluster_port "$n") $r ${up:--}"
	done
	echo "pgbouncer $(cluster_port pgbouncer) app->$(cluster_bouncer_port app 2>/dev/null || echo down)"
}

# --- command line ----------------------------------------------------------------------------

_cl_main() {
	local cmd=${1:-} dir=${2:-}
	case $cmd in
	create)
		cluster_create "$dir" || {
			[[ -n $CL_DIR ]] && cluster_destroy "$CL_DIR"
			return 1
		}
		echo "$CL_DIR"
		echo "cluster: created in ${CL_CREATE_MS} ms (n0 $((CL_BASE)), n1 $((CL_BASE + 1)), n2 $((CL_BASE + 2)), pgbouncer $((CL_BASE + 3)))" >&2
		;;
	start | stop | kill)
		[[ -n $dir && -n ${3:-} ]] || {
			_cl_err "usage: cluster.sh $cmd DIR NODE"
			return 2
		}
		cluster_use "$dir" && "cluster_$cmd" "$3"
		;;
	psql)
		[[ -n $dir && -n ${3:-} && -n ${4:-} ]] || {
			_cl_err "usage: cluster.sh psql DIR NODE SQL"
			return 2
		}
		cluster_use "$dir" && cluster_psql "$3" "$4"
		;;
	status)
		cluster_use "$dir" && cluster_status
		;;
	destroy)
		[[ -n $dir ]] || {
			_cl_err "usage: cluster.sh destroy DIR"
			return 2
		}
		cluster_destroy "$dir"
		;;
	*)
		sed -n '/^# As a command/,/^# Functions act/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
		return 2
		;;
	esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -uo pipefail
	_cl_main "$@"
	exit $?
fi
