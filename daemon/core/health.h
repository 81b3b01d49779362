/*
 * health: what state each node is in, with the reasons, and what to do about a lock chain.
 *
 * Pure: the node's view and the thresholds in, a classification out.  One health per node,
 * the most serious that applies (DOWN > UNKNOWN > WEDGED > LOCKED > SATURATED > SLOW > HEALTHY),
 * and every reason that applies, so an operator sees "LOCKED, SLOW" for what it is.
 * "Could not ask" is UNKNOWN, never DOWN; a refusal for too many clients is SATURATED.
 */
#ifndef PV_CORE_HEALTH_H
#define PV_CORE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/cluster.h"

#define PV_HEALTH_LIST(X)                 \
	X(PV_HEALTH_UNKNOWN, "unknown")       \
	X(PV_HEALTH_HEALTHY, "healthy")       \
	X(PV_HEALTH_SLOW, "slow")             \
	X(PV_HEALTH_SATURATED, "saturated")   \
	X(PV_HEALTH_LOCKED, "locked")         \
	X(PV_HEALTH_WEDGED, "wedged")         \
	X(PV_HEALTH_DOWN, "down")

typedef enum {
#define PV_X(c, n) c,
	PV_HEALTH_LIST(PV_X)
#undef PV_X
} PvHealth;
const char *pv_health_name(PvHealth h);

typedef struct {
	int slow_threshold_ms;
	int slow_window;
	int lock_wait_threshold_ms;
	int saturation_threshold_pct;
	int64_t warn_lag_bytes;
	int standby_stale_ms;
} PvHealthPolicy;

#define PV_HEALTH_MAX_REASONS 6

typedef struct {
	PvHealth health;
	int nreasons;
	char reasons[PV_HEALTH_MAX_REASONS][192];
	/* the flags behind the reasons, for events on transitions */
	bool slow, saturated, locked, wedged, lagging;
} PvHealthReport;

/* primary_lsn: the primary's current LSN (0 unknown), for a standby's lag. */
void pv_health_classify(const PvNodeView *n, bool is_primary, uint64_t primary_lsn,
                        const PvHealthPolicy *p, PvHealthReport *out);

/* ---- lock chains ---- */

/* A root blocker: a session that blocks others and waits for nothing itself. */
typedef struct {
	int pid;                 /* 0: a prepared transaction */
	char user[64];
	char application[64];
	char database[64];
	char client[64];
	char state[32];          /* "active", "idle in transaction", ... */
	char backend_type[32];
	bool superuser;
	int blocked;             /* sessions waiting behind it, directly or not */
	int64_t blocked_for_ms;  /* the longest of their waits */
	int64_t xact_age_ms;
	int64_t state_age_ms;
	char relations[128];     /* what the waiters want: "public.t" */
	char modes[96];          /* the modes they want */
	char query[208];         /* its current or last statement, truncated */
} PvLockRoot;

typedef struct {
	int cancel_after_ms;      /* 0: never */
	int terminate_after_ms;   /* 0: never */
	bool act;                 /* false: report only */
	bool include_superusers;
	const char *exclude_users;        /* comma-separated, may be NULL */
	const char *exclude_applications;
	const char *exclude_databases;
	const char *own_application;      /* pgvigil's own application_name: never touched */
} PvLockPolicy;

#define PV_LOCK_ACTION_LIST(X)                 \
	X(PV_LOCK_REPORT, "report")                \
	X(PV_LOCK_PROTECTED, "protected")          \
	X(PV_LOCK_CANCEL, "cancel")                \
	X(PV_LOCK_TERMINATE, "terminate")

typedef enum {
#define PV_X(c, n) c,
	PV_LOCK_ACTION_LIST(PV_X)
#undef PV_X
} PvLockAction;
const char *pv_lock_action_name(PvLockAction a);

/* The ladder for one root; *why is a static explanation. */
PvLockAction pv_lock_decide(const PvLockRoot *r, const PvLockPolicy *p, const char **why);

/*
 * How long until the ladder could act on one of these roots (ms, 0: now), or -1 when it never
 * will (every root protected, or locks.act off): how long the lock chain can go unread.
 */
int64_t pv_lock_next_step_ms(const PvLockRoot *roots, int n, const PvLockPolicy *p);

/* Is name in the comma-separated list (spaces around items ignored)? */
bool pv_list_contains(const char *list, const char *name);

#endif
