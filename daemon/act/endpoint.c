#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/act.h"
#include "common/clock.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "io/pgconn.h"
#include "io/ssh.h"

void pv_endpoint_render(const PvPgbouncerConfig *pb, const char *primary_name, const char *host,
                        int port, const char *stamp, PvBuf *out)
{
	pv_buf_printf(out, ";; written by pgvigil at %s: primary is %s\n", stamp, primary_name);
	pv_buf_puts(out, ";; do not edit: pgvigil rewrites this file at every failover\n");
	pv_buf_puts(out, "[databases]\n");
	for (int i = 0; i < pb->ndatabases; i++) {
		const PvPoolerDb *d = &pb->databases[i];
		pv_buf_printf(out, "%s = host=%s port=%d dbname=%s", d->name, host, port, d->dbname);
		if (d->options && *d->options)
			pv_buf_printf(out, " %s", d->options);
		pv_buf_putc(out, '\n');
	}
}

/* After RELOAD: every configured database must show host:port. */
static PvStatus check_databases(const PvPgbouncerConfig *pb, PGresult *res, const char *host,
                                int port, PvError *err)
{
	int cn = PQfnumber(res, "name"), ch = PQfnumber(res, "host"), cp = PQfnumber(res, "port");
	if (cn < 0 || ch < 0 || cp < 0)
		return pv_error_set(err, PV_ERR_PROTOCOL, "SHOW DATABASES lacks name/host/port columns");
	for (int i = 0; i < pb->ndatabases; i++) {
		const char *want = pb->databases[i].name;
		bool found = false;
		for (int r = 0; r < PQntuples(res); r++) {
			if (strcmp(PQgetvalue(res, r, cn), want) != 0)
				continue;
			found = true;
			if (strcmp(PQgetvalue(res, r, ch), host) != 0 || atoi(PQgetvalue(res, r, cp)) != port)
				return pv_error_set(err, PV_ERR_STATE,
				                    "pgbouncer database %s still points to %s:%s, not %s:%d",
				                    want, PQgetvalue(res, r, ch), PQgetvalue(res, r, cp), host,
				                    port);
		}
		if (!found)
			return pv_error_set(err, PV_ERR_STATE,
			                    "pgbouncer has no database %s after RELOAD (is %s %%included?)",
			                    want, pb->include_file);
	}
	return PV_OK;
}

/*
 * The include file on PgBouncer's own host: written to a temporary file and renamed, by a
 * fixed shell program whose only inputs are its arguments (the module quotes every argument).
 */
static PvStatus write_remote(const PvPgbouncerConfig *pb, const char *text, PvError *err)
{
	const char *argv[] = {"sh", "-c",
	                      "umask 022 && printf '%s' \"$1\" > \"$2.pgvigil-tmp\" && "
	                      "mv -f \"$2.pgvigil-tmp\" \"$2\"",
	                      "pgvigil-endpoint", text, pb->include_file, NULL};
	PvSsh *s = pv_act_ssh_new(&pb->ssh);
	PvSshResult r;
	PvStatus st = pv_ssh_run(s, argv, pb->ssh.timeout_ms + pb->timeout_ms, &r, err);
	if (st == PV_OK && !pv_ssh_result_ok(&r)) {
		char how[64];
		pv_ssh_result_describe(&r, how, sizeof how);
		st = pv_error_set(err, PV_ERR_IO, "%s: writing %s: %s: %.200s", pv_ssh_name(s),
		                  pb->include_file, how, r.err.data ? r.err.data : "");
	}
	pv_ssh_result_free(&r);
	pv_ssh_free(s);
	return st;
}

PvStatus pv_act_endpoint_switch(const PvActCtx *ctx, int primary, PvError *err)
{
	const PvPgbouncerConfig *pb = &ctx->cfg->pgbouncer;
	const PvNodeConfig *nc = &ctx->cfg->nodes[primary];
	PvJournalSpan span;
	PvBuf detail = {0}, text = {0};
	PvJson j;
	PvStatus st;
	PGresult *res = NULL;
	PvPgConn *conn = NULL;
	char host[256], stamp[40];
	int port;

	st = pv_pg_conninfo_target(nc->conninfo, host, sizeof host, &port, err);
	if (st != PV_OK)
		return pv_error_prefix(err, "node %s", nc->name);

	pv_json_init(&j, &detail);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "include_file", pb->include_file);
	pv_json_str(&j, "written", pb->ssh.enabled ? "over ssh" : "locally");
	pv_json_str(&j, "host", host);
	pv_json_int(&j, "port", port);
	pv_json_arr_open(&j, "databases");
	for (int i = 0; i < pb->ndatabases; i++)
		pv_json_str(&j, NULL, pb->databases[i].name);
	pv_json_arr_close(&j);
	pv_json_obj_close(&j);
	st = pv_journal_begin(ctx->journal, &span, ctx->incident, "endpoint-switch", nc->name,
	                      detail.data, err);
	if (st != PV_OK)
		goto out;

	pv_clock_format_utc(pv_clock_wall_us(), stamp, sizeof stamp);
	pv_endpoint_render(pb, nc->name, host, port, stamp, &text);
	const char *step = "write";
	if (pb->ssh.enabled)
		st = write_remote(pb, text.data, err);
	else
		st = pv_file_write_atomic(pb->include_file, text.data, text.len, 0644, err);
	if (st == PV_OK) {
		step = "reload";
		conn = pv_pgconn_new(pb->admin_conninfo, PV_PGC_KIND_PGBOUNCER, pb->timeout_ms);
		st = pv_pgconn_run(conn, "RELOAD", pb->timeout_ms, NULL, err);
	}
	if (st == PV_OK) {
		step = "check";
		st = pv_pgconn_run(conn, "SHOW DATABASES", pb->timeout_ms, &res, err);
		if (st == PV_OK)
			st = check_databases(pb, res, host, port, err);
	}
	if (st == PV_OK) {
		/* databases fenced with KILL (or PAUSEd) hold their clients until now */
		step = "resume";
		st = pv_act_bouncer_resume(ctx, err);
	}

	pv_buf_reset(&detail);
	pv_json_init(&j, &detail);
	pv_json_obj_open(&j, NULL);
	if (st != PV_OK) {
		pv_json_str(&j, "failed_step", step);
		pv_json_str(&j, "error", err->msg);
	}
	pv_json_obj_close(&j);
	PvError jerr;
	if (pv_journal_end(ctx->journal, &span, st == PV_OK ? "ok" : "failed", detail.data, &jerr) != PV_OK)
		pv_error("journal: %s", jerr.msg);
	if (st == PV_OK)
		pv_info("pgbouncer now points to %s (%s:%d)", nc->name, host, port);
	else
		pv_error("endpoint switch to %s failed at %s: %s", nc->name, step, err->msg);
out:
	if (res)
		PQclear(res);
	pv_pgconn_free(conn);
	pv_buf_free(&detail);
	pv_buf_free(&text);
	return st;
}
