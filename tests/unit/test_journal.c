/*
 * test_journal: the journal writer (journal.c) and reader (journal_read.c).
 *
 * Every test works in its own mkdtemp directory, removed at teardown.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/redact.h"
#include "journal/journal.h"
#include "journal/journal_chain.h"
#include "journal/journal_read.h"

typedef struct {
	char dir[64];
	char path[128];
} Fixture;

static int setup(void **state)
{
	Fixture *f = calloc(1, sizeof *f);
	strcpy(f->dir, "/tmp/pv-test-journal-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof f->path, "%s/journal.jsonl", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	Fixture *f = *state;
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	int rc = system(cmd);
	free(f);
	return rc == 0 ? 0 : -1;
}

static char *slurp(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	PvError err = {0};
	assert_int_equal(pv_file_read_all(path, &text, &len, &err), PV_OK);
	return text;
}

static void spit(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static size_t count_char(const char *s, char c)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == c;
	return n;
}

static PvJournal *open_ok(const char *path)
{
	PvJournal *j = NULL;
	PvError err = {0};
	PvStatus st = pv_journal_open(path, &j, &err);
	if (st != PV_OK)
		fail_msg("pv_journal_open: %s", err.msg);
	assert_non_null(j);
	return j;
}

static int64_t append_ok(PvJournal *j, const char *incident, const char *event,
                         PvJournalPhase phase, const char *node, const char *outcome,
                         const char *detail)
{
	PvError err = {0};
	int64_t seq = -1;
	PvJournalRecord r = {
	    .incident = incident,
	    .event = event,
	    .phase = phase,
	    .node = node,
	    .outcome = outcome,
	    .duration_ms = -1,
	    .detail_json = detail,
	};
	PvStatus st = pv_journal_append(j, &r, &seq, &err);
	if (st != PV_OK)
		fail_msg("pv_journal_append: %s", err.msg);
	return seq;
}

static PvJournalLog *read_ok(const char *path)
{
	PvJournalLog *log = NULL;
	PvError err = {0};
	PvStatus st = pv_journal_read(path, &log, &err);
	if (st != PV_OK)
		fail_msg("pv_journal_read: %s", err.msg);
	return log;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- writer ---- */

static void test_phase_names(void **state)
{
	(void)state;
	assert_string_equal(pv_journal_phase_name(PV_PHASE_EVENT), "event");
	assert_string_equal(pv_journal_phase_name(PV_PHASE_BEGIN), "begin");
	assert_string_equal(pv_journal_phase_name(PV_PHASE_END), "end");
	assert_string_equal(pv_journal_phase_name((PvJournalPhase)42), "unknown");
	assert_int_equal(pv_journal_phase_parse("end"), PV_PHASE_END);
	assert_int_equal(pv_journal_phase_parse("nope"), -1);
	assert_int_equal(pv_journal_phase_parse(NULL), -1);
}

static void test_record_format(void **state)
{
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	assert_int_equal(pv_journal_last_seq(j), 0);
	assert_string_equal(pv_journal_path(j), f->path);
	assert_int_equal(append_ok(j, NULL, "daemon-start", PV_PHASE_EVENT, NULL, NULL, NULL), 1);
	PvJournalRecord r = {
	    .incident = "20261125T173455Z-2",
	    .event = "promote",
	    .phase = PV_PHASE_END,
	    .node = "n1",
	    .outcome = "ok",
	    .duration_ms = 1234,
	    .detail_json = "{\"a\":1}",
	};
	PvError err = {0};
	assert_int_equal(pv_journal_append(j, &r, NULL, &err), PV_OK);
	assert_int_equal(pv_journal_last_seq(j), 2);
	pv_journal_free(j);

	struct stat sb;
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);

	char *text = slurp(f->path);
	char *second = strchr(text, '\n') + 1;
	/* key order and null encoding are part of the contract */
	assert_non_null(strstr(text, "{\"seq\":1,\"ts\":\""));
	assert_non_null(strstr(text,
	                       "\"incident\":null,\"event\":\"daemon-start\",\"phase\":\"event\","
	                       "\"node\":null,\"outcome\":null,\"duration_ms\":null,"
	                       "\"detail\":{},\"prev\":\"" PV_JOURNAL_GENESIS "\"}\n"));
	assert_non_null(strstr(second, "\"incident\":\"20261125T173455Z-2\",\"event\":\"promote\","
	                               "\"phase\":\"end\",\"node\":\"n1\",\"outcome\":\"ok\","
	                               "\"duration_ms\":1234,\"detail\":{\"a\":1},\"prev\":\""));
	assert_int_equal(count_char(text, '\n'), 2);

	json_error_t jerr;
	json_t *o = json_loadb(text, (size_t)(second - text), 0, &jerr);
	assert_non_null(o);
	const char *keys[] = {"seq",   "ts",   "mono_ms", "incident",    "event",
	                      "phase", "node", "outcome", "duration_ms", "detail", "prev"};
	size_t k = 0;
	const char *key;
	json_t *val;
	json_object_foreach(o, key, val)
	{
		assert_true(k < 11);
		assert_string_equal(key, keys[k++]);
	}
	assert_int_equal(k, 11);
	/* ts is UTC with microseconds */
	const char *ts = json_string_value(json_object_get(o, "ts"));
	assert_int_equal(strlen(ts), 27);
	assert_int_equal(ts[26], 'Z');
	int64_t us;
	assert_true(pv_journal_parse_ts(ts, &us));
	assert_true(json_integer_value(json_object_get(o, "mono_ms")) >= 0);
	json_decref(o);
	free(text);
}

static void test_escaping(void **state)
{
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	PvBuf d = {0};
	PvJson w;
	pv_json_init(&w, &d);
	pv_json_obj_open(&w, NULL);
	pv_json_str(&w, "quote", "say \"hi\"\\");
	pv_json_str(&w, "lines", "a\nb\r\nc");
	pv_json_str(&w, "ctl", "\x01\x1f\x7f\t");
	pv_json_str(&w, "bad", "x\xff\xfey");
	pv_json_str(&w, "utf8", "caf\xc3\xa9 \xe2\x82\xac");
	pv_json_str(&w, "key\n\"odd", "v");
	pv_json_obj_close(&w);

	append_ok(j, "inc\"1\n", "ev\"ent\nwith\x01stuff", PV_PHASE_EVENT, "node\\\xc0\xafz",
	          "o\tk", d.data);
	/* even a trusted detail with a raw line break cannot split the record */
	append_ok(j, NULL, "raw", PV_PHASE_EVENT, NULL, NULL, "{\"a\":\n1,\r\n\"b\":2}");
	pv_buf_free(&d);
	pv_journal_free(j);

	char *text = slurp(f->path);
	assert_int_equal(count_char(text, '\n'), 2);
	assert_null(strchr(text, '\r'));
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		assert_true(*p == '\n' || (*p >= 0x20 && *p != 0x7F));
	free(text);

	PvJournalLog *log = read_ok(f->path);
	assert_int_equal(log->nbad, 0);
	assert_int_equal(log->nentries, 2);
	const PvJournalEntry *e = &log->entries[0];
	assert_string_equal(e->event, "ev\"ent\nwith\x01stuff");
	assert_string_equal(e->incident, "inc\"1\n");
	assert_string_equal(e->node, "node\\\xef\xbf\xbd\xef\xbf\xbdz");
	assert_string_equal(e->outcome, "o\tk");
	assert_string_equal(pv_journal_entry_detail_str(e, "quote"), "say \"hi\"\\");
	assert_string_equal(pv_journal_entry_detail_str(e, "lines"), "a\nb\r\nc");
	assert_string_equal(pv_journal_entry_detail_str(e, "ctl"), "\x01\x1f\x7f\t");
	assert_string_equal(pv_journal_entry_detail_str(e, "bad"), "x\xef\xbf\xbd\xef\xbf\xbdy");
	assert_string_equal(pv_journal_entry_detail_str(e, "utf8"), "caf\xc3\xa9 \xe2\x82\xac");
	assert_string_equal(pv_journal_entry_detail_str(e, "key\n\"odd"), "v");
	e = &log->entries[1];
	assert_int_equal(json_integer_value(json_object_get(e->detail, "a")), 1);
	assert_int_equal(json_integer_value(json_object_get(e->detail, "b")), 2);
	pv_journal_log_free(log);
}

static void test_append_refuses_missing_event(void **state)
{
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	PvError err = {0};
	PvJournalRecord r = {.event = NULL, .duration_ms = -1};
	assert_int_equal(pv_journal_append(j, &r, NULL, &err), PV_ERR_STATE);
	assert_non_null(strstr(err.msg, "without an event"));
	r.event = "";
	assert_int_equal(pv_journal_append(j, &r, NULL, &err), PV_ERR_STATE);
	assert_int_equal(pv_journal_last_seq(j), 0);
	pv_journal_free(j);
	pv_journal_free(NULL);
}

static void test_open_errors(void **state)
{
	Fixture *f = *state;
	PvJournal *j = (PvJournal *)&j;
	PvError err = {0};
	char path[192];
	snprintf(path, sizeof path, "%s/no/such/dir/journal", f->dir);
	assert_int_equal(pv_journal_open(path, &j, &err), PV_ERR_IO);
	assert_null(j);
	assert_non_null(strstr(err.msg, "cannot open journal"));
	assert_non_null(strstr(err.msg, "No such file or directory"));
	assert_int_equal(pv_journal_open("", &j, &err), PV_ERR_CONFIG);
	assert_null(j);
}

static void test_seq_continues_after_reopen(void **state)
{
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	for (int i = 1; i <= 3; i++)
		assert_int_equal(append_ok(j, NULL, "node-up", PV_PHASE_EVENT, "n0", NULL, NULL),
		                 i);
	pv_journal_free(j);

	j = open_ok(f->path);
	assert_int_equal(pv_journal_last_seq(j), 3);
	assert_int_equal(append_ok(j, NULL, "daemon-start", PV_PHASE_EVENT, NULL, NULL, NULL), 4);
	pv_journal_free(j);

	j = open_ok(f->path);
	assert_int_equal(pv_journal_last_seq(j), 4);
	pv_journal_free(j);

	PvJournalLog *log = read_ok(f->path);
	assert_int_equal(log->nentries, 4);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(log->entries[i].seq, (int64_t)i + 1);
	pv_journal_log_free(log);
}

static void test_seq_from_long_tail(void **state)
{
	/* the last record is longer than the first read window: the scan must widen */
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	append_ok(j, NULL, "a", PV_PHASE_EVENT, NULL, NULL, NULL);
	PvBuf big = {0};
	PvJson w;
	pv_json_init(&w, &big);
	pv_json_obj_open(&w, NULL);
	char *filler = malloc(200001);
	memset(filler, 'x', 200000);
	filler[200000] = '\0';
	pv_json_str(&w, "filler", filler);
	pv_json_obj_close(&w);
	append_ok(j, NULL, "b", PV_PHASE_EVENT, NULL, NULL, big.data);
	pv_journal_free(j);
	j = open_ok(f->path);
	assert_int_equal(pv_journal_last_seq(j), 2);
	pv_journal_free(j);

	/* and a torn line longer than the window after it */
	FILE *fp = fopen(f->path, "a");
	fputs("{\"seq\":3,\"filler\":\"", fp);
	fputs(filler, fp);
	fclose(fp);
	j = open_ok(f->path);
	assert_int_equal(pv_journal_last_seq(j), 2);
	assert_int_equal(append_ok(j, NULL, "c", PV_PHASE_EVENT, NULL, NULL, NULL), 3);
	pv_journal_free(j);
	PvJournalLog *log = read_ok(f->path);
	assert_int_equal(log->nentries, 3);
	assert_int_equal(log->nbad, 1);
	assert_int_equal(log->first_bad_line, 3);
	assert_string_equal(log->entries[2].event, "c");
	pv_journal_log_free(log);
	free(filler);
	pv_buf_free(&big);
}

static void test_torn_last_line(void **state)
{
	Fixture *f = *state;
	spit(f->path, "{\"seq\":7,\"event\":\"node-up\",\"incident\":null}\n"
	              "{\"seq\":8,\"event\":\"node-down\"}\n"
	              "{\"seq\":9,\"ts\":\"2026-11-25T17:3");
	PvJournal *j = open_ok(f->path);
	assert_int_equal(pv_journal_last_seq(j), 8);
	assert_int_equal(append_ok(j, NULL, "daemon-start", PV_PHASE_EVENT, NULL, NULL, NULL), 9);
	assert_int_equal(append_ok(j, NULL, "primary-found", PV_PHASE_EVENT, "n0", NULL, NULL), 10);
	pv_journal_free(j);

	char *text = slurp(f->path);
	/* the torn fragment stays on its own line; the new record starts a fresh one */
	assert_non_null(strstr(text, "{\"seq\":9,\"ts\":\"2026-11-25T17:3\n{\"seq\":9,"));
	free(text);

	/* the reader skips and counts the fragment */
	PvJournalLog *log = read_ok(f->path);
	assert_int_equal(log->nentries, 4);
	assert_int_equal(log->nbad, 1);
	assert_int_equal(log->first_bad_line, 3);
	assert_false(log->torn_tail);
	assert_int_equal(log->entries[2].seq, 9);
	assert_string_equal(log->entries[2].event, "daemon-start");
	assert_int_equal(log->entries[3].seq, 10);
	pv_journal_log_free(log);

	/* reopening now sees a clean file */
	j = open_ok(f->path);
	assert_int_equal(pv_journal_last_seq(j), 10);
	pv_journal_free(j);
}

static void test_torn_but_whole_record(void **state)
{
	/* only the newline is missing: the record counts, so its seq is never reused */
	Fixture *f = *state;
	spit(f->path, "{\"seq\":1,\"event\":\"a\"}\n{\"seq\":2,\"event\":\"b\"}");
	PvJournal *j = open_ok(f->path);
	assert_int_equal(pv_journal_last_seq(j), 2);
	assert_int_equal(append_ok(j, NULL, "c", PV_PHASE_EVENT, NULL, NULL, NULL), 3);
	pv_journal_free(j);
	PvJournalLog *log = read_ok(f->path);
	assert_int_equal(log->nentries, 3);
	assert_int_equal(log->nbad, 0);
	pv_journal_log_free(log);
}

static void test_only_garbage(void **state)
{
	Fixture *f = *state;
	spit(f->path, "not json\n\n[1,2]\n{\"seq\":\"x\",\"event\":\"a\"}\n{\"seq\":3}\n");
	PvJournal *j = open_ok(f->path);
	assert_int_equal(pv_journal_last_seq(j), 0);
	pv_journal_free(j);
	PvJournalLog *log = read_ok(f->path);
	assert_int_equal(log->nentries, 0);
	assert_int_equal(log->nbad, 4); /* the empty line is not counted */
	assert_int_equal(log->first_bad_line, 1);
	pv_journal_log_free(log);
}

static void test_begin_end(void **state)
{
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	PvJournalSpan span, other;
	PvError err = {0};
	char id[40];

	pv_journal_new_incident_id(j, id, sizeof id);
	append_ok(j, id, "incident-open", PV_PHASE_EVENT, "n0", NULL,
	          "{\"reason\":\"primary down\",\"trigger\":\"automatic\"}");
	assert_int_equal(
	    pv_journal_begin(j, &span, id, "promote", "n1", "{\"timeout_ms\":5000}", &err), PV_OK);
	assert_int_equal(span.begin_seq, 2);
	assert_string_equal(span.event, "promote");
	assert_string_equal(span.node, "n1");
	assert_string_equal(span.incident, id);
	assert_int_equal(pv_journal_begin(j, &other, id, "endpoint-switch", NULL, NULL, &err),
	                 PV_OK);
	sleep_ms(60);
	assert_int_equal(pv_journal_end(j, &span, "ok", "{\"timeline\":2}", &err), PV_OK);
	assert_int_equal(pv_journal_end(j, &other, "failed", NULL, &err), PV_OK);
	pv_journal_free(j);

	PvJournalLog *log = read_ok(f->path);
	assert_int_equal(log->nentries, 5);
	const PvJournalEntry *b = &log->entries[1], *e = &log->entries[3], *e2 = &log->entries[4];
	assert_string_equal(b->phase, "begin");
	assert_null(b->outcome);
	assert_int_equal(b->duration_ms, -1);
	assert_int_equal(json_integer_value(json_object_get(b->detail, "timeout_ms")), 5000);
	assert_string_equal(e->phase, "end");
	assert_string_equal(e->event, "promote");
	assert_string_equal(e->node, "n1");
	assert_string_equal(e->incident, id);
	assert_string_equal(e->outcome, "ok");
	assert_true(e->duration_ms >= 60);
	assert_true(e->duration_ms < 5000);
	/* duration_ms is exactly the mono_ms difference of the pair */
	assert_int_equal(e->duration_ms, e->mono_ms - b->mono_ms);
	assert_null(e2->node);
	assert_string_equal(e2->outcome, "failed");

	const PvJournalEntry **recs;
	size_t n;
	assert_int_equal(pv_journal_incident_records(log, id, &recs, &n, &err), PV_OK);
	assert_int_equal(n, 5);
	long partner[5];
	pv_journal_pair_steps(recs, n, partner);
	assert_int_equal(partner[0], -1);
	assert_int_equal(partner[1], 3);
	assert_int_equal(partner[3], 1);
	assert_int_equal(partner[2], 4);
	assert_int_equal(partner[4], 2);
	int64_t off[5];
	pv_journal_offsets(recs, n, off);
	assert_int_equal(off[0], 0);
	assert_true(off[3] - off[1] == e->duration_ms);
	free(recs);
	pv_journal_log_free(log);
}

static void test_begin_refuses_long_names(void **state)
{
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	PvJournalSpan span;
	PvError err = {0};
	char longname[100];
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(pv_journal_begin(j, &span, NULL, "repoint", longname, NULL, &err),
	                 PV_ERR_STATE);
	assert_non_null(strstr(err.msg, "too long"));
	assert_int_equal(pv_journal_begin(j, &span, NULL, NULL, "n1", NULL, &err), PV_ERR_STATE);
	assert_int_equal(pv_journal_last_seq(j), 0);
	pv_journal_free(j);
}

static void test_incident_id(void **state)
{
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	char id[40];
	append_ok(j, NULL, "daemon-start", PV_PHASE_EVENT, NULL, NULL, NULL);
	pv_journal_new_incident_id(j, id, sizeof id);
	/* YYYYMMDDTHHMMSSZ-2 */
	assert_int_equal(strlen(id), 18);
	for (int i = 0; i < 8; i++)
		assert_true(id[i] >= '0' && id[i] <= '9');
	assert_int_equal(id[8], 'T');
	assert_int_equal(id[15], 'Z');
	assert_string_equal(id + 16, "-2");
	assert_int_equal(append_ok(j, id, "incident-open", PV_PHASE_EVENT, NULL, NULL, NULL), 2);
	pv_journal_free(j);
}

static void test_redacted_conninfo_in_detail(void **state)
{
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	PvBuf d = {0};
	PvJson w;
	char *kv = pv_redact_conninfo("host=10.0.0.2 port=5432 user=repl password=secret "
	                              "application_name=n2");
	char *quoted = pv_redact_conninfo("host=h password='sec ret\\'s' user=u");
	char *uri = pv_redact_conninfo("postgresql://repl:secret@10.0.0.2:5432/postgres"
	                               "?sslmode=require&password=secret");
	pv_json_init(&w, &d);
	pv_json_obj_open(&w, NULL);
	pv_json_str(&w, "primary_conninfo", kv);
	pv_json_str(&w, "quoted", quoted);
	pv_json_str(&w, "uri", uri);
	pv_json_obj_close(&w);
	PvJournalSpan span;
	PvError err = {0};
	assert_int_equal(pv_journal_begin(j, &span, NULL, "repoint", "n2", d.data, &err), PV_OK);
	assert_int_equal(pv_journal_end(j, &span, "ok", d.data, &err), PV_OK);
	pv_journal_free(j);

	char *text = slurp(f->path);
	assert_null(strstr(text, "secret"));
	assert_null(strstr(text, "sec ret"));
	assert_non_null(strstr(text, "password=" PV_REDACTED));
	assert_non_null(strstr(text, "repl:" PV_REDACTED "@10.0.0.2"));
	assert_non_null(strstr(text, "application_name=n2"));
	free(text);
	free(kv);
	free(quoted);
	free(uri);
	pv_buf_free(&d);
}

static void test_write_error(void **state)
{
	/* a file size limit makes write(2) fail with EFBIG, like a full disk: the append
	 * reports PV_ERR_IO, nothing crashes, and the journal recovers once space is back */
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	append_ok(j, NULL, "daemon-start", PV_PHASE_EVENT, NULL, NULL, NULL);
	struct stat sb;
	assert_int_equal(stat(f->path, &sb), 0);

	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size + 20; /* room for a fragment of the next line */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

	PvError err = {0};
	int64_t seq = -1;
	PvJournalRecord r = {.event = "node-down", .node = "n1", .duration_ms = -1};
	PvStatus st = pv_journal_append(j, &r, &seq, &err);
	PvStatus st2 = pv_journal_append(j, &r, &seq, &err); /* nothing fits at all now */

	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldsig);

	assert_int_equal(st, PV_ERR_IO);
	assert_int_equal(st2, PV_ERR_IO);
	assert_int_equal(seq, -1);
	assert_non_null(strstr(err.msg, "cannot write journal record"));
	assert_non_null(strstr(err.msg, f->path));
	assert_non_null(strstr(err.msg, "File too large"));

	/* the fragment consumed seq 2; the next record is 3, on a fresh line */
	assert_int_equal(pv_journal_last_seq(j), 2);
	assert_int_equal(append_ok(j, NULL, "node-up", PV_PHASE_EVENT, "n1", NULL, NULL), 3);
	pv_journal_free(j);

	PvJournalLog *log = read_ok(f->path);
	assert_int_equal(log->nentries, 2);
	assert_int_equal(log->nbad, 1);
	assert_int_equal(log->entries[0].seq, 1);
	assert_int_equal(log->entries[1].seq, 3);
	pv_journal_log_free(log);
}

/* ---- reader ---- */

static const char *const sample =
    "{\"seq\":1,\"ts\":\"2026-11-25T17:30:00.000000Z\",\"mono_ms\":1000,\"incident\":null,"
    "\"event\":\"daemon-start\",\"phase\":\"event\",\"node\":null,\"outcome\":null,"
    "\"duration_ms\":null,\"detail\":{\"config\":\"/etc/pgvigil/pgvigil.conf\",\"nodes\":3}}\n"
    "{\"seq\":2,\"ts\":\"2026-11-25T17:34:55.000000Z\",\"mono_ms\":2000,"
    "\"incident\":\"20261125T173455Z-2\",\"event\":\"incident-open\",\"phase\":\"event\","
    "\"node\":\"n0\",\"outcome\":null,\"duration_ms\":null,"
    "\"detail\":{\"reason\":\"primary n0 failed 3 probes\",\"trigger\":\"automatic\"}}\n"
    "this line is not json\n"
    "{\"seq\":3,\"ts\":\"2026-11-25T17:34:55.010000Z\",\"mono_ms\":2010,"
    "\"incident\":\"20261125T173455Z-2\",\"event\":\"failover-decision\",\"phase\":\"event\","
    "\"node\":null,\"outcome\":null,\"duration_ms\":null,\"detail\":{\"candidates\":["
    "{\"node\":\"n1\",\"reachable\":true,\"in_recovery\":true,\"received_lsn\":\"0/3000148\","
    "\"priority\":100,\"eligible\":true,\"reason\":null}],\"winner\":\"n1\"}}\n"
    "\n"
    "{\"seq\":4,\"ts\":\"2026-11-25T17:34:55.020000Z\",\"mono_ms\":2020,"
    "\"incident\":\"20261125T173455Z-2\",\"event\":\"promote\",\"phase\":\"begin\","
    "\"node\":\"n1\",\"outcome\":null,\"duration_ms\":null,\"detail\":{}}\n"
    "{\"seq\":5,\"ts\":\"2026-11-25T17:40:00.000000Z\",\"mono_ms\":9000,"
    "\"incident\":\"20261125T174000Z-5\",\"event\":\"incident-open\",\"phase\":\"event\","
    "\"node\":\"n1\",\"outcome\":null,\"duration_ms\":null,"
    "\"detail\":{\"reason\":\"drill\",\"trigger\":\"manual\"}}\n"
    "{\"seq\":6,\"ts\":\"2026-11-25T17:34:57.020000Z\",\"mono_ms\":4020,"
    "\"incident\":\"20261125T173455Z-2\",\"event\":\"promote\",\"phase\":\"end\","
    "\"node\":\"n1\",\"outcome\":\"ok\",\"duration_ms\":2000,\"detail\":{}}\n"
    "{\"seq\":8,\"ts\":\"2026-11-25T17:34:58.000000Z\",\"mono_ms\":5000,"
    "\"incident\":\"20261125T173455Z-2\",\"event\":\"incident-close\",\"phase\":\"event\","
    "\"node\":null,\"outcome\":\"ok\",\"duration_ms\":null,"
    "\"detail\":{\"new_primary\":\"n1\",\"duration_ms\":3000}}\n"
    "{\"seq\":7,\"ts\":\"2026-11-25T17:34:57.500000Z\",\"mono_ms\":4500,"
    "\"incident\":\"20261125T173455Z-2\",\"event\":\"endpoint-switch\",\"phase\":\"begin\","
    "\"node\":null,\"outcome\":null,\"duration_ms\":null,\"detail\":\"not an object\"}\n"
    "{\"seq\":9,\"ts\":\"2026-11-25T17:41";

static void test_reader_parse(void **state)
{
	Fixture *f = *state;
	spit(f->path, sample);
	PvJournalLog *log = read_ok(f->path);
	assert_int_equal(log->nentries, 8);
	assert_int_equal(log->nbad, 2);
	assert_int_equal(log->first_bad_line, 3);
	assert_true(log->torn_tail);

	const PvJournalEntry *e = &log->entries[0];
	assert_int_equal(e->seq, 1);
	assert_string_equal(e->ts, "2026-11-25T17:30:00.000000Z");
	assert_int_equal(e->mono_ms, 1000);
	assert_null(e->incident);
	assert_string_equal(e->event, "daemon-start");
	assert_string_equal(e->phase, "event");
	assert_null(e->node);
	assert_null(e->outcome);
	assert_int_equal(e->duration_ms, -1);
	assert_int_equal(e->line, 1);
	char *ds = pv_journal_entry_detail_string(e);
	assert_string_equal(ds, "{\"config\":\"/etc/pgvigil/pgvigil.conf\",\"nodes\":3}");
	free(ds);

	e = &log->entries[2];
	assert_int_equal(e->seq, 3);
	assert_int_equal(e->line, 4);
	json_t *c = json_array_get(json_object_get(e->detail, "candidates"), 0);
	assert_string_equal(json_string_value(json_object_get(c, "received_lsn")), "0/3000148");

	/* a detail that is not an object reads as {} */
	e = &log->entries[7];
	assert_int_equal(e->seq, 7);
	assert_true(json_is_object(e->detail));
	assert_int_equal(json_object_size(e->detail), 0);
	ds = pv_journal_entry_detail_string(e);
	assert_string_equal(ds, "{}");
	free(ds);
	assert_null(pv_journal_entry_detail_str(e, "reason"));
	pv_journal_log_free(log);
	pv_journal_log_free(NULL);

	/* a record missing optional fields still reads */
	log = pv_journal_parse("{\"seq\":1,\"event\":\"x\"}", 21);
	assert_int_equal(log->nentries, 1);
	assert_string_equal(log->entries[0].ts, "");
	assert_string_equal(log->entries[0].phase, "");
	assert_int_equal(log->entries[0].mono_ms, -1);
	assert_false(log->torn_tail);
	pv_journal_log_free(log);
}

static void test_reader_missing_file(void **state)
{
	Fixture *f = *state;
	PvJournalLog *log = (PvJournalLog *)&log;
	PvError err = {0};
	assert_int_equal(pv_journal_read(f->path, &log, &err), PV_ERR_NOT_FOUND);
	assert_null(log);
	assert_non_null(strstr(err.msg, f->path));
}

static void test_incident_grouping(void **state)
{
	Fixture *f = *state;
	PvError err = {0};
	spit(f->path, sample);
	PvJournalLog *log = read_ok(f->path);

	PvJournalIncident *inc;
	size_t n;
	pv_journal_list_incidents(log, &inc, &n);
	assert_int_equal(n, 2);

	assert_string_equal(inc[0].id, "20261125T173455Z-2");
	assert_int_equal(inc[0].nrecords, 6);
	assert_int_equal(inc[0].first_seq, 2);
	assert_int_equal(inc[0].last_seq, 8);
	assert_string_equal(inc[0].first_ts, "2026-11-25T17:34:55.000000Z");
	assert_string_equal(inc[0].last_ts, "2026-11-25T17:34:58.000000Z");
	assert_string_equal(inc[0].trigger, "automatic");
	assert_string_equal(inc[0].reason, "primary n0 failed 3 probes");
	assert_true(inc[0].closed);
	assert_string_equal(inc[0].outcome, "ok");
	assert_string_equal(inc[0].new_primary, "n1");
	assert_string_equal(inc[0].ended_ts, "2026-11-25T17:34:58.000000Z");
	assert_int_equal(inc[0].duration_ms, 3000);

	assert_string_equal(inc[1].id, "20261125T174000Z-5");
	assert_int_equal(inc[1].nrecords, 1);
	assert_string_equal(inc[1].trigger, "manual");
	assert_string_equal(inc[1].reason, "drill");
	assert_false(inc[1].closed);
	assert_string_equal(inc[1].outcome, "open");
	assert_null(inc[1].new_primary);
	assert_null(inc[1].ended_ts);
	assert_int_equal(inc[1].duration_ms, -1);
	free(inc);

	/* one incident's records, in seq order although the file has 8 before 7 */
	const PvJournalEntry **recs;
	assert_int_equal(pv_journal_incident_records(log, "20261125T173455Z-2", &recs, &n, &err),
	                 PV_OK);
	assert_int_equal(n, 6);
	const int64_t want[] = {2, 3, 4, 6, 7, 8};
	for (size_t i = 0; i < n; i++)
		assert_int_equal(recs[i]->seq, want[i]);

	long partner[6];
	pv_journal_pair_steps(recs, n, partner);
	assert_int_equal(partner[2], 3); /* promote begin/end */
	assert_int_equal(partner[3], 2);
	assert_int_equal(partner[4], -1); /* endpoint-switch never ended */
	int64_t off[6];
	pv_journal_offsets(recs, n, off);
	assert_int_equal(off[0], 0);
	assert_int_equal(off[1], 10);
	assert_int_equal(off[3], 2020);
	assert_int_equal(off[5], 3000);
	free(recs);

	PvJournalIncident one;
	assert_int_equal(pv_journal_incident_summary(log, "20261125T174000Z-5", &one, &err), PV_OK);
	assert_string_equal(one.outcome, "open");

	recs = (const PvJournalEntry **)&recs;
	assert_int_equal(pv_journal_incident_records(log, "nope", &recs, &n, &err),
	                 PV_ERR_NOT_FOUND);
	assert_null(recs);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err.msg, "nope"));
	assert_int_equal(pv_journal_incident_summary(log, "nope", &one, &err), PV_ERR_NOT_FOUND);
	pv_journal_log_free(log);

	/* an empty journal has no incidents */
	log = pv_journal_parse("", 0);
	pv_journal_list_incidents(log, &inc, &n);
	assert_int_equal(n, 0);
	free(inc);
	pv_journal_log_free(log);
}

static void test_offsets_fall_back_to_wall_time(void **state)
{
	(void)state;
	/* mono_ms goes backwards (a reboot) or is missing: ts differences are used */
	const char *text =
	    "{\"seq\":1,\"ts\":\"2026-11-25T23:59:59.500000Z\",\"mono_ms\":90000,\"event\":\"a\","
	    "\"incident\":\"i\"}\n"
	    "{\"seq\":2,\"ts\":\"2026-11-26T00:00:01.000000Z\",\"mono_ms\":300,\"event\":\"b\","
	    "\"incident\":\"i\"}\n"
	    "{\"seq\":3,\"ts\":\"2026-11-26T00:00:01.250000Z\",\"event\":\"c\",\"incident\":\"i\"}"
	    "\n"
	    "{\"seq\":4,\"ts\":\"garbage\",\"event\":\"d\",\"incident\":\"i\"}\n";
	PvJournalLog *log = pv_journal_parse(text, strlen(text));
	const PvJournalEntry **recs;
	size_t n;
	PvError err = {0};
	assert_int_equal(pv_journal_incident_records(log, "i", &recs, &n, &err), PV_OK);
	assert_int_equal(n, 4);
	int64_t off[4];
	pv_journal_offsets(recs, n, off);
	assert_int_equal(off[0], 0);
	assert_int_equal(off[1], 1500);
	assert_int_equal(off[2], 1750);
	assert_int_equal(off[3], 1750);
	free(recs);
	pv_journal_log_free(log);
}

static void test_parse_ts(void **state)
{
	(void)state;
	int64_t us;
	assert_true(pv_journal_parse_ts("1970-01-01T00:00:01.000002Z", &us));
	assert_int_equal(us, 1000002);
	assert_true(pv_journal_parse_ts("1970-01-01T00:00:01Z", &us));
	assert_int_equal(us, 1000000);
	assert_true(pv_journal_parse_ts("1970-01-01T00:00:00.5Z", &us));
	assert_int_equal(us, 500000);
	assert_false(pv_journal_parse_ts("1970-01-01T00:00:00", &us));
	assert_false(pv_journal_parse_ts("yesterday", &us));
	assert_false(pv_journal_parse_ts(NULL, &us));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_phase_names),
	    cmocka_unit_test_setup_teardown(test_record_format, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_refuses_missing_event, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_seq_continues_after_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_seq_from_long_tail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_last_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_but_whole_record, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_only_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_begin_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_begin_refuses_long_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_incident_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_redacted_conninfo_in_detail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reader_parse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reader_missing_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_incident_grouping, setup, teardown),
	    cmocka_unit_test(test_offsets_fall_back_to_wall_time),
	    cmocka_unit_test(test_parse_ts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
