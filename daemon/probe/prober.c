#include "probe/prober.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/pgconn.h"
#include "probe/probe.h"

typedef struct {
	PvPgConn *conn;
	int64_t next_ms;
	int64_t started_ms;
	bool running;
} ProberNode;

struct PvProber {
	int n;
	int interval_ms;
	int timeout_ms;
	int retry_ms;
	ProberNode nodes[PV_MAX_NODES];
};

PvProber *pv_prober_new(const PvConfig *cfg, int64_t now_ms)
{
	PvProber *p = pv_xcalloc(1, sizeof *p);
	p->n = cfg->nnodes;
	p->interval_ms = cfg->probe_interval_ms;
	p->timeout_ms = cfg->probe_timeout_ms;
	p->retry_ms = cfg->probe_retry_interval_ms;
	for (int i = 0; i < p->n; i++) {
		/* the server gives up a little before our hard deadline, so a slow server says so */
		int server_timeout = cfg->probe_timeout_ms * 9 / 10;
		p->nodes[i].conn = pv_pgconn_new(cfg->nodes[i].conninfo, PV_PGC_KIND_POSTGRES,
		                                 server_timeout > 0 ? server_timeout : 1);
		p->nodes[i].next_ms = now_ms;
	}
	return p;
}

void pv_prober_free(PvProber *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++)
		pv_pgconn_free(p->nodes[i].conn);
	free(p);
}

int pv_prober_pollfds(PvProber *p, struct pollfd *fds, int *owner, int max)
{
	int k = 0;
	for (int i = 0; i < p->n && k < max; i++) {
		short events = 0;
		int fd = pv_pgconn_pollfd(p->nodes[i].conn, &events);
		if (fd < 0)
			continue;
		fds[k].fd = fd;
		fds[k].events = events;
		fds[k].revents = 0;
		owner[k++] = i;
	}
	return k;
}

int pv_prober_timeout(const PvProber *p, int64_t now_ms)
{
	int64_t next = now_ms + 60000;
	for (int i = 0; i < p->n; i++) {
		const ProberNode *pn = &p->nodes[i];
		int64_t t = pn->running ? pv_pgconn_deadline(pn->conn) : pn->next_ms;
		if (t < next)
			next = t;
	}
	return next > now_ms ? (int)(next - now_ms) : 0;
}

void pv_prober_kick(PvProber *p, int node, int64_t now_ms)
{
	for (int i = 0; i < p->n; i++)
		if ((node < 0 || node == i) && !p->nodes[i].running)
			p->nodes[i].next_ms = now_ms;
}

static void record(PvProber *p, int i, PvPgcEvent ev, int64_t now_ms, int confirm,
                   PvClusterView *view, PvProbeEvent *out)
{
	ProberNode *pn = &p->nodes[i];
	PvNodeView *nv = &view->nodes[i];
	PvNodeObs *o = &nv->obs;

	out->node = i;
	out->previous = o->result;
	out->lost = false;
	pn->running = false;
	o->latency_ms = now_ms - pn->started_ms;
	o->at_ms = now_ms;
	if (ev == PV_PGC_DONE) {
		PGresult *r = pv_pgconn_take_result(pn->conn);
		PvNodeObs fresh = *o;
		if (pv_probe_parse(r, &fresh)) {
			fresh.latency_ms = o->latency_ms;
			fresh.at_ms = now_ms;
			*o = fresh;
			nv->consecutive_failures = 0;
		} else {
			o->result = PV_PROBE_UNKNOWN;
			snprintf(o->reason, sizeof o->reason, "%s", fresh.reason);
		}
		PQclear(r);
	} else {
		/* keep the last known LSNs: they bound what a failover may lose */
		o->result = pv_probe_classify_failure(pv_pgconn_error(pn->conn),
		                                      pv_pgconn_sqlstate(pn->conn),
		                                      pv_pgconn_timed_out(pn->conn));
		snprintf(o->reason, sizeof o->reason, "%s", pv_pgconn_error(pn->conn));
		if (o->result == PV_PROBE_DOWN) {
			if (nv->consecutive_failures++ == 0)
				nv->down_since_ms = now_ms;
		}
	}
	out->result = o->result;
	bool confirming = o->result != PV_PROBE_UP && nv->consecutive_failures < confirm;
	pn->next_ms = now_ms + (confirming || o->result == PV_PROBE_UNKNOWN ? p->retry_ms
	                                                                    : p->interval_ms);
}

int pv_prober_step(PvProber *p, const struct pollfd *fds, const int *owner, int nfds,
                   int64_t now_ms, int confirm_failures, PvClusterView *view,
                   PvProbeEvent *events, int max)
{
	int nev = 0;
	short revents[PV_MAX_NODES] = {0};

	for (int k = 0; k < nfds; k++)
		revents[owner[k]] |= fds[k].revents;
	for (int i = 0; i < p->n; i++) {
		ProberNode *pn = &p->nodes[i];
		PvPgcEvent ev = pv_pgconn_step(pn->conn, revents[i], now_ms);
		if (ev == PV_PGC_LOST && !pn->running) {
			pn->next_ms = now_ms; /* the server hung up on us: look now */
			if (nev < max) {
				events[nev].node = i;
				events[nev].result = view->nodes[i].obs.result;
				events[nev].previous = view->nodes[i].obs.result;
				events[nev++].lost = true;
			}
			continue;
		}
		if (pn->running && (ev == PV_PGC_DONE || ev == PV_PGC_FAILED || ev == PV_PGC_LOST)) {
			PvProbeEvent tmp;
			record(p, i, ev == PV_PGC_LOST ? PV_PGC_FAILED : ev, now_ms, confirm_failures, view,
			       &tmp);
			if (nev < max)
				events[nev++] = tmp;
		}
	}
	for (int i = 0; i < p->n; i++) {
		ProberNode *pn = &p->nodes[i];
		if (pn->running || now_ms < pn->next_ms)
			continue;
		pn->running = true;
		pn->started_ms = now_ms;
		pv_pgconn_start(pn->conn, pv_probe_sql, now_ms + p->timeout_ms, now_ms);
		/* a connection that could not even start fails right here */
		PvPgcEvent ev = pv_pgconn_step(pn->conn, 0, now_ms);
		if (ev == PV_PGC_FAILED) {
			PvProbeEvent tmp;
			record(p, i, ev, now_ms, confirm_failures, view, &tmp);
			if (nev < max)
				events[nev++] = tmp;
		}
	}
	return nev;
}
