/*
 * rejoin_int: what the parts of the rejoin share (not for other modules): rejoin.c (the
 * extension: journal, the driver of the steps), rejoin_ctl.c (the control verb),
 * rejoin_steps.c (what each step does); each command on the node's host goes through
 * act/hostcmd.h.
 */
#ifndef PV_ACT_REJOIN_INT_H
#define PV_ACT_REJOIN_INT_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "act/hostcmd.h"
#include "act/rejoin.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "io/pgconn.h"
#include "io/ssh.h"
#include "journal/journal.h"
#include "pgvigild/daemon.h"

/* ---- the rejoin in progress (rejoin.c, rejoin_steps.c) ---- */

typedef enum {
	RJ_WAIT,    /* a command, a statement or a timer runs: call again when it is over */
	RJ_DONE,    /* the step succeeded: on to x->next */
	RJ_FAIL,    /* the step failed (x->error): the rejoin fails */
	RJ_FAIL_ON, /* the step failed (x->error) but the rejoin goes on with x->next */
} RjResult;

typedef struct {
	PvDaemon *d;
	bool active;
	/* the request */
	PvCtlRequest req;
	bool have_req;
	char node[PV_NAME_MAX], primary[PV_NAME_MAX];
	char reason[512];
	/* copies of the configuration (a reload does not pull them away) */
	char *pgdata, *pg_bin, *node_ci, *primary_ci;
	char primary_host[256];
	int primary_port;
	int backup_timeout_ms;
	PvHost host;
	char where[192];
	char standby[PV_NAME_MAX]; /* a standby streaming from the primary, "" none */
	char *standby_ci;
	char *source;    /* pg_rewind/pg_basebackup conninfo, no password */
	char *source_pw; /* its password, for PGPASSWORD (local only), or NULL */
	char pwenv[1100];
	/* journal */
	PvJournalSpan span, sspan;
	bool sspan_open;
	/* progress */
	PvRejoinStep step, next;
	int sub;
	int64_t start_ms, step_start_ms, wake_ms, deadline_ms;
	PvHostCmd *cmd;
	bool cmd_running;
	char cmd_label[256];
	PvPgConn *pg;
	const char *pg_ci; /* the conninfo pg was made for (one of the strings above) */
	bool pg_busy, pg_failed;
	char pg_error[512];
	PGresult *res;
	int fd_pg;   /* index of the statement's descriptor in the pollfds handed out, -1 none */
	PvBuf steps; /* the response's step objects (JSON), comma-separated */
	/* this step, for its end record */
	PvBuf notes; /* "; "-separated */
	struct {
		char label[256];
		char result[192];
		int64_t ms;
	} cmdrec[12];
	int ncmdrec;
	struct {
		char key[32];
		char *s; /* NULL: the number i */
		int64_t i;
	} facts[12];
	int nfacts;
	char error[1024];
	/* what the steps found */
	PvControlData cd;
	bool have_cd, parent_writable, tablespaces;
	bool no_pgdata; /* the data directory does not exist: a fresh base backup */
	char saved[512];
	char aside[4096];
	bool moved; /* the data directory was moved to aside */
	char method[16];
	char *pconninfo; /* primary_conninfo written (may hold a password: never journaled) */
	char *autoconf;  /* the new postgresql.auto.conf (the same) */
	char *tmpl;      /* a standby's primary_conninfo (the same) */
	char slot[128];
	char last_seen[256];
	bool primary_changed;
} Rj;

/* rejoin.c: the job */
void pv_rj_job_clear(Rj *x);
/* Frees a string that may hold a password, zeroed first. */
void pv_rj_wipe_free(char *s);
/* Runs the rejoin set up in x (its begin record written) from its first step. */
void pv_rj_begin(Rj *x, int64_t now);

/* rejoin_ctl.c: the control verb "rejoin" */
void pv_rj_control(Rj *x, PvDaemon *d, json_t *rq, PvCtlRequest *req);

/* rejoin.c: helpers for the steps */
void pv_rj_note(Rj *x, const char *fmt, ...) PV_PRINTF(2, 3);
void pv_rj_fact_str(Rj *x, const char *key, const char *value);
void pv_rj_fact_int(Rj *x, const char *key, int64_t value);
/* RJ_FAIL with x->error set (for `return pv_rj_fail(...)`). */
RjResult pv_rj_fail(Rj *x, const char *fmt, ...) PV_PRINTF(2, 3);
/* Starts a command (label: what the journal calls it, NULL: the command line); false (with
 * x->error) when it could not start. */
bool pv_rj_run(Rj *x, int64_t now, const char *label, const char *const *argv,
               const char *const *env, int timeout_ms);
/* Starts one statement under timeout_ms (a fresh connection to conninfo unless the step
 * already has one to it). */
void pv_rj_sql(Rj *x, const char *conninfo, const char *sql, int timeout_ms, int64_t now);
/* "PG_BIN/name" or "name" */
void pv_rj_prog(const Rj *x, const char *name, char *out, size_t size);
/* The last lines of a finished command's output, on one line. */
void pv_rj_cmd_tail(PvHostCmd *c, char *out, size_t size);

/* rejoin_standby.c: configure, start, verify */
RjResult pv_rj_do_configure(Rj *x, int64_t now);
RjResult pv_rj_do_start(Rj *x, int64_t now);
RjResult pv_rj_do_verify(Rj *x, int64_t now);

/* rejoin_steps.c: the steps, indexed by PvRejoinStep */
extern RjResult (*const pv_rj_steps[PV_REJOIN_NSTEPS])(Rj *x, int64_t now);
/* What a step's begin record says besides its name. */
void pv_rj_begin_detail(Rj *x, PvRejoinStep step, PvJson *j);

#endif
