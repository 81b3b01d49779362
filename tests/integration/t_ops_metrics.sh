#!/usr/bin/env bash
# Prometheus metrics and the HAProxy health endpoints, with curl against a running daemon on a
# test cluster (metrics.listen on 127.0.0.1, base port + 5): the node gauges match the cluster,
# /primary/NODE and /replica/NODE answer 200 or 503 as the roles are, unknown nodes 404, other
# methods 405; a standby that stops streaming turns 503.
source "$(dirname "$0")/../lib.sh"

command -v curl >/dev/null || t_bail "curl is not installed"
t_cluster
PORT=$((CL_BASE + 5))
URL=http://127.0.0.1:$PORT
printf 'metrics = { listen = "127.0.0.1:%s"; };\n' "$PORT" >>"$CL_DIR/pgvigil.conf"

# code PATH: the HTTP status of a GET
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL$1"; }
# metric LINE: /metrics holds exactly this sample line
metric() { curl -s --max-time 5 "$URL/metrics" | grep -qxF "$1"; }
_code_is() { [[ $(code "$2") == "$1" ]]; }

t_daemon_start
t_wait_primary_found
check_wait "n1 and n2 stream (pgvigil status)" 20 metric 'pgvigil_node_streaming{node="n2"} 1'

check_eq "GET /metrics: 200" 200 "$(code /metrics)"
check "the content type is the text exposition format 0.0.4" \
	bash -c "curl -s -D - -o /dev/null '$URL/metrics' | grep -qi '^Content-Type: text/plain; version=0.0.4'"
body=$(curl -s "$URL/metrics")
check "every sample follows its # HELP and # TYPE lines" awk '
	/^# HELP / { help[$3] = 1; next } /^# TYPE / { type[$3] = 1; next }
	{ name = $1; sub(/\{.*/, "", name); if (!(name in help) || !(name in type)) { print "no HELP/TYPE: " $0; bad = 1 } }
	END { exit bad }' <<<"$body"
check 'pgvigil_info names the cluster' metric 'pgvigil_info{cluster="test",mode="automatic"} 1'
check 'pgvigil_node_up: all three' bash -c "[[ \$(curl -s '$URL/metrics' | grep -c '^pgvigil_node_up{.*} 1$') == 3 ]]"
check 'pgvigil_node_is_primary{node="n0"} 1' metric 'pgvigil_node_is_primary{node="n0"} 1'
check 'pgvigil_node_is_primary{node="n1"} 0' metric 'pgvigil_node_is_primary{node="n1"} 0'
check 'pgvigil_node_in_recovery{node="n1"} 1' metric 'pgvigil_node_in_recovery{node="n1"} 1'
check 'pgvigil_node_lag_bytes for the standbys' grep -qE '^pgvigil_node_lag_bytes\{node="n2"\} [0-9]+$' <<<"$body"
_no_primary_lag() { ! grep -q 'pgvigil_node_lag_bytes{node="n0"}' <<<"$body"; }
check 'no lag for the primary' _no_primary_lag
check 'pgvigil_probe_latency_ms per node' grep -qE '^pgvigil_probe_latency_ms\{node="n0"\} [0-9]+$' <<<"$body"
check 'pgvigil_failovers_total 0' metric 'pgvigil_failovers_total 0'
check 'pgvigil_incident_open 0' metric 'pgvigil_incident_open 0'
check 'pgvigil_primary_known 1' metric 'pgvigil_primary_known 1'
check 'pgvigil_view_age_seconds is there' grep -q '^pgvigil_view_age_seconds [0-9.]*$' <<<"$body"
check 'the journal seq is exported' grep -qE '^pgvigil_journal_last_seq [1-9][0-9]*$' <<<"$body"

check_eq "GET /primary: 200" 200 "$(code /primary)"
check_eq "GET /primary answers the primary's name" n0 "$(curl -s "$URL/primary")"
check_eq "GET /primary/n0: 200" 200 "$(code /primary/n0)"
check_eq "GET /primary/n1: 503" 503 "$(code /primary/n1)"
check_eq "GET /replica/n1: 200" 200 "$(code /replica/n1)"
check_eq "GET /replica/n2?max_lag_bytes=1000000000: 200" 200 "$(code '/replica/n2?max_lag_bytes=1000000000')"
check_eq "GET /replica/n2?max_lag_bytes=x: 400" 400 "$(code '/replica/n2?max_lag_bytes=x')"
check_eq "GET /replica/n0: 503" 503 "$(code /replica/n0)"
check_eq "GET /replica: 200" 200 "$(code /replica)"
check_eq "GET /primary/nosuch: 404" 404 "$(code /primary/nosuch)"
check_eq "GET /nothing: 404" 404 "$(code /nothing)"
check_eq "HEAD /primary/n0: 200" 200 "$(curl -s -I -o /dev/null -w '%{http_code}' "$URL/primary/n0")"
check_eq "POST /metrics: 405" 405 "$(curl -s -X POST -o /dev/null -w '%{http_code}' "$URL/metrics")"

# a standby stops: 503 for it, the others unchanged
cluster_stop n2 fast || t_bail "cannot stop n2"
check_wait "n2 stopped: /replica/n2 turns 503" 15 _code_is 503 /replica/n2
check 'pgvigil_node_up{node="n2"} 0' metric 'pgvigil_node_up{node="n2"} 0'
check_eq "/replica/n1 still 200" 200 "$(code /replica/n1)"
check_eq "/primary/n0 still 200" 200 "$(code /primary/n0)"
cluster_start n2 || t_bail "cannot start n2"
check_wait "n2 back: /replica/n2 200 again" 30 _code_is 200 /replica/n2

# reloads are counted
kill -HUP "$PGVIGILD_PID"
check_wait "pgvigil_reloads_total 1 after SIGHUP" 10 metric 'pgvigil_reloads_total 1'
check "pgvigild still running" t_daemon_alive
rc=0
pgvigild_stop || rc=$?
check_eq "pgvigild exits 0 (the HTTP thread stops with it)" 0 "$rc"
check_not "nothing listens on the metrics port after the stop" curl -s --max-time 2 "$URL/metrics"

t_done
