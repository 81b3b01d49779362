/*
 * extension: components that live in pgvigild's loop beside the prober (backups, metrics,
 * hooks, ...).  Each is a const table of functions over its own state; the daemon calls them
 * at fixed points and never knows what they do.  All optional members may be NULL.
 *
 * Rules for an extension: it never blocks the loop longer than a bounded, short deadline (long
 * work runs in a child process it polls); every action it takes is journaled begin/end through
 * d->journal; it reads the cluster through d->view and d->cfg and changes neither.
 */
#ifndef PV_PGVIGILD_EXTENSION_H
#define PV_PGVIGILD_EXTENSION_H

#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "ctl/ctl.h"

typedef struct PvDaemon PvDaemon;

typedef enum {
	PV_DEV_INCIDENT_OPEN,  /* node = the primary at that moment (-1 unknown) */
	PV_DEV_PROMOTED,       /* node = the new primary, right after a successful promotion */
	PV_DEV_INCIDENT_CLOSE, /* node = the primary afterwards */
	PV_DEV_RELOADED,       /* d->cfg is the new configuration */
	PV_DEV_LOCK_CHAIN,     /* node = where a new set of root blockers was found (lock-chain) */
} PvDaemonEvent;

const char *pv_daemon_event_name(PvDaemonEvent ev);

typedef struct {
	const char *name;
	/* Creates the state; NULL when the configuration does not enable it. */
	void *(*create)(PvDaemon *d);
	void (*destroy)(void *self);
	/* Up to max pollfds to watch; returns the count. */
	int (*pollfds)(void *self, struct pollfd *fds, int max);
	/* Milliseconds until it needs to run again, or -1 for no timer. */
	int (*timeout)(void *self, int64_t now_ms);
	/* Called every loop turn with its pollfds' revents. */
	void (*step)(void *self, PvDaemon *d, const struct pollfd *fds, int nfds, int64_t now_ms);
	void (*on_event)(void *self, PvDaemon *d, PvDaemonEvent ev, int node);
	/* A control request; returns true when it answered it (pv_ctl_respond). */
	bool (*control)(void *self, PvDaemon *d, const char *cmd, json_t *request, PvCtlRequest *req);
} PvExtension;

/* The registered extensions (extensions.c), NULL-terminated. */
extern const PvExtension *const pv_extensions[];

#endif
