#!/usr/bin/env bash
# t_netns: the network-namespace topology of scripts/netns.sh, smoke-tested: hosts ping each
# other across the bridge; a cut host is silently unreachable (pings time out, nothing answers
# "unreachable", its own sends fail silently too); heal restores it; a cut between two hosts
# leaves the others alone; 50 % loss loses some packets, not all; a PostgreSQL instance inside
# n0 answers psql from other namespaces, times out (connect_timeout=2) while cut, answers again
# once healed; destroy leaves nothing behind.  Skipped (one "ok - ... # SKIP" line) when not
# root or when network namespaces are unavailable.  Everything is torn down on exit.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/netns.sh
source "$ROOT/scripts/netns.sh"
if ! netns_available; then
	echo "ok - t_netns: network namespaces # SKIP $NETNS_SKIP_REASON"
	exit 0
fi
source "$(dirname "$0")/../lib.sh"

PGDIR=
cleanup_netns() {
	[[ -n $PGDIR ]] && netns_pg_stop "$PGDIR"
	netns_destroy
}
trap 'rc=$?; cleanup_netns; (exit $rc); _t_cleanup' EXIT

# ping_ms FROM ROLE COUNT: pings ROLE from FROM (COUNT pings 0.2 s apart, 1 s wait each);
# output in $T_TMP/ping.out; sets PING_MS to the elapsed time; returns ping's status.
ping_ms() {
	local t0 rc
	t0=$(_cl_now_ms)
	netns_exec "$1" ping -n -c "$3" -i 0.2 -W 1 "$(netns_addr "$2")" >"$T_TMP/ping.out" 2>&1
	rc=$?
	PING_MS=$(($(_cl_now_ms) - t0))
	return "$rc"
}
silent() { ! grep -qiE 'unreachable|not permitted|prohibited' "$T_TMP/ping.out"; }
received() { awk '/packets transmitted/ { print $4 }' "$T_TMP/ping.out"; }

t_tmpdir
chmod 755 "$T_TMP" # postgres reaches its data directory below
t0=$(_cl_now_ms)
netns_create || t_bail "netns_create failed"
note "topology N=$(
	_nn_init
	echo "$NN_N"
) on $(netns_net).0/24 created in $(($(_cl_now_ms) - t0)) ms"

check "the namespaces exist" test -e "/run/netns/$(netns_name n0)" -a -e "/run/netns/$(netns_name bnc)"
has_addr() { netns_exec "$1" ip -4 addr show dev eth0 | grep -qF "inet $(netns_addr "$1")/24"; }
check "each host has its address on eth0" has_addr n1
check "lo is up inside" netns_exec n2 ping -n -c 1 -W 1 127.0.0.1
check "the root namespace has no address of the topology" bash -c "! ip -4 addr | grep -q '$(netns_net)\.'"
check "n0 pings n1 across the bridge" ping_ms n0 n1 1
check "ctl pings n2" ping_ms ctl n2 1
check "bnc pings n0" ping_ms bnc n0 1

# --- cut -----------------------------------------------------------------------------------------

netns_cut n0 || t_bail "netns_cut failed"
check_not "n0 cut: ctl's pings to n0 fail" ping_ms ctl n0 3
check "by timeout: nothing answers (no unreachable), after ${PING_MS} ms" silent
check "and they took the wait (>= 1000 ms)" test "$PING_MS" -ge 1000
check_not "n0's own pings to n1 fail" ping_ms n0 n1 2
check "silently too (no EPERM from a local drop, no unreachable)" silent
check "n0's lo still works" netns_exec n0 ping -n -c 1 -W 1 127.0.0.1
check "n1 and n2 still reach each other" ping_ms n1 n2 1
netns_heal n0 || t_bail "netns_heal failed"
check "healed: ctl pings n0 again" ping_ms ctl n0 1

# --- cut between two hosts -----------------------------------------------------------------------

netns_cut_between n1 n2 || t_bail "netns_cut_between failed"
check_not "n1 and n2 cut apart: n1 cannot reach n2" ping_ms n1 n2 2
check "silently" silent
check "n1 still reaches n0" ping_ms n1 n0 1
check "n2 still reaches ctl" ping_ms n2 ctl 1
netns_heal n2
check "healed: n1 reaches n2" ping_ms n1 n2 1

# --- loss ----------------------------------------------------------------------------------------

netns_loss n2 50 || t_bail "netns_loss failed"
netns_exec ctl ping -n -q -c 40 -i 0.05 -W 1 "$(netns_addr n2)" >"$T_TMP/ping.out" 2>&1
got=$(received)
note "50 % loss each way on n2: $got of 40 pings came back"
check "some pings are lost, not all" test "${got:-0}" -gt 0 -a "${got:-0}" -lt 40
netns_heal_all
check "loss removed: no rule left" bash -c "! ip netns exec $(netns_name n0 | sed 's/_n0$/_br/') nft list chain bridge pgvigil forward | grep -q drop"

# --- PostgreSQL inside a namespace ---------------------------------------------------------------

PGDIR=$T_TMP/n0
t0=$(_cl_now_ms)
netns_pg_start n0 "$PGDIR" || t_bail "netns_pg_start failed"
note "PostgreSQL in n0 initialised and started in $(($(_cl_now_ms) - t0)) ms"
check_eq "psql from ctl reaches n0's PostgreSQL at $(netns_addr n0):5432" "$(netns_addr n0)" \
	"$(netns_psql ctl n0 "SELECT inet_server_addr()" 2>&1)"
check_eq "psql from bnc too" "1" "$(netns_psql bnc n0 "SELECT 1" 2>&1)"
check_not "the root namespace cannot reach it (the topology is isolated)" \
	ping -n -c 1 -W 1 "$(netns_addr n0)"

netns_cut n0
t0=$(_cl_now_ms)
out=$(netns_psql ctl n0 "SELECT 1" 2>&1)
rc=$?
ms=$(($(_cl_now_ms) - t0))
note "psql to the cut n0: exit $rc after $ms ms: $out"
check_eq "n0 cut: psql from ctl fails" 2 "$rc"
check "with 'timeout expired' (connect_timeout=2), not refused or unreachable" grep -q "timeout expired" <<<"$out"
check "after about 2 s ($ms ms)" test "$ms" -ge 1900 -a "$ms" -le 4000
netns_heal n0
check_eq "healed: psql from ctl works again" "1" "$(netns_psql ctl n0 "SELECT 1" 2>&1)"

# --- teardown ------------------------------------------------------------------------------------

netns_pg_stop "$PGDIR"
check_not "PostgreSQL stopped" test -e "$PGDIR/postmaster.pid"
PGDIR=
netns_destroy
check_eq "destroy leaves no namespace of the topology" "" "$(ip netns list | grep -E "^pgv$(
	_nn_init
	echo "$NN_N"
)_" || true)"
check "destroy is idempotent" netns_destroy

t_done
