/*
 * pgvigil ssh-check [--connect-only] [NODE]: checks the ssh group of every node (or of NODE)
 * the way pgvigil will use it: connect, verify the host key against known_hosts, authenticate,
 * and run "pg_ctl --version" (PG_BIN/pg_ctl when pg_bin is set, else pg_ctl on the remote PATH),
 * or "true" with --connect-only.  One line per node on stdout:
 *   n0: ok: postgres@10.0.0.1:22, ssh-ed25519 SHA256:..., pg_ctl (PostgreSQL) 15.18, 84 ms
 *   n1: failed: 10.0.0.2:22: unknown host key ssh-ed25519 SHA256:...: ...
 *   n2: skipped: no ssh group
 * Exit 0 when every checked node is ok, 1 when one failed or none has an ssh group, 2 usage.
 * Nodes are checked one after the other; each takes at most its ssh.timeout_ms to connect and
 * as long again for the command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/act.h"
#include "io/ssh.h"
#include "pgvigil/cli.h"

/* The first line of s, at most max bytes, for a one-line report. */
static void first_line(const char *s, char *out, size_t size)
{
	size_t n = strcspn(s ? s : "", "\r\n");
	if (n >= size)
		n = size - 1;
	memcpy(out, s ? s : "", n);
	out[n] = '\0';
}

static bool check_node(const PvNodeConfig *n, bool connect_only)
{
	const PvSshConfig *c = &n->ssh;
	char *pg_ctl = *n->pg_bin ? pv_xasprintf("%s/pg_ctl", n->pg_bin) : pv_xstrdup("pg_ctl");
	const char *version[] = {pg_ctl, "--version", NULL};
	const char *nothing[] = {"true", NULL};
	const char *const *argv = connect_only ? nothing : version;
	PvSsh *s = pv_act_ssh_new(c);
	PvSshResult res;
	PvError err = {0};
	bool ok = false;

	PvStatus st = pv_ssh_run(s, argv, 2 * c->timeout_ms, &res, &err);
	if (st != PV_OK) {
		printf("%s: failed: %s\n", n->name, err.msg);
	} else if (!pv_ssh_result_ok(&res)) {
		char how[64], why[256];
		pv_ssh_result_describe(&res, how, sizeof how);
		first_line(res.err.len ? res.err.data : res.out.data, why, sizeof why);
		printf("%s: failed: %s: %s %s: %s%s%s\n", n->name, pv_ssh_name(s), argv[0],
		       connect_only ? "" : "--version", how, *why ? ": " : "", why);
	} else {
		char said[256];
		first_line(res.out.data, said, sizeof said);
		printf("%s: ok: %s@%s, %s%s%s, %lld ms\n", n->name, c->user, pv_ssh_name(s),
		       pv_ssh_hostkey(s), *said ? ", " : "", said, (long long)res.duration_ms);
		ok = true;
	}
	fflush(stdout);
	pv_ssh_result_free(&res);
	pv_ssh_free(s);
	free(pg_ctl);
	return ok;
}

int pv_cmd_ssh_check(PvCli *cli, int argc, char **argv)
{
	const PvConfig *cfg = cli->cfg;
	bool connect_only = false;
	const char *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--connect-only") == 0)
			connect_only = true;
		else if (argv[i][0] == '-')
			return pv_cli_fail(2, "ssh-check: unknown option %s", argv[i]);
		else if (only)
			return pv_cli_fail(2, "ssh-check takes at most one node");
		else
			only = argv[i];
	}
	if (only && pv_config_node_index(cfg, only) < 0)
		return pv_cli_fail(2, "ssh-check: no node \"%s\" in %s", only, cli->config_path);

	int checked = 0, failed = 0;
	for (int i = 0; i < cfg->nnodes; i++) {
		const PvNodeConfig *n = &cfg->nodes[i];
		if (only && strcmp(n->name, only) != 0)
			continue;
		if (!n->ssh.enabled) {
			printf("%s: %s: no ssh group\n", n->name, only ? "failed" : "skipped");
			failed += only != NULL;
			continue;
		}
		checked++;
		failed += !check_node(n, connect_only);
	}
	if (!only && checked == 0)
		return pv_cli_fail(1, "ssh-check: no node of %s has an ssh group",
		                   cli->config_path);
	return failed ? 1 : 0;
}
