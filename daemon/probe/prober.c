#include "probe/prober.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "io/pgconn.h"
#include "probe/probe.h"

#define PV_HB_RING 256
/* While a status probe is pending, how often its host's TCP acknowledgements are sampled. */
#define PV_PROBE_ACK_SAMPLE_MS 100
/* One status probe in this many reads every backend's status (saturation, lock waits). */
#define PV_PROBE_FULL_EVERY 4

typedef enum { PH_IDLE, PH_STATUS, PH_CHAIN } StatusPhase;

typedef struct {
	PvPgConn *conn;     /* status and chain */
	PvPgConn *hb;       /* heartbeat writes (primary only) */
	StatusPhase phase;
	bool hb_running;
	bool hb_with_ddl;
	int64_t hb_started_ms;
	int64_t hb_next_ms; /* half an interval after the status probes: an answer every half */
	int64_t hb_seq;
	int64_t next_ms;
	int64_t started_ms;
	int64_t last_chain_ms;
	int64_t chain_next_ms; /* the chain query runs again no sooner (0: as soon as needed) */
	int chain_waiters;     /* lock waiters when it last ran */
	unsigned nprobes;      /* status probes sent: every PV_PROBE_FULL_EVERY-th is a full one */
	bool expect_heartbeat_read;
	PvLockRoot roots[PV_PROBE_MAX_ROOTS];
	int nroots;
} ProberNode;

struct PvProber {
	int n;
	int interval_ms;
	int timeout_ms;
	int retry_ms;
	bool heartbeat;
	int write_timeout_ms;
	int lock_threshold_ms;
	ProberNode nodes[PV_MAX_NODES];
	/* PgBouncer's admin console, when configured: SHOW POOLS every interval */
	PvPgConn *bouncer;
	bool bouncer_running;
	int64_t bouncer_next_ms;
	PvPool pools[PV_MAX_POOLS];
	int npools; /* -1: the last read failed */
	char bouncer_error[256];
	/* the heartbeats written: seq and when it committed, for the standbys' freshness */
	int64_t hb_seq[PV_HB_RING];
	int64_t hb_at[PV_HB_RING];
	int hb_pos, hb_count;
};

PvProber *pv_prober_new(const PvConfig *cfg, int64_t now_ms)
{
	PvProber *p = pv_xcalloc(1, sizeof *p);
	p->n = cfg->nnodes;
	p->interval_ms = cfg->probe_interval_ms;
	p->timeout_ms = cfg->probe_timeout_ms;
	p->retry_ms = cfg->probe_retry_interval_ms;
	p->heartbeat = cfg->probe_heartbeat != 0;
	p->write_timeout_ms = cfg->probe_write_timeout_ms;
	p->lock_threshold_ms = cfg->locks_wait_threshold_ms;
	for (int i = 0; i < p->n; i++) {
		/* the server gives up a little before our hard deadline, so a slow server says so */
		int server_timeout = cfg->probe_timeout_ms * 9 / 10;
		p->nodes[i].conn = pv_pgconn_new(cfg->nodes[i].conninfo, PV_PGC_KIND_POSTGRES,
		                                 server_timeout > 0 ? server_timeout : 1);
		pv_pgconn_set_setup(p->nodes[i].conn, pv_probe_prepare_sql, pv_probe_prepare_statements);
		p->nodes[i].hb = pv_pgconn_new(cfg->nodes[i].conninfo, PV_PGC_KIND_POSTGRES,
		                               cfg->probe_write_timeout_ms);
		p->nodes[i].next_ms = now_ms;
	}
	if (cfg->pgbouncer.enabled) {
		p->bouncer = pv_pgconn_new(cfg->pgbouncer.admin_conninfo, PV_PGC_KIND_PGBOUNCER,
		                           cfg->pgbouncer.timeout_ms);
		p->bouncer_next_ms = now_ms;
	}
	return p;
}

int pv_prober_pools(const PvProber *p, const PvPool **pools, const char **error)
{
	*pools = p->pools;
	*error = p->bouncer_error;
	return p->npools;
}

static void parse_pools(PvProber *p, PGresult *r)
{
	int c_db = PQfnumber(r, "database"), c_user = PQfnumber(r, "user"),
	    c_cla = PQfnumber(r, "cl_active"), c_clw = PQfnumber(r, "cl_waiting"),
	    c_sva = PQfnumber(r, "sv_active"), c_svi = PQfnumber(r, "sv_idle"),
	    c_mw = PQfnumber(r, "maxwait"), c_mwu = PQfnumber(r, "maxwait_us"),
	    c_mode = PQfnumber(r, "pool_mode");
	p->npools = 0;
	if (c_db < 0 || c_clw < 0 || c_mw < 0) {
		p->npools = -1;
		snprintf(p->bouncer_error, sizeof p->bouncer_error, "SHOW POOLS lacks the expected columns");
		return;
	}
	for (int row = 0; row < PQntuples(r) && p->npools < PV_MAX_POOLS; row++) {
		PvPool *pl = &p->pools[p->npools++];
		memset(pl, 0, sizeof *pl);
		snprintf(pl->database, sizeof pl->database, "%s", PQgetvalue(r, row, c_db));
		if (c_user >= 0)
			snprintf(pl->user, sizeof pl->user, "%s", PQgetvalue(r, row, c_user));
		pl->cl_active = c_cla >= 0 ? atoi(PQgetvalue(r, row, c_cla)) : 0;
		pl->cl_waiting = atoi(PQgetvalue(r, row, c_clw));
		pl->sv_active = c_sva >= 0 ? atoi(PQgetvalue(r, row, c_sva)) : 0;
		pl->sv_idle = c_svi >= 0 ? atoi(PQgetvalue(r, row, c_svi)) : 0;
		pl->maxwait_ms = atoll(PQgetvalue(r, row, c_mw)) * 1000 +
		                 (c_mwu >= 0 ? atoll(PQgetvalue(r, row, c_mwu)) / 1000 : 0);
		if (c_mode >= 0)
			snprintf(pl->mode, sizeof pl->mode, "%s", PQgetvalue(r, row, c_mode));
	}
	p->bouncer_error[0] = '\0';
}

void pv_prober_free(PvProber *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++) {
		pv_pgconn_free(p->nodes[i].conn);
		pv_pgconn_free(p->nodes[i].hb);
	}
	pv_pgconn_free(p->bouncer);
	free(p);
}

int pv_prober_pollfds(PvProber *p, struct pollfd *fds, int *owner, int max)
{
	int k = 0;
	for (int i = 0; i < p->n; i++) {
		PvPgConn *conns[2] = {p->nodes[i].conn, p->nodes[i].hb};
		for (int c = 0; c < 2 && k < max; c++) {
			short events = 0;
			int fd = pv_pgconn_pollfd(conns[c], &events);
			if (fd < 0)
				continue;
			fds[k].fd = fd;
			fds[k].events = events;
			fds[k].revents = 0;
			owner[k++] = i * 2 + c;
		}
	}
	if (p->bouncer && k < max) {
		short events = 0;
		int fd = pv_pgconn_pollfd(p->bouncer, &events);
		if (fd >= 0) {
			fds[k].fd = fd;
			fds[k].events = events;
			fds[k].revents = 0;
			owner[k++] = PV_MAX_NODES * 2;
		}
	}
	return k;
}

int pv_prober_timeout(const PvProber *p, int64_t now_ms)
{
	int64_t next = now_ms + 60000;
	for (int i = 0; i < p->n; i++) {
		const ProberNode *pn = &p->nodes[i];
		int64_t t = pn->phase != PH_IDLE ? pv_pgconn_deadline(pn->conn) : pn->next_ms;
		/* a status probe still pending: sample its host's acknowledgements every 100 ms */
		if (pn->phase == PH_STATUS && now_ms + PV_PROBE_ACK_SAMPLE_MS < t)
			t = now_ms + PV_PROBE_ACK_SAMPLE_MS;
		if (t < next)
			next = t;
		if (pn->hb_running && pv_pgconn_deadline(pn->hb) < next)
			next = pv_pgconn_deadline(pn->hb);
		if (!pn->hb_running && pn->hb_next_ms && pn->hb_next_ms < next)
			next = pn->hb_next_ms;
	}
	if (p->bouncer) {
		int64_t t = p->bouncer_running ? pv_pgconn_deadline(p->bouncer) : p->bouncer_next_ms;
		if (t < next)
			next = t;
	}
	return next > now_ms ? (int)(next - now_ms) : 0;
}

void pv_prober_chain_defer(PvProber *p, int node, int64_t not_before_ms)
{
	if (node >= 0 && node < p->n && not_before_ms > p->nodes[node].chain_next_ms)
		p->nodes[node].chain_next_ms = not_before_ms;
}

void pv_prober_kick(PvProber *p, int node, int64_t now_ms)
{
	for (int i = 0; i < p->n; i++)
		if ((node < 0 || node == i) && p->nodes[i].phase == PH_IDLE)
			p->nodes[i].next_ms = now_ms;
}

int pv_prober_chain(const PvProber *p, int node, const PvLockRoot **roots)
{
	*roots = p->nodes[node].roots;
	return p->nodes[node].nroots;
}

/* Age of the heartbeat seq (as replayed by a standby), by our clock; -1 unknown. */
static int64_t heartbeat_age(const PvProber *p, int64_t seq, int64_t now_ms)
{
	if (seq < 0 || p->hb_count == 0)
		return -1;
	int64_t oldest_at = -1;
	for (int k = 0; k < p->hb_count; k++) {
		int idx = (p->hb_pos - 1 - k + PV_HB_RING) % PV_HB_RING;
		if (p->hb_seq[idx] == seq)
			return now_ms - p->hb_at[idx];
		oldest_at = p->hb_at[idx];
	}
	/* older than anything we remember (or written by another daemon): at least this old */
	int64_t newest_seq = p->hb_seq[(p->hb_pos - 1 + PV_HB_RING) % PV_HB_RING];
	if (seq > newest_seq)
		return 0;
	return now_ms - oldest_at;
}

static void finish_status(PvProber *p, int i, PvPgcEvent ev, int64_t now_ms,
                          PvClusterView *view, PvProbeEvent *out)
{
	ProberNode *pn = &p->nodes[i];
	PvNodeView *nv = &view->nodes[i];
	PvNodeObs *o = &nv->obs;

	out->kind = PV_PEV_STATUS;
	out->node = i;
	out->previous = o->result;
	o->latency_ms = now_ms - pn->started_ms;
	o->at_ms = now_ms;
	if (ev == PV_PGC_DONE) {
		PGresult *r = pv_pgconn_take_result_at(pn->conn, 0);
		PvNodeObs fresh = *o;
		if (pv_probe_parse(r, &fresh)) {
			fresh.latency_ms = o->latency_ms;
			fresh.at_ms = now_ms;
			fresh.heartbeat_seq = -1;
			if (pn->expect_heartbeat_read && pv_pgconn_nresults(pn->conn) > 1) {
				PGresult *h = pv_pgconn_take_result_at(pn->conn, 1);
				fresh.heartbeat_seq = pv_probe_parse_heartbeat(h);
				PQclear(h);
			}
			/* a synchronous standby that just dropped out still holds the last commits
			 * acknowledged: remember it while synchronous replication stays configured */
			if (fresh.sync_configured && !fresh.sync_standbys[0] && o->sync_configured)
				snprintf(fresh.sync_standbys, sizeof fresh.sync_standbys, "%s", o->sync_standbys);
			/* a probe that began before we promoted the node saw it still in recovery */
			if (fresh.in_recovery && nv->promoted_at_ms && pn->started_ms < nv->promoted_at_ms)
				fresh.in_recovery = false;
			*o = fresh;
			nv->consecutive_failures = 0;
			nv->alive_ms = now_ms;
			nv->acked_since_ms = 0;
			nv->heartbeat_age_ms = o->in_recovery ? heartbeat_age(p, o->heartbeat_seq, now_ms) : 0;
		} else {
			o->result = PV_PROBE_UNKNOWN;
			snprintf(o->reason, sizeof o->reason, "%s", fresh.reason);
		}
		PQclear(r);
	} else {
		/* keep the last known LSNs: they bound what a failover may lose */
		const char *msg = pv_pgconn_error(pn->conn), *state = pv_pgconn_sqlstate(pn->conn);
		if (*state)
			nv->alive_ms = now_ms; /* the server answered, if only with an error */
		o->result = pv_probe_classify_failure(msg, state, pv_pgconn_timed_out(pn->conn));
		o->refused_saturated = pv_probe_is_saturation(msg, state);
		snprintf(o->reason, sizeof o->reason, "%s", msg);
		/* a node we cannot read from tells nothing about its write path: the wedge clock
		 * starts again only from a failed write while reads succeed */
		nv->write = PV_WRITE_NONE;
		nv->write_failing_since_ms = 0;
		nv->write_timed_out = false;
		nv->write_blocked_by_lock = false;
		if (o->result == PV_PROBE_DOWN) {
			if (nv->consecutive_failures++ == 0)
				nv->down_since_ms = now_ms;
		}
	}
	out->result = o->result;
}

static void schedule_next(PvProber *p, int i, const PvClusterView *view, int confirm, int64_t now_ms)
{
	const PvNodeView *nv = &view->nodes[i];
	bool confirming = nv->obs.result != PV_PROBE_UP && nv->consecutive_failures < confirm;
	p->nodes[i].next_ms =
		now_ms + (confirming || nv->obs.result == PV_PROBE_UNKNOWN ? p->retry_ms : p->interval_ms);
	p->nodes[i].phase = PH_IDLE;
}

static void finish_write(PvProber *p, int i, PvPgcEvent ev, int64_t now_ms, PvClusterView *view)
{
	ProberNode *pn = &p->nodes[i];
	PvNodeView *nv = &view->nodes[i];
	pn->hb_running = false;
	if (ev == PV_PGC_DONE || *pv_pgconn_sqlstate(pn->hb))
		nv->alive_ms = now_ms;
	if (ev == PV_PGC_DONE) {
		int64_t ms = now_ms - pn->hb_started_ms;
		memmove(nv->commit_ms + 1, nv->commit_ms, sizeof nv->commit_ms[0] * (PV_COMMIT_SAMPLES - 1));
		nv->commit_ms[0] = ms;
		if (nv->ncommit < PV_COMMIT_SAMPLES)
			nv->ncommit++;
		nv->write = PV_WRITE_OK;
		nv->write_error[0] = '\0';
		nv->write_blocked_by_lock = false;
		nv->write_timed_out = false;
		nv->write_failing_since_ms = 0;
		p->hb_seq[p->hb_pos] = pn->hb_seq;
		p->hb_at[p->hb_pos] = now_ms;
		p->hb_pos = (p->hb_pos + 1) % PV_HB_RING;
		if (p->hb_count < PV_HB_RING)
			p->hb_count++;
		PGresult *r;
		while ((r = pv_pgconn_take_result(pn->hb)) != NULL)
			PQclear(r);
	} else if (nv->obs.result != PV_PROBE_UP) {
		/* the status probe failed too: an unreachable node, not a wedged one */
		nv->write = PV_WRITE_NONE;
		nv->write_failing_since_ms = 0;
	} else {
		const char *state = pv_pgconn_sqlstate(pn->hb);
		if (nv->write != PV_WRITE_FAILED || !nv->write_failing_since_ms)
			nv->write_failing_since_ms = pn->hb_started_ms ? pn->hb_started_ms : now_ms;
		nv->write = PV_WRITE_FAILED;
		if (pv_pgconn_timed_out(pn->hb))
			nv->write_timed_out = true;
		/* a heartbeat stuck in its commit keeps its row locked: the next ones then fail on
		 * that lock, but the cause is still the stuck commit, not a client's lock */
		nv->write_blocked_by_lock = strcmp(state, "55P03") == 0 && !nv->write_timed_out;
		if (pv_pgconn_timed_out(pn->hb))
			snprintf(nv->write_error, sizeof nv->write_error, "no commit within %d ms",
			         p->write_timeout_ms);
		else
			snprintf(nv->write_error, sizeof nv->write_error, "%s", pv_pgconn_error(pn->hb));
		if (strcmp(state, "25006") == 0) {
			/* read-only: not a primary after all; the status probe will say so */
			nv->write = PV_WRITE_NONE;
			nv->write_failing_since_ms = 0;
		}
	}
}

static void start_heartbeat(PvProber *p, int i, const PvNodeView *nv, int64_t now_ms)
{
	ProberNode *pn = &p->nodes[i];
	char sql[512];
	PvBuf b = {0};
	pn->hb_seq = pv_clock_wall_us() / 1000;
	pv_probe_heartbeat_sql(pn->hb_seq, sql, sizeof sql);
	if (!nv->obs.has_heartbeat_table)
		pv_buf_printf(&b, "%s; %s", pv_probe_heartbeat_ddl, sql);
	else
		pv_buf_puts(&b, sql);
	pn->hb_running = true;
	pn->hb_started_ms = now_ms;
	/* the server's statement_timeout is write_timeout; the hard stop comes a little later */
	pv_pgconn_start(pn->hb, b.data, now_ms + p->write_timeout_ms + 500, now_ms);
	pv_buf_free(&b);
}

int pv_prober_step(PvProber *p, const struct pollfd *fds, const int *owner, int nfds,
                   int64_t now_ms, int confirm_failures, PvClusterView *view,
                   PvProbeEvent *events, int max)
{
	int nev = 0;
	short revents[PV_MAX_NODES * 2 + 1] = {0};

	for (int k = 0; k < nfds; k++)
		revents[owner[k]] |= fds[k].revents;
	for (int i = 0; i < p->n; i++) {
		ProberNode *pn = &p->nodes[i];

		/* heartbeat connection */
		PvPgcEvent hev = pv_pgconn_step(pn->hb, revents[i * 2 + 1], now_ms);
		if (pn->hb_running && (hev == PV_PGC_DONE || hev == PV_PGC_FAILED || hev == PV_PGC_LOST)) {
			finish_write(p, i, hev == PV_PGC_LOST ? PV_PGC_FAILED : hev, now_ms, view);
			if (nev < max)
				events[nev++] = (PvProbeEvent){.kind = PV_PEV_WRITE, .node = i};
		}

		/* status connection: did the host take our request in?  (asked before the step,
		 * which may close the connection at its deadline) */
		if (pn->phase == PH_STATUS && pv_pgconn_busy(pn->conn)) {
			PvNodeView *nv = &view->nodes[i];
			if (!pv_pgconn_host_acked(pn->conn))
				nv->acked_since_ms = 0;
			else if (!nv->acked_since_ms)
				nv->acked_since_ms = now_ms;
		}
		PvPgcEvent ev = pv_pgconn_step(pn->conn, revents[i * 2], now_ms);
		if (ev == PV_PGC_LOST && pn->phase == PH_IDLE) {
			pn->next_ms = now_ms; /* the server hung up on us: look now */
			if (nev < max)
				events[nev++] = (PvProbeEvent){.kind = PV_PEV_LOST, .node = i,
				                               .result = view->nodes[i].obs.result,
				                               .previous = view->nodes[i].obs.result};
			continue;
		}
		if (pn->phase == PH_IDLE || !(ev == PV_PGC_DONE || ev == PV_PGC_FAILED || ev == PV_PGC_LOST))
			continue;
		if (ev == PV_PGC_LOST)
			ev = PV_PGC_FAILED;
		if (pn->phase == PH_STATUS) {
			PvProbeEvent tmp;
			finish_status(p, i, ev, now_ms, view, &tmp);
			if (nev < max)
				events[nev++] = tmp;
			const PvNodeObs *o = &view->nodes[i].obs;
			/* the chain again once its time came (pv_prober_chain_defer), or sooner when
			 * the waiters doubled: a new chain may have formed */
			bool due = now_ms >= pn->chain_next_ms ||
			           o->lock_waiters >= 2 * pn->chain_waiters + 5;
			if (o->result == PV_PROBE_UP && o->lock_waiters > 0 &&
			    o->oldest_lock_wait_ms >= p->lock_threshold_ms && due &&
			    now_ms - pn->last_chain_ms >= PV_PROBE_CHAIN_INTERVAL_MS) {
				pn->phase = PH_CHAIN;
				pn->last_chain_ms = now_ms;
				pn->chain_next_ms = now_ms + PV_PROBE_CHAIN_INTERVAL_MS;
				pn->chain_waiters = o->lock_waiters;
				int budget = p->timeout_ms > 2000 ? p->timeout_ms : 2000;
				pv_pgconn_start(pn->conn, pv_probe_chain_sql, now_ms + budget, now_ms);
			} else {
				if (o->result == PV_PROBE_UP && o->lock_waiters == 0) {
					pn->nroots = 0;
					pn->chain_next_ms = 0;
					pn->chain_waiters = 0;
				}
				schedule_next(p, i, view, confirm_failures, now_ms);
			}
		} else if (pn->phase == PH_CHAIN) {
			if (ev == PV_PGC_DONE) {
				PGresult *r = pv_pgconn_take_result(pn->conn);
				pn->nroots = pv_probe_parse_chain(r, pn->roots, PV_PROBE_MAX_ROOTS);
				PQclear(r);
				if (nev < max)
					events[nev++] = (PvProbeEvent){.kind = PV_PEV_CHAIN, .node = i};
			}
			schedule_next(p, i, view, confirm_failures, now_ms);
		}
	}
	if (p->bouncer) {
		PvPgcEvent bev = pv_pgconn_step(p->bouncer, revents[PV_MAX_NODES * 2], now_ms);
		if (p->bouncer_running && (bev == PV_PGC_DONE || bev == PV_PGC_FAILED || bev == PV_PGC_LOST)) {
			p->bouncer_running = false;
			if (bev == PV_PGC_DONE) {
				PGresult *r = pv_pgconn_take_result(p->bouncer);
				parse_pools(p, r);
				PQclear(r);
			} else {
				p->npools = -1;
				snprintf(p->bouncer_error, sizeof p->bouncer_error, "%s", pv_pgconn_error(p->bouncer));
			}
			p->bouncer_next_ms = now_ms + p->interval_ms;
			if (nev < max)
				events[nev++] = (PvProbeEvent){.kind = PV_PEV_POOLS, .node = -1};
		}
		if (!p->bouncer_running && now_ms >= p->bouncer_next_ms) {
			p->bouncer_running = true;
			pv_pgconn_start(p->bouncer, "SHOW POOLS", now_ms + p->timeout_ms, now_ms);
		}
	}
	for (int i = 0; i < p->n; i++) {
		ProberNode *pn = &p->nodes[i];
		const PvNodeView *nv = &view->nodes[i];
		/* the heartbeat, on the node last seen as a primary, half an interval after its
		 * status probes: one of the two answers every half interval */
		bool writable = nv->obs.result == PV_PROBE_UP && !nv->obs.in_recovery;
		if (!p->heartbeat || !writable) {
			pn->hb_next_ms = 0;
		} else if (!pn->hb_running && pn->hb_next_ms && now_ms >= pn->hb_next_ms) {
			start_heartbeat(p, i, nv, now_ms);
			pn->hb_next_ms = now_ms + p->interval_ms;
		}
		if (pn->phase != PH_IDLE || now_ms < pn->next_ms)
			continue;
		if (p->heartbeat && writable && !pn->hb_next_ms)
			pn->hb_next_ms = now_ms + p->interval_ms / 2;
		pn->phase = PH_STATUS;
		pn->started_ms = now_ms;
		pn->expect_heartbeat_read = nv->obs.in_recovery && nv->obs.has_heartbeat_table;
		/* the activity counts every PV_PROBE_FULL_EVERY probes (5 to 7 ms of a backend's
		 * time at 1,000 connections, against 0.3 ms for the rest); always while confirming
		 * a failure, so a node that comes back is seen whole */
		bool full = pn->nprobes++ % PV_PROBE_FULL_EVERY == 0 || nv->obs.result != PV_PROBE_UP;
		pv_pgconn_start(pn->conn, pv_probe_execute_sql(full, pn->expect_heartbeat_read),
		                now_ms + p->timeout_ms, now_ms);
		/* a connection that could not even start fails right here */
		PvPgcEvent ev = pv_pgconn_step(pn->conn, 0, now_ms);
		if (ev == PV_PGC_FAILED) {
			PvProbeEvent tmp;
			finish_status(p, i, ev, now_ms, view, &tmp);
			schedule_next(p, i, view, confirm_failures, now_ms);
			if (nev < max)
				events[nev++] = tmp;
		}
	}
	return nev;
}
