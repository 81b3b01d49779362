/*
 * cluster: the pure decision core.  What the probes saw goes in (PvClusterView, with "now"
 * already folded into the observations), decisions come out as data (PvDecision).
 *
 * No I/O, no clock, no logging: every function here is deterministic and unit-tested as a
 * table.  Invariants: "could not ask" (PV_PROBE_UNKNOWN) never counts as down; a node that is
 * not answering, not in recovery, or has priority 0 is never a promotion candidate; a failover
 * is decided only when the primary failed confirm_failures probes in a row, or hung (its host
 * acknowledges our requests, the server answered nothing for hang_after_ms), AND no reachable
 * standby still streams from it.
 */
#ifndef PV_CORE_CLUSTER_H
#define PV_CORE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/json.h"

#define PV_CORE_MAX_NODES 32

typedef enum { PV_PROBE_NONE, PV_PROBE_UP, PV_PROBE_DOWN, PV_PROBE_UNKNOWN } PvProbeResult;
const char *pv_probe_result_name(PvProbeResult r);

/* One probe's findings about one node. LSNs are 0 when unknown. */
typedef struct {
	PvProbeResult result;
	char reason[160];      /* why DOWN/UNKNOWN ("connection refused", "timeout after 1000 ms") */
	bool in_recovery;
	int timeline;          /* 0 unknown */
	uint64_t current_lsn;  /* primary: pg_current_wal_lsn() */
	uint64_t receive_lsn;  /* standby: pg_last_wal_receive_lsn() */
	uint64_t replay_lsn;   /* standby: pg_last_wal_replay_lsn() */
	bool receiver_streaming; /* standby: pg_stat_wal_receiver.status = 'streaming' */
	char sender_host[128];
	int sender_port;
	int64_t since_last_msg_ms; /* -1 unknown */
	uint64_t system_id;
	int64_t latency_ms;
	int64_t at_ms;         /* monotonic time the probe completed */

	/* saturation (every node) */
	int clients;           /* client backends */
	int max_connections;
	int reserved_connections; /* superuser_reserved_connections */
	bool refused_saturated;   /* the probe was refused: too many clients */
	/* locks (every node; acted on for the primary) */
	int lock_waiters;
	int relation_waiters;
	int64_t oldest_lock_wait_ms;  /* -1 none */
	int64_t oldest_idle_xact_ms;  /* -1 none */
	/* replication */
	int64_t wal_receiver_timeout_ms; /* standby: its setting; 0 disabled, -1 unknown */
	bool has_heartbeat_table;
	int64_t heartbeat_seq;        /* standby: the heartbeat it replayed; -1 unknown */
	bool archive_failing;         /* pg_stat_archiver: last failure after last success */
	/* primary: synchronous replication */
	bool sync_configured;         /* synchronous_standby_names is set */
	char sync_standbys[256];      /* application_name of each sync/quorum standby, comma-separated;
	                               * the last non-empty list while sync stays configured */
} PvNodeObs;

#define PV_COMMIT_SAMPLES 16

typedef enum { PV_WRITE_NONE, PV_WRITE_OK, PV_WRITE_FAILED } PvWriteState;

typedef struct {
	char name[64];
	char host[128]; /* as in the node's conninfo (host or hostaddr), for matching senders */
	int port;
	int priority;
	PvNodeObs obs;              /* the latest completed probe */
	int consecutive_failures;   /* DOWN probes in a row */
	int64_t down_since_ms;      /* when the first of them completed */
	int64_t alive_ms;           /* when the server last answered anything (0: never) */
	int64_t acked_since_ms;     /* since when every sample of the pending probes found its
	                             * bytes acknowledged by the node's host (its kernel is up and
	                             * reachable: pv_pgconn_host_acked); 0: not so now */
	bool failed;                /* a former primary we failed over from: never a candidate */

	/* the write path (heartbeat), kept for the primary */
	PvWriteState write;
	char write_error[160];
	bool write_blocked_by_lock; /* the last failure was lock_timeout (and not behind our own
	                             * stuck commit: then it is still a wedge) */
	bool write_timed_out;       /* a write of the current failing streak hit its deadline */
	int64_t write_failing_since_ms; /* 0 while writes succeed */
	int64_t commit_ms[PV_COMMIT_SAMPLES]; /* latest first */
	int ncommit;
	/* standby: age of the newest heartbeat it replayed, by pgvigil's clock; -1 unknown */
	int64_t heartbeat_age_ms;
	int64_t promoted_at_ms;  /* when pgvigil promoted it (0: never): older probes are stale */
	/* when lock waits over the threshold were first seen; 0 none */
	int64_t locked_since_ms;
} PvNodeView;

typedef struct {
	int nnodes;
	PvNodeView nodes[PV_CORE_MAX_NODES];
	int primary;                /* index of the known primary, or -1 */
} PvClusterView;

/* How candidates are ranked (automatic and manual alike). */
typedef struct {
	int standby_stale_ms;     /* 0: from each standby's wal_receiver_timeout */
	int64_t max_lag_bytes;    /* a candidate further behind the old primary is not promoted; 0: no limit */
	bool allow_data_loss;     /* an operator's --allow-data-loss: the two guards above are off */
	/* a hung primary (pv_core_decide): a standby sees it only if it heard from it later than
	 * PV_CORE_HANG_SLACK_MS after this (the last answer pgvigil had); 0: the stale limit */
	int64_t hung_silent_since_ms;
} PvRankRules;

/* How much later than pgvigil's last answer a standby may still have heard a hung primary
 * (the heartbeat's WAL reaches it about when the commit is acknowledged). */
#define PV_CORE_HANG_SLACK_MS 500
/* How long the host must have acknowledged our pending requests without an answer: a live
 * server answers an acknowledged request in milliseconds (its statement_timeout, 0.9 of
 * probe.timeout_ms, bounds a blocked one), while a link that just came back acknowledges at
 * once and answers a moment later. */
#define PV_CORE_HANG_ACKED_MS 1000
/* While the host has not acknowledged them, decide again this often: the prober samples the
 * acknowledgements (every 100 ms) without a probe event to wake the decision. */
#define PV_CORE_HANG_RECHECK_MS 100

typedef struct {
	int confirm_failures;
	bool automatic;
	int64_t max_lag_bytes;
	int standby_stale_ms;  /* 0: from each standby's wal_receiver_timeout */
	int wedged_after_ms;   /* 0: never fail over a wedged primary */
	int locks_failover_after_ms; /* 0: never */
	/* a primary whose host acknowledges our requests while the server has answered nothing for
	 * this long is down without waiting for confirm_failures (0: off) */
	int hang_after_ms;
	int64_t now_ms;
} PvPolicy;

/* What the core concluded this round. */
#define PV_VERDICT_LIST(X)                                                                   \
	X(PV_VERDICT_HEALTHY, "healthy")                                                        \
	X(PV_VERDICT_UNKNOWN_PRIMARY, "unknown-primary")                                        \
	X(PV_VERDICT_SPLIT_BRAIN, "split-brain-suspected")                                      \
	X(PV_VERDICT_NO_PRIMARY, "no-primary")                                                  \
	X(PV_VERDICT_SUSPECT, "primary-suspect")                                                \
	X(PV_VERDICT_PRIMARY_UNKNOWN_STATE, "primary-unknown-state")                            \
	X(PV_VERDICT_STANDBYS_SEE_PRIMARY, "standbys-see-primary")                              \
	X(PV_VERDICT_WEDGED, "primary-wedged")                                                  \
	X(PV_VERDICT_LOCKED, "primary-locked")                                                  \
	X(PV_VERDICT_NO_CANDIDATE, "no-candidate")                                              \
	X(PV_VERDICT_MANUAL_REQUIRED, "manual-required")                                        \
	X(PV_VERDICT_FAILOVER, "failover")

typedef enum {
#define PV_X(c, n) c,
	PV_VERDICT_LIST(PV_X)
#undef PV_X
} PvVerdict;
const char *pv_verdict_name(PvVerdict v);

typedef struct {
	int node;
	bool eligible;
	bool sees_primary;   /* a standby still streaming from the old primary */
	uint64_t lsn;        /* the LSN candidates are ranked by */
	int64_t gap_bytes;   /* how far it trails the old primary's last seen LSN (-1 unknown) */
	bool sync;           /* a synchronous standby of the old primary */
	const char *reason;  /* static string: why it won or could not */
} PvCandidate;

typedef struct {
	PvVerdict verdict;
	int old_primary;     /* -1 if none */
	int winner;          /* index or -1 */
	int ncandidates;
	PvCandidate candidates[PV_CORE_MAX_NODES];
	int nvoters;         /* reachable standbys asked */
	int nseeing;         /* of them, still streaming from the old primary */
	int nstale;          /* reachable standbys not asked since the primary failed */
	int64_t loss_bytes;  /* the winner's gap behind the old primary's last seen LSN (-1 unknown) */
	bool sync_guarded;   /* only synchronous standbys were eligible */
	bool hung;           /* the primary was found hung (hang_after_ms), not failed confirm times */
	int64_t recheck_at_ms; /* decide again at this time even if no probe completes (0: none) */
	char reason[256];
} PvDecision;

/*
 * Index of the one node that answers as a primary; -1 if none does, -2 if more than one.
 */
int pv_core_find_primary(const PvClusterView *v);

/*
 * Does node i still stream from node p?  Its receiver is streaming from p's host/port (or from
 * an address we cannot name), and it heard from p within the stale limit: stale_ms, or when 0
 * half its wal_receiver_timeout plus one second (a live primary answers the receiver's
 * keepalive within half that timeout, even when idle).
 */
bool pv_core_sees(const PvClusterView *v, int i, int p, int stale_ms);
int64_t pv_core_stale_limit_ms(const PvNodeObs *standby, int stale_ms);

/* The LSN a standby is ranked by: greatest of received and replayed. */
uint64_t pv_core_standby_lsn(const PvNodeObs *o);

/*
 * Ranks every node as a candidate to replace old_primary (which may be -1).  target >= 0
 * restricts the winner to that node (a manual --to); it must still be eligible and not behind
 * another eligible standby.
 */
void pv_core_rank(const PvClusterView *v, int old_primary, int target, const PvRankRules *rules,
                  PvDecision *out);

/* The automatic decision for this round. */
void pv_core_decide(const PvClusterView *v, const PvPolicy *p, PvDecision *out);

/*
 * A manual failover request: the same checks, minus the confirm count and mode.  Refuses
 * (verdict != FAILOVER, reason set) while the primary still answers as a primary.
 */
void pv_core_decide_manual(const PvClusterView *v, int target, const PvRankRules *rules,
                           PvDecision *out);

/* "0/3000148" <-> 0x3000148.  Parse returns false on malformed text. */
bool pv_lsn_parse(const char *s, uint64_t *out);
void pv_lsn_format(uint64_t lsn, char *out, size_t size);
/* key: "X/Y", or null for 0 (unknown). */
void pv_json_lsn(PvJson *j, const char *key, uint64_t lsn);

#endif
