/*
 * pgvigil rejoin NODE [--dry-run] --reason TEXT: asks the running daemon to turn NODE (the old
 * primary after a failover, or any node that is not the primary) into a streaming standby of
 * the current primary (act/rejoin.h), waits until it is done or failed, and prints each step.
 * --dry-run prints the plan and changes nothing.
 */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/rejoin.h"
#include "common/json.h"
#include "pgvigil/cli.h"

#define USAGE "usage: rejoin NODE [--dry-run] --reason TEXT"

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

/* Long enough for every step's own deadline: two copies (rewind, then a base backup) at
 * backup.timeout_s each, and the rest with room to spare. */
static int wait_ms(const PvConfig *cfg)
{
	int64_t ms = 2 * (int64_t)cfg->backup_timeout_s * 1000 + 40 * 60 * 1000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void print_steps(json_t *steps)
{
	size_t i;
	json_t *s;
	json_array_foreach(steps, i, s)
	{
		printf("  %zu. %-11s %-8s %8lld ms  %s\n", i + 1, str_or(s, "step", "?"),
		       str_or(s, "outcome", "?"),
		       (long long)json_integer_value(json_object_get(s, "duration_ms")),
		       str_or(s, "note", ""));
	}
}

int pv_cmd_rejoin(PvCli *cli, int argc, char **argv)
{
	const char *node = NULL, *reason = NULL;
	bool dry = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
			reason = argv[++i];
		else if (strcmp(argv[i], "--dry-run") == 0)
			dry = true;
		else if (argv[i][0] != '-' && !node)
			node = argv[i];
		else
			return pv_cli_fail(2, "rejoin: unknown argument %s (" USAGE ")", argv[i]);
	}
	if (!node)
		return pv_cli_fail(2, "rejoin: which node? (" USAGE ")");
	if (!reason || !*reason)
		return pv_cli_fail(2,
		                   "rejoin: --reason TEXT is required (it goes into the journal)");
	if (pv_config_node_index(cli->cfg, node) < 0)
		return pv_cli_fail(2, "rejoin: no such node %s in %s", node, cli->config_path);

	PvBuf req = {0};
	PvJson j;
	pv_json_init(&j, &req);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "cmd", "rejoin");
	pv_json_str(&j, "node", node);
	pv_json_bool(&j, "dry_run", dry);
	pv_json_str(&j, "reason", reason);
	pv_json_obj_close(&j);

	if (!dry) {
		printf("rejoin %s: asking pgvigild; this waits until %s streams from the primary "
		       "or the "
		       "rejoin fails (each step is journaled as rejoin-step)\n",
		       node, node);
		fflush(stdout);
	}
	int rc = 0;
	json_t *obj = pv_cli_ask(cli, "rejoin", req.data, wait_ms(cli->cfg), &rc);
	pv_buf_free(&req);
	if (!obj)
		return rc;
	bool ok = json_is_true(json_object_get(obj, "ok"));
	if (dry) {
		if (!ok) {
			rc = pv_cli_fail(1, "rejoin refused: %s",
			                 str_or(obj, "error", "unknown error"));
		} else {
			printf(
			    "rejoin %s as a standby of %s (%s); plan (dry run, nothing changed):\n",
			    str_or(obj, "node", node), str_or(obj, "primary", "?"),
			    str_or(obj, "where", "?"));
			size_t i;
			json_t *s;
			json_array_foreach(json_object_get(obj, "plan"), i, s)
			    printf("  %zu. %s\n", i + 1, json_string_value(s));
			printf("primary_conninfo format from: %s\n", str_or(obj, "template", "?"));
		}
		json_decref(obj);
		return rc;
	}
	json_t *steps = json_object_get(obj, "steps");
	if (json_array_size(steps) > 0) {
		printf("steps:\n");
		print_steps(steps);
	}
	const char *aside = str_or(obj, "moved_aside_to", NULL);
	if (aside)
		printf(
		    "the old data directory is kept at %s (remove it once you no longer need it)\n",
		    aside);
	if (!ok && json_array_size(steps) == 0) {
		rc = pv_cli_fail(1, "rejoin refused: %s", str_or(obj, "error", "unknown error"));
	} else if (!ok) {
		rc = pv_cli_fail(1, "rejoin %s failed: %s", node,
		                 str_or(obj, "error", "unknown error"));
	} else {
		double secs =
		    (double)json_integer_value(json_object_get(obj, "duration_ms")) / 1000.0;
		printf("%s streams from %s (%s, %.1f s)\n", str_or(obj, "node", node),
		       str_or(obj, "primary", "?"), str_or(obj, "method", "?"), secs);
	}
	json_decref(obj);
	return rc;
}
