/*
 * test_ops: the interfaces operators plug into, without a cluster: the journal event list
 * (journal/events.h), sd_notify (io/sdnotify.c) and the systemd extension (notify.c), the
 * metrics rendering and health decisions (metrics.c), and hooks (hooks.c) run for real through
 * io/proc against small shell scripts, on a PvDaemon built by hand.
 *
 * The HTTP server itself is tested with curl against a running daemon (t_ops_metrics.sh).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "io/sdnotify.h"
#include "journal/events.h"
#include "journal/journal_read.h"
#include "pgvigild/daemon.h"
#include "pgvigild/hooks.h"
#include "pgvigild/metrics.h"
#include "pgvigild/notify.h"

static char tmpdir[64];

static char *tmp_path(const char *name)
{
	return pv_xasprintf("%s/%s", tmpdir, name);
}

static void spit(const char *path, const char *text, mode_t mode)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return NULL;
	PvBuf b = {0};
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
		pv_buf_append(&b, chunk, n);
	fclose(fp);
	return pv_buf_steal(&b);
}

/* A daemon state with cfg loaded from extra settings, a journal, and a built view. */
static void daemon_up(PvDaemon *d, const char *journal_name, const char *extra)
{
	char *conf = tmp_path("pgvigil.conf");
	char *journal = tmp_path(journal_name);
	char *text =
	    pv_xasprintf("cluster = { name = \"unit\"; nodes = (\n"
	                 "  { name = \"n0\"; conninfo = \"host=127.0.0.1 port=1\"; },\n"
	                 "  { name = \"n1\"; conninfo = \"host=127.0.0.1 port=2\"; },\n"
	                 "  { name = \"n2\"; conninfo = \"host=127.0.0.1 port=3\"; } ); };\n"
	                 "journal = { path = \"%s\"; };\n%s",
	                 journal, extra);
	spit(conf, text, 0600);
	PvBuf errors = {0};
	memset(d, 0, sizeof *d);
	if (pv_config_load(conf, &d->cfg, &errors) != PV_OK)
		fail_msg("config: %s", errors.data);
	PvError err;
	if (pv_journal_open(journal, &d->journal, &err) != PV_OK)
		fail_msg("journal: %s", err.msg);
	d->view.primary = -1;
	pv_daemon_build_view(&d->view, d->cfg);
	free(conf);
	free(journal);
	free(text);
}

static void daemon_down(PvDaemon *d)
{
	pv_journal_free(d->journal);
	pv_config_free(d->cfg);
}

/* ---------------------------------------------------------------- events */

static void test_events(void **state)
{
	(void)state;
	assert_string_equal(pv_journal_event_name(PV_EV_HOOK), "hook");
	assert_string_equal(pv_journal_event_phase(PV_EV_PROMOTE), "begin/end");
	assert_string_equal(pv_journal_event_name((PvJournalEvent)-1), "invalid");
	assert_int_equal(pv_journal_event_parse("nonsense"), -1);
	assert_int_equal(pv_journal_event_parse(NULL), -1);
	for (int i = 0; i < PV_EV_COUNT; i++) {
		const char *n = pv_journal_event_name((PvJournalEvent)i);
		assert_int_equal(pv_journal_event_parse(n), i);
		assert_true(strlen(pv_journal_event_meaning((PvJournalEvent)i)) > 5);
		assert_int_equal(strspn(n, "abcdefghijklmnopqrstuvwxyz-"), strlen(n));
	}
	/* the verdicts daemon.c journals under their own names */
	assert_true(pv_journal_event_parse(pv_verdict_name(PV_VERDICT_SPLIT_BRAIN)) >= 0);
	assert_true(pv_journal_event_parse(pv_verdict_name(PV_VERDICT_NO_PRIMARY)) >= 0);
	assert_true(pv_journal_event_parse(pv_verdict_name(PV_VERDICT_WEDGED)) >= 0);
	assert_true(pv_journal_event_parse(pv_verdict_name(PV_VERDICT_LOCKED)) >= 0);
}

/* ---------------------------------------------------------------- sd_notify */

/* Binds a datagram socket at name ("@abstract" or a path). */
static int listen_dgram(const char *name)
{
	struct sockaddr_un sa;
	size_t n = strlen(name);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, name, n);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
	                      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
	                 0);
	return fd;
}

static char *recv_within(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, ms) != 1)
		return NULL;
	char buf[1024];
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return pv_xstrdup(buf);
}

static char *recv_one(int fd)
{
	return recv_within(fd, 2000);
}

static void test_sd_notify(void **state)
{
	(void)state;
	PvError err = {0};
	unsetenv("NOTIFY_SOCKET");
	assert_false(pv_sd_enabled());
	assert_int_equal(pv_sd_notify(NULL, "READY=1", &err), PV_OK); /* nothing to do */

	char *abs = pv_xasprintf("@pgvigil-test-%ld", (long)getpid());
	int fd = listen_dgram(abs);
	setenv("NOTIFY_SOCKET", abs, 1);
	assert_true(pv_sd_enabled());
	assert_int_equal(pv_sd_notify(NULL, "READY=1\nSTATUS=x\n", &err), PV_OK);
	char *got = recv_one(fd);
	assert_non_null(got);
	assert_string_equal(got, "READY=1\nSTATUS=x\n");
	free(got);
	close(fd);

	char *path = tmp_path("notify");
	fd = listen_dgram(path);
	assert_int_equal(pv_sd_notify(path, "WATCHDOG=1", &err), PV_OK);
	got = recv_one(fd);
	assert_string_equal(got, "WATCHDOG=1");
	free(got);
	close(fd);
	unlink(path);
	assert_int_equal(pv_sd_notify(path, "WATCHDOG=1", &err), PV_ERR_IO);
	assert_non_null(strstr(err.msg, path));
	assert_int_equal(pv_sd_notify("relative", "READY=1", &err), PV_ERR_CONFIG);
	unsetenv("NOTIFY_SOCKET");
	free(path);
	free(abs);
}

static void test_sd_watchdog(void **state)
{
	(void)state;
	char pid[32];
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(pv_sd_watchdog_ms(), 0);
	setenv("WATCHDOG_USEC", "2000000", 1);
	assert_int_equal(pv_sd_watchdog_ms(), 2000);
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(pv_sd_watchdog_ms(), 2000);
	setenv("WATCHDOG_PID", "1", 1);
	assert_int_equal(pv_sd_watchdog_ms(), 0); /* meant for another process */
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "12x", 1);
	assert_int_equal(pv_sd_watchdog_ms(), 0);
	setenv("WATCHDOG_USEC", "500", 1);
	assert_int_equal(pv_sd_watchdog_ms(), 1);
	unsetenv("WATCHDOG_USEC");
}

static void test_notify_extension(void **state)
{
	(void)state;
	PvDaemon d;
	daemon_up(&d, "j-notify.jsonl", "");
	unsetenv("NOTIFY_SOCKET");
	assert_null(pv_notify_extension.create(&d)); /* not under systemd: off */

	char *abs = pv_xasprintf("@pgvigil-test-wd-%ld", (long)getpid());
	int fd = listen_dgram(abs);
	setenv("NOTIFY_SOCKET", abs, 1);
	setenv("WATCHDOG_USEC", "200000", 1);
	void *x = pv_notify_extension.create(&d);
	assert_non_null(x);
	int64_t now = pv_clock_mono_ms();
	assert_int_equal(pv_notify_extension.timeout(x, now), 0);
	pv_notify_extension.step(x, &d, NULL, 0, now);
	char *got = recv_one(fd);
	assert_string_equal(got, "WATCHDOG=1\nSTATUS=watching unit: primary unknown\n");
	free(got);
	int t = pv_notify_extension.timeout(x, now);
	assert_true(t > 0 && t <= 100);
	pv_notify_extension.step(x, &d, NULL, 0, now + 10); /* not due, nothing changed */
	got = recv_within(fd, 100);
	if (got)
		fail_msg("unexpected datagram \"%s\"", got);
	d.view.primary = 1;
	snprintf(d.incident, sizeof d.incident, "20261125T000000Z-7");
	pv_notify_extension.step(x, &d, NULL, 0, now + 20); /* status changed */
	got = recv_one(fd);
	assert_string_equal(got,
	                    "STATUS=watching unit: primary n1, incident 20261125T000000Z-7 open\n");
	free(got);
	pv_notify_extension.step(x, &d, NULL, 0, now + 100); /* due again */
	got = recv_one(fd);
	assert_string_equal(got, "WATCHDOG=1\n");
	free(got);
	pv_notify_extension.destroy(x);
	close(fd);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	free(abs);
	daemon_down(&d);
}

/* ---------------------------------------------------------------- metrics */

/* n0 primary at LSN 1000, n1 streaming standby at 900, n2 down. */
static void cluster_view(PvDaemon *d)
{
	PvClusterView *v = &d->view;
	for (int i = 0; i < 3; i++) {
		v->nodes[i].obs.result = PV_PROBE_UP;
		v->nodes[i].obs.latency_ms = 3 + i;
		v->nodes[i].obs.timeline = 1;
		v->nodes[i].heartbeat_age_ms = -1;
	}
	v->primary = 0;
	v->nodes[0].obs.current_lsn = 1000;
	v->nodes[0].obs.lock_waiters = 4;
	v->nodes[0].obs.oldest_lock_wait_ms = 1500;
	v->nodes[0].ncommit = 1;
	v->nodes[0].commit_ms[0] = 7;
	v->nodes[1].obs.in_recovery = true;
	v->nodes[1].obs.receive_lsn = 900;
	v->nodes[1].obs.replay_lsn = 800;
	v->nodes[1].obs.receiver_streaming = true;
	v->nodes[1].heartbeat_age_ms = 250;
	v->nodes[2].obs.result = PV_PROBE_DOWN;
	v->nodes[2].consecutive_failures = 4;
}

static void assert_has(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("no \"%s\" in\n%s", needle, text);
}

static void test_metrics_render(void **state)
{
	(void)state;
	PvDaemon d;
	daemon_up(&d, "j-metrics.jsonl", "");
	cluster_view(&d);
	PvMetricsCounters c = {.start_wall_us = 1700000000123456LL,
	                       .incidents = 2,
	                       .failovers = 1,
	                       .last_failover_ms = 4321,
	                       .last_failover_wall_us = 0};
	PvBuf out = {0};
	pv_metrics_render(&d, &c, pv_clock_mono_ms(), &out);
	const char *t = out.data;
	assert_has(t, "pgvigil_info{cluster=\"unit\",mode=\"automatic\"} 1\n");
	assert_has(t, "pgvigil_start_time_seconds 1700000000.123456\n");
	assert_has(t, "pgvigil_node_up{node=\"n0\"} 1\n");
	assert_has(t, "pgvigil_node_up{node=\"n2\"} 0\n");
	assert_has(t, "pgvigil_node_is_primary{node=\"n0\"} 1\n");
	assert_has(t, "pgvigil_node_is_primary{node=\"n1\"} 0\n");
	assert_has(t, "pgvigil_node_streaming{node=\"n1\"} 1\n");
	assert_has(t, "pgvigil_node_lag_bytes{node=\"n1\"} 100\n");
	assert_null(strstr(t, "pgvigil_node_lag_bytes{node=\"n0\"}"));
	assert_null(strstr(t, "pgvigil_node_lag_bytes{node=\"n2\"}"));
	assert_has(t, "pgvigil_probe_latency_ms{node=\"n1\"} 4\n");
	assert_has(t, "pgvigil_node_consecutive_failures{node=\"n2\"} 4\n");
	assert_has(t, "pgvigil_node_lock_waiters{node=\"n0\"} 4\n");
	assert_has(t, "pgvigil_node_oldest_lock_wait_ms{node=\"n0\"} 1500\n");
	assert_has(t, "pgvigil_node_commit_latency_ms{node=\"n0\"} 7\n");
	assert_has(t, "pgvigil_node_heartbeat_age_ms{node=\"n1\"} 250\n");
	assert_has(t, "pgvigil_failovers_total 1\n");
	assert_has(t, "pgvigil_incidents_total 2\n");
	assert_has(t, "pgvigil_last_failover_duration_ms 4321\n");
	assert_null(strstr(t, "pgvigil_last_failover_timestamp_seconds"));
	assert_has(t, "pgvigil_incident_open 0\n");
	assert_has(t, "# TYPE pgvigil_failovers_total counter\n");

	/* exposition format: every sample's family is known and announced once, before it */
	const char *const *names = pv_metrics_names();
	char seen[64][64];
	int nseen = 0;
	for (const char *p = t; *p;) {
		size_t n = strcspn(p, "\n");
		char line[512];
		snprintf(line, sizeof line, "%.*s", (int)n, p);
		p += n + 1;
		if (strncmp(line, "# HELP ", 7) == 0) {
			char fam[64];
			sscanf(line + 7, "%63s", fam);
			for (int k = 0; k < nseen; k++)
				if (strcmp(seen[k], fam) == 0)
					fail_msg("family %s announced twice", fam);
			pv_strlcpy(seen[nseen++], fam, sizeof seen[0]);
			continue;
		}
		if (line[0] == '#')
			continue;
		char fam[64];
		snprintf(fam, sizeof fam, "%.*s", (int)strcspn(line, "{ "), line);
		assert_true(nseen > 0);
		if (strcmp(seen[nseen - 1], fam) != 0)
			fail_msg("sample %s outside its family", line);
		bool known = false;
		for (int k = 0; names[k]; k++)
			known |= strcmp(names[k], fam) == 0;
		assert_true(known);
	}
	pv_buf_free(&out);
	daemon_down(&d);
}

static int health(const PvHealthSnapshot *s, const char *path, const char *max, const char *body)
{
	PvBuf b = {0};
	int st = pv_metrics_health(s, path, max, &b);
	if (body && strcmp(b.data ? b.data : "", body) != 0)
		fail_msg("%s: body \"%s\", want \"%s\"", path, b.data ? b.data : "", body);
	pv_buf_free(&b);
	return st;
}

static void test_metrics_health(void **state)
{
	(void)state;
	PvDaemon d;
	PvHealthSnapshot s;
	daemon_up(&d, "j-health.jsonl", "");
	cluster_view(&d);
	pv_metrics_health_snapshot(&d, &s);
	assert_int_equal(health(&s, "/primary", NULL, "n0\n"), 200);
	assert_int_equal(health(&s, "/primary/n0", NULL, "n0: primary\n"), 200);
	assert_int_equal(health(&s, "/primary/n1", NULL, "n1: a standby\n"), 503);
	assert_int_equal(health(&s, "/primary/n2", NULL, "n2: not answering\n"), 503);
	assert_int_equal(health(&s, "/primary/n9", NULL, "no node n9\n"), 404);
	assert_int_equal(health(&s, "/replica", NULL, "n1\n"), 200);
	assert_int_equal(health(&s, "/replica/n1", NULL, "n1: streaming standby\n"), 200);
	assert_int_equal(health(&s, "/replica/n1", "100", NULL), 200);
	assert_int_equal(health(&s, "/replica/n1", "99", "n1: lag over max_lag_bytes\n"), 503);
	assert_int_equal(health(&s, "/replica", "99", "no streaming standby\n"), 503);
	assert_int_equal(health(&s, "/replica/n1", "x", NULL), 400);
	assert_int_equal(health(&s, "/replica/n0", NULL, "n0: not a standby\n"), 503);
	assert_int_equal(health(&s, "/replica/n2", NULL, "n2: not answering\n"), 503);
	assert_int_equal(health(&s, "/primaryx", NULL, NULL), 0);
	assert_int_equal(health(&s, "/", NULL, NULL), 0);

	/* a standby whose receiver stopped */
	d.view.nodes[1].obs.receiver_streaming = false;
	pv_metrics_health_snapshot(&d, &s);
	assert_int_equal(health(&s, "/replica/n1", NULL, "n1: not streaming\n"), 503);
	/* the primary failed a probe */
	d.view.nodes[0].obs.result = PV_PROBE_DOWN;
	pv_metrics_health_snapshot(&d, &s);
	assert_int_equal(health(&s, "/primary", NULL, "no primary\n"), 503);
	/* after a failover to n1 the old primary comes back as a primary: never 200 */
	d.view.primary = 1;
	d.view.nodes[0].obs.result = PV_PROBE_UP;
	d.view.nodes[0].failed = true;
	d.view.nodes[1].obs.in_recovery = false;
	pv_metrics_health_snapshot(&d, &s);
	assert_int_equal(health(&s, "/primary/n0", NULL, "n0: not the primary pgvigild knows\n"),
	                 503);
	assert_int_equal(health(&s, "/primary", NULL, "n1\n"), 200);
	daemon_down(&d);
}

static void test_metrics_listen(void **state)
{
	(void)state;
	struct sockaddr_storage sa;
	socklen_t len;
	PvError err = {0};
	assert_int_equal(pv_metrics_parse_listen("127.0.0.1:9187", &sa, &len, &err), PV_OK);
	assert_int_equal(sa.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&sa)->sin_port), 9187);
	assert_int_equal(pv_metrics_parse_listen("[::1]:80", &sa, &len, &err), PV_OK);
	assert_int_equal(sa.ss_family, AF_INET6);
	assert_int_equal(pv_metrics_parse_listen("*:9187", &sa, &len, &err), PV_OK);
	assert_int_equal(((struct sockaddr_in *)&sa)->sin_addr.s_addr, htonl(INADDR_ANY));
	const char *bad[] = {"nocolon", "1.2.3.4:0", "1.2.3.4:99999", "1.2.3.4:",
	                     ":80",     "[::1:80",   "1.2.3.4:8x",    "no-such-host.invalid:80"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (pv_metrics_parse_listen(bad[i], &sa, &len, &err) != PV_ERR_CONFIG)
			fail_msg("%s accepted", bad[i]);
		assert_non_null(strstr(err.msg, "metrics.listen"));
	}
}

/* ---------------------------------------------------------------- hooks */

static void run_hooks(void *h, PvDaemon *d)
{
	int64_t deadline = pv_clock_mono_ms() + 15000;
	for (;;) {
		int64_t now = pv_clock_mono_ms();
		int t = pv_hooks_extension.timeout(h, now);
		if (t < 0)
			return;
		assert_true(now < deadline);
		struct pollfd fds[8];
		int n = pv_hooks_extension.pollfds(h, fds, 8);
		poll(fds, (nfds_t)n, t);
		pv_hooks_extension.step(h, d, fds, n, pv_clock_mono_ms());
	}
}

static PvJournalLog *read_journal(const PvDaemon *d)
{
	PvJournalLog *log = NULL;
	PvError err;
	if (pv_journal_read(d->cfg->journal_path, &log, &err) != PV_OK)
		fail_msg("%s", err.msg);
	return log;
}

/* The i-th "hook" record with the given phase. */
static const PvJournalEntry *hook_rec(const PvJournalLog *log, const char *phase, int i)
{
	for (size_t k = 0; k < log->nentries; k++)
		if (strcmp(log->entries[k].event, "hook") == 0 &&
		    strcmp(log->entries[k].phase, phase) == 0 && i-- == 0)
			return &log->entries[k];
	fail_msg("no hook %s record number %d", phase, i);
	return NULL;
}

static void test_hooks_run(void **state)
{
	(void)state;
	char *envfile = tmp_path("hook-env.txt");
	char *script = tmp_path("hook.sh");
	char *text =
	    pv_xasprintf("#!/bin/sh\n"
	                 "{ echo \"--- $PGVIGIL_HOOK $#\"; env | grep '^PGVIGIL_' | sort; } >> %s\n"
	                 "echo \"hello from $PGVIGIL_EVENT\"\n"
	                 "echo oops >&2\n",
	                 envfile);
	spit(script, text, 0755);
	char *extra = pv_xasprintf("hooks = { on_failover = \"%s\"; on_incident = \"%s\"; };\n",
	                           script, script);
	PvDaemon d;
	daemon_up(&d, "j-hooks.jsonl", extra);
	d.view.primary = 0;
	void *h = pv_hooks_extension.create(&d);
	assert_non_null(h);
	assert_int_equal(pv_hooks_extension.timeout(h, pv_clock_mono_ms()), -1); /* idle */

	snprintf(d.incident, sizeof d.incident, "20261125T000000Z-1");
	pv_hooks_extension.on_event(h, &d, PV_DEV_INCIDENT_OPEN, 0);
	pv_hooks_extension.on_event(h, &d, PV_DEV_PROMOTED, 1);
	pv_hooks_extension.on_event(h, &d, PV_DEV_INCIDENT_CLOSE, 1);
	pv_hooks_extension.on_event(h, &d, PV_DEV_RELOADED, 1); /* no hook */
	assert_int_equal(pv_hooks_extension.timeout(h, pv_clock_mono_ms()), 0);
	run_hooks(h, &d);

	char *env = slurp(envfile);
	assert_non_null(env);
	/* the incident hook twice in order, the failover hook once; argv is the program only */
	assert_has(env, "--- on_incident 0\n");
	assert_has(env, "--- on_failover 0\n");
	assert_has(env, "PGVIGIL_EVENT=incident-open\n");
	assert_has(env, "PGVIGIL_EVENT=promoted\n");
	assert_has(env, "PGVIGIL_EVENT=incident-close\n");
	assert_true(strstr(env, "PGVIGIL_EVENT=incident-open") <
	            strstr(env, "PGVIGIL_EVENT=incident-close"));
	assert_has(env, "PGVIGIL_INCIDENT=20261125T000000Z-1\n");
	assert_has(env, "PGVIGIL_CLUSTER=unit\n");
	assert_has(env, "PGVIGIL_NEW_PRIMARY=n1\n");
	assert_has(env, "PGVIGIL_OLD_PRIMARY=n0\n");
	assert_has(env, "PGVIGIL_NODE=n1\n");
	assert_has(env, "PGVIGIL_SEQ=");
	char *jline = pv_xasprintf("PGVIGIL_JOURNAL=%s\n", d.cfg->journal_path);
	assert_has(env, jline);
	free(jline);

	PvJournalLog *log = read_journal(&d);
	for (int i = 0; i < 3; i++) {
		const PvJournalEntry *b = hook_rec(log, "begin", i);
		const PvJournalEntry *e = hook_rec(log, "end", i);
		assert_string_equal(b->incident, "20261125T000000Z-1");
		assert_string_equal(e->outcome, "ok");
		assert_true(e->duration_ms >= 0);
		assert_string_equal(pv_journal_entry_detail_str(b, "program"), script);
		assert_non_null(strstr(pv_journal_entry_detail_str(e, "stdout"), "hello from "));
		assert_string_equal(pv_journal_entry_detail_str(e, "stderr"), "oops\n");
		assert_int_equal(json_integer_value(json_object_get(e->detail, "exit_status")), 0);
	}
	int opens = 0;
	for (int i = 0; i < 3; i++) {
		const PvJournalEntry *b = hook_rec(log, "begin", i);
		if (strcmp(pv_journal_entry_detail_str(b, "event"), "incident-open") == 0) {
			assert_string_equal(b->node, "n0");
			assert_string_equal(pv_journal_entry_detail_str(b, "hook"), "on_incident");
			opens++;
		}
	}
	assert_int_equal(opens, 1);
	pv_journal_log_free(log);
	pv_hooks_extension.destroy(h);
	daemon_down(&d);
	free(env);
	free(extra);
	free(text);
	free(script);
	free(envfile);
}

static void test_hooks_failures(void **state)
{
	(void)state;
	char *slow = tmp_path("slow.sh"), *loud = tmp_path("loud.sh");
	spit(slow, "#!/bin/sh\nsleep 30\n", 0755);
	spit(loud, "#!/bin/sh\nhead -c 5000 /dev/zero | tr '\\0' x\nexit 3\n", 0755);
	char *extra = pv_xasprintf("hooks = { on_failover = \"%s\"; on_incident = \"%s\"; "
	                           "timeout_ms = 300; };\n",
	                           slow, loud);
	PvDaemon d;
	daemon_up(&d, "j-hookfail.jsonl", extra);
	void *h = pv_hooks_extension.create(&d);
	int64_t t0 = pv_clock_mono_ms();
	pv_hooks_extension.on_event(h, &d, PV_DEV_PROMOTED, 1);
	pv_hooks_extension.on_event(h, &d, PV_DEV_INCIDENT_OPEN, 0);
	run_hooks(h, &d);
	assert_true(pv_clock_mono_ms() - t0 < 5000); /* the deadline, not the 30 s sleep */
	PvJournalLog *log = read_journal(&d);
	int seen = 0;
	for (size_t k = 0; k < log->nentries; k++) {
		const PvJournalEntry *e = &log->entries[k];
		if (strcmp(e->event, "hook") != 0 || strcmp(e->phase, "end") != 0)
			continue;
		const char *which = pv_journal_entry_detail_str(e, "hook");
		if (strcmp(which, "on_failover") == 0) {
			assert_string_equal(e->outcome, "timeout");
			assert_true(json_is_null(json_object_get(e->detail, "exit_status")));
			assert_int_equal(json_integer_value(json_object_get(e->detail, "signal")),
			                 15);
		} else {
			assert_string_equal(e->outcome, "failed");
			assert_int_equal(
			    json_integer_value(json_object_get(e->detail, "exit_status")), 3);
			assert_int_equal(strlen(pv_journal_entry_detail_str(e, "stdout")),
			                 PV_HOOK_OUTPUT_MAX);
			assert_int_equal(
			    json_integer_value(json_object_get(e->detail, "stdout_bytes")), 5000);
		}
		seen++;
	}
	assert_int_equal(seen, 2);
	pv_journal_log_free(log);
	pv_hooks_extension.destroy(h);
	daemon_down(&d);

	/* a relative path is not run, a missing program fails to start: both journaled */
	free(extra);
	extra = pv_xstrdup("hooks = { on_failover = \"relative.sh\"; "
	                   "on_incident = \"/nonexistent/hook\"; };\n");
	daemon_up(&d, "j-hookbad.jsonl", extra);
	h = pv_hooks_extension.create(&d);
	pv_hooks_extension.on_event(h, &d, PV_DEV_PROMOTED, 1);
	pv_hooks_extension.on_event(h, &d, PV_DEV_INCIDENT_OPEN, 0);
	run_hooks(h, &d);
	log = read_journal(&d);
	const PvJournalEntry *e0 = hook_rec(log, "end", 0), *e1 = hook_rec(log, "end", 1);
	assert_string_equal(e0->outcome, "failed");
	assert_string_equal(e1->outcome, "failed");
	assert_has(pv_journal_entry_detail_str(e0, "error"), "not an absolute path");
	assert_has(pv_journal_entry_detail_str(e1, "error"), "/nonexistent/hook");
	pv_journal_log_free(log);

	/* still running at stop: killed, and the end record says so */
	free(extra);
	pv_hooks_extension.destroy(h);
	daemon_down(&d);
	extra = pv_xasprintf("hooks = { on_failover = \"%s\"; };\n", slow);
	daemon_up(&d, "j-hookstop.jsonl", extra);
	h = pv_hooks_extension.create(&d);
	pv_hooks_extension.on_event(h, &d, PV_DEV_PROMOTED, 1);
	pv_hooks_extension.step(h, &d, NULL, 0, pv_clock_mono_ms());
	pv_hooks_extension.destroy(h);
	log = read_journal(&d);
	assert_string_equal(hook_rec(log, "end", 0)->outcome, "failed");
	assert_has(pv_journal_entry_detail_str(hook_rec(log, "end", 0), "error"), "stopped");
	pv_journal_log_free(log);
	daemon_down(&d);
	free(extra);
	free(slow);
	free(loud);
}

static void test_hooks_none(void **state)
{
	(void)state;
	PvDaemon d;
	daemon_up(&d, "j-nohooks.jsonl", "");
	void *h = pv_hooks_extension.create(&d);
	pv_hooks_extension.on_event(h, &d, PV_DEV_INCIDENT_OPEN, 0);
	pv_hooks_extension.on_event(h, &d, PV_DEV_PROMOTED, 1);
	assert_int_equal(pv_hooks_extension.timeout(h, pv_clock_mono_ms()), -1);
	pv_hooks_extension.destroy(h);
	assert_int_equal(pv_journal_last_seq(d.journal), 0); /* nothing journaled */
	daemon_down(&d);
}

/* ---------------------------------------------------------------- setup */

static int group_setup(void **state)
{
	(void)state;
	PvError err;
	strcpy(tmpdir, "/tmp/pv_test_ops.XXXXXX");
	if (!mkdtemp(tmpdir) || pv_log_open(NULL, PV_LOG_ERROR, &err) != PV_OK)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	char *cmd = pv_xasprintf("rm -rf '%s'", tmpdir);
	int rc = system(cmd);
	free(cmd);
	return rc == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_events),         cmocka_unit_test(test_sd_notify),
	    cmocka_unit_test(test_sd_watchdog),    cmocka_unit_test(test_notify_extension),
	    cmocka_unit_test(test_metrics_render), cmocka_unit_test(test_metrics_health),
	    cmocka_unit_test(test_metrics_listen), cmocka_unit_test(test_hooks_run),
	    cmocka_unit_test(test_hooks_failures), cmocka_unit_test(test_hooks_none),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
