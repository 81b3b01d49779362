#include "pgvigild/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/health.h"
#include "pgvigild/daemon.h"

/* ---------------------------------------------------------------- rendering (pure) */

static const struct {
	const char *name, *type, *help;
} families[] = {
#define PV_X(name, type, help) {#name, #type, help},
    PV_METRICS_LIST(PV_X)
#undef PV_X
};

const char *const *pv_metrics_names(void)
{
	static const char *names[sizeof families / sizeof families[0] + 1];
	if (!names[0])
		for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
			names[i] = families[i].name;
	return names;
}

static void family(PvBuf *out, const char *name)
{
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
		if (strcmp(families[i].name, name) == 0) {
			pv_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, families[i].help,
			              name, families[i].type);
			return;
		}
	abort(); /* a name not in PV_METRICS_LIST: a programmer error */
}

/* Label values: names are [A-Za-z0-9_.-], but escape anyway ('\\', '"', newline). */
static void label(PvBuf *out, const char *key, const char *val, bool first)
{
	pv_buf_printf(out, "%s%s=\"", first ? "" : ",", key);
	for (const char *p = val ? val : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			pv_buf_putc(out, '\\');
		if (*p == '\n')
			pv_buf_puts(out, "\\n");
		else
			pv_buf_putc(out, *p);
	}
	pv_buf_putc(out, '"');
}

static void sample(PvBuf *out, const char *name, const char *node, int64_t v)
{
	pv_buf_puts(out, name);
	if (node) {
		pv_buf_putc(out, '{');
		label(out, "node", node, true);
		pv_buf_putc(out, '}');
	}
	pv_buf_printf(out, " %" PRId64 "\n", v);
}

static int64_t lag_of(const PvClusterView *v, int i)
{
	const PvNodeObs *o = &v->nodes[i].obs;
	uint64_t plsn = v->primary >= 0 ? v->nodes[v->primary].obs.current_lsn : 0;
	uint64_t lsn = pv_core_standby_lsn(o);
	if (i == v->primary || o->result != PV_PROBE_UP || !o->in_recovery || !plsn || !lsn)
		return -1;
	return plsn > lsn ? (int64_t)(plsn - lsn) : 0;
}

static bool answers_as_primary(const PvClusterView *v, int i)
{
	return i == v->primary && v->nodes[i].obs.result == PV_PROBE_UP &&
	       !v->nodes[i].obs.in_recovery;
}

void pv_metrics_health_snapshot(const PvDaemon *d, PvHealthSnapshot *s)
{
	const PvClusterView *v = &d->view;
	memset(s, 0, sizeof *s);
	s->nnodes = v->nnodes;
	for (int i = 0; i < v->nnodes && i < PV_MAX_NODES; i++) {
		const PvNodeView *n = &v->nodes[i];
		PvHealthNode *h = &s->nodes[i];
		pv_strlcpy(h->name, n->name, sizeof h->name);
		h->up = n->obs.result == PV_PROBE_UP;
		h->in_recovery = h->up && n->obs.in_recovery;
		h->streaming = h->in_recovery && n->obs.receiver_streaming;
		h->is_primary = answers_as_primary(v, i);
		h->lag_bytes = lag_of(v, i);
	}
}

typedef int64_t (*NodeValue)(const PvDaemon *d, int i, bool *present);

#define NODE_VALUE(fn, expr)                                                                       \
	static int64_t fn(const PvDaemon *d, int i, bool *present)                                 \
	{                                                                                          \
		const PvNodeView *n = &d->view.nodes[i];                                           \
		const PvNodeObs *o = &n->obs;                                                      \
		(void)n;                                                                           \
		(void)o;                                                                           \
		(void)present;                                                                     \
		expr;                                                                              \
	}

NODE_VALUE(v_up, return o->result == PV_PROBE_UP)
NODE_VALUE(v_is_primary, return answers_as_primary(&d->view, i))
NODE_VALUE(v_in_recovery, return o->result == PV_PROBE_UP && o->in_recovery)
NODE_VALUE(v_streaming, return o->result == PV_PROBE_UP && o->in_recovery && o->receiver_streaming)
NODE_VALUE(v_lag, int64_t l = lag_of(&d->view, i); *present = l >= 0; return l)
NODE_VALUE(v_timeline, *present = o->timeline > 0; return o->timeline)
NODE_VALUE(v_priority, return n->priority)
NODE_VALUE(v_latency, *present = o->result != PV_PROBE_NONE; return o->latency_ms)
NODE_VALUE(v_failures, return n->consecutive_failures)
NODE_VALUE(v_failed, return n->failed)
NODE_VALUE(v_clients, *present = o->result == PV_PROBE_UP; return o->clients)
NODE_VALUE(v_maxconn, *present = o->result == PV_PROBE_UP && o->max_connections > 0;
           return o->max_connections)
NODE_VALUE(v_waiters, *present = o->result == PV_PROBE_UP; return o->lock_waiters)
NODE_VALUE(v_oldest_wait, *present = o->result == PV_PROBE_UP;
           return o->oldest_lock_wait_ms > 0 ? o->oldest_lock_wait_ms : 0)
NODE_VALUE(v_commit, *present = n->ncommit > 0 && i == d->view.primary; return n->commit_ms[0])
NODE_VALUE(v_hb_age, *present = n->heartbeat_age_ms >= 0 && o->in_recovery;
           return n->heartbeat_age_ms)
NODE_VALUE(v_archive, *present = o->result == PV_PROBE_UP; return o->archive_failing)

static void node_family(PvBuf *out, const PvDaemon *d, const char *name, NodeValue fn)
{
	bool any = false;
	for (int i = 0; i < d->view.nnodes; i++) {
		bool present = true;
		int64_t v = fn(d, i, &present);
		if (!present)
			continue;
		if (!any)
			family(out, name);
		any = true;
		sample(out, name, d->view.nodes[i].name, v);
	}
}

void pv_metrics_render(const PvDaemon *d, const PvMetricsCounters *c, int64_t now_ms, PvBuf *out)
{
	const PvClusterView *v = &d->view;

	family(out, "pgvigil_info");
	pv_buf_puts(out, "pgvigil_info{");
	label(out, "cluster", d->cfg->cluster_name, true);
	label(out, "mode", pv_failover_mode_name(d->cfg->failover_mode), false);
	pv_buf_puts(out, "} 1\n");
	family(out, "pgvigil_start_time_seconds");
	pv_buf_printf(out, "pgvigil_start_time_seconds %" PRId64 ".%06" PRId64 "\n",
	              c->start_wall_us / 1000000, c->start_wall_us % 1000000);
	family(out, "pgvigil_verdict");
	pv_buf_puts(out, "pgvigil_verdict{");
	label(out, "verdict", pv_verdict_name(d->last_verdict), true);
	pv_buf_puts(out, "} 1\n");
	family(out, "pgvigil_primary_known");
	sample(out, "pgvigil_primary_known", NULL, v->primary >= 0);
	family(out, "pgvigil_incident_open");
	sample(out, "pgvigil_incident_open", NULL, d->incident[0] != '\0');
	family(out, "pgvigil_incident_open_seconds");
	int64_t age = d->incident[0] && c->incident_open_ms ? now_ms - c->incident_open_ms : 0;
	pv_buf_printf(out, "pgvigil_incident_open_seconds %" PRId64 ".%03" PRId64 "\n", age / 1000,
	              age % 1000);
	family(out, "pgvigil_incidents_total");
	sample(out, "pgvigil_incidents_total", NULL, c->incidents);
	family(out, "pgvigil_failovers_total");
	sample(out, "pgvigil_failovers_total", NULL, c->failovers);
	if (c->last_failover_ms >= 0) {
		family(out, "pgvigil_last_failover_duration_ms");
		sample(out, "pgvigil_last_failover_duration_ms", NULL, c->last_failover_ms);
	}
	if (c->last_failover_wall_us) {
		family(out, "pgvigil_last_failover_timestamp_seconds");
		pv_buf_printf(
		    out, "pgvigil_last_failover_timestamp_seconds %" PRId64 ".%06" PRId64 "\n",
		    c->last_failover_wall_us / 1000000, c->last_failover_wall_us % 1000000);
	}
	family(out, "pgvigil_reloads_total");
	sample(out, "pgvigil_reloads_total", NULL, c->reloads);
	family(out, "pgvigil_journal_last_seq");
	sample(out, "pgvigil_journal_last_seq", NULL, pv_journal_last_seq(d->journal));

	node_family(out, d, "pgvigil_node_up", v_up);
	node_family(out, d, "pgvigil_node_is_primary", v_is_primary);
	node_family(out, d, "pgvigil_node_in_recovery", v_in_recovery);
	node_family(out, d, "pgvigil_node_streaming", v_streaming);
	node_family(out, d, "pgvigil_node_lag_bytes", v_lag);
	node_family(out, d, "pgvigil_node_timeline", v_timeline);
	node_family(out, d, "pgvigil_node_priority", v_priority);
	node_family(out, d, "pgvigil_probe_latency_ms", v_latency);
	node_family(out, d, "pgvigil_node_consecutive_failures", v_failures);
	node_family(out, d, "pgvigil_node_failed_primary", v_failed);
	bool any = false;
	for (int i = 0; i < v->nnodes; i++) {
		if (!d->health_known[i])
			continue;
		if (!any)
			family(out, "pgvigil_node_health");
		any = true;
		pv_buf_puts(out, "pgvigil_node_health{");
		label(out, "node", v->nodes[i].name, true);
		label(out, "health", pv_health_name(d->health[i].health), false);
		pv_buf_puts(out, "} 1\n");
	}
	node_family(out, d, "pgvigil_node_clients", v_clients);
	node_family(out, d, "pgvigil_node_max_connections", v_maxconn);
	node_family(out, d, "pgvigil_node_lock_waiters", v_waiters);
	node_family(out, d, "pgvigil_node_oldest_lock_wait_ms", v_oldest_wait);
	node_family(out, d, "pgvigil_node_commit_latency_ms", v_commit);
	node_family(out, d, "pgvigil_node_heartbeat_age_ms", v_hb_age);
	node_family(out, d, "pgvigil_node_archive_failing", v_archive);
}

static const PvHealthNode *find(const PvHealthSnapshot *s, const char *name)
{
	for (int i = 0; i < s->nnodes; i++)
		if (strcmp(s->nodes[i].name, name) == 0)
			return &s->nodes[i];
	return NULL;
}

static bool replica_ok(const PvHealthNode *n, bool have_max, int64_t max_lag)
{
	if (!n->streaming)
		return false;
	return !have_max || (n->lag_bytes >= 0 && n->lag_bytes <= max_lag);
}

int pv_metrics_health(const PvHealthSnapshot *s, const char *path, const char *max_lag, PvBuf *body)
{
	bool primary = strncmp(path, "/primary", 8) == 0 && (path[8] == '\0' || path[8] == '/');
	bool replica = strncmp(path, "/replica", 8) == 0 && (path[8] == '\0' || path[8] == '/');
	bool have_max = false;
	int64_t max = 0;

	if (!primary && !replica)
		return 0;
	const char *name = path[8] == '/' ? path + 9 : NULL;
	if (max_lag) {
		char *end;
		errno = 0;
		long long m = strtoll(max_lag, &end, 10);
		if (errno || *end || end == max_lag || m < 0) {
			pv_buf_puts(body, "max_lag_bytes: not a number of bytes\n");
			return 400;
		}
		have_max = true;
		max = m;
	}
	if (name && *name) {
		const PvHealthNode *n = find(s, name);
		if (!n) {
			pv_buf_printf(body, "no node %s\n", name);
			return 404;
		}
		if (primary) {
			pv_buf_printf(body, "%s: %s\n", n->name,
			              n->is_primary    ? "primary"
			              : !n->up         ? "not answering"
			              : n->in_recovery ? "a standby"
			                               : "not the primary pgvigild knows");
			return n->is_primary ? 200 : 503;
		}
		bool ok = replica_ok(n, have_max, max);
		if (ok)
			pv_buf_printf(body, "%s: streaming standby\n", n->name);
		else if (n->streaming)
			pv_buf_printf(body, "%s: lag %s max_lag_bytes\n", n->name,
			              n->lag_bytes < 0 ? "unknown, over" : "over");
		else
			pv_buf_printf(body, "%s: %s\n", n->name,
			              !n->up            ? "not answering"
			              : !n->in_recovery ? "not a standby"
			                                : "not streaming");
		return ok ? 200 : 503;
	}
	int count = 0;
	for (int i = 0; i < s->nnodes; i++) {
		const PvHealthNode *n = &s->nodes[i];
		if (primary ? n->is_primary : replica_ok(n, have_max, max)) {
			pv_buf_printf(body, "%s\n", n->name);
			count++;
		}
	}
	if (!count)
		pv_buf_puts(body, primary ? "no primary\n" : "no streaming standby\n");
	return count ? 200 : 503;
}

PvStatus pv_metrics_parse_listen(const char *listen, struct sockaddr_storage *sa, socklen_t *len,
                                 PvError *err)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	const char *hs = listen, *he;

	if (!colon || !colon[1])
		return pv_error_set(err, PV_ERR_CONFIG, "metrics.listen \"%s\": expected HOST:PORT",
		                    listen);
	he = colon;
	if (listen[0] == '[') {
		hs = listen + 1;
		if (colon == listen || colon[-1] != ']')
			return pv_error_set(err, PV_ERR_CONFIG,
			                    "metrics.listen \"%s\": expected [IPV6]:PORT", listen);
		he = colon - 1;
	}
	const char *port = colon + 1;
	char *end;
	long p = strtol(port, &end, 10);
	if (*end || p < 1 || p > 65535)
		return pv_error_set(err, PV_ERR_CONFIG, "metrics.listen \"%s\": bad port \"%s\"",
		                    listen, port);
	if ((size_t)(he - hs) >= sizeof host || he == hs)
		return pv_error_set(err, PV_ERR_CONFIG, "metrics.listen \"%s\": bad host", listen);
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';

	memset(sa, 0, sizeof *sa);
	if (strcmp(host, "*") == 0) {
		struct sockaddr_in *in = (struct sockaddr_in *)sa;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_ANY);
		in->sin_port = htons((uint16_t)p);
		*len = sizeof *in;
		return PV_OK;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || !res)
		return pv_error_set(err, PV_ERR_CONFIG, "metrics.listen \"%s\": %s", listen,
		                    rc ? gai_strerror(rc) : "no address");
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return PV_OK;
}

/* ---------------------------------------------------------------- the extension */

typedef struct {
	struct MHD_Daemon *mhd;
	pthread_mutex_t lock;
	/* behind lock: what the HTTP thread answers from */
	char *text;
	size_t text_len;
	PvHealthSnapshot health;
	int64_t published_ms;
	/* the loop's own */
	PvMetricsCounters counters;
	PvBuf scratch;
} Metrics;

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *type,
                              const char *data, size_t len, int64_t age_ms)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	char age[32];
	snprintf(age, sizeof age, "%" PRId64, age_ms);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Pgvigil-View-Age-Ms", age);
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
	Metrics *m = cls;
	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (*upload_data_size)
		return MHD_NO; /* no request bodies here */
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		static const char msg[] = "only GET and HEAD\n";
		return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", msg, sizeof msg - 1,
		              0);
	}
	PvBuf body = {0};
	const char *max_lag =
	    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "max_lag_bytes");
	int status;

	pthread_mutex_lock(&m->lock);
	int64_t age = pv_clock_mono_ms() - m->published_ms;
	if (strcmp(url, "/metrics") == 0) {
		pv_buf_append(&body, m->text ? m->text : "", m->text ? m->text_len : 0);
		pv_buf_printf(
		    &body,
		    "# HELP pgvigil_view_age_seconds age of the daemon's view this answer "
		    "comes from\n# TYPE pgvigil_view_age_seconds gauge\n"
		    "pgvigil_view_age_seconds %" PRId64 ".%03" PRId64 "\n",
		    age / 1000, age % 1000);
		status = 200;
	} else {
		status = pv_metrics_health(&m->health, url, max_lag, &body);
	}
	pthread_mutex_unlock(&m->lock);

	enum MHD_Result ret;
	if (status == 0) {
		static const char idx[] = "pgvigild: /metrics /primary /primary/NODE /replica "
		                          "/replica/NODE[?max_lag_bytes=N]\n";
		ret = answer(conn, MHD_HTTP_NOT_FOUND, "text/plain", idx, sizeof idx - 1, age);
	} else if (strcmp(url, "/metrics") == 0) {
		ret = answer(conn, 200, "text/plain; version=0.0.4; charset=utf-8", body.data,
		             body.len, age);
	} else {
		ret = answer(conn, (unsigned)status, "text/plain", body.data ? body.data : "",
		             body.len, age);
	}
	pv_buf_free(&body);
	return ret;
}

static void publish(Metrics *m, PvDaemon *d)
{
	int64_t now = pv_clock_mono_ms();
	PvHealthSnapshot h;
	pv_buf_reset(&m->scratch);
	pv_metrics_render(d, &m->counters, now, &m->scratch);
	pv_metrics_health_snapshot(d, &h);
	char *text = pv_buf_steal(&m->scratch);
	size_t len = strlen(text);

	pthread_mutex_lock(&m->lock);
	char *old = m->text;
	m->text = text;
	m->text_len = len;
	m->health = h;
	m->published_ms = now;
	pthread_mutex_unlock(&m->lock);
	free(old);
}

static void *metrics_create(PvDaemon *d)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	PvError err;

	if (!d->cfg->metrics_enabled)
		return NULL;
	if (pv_metrics_parse_listen(d->cfg->metrics_listen, &sa, &salen, &err) != PV_OK) {
		pv_error("metrics: %s; running without the HTTP server", err.msg);
		return NULL;
	}
	Metrics *m = pv_xcalloc(1, sizeof *m);
	pthread_mutex_init(&m->lock, NULL);
	m->counters.start_wall_us = pv_clock_wall_us();
	m->counters.last_failover_ms = -1;
	publish(m, d);

	/* the server's thread takes no signals: they stay with the loop's self-pipe */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, m, MHD_OPTION_SOCK_ADDR,
	                          (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 64u,
	                          MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	int e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!m->mhd) {
		pv_error("metrics: cannot listen on %s: %s; running without the HTTP server",
		         d->cfg->metrics_listen, e ? strerror(e) : "libmicrohttpd failed to start");
		free(m->text);
		pthread_mutex_destroy(&m->lock);
		free(m);
		return NULL;
	}
	pv_info("metrics: listening on %s (/metrics, /primary, /replica)", d->cfg->metrics_listen);
	return m;
}

static void metrics_destroy(void *self)
{
	Metrics *m = self;
	MHD_stop_daemon(m->mhd);
	pthread_mutex_destroy(&m->lock);
	free(m->text);
	pv_buf_free(&m->scratch);
	free(m);
}

static void metrics_step(void *self, PvDaemon *d, const struct pollfd *fds, int nfds,
                         int64_t now_ms)
{
	(void)fds;
	(void)nfds;
	(void)now_ms;
	publish(self, d);
}

static void metrics_on_event(void *self, PvDaemon *d, PvDaemonEvent ev, int node)
{
	Metrics *m = self;
	PvMetricsCounters *c = &m->counters;
	int64_t now = pv_clock_mono_ms();
	(void)node;
	switch (ev) {
	case PV_DEV_INCIDENT_OPEN:
		c->incidents++;
		c->incident_open_ms = now;
		c->promoted_in_incident = false;
		break;
	case PV_DEV_PROMOTED:
		c->failovers++;
		c->promoted_in_incident = true;
		c->last_failover_wall_us = pv_clock_wall_us();
		break;
	case PV_DEV_INCIDENT_CLOSE:
		if (c->promoted_in_incident && c->incident_open_ms)
			c->last_failover_ms = now - c->incident_open_ms;
		c->incident_open_ms = 0;
		c->promoted_in_incident = false;
		break;
	case PV_DEV_RELOADED:
		c->reloads++;
		break;
	case PV_DEV_LOCK_CHAIN:
		break;
	}
	/* the loop may be about to block in a failover step: publish what it knows now */
	publish(m, d);
}

const PvExtension pv_metrics_extension = {
    .name = "metrics",
    .create = metrics_create,
    .destroy = metrics_destroy,
    .step = metrics_step,
    .on_event = metrics_on_event,
};
