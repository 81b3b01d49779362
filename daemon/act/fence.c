/*
 * fence: makes sure the old primary takes no more writes before a standby is promoted.
 *
 * The methods of fencing.methods run in order, each journaled begin/end:
 *   pgbouncer  KILL each configured database on the admin console: the old primary's client
 *              and server connections are dropped and new clients wait (they are released by
 *              RESUME once the endpoint points at the new primary, or on abort);
 *   stop       pg_ctl stop -m immediate on the node's host (locally as the data directory's
 *              owner, or over ssh); a server that is not running counts as stopped; a local
 *              server that does not stop in time (frozen) is SIGKILLed, postmaster and children.
 * `default_transaction_read_only` is not a fence (a client can override it) and is not used.
 * The result says which fence held; the caller promotes only if one did, or if the old primary
 * is unreachable from pgvigil and from every standby (a journaled finding).
 */
#include <stdio.h>
#include <string.h>

#include "act/act.h"
#include "act/nodectl.h"
#include "common/json.h"
#include "common/log.h"
#include "core/health.h"
#include "io/pgconn.h"

PvStatus pv_act_bouncer_command(const PvConfig *cfg, const char *verb, int timeout_ms, PvBuf *done,
                                PvError *err)
{
	const PvPgbouncerConfig *pb = &cfg->pgbouncer;
	PvPgConn *c = pv_pgconn_new(pb->admin_conninfo, PV_PGC_KIND_PGBOUNCER, timeout_ms);
	PvStatus st = PV_OK;
	for (int i = 0; i < pb->ndatabases; i++) {
		char sql[128];
		snprintf(sql, sizeof sql, "%s %s", verb, pb->databases[i].name);
		PvError e2;
		PvStatus s2 = pv_pgconn_run(c, sql, timeout_ms, NULL, &e2);
		/* RESUME of a database that is not paused is not a failure */
		if (s2 != PV_OK && strstr(e2.msg, "not paused"))
			s2 = PV_OK;
		if (s2 != PV_OK && st == PV_OK) {
			st = s2;
			pv_error_set(err, s2, "%s: %s", sql, e2.msg);
		}
		if (s2 == PV_OK && done)
			pv_buf_printf(done, "%s%s", done->len ? "," : "", pb->databases[i].name);
	}
	pv_pgconn_free(c);
	return st;
}

PvStatus pv_act_bouncer_resume(const PvActCtx *ctx, PvError *err)
{
	if (!ctx->cfg->pgbouncer.enabled)
		return PV_OK;
	return pv_act_bouncer_command(ctx->cfg, "RESUME", ctx->cfg->pgbouncer.timeout_ms, NULL, err);
}

static void end_record(const PvActCtx *ctx, PvJournalSpan *span, const char *outcome,
                       const char *method, const char *note)
{
	PvBuf b = {0};
	PvJson j;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "method", method);
	if (note && *note)
		pv_json_str(&j, "note", note);
	pv_json_obj_close(&j);
	if (pv_journal_end(ctx->journal, span, outcome, b.data, &err) != PV_OK)
		pv_error("journal: %s", err.msg);
	pv_buf_free(&b);
}

static bool begin_record(const PvActCtx *ctx, PvJournalSpan *span, const char *node,
                         const char *method, const char *what)
{
	PvBuf b = {0};
	PvJson j;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "method", method);
	pv_json_str(&j, "action", what);
	pv_json_obj_close(&j);
	bool ok = pv_journal_begin(ctx->journal, span, ctx->incident, "fence", node, b.data, &err) == PV_OK;
	if (!ok)
		pv_error("journal: %s: fence %s not attempted", err.msg, method);
	pv_buf_free(&b);
	return ok;
}

static bool fence_bouncer(const PvActCtx *ctx, int old)
{
	PvJournalSpan span;
	PvError err;
	PvBuf done = {0};
	const char *name = ctx->cfg->nodes[old].name;
	if (!ctx->cfg->pgbouncer.enabled) {
		pv_info("fence pgbouncer: no pgbouncer configured");
		return false;
	}
	if (!begin_record(ctx, &span, name, "pgbouncer", "KILL each database: clients cut off, new ones wait"))
		return false;
	PvStatus st = pv_act_bouncer_command(ctx->cfg, "KILL", ctx->cfg->pgbouncer.timeout_ms, &done, &err);
	PvBuf note = {0};
	pv_buf_printf(&note, "killed: %s", done.data ? done.data : "");
	if (st != PV_OK)
		pv_buf_printf(&note, "; %s", err.msg);
	end_record(ctx, &span, st == PV_OK ? "ok" : "failed", "pgbouncer", note.data);
	pv_buf_free(&note);
	pv_buf_free(&done);
	return st == PV_OK;
}

static bool fence_stop(const PvActCtx *ctx, int old, const char **held)
{
	PvJournalSpan span;
	PvError err;
	const char *name = ctx->cfg->nodes[old].name;
	if (!pv_nodectl_possible(ctx->cfg, old)) {
		pv_info("fence stop: node %s has no pgdata configured", name);
		return false;
	}
	if (!begin_record(ctx, &span, name, "stop", "pg_ctl stop -m immediate"))
		return false;
	int t = ctx->cfg->fencing_stop_timeout_ms;
	char secs[16];
	snprintf(secs, sizeof secs, "%d", (t + 999) / 1000);
	const char *args[] = {"stop", "-m", "immediate", "-t", secs, NULL};
	PvNodeCmdResult r;
	PvStatus st = pv_nodectl_pg_ctl(ctx->cfg, old, args, t + 1000, &r, &err);
	const char *out = r.out.data ? r.out.data : "";
	bool stopped = false;
	char note[512];
	if (st != PV_OK) {
		pv_strlcpy(note, err.msg, sizeof note);
	} else if (r.ran && r.exit_status == 0) {
		stopped = true;
		*held = "stopped";
		snprintf(note, sizeof note, "stopped (%s)", r.where);
	} else if (strstr(out, "No such process") || strstr(out, "Is server running") ||
	           strstr(out, "does not exist")) {
		stopped = true;
		*held = "not-running";
		snprintf(note, sizeof note, "not running (%s)", r.where);
	} else {
		snprintf(note, sizeof note, "pg_ctl %s (%s): %.300s", r.timed_out ? "timed out" : "failed",
		         r.where, out);
	}
	pv_nodectl_result_free(&r);
	if (!stopped && !ctx->cfg->nodes[old].ssh.enabled) {
		/* frozen, or ignoring signals: SIGKILL needs no cooperation */
		int n = pv_nodectl_kill_local(ctx->cfg, old, &err);
		if (n > 0) {
			stopped = true;
			*held = "killed";
			size_t len = strlen(note);
			snprintf(note + len, sizeof note - len, "; SIGKILLed %d process(es)", n);
		}
	}
	end_record(ctx, &span, stopped ? "ok" : "failed", "stop", note);
	return stopped;
}

PvStatus pv_act_fence(const PvActCtx *ctx, int old, bool unreachable, PvFenceResult *res,
                      PvError *err)
{
	memset(res, 0, sizeof *res);
	res->unreachable = unreachable;
	const char *p = ctx->cfg->fencing_methods ? ctx->cfg->fencing_methods : "";
	/* in the configured order, until one holds; the rest run after the promotion */
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ",");
		char m[32];
		snprintf(m, sizeof m, "%.*s", (int)(n < sizeof m ? n : sizeof m - 1), p);
		for (char *t = m + strlen(m); t > m && t[-1] == ' ';)
			*--t = '\0';
		p += n;
		if (strcmp(m, "pgbouncer") == 0) {
			if (res->fenced)
				continue; /* nothing to defer: the endpoint moves with the promotion */
			if (fence_bouncer(ctx, old)) {
				res->endpoint_fenced = res->bouncer_killed = res->fenced = true;
			}
		} else if (strcmp(m, "stop") == 0) {
			/* stopping a server that does not answer can take the whole stop timeout (a
			 * frozen one is SIGKILLed only then): when it is already fenced or found
			 * unreachable, stop it after the promotion instead */
			if (res->fenced || unreachable) {
				res->stop_deferred = pv_nodectl_possible(ctx->cfg, old);
				continue;
			}
			const char *held = NULL;
			if (fence_stop(ctx, old, &held)) {
				res->stopped = res->fenced = true;
				snprintf(res->stop_how, sizeof res->stop_how, "%s", held ? held : "stopped");
			}
		}
	}
	if (!res->fenced && !res->unreachable)
		return pv_error_set(err, PV_ERR_STATE,
		                    "no fence held for %s and it may still be reachable: not promoting",
		                    ctx->cfg->nodes[old].name);
	return PV_OK;
}

bool pv_act_fence_stop(const PvActCtx *ctx, int old)
{
	const char *held = NULL;
	const PvNodeConfig *nc = &ctx->cfg->nodes[old];
	if (pv_nodectl_possible(ctx->cfg, old) && !nc->ssh.enabled) {
		/* after a promotion a local old primary is not asked: it is SIGKILLed, which needs
		 * no cooperation from a frozen server and costs no stop timeout */
		PvJournalSpan span;
		PvError err;
		if (!begin_record(ctx, &span, nc->name, "stop", "SIGKILL postmaster and children"))
			return false;
		int n = pv_nodectl_kill_local(ctx->cfg, old, &err);
		char note[256];
		if (n > 0)
			snprintf(note, sizeof note, "SIGKILLed %d process(es)", n);
		else
			snprintf(note, sizeof note, "not running (%.200s)", err.msg);
		end_record(ctx, &span, "ok", "stop", note);
		return true;
	}
	return fence_stop(ctx, old, &held);
}
