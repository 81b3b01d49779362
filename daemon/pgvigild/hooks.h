/*
 * hooks: operator programs pgvigild runs on its events (hooks.on_failover, hooks.on_incident).
 *
 *   event (PGVIGIL_EVENT)   daemon event            hook
 *   incident-open           PV_DEV_INCIDENT_OPEN    hooks.on_incident
 *   promoted                PV_DEV_PROMOTED         hooks.on_failover
 *   incident-close          PV_DEV_INCIDENT_CLOSE   hooks.on_incident
 *
 * A hook runs through io/proc: argv = [program] only (no shell, nothing from the cluster on
 * its command line), the PGVIGIL_* variables below added to the daemon's environment, stdin
 * /dev/null, its own process group, the hooks.timeout_ms deadline (SIGTERM, SIGKILL 2 s
 * later).  It never blocks the loop: its pipes are polled like any descriptor.  Runs of one
 * hook are sequential, in event order (a queue of PV_HOOK_QUEUE; beyond it events are dropped
 * and logged); the two hooks run independently of each other.
 *
 * Each run is a journal "hook" begin/end pair in the incident of its event, node = PGVIGIL_NODE;
 * begin detail {hook, event, program, timeout_ms}, end outcome ok (exit 0), failed (other exit,
 * a signal, could not start), timeout (its deadline), detail {exit_status, signal, stdout,
 * stderr (each its first PV_HOOK_OUTPUT_MAX bytes), stdout_bytes, stderr_bytes, error}.  When
 * the begin record cannot be written the hook is not run.  The configuration is read when a
 * run starts, so a reload applies to the next run.
 *
 * Environment: PGVIGIL_HOOK (on_failover | on_incident), PGVIGIL_EVENT, PGVIGIL_INCIDENT,
 * PGVIGIL_NODE, PGVIGIL_OLD_PRIMARY, PGVIGIL_NEW_PRIMARY, PGVIGIL_CLUSTER, PGVIGIL_JOURNAL,
 * PGVIGIL_CONFIG, PGVIGIL_SEQ (the seq of the incident-open or incident-close record; for
 * promoted, of the last record of the failover steps then: promote, endpoint-switch, repoint);
 * unknown values are set and empty.  The extension comes before the others in pv_extensions,
 * so no other extension's record slips in between an event's record and its PGVIGIL_SEQ.
 */
#ifndef PV_PGVIGILD_HOOKS_H
#define PV_PGVIGILD_HOOKS_H

#include "pgvigild/extension.h"

#define PV_HOOK_QUEUE 16
#define PV_HOOK_OUTPUT_MAX 4096

extern const PvExtension pv_hooks_extension;

#endif
