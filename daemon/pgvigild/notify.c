#include "pgvigild/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "io/sdnotify.h"
#include "pgvigild/daemon.h"

typedef struct {
	int64_t interval_ms; /* between pings; 0: no watchdog */
	int64_t next_ms;     /* next ping due */
	bool failing;        /* the last send failed (logged once) */
	char status[256];    /* last STATUS= sent */
} Notify;

void pv_notify_status(const PvDaemon *d, char *out, size_t size)
{
	const char *p = d->view.primary >= 0 ? d->view.nodes[d->view.primary].name : "unknown";
	if (d->incident[0])
		snprintf(out, size, "watching %s: primary %s, incident %s open",
		         d->cfg->cluster_name, p, d->incident);
	else
		snprintf(out, size, "watching %s: primary %s", d->cfg->cluster_name, p);
}

static void send_state(Notify *n, const char *state)
{
	PvError err;
	if (pv_sd_notify(NULL, state, &err) != PV_OK) {
		if (!n->failing)
			pv_warn("systemd notification: %s", err.msg);
		n->failing = true;
		return;
	}
	n->failing = false;
}

static void *notify_create(PvDaemon *d)
{
	if (!pv_sd_enabled())
		return NULL;
	Notify *n = pv_xcalloc(1, sizeof *n);
	int64_t wd = pv_sd_watchdog_ms();
	n->interval_ms = wd / 2 > 0 ? wd / 2 : (wd ? 1 : 0);
	if (wd) {
		/* the longest a failover's steps can hold the loop before the next ping */
		const PvConfig *c = d->cfg;
		int64_t worst =
		    (int64_t)c->failover_promote_timeout_ms + c->probe_timeout_ms +
		    (c->pgbouncer.enabled ? 3 * (int64_t)c->pgbouncer.timeout_ms : 0) +
		    (int64_t)(c->nnodes - 2 > 0 ? c->nnodes - 2 : 0) * 2 * c->probe_timeout_ms;
		if (wd <= worst)
			pv_warn("systemd: WatchdogSec=%lld ms is shorter than a failover may hold "
			        "the loop "
			        "(about %lld ms): raise WatchdogSec, or a failover may be killed "
			        "midway",
			        (long long)wd, (long long)worst);
		pv_info("systemd watchdog: a ping every %lld ms", (long long)n->interval_ms);
	}
	return n;
}

static void notify_destroy(void *self)
{
	free(self);
}

static int notify_timeout(void *self, int64_t now_ms)
{
	Notify *n = self;
	if (!n->interval_ms)
		return -1;
	if (!n->next_ms || n->next_ms <= now_ms)
		return 0;
	int64_t t = n->next_ms - now_ms;
	return t > 60000 ? 60000 : (int)t;
}

static void notify_step(void *self, PvDaemon *d, const struct pollfd *fds, int nfds, int64_t now_ms)
{
	Notify *n = self;
	(void)fds;
	(void)nfds;
	char status[256];
	pv_notify_status(d, status, sizeof status);
	bool changed = strcmp(status, n->status) != 0;
	bool ping = n->interval_ms && (!n->next_ms || now_ms >= n->next_ms);
	if (!changed && !ping)
		return;
	PvBuf b = {0};
	if (ping) {
		pv_buf_puts(&b, "WATCHDOG=1\n");
		n->next_ms = now_ms + n->interval_ms;
	}
	if (changed) {
		pv_buf_printf(&b, "STATUS=%s\n", status);
		memcpy(n->status, status, sizeof status);
	}
	send_state(n, b.data);
	pv_buf_free(&b);
}

const PvExtension pv_notify_extension = {
    .name = "systemd-notify",
    .create = notify_create,
    .destroy = notify_destroy,
    .timeout = notify_timeout,
    .step = notify_step,
};
