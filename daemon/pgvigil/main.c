/*
 * pgvigil: the command line.  pgvigil [-c FILE] COMMAND [ARGS]
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "pgvigil/cli.h"

#define PV_DEFAULT_CONF "/etc/pgvigil/pgvigil.conf"

static const struct {
	const char *name;
	PvCliVerbFn fn;
	const char *usage;
} verbs[] = {
	{"status", pv_cmd_status, "status [--json]"},
	{"failover", pv_cmd_failover, "failover [--to NODE] [--dry-run] [--allow-data-loss] --reason TEXT"},
	{"incident", pv_cmd_incident,
	 "incident list [--json] | incident show ID [--json | --format md|json|html] | "
	 "incident open --reason TEXT | incident close ID [--reason TEXT]"},
	{"journal", pv_cmd_journal, "journal verify [--json]"},
	{"locks", pv_cmd_locks, "locks [--json]"},
	{"switchover", pv_cmd_switchover, "switchover --to NODE [--dry-run] --reason TEXT"},
	{"rejoin", pv_cmd_rejoin, "rejoin NODE [--dry-run] --reason TEXT"},
	{"pause", pv_cmd_pause, "pause --reason TEXT"},
	{"resume", pv_cmd_resume, "resume --reason TEXT"},
	{"backup", pv_cmd_backup,
	 "backup [--wait] | backup status [--json] | backup verify LABEL | backup list [--json]"},
	{"restore", pv_cmd_restore,
	 "restore (--incident ID | --backup LABEL) [--target-lsn LSN | --target-name NAME | "
	 "--target-time TIME] --to DIR [--start --port PORT] [--action pause|promote|shutdown] "
	 "[--user USER] [--timeout SECONDS]"},
	{"check-config", pv_cmd_check_config, "check-config"},
	{"ssh-check", pv_cmd_ssh_check, "ssh-check [--connect-only] [NODE]"},
};

int pv_cli_fail(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("pgvigil: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return status;
}

json_t *pv_cli_ask(PvCli *cli, const char *verb, const char *request, int timeout_ms, int *rc)
{
	char *resp = NULL;
	PvError err;
	if (pv_ctl_call(cli->cfg->control_socket, request, timeout_ms, &resp, &err) != PV_OK) {
		*rc = pv_cli_fail(1, "%s: %s", verb, err.msg);
		return NULL;
	}
	json_error_t jerr;
	json_t *obj = json_loads(resp, 0, &jerr);
	free(resp);
	if (!obj)
		*rc = pv_cli_fail(1, "%s: malformed answer from pgvigild", verb);
	return obj;
}

json_t *pv_cli_ask_ok(PvCli *cli, const char *verb, const char *request, int timeout_ms,
                      const char *refused, int *rc)
{
	json_t *obj = pv_cli_ask(cli, verb, request, timeout_ms, rc);
	if (obj && !json_is_true(json_object_get(obj, "ok"))) {
		const char *e = json_string_value(json_object_get(obj, "error"));
		*rc = pv_cli_fail(1, "%s: %s", verb, e ? e : refused);
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static void usage(FILE *fp)
{
	fprintf(fp, "usage: pgvigil [-c FILE] COMMAND [ARGS]\ncommands:\n");
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		fprintf(fp, "  %s\n", verbs[i].usage);
}

int main(int argc, char **argv)
{
	const char *conf = getenv("PGVIGIL_CONF");
	int i = 1;

	if (!conf || !*conf)
		conf = PV_DEFAULT_CONF;
	while (i < argc && argv[i][0] == '-') {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			conf = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return pv_cli_fail(2, "unknown option %s", argv[i]);
		}
	}
	if (i >= argc) {
		usage(stderr);
		return pv_cli_fail(2, "no command given");
	}
	const char *verb = argv[i];
	PvCliVerbFn fn = NULL;
	for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++)
		if (strcmp(verbs[v].name, verb) == 0)
			fn = verbs[v].fn;
	if (!fn) {
		usage(stderr);
		return pv_cli_fail(2, "unknown command \"%s\"", verb);
	}

	PvBuf errors = {0};
	PvCli cli = {.config_path = conf};
	if (pv_config_load(conf, &cli.cfg, &errors) != PV_OK) {
		fputs(errors.data ? errors.data : "", stderr);
		if (errors.len && errors.data[errors.len - 1] != '\n')
			fputc('\n', stderr);
		pv_buf_free(&errors);
		return 2;
	}
	pv_buf_free(&errors);
	int rc = fn(&cli, argc - i, argv + i);
	pv_config_free(cli.cfg);
	return rc;
}
