/*
 * test_journal_chain: the journal's hash chain (journal_chain.c), rotation in the writer
 * (journal.c), reading across rotated files (journal_read.c) and pv_journal_verify.
 *
 * Every test works in its own mkdtemp directory, removed at teardown.  Tampering is done on
 * the file's lines the way an editor would: change a byte, drop a line, swap two lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/fileio.h"
#include "common/log.h"
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
	strcpy(f->dir, "/tmp/pv-test-chain-XXXXXX");
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
	PvError err = {0};
	if (pv_file_read_all(path, &text, NULL, &err) != PV_OK)
		fail_msg("%s", err.msg);
	return text;
}

static void spit(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static PvJournal *open_ok(const char *path)
{
	PvJournal *j = NULL;
	PvError err = {0};
	if (pv_journal_open(path, &j, &err) != PV_OK)
		fail_msg("open: %s", err.msg);
	return j;
}

static void append(PvJournal *j, const char *event, const char *detail)
{
	PvJournalRecord r = {.event = event, .duration_ms = -1, .detail_json = detail};
	PvError err = {0};
	if (pv_journal_append(j, &r, NULL, &err) != PV_OK)
		fail_msg("append: %s", err.msg);
}

/* A journal at path with n records "e1".."en". */
static void write_n(const char *path, int n)
{
	PvJournal *j = open_ok(path);
	for (int i = 1; i <= n; i++) {
		char ev[16], detail[32];
		snprintf(ev, sizeof ev, "e%d", i);
		snprintf(detail, sizeof detail, "{\"i\":%d}", i);
		append(j, ev, detail);
	}
	pv_journal_free(j);
}

/* Line k (1-based) of text, malloc'd, without its newline. */
static char *line_of(const char *text, int k)
{
	const char *p = text;
	for (int i = 1; i < k; i++) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	size_t n = strcspn(p, "\n");
	char *s = malloc(n + 1);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static const char *prev_of(json_t **holder, const char *line)
{
	json_error_t jerr;
	*holder = json_loads(line, 0, &jerr);
	assert_non_null(*holder);
	return json_string_value(json_object_get(*holder, "prev"));
}

static void assert_prev_is_hash_of(const char *line, const char *prev_line)
{
	json_t *o;
	char want[PV_JOURNAL_HASH_HEX + 1];
	pv_journal_hash(prev_line, strlen(prev_line), want);
	const char *prev = prev_of(&o, line);
	assert_non_null(prev);
	assert_string_equal(prev, want);
	json_decref(o);
}

/* Verifies path; returns the report (caller frees) and fills sum. */
static char *verify(const char *path, PvJournalVerify *sum)
{
	PvBuf report = {0};
	PvError err = {0};
	if (pv_journal_verify(path, &report, sum, &err) != PV_OK)
		fail_msg("verify: %s", err.msg);
	return pv_buf_steal(&report);
}

/* Rewrites path keeping its lines in the order given by idx (1-based, 0 ends). */
static void reorder(const char *path, const int *idx)
{
	char *text = slurp(path);
	PvBuf b = {0};
	for (; *idx; idx++) {
		char *l = line_of(text, *idx);
		pv_buf_printf(&b, "%s\n", l);
		free(l);
	}
	spit(path, b.data);
	pv_buf_free(&b);
	free(text);
}

/* ---------------------------------------------------------------- hash */

static void test_sha256_vectors(void **state)
{
	(void)state;
	char h[PV_JOURNAL_HASH_HEX + 1];
	pv_journal_hash("", 0, h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	pv_journal_hash("abc", 3, h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	pv_journal_hash(m, strlen(m), h);
	assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_int_equal(strlen(PV_JOURNAL_GENESIS), PV_JOURNAL_HASH_HEX);
}

/* ---------------------------------------------------------------- writer */

static void test_chain_on_append(void **state)
{
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	assert_string_equal(pv_journal_last_hash(j), PV_JOURNAL_GENESIS);
	append(j, "a", NULL);
	append(j, "b", "{\"x\":\"y\"}");
	pv_journal_free(j);
	/* reopened: the chain continues from the last line */
	j = open_ok(f->path);
	char *text = slurp(f->path);
	char *l2 = line_of(text, 2);
	char h[PV_JOURNAL_HASH_HEX + 1];
	pv_journal_hash(l2, strlen(l2), h);
	assert_string_equal(pv_journal_last_hash(j), h);
	append(j, "c", NULL);
	pv_journal_free(j);
	free(text);
	free(l2);

	text = slurp(f->path);
	char *l1 = line_of(text, 1);
	l2 = line_of(text, 2);
	char *l3 = line_of(text, 3);
	json_t *o;
	assert_string_equal(prev_of(&o, l1), PV_JOURNAL_GENESIS);
	json_decref(o);
	assert_prev_is_hash_of(l2, l1);
	assert_prev_is_hash_of(l3, l2);
	free(l1);
	free(l2);
	free(l3);
	free(text);

	PvJournalVerify sum;
	char *report = verify(f->path, &sum);
	assert_string_equal(report, "");
	assert_int_equal(sum.problems, 0);
	assert_int_equal(sum.records, 3);
	assert_int_equal(sum.chained, 3);
	assert_int_equal(sum.files, 1);
	assert_int_equal(sum.first_seq, 1);
	assert_int_equal(sum.last_seq, 3);
	free(report);
}

static void test_torn_tail_is_not_chained(void **state)
{
	Fixture *f = *state;
	write_n(f->path, 2);
	FILE *fp = fopen(f->path, "a");
	fputs("{\"seq\":3,\"ts\":\"2026", fp); /* a crash mid-write */
	fclose(fp);

	PvJournalVerify sum;
	char *report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 0);
	assert_int_equal(sum.fragments, 1);
	assert_non_null(strstr(report, ":3: note: the last line is not a whole record"));
	free(report);

	PvJournal *j = open_ok(f->path);
	append(j, "after", NULL);
	pv_journal_free(j);
	char *text = slurp(f->path);
	char *l2 = line_of(text, 2), *l4 = line_of(text, 4);
	assert_prev_is_hash_of(l4, l2); /* the fragment is skipped */
	free(l2);
	free(l4);
	free(text);
	report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 0);
	assert_int_equal(sum.fragments, 1);
	assert_int_equal(sum.records, 3);
	assert_non_null(strstr(report, ":3: note: line is not a record, skipped cleanly"));
	free(report);
}

static void test_rotation(void **state)
{
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	pv_journal_set_rotation(j, 1, 2); /* every record in a file of its own, 2 kept */
	for (int i = 1; i <= 4; i++) {
		char ev[8];
		snprintf(ev, sizeof ev, "e%d", i);
		append(j, ev, NULL);
	}
	assert_int_equal(pv_journal_last_seq(j), 4);
	pv_journal_free(j);

	char *p1 = pv_journal_rotated_name(f->path, 1), *p2 = pv_journal_rotated_name(f->path, 2),
	     *p3 = pv_journal_rotated_name(f->path, 3);
	struct stat sb;
	assert_int_equal(stat(p3, &sb), -1); /* e1 dropped */
	char *t2 = slurp(p2), *t1 = slurp(p1), *t0 = slurp(f->path);
	assert_non_null(strstr(t2, "\"seq\":2,"));
	assert_non_null(strstr(t1, "\"seq\":3,"));
	assert_non_null(strstr(t0, "\"seq\":4,"));
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	/* the chain runs across the files */
	char *l2 = line_of(t2, 1), *l3 = line_of(t1, 1), *l4 = line_of(t0, 1);
	assert_prev_is_hash_of(l3, l2);
	assert_prev_is_hash_of(l4, l3);

	char **files;
	size_t n;
	PvError err = {0};
	assert_int_equal(pv_journal_files(f->path, &files, &n, &err), PV_OK);
	assert_int_equal(n, 3);
	assert_string_equal(files[0], p2);
	assert_string_equal(files[1], p1);
	assert_string_equal(files[2], f->path);
	pv_journal_files_free(files, n);

	/* the reader reads them all, oldest first */
	PvJournalLog *log = NULL;
	assert_int_equal(pv_journal_read(f->path, &log, &err), PV_OK);
	assert_int_equal(log->nentries, 3);
	assert_int_equal(log->entries[0].seq, 2);
	assert_string_equal(log->entries[0].file, p2);
	assert_int_equal(log->entries[2].seq, 4);
	assert_string_equal(log->entries[2].file, f->path);
	assert_int_equal(log->entries[2].line, 1);
	pv_journal_log_free(log);

	/* verify: the first file's chain begins in a dropped file, which is no problem */
	PvJournalVerify sum;
	char *report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 0);
	assert_int_equal(sum.files, 3);
	assert_int_equal(sum.records, 3);
	assert_non_null(
	    strstr(report, "note: seq 2: the chain begins in a file no longer present"));
	free(report);

	/* a lower keep drops what is beyond it at the next rotation */
	j = open_ok(f->path);
	pv_journal_set_rotation(j, 1, 1);
	append(j, "e5", NULL);
	pv_journal_free(j);
	assert_int_equal(stat(p2, &sb), -1);
	char *t = slurp(p1);
	assert_non_null(strstr(t, "\"seq\":4,"));
	free(t);

	free(l2);
	free(l3);
	free(l4);
	free(t0);
	free(t1);
	free(t2);
	free(p1);
	free(p2);
	free(p3);
}

static void test_no_rotation_below_max(void **state)
{
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	pv_journal_set_rotation(j, 1 << 20, 3);
	for (int i = 0; i < 10; i++)
		append(j, "e", NULL);
	pv_journal_free(j);
	char *p1 = pv_journal_rotated_name(f->path, 1);
	struct stat sb;
	assert_int_equal(stat(p1, &sb), -1);
	free(p1);
}

/* A crash between "path -> path.1" and the new file: seq and chain continue from path.1. */
static void test_continue_from_rotated(void **state)
{
	Fixture *f = *state;
	write_n(f->path, 3);
	char *p1 = pv_journal_rotated_name(f->path, 1);
	assert_int_equal(rename(f->path, p1), 0);
	PvJournal *j = open_ok(f->path);
	assert_int_equal(pv_journal_last_seq(j), 3);
	append(j, "e4", NULL);
	pv_journal_free(j);
	char *t1 = slurp(p1), *t0 = slurp(f->path);
	char *l3 = line_of(t1, 3), *l4 = line_of(t0, 1);
	assert_prev_is_hash_of(l4, l3);
	assert_non_null(strstr(l4, "\"seq\":4,"));
	PvJournalVerify sum;
	char *report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 0);
	assert_int_equal(sum.records, 4);
	assert_string_equal(report, "");
	free(report);
	free(l3);
	free(l4);
	free(t0);
	free(t1);
	free(p1);
}

/* ---------------------------------------------------------------- verify */

static void test_verify_edit(void **state)
{
	Fixture *f = *state;
	write_n(f->path, 5);
	char *text = slurp(f->path);
	char *at = strstr(text, "{\"i\":2}");
	assert_non_null(at);
	at[5] = '7'; /* {"i":7} */
	spit(f->path, text);
	free(text);
	PvJournalVerify sum;
	char *report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 1);
	char *want = pv_xasprintf("%s:3: seq 3: prev does not match the record before it (%s:2, "
	                          "seq 2): that record was edited, or this one's prev was\n",
	                          f->path, f->path);
	assert_string_equal(report, want);
	free(want);
	free(report);
}

static void test_verify_removed(void **state)
{
	Fixture *f = *state;
	write_n(f->path, 5);
	reorder(f->path, (const int[]){1, 2, 4, 5, 0});
	PvJournalVerify sum;
	char *report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 1);
	assert_int_equal(sum.records, 4);
	char *want = pv_xasprintf("%s:3: seq 4: prev does not match the record before it (%s:2, "
	                          "seq 2): the records with seq 3..3 were removed\n",
	                          f->path, f->path);
	assert_string_equal(report, want);
	free(want);
	free(report);

	/* the first record of a journal without rotated files */
	assert_int_equal(unlink(f->path), 0);
	write_n(f->path, 5);
	reorder(f->path, (const int[]){2, 3, 4, 5, 0});
	report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 1);
	assert_non_null(strstr(report, ":1: seq 2: prev is not the start of a journal"));
	free(report);
}

static void test_verify_reordered(void **state)
{
	Fixture *f = *state;
	write_n(f->path, 4);
	reorder(f->path, (const int[]){1, 3, 2, 4, 0});
	PvJournalVerify sum;
	char *report = verify(f->path, &sum);
	assert_true(sum.problems >= 2);
	assert_non_null(strstr(report, ":2: seq 3: prev does not match"));
	assert_non_null(strstr(report, ":3: seq 2: out of order after seq 3"));
	free(report);
}

static void test_verify_damaged_line(void **state)
{
	Fixture *f = *state;
	write_n(f->path, 4);
	char *text = slurp(f->path);
	char *second = strchr(text, '\n') + 1;
	second[0] = 'X'; /* line 2 no longer parses */
	spit(f->path, text);
	free(text);
	PvJournalVerify sum;
	char *report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 1);
	char *want = pv_xasprintf("%s:2: not a record, and the chain does not skip it: a record "
	                          "here was damaged or edited\n",
	                          f->path);
	assert_string_equal(report, want);
	free(want);
	free(report);
}

static void test_verify_unchained(void **state)
{
	Fixture *f = *state;
	/* a journal from before the chain: no prev anywhere */
	spit(f->path, "{\"seq\":1,\"event\":\"daemon-start\"}\n"
	              "{\"seq\":2,\"event\":\"primary-found\"}\n");
	PvJournalVerify sum;
	char *report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 0);
	assert_int_equal(sum.unchained, 2);
	assert_int_equal(sum.chained, 0);
	free(report);
	/* a daemon with the chain appends: chained from there on */
	PvJournal *j = open_ok(f->path);
	assert_int_equal(pv_journal_last_seq(j), 2);
	append(j, "daemon-start", NULL);
	pv_journal_free(j);
	report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 0);
	assert_int_equal(sum.unchained, 2);
	assert_int_equal(sum.chained, 1);
	free(report);
	/* but a record without prev after chained ones is a problem */
	FILE *fp = fopen(f->path, "a");
	fputs("{\"seq\":4,\"event\":\"forged\"}\n", fp);
	fclose(fp);
	report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 1);
	assert_non_null(strstr(report, ":4: seq 4: no prev although the records before it"));
	free(report);
}

static void test_verify_malformed_prev(void **state)
{
	Fixture *f = *state;
	spit(f->path, "{\"seq\":1,\"event\":\"a\",\"prev\":\"xyz\"}\n");
	PvJournalVerify sum;
	char *report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 1);
	assert_non_null(strstr(report, ":1: seq 1: prev is not a SHA-256 hex digest"));
	free(report);
}

static void test_verify_missing(void **state)
{
	Fixture *f = *state;
	PvBuf report = {0};
	PvJournalVerify sum;
	PvError err = {0};
	assert_int_equal(pv_journal_verify(f->path, &report, &sum, &err), PV_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, f->path));
	pv_buf_free(&report);
	assert_int_equal(pv_journal_verify("/nonexistent-dir/j.jsonl", &report, &sum, &err),
	                 PV_ERR_NOT_FOUND);
	pv_buf_free(&report);
}

static void test_verify_text(void **state)
{
	(void)state;
	PvBuf report = {0};
	PvJournalVerify sum;
	pv_journal_verify_text("mem", "", 0, &report, &sum);
	assert_int_equal(sum.records, 0);
	assert_int_equal(sum.first_seq, -1);
	assert_string_equal(sum.last_hash, "");
	const char *t = "{\"seq\":1,\"event\":\"a\",\"prev\":\"" PV_JOURNAL_GENESIS "\"}\n\n";
	pv_journal_verify_text("mem", t, strlen(t), &report, &sum);
	assert_int_equal(sum.records, 1);
	assert_int_equal(sum.problems, 0);
	char h[PV_JOURNAL_HASH_HEX + 1];
	pv_journal_hash(t, strlen(t) - 2, h);
	assert_string_equal(sum.last_hash, h);
	pv_buf_free(&report);
}

/* A removed rotated file breaks the chain at the first record of the next one. */
static void test_verify_removed_file(void **state)
{
	Fixture *f = *state;
	PvJournal *j = open_ok(f->path);
	pv_journal_set_rotation(j, 1, 5);
	for (int i = 0; i < 4; i++)
		append(j, "e", NULL);
	pv_journal_free(j);
	char *p2 = pv_journal_rotated_name(f->path, 2);
	assert_int_equal(unlink(p2), 0);
	PvJournalVerify sum;
	char *report = verify(f->path, &sum);
	assert_int_equal(sum.problems, 1);
	char *want = pv_xasprintf(".1:1: seq 3: prev does not match the record before it (%s.3:1, "
	                          "seq 1): the records with seq 2..2 were removed\n",
	                          f->path);
	assert_non_null(strstr(report, want));
	free(want);
	free(report);
	free(p2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_vectors),
	    cmocka_unit_test_setup_teardown(test_chain_on_append, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_tail_is_not_chained, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_rotation_below_max, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_continue_from_rotated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_edit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_removed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_reordered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_damaged_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_unchained, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_malformed_prev, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_missing, setup, teardown),
	    cmocka_unit_test(test_verify_text),
	    cmocka_unit_test_setup_teardown(test_verify_removed_file, setup, teardown),
	};
	PvError err;
	if (pv_log_open(NULL, PV_LOG_WARNING, &err) != PV_OK) /* rotations log at info */
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
