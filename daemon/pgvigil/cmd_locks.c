/*
 * pgvigil locks [--json]: the blocking trees on the primary now.  Root blockers first (the
 * sessions everyone waits behind), each waiter indented under the session it waits for, with
 * ages and lock modes.  Read straight from the primary (found through the daemon, or by
 * probing the nodes when it is not running), on a connection with short timeouts: the query
 * takes no lock a client could wait on.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "ctl/ctl.h"
#include "io/pgconn.h"
#include "pgvigil/cli.h"
#include "probe/probe.h"

#define MAX_WAITERS 2000

static const char *const waiters_sql =
	"SELECT a.pid, a.usename, a.application_name, a.state,"
	" (extract(epoch FROM now() - a.query_start) * 1000)::bigint, l.mode,"
	" CASE WHEN l.locktype = 'relation' AND l.database ="
	"  (SELECT oid FROM pg_database WHERE datname = current_database())"
	"  THEN l.relation::regclass::text ELSE l.locktype END,"
	" array_to_string(pg_blocking_pids(a.pid), ','), left(a.query, 120)"
	" FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted"
	" WHERE a.wait_event_type = 'Lock' ORDER BY a.query_start LIMIT 2000";

typedef struct {
	int pid;
	const char *user, *app, *state, *mode, *rel, *query;
	long long wait_ms;
	int blockers[16];
	int nblockers;
	bool printed;
} Waiter;

/* The primary's index: the daemon's view, else a direct probe of every node. */
static int find_primary(const PvConfig *cfg)
{
	char *resp = NULL;
	PvError err;
	if (pv_ctl_call(cfg->control_socket, "{\"cmd\":\"status\"}", 5000, &resp, &err) == PV_OK) {
		json_error_t jerr;
		json_t *o = json_loads(resp, 0, &jerr);
		free(resp);
		const char *p = o ? json_string_value(json_object_get(o, "primary")) : NULL;
		int idx = p ? pv_config_node_index(cfg, p) : -1;
		json_decref(o);
		if (idx >= 0)
			return idx;
	}
	for (int i = 0; i < cfg->nnodes; i++) {
		PGresult *r = NULL;
		PvNodeObs o;
		memset(&o, 0, sizeof o);
		if (pv_pg_exec_once(cfg->nodes[i].conninfo, PV_PGC_KIND_POSTGRES, pv_probe_sql,
		                    cfg->probe_timeout_ms, &r, &err) == PV_OK &&
		    pv_probe_parse(r, &o) && !o.in_recovery) {
			PQclear(r);
			return i;
		}
		if (r)
			PQclear(r);
	}
	return -1;
}

static void print_waiters_of(Waiter *w, int n, int parent, int depth)
{
	if (depth > 32)
		return;
	for (int i = 0; i < n; i++) {
		bool child = false;
		for (int b = 0; b < w[i].nblockers; b++)
			child = child || w[i].blockers[b] == parent;
		if (!child || w[i].printed)
			continue;
		w[i].printed = true;
		printf("%*s└ pid %d %s/%s waits %lld ms for %s on %s: %s\n", depth * 2, "", w[i].pid,
		       w[i].user, w[i].app, w[i].wait_ms, w[i].mode, w[i].rel, w[i].query);
		print_waiters_of(w, n, w[i].pid, depth + 1);
	}
}

static const char *v(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
}

int pv_cmd_locks(PvCli *cli, int argc, char **argv)
{
	bool as_json = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			as_json = true;
		else
			return pv_cli_fail(2, "locks: unknown argument %s (usage: locks [--json])", argv[i]);
	}
	int p = find_primary(cli->cfg);
	if (p < 0)
		return pv_cli_fail(1, "locks: no node answers as the primary");
	const char *ci = cli->cfg->nodes[p].conninfo;
	PGresult *roots = NULL, *waits = NULL;
	PvError err;
	if (pv_pg_exec_once(ci, PV_PGC_KIND_POSTGRES, pv_probe_chain_sql, 5000, &roots, &err) != PV_OK)
		return pv_cli_fail(1, "locks: %s: %s", cli->cfg->nodes[p].name, err.msg);
	if (pv_pg_exec_once(ci, PV_PGC_KIND_POSTGRES, waiters_sql, 5000, &waits, &err) != PV_OK) {
		PQclear(roots);
		return pv_cli_fail(1, "locks: %s: %s", cli->cfg->nodes[p].name, err.msg);
	}
	PvLockRoot rs[PV_PROBE_MAX_ROOTS];
	int nroots = pv_probe_parse_chain(roots, rs, PV_PROBE_MAX_ROOTS);
	int nw = PQntuples(waits) < MAX_WAITERS ? PQntuples(waits) : MAX_WAITERS;
	Waiter *w = calloc((size_t)nw + 1, sizeof *w);
	for (int i = 0; i < nw; i++) {
		w[i].pid = atoi(v(waits, i, 0));
		w[i].user = v(waits, i, 1);
		w[i].app = v(waits, i, 2);
		w[i].state = v(waits, i, 3);
		w[i].wait_ms = atoll(v(waits, i, 4));
		w[i].mode = v(waits, i, 5);
		w[i].rel = v(waits, i, 6);
		w[i].query = v(waits, i, 8);
		const char *b = v(waits, i, 7);
		while (*b && w[i].nblockers < 16) {
			w[i].blockers[w[i].nblockers++] = atoi(b);
			b += strcspn(b, ",");
			if (*b == ',')
				b++;
		}
	}
	if (as_json) {
		PvBuf out = {0};
		PvJson j;
		pv_json_init(&j, &out);
		pv_json_obj_open(&j, NULL);
		pv_json_str(&j, "primary", cli->cfg->nodes[p].name);
		pv_json_arr_open(&j, "roots");
		for (int i = 0; i < nroots; i++) {
			pv_json_obj_open(&j, NULL);
			pv_json_int(&j, "pid", rs[i].pid);
			pv_json_str(&j, "user", rs[i].user);
			pv_json_str(&j, "application", rs[i].application);
			pv_json_str(&j, "state", rs[i].state);
			pv_json_int(&j, "blocked", rs[i].blocked);
			pv_json_int(&j, "blocked_for_ms", rs[i].blocked_for_ms);
			pv_json_int(&j, "xact_age_ms", rs[i].xact_age_ms);
			pv_json_str(&j, "relations", rs[i].relations);
			pv_json_str(&j, "query", rs[i].query);
			pv_json_obj_close(&j);
		}
		pv_json_arr_close(&j);
		pv_json_arr_open(&j, "waiters");
		for (int i = 0; i < nw; i++) {
			pv_json_obj_open(&j, NULL);
			pv_json_int(&j, "pid", w[i].pid);
			pv_json_str(&j, "user", w[i].user);
			pv_json_int(&j, "wait_ms", w[i].wait_ms);
			pv_json_str(&j, "mode", w[i].mode);
			pv_json_str(&j, "relation", w[i].rel);
			pv_json_arr_open(&j, "blocked_by");
			for (int b = 0; b < w[i].nblockers; b++)
				pv_json_int(&j, NULL, w[i].blockers[b]);
			pv_json_arr_close(&j);
			pv_json_str(&j, "query", w[i].query);
			pv_json_obj_close(&j);
		}
		pv_json_arr_close(&j);
		pv_json_obj_close(&j);
		printf("%s\n", out.data);
		pv_buf_free(&out);
	} else if (nroots == 0) {
		printf("primary %s: no session waits on a lock\n", cli->cfg->nodes[p].name);
	} else {
		printf("primary %s: %d session(s) wait on locks, %d root blocker(s)\n",
		       cli->cfg->nodes[p].name, nw, nroots);
		for (int i = 0; i < nroots; i++) {
			printf("root pid %d %s/%s, %s for %lld ms (transaction %lld ms), blocks %d for up to "
			       "%lld ms: %s\n",
			       rs[i].pid, rs[i].user, rs[i].application, rs[i].state,
			       (long long)rs[i].state_age_ms, (long long)rs[i].xact_age_ms, rs[i].blocked,
			       (long long)rs[i].blocked_for_ms, rs[i].query);
			print_waiters_of(w, nw, rs[i].pid, 1);
		}
	}
	free(w);
	PQclear(roots);
	PQclear(waits);
	return 0;
}
