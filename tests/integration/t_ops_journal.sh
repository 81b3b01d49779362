#!/usr/bin/env bash
# The journal's hash chain and rotation with a real daemon (no PostgreSQL needed: the nodes are
# closed ports).  The daemon rotates at journal.max_bytes and keeps journal.keep files; the
# chain runs through them and across a restart; pgvigil journal verify says ok, then names the
# file, line and seq of an edited, a removed and a moved record (exit 1); a journal written
# before the chain existed is reported unchained, not tampered.
source "$(dirname "$0")/../lib.sh"

t_tmpdir
CL_DIR=$T_TMP
B=${PGVIGIL_TEST_PORT_BASE:-25300}
J=$CL_DIR/journal.jsonl
cat >"$CL_DIR/pgvigil.conf" <<EOF
cluster = { name = "ops"; nodes = (
  { name = "n0"; conninfo = "host=127.0.0.1 port=$B user=postgres connect_timeout=2"; },
  { name = "n1"; conninfo = "host=127.0.0.1 port=$((B + 1)) user=postgres connect_timeout=2"; } ); };
journal = { path = "$J"; max_bytes = 4096; keep = 3; };
control = { socket = "$CL_DIR/pgvigil.sock"; pidfile = "$CL_DIR/pgvigild.pid"; };
log = { path = "$CL_DIR/pgvigild.log"; };
EOF

_verify_ok() { pgvigil journal verify >"$CL_DIR/verify.out" 2>&1; }
_rotated_twice() { [[ -e $J.2 ]]; }

t_daemon_start
# every accepted reload is a config-reload record of about 300 bytes
for _ in $(seq 1 60); do
	kill -HUP "$PGVIGILD_PID"
	_rotated_twice && break
	sleep 0.05
done
check_wait "the daemon rotated the journal twice (journal.jsonl.2 exists)" 10 _rotated_twice
check "each rotated file was at least journal.max_bytes when it was rotated" \
	bash -c "(( \$(stat -c %s '$J.1') >= 4096 && \$(stat -c %s '$J.2') >= 4096 ))"
for _ in $(seq 1 40); do kill -HUP "$PGVIGILD_PID"; sleep 0.02; done
check_wait "journal.keep = 3: journal.jsonl.3 appears" 10 test -e "$J.3"
check "journal.keep = 3: never a journal.jsonl.4" test ! -e "$J.4"
check "the live journal stays small" bash -c "(( \$(stat -c %s '$J') < 8192 ))"
check "pgvigil journal verify: ok while the daemon runs" _verify_ok
pgvigild_stop
check "pgvigil journal verify: ok after the daemon stopped" _verify_ok
note "$(tail -n 2 "$CL_DIR/verify.out")"
check "it reports the oldest file's chain as starting in a rotated-out file" \
	grep -q "journal.jsonl.3:1: note: seq [0-9]*: the chain begins in a file no longer present" "$CL_DIR/verify.out"
check "it counts 4 files and no problem" grep -qE "^ok: [0-9]+ records in 4 files .* 0 problems$" "$CL_DIR/verify.out"

# the next daemon continues seq and the chain
last=$(grep -o '"seq":[0-9]*' "$J" | tail -n 1 | cut -d: -f2)
t_daemon_start
check_wait "the restarted daemon journals daemon-start" 10 journal_find 0 '"event":"daemon-start"' "\"seq\":$((last + 1)),"
pgvigild_stop
check "verify: still ok across the restart" _verify_ok
check "incident list reads the rotated files" pgvigil incident list

mkdir -p "$CL_DIR/orig"
cp -p "$J"* "$CL_DIR/orig/"
_restore() { cp -p "$CL_DIR/orig/"* "$CL_DIR/"; }
_verify_fails_with() {
	local want=$1 rc=0
	pgvigil journal verify >"$CL_DIR/verify.out" 2>"$CL_DIR/verify.err" || rc=$?
	((rc == 1)) || { echo "exit status $rc, want 1"; cat "$CL_DIR/verify.out"; return 1; }
	grep -qE "$want" "$CL_DIR/verify.out" || { echo "no /$want/ in:"; cat "$CL_DIR/verify.out"; return 1; }
	grep -q "records were edited, removed or reordered" "$CL_DIR/verify.err"
}

# an edited record: a daemon-start's pid changed in journal.jsonl.2, line 2
seq2=$(sed -n 2p "$J.2" | grep -o '"seq":[0-9]*' | cut -d: -f2)
sed -i '2s/"nodes":2/"nodes":3/; 2s/"path":"/"path":"X/' "$J.2"
check "an edited record: named by file and line of the record after it, and its seq" \
	_verify_fails_with "journal.jsonl.2:3: seq $((seq2 + 1)): prev does not match the record before it \(.*journal.jsonl.2:2, seq $seq2\): that record was edited"
_restore

# a removed record: line 3 of the live journal
seq3=$(sed -n 3p "$J" | grep -o '"seq":[0-9]*' | cut -d: -f2)
sed -i 3d "$J"
check "a removed record: named with the missing seq" \
	_verify_fails_with "journal.jsonl:3: seq $((seq3 + 1)): .* the records with seq $seq3..$seq3 were removed"
_restore

# a moved record: lines 2 and 3 of journal.jsonl.1 swapped
sed -i -n '1p; 2{h; d}; 3{p; x; p; d}; 4,$p' "$J.1"
check "a reordered record: out of order" _verify_fails_with "journal.jsonl.1:3: seq [0-9]+: out of order after seq"
_restore

# a whole rotated file removed
rm -f "$J.2"
check "a removed file: the chain breaks at the next file's first record" \
	_verify_fails_with "journal.jsonl.1:1: seq [0-9]+: prev does not match .* were removed"
_restore
check "restored: ok again" _verify_ok

# a journal from before the chain
rm -f "$J"*
printf '%s\n' '{"seq":1,"ts":"2026-01-01T00:00:00.000000Z","mono_ms":1,"incident":null,"event":"daemon-start","phase":"event","node":null,"outcome":null,"duration_ms":null,"detail":{}}' \
	'{"seq":2,"ts":"2026-01-01T00:00:01.000000Z","mono_ms":2,"incident":null,"event":"daemon-stop","phase":"event","node":null,"outcome":null,"duration_ms":null,"detail":{}}' >"$J"
check "an old journal without prev: ok, reported unchained" _verify_ok
check "  ... 2 unchained" grep -q ", 0 chained, 2 unchained" "$CL_DIR/verify.out"
check "verify --json says ok" bash -c "'$PGVIGIL_BIN/pgvigil' -c '$CL_DIR/pgvigil.conf' journal verify --json | grep -q '\"ok\":true'"
rm -f "$J"
check_not "no journal at all: verify fails" pgvigil journal verify

t_done
