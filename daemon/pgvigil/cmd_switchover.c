/*
 * pgvigil switchover --to NODE [--dry-run] --reason TEXT: a planned change of primary, carried
 * out by the daemon (see daemon/pgvigild/switchover.c).  --dry-run prints the plan and the
 * predicted pause from live figures and changes nothing.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "pgvigil/cli.h"

int pv_cmd_switchover(PvCli *cli, int argc, char **argv)
{
	const char *to = NULL, *reason = NULL;
	bool dry = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			to = argv[++i];
		else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
			reason = argv[++i];
		else if (strcmp(argv[i], "--dry-run") == 0)
			dry = true;
		else
			return pv_cli_fail(2, "switchover: unknown argument %s (usage: switchover --to NODE "
			                      "[--dry-run] --reason TEXT)",
			                   argv[i]);
	}
	if (!to)
		return pv_cli_fail(2, "switchover: --to NODE is required");
	if (!reason || !*reason)
		return pv_cli_fail(2, "switchover: --reason TEXT is required (it goes into the journal)");
	if (pv_config_node_index(cli->cfg, to) < 0)
		return pv_cli_fail(2, "switchover: --to %s: no such node in %s", to, cli->config_path);
	PvBuf req = {0};
	PvJson j;
	pv_json_init(&j, &req);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "cmd", "switchover");
	pv_json_str(&j, "to", to);
	pv_json_bool(&j, "dry_run", dry);
	pv_json_str(&j, "reason", reason);
	pv_json_obj_close(&j);
	int rc = 0;
	int timeout = 4 * cli->cfg->switchover_max_pause_ms + cli->cfg->failover_promote_timeout_ms + 90000;
	json_t *o = pv_cli_ask(cli, "switchover", req.data, timeout, &rc);
	pv_buf_free(&req);
	if (!o)
		return rc;
	json_t *plan = json_object_get(o, "plan");
	if (json_is_array(plan)) {
		printf("%s:\n", dry ? "plan (dry run, nothing changed)" : "steps");
		size_t i;
		json_t *s;
		json_array_foreach(plan, i, s)
			printf("  %zu. %s\n", i + 1, json_string_value(s));
		json_t *p = json_object_get(o, "predicted_pause_ms");
		if (json_is_integer(p))
			printf("predicted pause: %lld ms\n", (long long)json_integer_value(p));
	}
	if (!json_is_true(json_object_get(o, "ok"))) {
		const char *e = json_string_value(json_object_get(o, "error"));
		rc = pv_cli_fail(1, "switchover refused or aborted: %s", e ? e : "unknown error");
	} else if (!dry) {
		json_t *q = json_object_get(o, "queued_ms");
		const char *inc = json_string_value(json_object_get(o, "incident"));
		printf("new primary: %s; clients queued %lld ms (incident %s)\n", to,
		       json_is_integer(q) ? (long long)json_integer_value(q) : -1LL, inc ? inc : "?");
	}
	json_decref(o);
	return rc;
}
