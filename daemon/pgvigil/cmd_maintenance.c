/*
 * pgvigil pause --reason TEXT / pgvigil resume --reason TEXT: maintenance mode.  While paused
 * the daemon keeps watching and journaling but takes no automatic action (no failover, no
 * lock ladder); a manual `pgvigil failover` still works.  The state survives a daemon restart.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "pgvigil/cli.h"

static int maintenance(PvCli *cli, int argc, char **argv, const char *verb)
{
	const char *reason = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
			reason = argv[++i];
		else
			return pv_cli_fail(2, "%s: unknown argument %s (usage: %s --reason TEXT)", verb,
			                   argv[i], verb);
	}
	if (!reason || !*reason)
		return pv_cli_fail(2, "%s: --reason TEXT is required (it goes into the journal)", verb);
	PvBuf req = {0};
	PvJson j;
	pv_json_init(&j, &req);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "cmd", verb);
	pv_json_str(&j, "reason", reason);
	pv_json_obj_close(&j);
	int rc = 0;
	json_t *o = pv_cli_ask_ok(cli, verb, req.data, 5000, "refused", &rc);
	pv_buf_free(&req);
	if (o)
		printf(strcmp(verb, "pause") == 0
		           ? "paused: pgvigild watches and reports but takes no automatic action\n"
		           : "resumed: automatic actions again\n");
	json_decref(o);
	return rc;
}

int pv_cmd_pause(PvCli *cli, int argc, char **argv)
{
	return maintenance(cli, argc, argv, "pause");
}

int pv_cmd_resume(PvCli *cli, int argc, char **argv)
{
	return maintenance(cli, argc, argv, "resume");
}
