#include <stdio.h>
#include <string.h>

#include "act/act.h"
#include "common/json.h"
#include "common/log.h"
#include "io/pgconn.h"

PvStatus pv_act_promote(const PvActCtx *ctx, int node, PvError *err)
{
	const PvNodeConfig *nc = &ctx->cfg->nodes[node];
	int wait_s = (ctx->cfg->failover_promote_timeout_ms + 999) / 1000;
	PvJournalSpan span;
	PvBuf detail = {0}, sql = {0};
	PvJson j;
	PvStatus st;
	PGresult *res = NULL;
	PvPgConn *conn = NULL;

	pv_json_init(&j, &detail);
	pv_json_obj_open(&j, NULL);
	pv_json_int(&j, "wait_s", wait_s);
	pv_json_obj_close(&j);
	st = pv_journal_begin(ctx->journal, &span, ctx->incident, "promote", nc->name, detail.data, err);
	if (st != PV_OK)
		goto out;
	pv_info("promoting %s", nc->name);

	conn = pv_pgconn_new(nc->conninfo, PV_PGC_KIND_POSTGRES, ctx->cfg->failover_promote_timeout_ms);
	pv_buf_printf(&sql, "SELECT pg_promote(true, %d)", wait_s);
	st = pv_pgconn_run(conn, sql.data, ctx->cfg->failover_promote_timeout_ms + 2000, &res, err);
	if (st == PV_OK && (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0))
		st = pv_error_set(err, PV_ERR_TIMEOUT, "pg_promote() did not finish within %d s", wait_s);
	if (res)
		PQclear(res);
	res = NULL;
	if (st == PV_OK) {
		st = pv_pgconn_run(conn, "SELECT pg_is_in_recovery()", 5000, &res, err);
		if (st == PV_OK && (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "f") != 0))
			st = pv_error_set(err, PV_ERR_STATE, "%s is still in recovery after pg_promote()",
			                  nc->name);
	}

	pv_buf_reset(&detail);
	pv_json_init(&j, &detail);
	pv_json_obj_open(&j, NULL);
	if (st != PV_OK)
		pv_json_str(&j, "error", err->msg);
	pv_json_obj_close(&j);
	PvError jerr;
	if (pv_journal_end(ctx->journal, &span, st == PV_OK ? "ok" : "failed", detail.data, &jerr) != PV_OK)
		pv_error("journal: %s", jerr.msg);
	if (st == PV_OK)
		pv_info("promoted %s", nc->name);
	else
		pv_error("promotion of %s failed: %s", nc->name, err->msg);
out:
	if (res)
		PQclear(res);
	pv_pgconn_free(conn);
	pv_buf_free(&detail);
	pv_buf_free(&sql);
	return st;
}
