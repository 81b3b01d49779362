#!/usr/bin/env bash
# A bad configuration: check-config lists every problem as FILE:LINE: setting: problem and exits
# 2; pgvigild exits 2 without creating anything.  A good one: check-config prints it, passwords
# masked.  Needs no cluster.
source "$(dirname "$0")/../lib.sh"

t_tmpdir || t_bail "mktemp failed"
T=$T_TMP
BIN=$PGVIGIL_BIN
[[ -x $BIN/pgvigil && -x $BIN/pgvigild ]] || t_bail "bin/pgvigil and bin/pgvigild not built"
F=$T/bad.conf

# Line numbers matter: the problems are on lines 6, 10, 12 and 16.
cat >"$F" <<EOF
# t_bad_config: four problems, each on a line of its own
cluster = {
  name = "bad";
  nodes = (
    { name = "n0"; conninfo = "host=127.0.0.1 port=1 user=postgres"; priority = 100; },
    { name = "n0"; conninfo = "host=127.0.0.1 port=2 user=postgres"; priority = 100; }
  );
};
probe = {
  interval_ms = "fast";
  timeout_ms = 1000;
  retry_intervall_ms = 100;
};
failover = {
  mode = "automatic";
  confirm_failures = -3;
};
journal = { path = "$T/journal.jsonl"; };
control = { socket = "$T/pgvigil.sock"; pidfile = "$T/pgvigild.pid"; };
log = { path = "$T/pgvigild.log"; };
EOF

"$BIN/pgvigil" -c "$F" check-config >"$T/out" 2>"$T/err"
rc=$?
check_eq "check-config on a bad file exits 2" 2 "$rc"
sed 's/^/#   stderr: /' "$T/err"

# FILE may be printed as given or as its base name.
_has_error() { grep -qE "^(.*/)?bad\.conf:$1: $2: .+" "$T/err"; }
check "line 6: duplicate node name (cluster.nodes[1])" _has_error 6 'cluster\.nodes\[1\](\.name)?'
check "line 10: wrong type (probe.interval_ms)" _has_error 10 'probe\.interval_ms'
check "line 12: unknown setting (probe.retry_intervall_ms)" _has_error 12 'probe\.retry_intervall_ms'
check "line 16: out of range (failover.confirm_failures)" _has_error 16 'failover\.confirm_failures'
check_eq "check-config prints nothing on stdout" "" "$(cat "$T/out")"

timeout -k 2 15 "$BIN/pgvigild" -c "$F" --foreground >"$T/dout" 2>"$T/derr"
rc=$?
check_eq "pgvigild on a bad file exits 2" 2 "$rc"
check "pgvigild names the problems on stderr" grep -q 'bad\.conf:10: probe\.interval_ms' "$T/derr"
check_not "no pidfile" test -e "$T/pgvigild.pid"
check_not "no control socket" test -e "$T/pgvigil.sock"
check_not "no journal" test -e "$T/journal.jsonl"

"$BIN/pgvigil" -c "$T/absent.conf" check-config >/dev/null 2>"$T/err"
check_eq "check-config on a missing file exits 2" 2 "$?"
check "and says which file" grep -q "absent.conf" "$T/err"

# A good file, with a password in one conninfo.
G=$T/good.conf
cluster_write_pgvigil_conf "$T" "${PGVIGIL_TEST_PORT_BASE:-25300}" "$G"
sed -i 's/dbname=postgres"; priority = 50/dbname=postgres password=s3cret"; priority = 50/' "$G"
grep -q s3cret "$G" || t_bail "could not add the password"
"$BIN/pgvigil" -c "$G" check-config >"$T/out" 2>"$T/err"
rc=$?
check_eq "check-config on a good file exits 0" 0 "$rc"
sed 's/^/#   stderr: /' "$T/err"
check "it prints the configuration (node n2)" grep -q n2 "$T/out"
check "the password is printed as password=********" grep -qF 'password=********' "$T/out"
check_not "the password itself is not printed" grep -qF s3cret "$T/out" "$T/err"

t_done
