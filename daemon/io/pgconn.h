/*
 * pgconn: one libpq connection driven asynchronously, one statement at a time, under a hard
 * deadline.  The only place pgvigil talks the PostgreSQL protocol.
 *
 * A PvPgConn connects on first use and stays open (a persistent probe connection: its EOF is
 * the fastest sign a server died).  pv_pgconn_start() sends a statement (connecting first if
 * needed); the caller polls pv_pgconn_pollfd() and feeds revents to pv_pgconn_step() until it
 * says DONE or FAILED.  A deadline that passes closes the connection (PQfinish): the server's
 * own statement_timeout is the polite stop, this is the hard one.  While idle the socket is
 * still watched, so a server that goes away is noticed at once (LOST).
 * pv_pgconn_run() is the same loop, blocking the caller up to the deadline, for actions.
 * Error texts come from libpq and never contain a password.
 */
#ifndef PV_IO_PGCONN_H
#define PV_IO_PGCONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

typedef struct PvPgConn PvPgConn;

#define PV_PGC_MAX_RESULTS 8

typedef enum {
	PV_PGC_NOTHING, /* nothing happened */
	PV_PGC_PENDING, /* still working */
	PV_PGC_DONE,    /* the statement finished: take the result */
	PV_PGC_FAILED,  /* connect or statement failed, or the deadline passed */
	PV_PGC_LOST     /* an idle connection was closed by the other side */
} PvPgcEvent;

typedef enum {
	PV_PGC_KIND_POSTGRES, /* adds statement_timeout/lock_timeout startup options */
	PV_PGC_KIND_PGBOUNCER /* admin console: no startup options */
} PvPgcKind;

PvPgConn *pv_pgconn_new(const char *conninfo, PvPgcKind kind, int statement_timeout_ms);
void pv_pgconn_free(PvPgConn *c);
void pv_pgconn_close(PvPgConn *c);

/*
 * sql (nresults statements: PREPAREs, SETs) goes ahead of the first statement on every new
 * connection, in the same round trip; its results are dropped.  NULL: none.
 */
void pv_pgconn_set_setup(PvPgConn *c, const char *sql, int nresults);
/* Begins sql; deadline is absolute CLOCK_MONOTONIC ms. */
void pv_pgconn_start(PvPgConn *c, const char *sql, int64_t deadline_ms, int64_t now_ms);
/* The fd and events to poll for, or -1 when there is nothing to watch. */
int pv_pgconn_pollfd(const PvPgConn *c, short *events);
/* Advances on revents (0 = just check the deadline). */
PvPgcEvent pv_pgconn_step(PvPgConn *c, short revents, int64_t now_ms);
bool pv_pgconn_busy(const PvPgConn *c);
bool pv_pgconn_connected(const PvPgConn *c);
int64_t pv_pgconn_deadline(const PvPgConn *c);

/* After DONE: the last result (caller PQclear()s it). */
PGresult *pv_pgconn_take_result(PvPgConn *c);
/* After DONE: how many results (one per statement, the last PV_PGC_MAX_RESULTS), and the
 * i-th of them (NULL once taken). */
int pv_pgconn_nresults(const PvPgConn *c);
PGresult *pv_pgconn_take_result_at(PvPgConn *c, int i);
/* After FAILED: what went wrong, and the SQLSTATE if the server sent one ("" otherwise). */
const char *pv_pgconn_error(const PvPgConn *c);
const char *pv_pgconn_sqlstate(const PvPgConn *c);
bool pv_pgconn_timed_out(const PvPgConn *c);
/*
 * While a connection attempt or a statement is pending: has the server's host taken in all we
 * sent?  True for a TCP socket that is established with no byte left unacknowledged (the
 * host's kernel is alive and reachable, so a missing answer means the server process itself
 * is not answering: hung or stopped), and for a connected Unix socket; false while the TCP
 * handshake or a retransmission is pending (a network fault looks like that), and when there
 * is no socket.
 */
bool pv_pgconn_host_acked(const PvPgConn *c);

/* Blocking convenience for actions: runs sql to completion or timeout_ms. */
PvStatus pv_pgconn_run(PvPgConn *c, const char *sql, int timeout_ms, PGresult **out,
                       PvError *err) PV_MUSTCHECK;
/* One-shot: connect, run, close. */
PvStatus pv_pg_exec_once(const char *conninfo, PvPgcKind kind, const char *sql, int timeout_ms,
                         PGresult **out, PvError *err) PV_MUSTCHECK;

/* Host (host or hostaddr) and port a conninfo points at; port defaults to 5432. */
PvStatus pv_pg_conninfo_target(const char *conninfo, char *host, size_t hostsize, int *port,
                               PvError *err) PV_MUSTCHECK;
/*
 * Returns conninfo (malloc'd, key='value' form) with host/hostaddr/port replaced by the given
 * host and port; every other keyword kept.
 */
PvStatus pv_pg_conninfo_retarget(const char *conninfo, const char *host, int port, char **out,
                                 PvError *err) PV_MUSTCHECK;

#endif
