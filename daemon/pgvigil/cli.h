/*
 * cli: the pgvigil command line.  main.c parses the global options, loads the configuration
 * (a bad one is exit 2 with every error listed) and dispatches to one verb; each verb lives in
 * its own cmd_<verb>.c and returns the process exit status (0 ok, 1 failed, 2 usage).
 * Verbs print results on stdout and exactly one line per error on stderr ("pgvigil: ...").
 */
#ifndef PV_PGVIGIL_CLI_H
#define PV_PGVIGIL_CLI_H

#include <jansson.h>

#include "config/config.h"

typedef struct {
	const char *config_path;
	PvConfig *cfg;
} PvCli;

typedef int (*PvCliVerbFn)(PvCli *cli, int argc, char **argv);

/* argv[0] is the verb name itself. */
int pv_cmd_check_config(PvCli *cli, int argc, char **argv);
int pv_cmd_status(PvCli *cli, int argc, char **argv);
int pv_cmd_failover(PvCli *cli, int argc, char **argv);
int pv_cmd_incident(PvCli *cli, int argc, char **argv);
int pv_cmd_backup(PvCli *cli, int argc, char **argv);
int pv_cmd_restore(PvCli *cli, int argc, char **argv);
int pv_cmd_locks(PvCli *cli, int argc, char **argv);
int pv_cmd_pause(PvCli *cli, int argc, char **argv);
int pv_cmd_switchover(PvCli *cli, int argc, char **argv);
int pv_cmd_rejoin(PvCli *cli, int argc, char **argv);
int pv_cmd_resume(PvCli *cli, int argc, char **argv);
int pv_cmd_ssh_check(PvCli *cli, int argc, char **argv);
int pv_cmd_journal(PvCli *cli, int argc, char **argv);

/* Prints "pgvigil: MESSAGE" on stderr; returns status for `return pv_cli_fail(2, ...)`. */
int pv_cli_fail(int status, const char *fmt, ...) PV_PRINTF(2, 3);

/*
 * Sends request (a JSON line) to pgvigild's control socket and waits up to timeout_ms for its
 * answer.  Returns the parsed answer (caller json_decref()s it), or NULL after one error line
 * "VERB: ..." with the exit status in *rc (1).  pv_cli_ask_ok() also wants "ok": true; a
 * refusal is reported with the answer's "error", or refused when it has none.
 */
json_t *pv_cli_ask(PvCli *cli, const char *verb, const char *request, int timeout_ms, int *rc);
json_t *pv_cli_ask_ok(PvCli *cli, const char *verb, const char *request, int timeout_ms,
                      const char *refused, int *rc);

#endif
