/*
 * daemon: pgvigild's state and its single poll() loop.
 *
 * The loop waits on the signal self-pipe, the control socket and every probe connection, with
 * a timeout from the prober's schedule; no sleep() anywhere.  Each turn: read signals, serve at
 * most a few control requests, advance the probes, then ask core/ what the view means and act
 * on the answer (journal a transition, open an incident, fail over).  Actions (act/) block the
 * loop for at most their own deadlines.
 */
#ifndef PV_PGVIGILD_DAEMON_H
#define PV_PGVIGILD_DAEMON_H

#include <stdbool.h>

#include "config/config.h"
#include "core/health.h"
#include "pgvigild/extension.h"
#include "core/cluster.h"
#include "journal/journal.h"
#include "probe/prober.h"

#define PV_MAX_EXTENSIONS 16
#define PV_EXT_MAX_FDS 16

struct PvDaemon {
	PvConfig *cfg;
	PvJournal *journal;
	PvProber *prober;
	PvClusterView view;
	int listen_fd;
	int signal_fd; /* read end of the self-pipe */
	bool stop;
	int stop_signal;

	/* the open incident, "" if none */
	char incident[64];
	int64_t incident_start_ms;
	bool incident_refusal_journaled;
	bool incident_automatic; /* opened by detection: closes by itself when the primary recovers */
	int problems; /* failed steps in the open incident */

	/* transitions already journaled, so a condition is recorded once, not every probe */
	PvVerdict last_verdict;
	int last_suspect_failures;
	int64_t failover_hold_until_ms; /* after a failed promotion: no new attempt before */

	/* repoint verification after a failover */
	bool verifying;
	int verify_primary;
	int64_t verify_start_ms;
	int64_t verify_deadline_ms;
	int64_t recheck_at_ms; /* the core asked to decide again then, probes or not (0: no) */
	bool verify_pending[PV_MAX_NODES];
	PvJournalSpan verify_span;

	/* detection (watch.c): each node's health, the lock chains seen and acted on */
	PvHealthReport health[PV_MAX_NODES];
	bool health_known[PV_MAX_NODES];
	int chain_pids[PV_MAX_NODES][20];
	int chain_npids[PV_MAX_NODES];
	int64_t chain_since_ms[PV_MAX_NODES];
	struct {
		int pid;
		int action;
		int64_t at_ms;
	} lock_acted[32];
	char exhausted_pools[PV_MAX_POOLS][130]; /* "db/user" of pools journaled as exhausted */
	int nexhausted;
	bool advised[PV_MAX_NODES]; /* the wal_receiver_timeout advice was logged */

	/* maintenance: no automatic action while paused (pgvigil pause/resume; survives restarts
	 * through the journal's last maintenance record) */
	bool paused;
	char paused_reason[256];

	/* resume.c: an incident a crash left open */
	bool resume_pending;
	int resume_winner;
	int resume_old;
	bool resume_promote_begun;
	bool resume_bouncer_killed;
	int resume_target; /* >= 0: the only node that may be promoted in this incident */
	int64_t suspect_since_ms;  /* the primary's first failed probe of the current streak */
	bool partition_journaled;

	/* extensions (extension.h): state per entry of pv_extensions, NULL when disabled */
	void *ext_state[PV_MAX_EXTENSIONS];
};

/* Tells every extension about ev (node: see PvDaemonEvent). */
void pv_daemon_notify(PvDaemon *d, PvDaemonEvent ev, int node);
/* Journals an event record (phase "event") in the open incident, if any. */
void pv_daemon_journal_event(PvDaemon *d, const char *event, const char *node, const char *outcome,
                             const char *detail_json);
/* The same in the given incident (NULL or "": none); node "" is none.  A record that cannot be
 * written is logged. */
void pv_daemon_journal_event_in(PvDaemon *d, const char *incident, const char *event,
                                const char *node, const char *outcome, const char *detail_json);
/* An event record whose detail is {"reason": reason}, in the open incident. */
void pv_daemon_journal_reason(PvDaemon *d, const char *event, const char *node,
                              const char *outcome, const char *reason);

/* Takes ownership of cfg and journal. */
PvStatus pv_daemon_init(PvDaemon *d, PvConfig *cfg, PvJournal *journal, int listen_fd,
                        int signal_fd, PvError *err) PV_MUSTCHECK;
void pv_daemon_run(PvDaemon *d);
void pv_daemon_fini(PvDaemon *d);

/* watch.c: health transitions, lock chains and the lock ladder, blips. */
void pv_watch_health(PvDaemon *d, int node, int64_t now_ms);
void pv_watch_chain(PvDaemon *d, int node, const PvLockRoot *roots, int nroots, int64_t now_ms);
void pv_watch_pools(PvDaemon *d, int64_t now_ms);
PvHealthPolicy pv_watch_health_policy(const PvConfig *cfg);
PvLockPolicy pv_watch_lock_policy(const PvConfig *cfg);

/* Incidents and control answers, for the daemon's other modules. */
void pv_daemon_incident_open(PvDaemon *d, const char *trigger, const char *reason, const char *node);
void pv_daemon_incident_close(PvDaemon *d, const char *new_primary, bool failed);
void pv_daemon_respond_error(PvCtlRequest *req, const char *msg);

void pv_daemon_reset_write_state(PvNodeView *n);

/* switchover.c: the control verb "switchover" */
void pv_switchover_ctl(PvDaemon *d, PvCtlRequest *req, json_t *request);

/* resume.c */
void pv_resume_load(PvDaemon *d);
bool pv_resume_step(PvDaemon *d, int64_t now_ms);
/* Starts the wait for the repointed standbys (verify_pending) to stream from primary. */
void pv_daemon_verify_begin(PvDaemon *d, int primary);

/* Builds the view's static part (names, hosts, priorities) from cfg; keeps state by name. */
void pv_daemon_build_view(PvClusterView *view, const PvConfig *cfg);

#endif
