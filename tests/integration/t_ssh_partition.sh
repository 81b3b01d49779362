#!/usr/bin/env bash
# t_ssh_partition: io/ssh across real network partitions (scripts/netns.sh): an sshd on "host"
# n0 (port 22 of its own namespace), ssh_exec in ctl.  A silent partition must cost a command
# exactly its deadline, never more: a fresh connect whose SYNs vanish, and a kept session whose
# host vanishes between two commands; once healed the next command reconnects by itself; packet
# loss only slows commands down; a cut between ctl and n0 alone leaves n1's path to n0 working.
# Skipped when not root or without network namespaces.  Everything is torn down on exit.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/netns.sh
source "$ROOT/scripts/netns.sh"
if ! netns_available; then
	echo "ok - t_ssh_partition: network namespaces # SKIP $NETNS_SKIP_REASON"
	exit 0
fi
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../../scripts/sshd.sh
source "$T_ROOT/scripts/sshd.sh"

SSH_EXEC=$T_ROOT/build/tools/ssh_exec
[[ -x $SSH_EXEC ]] || t_bail "$SSH_EXEC not built (make)"
t_tmpdir
D=$T_TMP
BG=
cleanup_partition() {
	[[ -n $BG ]] && kill -KILL "$BG" 2>/dev/null
	sshd_stop "$D"
	netns_destroy
}
trap 'rc=$?; cleanup_partition; (exit $rc); _t_cleanup' EXIT

netns_create || t_bail "netns_create failed"
HOST=$(netns_addr n0)
sshd_start "$D" 22 "$HOST" postgres "$(netns_name n0)" || t_bail "cannot start sshd in n0"
sshd_user_key "$D" pv || t_bail "ssh-keygen failed"
sshd_known_hosts_line "$D" 22 "$HOST" >"$D/known_hosts"
note "sshd in $(netns_name n0) on $HOST:22, $(sshd_fingerprint "$D")"

# x FROM [ssh_exec options] -- ARGV: ssh_exec inside namespace FROM; output in $D/x.out
x() {
	local from=$1
	shift
	netns_exec "$from" "$SSH_EXEC" -H "$HOST" -p 22 -u postgres -K "$D/known_hosts" -k "$D/id_pv" "$@" >"$D/x.out" 2>&1
}
f() {
	local key=$1 run=${2:-0}
	awk -v key="$key" -v run="$run" '
		/^run=/ { cur = substr($1, 5) }
		cur == run {
			if ($0 ~ "^" key "=") { sub("^" key "=", ""); print; exit }
			for (i = 1; i <= NF; i++) if (index($i, key "=") == 1) { print substr($i, length(key) + 2); exit }
		}' "$D/x.out"
}
show() { note "$(cat "$D/x.out")"; }
within() { test "$1" -ge "$2" -a "$1" -le "$3"; }

x ctl -t 5000 -- hostname
check_eq "ctl runs a command on n0's host" "ok 0" "$(f status) $(f exit)" || show
note "connect + command across the bridge: $(f duration_ms) ms"

# a fresh connect into a partition: SYNs vanish
netns_cut n0
x ctl -t 2000 -- true
ms=$(f duration_ms)
check_eq "n0 cut: a new connection times out" "timeout" "$(f status)" || show
check "in connect, at the 2000 ms deadline (took $ms ms)" within "$ms" 2000 2100
check "the error says so" grep -q "^error=$HOST:22: connect: no answer within 2000 ms" "$D/x.out"
note "silent partition, fresh connect: $ms ms for a 2000 ms deadline"
netns_heal n0

# a kept session whose host vanishes between two commands
rm -f "$D/gate"
netns_exec ctl "$SSH_EXEC" -H "$HOST" -p 22 -u postgres -K "$D/known_hosts" -k "$D/id_pv" -n 3 -g "$D/gate" \
	-t 2000 -- true >"$D/x.out" 2>&1 &
BG=$!
wait_for 10 grep -q '^stdout_bytes' "$D/x.out"
netns_cut n0
touch "$D/gate"
wait_for 10 grep -q '^run=1' "$D/x.out"
netns_heal n0
wait_for 10 test ! -e "$D/gate"
touch "$D/gate"
wait "$BG"
BG=
ms=$(f duration_ms 1)
check_eq "n0 cut under a kept session: the next command times out" "timeout" "$(f status 1)" || show
check "at its 2000 ms deadline (took $ms ms)" within "$ms" 2000 2100
check_eq "healed: the command after it reconnects and runs" "ok 1" "$(f status 2) $(f connected 2)" || show
note "silent partition under a kept session: $ms ms for a 2000 ms deadline; reconnect + command after heal: $(f duration_ms 2) ms"

# loss slows, does not break
netns_loss n0 20
x ctl -n 10 -t 20000 -- true
oks=$(grep -c '^run=.* status=ok ' "$D/x.out")
# random loss is random: TCP's retransmission backoff can stall one command for many seconds,
# so the check is that loss slows commands rather than breaking the session (8 of 10 at least)
durs=$(awk '/^run=/ { for (i = 1; i <= NF; i++) if ($i ~ /^duration_ms=/) printf "%s ", substr($i, 13) }' "$D/x.out")
check "20 % loss each way: at least 8 commands of 10 succeed ($oks)" test "$oks" -ge 8 || show
note "20 % loss each way, one connect then 9 commands on the session: durations (ms) $durs"
netns_heal n0

# a partition between ctl and n0 only
netns_cut_between ctl n0
x ctl -t 1500 -- true
check_eq "ctl and n0 cut apart: ctl times out" "timeout" "$(f status)" || show
x n1 -t 5000 -- true
check_eq "while n1 still reaches n0's sshd" "ok" "$(f status)" || show
netns_heal_all

t_done
