#!/usr/bin/env bash
# pgvigild under systemd's notification protocol, with build/tools/sd_listen standing in for
# systemd (no PostgreSQL needed: the nodes are closed ports): READY=1 once the control socket
# answers, WATCHDOG=1 from the loop at half of WATCHDOG_USEC, STATUS=, STOPPING=1 at SIGTERM, to
# an abstract socket and to a path.  Under systemd pgvigild does not fork away and logs to
# stderr.  conf/pgvigild.service passes systemd-analyze verify (skipped where it is missing).
source "$(dirname "$0")/../lib.sh"

LISTEN=$T_ROOT/build/tools/sd_listen
[[ -x $LISTEN ]] || t_bail "$LISTEN not built (make)"

t_tmpdir
CL_DIR=$T_TMP
B=${PGVIGIL_TEST_PORT_BASE:-25300}
# no log.path: under systemd the log goes to stderr
cat >"$CL_DIR/pgvigil.conf" <<EOF
cluster = { name = "ops"; nodes = (
  { name = "n0"; conninfo = "host=127.0.0.1 port=$B user=postgres"; },
  { name = "n1"; conninfo = "host=127.0.0.1 port=$((B + 1)) user=postgres"; } ); };
journal = { path = "$CL_DIR/journal.jsonl"; };
control = { socket = "$CL_DIR/pgvigil.sock"; pidfile = "$CL_DIR/pgvigild.pid"; };
EOF

LPID=
DPID=
_stop_all() {
	[[ -n $DPID ]] && kill -TERM "$DPID" 2>/dev/null && wait_gone 10 "$DPID"
	[[ -n $LPID ]] && kill -TERM "$LPID" 2>/dev/null
	DPID= LPID=
}
trap 'rc=$?; _stop_all; (exit $rc); _t_cleanup' EXIT

# run_under SOCKET OUT: sd_listen on SOCKET (output OUT), then pgvigild as systemd starts it:
# without --foreground, NOTIFY_SOCKET and a 1 s watchdog in its environment.
run_under() {
	local sock=$1 out=$2
	"$LISTEN" "$sock" 30 >"$out" 2>"$out.err" &
	LPID=$!
	wait_for 5 grep -q ready "$out.err" || t_bail "sd_listen did not bind $sock"
	NOTIFY_SOCKET=$sock WATCHDOG_USEC=1000000 "$PGVIGIL_BIN/pgvigild" -c "$CL_DIR/pgvigil.conf" \
		>"$out.daemon" 2>&1 </dev/null &
	DPID=$!
}
_pings() { (($(grep -c 'WATCHDOG=1' "$1") >= $2)); }
_spacing_ok() {
	# ms between consecutive pings: about 500 (half of WATCHDOG_USEC), never over 800
	awk '/WATCHDOG=1/ { if (prev != "") { d = $1 - prev; if (d < 300 || d > 800) bad = 1; n++ } prev = $1 }
	     END { exit (bad || n < 3) }' "$1"
}

# 1. an abstract socket, as systemd uses
OUT=$CL_DIR/notify-abstract
run_under "@pgvigil-test-$$" "$OUT"
check_wait "READY=1 arrives" 10 grep -q 'READY=1' "$OUT"
check "READY=1 comes with MAINPID (the process systemd started) and a STATUS" \
	grep -qE "READY=1\|MAINPID=$DPID\|STATUS=watching ops: primary unknown" "$OUT"
check "the control socket answers by then" test -S "$CL_DIR/pgvigil.sock"
check "pgvigild did not fork away (the started process is the daemon)" _cl_alive "$DPID"
check_wait "WATCHDOG=1 keeps coming from the loop (5 pings)" 6 _pings "$OUT" 5
check "pings are about 500 ms apart (WATCHDOG_USEC=1000000)" _spacing_ok "$OUT"
kill -TERM "$DPID"
check_wait "STOPPING=1 at SIGTERM" 10 grep -q 'STOPPING=1' "$OUT"
wait_gone 10 "$DPID"
wait "$DPID" 2>/dev/null
check_eq "pgvigild exits 0" 0 "$?"
check "the log went to stderr (no log.path under systemd)" grep -q 'info: pgvigild started' "$OUT.daemon"
check "no pgvigild.log was written beside the journal" test ! -e "$CL_DIR/pgvigild.log"
DPID=
wait "$LPID" 2>/dev/null
LPID=

# 2. a socket path
OUT=$CL_DIR/notify-path
run_under "$CL_DIR/notify.sock" "$OUT"
check_wait "READY=1 through a socket path" 10 grep -q 'READY=1' "$OUT"
check_wait "WATCHDOG=1 through a socket path" 5 _pings "$OUT" 2
_stop_all

# 3. without a watchdog: READY only, no pings
OUT=$CL_DIR/notify-nowd
"$LISTEN" "@pgvigil-test-nowd-$$" 30 >"$OUT" 2>"$OUT.err" &
LPID=$!
wait_for 5 grep -q ready "$OUT.err" || t_bail "sd_listen did not bind"
NOTIFY_SOCKET="@pgvigil-test-nowd-$$" "$PGVIGIL_BIN/pgvigild" -c "$CL_DIR/pgvigil.conf" >"$OUT.daemon" 2>&1 </dev/null &
DPID=$!
check_wait "READY=1 without WATCHDOG_USEC" 10 grep -q 'READY=1' "$OUT"
sleep 1.2 # the one fixed wait: proving an absence
check "no WATCHDOG=1 without WATCHDOG_USEC" test "$(grep -c 'WATCHDOG=1' "$OUT")" = 0
_stop_all

# 4. the unit file
UNIT=$T_ROOT/conf/pgvigild.service
check "the unit is Type=notify with a watchdog, restart and reload by SIGHUP" \
	grep -qzE 'Type=notify.*ExecReload=/bin/kill -HUP \$MAINPID.*WatchdogSec=[0-9]+s.*Restart=on-failure' "$UNIT"
if command -v systemd-analyze >/dev/null 2>&1; then
	mkdir -p "$CL_DIR/unit"
	sed "s#^ExecStart=/usr/local/sbin/pgvigild #ExecStart=$PGVIGIL_BIN/pgvigild #" "$UNIT" >"$CL_DIR/unit/pgvigild.service"
	# --man=no: the man pages are checked by test_docs, not installed here
	if out=$(cd "$CL_DIR/unit" && timeout 60 systemd-analyze verify --man=no ./pgvigild.service 2>&1); then
		check_eq "systemd-analyze verify: no warnings" "" "$out"
	else
		not_ok "systemd-analyze verify conf/pgvigild.service"
		note "$out"
	fi
else
	echo "ok - systemd-analyze verify conf/pgvigild.service # SKIP systemd-analyze is not installed"
fi

t_done
