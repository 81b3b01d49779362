#include "pgvigild/hooks.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "io/proc.h"
#include "journal/events.h"
#include "pgvigild/daemon.h"

typedef struct {
	char event[32];
	char incident[64];
	char node[64];
	char old_primary[64];
	char new_primary[64];
	int64_t seq;
} HookEvent;

typedef struct {
	const char *name; /* "on_failover", "on_incident" */
	PvProc *proc;     /* the run in progress, or NULL */
	PvJournalSpan span;
	HookEvent queue[PV_HOOK_QUEUE];
	int qhead, qlen;
} HookClass;

enum { HOOK_FAILOVER, HOOK_INCIDENT, HOOK_LOCK, HOOK_NCLASSES };

typedef struct {
	PvJournal *journal; /* for the end records of runs cut short at stop */
	HookClass cls[HOOK_NCLASSES];
	char old_primary[64]; /* the primary when the open incident began */
	char new_primary[64]; /* promoted in the open incident */
	int nfds[HOOK_NCLASSES];
} Hooks;

static const char *program_of(const PvDaemon *d, int k)
{
	const char *p = k == HOOK_FAILOVER   ? d->cfg->hooks_on_failover
	                : k == HOOK_INCIDENT ? d->cfg->hooks_on_incident
	                                     : d->cfg->hooks_on_lock;
	return p ? p : "";
}

static void enqueue(Hooks *h, PvDaemon *d, int k, const char *event, const char *node)
{
	HookClass *c = &h->cls[k];
	if (!*program_of(d, k))
		return;
	if (c->qlen == PV_HOOK_QUEUE) {
		pv_error("hooks.%s: %d runs already waiting, %s event dropped", c->name,
		         PV_HOOK_QUEUE, event);
		return;
	}
	HookEvent *e = &c->queue[(c->qhead + c->qlen++) % PV_HOOK_QUEUE];
	memset(e, 0, sizeof *e);
	pv_strlcpy(e->event, event, sizeof e->event);
	pv_strlcpy(e->incident, d->incident, sizeof e->incident);
	pv_strlcpy(e->node, node ? node : "", sizeof e->node);
	pv_strlcpy(e->old_primary, h->old_primary, sizeof e->old_primary);
	pv_strlcpy(e->new_primary, h->new_primary, sizeof e->new_primary);
	/* the record the event follows: an incident id ends in the seq of its incident-open */
	const char *dash = strrchr(d->incident, '-');
	e->seq = strcmp(event, "incident-open") == 0 && dash ? strtoll(dash + 1, NULL, 10)
	                                                     : pv_journal_last_seq(d->journal);
}

static void json_output(PvJson *j, const char *key, const PvBuf *out)
{
	char *s = pv_xasprintf("%.*s",
	                       (int)(out->len < PV_HOOK_OUTPUT_MAX ? out->len : PV_HOOK_OUTPUT_MAX),
	                       out->data ? out->data : "");
	pv_json_str(j, key, s);
	free(s);
}

static void journal_end(PvJournal *journal, HookClass *c, const char *outcome, const PvProc *p,
                        const char *error)
{
	PvBuf b = {0};
	PvJson j;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "hook", c->name);
	if (p && pv_proc_done(p) && pv_proc_exit_status(p) >= 0)
		pv_json_int(&j, "exit_status", pv_proc_exit_status(p));
	else
		pv_json_null(&j, "exit_status");
	if (p && pv_proc_signal(p))
		pv_json_int(&j, "signal", pv_proc_signal(p));
	else
		pv_json_null(&j, "signal");
	if (p) {
		json_output(&j, "stdout", pv_proc_stdout(p));
		json_output(&j, "stderr", pv_proc_stderr(p));
		pv_json_int(&j, "stdout_bytes", (int64_t)pv_proc_stdout(p)->len);
		pv_json_int(&j, "stderr_bytes", (int64_t)pv_proc_stderr(p)->len);
	}
	pv_json_str(&j, "error", error);
	pv_json_obj_close(&j);
	if (pv_journal_end(journal, &c->span, outcome, b.data, &err) != PV_OK)
		pv_error("journal: %s", err.msg);
	pv_buf_free(&b);
}

static void start_next(Hooks *h, PvDaemon *d, int k, int64_t now)
{
	HookClass *c = &h->cls[k];
	if (c->proc || !c->qlen)
		return;
	HookEvent e = c->queue[c->qhead];
	c->qhead = (c->qhead + 1) % PV_HOOK_QUEUE;
	c->qlen--;
	const char *program = program_of(d, k);
	if (!*program)
		return; /* removed by a reload since */

	PvBuf b = {0};
	PvJson j;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "hook", c->name);
	pv_json_str(&j, "event", e.event);
	pv_json_str(&j, "program", program);
	pv_json_int(&j, "timeout_ms", d->cfg->hooks_timeout_ms);
	pv_json_int(&j, "event_seq", e.seq);
	pv_json_obj_close(&j);
	PvStatus st = pv_journal_begin(d->journal, &c->span, e.incident,
	                               pv_journal_event_name(PV_EV_HOOK), e.node, b.data, &err);
	pv_buf_free(&b);
	if (st != PV_OK) {
		pv_error("journal: %s (hooks.%s not run for %s)", err.msg, c->name, e.event);
		return;
	}

	char *env[11];
	int n = 0;
	env[n++] = pv_xasprintf("PGVIGIL_HOOK=%s", c->name);
	env[n++] = pv_xasprintf("PGVIGIL_EVENT=%s", e.event);
	env[n++] = pv_xasprintf("PGVIGIL_INCIDENT=%s", e.incident);
	env[n++] = pv_xasprintf("PGVIGIL_NODE=%s", e.node);
	env[n++] = pv_xasprintf("PGVIGIL_OLD_PRIMARY=%s", e.old_primary);
	env[n++] = pv_xasprintf("PGVIGIL_NEW_PRIMARY=%s", e.new_primary);
	env[n++] = pv_xasprintf("PGVIGIL_CLUSTER=%s", d->cfg->cluster_name);
	env[n++] = pv_xasprintf("PGVIGIL_JOURNAL=%s", d->cfg->journal_path);
	env[n++] = pv_xasprintf("PGVIGIL_CONFIG=%s", d->cfg->path);
	env[n++] = pv_xasprintf("PGVIGIL_SEQ=%" PRId64, e.seq);
	env[n] = NULL;
	const char *argv[] = {program, NULL};
	PvProcSpec spec = {
	    .argv = argv,
	    .env = (const char *const *)env,
	    .timeout_ms = d->cfg->hooks_timeout_ms,
	};
	if (program[0] != '/')
		st = pv_error_set(&err, PV_ERR_CONFIG, "%s is not an absolute path", program);
	else
		st = pv_proc_start(&spec, now, &c->proc, &err);
	for (int i = 0; i < n; i++)
		free(env[i]);
	if (st != PV_OK) {
		c->proc = NULL;
		pv_error("hooks.%s: %s", c->name, err.msg);
		journal_end(d->journal, c, "failed", NULL, err.msg);
		return;
	}
	pv_info("hooks.%s: %s started for %s (pid %ld)", c->name, program, e.event,
	        (long)pv_proc_pid(c->proc));
}

static void finish(Hooks *h, int k)
{
	HookClass *c = &h->cls[k];
	char how[128];
	const char *outcome = pv_proc_timed_out(c->proc)          ? "timeout"
	                      : pv_proc_exit_status(c->proc) == 0 ? "ok"
	                                                          : "failed";
	pv_proc_describe(c->proc, how, sizeof how);
	if (strcmp(outcome, "ok") == 0)
		pv_info("hooks.%s: %s after %" PRId64 " ms", c->name, how,
		        pv_proc_duration_ms(c->proc));
	else
		pv_warn("hooks.%s: %s (%s) after %" PRId64 " ms", c->name, outcome, how,
		        pv_proc_duration_ms(c->proc));
	journal_end(h->journal, c, outcome, c->proc, NULL);
	pv_proc_free(c->proc);
	c->proc = NULL;
}

/* ---------------------------------------------------------------- extension */

static void *hooks_create(PvDaemon *d)
{
	Hooks *h = pv_xcalloc(1, sizeof *h);
	h->journal = d->journal;
	h->cls[HOOK_FAILOVER].name = "on_failover";
	h->cls[HOOK_INCIDENT].name = "on_incident";
	h->cls[HOOK_LOCK].name = "on_lock";
	return h;
}

static void hooks_destroy(void *self)
{
	Hooks *h = self;
	for (int k = 0; k < HOOK_NCLASSES; k++) {
		HookClass *c = &h->cls[k];
		if (c->proc) {
			pv_warn("hooks.%s: still running at stop, killed", c->name);
			pv_proc_free(c->proc); /* SIGKILL and reap */
			c->proc = NULL;
			journal_end(h->journal, c, "failed", NULL, "pgvigild stopped: killed");
		}
		if (c->qlen)
			pv_warn("hooks.%s: %d waiting runs dropped at stop", c->name, c->qlen);
	}
	free(h);
}

static int hooks_pollfds(void *self, struct pollfd *fds, int max)
{
	Hooks *h = self;
	int n = 0;
	for (int k = 0; k < HOOK_NCLASSES; k++) {
		h->nfds[k] = h->cls[k].proc ? pv_proc_pollfds(h->cls[k].proc, fds + n, max - n) : 0;
		n += h->nfds[k];
	}
	return n;
}

static int hooks_timeout(void *self, int64_t now_ms)
{
	Hooks *h = self;
	int t = -1;
	for (int k = 0; k < HOOK_NCLASSES; k++) {
		const HookClass *c = &h->cls[k];
		int tk = c->proc ? pv_proc_timeout(c->proc, now_ms) : c->qlen ? 0 : -1;
		if (tk >= 0 && (t < 0 || tk < t))
			t = tk;
	}
	return t;
}

static void hooks_step(void *self, PvDaemon *d, const struct pollfd *fds, int nfds, int64_t now_ms)
{
	Hooks *h = self;
	(void)fds;
	(void)nfds;
	for (int k = 0; k < HOOK_NCLASSES; k++) {
		HookClass *c = &h->cls[k];
		if (c->proc && pv_proc_step(c->proc, now_ms))
			finish(h, k);
		start_next(h, d, k, now_ms);
	}
}

static const char *node_name(const PvDaemon *d, int node)
{
	return node >= 0 && node < d->view.nnodes ? d->view.nodes[node].name : NULL;
}

static void hooks_on_event(void *self, PvDaemon *d, PvDaemonEvent ev, int node)
{
	Hooks *h = self;
	const char *name = node_name(d, node);
	switch (ev) {
	case PV_DEV_INCIDENT_OPEN:
		pv_strlcpy(h->old_primary, name ? name : "", sizeof h->old_primary);
		h->new_primary[0] = '\0';
		enqueue(h, d, HOOK_INCIDENT, "incident-open", name);
		break;
	case PV_DEV_PROMOTED:
		pv_strlcpy(h->new_primary, name ? name : "", sizeof h->new_primary);
		enqueue(h, d, HOOK_FAILOVER, "promoted", name);
		break;
	case PV_DEV_LOCK_CHAIN:
		enqueue(h, d, HOOK_LOCK, "lock-chain", name);
		break;
	case PV_DEV_INCIDENT_CLOSE:
		enqueue(h, d, HOOK_INCIDENT, "incident-close", name);
		h->old_primary[0] = '\0';
		h->new_primary[0] = '\0';
		break;
	default:
		break;
	}
	/* started by the next step, after the loop turn: a failover's steps never wait for a
	 * hook's begin record or its fork */
}

const PvExtension pv_hooks_extension = {
    .name = "hooks",
    .create = hooks_create,
    .destroy = hooks_destroy,
    .pollfds = hooks_pollfds,
    .timeout = hooks_timeout,
    .step = hooks_step,
    .on_event = hooks_on_event,
};
