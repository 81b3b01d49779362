/*
 * pgvigil failover [--to NODE] [--dry-run] --reason TEXT: asks the running daemon to fail
 * over, so the daemon and the operator never race.  The daemon decides with the same rules as
 * an automatic failover and refuses while the primary still answers as a primary.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "pgvigil/cli.h"

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

static void print_decision(json_t *dec)
{
	if (!dec)
		return;
	printf("decision: %s (%s)\n", str_or(dec, "verdict", "?"), str_or(dec, "reason", ""));
	json_t *loss = json_object_get(dec, "loss_bytes");
	if (json_is_integer(loss))
		printf("data loss bound: the new primary trails the old one's last seen LSN %s by %lld "
		       "bytes\n",
		       str_or(dec, "old_primary_last_lsn", "?"), (long long)json_integer_value(loss));
	printf("  %-12s %-10s %-14s %-12s %-8s %-8s %s\n", "CANDIDATE", "REACHABLE", "LSN", "GAP",
	       "PRIORITY", "ELIGIBLE", "WHY");
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(dec, "candidates"), i, c)
	{
		char gap[32] = "-";
		json_t *g = json_object_get(c, "gap_bytes");
		if (json_is_integer(g))
			snprintf(gap, sizeof gap, "%lld B", (long long)json_integer_value(g));
		printf("  %-12s %-10s %-14s %-12s %-8lld %-8s %s\n", str_or(c, "node", "?"),
		       json_is_true(json_object_get(c, "reachable")) ? "yes" : "no",
		       str_or(c, "rank_lsn", "-"), gap, (long long)json_integer_value(json_object_get(c, "priority")),
		       json_is_true(json_object_get(c, "eligible")) ? "yes" : "no", str_or(c, "reason", ""));
	}
}

int pv_cmd_failover(PvCli *cli, int argc, char **argv)
{
	const char *to = NULL, *reason = NULL;
	bool dry = false, allow_loss = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			to = argv[++i];
		else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
			reason = argv[++i];
		else if (strcmp(argv[i], "--dry-run") == 0)
			dry = true;
		else if (strcmp(argv[i], "--allow-data-loss") == 0)
			allow_loss = true;
		else
			return pv_cli_fail(2, "failover: unknown argument %s (usage: failover [--to NODE] "
			                      "[--dry-run] [--allow-data-loss] --reason TEXT)",
			                   argv[i]);
	}
	if (!reason || !*reason)
		return pv_cli_fail(2, "failover: --reason TEXT is required (it goes into the journal)");
	if (to && pv_config_node_index(cli->cfg, to) < 0)
		return pv_cli_fail(2, "failover: --to %s: no such node in %s", to, cli->config_path);

	PvBuf req = {0};
	PvJson j;
	pv_json_init(&j, &req);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "cmd", "failover");
	pv_json_str(&j, "to", to);
	pv_json_bool(&j, "dry_run", dry);
	pv_json_bool(&j, "allow_data_loss", allow_loss);
	pv_json_str(&j, "reason", reason);
	pv_json_obj_close(&j);

	int rc = 0;
	int timeout = cli->cfg->failover_promote_timeout_ms + 4 * cli->cfg->failover_repoint_timeout_ms + 10000;
	json_t *obj = pv_cli_ask(cli, "failover", req.data, timeout, &rc);
	pv_buf_free(&req);
	if (!obj)
		return rc;
	json_t *dec = json_object_get(obj, "decision");
	if (!json_is_true(json_object_get(obj, "ok"))) {
		print_decision(dec);
		rc = pv_cli_fail(1, "failover refused: %s", str_or(obj, "error", "unknown error"));
		json_decref(obj);
		return rc;
	}
	print_decision(dec);
	printf(dry ? "plan (dry run, nothing changed):\n" : "steps:\n");
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(obj, "plan"), i, s)
		printf("  %zu. %s\n", i + 1, json_string_value(s));
	if (!dry)
		printf("new primary: %s (incident %s; see pgvigil incident show %s)\n",
		       str_or(obj, "new_primary", "?"), str_or(obj, "incident", "?"),
		       str_or(obj, "incident", "?"));
	json_decref(obj);
	return rc;
}
