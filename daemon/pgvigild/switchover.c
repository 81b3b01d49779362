/*
 * switchover: a planned change of primary that clients do not notice.
 *
 *   check     the target streams from a healthy primary; predict the pause from live figures
 *             (the target's lag, the longest open transaction): over switchover.max_pause_ms,
 *             refuse before anything changes
 *   pause     PAUSE the PgBouncer databases: running transactions finish, new ones queue
 *   checkpoint, then read the primary's final LSN (no client writes any more)
 *   stop      the old primary, pg_ctl stop -m fast (its walsenders ship everything first)
 *   catch-up  wait until the target replayed the final LSN: nothing acknowledged is lost
 *   promote   the target; the endpoint rewritten, RELOADed, RESUMEd: clients go on there
 *   rejoin    the old primary restarts as a standby of the new one (standby.signal and
 *             primary_conninfo in its data directory: a local node; a remote one is left
 *             stopped for `pgvigil rejoin`)
 *   repoint   the other standbys; then the usual wait until all stream from the new primary
 * A failure before the promotion rolls back: the old primary is started again and the
 * databases RESUMEd.  Each step is journaled begin/end (switchover-step); the whole is one
 * incident with trigger "switchover".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "act/act.h"
#include "act/nodectl.h"
#include "common/clock.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "io/pgconn.h"
#include "pgvigild/daemon.h"

typedef struct {
	PvDaemon *d;
	PvActCtx ctx;
	int old, target;
	PvJournalSpan span;
	bool open;
} Step;

static bool step_begin(Step *s, const char *name, const char *node)
{
	PvBuf b = {0};
	PvJson j;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "step", name);
	pv_json_obj_close(&j);
	s->open = pv_journal_begin(s->d->journal, &s->span, s->d->incident, "switchover-step", node,
	                           b.data, &err) == PV_OK;
	if (!s->open)
		pv_error("journal: %s: switchover step %s not attempted", err.msg, name);
	pv_buf_free(&b);
	return s->open;
}

static void step_end(Step *s, bool ok, const char *note)
{
	if (!s->open)
		return;
	PvBuf b = {0};
	PvJson j;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	if (note && *note)
		pv_json_str(&j, "note", note);
	pv_json_obj_close(&j);
	if (pv_journal_end(s->d->journal, &s->span, ok ? "ok" : "failed", b.data, &err) != PV_OK)
		pv_error("journal: %s", err.msg);
	pv_buf_free(&b);
	s->open = false;
}


static int64_t query_int(const char *conninfo, const char *sql, int timeout_ms, PvError *err)
{
	PGresult *r = NULL;
	int64_t v = -1;
	if (pv_pg_exec_once(conninfo, PV_PGC_KIND_POSTGRES, sql, timeout_ms, &r, err) == PV_OK &&
	    PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	if (r)
		PQclear(r);
	return v;
}

static bool query_lsn(const char *conninfo, const char *sql, uint64_t *lsn, PvError *err)
{
	PGresult *r = NULL;
	bool ok = pv_pg_exec_once(conninfo, PV_PGC_KIND_POSTGRES, sql, 3000, &r, err) == PV_OK &&
	          PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) && pv_lsn_parse(PQgetvalue(r, 0, 0), lsn);
	if (r)
		PQclear(r);
	return ok;
}

static char *show_setting(const char *conninfo, const char *name)
{
	PGresult *r = NULL;
	PvError err;
	char sql[96];
	char *v = NULL;
	snprintf(sql, sizeof sql, "SHOW %s", name);
	if (pv_pg_exec_once(conninfo, PV_PGC_KIND_POSTGRES, sql, 3000, &r, &err) == PV_OK &&
	    PQntuples(r) == 1)
		v = pv_xstrdup(PQgetvalue(r, 0, 0));
	if (r)
		PQclear(r);
	return v;
}

/* Replaces or adds application_name in a key='value' conninfo (the form retarget writes). */
static char *with_appname(const char *ci, const char *name)
{
	PvBuf b = {0};
	const char *p = strstr(ci, "application_name='");
	if (p) {
		pv_buf_append(&b, ci, (size_t)(p - ci));
		const char *e = strchr(p + 18, '\'');
		pv_buf_printf(&b, "application_name='%s'", name);
		pv_buf_puts(&b, e ? e + 1 : "");
	} else {
		pv_buf_printf(&b, "%s application_name='%s'", ci, name);
	}
	return pv_buf_steal(&b);
}

/* The old primary, stopped, restarts as a standby of the target (local nodes only). */
static bool rejoin_old(Step *s, const char *conninfo_for_old, PvError *err)
{
	const PvNodeConfig *nc = &s->d->cfg->nodes[s->old];
	struct stat sb;
	if (nc->ssh.enabled) {
		pv_error_set(err, PV_ERR_STATE, "%s is remote: bring it back with pgvigil rejoin %s",
		             nc->name, nc->name);
		return false;
	}
	if (stat(nc->pgdata, &sb) != 0) {
		pv_error_set(err, PV_ERR_IO, "%s: %s", nc->pgdata, strerror(errno));
		return false;
	}
	char *sig = pv_xasprintf("%s/standby.signal", nc->pgdata);
	char *auto_conf = pv_xasprintf("%s/postgresql.auto.conf", nc->pgdata);
	char *text = NULL;
	size_t len = 0;
	PvBuf out = {0};
	bool ok = false;
	if (pv_file_read_all(auto_conf, &text, &len, err) != PV_OK && err->code != PV_ERR_NOT_FOUND)
		goto out;
	/* drop earlier primary_conninfo lines, then append ours */
	for (const char *l = text ? text : ""; *l;) {
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l + 1) : strlen(l);
		if (strncmp(l, "primary_conninfo", 16) != 0)
			pv_buf_append(&out, l, n);
		l += n;
	}
	pv_buf_puts(&out, "primary_conninfo = '");
	for (const char *c = conninfo_for_old; *c; c++) {
		if (*c == '\'')
			pv_buf_putc(&out, '\'');
		pv_buf_putc(&out, *c);
	}
	pv_buf_puts(&out, "'\n");
	if (pv_file_write_atomic(auto_conf, out.data, out.len, 0600, err) != PV_OK ||
	    pv_file_write_atomic(sig, "", 0, 0600, err) != PV_OK)
		goto out;
	if (chown(auto_conf, sb.st_uid, sb.st_gid) != 0 || chown(sig, sb.st_uid, sb.st_gid) != 0) {
		pv_error_set(err, PV_ERR_IO, "chown in %s: %s", nc->pgdata, strerror(errno));
		goto out;
	}
	const char *args[] = {"start", "-w", "-t", "30", "-l", NULL, NULL};
	char *logf = pv_xasprintf("%s/pgvigil-start.log", nc->pgdata);
	args[5] = logf;
	PvNodeCmdResult r;
	PvStatus st = pv_nodectl_pg_ctl(s->d->cfg, s->old, args, 35000, &r, err);
	ok = st == PV_OK && r.ran && r.exit_status == 0;
	if (st == PV_OK && !ok)
		pv_error_set(err, PV_ERR_STATE, "pg_ctl start: %.300s", r.out.data ? r.out.data : "");
	pv_nodectl_result_free(&r);
	free(logf);
out:
	free(text);
	free(sig);
	free(auto_conf);
	pv_buf_free(&out);
	return ok;
}

static void respond(PvCtlRequest *req, bool ok, const char *error, const char *incident,
                    int64_t queued_ms, int64_t predicted_ms, const PvBuf *plan)
{
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_bool(&j, "ok", ok);
	pv_json_str(&j, "error", error);
	pv_json_str(&j, "incident", incident);
	if (queued_ms >= 0)
		pv_json_int(&j, "queued_ms", queued_ms);
	pv_json_int(&j, "predicted_pause_ms", predicted_ms);
	pv_json_raw(&j, "plan", plan->data);
	pv_json_obj_close(&j);
	pv_ctl_respond(req, b.data);
	pv_buf_free(&b);
}

void pv_switchover_ctl(PvDaemon *d, PvCtlRequest *req, json_t *rq)
{
	const PvConfig *cfg = d->cfg;
	PvClusterView *v = &d->view;
	const char *to = json_string_value(json_object_get(rq, "to"));
	const char *reason = json_string_value(json_object_get(rq, "reason"));
	bool dry = json_is_true(json_object_get(rq, "dry_run"));
	int old = v->primary, t = to ? pv_config_node_index(cfg, to) : -1;
	PvBuf msg = {0}, plan = {0};
	PvError err;

	if (!reason || !*reason) {
		pv_daemon_respond_error(req, "a reason is required (--reason TEXT)");
		return;
	}
	if (t < 0) {
		pv_buf_printf(&msg, "unknown target node \"%s\"", to ? to : "");
		goto refuse;
	}
	if (old < 0 || v->nodes[old].obs.result != PV_PROBE_UP || v->nodes[old].obs.in_recovery) {
		pv_buf_puts(&msg, "no healthy primary to switch over from (use failover)");
		goto refuse;
	}
	if (t == old) {
		pv_buf_printf(&msg, "%s is already the primary", to);
		goto refuse;
	}
	if (d->verifying || d->incident[0]) {
		pv_buf_printf(&msg, "incident %s is open: close it first", d->incident[0] ? d->incident : "?");
		goto refuse;
	}
	if (!pv_core_sees(v, t, old, 0)) {
		pv_buf_printf(&msg, "%s does not stream from %s", to, v->nodes[old].name);
		goto refuse;
	}
	if (!pv_nodectl_possible(cfg, old)) {
		pv_buf_printf(&msg, "%s has no pgdata configured: pgvigil cannot stop it", v->nodes[old].name);
		goto refuse;
	}
	/* predicted pause: PAUSE waits for open transactions; the target must catch up */
	int64_t longest = query_int(cfg->nodes[old].conninfo,
	                            "SELECT coalesce(max(extract(epoch FROM now() - xact_start) * 1000), 0)"
	                            "::bigint FROM pg_stat_activity WHERE backend_type = 'client backend'"
	                            " AND xact_start IS NOT NULL AND pid <> pg_backend_pid()"
	                            " AND application_name <> 'pgvigil' AND state <> 'idle'",
	                            2000, &err);
	uint64_t plsn = v->nodes[old].obs.current_lsn, tlsn = pv_core_standby_lsn(&v->nodes[t].obs);
	int64_t lag = plsn > tlsn ? (int64_t)(plsn - tlsn) : 0;
	/* ~100 MB/s of replay on a small machine, plus the fixed cost of the steps */
	int64_t predicted = (longest > 0 ? longest : 0) + lag / 100000 + 300;
	pv_buf_puts(&plan, "[");
	const char *steps[] = {"PAUSE the PgBouncer databases (clients queue)", "CHECKPOINT the primary",
	                       "stop the primary (pg_ctl stop -m fast)", "wait until the target replayed its final LSN",
	                       "promote the target", "point PgBouncer at it, RELOAD, RESUME",
	                       "restart the old primary as a standby of the new one", "repoint the other standbys"};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		if (i)
			pv_buf_putc(&plan, ',');
		pv_json_escape(&plan, steps[i]);
	}
	pv_buf_puts(&plan, "]");
	if (predicted > cfg->switchover_max_pause_ms) {
		pv_buf_printf(&msg, "the predicted pause %lld ms (longest transaction %lld ms, lag %lld bytes) "
		              "exceeds switchover.max_pause_ms %d",
		              (long long)predicted, (long long)longest, (long long)lag, cfg->switchover_max_pause_ms);
		goto refuse;
	}
	if (dry) {
		respond(req, true, NULL, NULL, -1, predicted, &plan);
		pv_buf_free(&plan);
		pv_buf_free(&msg);
		return;
	}

	/* go */
	pv_buf_printf(&msg, "switchover by uid %u to %s: %s", (unsigned)req->uid, to, reason);
	pv_daemon_incident_open(d, "switchover", msg.data, v->nodes[old].name);
	pv_buf_reset(&msg);
	Step s = {.d = d, .ctx = {.cfg = cfg, .journal = d->journal, .incident = d->incident}, .old = old, .target = t};
	char *target_ci = show_setting(cfg->nodes[t].conninfo, "primary_conninfo");
	int64_t t_pause = pv_clock_mono_ms(), queued = -1;
	bool paused = false, stopped = false;
	uint64_t final_lsn = 0;
	PvStatus st;

	if (cfg->pgbouncer.enabled) {
		if (!step_begin(&s, "pause", NULL))
			goto rollback;
		st = pv_act_bouncer_command(cfg, "PAUSE", cfg->switchover_max_pause_ms, NULL, &err);
		paused = true;
		step_end(&s, st == PV_OK, st == PV_OK ? NULL : err.msg);
		if (st != PV_OK) {
			pv_buf_printf(&msg, "PAUSE did not finish within switchover.max_pause_ms: %s", err.msg);
			goto rollback;
		}
	}
	if (!step_begin(&s, "checkpoint", v->nodes[old].name))
		goto rollback;
	st = pv_pg_exec_once(cfg->nodes[old].conninfo, PV_PGC_KIND_POSTGRES, "CHECKPOINT", 30000, NULL, &err);
	bool lsn_ok = st == PV_OK && query_lsn(cfg->nodes[old].conninfo, "SELECT pg_current_wal_lsn()", &final_lsn, &err);
	step_end(&s, lsn_ok, lsn_ok ? NULL : err.msg);
	if (!lsn_ok) {
		pv_buf_printf(&msg, "checkpoint: %s", err.msg);
		goto rollback;
	}
	if (!step_begin(&s, "stop", v->nodes[old].name))
		goto rollback;
	{
		const char *args[] = {"stop", "-m", "fast", "-t", "30", NULL};
		PvNodeCmdResult r;
		st = pv_nodectl_pg_ctl(cfg, old, args, 35000, &r, &err);
		stopped = st == PV_OK && r.ran && r.exit_status == 0;
		char note[256];
		snprintf(note, sizeof note, "%.200s", r.out.data ? r.out.data : err.msg);
		step_end(&s, stopped, note);
		pv_nodectl_result_free(&r);
		if (!stopped) {
			pv_buf_printf(&msg, "could not stop %s: %s", v->nodes[old].name, note);
			goto rollback;
		}
	}
	if (!step_begin(&s, "catch-up", to))
		goto rollback;
	{
		char want[32];
		pv_lsn_format(final_lsn, want, sizeof want);
		int64_t deadline = pv_clock_mono_ms() + cfg->switchover_max_pause_ms;
		uint64_t got = 0;
		bool caught = false;
		while (pv_clock_mono_ms() < deadline) {
			if (query_lsn(cfg->nodes[t].conninfo, "SELECT pg_last_wal_replay_lsn()", &got, &err) &&
			    got >= final_lsn) {
				caught = true;
				break;
			}
			poll(NULL, 0, 10);
		}
		char note[96], have[32];
		pv_lsn_format(got, have, sizeof have);
		snprintf(note, sizeof note, "final LSN %s, replayed %s", want, have);
		step_end(&s, caught, note);
		if (!caught) {
			pv_buf_printf(&msg, "%s did not replay %s in time (%s)", to, want, have);
			goto rollback;
		}
	}
	/* the point of no return */
	st = pv_act_promote(&s.ctx, t, &err);
	if (st != PV_OK) {
		pv_buf_printf(&msg, "promotion of %s failed: %s", to, err.msg);
		goto rollback;
	}
	v->primary = t;
	v->nodes[t].obs.in_recovery = false;
	v->nodes[t].obs.receiver_streaming = false;
	v->nodes[t].promoted_at_ms = pv_clock_mono_ms();
	pv_daemon_reset_write_state(&v->nodes[t]);
	if (cfg->pgbouncer.enabled && pv_act_endpoint_switch(&s.ctx, t, &err) != PV_OK)
		d->problems++;
	else if (paused)
		queued = pv_clock_mono_ms() - t_pause;
	pv_daemon_notify(d, PV_DEV_PROMOTED, t);
	memset(d->verify_pending, 0, sizeof d->verify_pending);
	/* the old primary comes back as a standby of the new one */
	if (step_begin(&s, "rejoin-old", v->nodes[old].name)) {
		char *ci = NULL;
		bool ok = false;
		if (target_ci && *target_ci &&
		    pv_pg_conninfo_retarget(target_ci, v->nodes[t].host, v->nodes[t].port, &ci, &err) == PV_OK) {
			char *named = with_appname(ci, v->nodes[old].name);
			ok = rejoin_old(&s, named, &err);
			free(named);
		} else if (!target_ci || !*target_ci)
			pv_error_set(&err, PV_ERR_STATE, "%s had no primary_conninfo to copy", to);
		free(ci);
		step_end(&s, ok, ok ? NULL : err.msg);
		if (ok)
			d->verify_pending[old] = true;
		else
			d->problems++;
	}
	for (int i = 0; i < v->nnodes; i++) {
		if (i == t || i == old || v->nodes[i].obs.result != PV_PROBE_UP || !v->nodes[i].obs.in_recovery)
			continue;
		if (pv_act_repoint(&s.ctx, i, t, &err) == PV_OK)
			d->verify_pending[i] = true;
		else
			d->problems++;
	}
	char incident[64];
	snprintf(incident, sizeof incident, "%s", d->incident);
	pv_daemon_verify_begin(d, t);
	respond(req, true, NULL, incident, queued, predicted, &plan);
	pv_info("switchover to %s done; clients queued %lld ms", to, (long long)queued);
	free(target_ci);
	pv_buf_free(&plan);
	pv_buf_free(&msg);
	return;

rollback:
	/* before the promotion: everything back as it was */
	if (stopped && step_begin(&s, "rollback-start", v->nodes[old].name)) {
		const char *args[] = {"start", "-w", "-t", "30", NULL};
		PvNodeCmdResult r;
		PvError e2;
		PvStatus s2 = pv_nodectl_pg_ctl(cfg, old, args, 35000, &r, &e2);
		step_end(&s, s2 == PV_OK && r.exit_status == 0, r.out.data);
		pv_nodectl_result_free(&r);
	}
	if (paused) {
		PvError e2;
		if (pv_act_bouncer_command(cfg, "RESUME", cfg->pgbouncer.timeout_ms, NULL, &e2) != PV_OK)
			pv_error("switchover rollback: RESUME: %s", e2.msg);
	}
	pv_error("switchover aborted: %s", msg.data);
	{
		char aborted[64];
		snprintf(aborted, sizeof aborted, "%s", d->incident);
		pv_daemon_incident_close(d, v->nodes[old].name, true);
		respond(req, false, msg.data, aborted, -1, predicted, &plan);
	}
	free(target_ci);
	pv_buf_free(&plan);
	pv_buf_free(&msg);
	return;

refuse:
	{
		PvBuf b = {0};
		PvJson j;
		pv_json_init(&j, &b);
		pv_json_obj_open(&j, NULL);
		pv_json_int(&j, "operator_uid", (int64_t)req->uid);
		pv_json_str(&j, "target", to);
		pv_json_str(&j, "reason", reason);
		pv_json_str(&j, "refused", msg.data);
		pv_json_obj_close(&j);
		pv_daemon_journal_event(d, "switchover-refused", to, "refused", b.data);
		pv_buf_free(&b);
	}
	pv_daemon_respond_error(req, msg.data);
	pv_buf_free(&plan);
	pv_buf_free(&msg);
}
