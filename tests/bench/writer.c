/*
 * writer: a libpq write client that measures what a failover costs the application.
 *
 * It inserts one row (v = 1, 2, 3, ...: one value per attempt) every --interval-ms into
 * pgvigil_bench through a conninfo (normally PgBouncer), each attempt under a client-side
 * deadline: connection (PQconnectStartParams/PQconnectPoll), PQsendQuery and the result are all
 * driven by poll(), never a blocking call.  On any error or a missed deadline the connection is
 * dropped and the next attempt reconnects.  Every acknowledged v is remembered; at the end the
 * writer reconnects (retrying up to --verify-timeout-ms) and counts how many acknowledged values
 * are missing from the table.
 *
 * A conninfo naming several hosts (host=a,b,c port=...; hostaddr likewise) is split into one
 * target per host, and the writer connects to them in turn, each under its own deadline
 * (--host-timeout-ms, default --timeout-ms), keeping the first that accepts: libpq's
 * target_session_attrs, given to each target, rejects a host of the wrong kind.  libpq's own
 * multi-host walk cannot be used under a deadline: PQconnectPoll ignores connect_timeout, so a
 * frozen first host (the kernel completes the TCP handshake, nobody answers the startup packet)
 * would swallow every attempt.  The INSERT must then finish within --timeout-ms of the start of
 * the accepting host's turn.  With one host nothing changes: one deadline per attempt.
 *
 * --mark-file F: the demo/bench writes the kill's CLOCK_REALTIME (ns) into F when it kills the
 * primary.  The outage is measured from that instant to the first write that succeeded after the
 * first failure following it (so a write acknowledged in the microseconds before the kill landed
 * does not count as recovery).
 *
 * The last line on stdout is machine-readable:
 *   writer: ok=N failed=N first_ok_after_kill_ms=X missing_acked=N max_gap_ms=Y
 * X is -1 without a mark or without a successful write after it; missing_acked is -1 when the
 * verification failed (exit status 1 then).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libpq-fe.h>

#define DEFAULT_CONNINFO "host=127.0.0.1 port=54303 dbname=app user=postgres"

typedef struct {
	int64_t start_real_ns;
	int64_t end_real_ns;
	int64_t end_mono_ms;
	int v;
	bool ok;
} Attempt;

typedef struct {
	const char *conninfo;
	int interval_ms;
	int duration_s;
	int timeout_ms;
	int host_timeout_ms; /* 0: timeout_ms */
	int verify_timeout_ms;
	const char *mark_file;
	bool truncate;
	bool quiet;
} Options;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ms(void) { return clock_ns(CLOCK_MONOTONIC) / 1000000; }
static int64_t real_ns(void) { return clock_ns(CLOCK_REALTIME); }

static int64_t start_mono;

static void note(const Options *o, const char *fmt, const char *arg)
{
	if (o->quiet)
		return;
	fprintf(stderr, "writer: +%.3fs ", (double)(mono_ms() - start_mono) / 1000.0);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
}

/* One line of a libpq error message (they end with newlines, sometimes several). */
static const char *one_line(const char *msg, char *buf, size_t size)
{
	snprintf(buf, size, "%s", msg && *msg ? msg : "unknown error");
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/*
 * Waits until fd is ready for events or the deadline passes.  1 ready, 0 deadline, -1 error.
 * A signal ends the wait early only when stop is requested and honour_stop is set.
 */
static int wait_fd(int fd, short events, int64_t deadline_ms, bool honour_stop)
{
	for (;;) {
		int64_t left = deadline_ms - mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, (int)left);
		if (r > 0)
			return 1;
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return -1;
		if (honour_stop && stop_requested)
			return 0;
	}
}

/* NOTICEs ("relation already exists, skipping") are not worth a line. */
static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Connects with PQconnectPoll under a deadline.  NULL on failure, with the reason in err. */
static PGconn *connect_deadline(const char *const *kw, const char *const *val, int expand, int64_t deadline_ms,
                                char *err, size_t errsize)
{
	PGconn *conn = PQconnectStartParams(kw, val, expand);
	if (!conn) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	if (PQstatus(conn) == CONNECTION_BAD) {
		one_line(PQerrorMessage(conn), err, errsize);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, ignore_notice, NULL);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	for (;;) {
		if (st == PGRES_POLLING_OK)
			return conn;
		if (st == PGRES_POLLING_FAILED) {
			one_line(PQerrorMessage(conn), err, errsize);
			PQfinish(conn);
			return NULL;
		}
		/* The socket may change between PQconnectPoll calls: ask for it every time. */
		int r = wait_fd(PQsocket(conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline_ms, false);
		if (r <= 0) {
			snprintf(err, errsize, r == 0 ? "connect deadline passed" : "poll: %s", strerror(errno));
			PQfinish(conn);
			return NULL;
		}
		st = PQconnectPoll(conn);
	}
}

/* One place to connect to: keywords and values for PQconnectStartParams, and a label. */
typedef struct {
	const char **kw;
	const char **val;
	int expand;
	char *label;
} Target;

static Target *targets;
static int ntargets;

/* The n-th comma-separated element of list (a new string; "" when list has fewer). */
static char *list_item(const char *list, int n)
{
	const char *p = list ? list : "";
	for (int i = 0; i < n && p; i++) {
		p = strchr(p, ',');
		if (p)
			p++;
	}
	if (!p)
		return strdup("");
	size_t len = strcspn(p, ",");
	char *r = malloc(len + 1);
	if (!r)
		abort();
	memcpy(r, p, len);
	r[len] = '\0';
	return r;
}

static int list_count(const char *list)
{
	if (!list || !*list)
		return 0;
	int n = 1;
	for (const char *p = list; *p; p++)
		n += *p == ',';
	return n;
}

/*
 * Splits conninfo into targets: one per host when it names several (host, hostaddr and port
 * lists as libpq reads them), else one target that is the conninfo itself.  False on a conninfo
 * libpq cannot parse or lists of mismatched lengths.
 */
static bool make_targets(const char *conninfo)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
	if (!opts) {
		fprintf(stderr, "writer: bad conninfo: %s", errmsg ? errmsg : "out of memory\n");
		PQfreemem(errmsg);
		return false;
	}
	const char *host = NULL, *hostaddr = NULL, *port = NULL;
	size_t nopts = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		nopts++;
		if (!o->val)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
	}
	int nh = list_count(host), na = list_count(hostaddr), np = list_count(port);
	int n = nh > na ? nh : na;
	if (n <= 1) {
		PQconninfoFree(opts);
		targets = calloc(1, sizeof *targets);
		if (!targets)
			abort();
		static const char *kw[] = {"dbname", "fallback_application_name", NULL};
		static const char *val[] = {NULL, "pgvigil-writer", NULL};
		val[0] = conninfo;
		targets[0] = (Target){.kw = kw, .val = val, .expand = 1, .label = strdup(host ? host : "default")};
		ntargets = 1;
		return true;
	}
	if ((nh && na && nh != na) || (np > 1 && np != n)) {
		fprintf(stderr, "writer: bad conninfo: host, hostaddr and port lists differ in length\n");
		PQconninfoFree(opts);
		return false;
	}
	targets = calloc((size_t)n, sizeof *targets);
	if (!targets)
		abort();
	for (int i = 0; i < n; i++) {
		Target *t = &targets[i];
		t->kw = calloc(nopts + 2, sizeof *t->kw);
		t->val = calloc(nopts + 2, sizeof *t->val);
		if (!t->kw || !t->val)
			abort();
		size_t k = 0;
		char *h = NULL, *p = NULL;
		for (PQconninfoOption *o = opts; o->keyword; o++) {
			if (!o->val || !*o->val)
				continue;
			char *v;
			if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0)
				v = list_item(o->val, i);
			else if (strcmp(o->keyword, "port") == 0)
				v = list_item(o->val, np == 1 ? 0 : i);
			else
				v = strdup(o->val);
			if (!v)
				abort();
			if (!*v) {
				free(v);
				continue;
			}
			if (strcmp(o->keyword, "port") == 0)
				p = v;
			else if (strcmp(o->keyword, "host") == 0 || (!h && strcmp(o->keyword, "hostaddr") == 0))
				h = v;
			t->kw[k] = strdup(o->keyword);
			t->val[k++] = v;
		}
		t->kw[k] = "fallback_application_name";
		t->val[k++] = "pgvigil-writer";
		t->kw[k] = NULL;
		t->val[k] = NULL;
		size_t len = strlen(h ? h : "default") + strlen(p ? p : "default") + 2;
		t->label = malloc(len);
		if (!t->label)
			abort();
		snprintf(t->label, len, "%s:%s", h ? h : "default", p ? p : "default");
	}
	PQconninfoFree(opts);
	ntargets = n;
	return true;
}

/*
 * Connects to the first target that accepts, in order, each under its own deadline: host_ms from
 * the start of its turn, never past limit_ms.  *started: the start of the accepting target's turn;
 * *which: its index.  NULL when none accepted, with every target's reason in err.
 */
static PGconn *connect_any(int64_t host_ms, int64_t limit_ms, int64_t *started, int *which, char *err,
                           size_t errsize)
{
	size_t len = 0;
	err[0] = '\0';
	for (int i = 0; i < ntargets; i++) {
		int64_t now = mono_ms();
		if (i > 0 && now >= limit_ms)
			break;
		int64_t deadline = now + host_ms < limit_ms ? now + host_ms : limit_ms;
		char one[256];
		PGconn *conn = connect_deadline(targets[i].kw, targets[i].val, targets[i].expand, deadline, one, sizeof one);
		if (conn) {
			*started = now;
			*which = i;
			return conn;
		}
		if (ntargets == 1)
			snprintf(err, errsize, "%s", one);
		else if (len < errsize)
			len += (size_t)snprintf(err + len, errsize - len, "%s%s: %s", i ? "; " : "", targets[i].label, one);
	}
	return NULL;
}

/*
 * Runs one statement under a deadline.  Returns true when every result was OK; the first tuple's
 * first column (if any) goes to value.  On false the connection must be dropped.
 */
static bool exec_deadline(PGconn *conn, const char *sql, int64_t deadline_ms, char *value, size_t vsize, char *err,
                          size_t errsize)
{
	bool ok = true;
	bool got = false;
	if (value && vsize)
		value[0] = '\0';
	if (!PQsendQuery(conn, sql)) {
		one_line(PQerrorMessage(conn), err, errsize);
		return false;
	}
	for (;;) {
		int f = PQflush(conn);
		if (f == 0)
			break;
		if (f < 0 || wait_fd(PQsocket(conn), POLLOUT, deadline_ms, false) <= 0) {
			snprintf(err, errsize, f < 0 ? "send failed" : "deadline passed while sending");
			return false;
		}
	}
	for (;;) {
		while (!PQisBusy(conn)) {
			PGresult *res = PQgetResult(conn);
			if (!res)
				return ok && got;
			got = true;
			ExecStatusType s = PQresultStatus(res);
			if (s == PGRES_TUPLES_OK) {
				if (value && vsize && PQntuples(res) > 0 && PQnfields(res) > 0)
					snprintf(value, vsize, "%s", PQgetvalue(res, 0, 0));
			} else if (s != PGRES_COMMAND_OK) {
				if (ok)
					one_line(PQresultErrorMessage(res), err, errsize);
				ok = false;
			}
			PQclear(res);
		}
		int r = wait_fd(PQsocket(conn), POLLIN, deadline_ms, false);
		if (r <= 0) {
			snprintf(err, errsize, r == 0 ? "deadline passed waiting for the result" : "poll failed");
			return false;
		}
		if (!PQconsumeInput(conn)) {
			one_line(PQerrorMessage(conn), err, errsize);
			return false;
		}
	}
}

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: writer [OPTIONS]\n"
	        "Inserts one row into pgvigil_bench every interval, each attempt under a deadline,\n"
	        "reconnecting after any error; then counts acknowledged rows missing from the table.\n"
	        "  -c, --conninfo STR         where to write (default \"%s\")\n"
	        "  -i, --interval-ms N        one attempt every N ms (default 20)\n"
	        "  -d, --duration S           stop after S seconds; 0 = until SIGTERM/SIGINT (default 0)\n"
	        "  -t, --timeout-ms N         deadline of one attempt, connect included (default 1000)\n"
	        "  -H, --host-timeout-ms N    several hosts in the conninfo: each host's connect deadline;\n"
	        "                             the INSERT must finish within -t of the start of the turn of\n"
	        "                             the host that accepted (default: -t)\n"
	        "  -m, --mark-file F          F holds the kill's CLOCK_REALTIME in ns once it exists\n"
	        "  -V, --verify-timeout-ms N  how long the final check may retry (default 30000)\n"
	        "      --truncate             empty pgvigil_bench before writing\n"
	        "  -q, --quiet                no progress lines on stderr\n"
	        "  -h, --help\n"
	        "Last stdout line: writer: ok=N failed=N first_ok_after_kill_ms=X missing_acked=N max_gap_ms=Y\n",
	        DEFAULT_CONNINFO);
}

static bool parse_int(const char *s, int min, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < min || v > 100000000)
		return false;
	*out = (int)v;
	return true;
}

static bool parse_options(int argc, char **argv, Options *o)
{
	static const struct option longopts[] = {
	    {"conninfo", required_argument, NULL, 'c'},     {"interval-ms", required_argument, NULL, 'i'},
	    {"duration", required_argument, NULL, 'd'},     {"timeout-ms", required_argument, NULL, 't'},
	    {"mark-file", required_argument, NULL, 'm'},    {"verify-timeout-ms", required_argument, NULL, 'V'},
	    {"truncate", no_argument, NULL, 'T'},           {"quiet", no_argument, NULL, 'q'},
	    {"host-timeout-ms", required_argument, NULL, 'H'},
	    {"help", no_argument, NULL, 'h'},               {NULL, 0, NULL, 0},
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:i:d:t:H:m:V:qh", longopts, NULL)) != -1) {
		bool good = true;
		switch (ch) {
		case 'c': o->conninfo = optarg; break;
		case 'i': good = parse_int(optarg, 1, &o->interval_ms); break;
		case 'd': good = parse_int(optarg, 0, &o->duration_s); break;
		case 't': good = parse_int(optarg, 10, &o->timeout_ms); break;
		case 'H': good = parse_int(optarg, 10, &o->host_timeout_ms); break;
		case 'm': o->mark_file = optarg; break;
		case 'V': good = parse_int(optarg, 0, &o->verify_timeout_ms); break;
		case 'T': o->truncate = true; break;
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout); exit(0);
		default: return false;
		}
		if (!good) {
			fprintf(stderr, "writer: bad value \"%s\"\n", optarg);
			return false;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "writer: unexpected argument \"%s\"\n", argv[optind]);
		return false;
	}
	return true;
}

/* The kill instant from the mark file: its content (ns), else its mtime.  0 while absent. */
static int64_t read_mark(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return 0;
	FILE *fp = fopen(path, "r");
	long long ns = 0;
	if (fp) {
		if (fscanf(fp, "%lld", &ns) != 1)
			ns = 0;
		fclose(fp);
	}
	if (ns > 0)
		return (int64_t)ns;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static const char create_sql[] = "CREATE TABLE IF NOT EXISTS pgvigil_bench ("
                                 "id bigserial PRIMARY KEY, v int, ts timestamptz DEFAULT now())";

/* Counts acknowledged values missing from the table; -1 when it could not be checked in time. */
static long verify(const Options *o, const Attempt *att, size_t n, size_t nok)
{
	if (nok == 0)
		return 0;
	size_t cap = 64 + nok * 12;
	char *sql = malloc(cap);
	if (!sql)
		abort();
	size_t len = (size_t)snprintf(sql, cap, "SELECT count(*) FROM unnest('{");
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		if (!att[i].ok)
			continue;
		len += (size_t)snprintf(sql + len, cap - len, "%s%d", first ? "" : ",", att[i].v);
		first = false;
	}
	snprintf(sql + len, cap - len,
	         "}'::int[]) AS a(v) WHERE NOT EXISTS (SELECT 1 FROM pgvigil_bench b WHERE b.v = a.v)");

	long missing = -1;
	int64_t deadline = mono_ms() + o->verify_timeout_ms;
	char err[512] = "";
	char value[64];
	int tries = 0;
	do {
		if (tries++ > 0) {
			struct timespec ts = {0, 200 * 1000000L};
			nanosleep(&ts, NULL);
		}
		int64_t started;
		int which;
		/* several hosts: a frozen one must not take the whole of -V from the others */
		int64_t host_ms = ntargets > 1 && o->host_timeout_ms < 2500 ? 2 * (int64_t)o->host_timeout_ms : 5000;
		PGconn *conn = connect_any(host_ms, deadline, &started, &which, err, sizeof err);
		if (!conn)
			continue;
		int64_t att_deadline = started + 5000;
		if (att_deadline > deadline)
			att_deadline = deadline;
		if (exec_deadline(conn, sql, att_deadline, value, sizeof value, err, sizeof err))
			missing = strtol(value, NULL, 10);
		PQfinish(conn);
	} while (missing < 0 && mono_ms() < deadline);
	if (missing < 0)
		fprintf(stderr, "writer: verification failed: %s\n", err);
	free(sql);
	return missing;
}

int main(int argc, char **argv)
{
	Options o = {
	    .conninfo = DEFAULT_CONNINFO,
	    .interval_ms = 20,
	    .duration_s = 0,
	    .timeout_ms = 1000,
	    .verify_timeout_ms = 30000,
	};
	if (!parse_options(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	if (o.host_timeout_ms == 0)
		o.host_timeout_ms = o.timeout_ms;
	if (!make_targets(o.conninfo))
		return 2;

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	size_t cap = 4096, n = 0, nok = 0, nfail = 0;
	Attempt *att = malloc(cap * sizeof *att);
	if (!att)
		abort();

	start_mono = mono_ms();
	int64_t end_mono = o.duration_s > 0 ? start_mono + (int64_t)o.duration_s * 1000 : INT64_MAX;
	int64_t next = start_mono;
	int64_t kill_ns = 0;
	int64_t last_ok_mono = -1, max_gap = 0;
	PGconn *conn = NULL;
	bool created = false, failing = false;
	int host = -1; /* the target connected last */
	char err[512];

	while (!stop_requested && mono_ms() < end_mono) {
		int64_t now = mono_ms();
		if (now < next) {
			poll(NULL, 0, (int)(next - now)); /* EINTR on a signal: the loop condition sees it */
			continue;
		}
		next += o.interval_ms;
		if (next < now)
			next = now; /* late (a long attempt): no burst to catch up */
		if (o.mark_file && kill_ns == 0 && (kill_ns = read_mark(o.mark_file)) != 0)
			note(&o, "kill mark seen%s", "");

		if (n == cap) {
			cap *= 2;
			att = realloc(att, cap * sizeof *att);
			if (!att)
				abort();
		}
		Attempt *a = &att[n];
		a->v = (int)(n + 1);
		a->start_real_ns = real_ns();
		int64_t deadline = now + o.timeout_ms;
		bool ok = false;
		err[0] = '\0';

		if (!conn) {
			int64_t started;
			int which;
			conn = connect_any(ntargets > 1 ? o.host_timeout_ms : o.timeout_ms, INT64_MAX, &started, &which, err,
			                   sizeof err);
			if (conn) {
				deadline = started + o.timeout_ms;
				if (ntargets > 1 && which != host)
					note(&o, "connected to %s", targets[which].label);
				host = which;
			}
		}
		if (conn && !created) {
			created = exec_deadline(conn, create_sql, deadline, NULL, 0, err, sizeof err) &&
			          (!o.truncate || exec_deadline(conn, "TRUNCATE pgvigil_bench", deadline, NULL, 0, err, sizeof err));
			if (!created) {
				PQfinish(conn);
				conn = NULL;
			}
		}
		if (conn) {
			char sql[96];
			snprintf(sql, sizeof sql, "INSERT INTO pgvigil_bench (v) VALUES (%d)", a->v);
			ok = exec_deadline(conn, sql, deadline, NULL, 0, err, sizeof err);
			if (!ok) {
				PQfinish(conn);
				conn = NULL;
			}
		}
		a->ok = ok;
		a->end_real_ns = real_ns();
		a->end_mono_ms = mono_ms();
		n++;
		if (ok) {
			nok++;
			if (last_ok_mono >= 0 && a->end_mono_ms - last_ok_mono > max_gap)
				max_gap = a->end_mono_ms - last_ok_mono;
			last_ok_mono = a->end_mono_ms;
			if (failing)
				note(&o, "writes succeed again%s", "");
			failing = false;
		} else {
			nfail++;
			if (!failing)
				note(&o, "write failed: %s", err);
			failing = true;
		}
	}
	if (conn)
		PQfinish(conn);
	if (o.mark_file && kill_ns == 0)
		kill_ns = read_mark(o.mark_file);

	/* Recovery: the first success after the first failure that ended after the kill. */
	long long first_ok_ms = -1;
	if (kill_ns > 0) {
		size_t from = n, i;
		for (i = 0; i < n; i++)
			if (!att[i].ok && att[i].end_real_ns >= kill_ns) {
				from = i;
				break;
			}
		if (from == n) /* nothing failed after the kill: the first write started after it */
			for (i = 0; i < n; i++)
				if (att[i].start_real_ns >= kill_ns) {
					from = i;
					break;
				}
		for (i = from; i < n; i++)
			if (att[i].ok) {
				first_ok_ms = (att[i].end_real_ns - kill_ns) / 1000000;
				break;
			}
	}

	stop_requested = 0;
	long missing = verify(&o, att, n, nok);
	printf("writer: ok=%zu failed=%zu first_ok_after_kill_ms=%lld missing_acked=%ld max_gap_ms=%" PRId64 "\n", nok,
	       nfail, first_ok_ms, missing, max_gap);
	fflush(stdout);
	free(att);
	return missing < 0 ? 1 : 0;
}
