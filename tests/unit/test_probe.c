/*
 * Unit tests for probe classification, conninfo retargeting (pure libpq parsing, no server)
 * and the PgBouncer include file rendering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "act/act.h"
#include "io/pgconn.h"
#include "probe/probe.h"

/* Duration settings as current_setting() shows them. */
static void test_duration(void **state)
{
	(void)state;
	assert_int_equal(pv_probe_parse_duration_ms("5s"), 5000);
	assert_int_equal(pv_probe_parse_duration_ms("200ms"), 200);
	assert_int_equal(pv_probe_parse_duration_ms("1min"), 60000);
	assert_int_equal(pv_probe_parse_duration_ms("2h"), 7200000);
	assert_int_equal(pv_probe_parse_duration_ms("1d"), 86400000);
	assert_int_equal(pv_probe_parse_duration_ms("0"), 0);
	assert_int_equal(pv_probe_parse_duration_ms("60000"), 60000);
	assert_int_equal(pv_probe_parse_duration_ms("5 s"), -1);
	assert_int_equal(pv_probe_parse_duration_ms("s"), -1);
	assert_int_equal(pv_probe_parse_duration_ms("5weeks"), -1);
	assert_int_equal(pv_probe_parse_duration_ms(""), -1);
	assert_int_equal(pv_probe_parse_duration_ms(NULL), -1);
}

/* The prepared statements come in the order pv_probe_execute_sql names them. */
static void test_prepared(void **state)
{
	(void)state;
	const char *p = pv_probe_prepare_sql;
	int n = 0;
	for (const char *q = p; (q = strstr(q, "PREPARE ")); q++)
		n++;
	assert_int_equal(n, pv_probe_prepare_statements);
	assert_non_null(strstr(p, "PREPARE pgvigil_status_full AS"));
	assert_non_null(strstr(p, "PREPARE pgvigil_status_lite AS"));
	assert_string_equal(pv_probe_execute_sql(true, false), "EXECUTE pgvigil_status_full");
	assert_string_equal(pv_probe_execute_sql(false, false), "EXECUTE pgvigil_status_lite");
	assert_non_null(strstr(pv_probe_execute_sql(false, true), "pgvigil.heartbeat"));
	/* the lite form never reads every backend's status */
	const char *lite = strstr(p, "PREPARE pgvigil_status_lite AS");
	assert_null(strstr(lite, "pg_stat_get_activity"));
}

static void test_classify(void **state)
{
	(void)state;
	static const struct {
		const char *msg, *sqlstate;
		bool timed_out;
		PvProbeResult want;
	} cases[] = {
		{"connection to server at \"127.0.0.1\", port 5432 failed: Connection refused", "", false,
		 PV_PROBE_DOWN},
		{"server closed the connection unexpectedly", "", false, PV_PROBE_DOWN},
		{"timeout while connecting", "", true, PV_PROBE_DOWN},
		{"FATAL: sorry, too many clients already", "", false, PV_PROBE_UNKNOWN},
		{"FATAL: remaining connection slots are reserved for superuser", "", false,
		 PV_PROBE_UNKNOWN},
		{"FATAL: password authentication failed for user \"x\"", "", false, PV_PROBE_UNKNOWN},
		{"FATAL: database \"nope\" does not exist", "", false, PV_PROBE_UNKNOWN},
		{"FATAL: the database system is shutting down", "", false, PV_PROBE_DOWN},
		{"FATAL: the database system is starting up", "", false, PV_PROBE_DOWN},
		{"ERROR: canceling statement due to statement timeout", "57014", false, PV_PROBE_UNKNOWN},
		{"FATAL: terminating connection due to administrator command", "57P01", false,
		 PV_PROBE_DOWN},
		{"ERROR: permission denied for function", "42501", false, PV_PROBE_UNKNOWN},
		{"FATAL: too many connections", "53300", false, PV_PROBE_UNKNOWN},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		PvProbeResult got =
			pv_probe_classify_failure(cases[i].msg, cases[i].sqlstate, cases[i].timed_out);
		if (got != cases[i].want)
			fail_msg("\"%s\" (%s): got %s want %s", cases[i].msg, cases[i].sqlstate,
			         pv_probe_result_name(got), pv_probe_result_name(cases[i].want));
	}
}

static void test_conninfo_target(void **state)
{
	(void)state;
	char host[128];
	int port;
	PvError err;
	assert_int_equal(pv_pg_conninfo_target("host=10.0.0.5 port=6000 user=x", host, sizeof host,
	                                       &port, &err),
	                 PV_OK);
	assert_string_equal(host, "10.0.0.5");
	assert_int_equal(port, 6000);
	assert_int_equal(pv_pg_conninfo_target("hostaddr=127.0.0.1 dbname=postgres", host,
	                                       sizeof host, &port, &err),
	                 PV_OK);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 5432);
	assert_int_equal(pv_pg_conninfo_target("postgresql://u@db1:7000/x", host, sizeof host, &port,
	                                       &err),
	                 PV_OK);
	assert_string_equal(host, "db1");
	assert_int_equal(port, 7000);
	assert_int_equal(pv_pg_conninfo_target("dbname=postgres", host, sizeof host, &port, &err),
	                 PV_ERR_CONFIG);
	assert_int_equal(pv_pg_conninfo_target("host='unterminated", host, sizeof host, &port, &err),
	                 PV_ERR_CONFIG);
	assert_null(strchr(err.msg, '\n'));
}

static void test_conninfo_retarget(void **state)
{
	(void)state;
	char *out = NULL;
	PvError err;
	assert_int_equal(pv_pg_conninfo_retarget("host=a port=1 hostaddr=1.2.3.4 user=rep "
	                                         "password='it\\'s \\\\ secret' application_name=n2",
	                                         "127.0.0.1", 5433, &out, &err),
	                 PV_OK);
	assert_null(strstr(out, "host='a'"));
	assert_null(strstr(out, "1.2.3.4"));
	assert_non_null(strstr(out, "host='127.0.0.1'"));
	assert_non_null(strstr(out, "port='5433'"));
	assert_non_null(strstr(out, "application_name='n2'"));
	assert_non_null(strstr(out, "user='rep'"));
	/* the result parses back to the same password */
	char host[64];
	int port;
	assert_int_equal(pv_pg_conninfo_target(out, host, sizeof host, &port, &err), PV_OK);
	assert_int_equal(port, 5433);
	char *again = NULL;
	assert_int_equal(pv_pg_conninfo_retarget(out, "127.0.0.1", 5433, &again, &err), PV_OK);
	assert_string_equal(out, again);
	free(again);
	free(out);
}

static void test_endpoint_render(void **state)
{
	(void)state;
	PvPgbouncerConfig pb;
	memset(&pb, 0, sizeof pb);
	pb.enabled = true;
	pb.ndatabases = 2;
	snprintf(pb.databases[0].name, sizeof pb.databases[0].name, "app");
	pb.databases[0].dbname = "appdb";
	pb.databases[0].options = "pool_size=20";
	snprintf(pb.databases[1].name, sizeof pb.databases[1].name, "reports");
	pb.databases[1].dbname = "reports";
	pb.databases[1].options = "";
	PvBuf out = {0};
	pv_endpoint_render(&pb, "n1", "127.0.0.1", 5433, "2026-01-01T00:00:00.000000Z", &out);
	assert_non_null(strstr(out.data, "\n[databases]\n"));
	assert_non_null(strstr(out.data, "\napp = host=127.0.0.1 port=5433 dbname=appdb pool_size=20\n"));
	assert_non_null(strstr(out.data, "\nreports = host=127.0.0.1 port=5433 dbname=reports\n"));
	assert_non_null(strstr(out.data, "primary is n1"));
	pv_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_prepared),
		cmocka_unit_test(test_conninfo_target),
		cmocka_unit_test(test_conninfo_retarget),
		cmocka_unit_test(test_endpoint_render),
	};
	return cmocka_run_group_tests_name("probe+act", tests, NULL, NULL);
}
