/*
 * pgvigil status [--json]: the daemon's view of the cluster.  With no daemon running, the
 * nodes are probed directly (same query, same deadline) and the output says so.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "ctl/ctl.h"
#include "io/pgconn.h"
#include "pgvigil/cli.h"
#include "probe/probe.h"

/* Probes every node once, without the daemon, into the daemon's status JSON shape. */
static char *probe_directly(const PvConfig *cfg)
{
	PvBuf b = {0};
	PvJson j;
	char lsn[32];
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_bool(&j, "ok", true);
	pv_json_str(&j, "cluster", cfg->cluster_name);
	pv_json_str(&j, "mode", pv_failover_mode_name(cfg->failover_mode));
	pv_json_bool(&j, "daemon_running", false);
	pv_json_null(&j, "incident");
	pv_json_arr_open(&j, "nodes");
	const char *primary = NULL;
	for (int i = 0; i < cfg->nnodes; i++) {
		PGresult *res = NULL;
		PvError err;
		PvNodeObs o;
		memset(&o, 0, sizeof o);
		int64_t t0 = pv_clock_mono_ms();
		PvStatus st = pv_pg_exec_once(cfg->nodes[i].conninfo, PV_PGC_KIND_POSTGRES, pv_probe_sql,
		                              cfg->probe_timeout_ms, &res, &err);
		if (st == PV_OK)
			(void)pv_probe_parse(res, &o);
		else {
			o.result = pv_probe_classify_failure(err.msg, "", st == PV_ERR_TIMEOUT);
			pv_strlcpy(o.reason, err.msg, sizeof o.reason);
		}
		if (res)
			PQclear(res);
		pv_json_obj_open(&j, NULL);
		pv_json_str(&j, "name", cfg->nodes[i].name);
		const char *role = o.result == PV_PROBE_UP ? (o.in_recovery ? "standby" : "primary")
		                                           : pv_probe_result_name(o.result);
		if (o.result == PV_PROBE_UP && !o.in_recovery)
			primary = cfg->nodes[i].name;
		pv_json_str(&j, "role", role);
		pv_json_bool(&j, "reachable", o.result == PV_PROBE_UP);
		pv_json_str(&j, "reason", o.reason[0] ? o.reason : NULL);
		pv_json_str(&j, "conninfo", cfg->nodes[i].conninfo_redacted);
		pv_json_int(&j, "priority", cfg->nodes[i].priority);
		if (o.timeline)
			pv_json_int(&j, "timeline", o.timeline);
		else
			pv_json_null(&j, "timeline");
		uint64_t l = o.in_recovery ? pv_core_standby_lsn(&o) : o.current_lsn;
		pv_lsn_format(l, lsn, sizeof lsn);
		pv_json_str(&j, "lsn", l ? lsn : NULL);
		pv_json_null(&j, "lag_bytes");
		pv_json_bool(&j, "streaming", o.receiver_streaming);
		pv_json_int(&j, "probe_latency_ms", pv_clock_mono_ms() - t0);
		pv_json_obj_close(&j);
	}
	pv_json_arr_close(&j);
	pv_json_str(&j, "primary", primary);
	pv_json_obj_close(&j);
	return pv_buf_steal(&b);
}

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

static void print_table(json_t *st)
{
	json_t *running = json_object_get(st, "daemon_running");
	printf("cluster %s  primary %s  mode %s", str_or(st, "cluster", "?"),
	       str_or(st, "primary", "(none)"), str_or(st, "mode", "?"));
	if (json_is_false(running))
		printf("  (pgvigild not running: probed directly)");
	if (json_is_true(json_object_get(st, "paused")))
		printf("  PAUSED (%s): no automatic action", str_or(st, "paused_reason", ""));
	const char *inc = str_or(st, "incident", NULL);
	if (inc)
		printf("  incident %s", inc);
	printf("\n%-12s %-22s %-10s %-9s %-8s %-14s %-12s %s\n", "NODE", "ROLE", "HEALTH", "REACHABLE",
	       "TIMELINE", "LSN", "LAG", "NOTE");
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(st, "nodes"), i, n)
	{
		char tl[16] = "-", lag[32] = "-";
		json_t *t = json_object_get(n, "timeline");
		if (json_is_integer(t))
			snprintf(tl, sizeof tl, "%lld", (long long)json_integer_value(t));
		json_t *l = json_object_get(n, "lag_bytes");
		if (json_is_integer(l))
			snprintf(lag, sizeof lag, "%lld B", (long long)json_integer_value(l));
		const char *note = str_or(n, "reason", "");
		const char *up = str_or(n, "upstream", NULL);
		json_t *reasons = json_object_get(n, "health_reasons");
		const char *why = json_string_value(json_array_get(reasons, 0));
		char notebuf[512];
		if (why)
			snprintf(notebuf, sizeof notebuf, "%s%s", why,
			         json_array_size(reasons) > 1 ? " (+more: --json)" : "");
		else if (!*note && up)
			snprintf(notebuf, sizeof notebuf, "streams from %s", up);
		else
			snprintf(notebuf, sizeof notebuf, "%s", note);
		printf("%-12s %-22s %-10s %-9s %-8s %-14s %-12s %s\n", str_or(n, "name", "?"),
		       str_or(n, "role", "?"), str_or(n, "health", "-"),
		       json_is_true(json_object_get(n, "reachable")) ? "yes" : "no", tl,
		       str_or(n, "lsn", "-"), lag, notebuf);
	}
}

int pv_cmd_status(PvCli *cli, int argc, char **argv)
{
	bool as_json = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			as_json = true;
		else
			return pv_cli_fail(2, "status: unknown argument %s (usage: status [--json])", argv[i]);
	}
	char *resp = NULL;
	PvError err;
	PvStatus st = pv_ctl_call(cli->cfg->control_socket, "{\"cmd\":\"status\"}", 5000, &resp, &err);
	if (st == PV_ERR_NOT_FOUND)
		resp = probe_directly(cli->cfg);
	else if (st != PV_OK)
		return pv_cli_fail(1, "status: %s", err.msg);
	json_error_t jerr;
	json_t *obj = json_loads(resp, 0, &jerr);
	if (!obj || !json_is_true(json_object_get(obj, "ok"))) {
		int rc = pv_cli_fail(1, "status: %s",
		                     obj ? str_or(obj, "error", "request failed") : "malformed answer from pgvigild");
		json_decref(obj);
		free(resp);
		return rc;
	}
	if (as_json)
		printf("%s\n", resp);
	else
		print_table(obj);
	json_decref(obj);
	free(resp);
	return 0;
}
