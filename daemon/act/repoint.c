#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/act.h"
#include "common/json.h"
#include "common/log.h"
#include "common/redact.h"
#include "io/pgconn.h"

/* E'...' literal: correct whatever standard_conforming_strings says. */
static void sql_literal(PvBuf *b, const char *s)
{
	pv_buf_puts(b, "E'");
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			pv_buf_putc(b, '\\');
		pv_buf_putc(b, *s);
	}
	pv_buf_putc(b, '\'');
}

static PvStatus show(PvPgConn *conn, const char *setting, int timeout_ms, char **out, PvError *err)
{
	PGresult *res = NULL;
	char sql[128];
	snprintf(sql, sizeof sql, "SHOW %s", setting);
	PvStatus st = pv_pgconn_run(conn, sql, timeout_ms, &res, err);
	if (st == PV_OK) {
		if (PQntuples(res) == 1)
			*out = pv_xstrdup(PQgetvalue(res, 0, 0));
		else
			st = pv_error_set(err, PV_ERR_PROTOCOL, "SHOW %s returned no row", setting);
	}
	if (res)
		PQclear(res);
	return st;
}

PvStatus pv_act_repoint(const PvActCtx *ctx, int standby, int primary, PvError *err)
{
	const PvNodeConfig *sc = &ctx->cfg->nodes[standby];
	const PvNodeConfig *pc = &ctx->cfg->nodes[primary];
	int timeout = ctx->cfg->failover_repoint_timeout_ms;
	PvJournalSpan span;
	PvBuf detail = {0}, sql = {0};
	PvJson j;
	PvStatus st;
	PvPgConn *conn = NULL;
	char *old_ci = NULL, *new_ci = NULL, *slot = NULL;
	char *old_red = NULL, *new_red = NULL;
	char host[256];
	int port;
	const char *step = "target";

	st = pv_pg_conninfo_target(pc->conninfo, host, sizeof host, &port, err);
	if (st != PV_OK)
		return pv_error_prefix(err, "node %s", pc->name);

	pv_json_init(&j, &detail);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "new_primary", pc->name);
	pv_json_str(&j, "host", host);
	pv_json_int(&j, "port", port);
	pv_json_obj_close(&j);
	st = pv_journal_begin(ctx->journal, &span, ctx->incident, "repoint", sc->name, detail.data, err);
	if (st != PV_OK)
		goto out;

	conn = pv_pgconn_new(sc->conninfo, PV_PGC_KIND_POSTGRES, timeout);
	step = "read";
	st = show(conn, "primary_conninfo", timeout, &old_ci, err);
	if (st == PV_OK)
		st = show(conn, "primary_slot_name", timeout, &slot, err);
	if (st == PV_OK && !*old_ci)
		st = pv_error_set(err, PV_ERR_STATE, "%s has no primary_conninfo to retarget", sc->name);
	if (st == PV_OK) {
		step = "retarget";
		st = pv_pg_conninfo_retarget(old_ci, host, port, &new_ci, err);
	}
	if (st == PV_OK && slot && *slot) {
		/* slots are not copied to standbys: the new primary needs this one */
		step = "slot";
		pv_buf_puts(&sql, "SELECT pg_create_physical_replication_slot(n, true) FROM (SELECT ");
		sql_literal(&sql, slot);
		pv_buf_puts(&sql, "::name AS n) s WHERE NOT EXISTS "
		                  "(SELECT 1 FROM pg_replication_slots WHERE slot_name = n)");
		st = pv_pg_exec_once(pc->conninfo, PV_PGC_KIND_POSTGRES, sql.data, timeout, NULL, err);
		pv_buf_reset(&sql);
	}
	if (st == PV_OK) {
		step = "alter-system";
		pv_buf_puts(&sql, "ALTER SYSTEM SET primary_conninfo = ");
		sql_literal(&sql, new_ci);
		st = pv_pgconn_run(conn, sql.data, timeout, NULL, err);
	}
	if (st == PV_OK) {
		step = "reload";
		st = pv_pgconn_run(conn, "SELECT pg_reload_conf()", timeout, NULL, err);
	}

	old_red = pv_redact_conninfo(old_ci ? old_ci : "");
	new_red = pv_redact_conninfo(new_ci ? new_ci : "");
	pv_buf_reset(&detail);
	pv_json_init(&j, &detail);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "old_primary_conninfo", old_red);
	pv_json_str(&j, "new_primary_conninfo", new_red);
	if (slot && *slot)
		pv_json_str(&j, "slot", slot);
	if (st != PV_OK) {
		pv_json_str(&j, "failed_step", step);
		pv_json_str(&j, "error", err->msg);
	}
	pv_json_obj_close(&j);
	PvError jerr;
	if (pv_journal_end(ctx->journal, &span, st == PV_OK ? "ok" : "failed", detail.data, &jerr) != PV_OK)
		pv_error("journal: %s", jerr.msg);
	if (st == PV_OK)
		pv_info("repointed %s to %s", sc->name, pc->name);
	else
		pv_error("repointing %s to %s failed at %s: %s", sc->name, pc->name, step, err->msg);
out:
	pv_pgconn_free(conn);
	pv_buf_free(&detail);
	pv_buf_free(&sql);
	free(old_ci);
	free(new_ci);
	free(slot);
	free(old_red);
	free(new_red);
	return st;
}
