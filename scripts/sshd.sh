#!/usr/bin/env bash
# sshd.sh: a private OpenSSH sshd for pgvigil's tests (run as root).
#
# Everything lives in one directory DIR the caller owns (a test's temporary directory):
#
#   host_ed25519_key(.pub)   the server's own host key (ssh-keygen -t ed25519)
#   sshd_config              this server's configuration; nothing under /etc/ssh is used
#   authorized_keys          the keys that may log in (AuthorizedKeysFile)
#   sshd.pid sshd.log        the listener's pid (PidFile) and its log (-e: stderr)
#   id_NAME(.pub)            user keys made by sshd_user_key
#
# The listener runs in the foreground of a background job (sshd -D -f DIR/sshd_config -e), on
# ADDR:PORT only, and accepts public keys only, for one user (default postgres).  DIR is made
# world-traversable (the user's side of sshd reads authorized_keys as that user); private keys
# stay 0600.  sshd refuses accounts whose password field is locked ("!", as Debian creates
# postgres) unless PAM does the account check, so UsePAM is on for a locked account and off
# otherwise: no system account is modified.
#
# As a library (source scripts/sshd.sh):
#   sshd_start DIR PORT [ADDR [USER [NETNS]]]  starts it (ADDR default 127.0.0.1; NETNS: run it
#                                              inside that network namespace); waits until it
#                                              accepts connections (10 s)
#   sshd_user_key DIR NAME [PASSPHRASE]     makes DIR/id_NAME (ed25519) and authorizes it
#   sshd_known_hosts_line DIR PORT [HOST]   prints "[HOST]:PORT ssh-ed25519 AAAA..." (HOST
#                                           default 127.0.0.1; plain HOST when PORT is 22)
#   sshd_fingerprint DIR                    prints the host key's "SHA256:..." fingerprint
#   sshd_pid DIR                            the listener's pid, if it runs
#   sshd_stop DIR                           stops the listener and every session it started
# As a command:  scripts/sshd.sh start DIR PORT [ADDR [USER [NETNS]]] | stop DIR |
#                key DIR NAME | known-hosts DIR PORT [HOST]

SSHD_BIN=${SSHD_BIN:-/usr/sbin/sshd}

_sshd_err() { echo "sshd.sh: $*" >&2; }

_sshd_now_ms() {
	local t=${EPOCHREALTIME//[.,]/}
	echo $((t / 1000))
}

# The pids of every descendant of pid (children first listed last), from /proc.
_sshd_descendants() {
	local pid=$1 kids k
	kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null)
	for k in $kids; do
		echo "$k"
		_sshd_descendants "$k"
	done
}

_sshd_alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]]
}

sshd_pid() {
	local dir=$1 pid
	[[ -r $dir/sshd.bgpid ]] || return 1
	pid=$(cat "$dir/sshd.bgpid")
	_sshd_alive "$pid" || return 1
	echo "$pid"
}

# True once ADDR:PORT accepts a TCP connection (inside NETNS if given).
_sshd_listening() {
	local addr=$1 port=$2 ns=${3:-}
	if [[ -n $ns ]]; then
		ip netns exec "$ns" timeout 2 bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null
	else
		timeout 2 bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null
	fi
}

sshd_start() {
	local dir=$1 port=$2 addr=${3:-127.0.0.1} user=${4:-postgres} ns=${5:-} usepam=no t0
	[[ -n $dir && -d $dir && -n $port ]] || {
		_sshd_err "usage: sshd_start DIR PORT [ADDR [USER [NETNS]]]"
		return 2
	}
	[[ $EUID -eq 0 ]] || {
		_sshd_err "sshd must be started as root"
		return 1
	}
	[[ -x $SSHD_BIN ]] || {
		_sshd_err "$SSHD_BIN missing: run scripts/deps.sh (openssh-server)"
		return 1
	}
	id "$user" >/dev/null 2>&1 || {
		_sshd_err "no OS user $user"
		return 1
	}
	dir=$(cd "$dir" && pwd)
	mkdir -p /run/sshd # the privilege separation directory sshd insists on
	chmod 755 "$dir"
	[[ -f $dir/host_ed25519_key ]] ||
		ssh-keygen -q -t ed25519 -N '' -C "pgvigil-test-host" -f "$dir/host_ed25519_key" || return 1
	touch "$dir/authorized_keys"
	chmod 644 "$dir/authorized_keys"
	local why="$user's account is not locked: no PAM needed"
	if [[ $(getent shadow "$user" | cut -d: -f2) == '!'* ]]; then
		usepam=yes
		why="$user's account is locked ('!'): without PAM sshd would refuse it"
	fi
	cat >"$dir/sshd_config" <<EOF
# a private sshd for pgvigil's tests (scripts/sshd.sh)
Port $port
ListenAddress $addr
HostKey $dir/host_ed25519_key
PidFile $dir/sshd.pid
# $why
UsePAM $usepam
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthenticationMethods publickey
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
AllowUsers $user
PermitRootLogin no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
MaxStartups 50:30:100
LoginGraceTime 30
LogLevel VERBOSE
EOF
	"$SSHD_BIN" -t -f "$dir/sshd_config" || {
		_sshd_err "sshd -t refused $dir/sshd_config"
		return 1
	}
	t0=$(_sshd_now_ms)
	if [[ -n $ns ]]; then
		ip netns exec "$ns" "$SSHD_BIN" -D -f "$dir/sshd_config" -e >>"$dir/sshd.log" 2>&1 </dev/null &
	else
		"$SSHD_BIN" -D -f "$dir/sshd_config" -e >>"$dir/sshd.log" 2>&1 </dev/null &
	fi
	echo $! >"$dir/sshd.bgpid"
	while ! _sshd_listening "$addr" "$port" "$ns"; do
		if ! sshd_pid "$dir" >/dev/null; then
			_sshd_err "sshd exited at start; its log:"
			tail -n 20 "$dir/sshd.log" >&2
			return 1
		fi
		if (($(_sshd_now_ms) - t0 > 10000)); then
			_sshd_err "sshd not accepting on $addr:$port after 10 s"
			return 1
		fi
		sleep 0.05
	done
}

sshd_user_key() {
	local dir=$1 name=$2 pass=${3:-}
	ssh-keygen -q -t ed25519 -N "$pass" -C "pgvigil-test-$name" -f "$dir/id_$name" </dev/null || return 1
	cat "$dir/id_$name.pub" >>"$dir/authorized_keys"
}

sshd_known_hosts_line() {
	local dir=$1 port=$2 host=${3:-127.0.0.1} name
	if [[ $port == 22 ]]; then name=$host; else name="[$host]:$port"; fi
	echo "$name $(cut -d' ' -f1,2 "$dir/host_ed25519_key.pub")"
}

sshd_fingerprint() {
	ssh-keygen -l -E sha256 -f "$1/host_ed25519_key.pub" | awk '{ print $2 }'
}

# Stops the listener and every session process it forked (each by pid, descendants first
# collected so none is orphaned), waits until all are gone (SIGKILL after 5 s).
sshd_stop() {
	local dir=$1 pid pids p end
	pid=$(sshd_pid "$dir") || {
		rm -f "$dir/sshd.bgpid"
		return 0
	}
	pids=("$pid" $(_sshd_descendants "$pid"))
	kill -CONT "${pids[@]}" 2>/dev/null # a test may have stopped it
	kill -TERM "${pids[@]}" 2>/dev/null
	end=$(($(_sshd_now_ms) + 5000))
	for p in "${pids[@]}"; do
		while _sshd_alive "$p"; do
			if (($(_sshd_now_ms) > end)); then
				kill -KILL "$p" 2>/dev/null
				sleep 0.05
				continue
			fi
			sleep 0.05
		done
	done
	wait "$pid" 2>/dev/null
	rm -f "$dir/sshd.bgpid"
	return 0
}

_sshd_main() {
	local cmd=${1:-}
	shift || true
	case $cmd in
	start)
		sshd_start "$@" && echo "sshd: listening on ${3:-127.0.0.1}:$2, pid $(sshd_pid "$1")" >&2
		;;
	stop) sshd_stop "$@" ;;
	key) sshd_user_key "$@" ;;
	known-hosts) sshd_known_hosts_line "$@" ;;
	*)
		sed -n '/^# As a library/,/^#                key DIR/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
		return 2
		;;
	esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -uo pipefail
	_sshd_main "$@"
	exit $?
fi
