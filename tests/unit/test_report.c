/*
 * test_report: the post-incident report (daemon/pgvigil/report.c) from journal text held in
 * memory: steps with begin and end merged, phases, outage window, data-loss bound, and the
 * Markdown, JSON and HTML renderings (JSON parsed back, HTML escaping checked).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "journal/journal_read.h"
#include "pgvigil/report.h"

#define ID "20261125T173455Z-10"
#define R(seq, mono, ev, ph, node, out, dur, det)                                                  \
	"{\"seq\":" #seq ",\"ts\":\"2026-11-25T17:34:55.000000Z\",\"mono_ms\":" #mono              \
	",\"incident\":\"" ID "\",\"event\":\"" ev "\",\"phase\":\"" ph "\",\"node\":" node        \
	",\"outcome\":" out ",\"duration_ms\":" dur ",\"detail\":" det "}\n"

static const char failover[] =
    "{\"seq\":9,\"mono_ms\":900,\"incident\":null,\"event\":\"primary-suspect\",\"phase\":"
    "\"event\",\"detail\":{}}\n" R(10, 1000, "incident-open", "event", "\"n0\"", "null", "null",
                                   "{\"trigger\":\"automatic\",\"reason\":\"promote n1\","
                                   "\"detection_ms\":300}")
        R(11, 1001, "failover-decision", "event", "\"n1\"", "null", "null",
          "{\"verdict\":\"failover\",\"reason\":\"promote n1 <now>\",\"winner\":\"n1\","
          "\"old_primary\":\"n0\",\"old_primary_last_lsn\":\"0/3000100\",\"candidates\":["
          "{\"node\":\"n1\",\"reachable\":true,\"received_lsn\":\"0/3000000\",\"rank_lsn\":"
          "\"0/3000000\",\"priority\":100,\"eligible\":true,\"reason\":\"winner\"},"
          "{\"node\":\"n2\",\"reachable\":false,\"received_lsn\":null,\"priority\":50,"
          "\"eligible\":false,\"reason\":\"not answering\"}]}") R(12, 1002, "promote", "begin",
                                                                  "\"n1\"", "null", "null", "{}")
            R(13, 1402, "promote", "end", "\"n1\"", "\"ok\"", "400", "{}")
                R(14, 1403, "endpoint-switch", "begin", "\"n1\"", "null", "null", "{}")
                    R(15, 1453, "endpoint-switch", "end", "\"n1\"", "\"ok\"", "50", "{}")
                        R(16, 1454, "repoint", "begin", "\"n2\"", "null", "null", "{}")
                            R(17, 1500, "repoint", "end", "\"n2\"", "\"failed\"", "46",
                              "{\"error\":\"<b>connection refused</b>\"}")
                                R(18, 1501, "hook", "begin", "\"n1\"", "null", "null", "{}")
                                    R(19, 2000, "incident-close", "event", "\"n1\"", "\"failed\"",
                                      "null", "{\"new_primary\":\"n1\",\"duration_ms\":1000}");

static PvJournalLog *log_;
static const PvJournalEntry **recs;
static size_t nrecs;
static PvJournalIncident summary;

static void load(const char *text)
{
	PvError err = {0};
	log_ = pv_journal_parse(text, strlen(text));
	assert_int_equal(log_->nbad, 0);
	assert_int_equal(pv_journal_incident_records(log_, ID, &recs, &nrecs, &err), PV_OK);
	assert_int_equal(pv_journal_incident_summary(log_, ID, &summary, &err), PV_OK);
}

static void unload(void)
{
	free(recs);
	pv_journal_log_free(log_);
	recs = NULL;
	log_ = NULL;
}

static const PvReportPhase *find_phase(const PvReport *r, const char *name)
{
	for (int i = 0; i < r->nphases; i++)
		if (strcmp(r->phases[i].name, name) == 0)
			return &r->phases[i];
	return NULL;
}

static void test_build(void **state)
{
	(void)state;
	PvReport r;
	load(failover);
	pv_report_build(&summary, recs, nrecs, &r);
	/* 10 records of the incident, 3 begin/end pairs merged, one begin without end */
	assert_int_equal(r.nsteps, 7);
	assert_string_equal(r.steps[0].rec->event, "incident-open");
	assert_string_equal(r.steps[2].rec->event, "promote");
	assert_int_equal(r.steps[2].start_ms, 2);
	assert_int_equal(r.steps[2].duration_ms, 400);
	assert_string_equal(r.steps[2].outcome, "ok");
	assert_string_equal(r.steps[4].rec->event, "repoint");
	assert_string_equal(r.steps[4].outcome, "failed");
	assert_string_equal(r.steps[4].note, "<b>connection refused</b>");
	assert_string_equal(r.steps[5].rec->event, "hook");
	assert_true(r.steps[5].unfinished);
	assert_int_equal(r.total_ms, 1000);
	assert_int_equal(r.detection_ms, 300);

	const PvReportPhase *p = find_phase(&r, "detection");
	assert_non_null(p);
	assert_int_equal(p->start_ms, -300);
	assert_int_equal(p->end_ms, 0);
	p = find_phase(&r, "promotion");
	assert_non_null(p);
	assert_int_equal(p->start_ms, 2);
	assert_int_equal(p->end_ms, 402);
	assert_non_null(find_phase(&r, "decision"));
	assert_non_null(find_phase(&r, "endpoint switch"));
	assert_non_null(find_phase(&r, "repointing"));
	assert_null(find_phase(&r, "fencing"));

	assert_true(r.outage_known);
	assert_true(r.outage_by_switch);
	assert_int_equal(r.outage_start_ms, -300);
	assert_int_equal(r.outage_end_ms, 453);
	assert_int_equal(r.loss_bytes, 0x100);
	assert_string_equal(r.old_primary_lsn, "0/3000100");
	assert_string_equal(r.winner_lsn, "0/3000000");
	pv_report_free(&r);
	pv_report_free(NULL);
	unload();
}

static void test_render(void **state)
{
	(void)state;
	PvReport r;
	PvBuf b = {0};
	load(failover);
	pv_report_build(&summary, recs, nrecs, &r);

	pv_report_render(&r, PV_REPORT_MD, &b);
	assert_non_null(strstr(b.data, "# Incident " ID "\n"));
	assert_non_null(strstr(b.data,
	                       "| client outage | 0.753s, from -0.300s (first failed probe "
	                       "of the primary) to +0.453s (end of the PgBouncer switch) |"));
	assert_non_null(strstr(b.data, "| data loss | at least 256 bytes of WAL"));
	assert_non_null(strstr(b.data, "| promotion | +0.002s | 0.400s |\n"));
	assert_non_null(strstr(b.data, "| hook | n1 | no end record |"));
	assert_non_null(strstr(b.data, "| n2 | no | - | 50 | - | - | no | not answering |\n"));
	pv_buf_reset(&b);

	pv_report_render(&r, PV_REPORT_JSON, &b);
	json_error_t jerr;
	json_t *o = json_loads(b.data, 0, &jerr);
	if (!o)
		fail_msg("not JSON: %s\n%s", jerr.text, b.data);
	assert_string_equal(json_string_value(json_object_get(o, "id")), ID);
	assert_int_equal(json_array_size(json_object_get(o, "steps")), 7);
	json_t *out = json_object_get(o, "outage");
	assert_int_equal(json_integer_value(json_object_get(out, "duration_ms")), 753);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(o, "data_loss"), "min_bytes")), 256);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(o, "decision"), "winner")), "n1");
	json_decref(o);
	pv_buf_reset(&b);

	pv_report_render(&r, PV_REPORT_HTML, &b);
	assert_true(strncmp(b.data, "<!DOCTYPE html>", 15) == 0);
	assert_non_null(strstr(b.data, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	assert_null(strstr(b.data, "<b>")); /* journal text is escaped */
	assert_non_null(strstr(b.data, "&lt;b&gt;connection refused&lt;/b&gt;"));
	assert_non_null(strstr(b.data, "promote n1 &lt;now&gt;"));
	size_t bars = 0;
	for (const char *p = strstr(b.data, "class=\"step\""); p;
	     p = strstr(p + 1, "class=\"step\""))
		bars++;
	assert_int_equal(bars, 4); /* promote, endpoint-switch, repoint, the unfinished hook */
	assert_non_null(strstr(b.data, "class=\"outage\""));
	assert_non_null(strstr(b.data, "</html>\n"));
	pv_buf_free(&b);
	pv_report_free(&r);
	unload();
}

/* An incident without a failover: no outage window, no data-loss figure. */
static void test_recovered(void **state)
{
	(void)state;
	static const char text[] = R(10, 100, "incident-open", "event", "\"n0\"", "null", "null",
	                             "{\"trigger\":\"automatic\"}")
	    R(11, 400, "incident-close", "event", "\"n0\"", "\"recovered\"", "null", "{}");
	PvReport r;
	PvBuf b = {0};
	load(text);
	pv_report_build(&summary, recs, nrecs, &r);
	assert_false(r.outage_known);
	assert_int_equal(r.loss_bytes, -1);
	assert_int_equal(r.nphases, 0);
	pv_report_render(&r, PV_REPORT_MD, &b);
	assert_non_null(strstr(b.data, "| client outage | no failover in this incident |"));
	assert_non_null(strstr(b.data, "| data loss | no failover decision in this incident |"));
	assert_null(strstr(b.data, "## Decision"));
	pv_buf_reset(&b);
	pv_report_render(&r, PV_REPORT_HTML, &b);
	assert_null(strstr(b.data, "class=\"outage\""));
	pv_buf_reset(&b);
	pv_report_render(&r, PV_REPORT_JSON, &b);
	json_error_t jerr;
	json_t *o = json_loads(b.data, 0, &jerr);
	assert_non_null(o);
	assert_true(json_is_false(json_object_get(json_object_get(o, "outage"), "known")));
	json_decref(o);
	pv_buf_free(&b);
	pv_report_free(&r);
	unload();
}

static void test_formats(void **state)
{
	(void)state;
	assert_int_equal(pv_report_format_parse("md"), PV_REPORT_MD);
	assert_int_equal(pv_report_format_parse("markdown"), PV_REPORT_MD);
	assert_int_equal(pv_report_format_parse("json"), PV_REPORT_JSON);
	assert_int_equal(pv_report_format_parse("html"), PV_REPORT_HTML);
	assert_int_equal(pv_report_format_parse("pdf"), -1);
	assert_int_equal(pv_report_format_parse(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build),
	    cmocka_unit_test(test_render),
	    cmocka_unit_test(test_recovered),
	    cmocka_unit_test(test_formats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
