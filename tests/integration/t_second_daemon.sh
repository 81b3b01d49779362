#!/usr/bin/env bash
# One daemon per configuration: a second pgvigild on the same config exits 1 naming the pidfile
# and leaves the first alone.  With no daemon, `pgvigil failover` says so and exits 1.
source "$(dirname "$0")/../lib.sh"

t_cluster
t_daemon_start
t_wait_primary_found
PIDFILE=$CL_DIR/pgvigild.pid
check_wait "the first daemon holds its pidfile" 5 test -s "$PIDFILE"

timeout -k 2 15 "$PGVIGIL_BIN/pgvigild" -c "$CL_DIR/pgvigil.conf" --foreground \
	>"$CL_DIR/second.out" 2>"$CL_DIR/second.err"
rc=$?
check_eq "a second pgvigild on the same config exits 1" 1 "$rc"
sed 's/^/#   stderr: /' "$CL_DIR/second.err"
check "its message names the pidfile" grep -qF "$PIDFILE" "$CL_DIR/second.err"
check "the first daemon keeps running" t_daemon_alive
check "the control socket is still there" test -S "$CL_DIR/pgvigil.sock"
check "pgvigil status still answers" pgvigil status
check "one daemon-start record only" test "$(grep -c '"event": *"daemon-start"' "$CL_DIR/journal.jsonl")" -eq 1

pgvigild_stop
rc=$?
check_eq "the first daemon exits 0 on SIGTERM" 0 "$rc"
check "daemon-stop journaled" journal_find 0 '"event":"daemon-stop"'

out=$(pgvigil failover --to n1 --reason x 2>&1)
rc=$?
check_eq "failover without a daemon exits 1" 1 "$rc"
note "  said: $out"
check "it says the daemon is not running" grep -qi "not running" <<<"$out"
check "n1 still a standby" cluster_is_standby n1

t_done
