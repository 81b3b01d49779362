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
#include "journal/journal.h"

typedef struct {
	const PvConfig *cfg;
	PvJournal *journal;
	const char *incident;
} PvActCtx;

PvStatus pv_act_promote(const PvActCtx *ctx, int node, PvError *err) PV_MUSTCHECK;
PvStatus pv_act_endpoint_switch(const PvActCtx *ctx, int primary, PvError *err) PV_MUSTCHECK;
PvStatus pv_act_repoint(const PvActCtx *ctx, int standby, int primary, PvError *err) PV_MUSTCHECK;

/* The include file's text for a primary at host:port (pure; unit-tested). */
void pv_endpoint_render(const PvPgbouncerConfig *pb, const char *primary_name, const char *host,
                        int port, const char *stamp, PvBuf *out);

#endif
