/*
 * Unit tests for core/health: node health as a table of observations, and the lock ladder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/health.h"

static const PvHealthPolicy POLICY = {
	.slow_threshold_ms = 500,
	.slow_window = 3,
	.lock_wait_threshold_ms = 1000,
	.saturation_threshold_pct = 90,
	.warn_lag_bytes = 1000,
};

static PvNodeView healthy_primary(void)
{
	PvNodeView n;
	memset(&n, 0, sizeof n);
	snprintf(n.name, sizeof n.name, "n0");
	n.obs.result = PV_PROBE_UP;
	n.obs.max_connections = 100;
	n.obs.reserved_connections = 3;
	n.obs.clients = 5;
	n.obs.oldest_lock_wait_ms = -1;
	n.write = PV_WRITE_OK;
	n.ncommit = 3;
	n.commit_ms[0] = n.commit_ms[1] = n.commit_ms[2] = 5;
	return n;
}

typedef struct {
	const char *name;
	void (*mutate)(PvNodeView *n);
	bool primary;
	PvHealth want;
	const char *reason_has; /* NULL: no reason expected */
} HealthCase;

static void m_none(PvNodeView *n) { (void)n; }
static void m_down(PvNodeView *n) { n->obs.result = PV_PROBE_DOWN; n->consecutive_failures = 3; snprintf(n->obs.reason, sizeof n->obs.reason, "refused"); }
static void m_unknown(PvNodeView *n) { n->obs.result = PV_PROBE_UNKNOWN; snprintf(n->obs.reason, sizeof n->obs.reason, "auth failed"); }
static void m_refused_full(PvNodeView *n) { m_unknown(n); n->obs.refused_saturated = true; }
static void m_wedged(PvNodeView *n) { n->write = PV_WRITE_FAILED; snprintf(n->write_error, sizeof n->write_error, "no commit within 2000 ms"); }
static void m_write_locked(PvNodeView *n) { m_wedged(n); n->write_blocked_by_lock = true; }
static void m_lock_waits(PvNodeView *n) { n->obs.lock_waiters = 4; n->obs.relation_waiters = 4; n->obs.oldest_lock_wait_ms = 1500; }
static void m_short_lock_waits(PvNodeView *n) { n->obs.lock_waiters = 4; n->obs.oldest_lock_wait_ms = 200; }
static void m_saturated(PvNodeView *n) { n->obs.clients = 88; } /* 88 of 97 = 90.7 % */
static void m_almost(PvNodeView *n) { n->obs.clients = 87; }    /* 89.7 % */
static void m_slow(PvNodeView *n) { n->commit_ms[0] = n->commit_ms[1] = n->commit_ms[2] = 800; }
static void m_one_slow(PvNodeView *n) { n->commit_ms[0] = 800; }
static void m_slow_and_locked(PvNodeView *n) { m_slow(n); m_lock_waits(n); }
static void m_standby_lagging(PvNodeView *n) { n->obs.in_recovery = true; n->obs.receive_lsn = n->obs.replay_lsn = 100; n->obs.receiver_streaming = true; }
static void m_not_probed(PvNodeView *n) { n->obs.result = PV_PROBE_NONE; }

static const HealthCase cases[] = {
	{"healthy", m_none, true, PV_HEALTH_HEALTHY, NULL},
	{"down", m_down, true, PV_HEALTH_DOWN, "refused"},
	{"could not ask is unknown, not down", m_unknown, true, PV_HEALTH_UNKNOWN, "could not ask"},
	{"too many clients is saturated, not down", m_refused_full, true, PV_HEALTH_SATURATED, "refuses"},
	{"answers but cannot commit", m_wedged, true, PV_HEALTH_WEDGED, "cannot commit"},
	{"write blocked by a lock is locked", m_write_locked, true, PV_HEALTH_LOCKED, "blocked by a lock"},
	{"lock waits over the threshold", m_lock_waits, true, PV_HEALTH_LOCKED, "wait on locks"},
	{"lock waits under the threshold", m_short_lock_waits, true, PV_HEALTH_HEALTHY, NULL},
	{"saturated at 90 %", m_saturated, true, PV_HEALTH_SATURATED, "client backends"},
	{"just under 90 %", m_almost, true, PV_HEALTH_HEALTHY, NULL},
	{"slow window", m_slow, true, PV_HEALTH_SLOW, "heartbeat commits"},
	{"one slow sample is not slow", m_one_slow, true, PV_HEALTH_HEALTHY, NULL},
	{"locked outranks slow", m_slow_and_locked, true, PV_HEALTH_LOCKED, "heartbeat commits"},
	{"lag is reported, still healthy", m_standby_lagging, false, PV_HEALTH_HEALTHY, "bytes behind"},
	{"not probed yet", m_not_probed, false, PV_HEALTH_UNKNOWN, "not probed"},
};

static void test_health_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		PvNodeView n = healthy_primary();
		cases[k].mutate(&n);
		PvHealthReport r;
		pv_health_classify(&n, cases[k].primary, 5000, &POLICY, &r);
		bool found = cases[k].reason_has == NULL;
		for (int i = 0; i < r.nreasons; i++)
			if (cases[k].reason_has && strstr(r.reasons[i], cases[k].reason_has))
				found = true;
		if (r.health != cases[k].want || !found)
			fail_msg("case \"%s\": got %s (%d reasons, first \"%s\"), want %s with \"%s\"",
			         cases[k].name, pv_health_name(r.health), r.nreasons,
			         r.nreasons ? r.reasons[0] : "", pv_health_name(cases[k].want),
			         cases[k].reason_has ? cases[k].reason_has : "");
		if (cases[k].reason_has == NULL && r.nreasons != 0)
			fail_msg("case \"%s\": unexpected reason \"%s\"", cases[k].name, r.reasons[0]);
	}
}

static PvLockRoot root(const char *user, const char *state, int64_t blocked_for)
{
	PvLockRoot r;
	memset(&r, 0, sizeof r);
	r.pid = 4242;
	snprintf(r.user, sizeof r.user, "%s", user);
	snprintf(r.application, sizeof r.application, "app");
	snprintf(r.database, sizeof r.database, "shop");
	snprintf(r.state, sizeof r.state, "%s", state);
	snprintf(r.backend_type, sizeof r.backend_type, "client backend");
	r.blocked = 3;
	r.blocked_for_ms = blocked_for;
	return r;
}

/* How long the lock chain may go unread: until the ladder's next step for any root. */
static void test_lock_next_step(void **state)
{
	(void)state;
	PvLockPolicy p = {.cancel_after_ms = 5000, .terminate_after_ms = 10000, .act = true,
	                  .own_application = "pgvigil"};
	PvLockRoot r[2] = {root("app", "active", 1000), root("app", "active", 3000)};
	assert_int_equal(pv_lock_next_step_ms(r, 1, &p), 4000);
	assert_int_equal(pv_lock_next_step_ms(r, 2, &p), 2000); /* the nearer one */
	r[1].blocked_for_ms = 6000;                             /* being cancelled: look soon */
	assert_int_equal(pv_lock_next_step_ms(r, 2, &p), 0);
	r[0].superuser = r[1].superuser = true; /* protected: the ladder never acts */
	assert_int_equal(pv_lock_next_step_ms(r, 2, &p), -1);
	r[0].superuser = false;
	p.act = false; /* report only */
	assert_int_equal(pv_lock_next_step_ms(r, 2, &p), -1);
	p.act = true;
	p.cancel_after_ms = 0; /* terminate only */
	assert_int_equal(pv_lock_next_step_ms(r, 1, &p), 9000);
	p.terminate_after_ms = 0;
	assert_int_equal(pv_lock_next_step_ms(r, 1, &p), -1);
	assert_int_equal(pv_lock_next_step_ms(r, 0, &p), -1);
}

static void test_lock_ladder(void **state)
{
	(void)state;
	PvLockPolicy p = {.cancel_after_ms = 5000, .terminate_after_ms = 10000, .act = true,
	                  .exclude_users = "batch, etl", .exclude_applications = "pg_dump",
	                  .exclude_databases = "audit", .own_application = "pgvigil"};
	const char *why;
	PvLockRoot r = root("app", "active", 1000);
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_REPORT);
	r.blocked_for_ms = 5000;
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_CANCEL);
	r.blocked_for_ms = 10000;
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_TERMINATE);
	/* idle in transaction: cancel would not release anything */
	r = root("app", "idle in transaction", 5000);
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_TERMINATE);
	assert_non_null(strstr(why, "idle in transaction"));
	r = root("app", "idle in transaction (aborted)", 5000);
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_TERMINATE);
	/* protections */
	r = root("etl", "active", 60000);
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_PROTECTED);
	r = root("app", "active", 60000);
	snprintf(r.application, sizeof r.application, "pg_dump");
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_PROTECTED);
	r = root("app", "active", 60000);
	snprintf(r.database, sizeof r.database, "audit");
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_PROTECTED);
	r = root("app", "active", 60000);
	snprintf(r.application, sizeof r.application, "pgvigil");
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_PROTECTED);
	r = root("app", "active", 60000);
	r.superuser = true;
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_PROTECTED);
	p.include_superusers = true;
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_TERMINATE);
	r = root("app", "active", 60000);
	snprintf(r.backend_type, sizeof r.backend_type, "autovacuum worker");
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_PROTECTED);
	r = root("app", "active", 60000);
	r.pid = 0;
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_PROTECTED);
	assert_non_null(strstr(why, "prepared"));
	/* report only */
	p.act = false;
	r = root("app", "active", 60000);
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_REPORT);
	/* 0 disables a rung */
	p.act = true;
	p.terminate_after_ms = 0;
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_CANCEL);
	p.cancel_after_ms = 0;
	assert_int_equal(pv_lock_decide(&r, &p, &why), PV_LOCK_REPORT);
}

static void test_list_contains(void **state)
{
	(void)state;
	assert_true(pv_list_contains("a,b , c", "b"));
	assert_true(pv_list_contains("a,b , c", "c"));
	assert_true(pv_list_contains(" a", "a"));
	assert_false(pv_list_contains("ab,c", "a"));
	assert_false(pv_list_contains("", "a"));
	assert_false(pv_list_contains(NULL, "a"));
	assert_false(pv_list_contains("a,b", ""));
}

static void test_stale_limit(void **state)
{
	(void)state;
	PvNodeObs o;
	memset(&o, 0, sizeof o);
	o.wal_receiver_timeout_ms = 5000;
	assert_int_equal(pv_core_stale_limit_ms(&o, 0), 3500);
	assert_int_equal(pv_core_stale_limit_ms(&o, 800), 800);
	o.wal_receiver_timeout_ms = 0;
	assert_int_equal(pv_core_stale_limit_ms(&o, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_health_table),
		cmocka_unit_test(test_lock_ladder),
		cmocka_unit_test(test_lock_next_step),
		cmocka_unit_test(test_list_contains),
		cmocka_unit_test(test_stale_limit),
	};
	return cmocka_run_group_tests_name("core/health", tests, NULL, NULL);
}
