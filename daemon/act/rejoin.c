/*
 * rejoin: the extension (see rejoin.h): the journal records, and the driver that runs the
 * steps of rejoin_steps.c one after the other from the loop.  The control verb that starts a
 * rejoin is in rejoin_ctl.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/rejoin.h"
#include "act/rejoin_int.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "journal/events.h"
#include "probe/prober.h"

#define EV(e) pv_journal_event_name(e)

/* ---------------------------------------------------------------- helpers for the steps */

void pv_rj_note(Rj *x, const char *fmt, ...)
{
	va_list ap;
	if (x->notes.len)
		pv_buf_puts(&x->notes, "; ");
	va_start(ap, fmt);
	pv_buf_vprintf(&x->notes, fmt, ap);
	va_end(ap);
}

static void fact(Rj *x, const char *key, const char *s, int64_t i)
{
	if (x->nfacts >= (int)(sizeof x->facts / sizeof x->facts[0]))
		return;
	snprintf(x->facts[x->nfacts].key, sizeof x->facts[0].key, "%s", key);
	x->facts[x->nfacts].s = s ? pv_xstrdup(s) : NULL;
	x->facts[x->nfacts].i = i;
	x->nfacts++;
}

void pv_rj_fact_str(Rj *x, const char *key, const char *value)
{
	fact(x, key, value ? value : "", 0);
}

void pv_rj_fact_int(Rj *x, const char *key, int64_t value)
{
	fact(x, key, NULL, value);
}

RjResult pv_rj_fail(Rj *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->error, sizeof x->error, fmt, ap);
	va_end(ap);
	return RJ_FAIL;
}

static void record_cmd(Rj *x, const char *result, int64_t ms)
{
	if (x->ncmdrec >= (int)(sizeof x->cmdrec / sizeof x->cmdrec[0]))
		return;
	snprintf(x->cmdrec[x->ncmdrec].label, sizeof x->cmdrec[0].label, "%s", x->cmd_label);
	snprintf(x->cmdrec[x->ncmdrec].result, sizeof x->cmdrec[0].result, "%s", result);
	x->cmdrec[x->ncmdrec].ms = ms;
	x->ncmdrec++;
}

bool pv_rj_run(Rj *x, int64_t now, const char *label, const char *const *argv,
               const char *const *env, int timeout_ms)
{
	pv_hostcmd_free(x->cmd);
	x->cmd = NULL;
	char *line = label ? NULL : pv_ssh_command(argv);
	snprintf(x->cmd_label, sizeof x->cmd_label, "%s", label ? label : line);
	free(line);
	PvError err;
	if (pv_hostcmd_start(&x->host, argv, env, timeout_ms, now, &x->cmd, &err) != PV_OK) {
		char r[192];
		snprintf(r, sizeof r, "not started: %.170s", err.msg);
		record_cmd(x, r, 0);
		pv_rj_fail(x, "%.200s: %s", x->cmd_label, err.msg);
		return false;
	}
	x->cmd_running = true;
	pv_info("rejoin %s: %s", x->node, x->cmd_label);
	return true;
}

static void sql_reset(Rj *x)
{
	if (x->res)
		PQclear(x->res);
	x->res = NULL;
	x->pg_failed = false;
	x->pg_error[0] = '\0';
}

void pv_rj_sql(Rj *x, const char *conninfo, const char *sql, int timeout_ms, int64_t now)
{
	sql_reset(x);
	if (!x->pg || x->pg_ci != conninfo) {
		pv_pgconn_free(x->pg);
		x->pg = pv_pgconn_new(conninfo, PV_PGC_KIND_POSTGRES, timeout_ms);
		x->pg_ci = conninfo;
	}
	pv_pgconn_start(x->pg, sql, now + timeout_ms, now);
	x->pg_busy = true;
}

void pv_rj_prog(const Rj *x, const char *name, char *out, size_t size)
{
	if (x->pg_bin && *x->pg_bin)
		snprintf(out, size, "%s/%s", x->pg_bin, name);
	else
		snprintf(out, size, "%s", name);
}

void pv_rj_cmd_tail(PvHostCmd *c, char *out, size_t size)
{
	pv_rejoin_tail(c ? pv_hostcmd_output(c) : "", 3, out, size);
}

/* ---------------------------------------------------------------- journal */

static void jerror(const PvError *err)
{
	pv_error("journal: %s", err->msg);
}

static void step_entry(Rj *x, const char *name, const char *outcome, int64_t ms, const char *note)
{
	PvJson j;
	if (x->steps.len)
		pv_buf_putc(&x->steps, ',');
	pv_json_init(&j, &x->steps);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "step", name);
	pv_json_str(&j, "outcome", outcome);
	pv_json_int(&j, "duration_ms", ms);
	pv_json_str(&j, "note", note && *note ? note : NULL);
	pv_json_obj_close(&j);
}

static void step_clear(Rj *x)
{
	pv_hostcmd_free(x->cmd);
	x->cmd = NULL;
	x->cmd_running = false;
	sql_reset(x);
	pv_pgconn_free(x->pg);
	x->pg = NULL;
	x->pg_ci = NULL;
	x->pg_busy = false;
	pv_buf_reset(&x->notes);
	x->ncmdrec = 0;
	for (int i = 0; i < x->nfacts; i++)
		free(x->facts[i].s);
	x->nfacts = 0;
	x->wake_ms = 0;
	x->error[0] = '\0';
}

static bool step_begin(Rj *x, int64_t now)
{
	PvBuf b = {0};
	PvJson j;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "step", pv_rejoin_step_name(x->step));
	pv_rj_begin_detail(x, x->step, &j);
	pv_json_obj_close(&j);
	PvStatus st = pv_journal_begin(x->d->journal, &x->sspan, "", EV(PV_EV_REJOIN_STEP), x->node,
	                               b.data, &err);
	pv_buf_free(&b);
	if (st != PV_OK) {
		jerror(&err);
		pv_rj_fail(x, "journal: %s (step %s not run)", err.msg,
		           pv_rejoin_step_name(x->step));
		return false;
	}
	x->sspan_open = true;
	x->step_start_ms = now;
	pv_info("rejoin %s: step %s", x->node, pv_rejoin_step_name(x->step));
	return true;
}

static void step_end(Rj *x, const char *outcome, int64_t now)
{
	PvBuf b = {0};
	PvJson j;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "step", pv_rejoin_step_name(x->step));
	pv_json_arr_open(&j, "commands");
	for (int i = 0; i < x->ncmdrec; i++) {
		pv_json_obj_open(&j, NULL);
		pv_json_str(&j, "command", x->cmdrec[i].label);
		pv_json_str(&j, "result", x->cmdrec[i].result);
		pv_json_int(&j, "duration_ms", x->cmdrec[i].ms);
		pv_json_obj_close(&j);
	}
	pv_json_arr_close(&j);
	pv_json_str(&j, "notes", x->notes.data ? x->notes.data : "");
	for (int i = 0; i < x->nfacts; i++) {
		if (x->facts[i].s)
			pv_json_str(&j, x->facts[i].key, x->facts[i].s);
		else
			pv_json_int(&j, x->facts[i].key, x->facts[i].i);
	}
	if (strcmp(outcome, "ok") != 0)
		pv_json_str(&j, "error", x->error);
	pv_json_obj_close(&j);
	if (x->sspan_open &&
	    pv_journal_end(x->d->journal, &x->sspan, outcome, b.data, &err) != PV_OK)
		jerror(&err);
	x->sspan_open = false;
	pv_buf_free(&b);
	const char *note = strcmp(outcome, "ok") == 0 ? x->notes.data : x->error;
	step_entry(x, pv_rejoin_step_name(x->step), outcome, now - x->step_start_ms, note);
	if (strcmp(outcome, "ok") == 0)
		pv_info("rejoin %s: step %s ok (%lld ms)%s%s", x->node,
		        pv_rejoin_step_name(x->step), (long long)(now - x->step_start_ms),
		        x->notes.len ? ": " : "", x->notes.data ? x->notes.data : "");
	else
		pv_error("rejoin %s: step %s %s: %s", x->node, pv_rejoin_step_name(x->step),
		         outcome, x->error);
	step_clear(x);
}

static void step_skip(Rj *x, PvRejoinStep step, const char *why)
{
	PvBuf b = {0};
	PvJson j;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "step", pv_rejoin_step_name(step));
	pv_json_str(&j, "reason", why);
	pv_json_obj_close(&j);
	PvJournalRecord r = {
	    .event = EV(PV_EV_REJOIN_STEP),
	    .phase = PV_PHASE_EVENT,
	    .node = x->node,
	    .outcome = "skipped",
	    .duration_ms = -1,
	    .detail_json = b.data,
	};
	if (pv_journal_append(x->d->journal, &r, NULL, &err) != PV_OK)
		jerror(&err);
	pv_buf_free(&b);
	step_entry(x, pv_rejoin_step_name(step), "skipped", 0, why);
	pv_info("rejoin %s: step %s skipped: %s", x->node, pv_rejoin_step_name(step), why);
}

/* ---------------------------------------------------------------- the job */

static int view_index(PvDaemon *d, const char *name)
{
	for (int i = 0; i < d->view.nnodes; i++)
		if (strcmp(d->view.nodes[i].name, name) == 0)
			return i;
	return -1;
}

/* Frees a string that may hold a password, zeroed first. */
void pv_rj_wipe_free(char *s)
{
	if (s)
		memset(s, 0, strlen(s));
	free(s);
}

void pv_rj_job_clear(Rj *x)
{
	step_clear(x);
	if (x->have_req)
		pv_ctl_respond(&x->req,
		               "{\"ok\":false,\"error\":\"the rejoin ended without an answer\"}");
	pv_ssh_free(x->host.ssh);
	free(x->pgdata);
	free(x->pg_bin);
	free(x->node_ci);
	free(x->primary_ci);
	free(x->standby_ci);
	free(x->source);
	pv_rj_wipe_free(x->autoconf);
	pv_rj_wipe_free(x->tmpl);
	pv_rj_wipe_free(x->source_pw);
	memset(x->pwenv, 0, sizeof x->pwenv);
	pv_rj_wipe_free(x->pconninfo);
	pv_buf_free(&x->steps);
	pv_buf_free(&x->notes);
	PvDaemon *d = x->d;
	memset(x, 0, sizeof *x);
	x->d = d;
	x->fd_pg = -1;
}

static void finish(Rj *x, bool ok, int64_t now)
{
	PvDaemon *d = x->d;
	char failed_step[32] = "";
	if (!ok)
		snprintf(failed_step, sizeof failed_step, "%s", pv_rejoin_step_name(x->step));
	if (ok) {
		int i = view_index(d, x->node);
		if (i >= 0) {
			/* a former primary that streams from the primary may be a candidate again;
			 * the write path it had as the primary (a heartbeat failing since it died)
			 * is no more: kept, it would make the node look wedged the moment it is
			 * promoted */
			PvNodeView *nv = &d->view.nodes[i];
			nv->failed = false;
			nv->write = PV_WRITE_NONE;
			nv->write_error[0] = '\0';
			nv->write_blocked_by_lock = false;
			nv->write_timed_out = false;
			nv->write_failing_since_ms = 0;
			nv->locked_since_ms = 0;
			pv_prober_kick(d->prober, i, now);
		}
	}
	int64_t ms = now - x->start_ms;
	bool aside = x->moved && x->aside[0];
	PvBuf b = {0};
	PvJson j;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "primary", x->primary);
	pv_json_str(&j, "method", x->method[0] ? x->method : NULL);
	pv_json_str(&j, "moved_aside_to", aside ? x->aside : NULL);
	if (!ok) {
		pv_json_str(&j, "failed_step", failed_step);
		pv_json_str(&j, "error", x->error);
	}
	pv_json_obj_close(&j);
	if (pv_journal_end(d->journal, &x->span, ok ? "ok" : "failed", b.data, &err) != PV_OK)
		jerror(&err);
	pv_buf_reset(&b);

	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_bool(&j, "ok", ok);
	pv_json_str(&j, "node", x->node);
	pv_json_str(&j, "primary", x->primary);
	pv_json_str(&j, "method", x->method[0] ? x->method : NULL);
	pv_json_int(&j, "duration_ms", ms);
	pv_json_str(&j, "moved_aside_to", aside ? x->aside : NULL);
	if (!ok) {
		char msg[1200];
		snprintf(msg, sizeof msg, "step %s: %s", failed_step, x->error);
		pv_json_str(&j, "error", msg);
	}
	PvBuf arr = {0};
	pv_buf_printf(&arr, "[%s]", x->steps.data ? x->steps.data : "");
	pv_json_raw(&j, "steps", arr.data);
	pv_buf_free(&arr);
	pv_json_obj_close(&j);
	if (x->have_req) {
		pv_ctl_respond(&x->req, b.data);
		x->have_req = false;
	}
	pv_buf_free(&b);
	if (ok)
		pv_info("rejoin %s: streams from %s (%s, %lld ms)", x->node, x->primary, x->method,
		        (long long)ms);
	else
		pv_error("rejoin %s failed at %s: %s", x->node, failed_step, x->error);
	pv_rj_job_clear(x);
}

static PvRejoinStep default_next(PvRejoinStep s)
{
	switch (s) {
	case PV_REJOIN_REWIND:
	case PV_REJOIN_BASEBACKUP:
		return PV_REJOIN_CONFIGURE;
	default:
		return (PvRejoinStep)(s + 1);
	}
}

/* Enters step (journaling its begin); false when the rejoin is over (failed). */
static bool enter(Rj *x, PvRejoinStep step, int64_t now)
{
	step_clear(x);
	x->step = step;
	x->sub = 0;
	x->next = default_next(step);
	if (x->primary_changed) {
		pv_rj_fail(x,
		           "the primary changed during the rejoin (an incident opened or a node "
		           "was promoted): run pgvigil rejoin again once the cluster is settled");
		finish(x, false, now);
		return false;
	}
	char why[256];
	if (step == PV_REJOIN_REWIND && x->no_pgdata) {
		step_skip(x, step, "there is no data directory to rewind");
		return enter(x, PV_REJOIN_BASEBACKUP, now);
	}
	if (step == PV_REJOIN_REWIND && x->have_cd &&
	    !pv_rejoin_rewind_possible(&x->cd, why, sizeof why)) {
		step_skip(x, step, why);
		return enter(x, PV_REJOIN_BASEBACKUP, now);
	}
	if (step == PV_REJOIN_BASEBACKUP && !x->no_pgdata)
		pv_rejoin_aside_path(x->pgdata, pv_clock_wall_us(), x->aside, sizeof x->aside);
	if (!step_begin(x, now)) {
		finish(x, false, now);
		return false;
	}
	return true;
}

static void drive(Rj *x, int64_t now)
{
	while (x->active && !x->cmd_running && !x->pg_busy && !(x->wake_ms && now < x->wake_ms)) {
		x->wake_ms = 0;
		RjResult r = pv_rj_steps[x->step](x, now);
		if (r == RJ_WAIT) {
			if (!x->cmd_running && !x->pg_busy && !x->wake_ms)
				x->wake_ms = now + 100; /* never spin */
			return;
		}
		PvRejoinStep next = x->next;
		step_end(x, r == RJ_DONE ? "ok" : "failed", now);
		if (r == RJ_FAIL) {
			finish(x, false, now);
			return;
		}
		if (next >= PV_REJOIN_NSTEPS) {
			finish(x, true, now);
			return;
		}
		if (!enter(x, next, now))
			return;
	}
}

void pv_rj_begin(Rj *x, int64_t now)
{
	if (enter(x, PV_REJOIN_STOP, now))
		drive(x, now);
}

/* ---------------------------------------------------------------- the extension */

static void *ext_create(PvDaemon *d)
{
	Rj *x = pv_xcalloc(1, sizeof *x);
	x->d = d;
	x->fd_pg = -1;
	return x;
}

static void ext_destroy(void *self)
{
	Rj *x = self;
	if (x->active) {
		int64_t now = pv_clock_mono_ms();
		pv_hostcmd_free(x->cmd); /* a local command is killed; a remote one runs out */
		x->cmd = NULL;
		x->cmd_running = false;
		pv_rj_fail(x, "the daemon stopped");
		step_end(x, "failed", now);
		pv_rj_fail(x, "the daemon stopped");
		finish(x, false, now);
	}
	pv_rj_job_clear(x);
	free(x);
}

static int ext_pollfds(void *self, struct pollfd *fds, int max)
{
	Rj *x = self;
	int n = 0;
	x->fd_pg = -1;
	if (x->cmd && x->cmd_running)
		n += pv_hostcmd_pollfds(x->cmd, fds, max);
	short events = 0;
	int fd = x->pg && x->pg_busy && n < max ? pv_pgconn_pollfd(x->pg, &events) : -1;
	if (fd >= 0) {
		fds[n] = (struct pollfd){.fd = fd, .events = events};
		x->fd_pg = n++;
	}
	return n;
}

static int ext_timeout(void *self, int64_t now)
{
	Rj *x = self;
	int64_t t = -1;
	if (!x->active)
		return -1;
	if (x->cmd && x->cmd_running)
		t = pv_hostcmd_timeout(x->cmd, now);
	if (x->pg && x->pg_busy) {
		int64_t dl = pv_pgconn_deadline(x->pg) - now;
		if (dl < 0)
			dl = 0;
		if (t < 0 || dl < t)
			t = dl;
	}
	if (x->wake_ms) {
		int64_t w = x->wake_ms > now ? x->wake_ms - now : 0;
		if (t < 0 || w < t)
			t = w;
	}
	return t > 60000 ? 60000 : (int)t;
}

static void ext_step(void *self, PvDaemon *d, const struct pollfd *fds, int nfds, int64_t now)
{
	Rj *x = self;
	(void)d;
	if (!x->active)
		return;
	if (x->cmd && x->cmd_running && pv_hostcmd_step(x->cmd, now)) {
		char how[192];
		x->cmd_running = false;
		pv_hostcmd_describe(x->cmd, how, sizeof how);
		record_cmd(x, how, pv_hostcmd_duration_ms(x->cmd));
		now = pv_clock_mono_ms(); /* an ssh poll may have taken a while */
	}
	if (x->pg && x->pg_busy) {
		short rev = (x->fd_pg >= 0 && x->fd_pg < nfds) ? fds[x->fd_pg].revents : 0;
		PvPgcEvent ev = pv_pgconn_step(x->pg, rev, now);
		if (ev == PV_PGC_DONE) {
			x->pg_busy = false;
			x->res = pv_pgconn_take_result(x->pg);
		} else if (ev == PV_PGC_FAILED || ev == PV_PGC_LOST) {
			x->pg_busy = false;
			x->pg_failed = true;
			snprintf(x->pg_error, sizeof x->pg_error, "%s", pv_pgconn_error(x->pg));
		}
	}
	drive(x, now);
}

static void ext_on_event(void *self, PvDaemon *d, PvDaemonEvent ev, int node)
{
	Rj *x = self;
	(void)d;
	(void)node;
	if (x->active && (ev == PV_DEV_INCIDENT_OPEN || ev == PV_DEV_PROMOTED))
		x->primary_changed = true;
}

static bool ext_control(void *self, PvDaemon *d, const char *cmd, json_t *rq, PvCtlRequest *req)
{
	if (strcmp(cmd, "rejoin") != 0)
		return false;
	pv_rj_control(self, d, rq, req);
	return true;
}

const PvExtension pv_rejoin_extension = {
    .name = "rejoin",
    .create = ext_create,
    .destroy = ext_destroy,
    .pollfds = ext_pollfds,
    .timeout = ext_timeout,
    .step = ext_step,
    .on_event = ext_on_event,
    .control = ext_control,
};
