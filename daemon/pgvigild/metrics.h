/*
 * metrics: Prometheus metrics and HAProxy health checks over HTTP (libmicrohttpd).
 *
 * Off unless the configuration has a metrics group.  The HTTP server runs in libmicrohttpd's
 * own thread (MHD_USE_INTERNAL_POLLING_THREAD) and never touches the daemon's state: each loop
 * turn the extension's step renders the daemon's view (d->view, d->cfg, d->incident, d->health,
 * counters kept from daemon events) into a snapshot behind a mutex, and requests are answered
 * from the latest snapshot.  Decisions stay in the single-threaded loop.
 *
 *   GET /metrics         text exposition format 0.0.4 (PV_METRICS_LIST)
 *   GET /primary         200 "NAME" while the primary pgvigild knows answers as a primary
 *   GET /primary/NAME    200 if NAME is that primary and answers as one, else 503
 *   GET /replica         200 while at least one standby streams (the names, one a line)
 *   GET /replica/NAME    200 if NAME answers in recovery and its WAL receiver streams, else 503
 *                        ?max_lag_bytes=N: 503 also when its lag is unknown or above N
 *   unknown NAME: 404; another path: 404; a method other than GET or HEAD: 405
 *
 * A former primary pgvigild failed over from never gets 200 on /primary, even when it answers
 * as a primary again (split brain): only the primary the daemon acts on does.
 */
#ifndef PV_PGVIGILD_METRICS_H
#define PV_PGVIGILD_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "config/config.h"
#include "pgvigild/extension.h"

/* Every metric: name, type, help.  The man page lists the same (tests/unit/test_docs.c). */
#define PV_METRICS_LIST(X)                                                                         \
	X(pgvigil_info, gauge, "always 1; labels: cluster, failover mode")                         \
	X(pgvigil_start_time_seconds, gauge, "when pgvigild started, seconds since the epoch")     \
	X(pgvigil_view_age_seconds, gauge, "age of the daemon's view this answer comes from")      \
	X(pgvigil_verdict, gauge, "1 for the decision core's current verdict (label verdict)")     \
	X(pgvigil_primary_known, gauge, "1 while pgvigild knows which node is the primary")        \
	X(pgvigil_incident_open, gauge, "1 while an incident is open")                             \
	X(pgvigil_incident_open_seconds, gauge, "age of the open incident, 0 when none")           \
	X(pgvigil_incidents_total, counter, "incidents opened since pgvigild started")             \
	X(pgvigil_failovers_total, counter, "promotions carried out since pgvigild started")       \
	X(pgvigil_last_failover_duration_ms, gauge,                                                \
	  "incident-open to incident-close of the last incident with a promotion")                 \
	X(pgvigil_last_failover_timestamp_seconds, gauge, "when the last promotion happened")      \
	X(pgvigil_reloads_total, counter, "configurations accepted by SIGHUP since start")         \
	X(pgvigil_journal_last_seq, gauge, "seq of the last journal record written")               \
	X(pgvigil_node_up, gauge, "1 when the node's last probe answered")                         \
	X(pgvigil_node_is_primary, gauge, "1 for the primary pgvigild knows")                      \
	X(pgvigil_node_in_recovery, gauge, "1 when the node answered as a standby")                \
	X(pgvigil_node_streaming, gauge, "1 when the node's WAL receiver streams")                 \
	X(pgvigil_node_lag_bytes, gauge, "a standby's distance behind the primary's WAL")          \
	X(pgvigil_node_timeline, gauge, "the node's timeline")                                     \
	X(pgvigil_node_priority, gauge, "cluster.nodes.priority")                                  \
	X(pgvigil_probe_latency_ms, gauge, "duration of the node's last probe")                    \
	X(pgvigil_node_consecutive_failures, gauge, "failed probes in a row")                      \
	X(pgvigil_node_failed_primary, gauge, "1 for a former primary pgvigild failed over from")  \
	X(pgvigil_node_health, gauge, "1 for the node's health class (label health)")              \
	X(pgvigil_node_clients, gauge, "client backends on the node")                              \
	X(pgvigil_node_max_connections, gauge, "the node's max_connections")                       \
	X(pgvigil_node_lock_waiters, gauge, "sessions waiting for a lock")                         \
	X(pgvigil_node_oldest_lock_wait_ms, gauge, "the longest current lock wait, 0 when none")   \
	X(pgvigil_node_commit_latency_ms, gauge, "the last heartbeat commit on the primary")       \
	X(pgvigil_node_heartbeat_age_ms, gauge, "age of the newest heartbeat a standby replayed")  \
	X(pgvigil_node_archive_failing, gauge, "1 when the node's WAL archiving fails")

/* Names of PV_METRICS_LIST, NULL-terminated (for the docs test). */
const char *const *pv_metrics_names(void);

/* What the health endpoints decide from, one entry per node. */
typedef struct {
	char name[PV_NAME_MAX];
	bool up; /* the last probe answered */
	bool in_recovery;
	bool streaming;
	bool is_primary;   /* the primary pgvigild knows, and it answers as a primary */
	int64_t lag_bytes; /* -1 unknown */
} PvHealthNode;

typedef struct {
	int nnodes;
	PvHealthNode nodes[PV_MAX_NODES];
} PvHealthSnapshot;

/* Counters the extension keeps from daemon events. */
typedef struct {
	int64_t start_wall_us;
	int64_t incidents, failovers, reloads;
	int64_t incident_open_ms; /* mono, of the open incident; 0 none */
	bool promoted_in_incident;
	int64_t last_failover_ms;      /* -1 none yet */
	int64_t last_failover_wall_us; /* 0 none yet */
} PvMetricsCounters;

/* The daemon's view as health entries / as metrics text (now_ms: monotonic). */
void pv_metrics_health_snapshot(const PvDaemon *d, PvHealthSnapshot *s);
void pv_metrics_render(const PvDaemon *d, const PvMetricsCounters *c, int64_t now_ms, PvBuf *out);

/*
 * The answer of a health endpoint: path "/primary", "/primary/NAME", "/replica",
 * "/replica/NAME"; max_lag the max_lag_bytes argument or NULL.  Returns the HTTP status
 * (200, 503, 404, or 0 when path is not a health endpoint) and fills body.
 */
int pv_metrics_health(const PvHealthSnapshot *s, const char *path, const char *max_lag,
                      PvBuf *body);

/* Parses metrics.listen ("HOST:PORT", "[V6]:PORT", "*:PORT") into a socket address. */
PvStatus pv_metrics_parse_listen(const char *listen, struct sockaddr_storage *sa, socklen_t *len,
                                 PvError *err) PV_MUSTCHECK;

extern const PvExtension pv_metrics_extension;

#endif
