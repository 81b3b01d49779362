#!/usr/bin/env bash
# t_partition: pgvigild against real network partitions (scripts/netns.sh): n0 the primary, n1 and
# n2 streaming standbys, PgBouncer in bnc and pgvigild in ctl, each on its own namespace "host";
# faults are silent nftables drops on the bridge (packets vanish, senders time out).
#
#   b. pgvigild cut off from the primary only, the standbys still streaming from it: no failover,
#      a watchdog-partition record; healed: primary-blip or node-up, still no incident;
#   c. a flapping link (5 cuts of n0 of 1-2 s, 2 s apart): no promotion;
#   d. packet loss on n0's link, 20 % then 40 %, 20 s each: no promotion at 20 %; what happens at
#      40 % is printed (figures, not an assertion);
#   a. n0 cut off from everyone: failover (incident-close ok, a standby promoted, PgBouncer points
#      at it, a write through PgBouncer from bnc succeeds); n0 fenced (pgvigild's deferred stop
#      SIGKILLs it: the namespaces share this machine's pids and files, see
#      netns_cluster_local_fence); healed: n0 takes no connection and PgBouncer stays on the new
#      primary;
#   b2. a watchdog partition longer than failover.wedged_after_ms (14 s), on a fresh cluster:
#      healed, still no incident.
# b, c, d and a share one cluster (a gets a fresh one if d failed over); b2 has its own.
# Settings: the defaults (netns_cluster_create's pgvigil.conf, wal_receiver_timeout = 5s on the
# standbys), plus pgdata for the stop fence.  Skipped when not root or without network
# namespaces; everything is torn down on exit, also on failure.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/netns.sh
source "$ROOT/scripts/netns.sh"
if ! netns_available; then
	echo "ok - t_partition: network partitions # SKIP $NETNS_SKIP_REASON"
	exit 0
fi
source "$(dirname "$0")/../lib.sh"

[[ -x $PGVIGIL_BIN/pgvigild ]] || t_bail "$PGVIGIL_BIN/pgvigild not built (make)"
WRITER=$T_ROOT/build/bench/writer
t_tmpdir
chmod 755 "$T_TMP"
CLUSTERS=()
NC=
ncluster=0

cleanup_partition() {
	local rc=$1 c
	if ((rc != 0 || T_FAILED > 0)) && [[ -n $NC && -d $NC ]]; then
		note "--- tail of $NC/pgvigild.log ---"
		tail -n 25 "$NC/pgvigild.log" 2>/dev/null | sed 's/^/# /'
		note "--- tail of $NC/journal.jsonl (without details) ---"
		tail -n 25 "$NC/journal.jsonl" 2>/dev/null | while IFS= read -r l; do journal_head "$l"; done | sed 's/^/# /'
		note "--- bridge rules ---"
		netns_rules 2>/dev/null | sed 's/^/# /'
	fi
	for c in "${CLUSTERS[@]}"; do netns_cluster_destroy "$c"; done
	netns_destroy
}
trap 'rc=$?; cleanup_partition $rc; (exit $rc); _t_cleanup' EXIT

# --- helpers ---------------------------------------------------------------------------------

# new_cluster: a fresh cluster (the previous one destroyed), pgvigild in ctl, primary-found.
new_cluster() {
	local t0
	t0=$(_cl_now_ms)
	if [[ -n $NC ]]; then
		netns_cluster_destroy "$NC"
		netns_heal_all
	fi
	ncluster=$((ncluster + 1))
	NC=$T_TMP/c$ncluster
	CLUSTERS+=("$NC")
	export JOURNAL=$NC/journal.jsonl
	netns_cluster_create "$NC" || t_bail "netns_cluster_create failed"
	netns_cluster_local_fence "$NC" || t_bail "cannot add pgdata to $NC/pgvigil.conf"
	netns_cluster_psql ctl app "CREATE TABLE part (i serial, at text)" >/dev/null || t_bail "cannot create the test table"
	netns_pgvigild_start "$NC" || t_bail "cannot start pgvigild in ctl"
	journal_wait 20 '"event":"primary-found"' || t_bail "pgvigild found no primary within 20 s"
	wait_for 20 settled || t_bail "the cluster did not settle within 20 s"
	note "cluster $ncluster up (pgvigild in ctl, primary n0) in $(($(_cl_now_ms) - t0)) ms"
}

# incidents FROM PREFIX: one note per incident-open after line FROM: its reason, the detection
# time and how many standbys still saw the primary when it was decided.
incidents() {
	local n=$1 line d det seeing
	while n=$(journal_find "$n" '"event":"incident-open"'); do
		line=$(journal_line "$n")
		d=$(journal_line "$(journal_find "$n" '"event":"failover-decision"')")
		det=$(json_num "$line" detection_ms)
		seeing=$(json_num "$d" standbys_seeing_primary)
		note "$2 incident $(json_str "$line" incident): $(json_str "$line" reason) (detection_ms ${det:--}, standbys seeing the primary at the decision: ${seeing:--})"
	done
}

jlines() { [[ -r $JOURNAL ]] && wc -l <"$JOURNAL" || echo 0; }

# jcount FROM EVENT [PATTERN]: records of EVENT after journal line FROM (with PATTERN anywhere).
jcount() {
	tail -n +$(($1 + 1)) "$JOURNAL" | grep -F "\"event\":\"$2\"" | grep -cF -- "${3:-}"
}

# jsummary FROM: the events after journal line FROM, counted: "node-down=2 primary-blip=1 ...".
jsummary() {
	tail -n +$(($1 + 1)) "$JOURNAL" | grep -o '"event":"[a-z-]*"' | cut -d'"' -f4 | sort | uniq -c |
		awk '{ printf "%s%s=%s", sep, $2, $1; sep = " " }'
}

# jmax FROM EVENT KEY: the largest number "KEY":N in EVENT records after line FROM (0 if none).
jmax() {
	tail -n +$(($1 + 1)) "$JOURNAL" | grep -F "\"event\":\"$2\"" | grep -o "\"$3\":[0-9]*" |
		cut -d: -f2 | sort -n | tail -n 1 | grep . || echo 0
}

status_json() { "$PGVIGIL_BIN/pgvigil" -c "$NC/pgvigil.conf" status --json 2>/dev/null; }

# node_json JSON NODE: NODE's object in a status --json answer (flat unless it lists lock roots).
node_json() { [[ $1 =~ \{\"name\":\"$2\"[^{}]* ]] && echo "${BASH_REMATCH[0]}"; }

# settled: n0 the primary, healthy with its heartbeat committing, both standbys streaming from
# it (as pgvigild and as n0 see it), no open incident.
settled() {
	local js n
	_nn_streaming || return 1
	js=$(status_json) || return 1
	[[ $js == *'"incident":null'* ]] || return 1
	n=$(node_json "$js" n0)
	[[ $n == *'"role":"primary"'* && $n == *'"reachable":true'* && $n == *'"health":"healthy"'* &&
		$n == *'"write":"ok"'* ]] || return 1
	for n in n1 n2; do
		[[ $(node_json "$js" $n) == *'"streaming":true'* ]] || return 1
	done
}

in_recovery() { netns_cluster_psql ctl "$1" "SELECT pg_is_in_recovery()" 2>/dev/null; }
roles() { echo "n0=$(in_recovery n0) n1=$(in_recovery n1) n2=$(in_recovery n2)"; }
standby_sender() { netns_cluster_psql ctl "$1" "SELECT status || ' ' || sender_host FROM pg_stat_wal_receiver" 2>/dev/null; }
bouncer_target() { netns_cluster_psql bnc app "SELECT host(inet_server_addr())" 2>/dev/null; }
write_via_bouncer() { netns_cluster_psql bnc app "INSERT INTO part (at) VALUES ('$1') RETURNING host(inet_server_addr())"; }
bouncer_points_at() { [[ $(bouncer_target) == "$(netns_addr "$1")" ]]; }
is_primary() { [[ $(in_recovery "$1") == f ]]; }
blip_or_up() { journal_find "$L" '"event":"primary-blip"' '"node":"n0"' || journal_find "$L" '"event":"node-up"' '"node":"n0"'; }
# fence_stop_after_promote: a fence record, method stop, ended ok after the promotion (since L)
fence_stop_after_promote() {
	local p
	p=$(journal_find "$L" '"event":"promote"' '"phase":"end"' '"outcome":"ok"') || return 1
	tail -n +$((p + 1)) "$JOURNAL" | grep -F '"event":"fence"' | grep -F '"phase":"end"' |
		grep -F '"outcome":"ok"' | grep -qF '"method":"stop"'
}
# n0_failures: pgvigild's count of n0's consecutive failed probes
n0_failures() { [[ $(node_json "$(status_json)" n0) =~ \"consecutive_failures\":([0-9]+) ]] && echo "${BASH_REMATCH[1]}"; }

# --- b. pgvigild cut off from the primary; the standbys still stream from it -------------------

netns_create || t_bail "netns_create failed"
new_cluster
L=$(jlines)
t0=$(_cl_now_ms)
netns_cut_between ctl n0
check_wait "b: pgvigild cut off from n0 only: watchdog-partition journaled" 10 \
	journal_find "$L" '"event":"watchdog-partition"' '"node":"n0"'
note "b: watchdog-partition $(($(_cl_now_ms) - t0)) ms after the cut"
check_eq "b: n1 still streams from n0 (asked from ctl)" "streaming $(netns_addr n0)" "$(standby_sender n1)"
check_eq "b: n2 too" "streaming $(netns_addr n0)" "$(standby_sender n2)"
# the partition lasts 8 s: past the 3 confirming probes and the standbys' staleness limit
# (wal_receiver_timeout / 2 + 1 s = 3.5 s), short of failover.wedged_after_ms (b2 covers that)
sleep "$(awk -v ms=$((8000 - ($(_cl_now_ms) - t0))) 'BEGIN { print (ms > 0 ? ms : 0) / 1000 }')"
check_eq "b: no incident while pgvigild cannot reach n0" 0 "$(jcount "$L" incident-open)"
check_eq "b: n0 still the primary" f "$(netns_cluster_psql bnc n0 "SELECT pg_is_in_recovery()" 2>&1)"
netns_heal ctl
check_wait "b: healed: primary-blip or node-up for n0" 10 blip_or_up
check_wait "b: healed: n0 healthy again in pgvigild's view, heartbeat committing" 20 settled
check_eq "b: healed: still no incident, no promotion" "0 0" "$(jcount "$L" incident-open) $(jcount "$L" promote '"phase":"end"')"
note "b: journal: $(jsummary "$L")"

# --- c. a flapping link --------------------------------------------------------------------------

L=$(jlines)
for secs in 1.0 1.5 2.0 1.25 1.75; do
	netns_cut n0
	sleep "$secs"
	netns_heal n0
	sleep 2
done
check_wait "c: after 5 cuts of 1-2 s the cluster settles on n0" 20 settled
check_eq "c: no promotion" 0 "$(jcount "$L" promote '"phase":"end"')"
check_eq "c: no incident" 0 "$(jcount "$L" incident-open)"
check_eq "c: roles unchanged" "n0=f n1=t n2=t" "$(roles)"
note "c: journal: $(jsummary "$L")"

# --- d. packet loss on n0's link -----------------------------------------------------------------

# loss_run PCT: PCT % loss on n0's link for 20 s with a writer through PgBouncer (from bnc);
# sets LOSS_PROMOTES and prints the figures.
loss_run() {
	local pct=$1 l wout wline=
	l=$(jlines)
	wout=$NC/writer-loss$pct.out
	if [[ -x $WRITER ]]; then
		setsid ip netns exec "$(netns_name bnc)" "$WRITER" -c "host=$(netns_addr bnc) port=6432 dbname=app user=postgres" \
			-i 100 -t 1000 -d 20 -V 10000 -q </dev/null >"$wout" 2>&1 &
		WPID=$!
		T_BG_PIDS+=("$WPID")
	fi
	netns_loss n0 "$pct"
	sleep 20
	netns_heal n0
	[[ -n ${WPID:-} ]] && { wait_gone 15 "$WPID" || t_bg_stop "$WPID"; }
	wait "${WPID:-0}" 2>/dev/null
	wline=$(tail -n 1 "$wout" 2>/dev/null)
	LOSS_PROMOTES=$(jcount "$l" promote '"phase":"end"')
	note "d: $pct % loss on n0's link for 20 s:"
	note "d:   journal: $(jsummary "$l")"
	note "d:   most consecutive failed probes of n0: $(jmax "$l" primary-suspect failures) (confirm_failures 3)"
	note "d:   incidents opened $(jcount "$l" incident-open), promotions $LOSS_PROMOTES, roles after: $(roles)"
	note "d:   writes through PgBouncer every 100 ms (1 s deadline): ${wline:-no writer output}"
	incidents "$l" "d:  "
	WPID=
}

L=$(jlines)
loss_run 20
check_eq "d: 20 % loss on n0's link: no promotion" 0 "$LOSS_PROMOTES"
check_eq "d: 20 % loss: no incident" 0 "$(jcount "$L" incident-open)"
if check_wait "d: 20 % loss healed: the cluster settles on n0" 20 settled; then
	loss_run 40
	note "d: 40 % loss: figures only, not asserted"
	wait_for 20 settled || note "d: after 40 % loss the cluster did not settle on n0: $(roles)"
fi

# --- a. the primary cut off from everyone ------------------------------------------------------

if [[ $(roles) != "n0=f n1=t n2=t" ]] || ! settled; then
	note "a: the cluster is not back on n0 ($(roles)): a fresh one"
	new_cluster
fi
L=$(jlines)
pm=$(head -n 1 "$NC/n0/postmaster.pid")
t0=$(_cl_now_ms)
netns_cut n0
check_wait "a: n0 cut off from everyone: incident closed ok" 40 \
	journal_find "$L" '"event":"incident-close"' '"outcome":"ok"'
close=$(journal_line "$(journal_find "$L" '"event":"incident-close"')")
newp=$(json_str "$close" node)
note "a: incident closed $(($(_cl_now_ms) - t0)) ms after the cut, new primary ${newp:-?}"
incidents "$L" "a:"
[[ $newp == n1 || $newp == n2 ]] || newp=n1
check "a: the new primary $newp is a standby that was promoted" is_primary "$newp"
check_wait "a: PgBouncer (bnc) points at $newp" 15 bouncer_points_at "$newp"
if check_wait "a: a write through PgBouncer from bnc succeeds" 15 write_via_bouncer a-cut; then
	note "a: first write through the endpoint $(($(_cl_now_ms) - t0)) ms after the cut (polled with psql)"
fi
# the fence: pgbouncer KILL before the promotion, the stop deferred past it (a SIGKILL)
fences=$(tail -n +$((L + 1)) "$JOURNAL" | grep -F '"event":"fence"' | grep -vF '"phase":"begin"' |
	sed -E 's/.*"outcome":("[a-z]*"|null).*"detail":(\{[^}]*\}).*/outcome \1 \2/')
note "a: fence records (end/event):" "$fences"
check "a: a stop fence on n0 ended ok after the promotion" fence_stop_after_promote
check_wait "a: n0's postmaster ($pm) is gone while n0 is still cut off" 10 wait_gone 0 "$pm"
netns_heal n0
f0=$(n0_failures)
check_not "a: healed: n0 takes no connection" netns_cluster_psql ctl n0 "SELECT 1"
check_not "a: healed: not from bnc either" netns_cluster_psql bnc n0 "SELECT 1"
check_eq "a: healed: a write through PgBouncer lands on $newp" "$(netns_addr "$newp")" "$(write_via_bouncer a-healed 2>&1)"
# pgvigild probes the healed n0 a few times: no split brain, no incident, the endpoint stays
_probed() { local f; f=$(n0_failures) && ((f >= ${f0:-0} + 4)); }
check_wait "a: healed: pgvigild probed n0 4 more times (all failed)" 15 _probed
check_eq "a: healed: PgBouncer still points at $newp" "$(netns_addr "$newp")" "$(bouncer_target)"
check_not "a: healed: n0 still takes no connection" netns_cluster_psql ctl n0 "SELECT 1"
lclose=$(journal_find "$L" '"event":"incident-close"')
check_eq "a: healed: no split-brain record, no second incident" "0 0" \
	"$(jcount "$L" split-brain-suspected) $(jcount "$lclose" incident-open)"
note "a: journal: $(jsummary "$L")"

# --- b2. a watchdog partition longer than failover.wedged_after_ms ------------------------------

new_cluster
L=$(jlines)
t0=$(_cl_now_ms)
netns_cut_between ctl n0
check_wait "b2: pgvigild cut off from n0 only: watchdog-partition journaled" 10 \
	journal_find "$L" '"event":"watchdog-partition"' '"node":"n0"'
sleep "$(awk -v ms=$((14000 - ($(_cl_now_ms) - t0))) 'BEGIN { print (ms > 0 ? ms : 0) / 1000 }')"
check_eq "b2: no incident during a 14 s watchdog partition" 0 "$(jcount "$L" incident-open)"
netns_heal ctl
wait_for 20 settled || true
check_eq "b2: healed after 14 s: no incident" 0 "$(jcount "$L" incident-open)"
check_eq "b2: healed after 14 s: no promotion, n0 still the primary" "0 n0=f n1=t n2=t" "$(jcount "$L" promote '"phase":"end"') $(roles)"
if (($(jcount "$L" incident-open) > 0)); then
	incidents "$L" "b2:"
	note "b2: n0 answered again, but its heartbeat had failed since the cut (it could not reach n0)," \
		"more than failover.wedged_after_ms ago: pgvigild took that for a WEDGED primary and failed" \
		"over at once, although both standbys streamed from n0 throughout.  Records after the heal:"
	tail -n +$((L + 1)) "$JOURNAL" | grep -E '"event":"(node-up|incident-open|fence|promote|incident-close)"' |
		while IFS= read -r l; do note "  $(journal_head "$l")"; done
fi
note "b2: journal: $(jsummary "$L")"

t_done
