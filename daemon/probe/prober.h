/*
 * prober: runs the probes of every node concurrently inside the daemon's poll() loop.
 *
 * Each node has one persistent status connection (io/pgconn) and its own schedule: every
 * probe.interval_ms while it answers, every probe.retry_interval_ms after a failure until the
 * failure is confirmed.  A probe has a hard deadline of probe.timeout_ms, so a hung node never
 * delays the others.  A persistent connection closed by the server (EOF while idle) triggers
 * an immediate probe: a killed postmaster is noticed in milliseconds, not at the next tick.
 *
 * On the node that answers as the primary a second connection writes the heartbeat each
 * interval (statement_timeout = probe.write_timeout_ms): its duration is the commit latency,
 * its failure the WEDGED (or lock-blocked) signal, and the sequence numbers the standbys
 * replay tell how fresh their copy is.  While lock waits pass locks.wait_threshold_ms, the
 * status connection also reads the blocking chains (at most every two seconds).
 * Results land in the PvClusterView the caller owns; the prober never decides anything.
 */
#ifndef PV_PROBE_PROBER_H
#define PV_PROBE_PROBER_H

#include <poll.h>
#include <stdint.h>

#include "config/config.h"
#include "core/cluster.h"
#include "core/health.h"

typedef struct PvProber PvProber;

typedef enum {
	PV_PEV_STATUS, /* a status probe completed (result, previous) */
	PV_PEV_LOST,   /* the idle status connection was dropped by the other side */
	PV_PEV_WRITE,  /* a heartbeat write completed (view.write, commit_ms[0]) */
	PV_PEV_CHAIN,  /* a lock chain read completed (pv_prober_chain) */
	PV_PEV_POOLS,  /* PgBouncer's SHOW POOLS was read (pv_prober_pools); node is -1 */
} PvProbeEventKind;

#define PV_MAX_POOLS 64

/* One PgBouncer pool (SHOW POOLS). */
typedef struct {
	char database[64];
	char user[64];
	int cl_active;
	int cl_waiting;
	int sv_active;
	int sv_idle;
	int64_t maxwait_ms;
	char mode[16];
} PvPool;

typedef struct {
	PvProbeEventKind kind;
	int node;
	PvProbeResult result; /* STATUS: of the probe that just completed */
	PvProbeResult previous;
} PvProbeEvent;

PvProber *pv_prober_new(const PvConfig *cfg, int64_t now_ms);
void pv_prober_free(PvProber *p);

/* Fills up to max pollfds; owner[k] is the node of fds[k].  Returns the count. */
int pv_prober_pollfds(PvProber *p, struct pollfd *fds, int *owner, int max);
/* Milliseconds until the prober needs to run again (>= 0). */
int pv_prober_timeout(const PvProber *p, int64_t now_ms);
/*
 * Starts due probes, advances the others on their revents, applies results to view.
 * Completed work is reported in events (up to max); returns how many.
 */
int pv_prober_step(PvProber *p, const struct pollfd *fds, const int *owner, int nfds,
                   int64_t now_ms, int confirm_failures, PvClusterView *view,
                   PvProbeEvent *events, int max);
/* Probes node now (if it is not already being probed). -1: every node. */
void pv_prober_kick(PvProber *p, int node, int64_t now_ms);
/*
 * The lock chain of node need not be read again before not_before_ms (the daemon knows when
 * its ladder next acts); by default it is read every PV_PROBE_CHAIN_INTERVAL_MS while
 * sessions wait, and at once when the waiters double.
 */
void pv_prober_chain_defer(PvProber *p, int node, int64_t not_before_ms);
/* The last SHOW POOLS (PgBouncer configured): returns how many pools, -1 if the last read
 * failed (*error then says why). */
int pv_prober_pools(const PvProber *p, const PvPool **pools, const char **error);
/* The last lock chain read of node: its root blockers; returns how many. */
int pv_prober_chain(const PvProber *p, int node, const PvLockRoot **roots);

#endif
