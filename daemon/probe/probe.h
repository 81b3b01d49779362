/*
 * probe: what pgvigil asks each node every interval, and how the answer (or the failure to
 * get one) becomes a PvNodeObs for core/.
 *
 * One statement, one round trip, valid on a primary and on a standby.  Failures are sorted
 * into DOWN (the server is not there: refused, reset, closed, timed out, shutting down) and
 * UNKNOWN (it is there but would not answer us: too many clients, authentication, a missing
 * database, a query error).  "Could not ask" never becomes DOWN.
 */
#ifndef PV_PROBE_PROBE_H
#define PV_PROBE_PROBE_H

#include <libpq-fe.h>

#include "core/cluster.h"

extern const char *const pv_probe_sql;

/* Fills obs from a successful probe result; false (and obs->reason) if it is malformed. */
bool pv_probe_parse(const PGresult *res, PvNodeObs *obs);

/* DOWN or UNKNOWN for a failed probe, from libpq's message and the SQLSTATE (may be ""). */
PvProbeResult pv_probe_classify_failure(const char *message, const char *sqlstate, bool timed_out);

#endif
