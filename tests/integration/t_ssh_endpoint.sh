#!/usr/bin/env bash
# PgBouncer on "another host": pgbouncer.ssh makes pgvigild write the include file over SSH
# (a private sshd on loopback, host key verified, as the postgres user) before the RELOAD.  A
# failover then switches the endpoint through that path; an unknown host key is refused and
# the endpoint switch fails without touching the file.
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../../scripts/sshd.sh
source "$T_ROOT/scripts/sshd.sh"

BASE=${PGVIGIL_TEST_PORT_BASE:-25300}
PORT=$((BASE + 5))
_cl_port_free "$PORT" || t_bail "port $PORT is in use (set PGVIGIL_TEST_PORT_BASE)"
t_tmpdir
D=$T_TMP
trap 'rc=$?; sshd_stop "$D"; (exit $rc); _t_cleanup' EXIT
sshd_start "$D" "$PORT" || t_bail "cannot start sshd on 127.0.0.1:$PORT"
sshd_user_key "$D" pv || t_bail "ssh-keygen failed"
sshd_known_hosts_line "$D" "$PORT" >"$D/known_hosts"

t_cluster
chown postgres: "$CL_DIR/pgvigil-databases.ini"
sed -i "s|^pgbouncer = {|pgbouncer = {\n  ssh = { host = \"127.0.0.1\"; port = $PORT; user = \"postgres\"; key = \"$D/id_pv\"; known_hosts = \"$D/known_hosts\"; };|" "$CL_DIR/pgvigil.conf"
check "the config with pgbouncer.ssh is valid" pgvigil check-config
t_daemon_start
t_wait_primary_found
cluster_kill n0
check "the failover completes" journal_wait 30 '"event":"incident-close"' '"outcome":"ok"'
line=$(journal_line "$(journal_find 0 '"event":"endpoint-switch"' '"phase":"begin"')")
check "the endpoint switch wrote over ssh" grep -q '"written":"over ssh"' <<<"$line"
check "and succeeded" journal_find 0 '"event":"endpoint-switch"' '"phase":"end"' '"outcome":"ok"'
winner=$(json_str "$(journal_line "$(journal_find 0 '"event":"incident-close"')")" node)
check "PgBouncer points at $winner" test "$(cluster_bouncer_port app)" = "$(cluster_port "$winner")"
check "the file is owned by the ssh user" test "$(stat -c %U "$CL_DIR/pgvigil-databases.ini")" = postgres
check "no temporary file is left" test ! -e "$CL_DIR/pgvigil-databases.ini.pgvigil-tmp"

# a changed host key: refused, nothing written
pgvigild_stop >/dev/null
before=$(cat "$CL_DIR/pgvigil-databases.ini")
sed -i 's/ssh-ed25519 AAAA[A-Za-z0-9+/]*/ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHfakekeyfakekeyfakekeyfakekeyfakekeyfakekey0/' "$D/known_hosts"
t_daemon_start
other=n1
[[ $winner == n1 ]] && other=n2
pgvigil failover --to "$other" --reason x >/dev/null 2>&1 # refused: the primary answers
cluster_kill "$winner"
check "the second failover runs" journal_wait 30 '"event":"endpoint-switch"' '"phase":"end"' '"outcome":"failed"'
check "the failed switch names the host key problem" \
	grep -qiE '"event":"endpoint-switch","phase":"end".*(host key|known_hosts|mismatch)' "$CL_DIR/journal.jsonl"
check "the include file was not touched" test "$(cat "$CL_DIR/pgvigil-databases.ini")" = "$before"

t_done
