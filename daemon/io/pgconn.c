#include "io/pgconn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/clock.h"

typedef enum { ST_CLOSED, ST_CONNECTING, ST_IDLE, ST_QUERYING } PgcState;

struct PvPgConn {
	char *conninfo;
	PvPgcKind kind;
	int statement_timeout_ms;
	PGconn *conn;
	PgcState state;
	PostgresPollingStatusType poll_status;
	bool flushing;
	char *pending_sql;
	int64_t deadline_ms;
	PGresult *results[PV_PGC_MAX_RESULTS]; /* one per statement of a multi-statement query */
	int nresults;
	bool result_error;
	bool timed_out;
	bool start_failed;
	char error[512];
	char sqlstate[8];
	char *setup;      /* sent before the first statement on each new connection */
	int setup_results; /* how many results it makes (dropped) */
	int skip;          /* of the statement in flight: results still to drop */
	bool fresh;        /* connected, setup not sent yet */
	bool redo_setup;   /* the setup failed or is gone: close after this statement */
};

/* libpq messages are multi-line; keep them on one line. */
static void set_error(PvPgConn *c, const char *msg)
{
	size_t o = 0;
	bool space = false;
	for (const char *p = msg ? msg : "unknown error"; *p && o < sizeof c->error - 1; p++) {
		if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
			space = o > 0;
			continue;
		}
		if (space && o < sizeof c->error - 2)
			c->error[o++] = ' ';
		space = false;
		c->error[o++] = *p;
	}
	c->error[o] = '\0';
}

PvPgConn *pv_pgconn_new(const char *conninfo, PvPgcKind kind, int statement_timeout_ms)
{
	PvPgConn *c = pv_xcalloc(1, sizeof *c);
	c->conninfo = pv_xstrdup(conninfo);
	c->kind = kind;
	c->statement_timeout_ms = statement_timeout_ms;
	return c;
}

void pv_pgconn_close(PvPgConn *c)
{
	if (!c)
		return;
	if (c->conn)
		PQfinish(c->conn);
	c->conn = NULL;
	c->state = ST_CLOSED;
	c->flushing = false;
}

void pv_pgconn_free(PvPgConn *c)
{
	if (!c)
		return;
	pv_pgconn_close(c);
	for (int i = 0; i < c->nresults; i++)
		PQclear(c->results[i]);
	free(c->pending_sql);
	free(c->setup);
	free(c->conninfo);
	free(c);
}

void pv_pgconn_set_setup(PvPgConn *c, const char *sql, int nresults)
{
	free(c->setup);
	c->setup = sql ? pv_xstrdup(sql) : NULL;
	c->setup_results = sql ? nresults : 0;
}

static bool conninfo_has(const char *conninfo, const char *key)
{
	char *msg = NULL;
	bool has = false;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	if (!opts) {
		PQfreemem(msg);
		return false;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, key) == 0 && o->val && *o->val)
			has = true;
	PQconninfoFree(opts);
	return has;
}

static void reset_outcome(PvPgConn *c)
{
	for (int i = 0; i < c->nresults; i++)
		PQclear(c->results[i]);
	c->nresults = 0;
	c->result_error = false;
	c->timed_out = false;
	c->start_failed = false;
	c->error[0] = '\0';
	c->sqlstate[0] = '\0';
}

static PvPgcEvent fail(PvPgConn *c, const char *msg)
{
	if (msg)
		set_error(c, msg);
	else if (c->conn)
		set_error(c, PQerrorMessage(c->conn));
	pv_pgconn_close(c);
	free(c->pending_sql);
	c->pending_sql = NULL;
	return PV_PGC_FAILED;
}

static PvPgcEvent send_pending(PvPgConn *c)
{
	char *sql = c->pending_sql;
	c->pending_sql = NULL;
	c->skip = 0;
	if (c->fresh && c->setup) {
		PvBuf b = {0};
		pv_buf_printf(&b, "%s; %s", c->setup, sql);
		free(sql);
		sql = pv_xstrdup(b.data);
		pv_buf_free(&b);
		c->skip = c->setup_results;
	}
	c->fresh = false;
	if (!PQsendQuery(c->conn, sql)) {
		free(sql);
		return fail(c, NULL);
	}
	free(sql);
	c->state = ST_QUERYING;
	int f = PQflush(c->conn);
	if (f < 0)
		return fail(c, NULL);
	c->flushing = f == 1;
	return PV_PGC_PENDING;
}

static PvPgcEvent connect_start(PvPgConn *c)
{
	char options[128];
	const char *keys[8], *vals[8];
	int n = 0;

	keys[n] = "dbname";
	vals[n++] = c->conninfo;
	if (!conninfo_has(c->conninfo, "application_name")) {
		keys[n] = "application_name";
		vals[n++] = "pgvigil";
	}
	if (!conninfo_has(c->conninfo, "gssencmode")) {
		keys[n] = "gssencmode";
		vals[n++] = "disable";
	}
	if (c->kind == PV_PGC_KIND_POSTGRES && !conninfo_has(c->conninfo, "options")) {
		snprintf(options, sizeof options, "-c statement_timeout=%d -c lock_timeout=%d",
		         c->statement_timeout_ms, c->statement_timeout_ms / 2 > 0 ? c->statement_timeout_ms / 2 : 1);
		keys[n] = "options";
		vals[n++] = options;
	}
	if (!conninfo_has(c->conninfo, "keepalives_idle")) {
		keys[n] = "keepalives_idle";
		vals[n++] = "5";
		keys[n] = "keepalives_interval";
		vals[n++] = "2";
		keys[n] = "keepalives_count";
		vals[n++] = "3";
	}
	keys[n] = NULL;
	vals[n] = NULL;

	c->conn = PQconnectStartParams(keys, vals, 1);
	if (!c->conn)
		return fail(c, "out of memory starting a connection");
	if (PQstatus(c->conn) == CONNECTION_BAD)
		return fail(c, NULL);
	c->state = ST_CONNECTING;
	c->poll_status = PGRES_POLLING_WRITING;
	return PV_PGC_PENDING;
}

void pv_pgconn_start(PvPgConn *c, const char *sql, int64_t deadline_ms, int64_t now_ms)
{
	(void)now_ms;
	reset_outcome(c);
	free(c->pending_sql);
	c->pending_sql = pv_xstrdup(sql);
	c->deadline_ms = deadline_ms;
	if (c->conn && PQstatus(c->conn) != CONNECTION_OK)
		pv_pgconn_close(c);
	if (c->state == ST_CLOSED) {
		if (connect_start(c) == PV_PGC_FAILED)
			c->start_failed = true; /* error kept; the next step reports FAILED */
		return;
	}
	if (c->state == ST_IDLE)
		(void)send_pending(c);
}

int pv_pgconn_pollfd(const PvPgConn *c, short *events)
{
	if (!c->conn || c->state == ST_CLOSED)
		return -1;
	switch (c->state) {
	case ST_CONNECTING:
		*events = c->poll_status == PGRES_POLLING_WRITING ? POLLOUT : POLLIN;
		break;
	case ST_QUERYING:
		*events = POLLIN | (c->flushing ? POLLOUT : 0);
		break;
	default:
		*events = POLLIN;
		break;
	}
	return PQsocket(c->conn);
}

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static PvPgcEvent drain(PvPgConn *c)
{
	while (!PQisBusy(c->conn)) {
		PGresult *r = PQgetResult(c->conn);
		if (!r) {
			c->state = ST_IDLE;
			if (c->result_error) {
				/* the statement failed but the connection is fine: keep it, unless its
				 * setup must be made again */
				if (c->redo_setup) {
					c->redo_setup = false;
					pv_pgconn_close(c);
				}
				return PV_PGC_FAILED;
			}
			return PV_PGC_DONE;
		}
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
			/* the setup failed, or what it made is gone: make it again on a new connection */
			const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			if (c->skip > 0 || (code && strcmp(code, "26000") == 0))
				c->redo_setup = true;
			if (!c->result_error) {
				set_error(c, PQresultErrorMessage(r));
				const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
				snprintf(c->sqlstate, sizeof c->sqlstate, "%s", ss ? ss : "");
			}
			c->result_error = true;
			PQclear(r);
			continue;
		}
		if (c->skip > 0) {
			c->skip--; /* a setup statement's result */
			PQclear(r);
			continue;
		}
		if (c->nresults == PV_PGC_MAX_RESULTS) {
			PQclear(c->results[0]);
			memmove(c->results, c->results + 1, sizeof c->results[0] * (PV_PGC_MAX_RESULTS - 1));
			c->nresults--;
		}
		c->results[c->nresults++] = r;
	}
	return PV_PGC_PENDING;
}

PvPgcEvent pv_pgconn_step(PvPgConn *c, short revents, int64_t now_ms)
{
	if (c->start_failed) {
		c->start_failed = false;
		return PV_PGC_FAILED;
	}
	if (c->state == ST_CLOSED)
		return PV_PGC_NOTHING;
	if ((c->state == ST_CONNECTING || c->state == ST_QUERYING) && now_ms >= c->deadline_ms) {
		c->timed_out = true;
		return fail(c, c->state == ST_CONNECTING ? "timeout while connecting"
		                                          : "timeout waiting for the statement");
	}
	if (!revents)
		return (c->state == ST_CONNECTING || c->state == ST_QUERYING) ? PV_PGC_PENDING
		                                                              : PV_PGC_NOTHING;
	switch (c->state) {
	case ST_CONNECTING:
		c->poll_status = PQconnectPoll(c->conn);
		if (c->poll_status == PGRES_POLLING_FAILED)
			return fail(c, NULL);
		if (c->poll_status == PGRES_POLLING_OK) {
			/* NOTICEs ("already exists, skipping") are not ours to print */
			PQsetNoticeProcessor(c->conn, ignore_notice, NULL);
			if (PQsetnonblocking(c->conn, 1) != 0)
				return fail(c, NULL);
			c->state = ST_IDLE;
			c->fresh = true;
			if (c->pending_sql)
				return send_pending(c);
			return PV_PGC_NOTHING;
		}
		return PV_PGC_PENDING;
	case ST_QUERYING:
		if (c->flushing && (revents & POLLOUT)) {
			int f = PQflush(c->conn);
			if (f < 0)
				return fail(c, NULL);
			c->flushing = f == 1;
		}
		if (revents & (POLLIN | POLLHUP | POLLERR)) {
			if (!PQconsumeInput(c->conn))
				return fail(c, NULL);
			PvPgcEvent ev = drain(c);
			if (ev != PV_PGC_PENDING)
				return ev;
		}
		return PV_PGC_PENDING;
	case ST_IDLE:
		if (!PQconsumeInput(c->conn) || PQstatus(c->conn) != CONNECTION_OK) {
			set_error(c, PQerrorMessage(c->conn));
			pv_pgconn_close(c);
			return PV_PGC_LOST;
		}
		for (PGnotify *n; (n = PQnotifies(c->conn)) != NULL;)
			PQfreemem(n);
		return PV_PGC_NOTHING;
	default:
		return PV_PGC_NOTHING;
	}
}

bool pv_pgconn_busy(const PvPgConn *c)
{
	return c->state == ST_CONNECTING || c->state == ST_QUERYING || c->start_failed;
}

bool pv_pgconn_connected(const PvPgConn *c)
{
	return c->state == ST_IDLE || c->state == ST_QUERYING;
}

int64_t pv_pgconn_deadline(const PvPgConn *c)
{
	return c->deadline_ms;
}

PGresult *pv_pgconn_take_result(PvPgConn *c)
{
	return c->nresults ? pv_pgconn_take_result_at(c, c->nresults - 1) : NULL;
}

int pv_pgconn_nresults(const PvPgConn *c)
{
	return c->nresults;
}

PGresult *pv_pgconn_take_result_at(PvPgConn *c, int i)
{
	if (i < 0 || i >= c->nresults || !c->results[i])
		return NULL;
	PGresult *r = c->results[i];
	c->results[i] = NULL;
	return r;
}

const char *pv_pgconn_error(const PvPgConn *c)
{
	return c->error;
}

const char *pv_pgconn_sqlstate(const PvPgConn *c)
{
	return c->sqlstate;
}

bool pv_pgconn_timed_out(const PvPgConn *c)
{
	return c->timed_out;
}

bool pv_pgconn_host_acked(const PvPgConn *c)
{
	if (!c->conn || (c->state != ST_CONNECTING && c->state != ST_QUERYING))
		return false;
	int fd = PQsocket(c->conn);
	if (fd < 0)
		return false;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return false;
	if (ss.ss_family == AF_UNIX)
		return true; /* a connected local socket: no network between us */
	struct tcp_info ti;
	len = sizeof ti;
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return false;
	return ti.tcpi_state == TCP_ESTABLISHED && ti.tcpi_unacked == 0 && ti.tcpi_retransmits == 0;
}

PvStatus pv_pgconn_run(PvPgConn *c, const char *sql, int timeout_ms, PGresult **out, PvError *err)
{
	int64_t now = pv_clock_mono_ms();
	int64_t deadline = now + timeout_ms;
	PvPgcEvent ev;

	if (out)
		*out = NULL;
	pv_pgconn_start(c, sql, deadline, now);
	for (;;) {
		short events = 0;
		short revents = 0;
		int fd = pv_pgconn_pollfd(c, &events);
		if (fd >= 0) {
			int wait = (int)(deadline - pv_clock_mono_ms());
			struct pollfd pfd = {.fd = fd, .events = events};
			int n = poll(&pfd, 1, wait > 0 ? wait : 0);
			if (n < 0 && errno != EINTR)
				return pv_error_set(err, PV_ERR_IO, "poll: %s", strerror(errno));
			revents = n > 0 ? pfd.revents : 0;
		}
		ev = pv_pgconn_step(c, revents, pv_clock_mono_ms());
		if (ev == PV_PGC_DONE || ev == PV_PGC_FAILED || ev == PV_PGC_LOST)
			break;
		if (fd < 0 && ev != PV_PGC_PENDING)
			break;
	}
	if (ev != PV_PGC_DONE)
		return pv_error_set(err, c->timed_out ? PV_ERR_TIMEOUT : PV_ERR_PG, "%s",
		                    c->error[0] ? c->error : "connection lost");
	PGresult *r = pv_pgconn_take_result(c);
	if (out)
		*out = r;
	else if (r)
		PQclear(r);
	return PV_OK;
}

PvStatus pv_pg_exec_once(const char *conninfo, PvPgcKind kind, const char *sql, int timeout_ms,
                         PGresult **out, PvError *err)
{
	PvPgConn *c = pv_pgconn_new(conninfo, kind, timeout_ms);
	PvStatus st = pv_pgconn_run(c, sql, timeout_ms, out, err);
	pv_pgconn_free(c);
	return st;
}

static PQconninfoOption *parse(const char *conninfo, PvError *err)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	if (!opts) {
		pv_error_set(err, PV_ERR_CONFIG, "invalid conninfo: %s", msg ? msg : "out of memory");
		/* strip libpq's trailing newline */
		size_t n = strlen(err ? err->msg : "");
		if (err && n && err->msg[n - 1] == '\n')
			err->msg[n - 1] = '\0';
		PQfreemem(msg);
	}
	return opts;
}

PvStatus pv_pg_conninfo_target(const char *conninfo, char *host, size_t hostsize, int *port,
                               PvError *err)
{
	PQconninfoOption *opts = parse(conninfo, err);
	const char *h = NULL, *ha = NULL, *p = NULL;
	if (!opts)
		return PV_ERR_CONFIG;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			h = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			ha = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			p = o->val;
	}
	const char *use = h ? h : ha;
	PvStatus st = PV_OK;
	if (!use) {
		st = pv_error_set(err, PV_ERR_CONFIG, "conninfo names no host");
		goto out;
	}
	size_t n = strcspn(use, ",");
	if (n >= hostsize)
		n = hostsize - 1;
	memcpy(host, use, n);
	host[n] = '\0';
	*port = p ? atoi(p) : 5432;
	if (*port <= 0 || *port > 65535)
		st = pv_error_set(err, PV_ERR_CONFIG, "conninfo has an invalid port \"%s\"", p);
out:
	PQconninfoFree(opts);
	return st;
}

static void append_kv(PvBuf *b, const char *k, const char *v)
{
	if (b->len)
		pv_buf_putc(b, ' ');
	pv_buf_printf(b, "%s='", k);
	for (const char *p = v; *p; p++) {
		if (*p == '\'' || *p == '\\')
			pv_buf_putc(b, '\\');
		pv_buf_putc(b, *p);
	}
	pv_buf_putc(b, '\'');
}

PvStatus pv_pg_conninfo_retarget(const char *conninfo, const char *host, int port, char **out,
                                 PvError *err)
{
	PQconninfoOption *opts = parse(conninfo, err);
	PvBuf b = {0};
	char ps[16];
	if (!opts)
		return PV_ERR_CONFIG;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0 ||
		    strcmp(o->keyword, "port") == 0)
			continue;
		append_kv(&b, o->keyword, o->val);
	}
	PQconninfoFree(opts);
	append_kv(&b, "host", host);
	snprintf(ps, sizeof ps, "%d", port);
	append_kv(&b, "port", ps);
	*out = pv_buf_steal(&b);
	return PV_OK;
}
