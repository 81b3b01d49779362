/*
 * act: the actions the daemon takes on the cluster.  Each one writes a journal `begin` record
 * (fsynced) before it touches anything and an `end` record with its outcome after; if the
 * begin record cannot be written the action does not run (pgvigil never acts unrecorded).
 *
 *   promote        pg_promote(true, N) on the winner, then pg_is_in_recovery() must be false
 *   endpoint       the PgBouncer include file rewritten atomically, RELOAD, SHOW DATABASES check
 *   repoint        a standby's primary_conninfo retargeted (ALTER SYSTEM + pg_reload_conf())
 */
#ifndef PV_ACT_ACT_H
#define PV_ACT_ACT_H

#include "common/buf.h"
#include "config/config.h"
#include "io/ssh.h"
#include "journal/journal.h"

typedef struct {
	const PvConfig *cfg;
	PvJournal *journal;
	const char *incident;
} PvActCtx;

typedef struct {
	bool fenced;          /* a fence held: */
	bool endpoint_fenced; /*   clients cut off at the endpoint */
	bool bouncer_killed;  /*   (PgBouncer databases KILLed: RESUME them afterwards) */
	bool stopped;         /*   the server is stopped (or was not running, or was SIGKILLed) */
	char stop_how[16];
	bool unreachable;     /* the finding: unreachable from pgvigil and every standby */
	bool stop_deferred;   /* "stop" is configured but waits until after the promotion */
} PvFenceResult;

/*
 * Fences the old primary with fencing.methods in order (act/fence.c).  PV_OK when a fence held
 * or `unreachable` (the caller's journaled finding) is true: promotion may go ahead.
 */
PvStatus pv_act_fence(const PvActCtx *ctx, int old_primary, bool unreachable, PvFenceResult *res,
                      PvError *err) PV_MUSTCHECK;
/* The "stop" fence on its own (after a promotion, for a stop that was deferred). */
bool pv_act_fence_stop(const PvActCtx *ctx, int old_primary);
/*
 * VERB (KILL, PAUSE, RESUME) for every configured PgBouncer database, in order, each under
 * timeout_ms; "not paused" answers to RESUME are fine.  done (may be NULL) lists the databases
 * it worked for.  Every database is tried; the first failure is returned.
 */
PvStatus pv_act_bouncer_command(const PvConfig *cfg, const char *verb, int timeout_ms, PvBuf *done,
                                PvError *err) PV_MUSTCHECK;
/* RESUME every configured PgBouncer database ("not paused" is fine). */
PvStatus pv_act_bouncer_resume(const PvActCtx *ctx, PvError *err) PV_MUSTCHECK;

PvStatus pv_act_promote(const PvActCtx *ctx, int node, PvError *err) PV_MUSTCHECK;
PvStatus pv_act_endpoint_switch(const PvActCtx *ctx, int primary, PvError *err) PV_MUSTCHECK;
PvStatus pv_act_repoint(const PvActCtx *ctx, int standby, int primary, PvError *err) PV_MUSTCHECK;

/* The include file's text for a primary at host:port (pure; unit-tested). */
void pv_endpoint_render(const PvPgbouncerConfig *pb, const char *primary_name, const char *host,
                        int port, const char *stamp, PvBuf *out);

/* A session (not yet connected) to the host an ssh group of the configuration names: a node's
 * (cluster.nodes.ssh) or PgBouncer's (pgbouncer.ssh).  pv_ssh_free() it. */
PvSsh *pv_act_ssh_new(const PvSshConfig *c);

#endif
