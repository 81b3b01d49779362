/*
 * events: every event name pgvigild writes to the journal, in one place, with its phase and a
 * one-line meaning.  pgvigil-journal(5) documents each with its fields; tests/unit/test_docs.c
 * fails when an event written by the code is missing here or from the man page, or when one
 * listed here is not documented.  New code names its events through pv_journal_event_name().
 *
 * Phases: "event" (an observation or decision), "begin/end" (an action), "both" (an action
 * pair that may also be a single event record, e.g. skipped).
 */
#ifndef PV_JOURNAL_EVENTS_H
#define PV_JOURNAL_EVENTS_H

#define PV_JOURNAL_EVENTS(X)                                                                       \
	X(PV_EV_DAEMON_START, "daemon-start", "event", "the daemon started")                       \
	X(PV_EV_DAEMON_STOP, "daemon-stop", "event", "the daemon stopped on a signal")             \
	X(PV_EV_CONFIG_RELOAD, "config-reload", "event",                                           \
	  "SIGHUP: new configuration accepted or refused")                                         \
	X(PV_EV_PRIMARY_FOUND, "primary-found", "event", "the probes identified the primary")      \
	X(PV_EV_NODE_DOWN, "node-down", "event", "a node stopped answering probes")                \
	X(PV_EV_NODE_UP, "node-up", "event", "a node answers probes again")                        \
	X(PV_EV_PRIMARY_SUSPECT, "primary-suspect", "event", "the primary failed a probe")         \
	X(PV_EV_PRIMARY_BLIP, "primary-blip", "event",                                             \
	  "the primary failed probes and answered again before it was confirmed down")             \
	X(PV_EV_WATCHDOG_PARTITION, "watchdog-partition", "event",                                 \
	  "the primary is unreachable from pgvigild but standbys still stream from it")            \
	X(PV_EV_SPLIT_BRAIN, "split-brain-suspected", "event", "two nodes answer as primaries")    \
	X(PV_EV_SPLIT_BRAIN_FENCE, "split-brain-fence", "event",                                   \
	  "of two primaries, the former or older-timeline one is stopped")                         \
	X(PV_EV_MAINTENANCE, "maintenance", "event", "pgvigil pause or pgvigil resume")            \
	X(PV_EV_NO_PRIMARY, "no-primary", "event", "every node answers and none is a primary")     \
	X(PV_EV_PRIMARY_WEDGED, "primary-wedged", "event",                                         \
	  "the primary answers probes but cannot commit")                                          \
	X(PV_EV_PRIMARY_LOCKED, "primary-locked", "event",                                         \
	  "lock waits on the primary passed locks.failover_after_ms")                              \
	X(PV_EV_NODE_HEALTH, "node-health", "event", "a node's health class changed")              \
	X(PV_EV_LOCK_CHAIN, "lock-chain", "event", "a lock chain over locks.wait_threshold_ms")    \
	X(PV_EV_LOCK_CANCEL, "lock-cancel", "begin/end", "pg_cancel_backend() on a root blocker")  \
	X(PV_EV_LOCK_TERMINATE, "lock-terminate", "begin/end",                                     \
	  "pg_terminate_backend() on a root blocker")                                              \
	X(PV_EV_LOCK_CLEARED, "lock-cleared", "event", "a lock chain is gone")                     \
	X(PV_EV_POOL_EXHAUSTED, "pool-exhausted", "event",                                         \
	  "PgBouncer clients wait longer than pgbouncer.pool_maxwait_ms")                          \
	X(PV_EV_POOL_RECOVERED, "pool-recovered", "event", "an exhausted pool serves again")       \
	X(PV_EV_INCIDENT_OPEN, "incident-open", "event", "an incident starts")                     \
	X(PV_EV_FAILOVER_DECISION, "failover-decision", "event",                                   \
	  "the decision to fail over, every candidate with its reason")                            \
	X(PV_EV_FAILOVER_REFUSED, "failover-refused", "event",                                     \
	  "a failover is needed but not possible or not allowed")                                  \
	X(PV_EV_FENCE, "fence", "both",                                                            \
	  "the old primary fenced (PgBouncer KILL, pg_ctl stop) or found unreachable")             \
	X(PV_EV_PROMOTE, "promote", "begin/end", "pg_promote() on the winner")                     \
	X(PV_EV_ENDPOINT_SWITCH, "endpoint-switch", "begin/end",                                   \
	  "PgBouncer pointed at the new primary")                                                  \
	X(PV_EV_REPOINT, "repoint", "both", "one standby's primary_conninfo changed")              \
	X(PV_EV_REPOINT_VERIFY, "repoint-verify", "begin/end",                                     \
	  "waiting for the standbys to stream from the new primary")                               \
	X(PV_EV_INCIDENT_CLOSE, "incident-close", "event", "an incident ends")                     \
	X(PV_EV_INCIDENT_RESUME, "incident-resume", "event",                                       \
	  "a restarted pgvigild takes over the incident the journal left open")                    \
	X(PV_EV_MANUAL_FAILOVER, "manual-failover", "event", "a pgvigil failover request")         \
	X(PV_EV_SWITCHOVER_STEP, "switchover-step", "begin/end", "one step of pgvigil switchover") \
	X(PV_EV_SWITCHOVER_REFUSED, "switchover-refused", "event",                                 \
	  "a switchover refused before anything changed")                                          \
	X(PV_EV_REJOIN, "rejoin", "begin/end",                                                     \
	  "pgvigil rejoin: a node made a streaming standby of the current primary")                \
	X(PV_EV_REJOIN_STEP, "rejoin-step", "both", "one step of pgvigil rejoin")                  \
	X(PV_EV_BACKUP, "backup", "both", "a base backup of the primary")                          \
	X(PV_EV_BACKUP_PROGRESS, "backup-progress", "event", "how far a running backup is")        \
	X(PV_EV_BACKUP_VERIFY, "backup-verify", "begin/end", "pg_verifybackup on a backup")        \
	X(PV_EV_BACKUP_DELETE, "backup-delete", "event", "a backup removed by retention")          \
	X(PV_EV_RESTORE_POINT, "restore-point", "both",                                            \
	  "a named restore point on the primary when an incident opens")                           \
	X(PV_EV_RESTORE_POINT_ARCHIVED, "restore-point-archived", "event",                         \
	  "the WAL holding a restore point reached the archive")                                   \
	X(PV_EV_HOOK, "hook", "begin/end", "a hooks.on_failover or hooks.on_incident program run")

typedef enum {
#define PV_X(id, name, phase, meaning) id,
	PV_JOURNAL_EVENTS(PV_X)
#undef PV_X
	    PV_EV_COUNT
} PvJournalEvent;

const char *pv_journal_event_name(PvJournalEvent e);
const char *pv_journal_event_phase(PvJournalEvent e);
const char *pv_journal_event_meaning(PvJournalEvent e);
/* The event called name, or -1. */
int pv_journal_event_parse(const char *name);

#endif
