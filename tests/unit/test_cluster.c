/*
 * Unit tests for core/cluster: the failover decision as a table of cluster views.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/cluster.h"

/* Node spec letters: P primary up, S standby up (streaming from n0), s standby up not
 * streaming, D down, U unknown, F down former primary. */
typedef struct {
	const char *name;
	const char *nodes;      /* one letter per node */
	uint64_t lsn[4];        /* per node */
	int priority[4];
	int primary;            /* known primary index */
	int failures;           /* consecutive failures of the known primary */
	bool automatic;
	int confirm;
	PvVerdict want;
	int want_winner;
} DecideCase;

static void build(PvClusterView *v, const char *nodes, const uint64_t *lsn, const int *prio,
                  int primary, int failures)
{
	memset(v, 0, sizeof *v);
	v->nnodes = (int)strlen(nodes);
	v->primary = primary;
	for (int i = 0; i < v->nnodes; i++) {
		PvNodeView *n = &v->nodes[i];
		snprintf(n->name, sizeof n->name, "n%d", i);
		snprintf(n->host, sizeof n->host, "127.0.0.1");
		n->port = 5432 + i;
		n->priority = prio[i];
		n->obs.at_ms = 1000;
		switch (nodes[i]) {
		case 'P':
			n->obs.result = PV_PROBE_UP;
			n->obs.current_lsn = lsn[i];
			break;
		case 'S':
		case 's':
			n->obs.result = PV_PROBE_UP;
			n->obs.in_recovery = true;
			n->obs.receive_lsn = lsn[i];
			n->obs.replay_lsn = lsn[i];
			if (nodes[i] == 'S') {
				n->obs.receiver_streaming = true;
				snprintf(n->obs.sender_host, sizeof n->obs.sender_host, "127.0.0.1");
				n->obs.sender_port = 5432;
			}
			break;
		case 'D':
		case 'F':
			n->obs.result = PV_PROBE_DOWN;
			n->failed = nodes[i] == 'F';
			break;
		case 'U':
			n->obs.result = PV_PROBE_UNKNOWN;
			break;
		}
	}
	if (primary >= 0) {
		v->nodes[primary].consecutive_failures = failures;
		v->nodes[primary].down_since_ms = 500;
	}
}

static const DecideCase decide_cases[] = {
	{"healthy", "PSS", {10, 10, 10}, {100, 100, 100}, 0, 0, true, 3, PV_VERDICT_HEALTHY, -1},
	{"one failure is a suspicion", "Dss", {10, 10, 10}, {100, 100, 100}, 0, 1, true, 3,
	 PV_VERDICT_SUSPECT, -1},
	{"confirmed, most advanced wins", "Dss", {10, 5, 9}, {100, 100, 100}, 0, 3, true, 3,
	 PV_VERDICT_FAILOVER, 2},
	{"tie broken by priority", "Dss", {10, 9, 9}, {100, 50, 90}, 0, 3, true, 3,
	 PV_VERDICT_FAILOVER, 2},
	{"tie and equal priority: config order", "Dss", {10, 9, 9}, {100, 90, 90}, 0, 3, true, 3,
	 PV_VERDICT_FAILOVER, 1},
	{"priority 0 never promoted", "Dss", {10, 5, 9}, {100, 100, 0}, 0, 3, true, 3,
	 PV_VERDICT_FAILOVER, 1},
	{"only priority 0 left", "Dss", {10, 5, 9}, {100, 0, 0}, 0, 3, true, 3,
	 PV_VERDICT_NO_CANDIDATE, -1},
	{"a standby still streams from the primary", "DSs", {10, 9, 9}, {100, 100, 100}, 0, 3,
	 true, 3, PV_VERDICT_STANDBYS_SEE_PRIMARY, -1},
	{"unknown is never down", "Uss", {10, 9, 9}, {100, 100, 100}, 0, 3, true, 3,
	 PV_VERDICT_PRIMARY_UNKNOWN_STATE, -1},
	{"unreachable standby is not a candidate", "DDs", {10, 99, 9}, {100, 100, 100}, 0, 3, true,
	 3, PV_VERDICT_FAILOVER, 2},
	{"no reachable standby", "DDD", {10, 9, 9}, {100, 100, 100}, 0, 3, true, 3,
	 PV_VERDICT_NO_CANDIDATE, -1},
	{"manual mode waits for the operator", "Dss", {10, 9, 9}, {100, 100, 100}, 0, 3, false, 3,
	 PV_VERDICT_MANUAL_REQUIRED, 1 /* the suggestion for the operator */},
	{"two primaries", "PPs", {10, 9, 9}, {100, 100, 100}, 0, 0, true, 3,
	 PV_VERDICT_SPLIT_BRAIN, -1},
	{"no primary while all answer", "sss", {10, 9, 9}, {100, 100, 100}, -1, 0, true, 3,
	 PV_VERDICT_NO_PRIMARY, -1},
	{"primary not known yet", "Dss", {10, 9, 9}, {100, 100, 100}, -1, 0, true, 3,
	 PV_VERDICT_UNKNOWN_PRIMARY, -1},
	{"former primary never a candidate", "DFs", {10, 99, 9}, {100, 100, 100}, 0, 3, true, 3,
	 PV_VERDICT_FAILOVER, 2},
	{"confirm 1", "Dss", {10, 9, 9}, {100, 100, 100}, 0, 1, true, 1, PV_VERDICT_FAILOVER, 1},
};

static void test_decide_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof decide_cases / sizeof decide_cases[0]; k++) {
		const DecideCase *c = &decide_cases[k];
		PvClusterView v;
		PvDecision d;
		PvPolicy p = {.confirm_failures = c->confirm, .automatic = c->automatic};
		build(&v, c->nodes, c->lsn, c->priority, c->primary, c->failures);
		pv_core_decide(&v, &p, &d);
		if (d.verdict != c->want || d.winner != c->want_winner)
			fail_msg("case \"%s\": got %s winner %d (%s), want %s winner %d", c->name,
			         pv_verdict_name(d.verdict), d.winner, d.reason, pv_verdict_name(c->want),
			         c->want_winner);
	}
}

static void test_stale_standby_views_wait(void **state)
{
	(void)state;
	PvClusterView v;
	PvDecision d;
	PvPolicy p = {.confirm_failures = 3, .automatic = true};
	uint64_t lsn[] = {10, 9, 9};
	int prio[] = {100, 100, 100};
	build(&v, "Dss", lsn, prio, 0, 3);
	v.nodes[0].down_since_ms = 2000; /* the standbys were last asked at 1000 */
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_SUSPECT);
	assert_int_equal(d.nstale, 2);
	v.nodes[1].obs.at_ms = v.nodes[2].obs.at_ms = 2100;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_FAILOVER);
}

static void test_cascade_does_not_vote(void **state)
{
	(void)state;
	PvClusterView v;
	PvDecision d;
	uint64_t lsn[] = {10, 9, 9};
	int prio[] = {100, 100, 100};
	build(&v, "DSs", lsn, prio, 0, 3);
	/* n1 streams from n2 (a cascade), not from the old primary */
	v.nodes[1].obs.sender_port = 5434;
	PvPolicy p = {.confirm_failures = 3, .automatic = true};
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_FAILOVER);
	/* an unknown sender counts as the primary: safer */
	v.nodes[1].obs.sender_port = 9999;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_STANDBYS_SEE_PRIMARY);
}

static void test_manual(void **state)
{
	(void)state;
	PvClusterView v;
	PvDecision d;
	uint64_t lsn[] = {10, 9, 9};
	int prio[] = {100, 100, 100};

	build(&v, "PSS", lsn, prio, 0, 0);
	pv_core_decide_manual(&v, 2, 0, &d);
	assert_int_equal(d.verdict, PV_VERDICT_HEALTHY); /* refused: primary answers */
	assert_non_null(strstr(d.reason, "second primary"));

	build(&v, "Dss", lsn, prio, 0, 1);
	pv_core_decide_manual(&v, 2, 0, &d);
	assert_int_equal(d.verdict, PV_VERDICT_FAILOVER);
	assert_int_equal(d.winner, 2);

	/* target behind another standby: refused */
	uint64_t lsn2[] = {10, 9, 5};
	build(&v, "Dss", lsn2, prio, 0, 1);
	pv_core_decide_manual(&v, 2, 0, &d);
	assert_int_equal(d.verdict, PV_VERDICT_NO_CANDIDATE);
	assert_non_null(strstr(d.reason, "behind"));

	/* target with priority 0: refused */
	int prio0[] = {100, 100, 0};
	build(&v, "Dss", lsn, prio0, 0, 1);
	pv_core_decide_manual(&v, 2, 0, &d);
	assert_int_equal(d.verdict, PV_VERDICT_NO_CANDIDATE);

	/* no known primary: refused */
	build(&v, "Dss", lsn, prio, -1, 0);
	pv_core_decide_manual(&v, -1, 0, &d);
	assert_int_equal(d.verdict, PV_VERDICT_UNKNOWN_PRIMARY);
}

static void test_find_primary(void **state)
{
	(void)state;
	PvClusterView v;
	uint64_t lsn[] = {1, 1, 1};
	int prio[] = {1, 1, 1};
	build(&v, "SPS", lsn, prio, -1, 0);
	assert_int_equal(pv_core_find_primary(&v), 1);
	build(&v, "PPS", lsn, prio, -1, 0);
	assert_int_equal(pv_core_find_primary(&v), -2);
	build(&v, "DSS", lsn, prio, -1, 0);
	assert_int_equal(pv_core_find_primary(&v), -1);
}

static void test_lsn(void **state)
{
	(void)state;
	uint64_t l;
	char s[32];
	assert_true(pv_lsn_parse("0/3000148", &l));
	assert_int_equal(l, 0x3000148);
	assert_true(pv_lsn_parse("1A/FF", &l));
	assert_int_equal(l, ((uint64_t)0x1A << 32) | 0xFF);
	pv_lsn_format(l, s, sizeof s);
	assert_string_equal(s, "1A/FF");
	assert_false(pv_lsn_parse("garbage", &l));
	assert_false(pv_lsn_parse("0/12x", &l));
	assert_false(pv_lsn_parse(NULL, &l));
}

static void test_wedged_and_locked(void **state)
{
	(void)state;
	PvClusterView v;
	PvDecision d;
	uint64_t lsn[] = {10, 10, 10};
	int prio[] = {100, 100, 100};
	PvPolicy p = {.confirm_failures = 3, .automatic = true, .wedged_after_ms = 10000,
	              .locks_failover_after_ms = 0, .now_ms = 20000};
	build(&v, "PSS", lsn, prio, 0, 0);
	v.nodes[0].write = PV_WRITE_FAILED;
	v.nodes[0].write_failing_since_ms = 15000; /* 5 s */
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_WEDGED);
	v.nodes[0].write_failing_since_ms = 9000; /* 11 s: past wedged_after */
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_FAILOVER);
	assert_int_equal(d.winner, 1);
	p.automatic = false;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_MANUAL_REQUIRED);
	p.automatic = true;
	p.wedged_after_ms = 0; /* never */
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_WEDGED);
	/* blocked by a lock: locks.failover_after_ms (0 = never) decides, not wedged_after */
	p.wedged_after_ms = 10000;
	v.nodes[0].write_blocked_by_lock = true;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_LOCKED);
	p.locks_failover_after_ms = 5000;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_FAILOVER);
}

static void test_stale_standby_does_not_see(void **state)
{
	(void)state;
	PvClusterView v;
	PvDecision d;
	uint64_t lsn[] = {10, 9, 9};
	int prio[] = {100, 100, 100};
	PvPolicy p = {.confirm_failures = 3, .automatic = true};
	build(&v, "DSS", lsn, prio, 0, 3);
	for (int i = 1; i <= 2; i++) {
		v.nodes[i].obs.wal_receiver_timeout_ms = 5000;
		v.nodes[i].obs.since_last_msg_ms = 2000; /* heard from it 2 s ago: still sees it */
	}
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_STANDBYS_SEE_PRIMARY);
	v.nodes[1].obs.since_last_msg_ms = 4000; /* past 5000/2 + 1000 */
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_STANDBYS_SEE_PRIMARY); /* n2 still does */
	v.nodes[2].obs.since_last_msg_ms = 4000;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_FAILOVER);
	/* an explicit failover.standby_stale_ms overrides */
	p.standby_stale_ms = 10000;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_STANDBYS_SEE_PRIMARY);
}

/*
 * The hang rule: a primary whose host acknowledges our requests but which answered nothing for
 * hang_after_ms is down after one failed probe, once no standby heard from it later than
 * PV_CORE_HANG_SLACK_MS after pgvigil last did.
 */
static void test_hung_primary(void **state)
{
	(void)state;
	PvClusterView v;
	PvDecision d;
	uint64_t lsn[] = {10, 9, 9};
	int prio[] = {100, 100, 100};
	PvPolicy p = {.confirm_failures = 3, .automatic = true, .hang_after_ms = 2500, .now_ms = 3000};
	build(&v, "DSS", lsn, prio, 0, 1);
	v.nodes[0].alive_ms = 1000;
	v.nodes[0].acked_since_ms = 1200;
	v.nodes[0].down_since_ms = 2000;
	for (int i = 1; i <= 2; i++) {
		v.nodes[i].obs.at_ms = 3000;
		v.nodes[i].obs.wal_receiver_timeout_ms = 5000;
		v.nodes[i].obs.since_last_msg_ms = 2000; /* heard at 1000: when pgvigil last did */
	}
	/* silent for 2000 ms: not yet; decide again when 2500 ms have passed */
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_SUSPECT);
	assert_int_equal(d.recheck_at_ms, 3500);
	assert_false(d.hung);

	/* 2500 ms: hung, although the standbys are within their wal_receiver_timeout limit */
	p.now_ms = 3500;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_FAILOVER);
	assert_true(d.hung);
	assert_non_null(strstr(d.reason, "hung"));

	/* a standby that heard from it 600 ms after pgvigil last did vetoes */
	v.nodes[2].obs.since_last_msg_ms = 1400; /* heard at 1600 */
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_STANDBYS_SEE_PRIMARY);
	v.nodes[2].obs.since_last_msg_ms = 1600; /* heard at 1400: within the slack */
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_FAILOVER);

	/* a request its host did not acknowledge (a network fault) is never a hang */
	v.nodes[0].acked_since_ms = 0;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_SUSPECT);
	assert_false(d.hung);
	assert_int_equal(d.recheck_at_ms, 3600); /* the acknowledgements are sampled: look soon */
	/* nor one it acknowledged only just now (a link back a moment ago) */
	v.nodes[0].acked_since_ms = 3000;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_SUSPECT);
	assert_int_equal(d.recheck_at_ms, 4000);
	v.nodes[0].acked_since_ms = 1200;

	/* no failed probe yet (a slow answer in flight), or the rule off: no hang */
	v.nodes[0].consecutive_failures = 0;
	v.nodes[0].obs.result = PV_PROBE_UP;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_HEALTHY);
	v.nodes[0].consecutive_failures = 1;
	v.nodes[0].obs.result = PV_PROBE_DOWN;
	p.hang_after_ms = 0;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_SUSPECT);
	assert_int_equal(d.recheck_at_ms, 0);

	/* standby views older than the first failure: wait for fresh ones */
	p.hang_after_ms = 2500;
	v.nodes[1].obs.at_ms = 1900;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_SUSPECT);
}

static void test_data_loss_guard(void **state)
{
	(void)state;
	PvClusterView v;
	PvDecision d;
	uint64_t lsn[] = {1000, 900, 100};
	int prio[] = {100, 100, 100};
	PvPolicy p = {.confirm_failures = 3, .automatic = true, .max_lag_bytes = 500};
	build(&v, "Dss", lsn, prio, 0, 3);
	v.nodes[0].obs.current_lsn = 1000;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_FAILOVER);
	assert_int_equal(d.winner, 1);
	assert_int_equal(d.loss_bytes, 100);
	assert_int_equal(d.candidates[2].gap_bytes, 900);
	/* the best standby too far behind: refused, the gap recorded */
	v.nodes[1].obs.receive_lsn = v.nodes[1].obs.replay_lsn = 200;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_NO_CANDIDATE);
	assert_int_equal(d.candidates[1].gap_bytes, 800);
	assert_non_null(strstr(d.candidates[1].reason, "max_lag_bytes"));
	/* an operator's --allow-data-loss */
	PvRankRules r = {.max_lag_bytes = 500, .allow_data_loss = true};
	pv_core_decide_manual(&v, 1, &r, &d);
	assert_int_equal(d.verdict, PV_VERDICT_FAILOVER);
	assert_int_equal(d.loss_bytes, 800);
	r.allow_data_loss = false;
	pv_core_decide_manual(&v, 1, &r, &d);
	assert_int_equal(d.verdict, PV_VERDICT_NO_CANDIDATE);
	/* synchronous replication: only the sync standby, whatever the priorities */
	uint64_t eq[] = {1000, 1000, 1000};
	int pr[] = {100, 100, 10};
	build(&v, "Dss", eq, pr, 0, 3);
	v.nodes[0].obs.current_lsn = 1000;
	v.nodes[0].obs.sync_configured = true;
	snprintf(v.nodes[0].obs.sync_standbys, sizeof v.nodes[0].obs.sync_standbys, "n2");
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_FAILOVER);
	assert_int_equal(d.winner, 2);
	assert_true(d.sync_guarded);
	/* no sync standby reachable: nobody */
	v.nodes[2].obs.result = PV_PROBE_DOWN;
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_NO_CANDIDATE);
	/* configured but no standby ever synchronous: no commit was acknowledged, no sync guard */
	v.nodes[0].obs.sync_standbys[0] = '\0';
	pv_core_decide(&v, &p, &d);
	assert_int_equal(d.verdict, PV_VERDICT_FAILOVER);
	assert_false(d.sync_guarded);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(pv_verdict_name(PV_VERDICT_FAILOVER), "failover");
	assert_string_equal(pv_verdict_name(PV_VERDICT_SPLIT_BRAIN), "split-brain-suspected");
	assert_string_equal(pv_probe_result_name(PV_PROBE_DOWN), "down");
	assert_string_equal(pv_verdict_name((PvVerdict)99), "invalid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide_table),
		cmocka_unit_test(test_stale_standby_views_wait),
		cmocka_unit_test(test_cascade_does_not_vote),
		cmocka_unit_test(test_manual),
		cmocka_unit_test(test_find_primary),
		cmocka_unit_test(test_lsn),
		cmocka_unit_test(test_wedged_and_locked),
		cmocka_unit_test(test_stale_standby_does_not_see),
		cmocka_unit_test(test_data_loss_guard),
		cmocka_unit_test(test_hung_primary),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests_name("core/cluster", tests, NULL, NULL);
}
