/*
 * probe: what pgvigil asks each node, and how the answers (or the failure to get one) become
 * observations for core/.
 *
 * Every interval, one prepared statement valid on a primary and on a standby (status, LSNs,
 * WAL receiver; on every fourth probe (2 s) also the saturation and lock-wait counts, a pass over
 * every backend's status: the "stage 1" that never touches the lock manager), followed on a
 * standby by a read of its copy of the heartbeat row.  On the primary,
 * a heartbeat upsert (its duration is the commit latency).  While sessions wait on locks past
 * the threshold, the chain query ("stage 2": root blockers, how many wait behind each) at most
 * every PV_PROBE_CHAIN_INTERVAL_MS.
 *
 * Failures are sorted into DOWN (the server is not there: refused, reset, closed, timed out,
 * shutting down) and UNKNOWN (it is there but would not answer us: too many clients,
 * authentication, a missing database, a query error).  "Could not ask" never becomes DOWN.
 */
#ifndef PV_PROBE_PROBE_H
#define PV_PROBE_PROBE_H

#include <libpq-fe.h>

#include "core/cluster.h"
#include "core/health.h"

#define PV_PROBE_CHAIN_INTERVAL_MS 2000
#define PV_PROBE_MAX_ROOTS 20

/* The status statement (the full form), for one-off use. */
extern const char *const pv_probe_sql;
/* Prepares, on a probe connection, the full and lite status statements:
 * pv_probe_prepare_statements statements, run once per connection. */
extern const char *const pv_probe_prepare_sql;
extern const int pv_probe_prepare_statements;
/* What a probe sends on a prepared connection: the status (full: with the activity counts)
 * and, on a standby, its heartbeat read (a second result). */
const char *pv_probe_execute_sql(bool full, bool heartbeat_read);
/* A duration setting as current_setting() shows it ("5s", "1min", "200ms", "0"), in ms;
 * -1 when it is not one. */
int64_t pv_probe_parse_duration_ms(const char *text);
/* Creates the pgvigil schema and heartbeat table if missing. */
extern const char *const pv_probe_heartbeat_ddl;
/* The root blockers (at most PV_PROBE_MAX_ROOTS, most blocking first). */
extern const char *const pv_probe_chain_sql;

/* Fills obs from a successful status result; false (and obs->reason) if it is malformed. */
bool pv_probe_parse(const PGresult *res, PvNodeObs *obs);
/* The heartbeat read's result: the seq, or -1. */
int64_t pv_probe_parse_heartbeat(const PGresult *res);
/* The upsert statement for seq (writes into buf). */
void pv_probe_heartbeat_sql(int64_t seq, char *buf, size_t size);
/* Rows of pv_probe_chain_sql into roots; returns how many. */
int pv_probe_parse_chain(const PGresult *res, PvLockRoot *roots, int max);

/* DOWN or UNKNOWN for a failed probe, from libpq's message and the SQLSTATE (may be ""). */
PvProbeResult pv_probe_classify_failure(const char *message, const char *sqlstate, bool timed_out);
/* Was the failure a refusal for too many clients? */
bool pv_probe_is_saturation(const char *message, const char *sqlstate);

#endif
