#!/usr/bin/env bash
# t_ssh: io/ssh (through build/tools/ssh_exec) and "pgvigil ssh-check" against a real OpenSSH
# sshd this test starts on 127.0.0.1 (scripts/sshd.sh: its own port, host key and config), as
# the postgres user with ed25519 keys made here.  Covers: success, exit status, stderr apart,
# death by signal, a command outliving its deadline, wrong and unknown host keys, hostile
# arguments through the quoting, large output on both streams, session reuse, a dead and a hung
# sshd, ssh-agent and passphrase-protected keys, and ssh-check.  Prints figures as notes.
# Everything started here (sshd and its sessions, ssh-agent, remote sleeps) is stopped on exit.
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../../scripts/sshd.sh
source "$T_ROOT/scripts/sshd.sh"

BASE=${PGVIGIL_TEST_PORT_BASE:-25300}
PORT=$((BASE + 5))
DEAD_PORT=$((BASE + 6))
SSH_EXEC=$T_ROOT/build/tools/ssh_exec
# PGVIGIL_TOOL_WRAPPER runs ssh_exec under a tool, e.g. "valgrind --error-exitcode=99 ..."
# (an error shows as status 99 in the outputs; the timing checks then fail, the rest holds)
SSH_WRAPPER=${PGVIGIL_TOOL_WRAPPER:-}
[[ -x $SSH_EXEC ]] || t_bail "$SSH_EXEC not built (make)"
[[ -x $PGVIGIL_BIN/pgvigil ]] || t_bail "$PGVIGIL_BIN/pgvigil not built (make)"
for p in "$PORT" "$DEAD_PORT"; do
	_cl_port_free "$p" || t_bail "port $p is in use (set PGVIGIL_TEST_PORT_BASE)"
done

t_tmpdir
D=$T_TMP
AGENT_PID=
BG=
REMOTE=$D/remote # where remote commands leave pid files (writable by postgres)
mkdir -p "$REMOTE" && chown postgres: "$REMOTE"

cleanup_ssh() {
	local f p
	[[ -n $BG ]] && kill -KILL "$BG" 2>/dev/null
	for f in "$REMOTE"/*.pid; do
		[[ -r $f ]] || continue
		p=$(cat "$f")
		[[ $p =~ ^[0-9]+$ ]] && kill -KILL "$p" 2>/dev/null
	done
	sshd_stop "$D"
	[[ -n $AGENT_PID ]] && kill "$AGENT_PID" 2>/dev/null
	return 0
}
# run before lib.sh's cleanup, which removes $D
trap 'rc=$?; cleanup_ssh; (exit $rc); _t_cleanup' EXIT

sshd_start "$D" "$PORT" || t_bail "cannot start sshd on 127.0.0.1:$PORT"
sshd_user_key "$D" pv || t_bail "ssh-keygen failed"
sshd_user_key "$D" locked "Pass phrase' \$(x)" || t_bail "ssh-keygen failed"
sshd_known_hosts_line "$D" "$PORT" >"$D/known_hosts"
FP=$(sshd_fingerprint "$D")
note "sshd pid $(sshd_pid "$D") on 127.0.0.1:$PORT, host key $FP"

# x [ssh_exec options...] -- ARGV...: runs ssh_exec as postgres@127.0.0.1:PORT with key pv and the
# good known_hosts (each overridable), output in $D/x.out, stdout/stderr in $D/x.stdout/.stderr.
x() {
	$SSH_WRAPPER "$SSH_EXEC" -H 127.0.0.1 -p "$PORT" -u postgres -K "$D/known_hosts" -k "$D/id_pv" \
		-o "$D/x.stdout" -e "$D/x.stderr" "$@" >"$D/x.out" 2>&1
}
# f KEY [RUN]: the value of KEY in ssh_exec's output (of run RUN, default the first).
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

# --- commands ------------------------------------------------------------------------------------

x -- printf %s hello
check_eq "a command runs: exit 0" "ok 0 -" "$(f status) $(f exit) $(f signal)" || show
check_eq "its stdout is captured" "hello" "$(cat "$D/x.stdout")"
check_eq "the host key seen is the server's" "ssh-ed25519 $FP" "$(f hostkey)"
note "first command, connecting included: $(f duration_ms) ms"

x -- sh -c 'exit 7'
check_eq "a non-zero exit status is reported (and is not an error)" "ok 7" "$(f status) $(f exit)" || show

x -- sh -c 'printf "to out"; printf "to err" >&2; exit 3'
check_eq "stdout and stderr are captured apart" "to out|to err|3" \
	"$(cat "$D/x.stdout")|$(cat "$D/x.stderr")|$(f exit)" || show

x -- sh -c 'kill -TERM $$'
check_eq "a command killed by SIGTERM: signal TERM, no exit status" "ok -1 TERM" \
	"$(f status) $(f exit) $(f signal)" || show
x -- sh -c 'kill -KILL $$'
check_eq "a command killed by SIGKILL: signal KILL" "KILL" "$(f signal)" || show

x -- sh -c 'head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2; echo done >&2'
check_eq "300 kB on each stream are drained (no window stall), the capture capped at 256 KiB" \
	"ok 300000 300005 262144 262144" \
	"$(f status) $(f stdout_bytes | cut -d' ' -f1) $(f stderr_bytes) $(stat -c %s "$D/x.stdout") $(stat -c %s "$D/x.stderr")" || show

# --- the deadline --------------------------------------------------------------------------------

x -t 1000 -- sh -c "echo \$\$ > $REMOTE/sleep.pid; exec sleep 30"
ms=$(f duration_ms)
check_eq "sleep 30 under a 1 s deadline: a timeout" "timeout" "$(f status)" || show
check "it returns within 1000..1200 ms (took $ms ms)" test "$ms" -ge 1000 -a "$ms" -le 1200
check "the timeout error names the host and the command" grep -q "^error=127.0.0.1:$PORT: sh: still running after 1000 ms" "$D/x.out"
note "deadline accuracy: 1000 ms deadline, returned after $ms ms"
# libssh2 1.10 cannot signal the remote command: it runs on (documented in io/ssh.h)
if [[ -r $REMOTE/sleep.pid ]] && kill -0 "$(cat "$REMOTE/sleep.pid")" 2>/dev/null; then
	note "the abandoned remote sleep still runs on the host (pid $(cat "$REMOTE/sleep.pid")): killed by the cleanup"
fi

# --- host keys -----------------------------------------------------------------------------------

ssh-keygen -q -t ed25519 -N '' -f "$D/impostor" </dev/null
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$D/impostor.pub")" >"$D/known_hosts.wrong"
x -K "$D/known_hosts.wrong" -- touch "$REMOTE/ran-despite-wrong-key"
check_eq "a changed host key is refused" "refused" "$(f status)" || show
check "the error names host:port, 'mismatch' and the offered key's SHA256 fingerprint" \
	grep -qF "error=127.0.0.1:$PORT: host key mismatch: the host offers ssh-ed25519 $FP" "$D/x.out"
check_not "nothing ran on the host" test -e "$REMOTE/ran-despite-wrong-key"

sshd_known_hosts_line "$D" "$PORT" 127.0.0.2 >"$D/known_hosts.other"
x -K "$D/known_hosts.other" -- touch "$REMOTE/ran-unknown"
check_eq "an unknown host is refused" "refused" "$(f status)" || show
check "the error names host:port, 'unknown host key' and the fingerprint" \
	grep -qF "error=127.0.0.1:$PORT: unknown host key ssh-ed25519 $FP: no entry for [127.0.0.1]:$PORT" "$D/x.out"
check_not "nothing ran on the host" test -e "$REMOTE/ran-unknown"

: >"$D/known_hosts.empty"
x -K "$D/known_hosts.empty" -- true
check_eq "an empty known_hosts refuses every host" "refused" "$(f status)" || show
x -K "$D/no-such-known-hosts" -- true
check "a missing known_hosts file is an error naming it" grep -q "^error=.*no-such-known-hosts: No such file" "$D/x.out"

# --- quoting -------------------------------------------------------------------------------------

hostile=("plain" "" "two  words" "it's" "'" "\"dq\"" "semi;colon; touch $REMOTE/pwned1"
	"\$(touch $REMOTE/pwned2)" "\`touch $REMOTE/pwned3\`" "\${HOME}\$HOME" $'new\nline\n' $'tab\there'
	"back\\slash\\" "glob * ? [a]" "| & > < ( ) { } ! # ~" "-n" "--" "%s%n" $'\x01\x7f\xc3\xa9')
x -- printf '%s\0' "${hostile[@]}"
printf '%s\0' "${hostile[@]}" >"$D/expected"
check_eq "hostile arguments run" "ok 0" "$(f status) $(f exit)" || show
check "they come back byte for byte (quotes, ; \$() backticks newlines spaces)" cmp "$D/expected" "$D/x.stdout"
check_not "no injected command ran" compgen -G "$REMOTE/pwned*"

# --- sessions ------------------------------------------------------------------------------------

x -n 3 -- true
check_eq "three commands on one session: connected once" "1 0 0" "$(f connected 0) $(f connected 1) $(f connected 2)" || show
note "connect + command: $(f duration_ms 0) ms; command on the kept session: $(f duration_ms 1) ms, $(f duration_ms 2) ms"

# a dead sshd (listener and sessions stopped), then a new one: the kept session is replaced
rm -f "$D/gate"
$SSH_WRAPPER "$SSH_EXEC" -H 127.0.0.1 -p "$PORT" -u postgres -K "$D/known_hosts" -k "$D/id_pv" -n 3 -g "$D/gate" \
	-t 5000 -- true >"$D/x.out" 2>&1 &
BG=$!
wait_for 10 grep -q '^stdout_bytes' "$D/x.out"
sshd_stop "$D"
touch "$D/gate"
wait_for 10 grep -q '^run=1' "$D/x.out"
sshd_start "$D" "$PORT" || t_bail "cannot restart sshd"
wait_for 10 test ! -e "$D/gate"
touch "$D/gate"
wait "$BG"
BG=
check_eq "sshd stopped: the next command fails at once (connection refused)" "io" "$(f status 1)" || show
check "within 100 ms (took $(f duration_ms 1) ms)" test "$(f duration_ms 1)" -lt 100
check_eq "sshd back: the next command reconnects by itself" "ok 1" "$(f status 2) $(f connected 2)" || show
note "dead sshd detected in $(f duration_ms 1) ms; reconnect + command $(f duration_ms 2) ms"

# a hung sshd (SIGSTOP): the kernel still accepts the TCP connection, nobody answers
pid=$(sshd_pid "$D")
kill -STOP "$pid"
x -t 1500 -- true
kill -CONT "$pid"
ms=$(f duration_ms)
check_eq "a hung sshd: timeout" "timeout" "$(f status)" || show
check "after the 1500 ms deadline, not later than 1700 ms (took $ms ms)" test "$ms" -ge 1500 -a "$ms" -le 1700
check "the error says where it hung" grep -q "^error=127.0.0.1:$PORT: ssh handshake: no answer within 1500 ms" "$D/x.out"
x -t 5000 -c 800 -- true
check_eq "sshd resumed: ok again" "ok" "$(f status)" || show
note "hung sshd detected at the deadline: $ms ms for 1500 ms"

x -p "$DEAD_PORT" -- true
check_eq "nothing listening: io error" "io" "$(f status)" || show
check "'Connection refused', in under 100 ms ($(f duration_ms) ms)" grep -q "^error=127.0.0.1:$DEAD_PORT: connect: Connection refused" "$D/x.out"

# --- keys ----------------------------------------------------------------------------------------

PV_SSH_PASSPHRASE="Pass phrase' \$(x)" x -k "$D/id_locked" -- true
check_eq "a passphrase-protected key with its passphrase" "ok" "$(f status)" || show
PV_SSH_PASSPHRASE="Wrong-Secret" x -k "$D/id_locked" -- true
check_eq "the wrong passphrase: an io error about the key" "io" "$(f status)" || show
check_not "the error does not show the passphrase" grep -q "Wrong-Secret" "$D/x.out"
x -k "$D/id_locked" -- true
check "no passphrase for an encrypted key: says so" grep -q "encrypted (no passphrase configured)" "$D/x.out"
x -k "$D/impostor" -- true
check_eq "a key the server does not accept: refused" "refused" "$(f status)" || show

eval "$(ssh-agent -s -a "$D/agent.sock")" >/dev/null
AGENT_PID=$SSH_AGENT_PID
ssh-add -q "$D/id_pv" 2>/dev/null
$SSH_WRAPPER "$SSH_EXEC" -H 127.0.0.1 -p "$PORT" -u postgres -K "$D/known_hosts" -- printf agent >"$D/x.out" 2>&1
check_eq "without a key file, the ssh-agent's identity logs in" "ok" "$(f status)" || show
SSH_AUTH_SOCK='' $SSH_WRAPPER "$SSH_EXEC" -H 127.0.0.1 -p "$PORT" -u postgres -K "$D/known_hosts" -- true >"$D/x.out" 2>&1
check "no key file and no agent: says so" grep -q "no ssh-agent to ask (SSH_AUTH_SOCK unset)" "$D/x.out"
kill "$AGENT_PID" 2>/dev/null
AGENT_PID=
unset SSH_AUTH_SOCK SSH_AGENT_PID

# --- pgvigil ssh-check ---------------------------------------------------------------------------

cat >"$D/pgvigil.conf" <<EOF
cluster = {
  name = "ssh";
  nodes = (
    { name = "n0"; conninfo = "host=127.0.0.1 port=$BASE";
      pg_bin = "/usr/lib/postgresql/15/bin"; pgdata = "/nonexistent";
      ssh = { host = "127.0.0.1"; port = $PORT; key = "$D/id_locked"; passphrase = "Pass phrase' \$(x)";
              known_hosts = "$D/known_hosts"; timeout_ms = 3000; }; },
    { name = "n1"; conninfo = "host=127.0.0.1 port=$((BASE + 1))";
      ssh = { host = "127.0.0.1"; port = $PORT; key = "$D/id_pv"; known_hosts = "$D/known_hosts.wrong"; }; },
    { name = "n2"; conninfo = "host=127.0.0.1 port=$((BASE + 2))"; }
  );
};
EOF
"$PGVIGIL_BIN/pgvigil" -c "$D/pgvigil.conf" ssh-check >"$D/check.out" 2>&1
rc=$?
note "$(cat "$D/check.out")"
check_eq "ssh-check with one failing node exits 1" 1 "$rc"
check "n0 ok, with its host key and pg_ctl's version" \
	grep -qF "n0: ok: postgres@127.0.0.1:$PORT, ssh-ed25519 $FP, pg_ctl (PostgreSQL) 15" "$D/check.out"
check "n1 failed: host key mismatch, with the fingerprint" \
	grep -qF "n1: failed: 127.0.0.1:$PORT: host key mismatch: the host offers ssh-ed25519 $FP" "$D/check.out"
check "n2 skipped: no ssh group" grep -qx "n2: skipped: no ssh group" "$D/check.out"
check "ssh-check n0 alone: exit 0" "$PGVIGIL_BIN/pgvigil" -c "$D/pgvigil.conf" ssh-check n0
"$PGVIGIL_BIN/pgvigil" -c "$D/pgvigil.conf" ssh-check n2 >/dev/null 2>&1
check_eq "ssh-check of a node without ssh: exit 1" 1 "$?"
"$PGVIGIL_BIN/pgvigil" -c "$D/pgvigil.conf" ssh-check n9 >/dev/null 2>&1
check_eq "ssh-check of an unknown node: exit 2" 2 "$?"
sed -i 's|pg_bin = "/usr/lib/postgresql/15/bin";|pg_bin = "/nonexistent/bin";|' "$D/pgvigil.conf"
"$PGVIGIL_BIN/pgvigil" -c "$D/pgvigil.conf" ssh-check n0 >"$D/check.out" 2>&1
check_eq "a pg_bin without pg_ctl: ssh-check fails" 1 "$?"
check "with the command, its exit status and the shell's words" \
	grep -qE "^n0: failed: 127.0.0.1:$PORT: /nonexistent/bin/pg_ctl --version: exit 127: .*(not found|No such file)" "$D/check.out"
check "--connect-only runs true instead" "$PGVIGIL_BIN/pgvigil" -c "$D/pgvigil.conf" ssh-check --connect-only n0
"$PGVIGIL_BIN/pgvigil" -c "$D/pgvigil.conf" check-config >"$D/cc.out" 2>&1
check "check-config prints the passphrase as ********" grep -qF 'passphrase = "********";' "$D/cc.out"
check_not "and never the passphrase itself" grep -q "Pass phrase" "$D/cc.out" "$D/check.out"

t_done
