/*
 * cmd_journal: `pgvigil journal verify [--json]`.
 *
 * Reads journal.path and its rotated files directly (no daemon needed) and recomputes the hash
 * chain (journal/journal_chain.h).  Findings go to stdout one per line, "FILE:LINE: ...", then a
 * summary; exit 0 when the chain holds, 1 when something was edited, removed or reordered (or
 * the journal cannot be read), 2 for usage errors.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "journal/journal_chain.h"
#include "pgvigil/cli.h"

#define JOURNAL_USAGE "usage: pgvigil journal verify [--json]"

static void print_json(const PvJournalVerify *s, const char *path, const char *report)
{
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_bool(&j, "ok", s->problems == 0);
	pv_json_str(&j, "journal", path);
	pv_json_int(&j, "files", (int64_t)s->files);
	pv_json_int(&j, "records", (int64_t)s->records);
	pv_json_int(&j, "chained", (int64_t)s->chained);
	pv_json_int(&j, "unchained", (int64_t)s->unchained);
	pv_json_int(&j, "fragments", (int64_t)s->fragments);
	pv_json_int(&j, "problems", (int64_t)s->problems);
	if (s->first_seq >= 0) {
		pv_json_int(&j, "first_seq", s->first_seq);
		pv_json_int(&j, "last_seq", s->last_seq);
		pv_json_str(&j, "last_hash", s->last_hash);
	} else {
		pv_json_null(&j, "first_seq");
		pv_json_null(&j, "last_seq");
		pv_json_null(&j, "last_hash");
	}
	pv_json_arr_open(&j, "findings");
	for (const char *p = report; *p;) {
		size_t n = strcspn(p, "\n");
		char *line = pv_xasprintf("%.*s", (int)n, p);
		pv_json_str(&j, NULL, line);
		free(line);
		p += n + (p[n] == '\n');
	}
	pv_json_arr_close(&j);
	pv_json_obj_close(&j);
	printf("%s\n", b.data);
	pv_buf_free(&b);
}

static int cmd_verify(PvCli *cli, bool as_json)
{
	const char *path = cli->cfg->journal_path;
	PvBuf report = {0};
	PvJournalVerify s;
	PvError err = {0};
	int rc = 0;

	PvStatus st = pv_journal_verify(path, &report, &s, &err);
	if (st != PV_OK) {
		pv_buf_free(&report);
		return pv_cli_fail(1, "journal verify: %s", err.msg);
	}
	if (as_json) {
		print_json(&s, path, report.data ? report.data : "");
	} else {
		fputs(report.data ? report.data : "", stdout);
		printf("%s: %zu record%s in %zu file%s", s.problems ? "FAILED" : "ok", s.records,
		       s.records == 1 ? "" : "s", s.files, s.files == 1 ? "" : "s");
		if (s.first_seq >= 0)
			printf(" (seq %" PRId64 "..%" PRId64 ")", s.first_seq, s.last_seq);
		printf(", %zu chained, %zu unchained, %zu fragment%s, %zu problem%s\n", s.chained,
		       s.unchained, s.fragments, s.fragments == 1 ? "" : "s", s.problems,
		       s.problems == 1 ? "" : "s");
		if (s.first_seq >= 0)
			printf("last record: seq %" PRId64 ", sha256 %s\n", s.last_seq,
			       s.last_hash);
	}
	if (fflush(stdout) != 0)
		rc = pv_cli_fail(1, "cannot write output");
	else if (s.problems)
		rc = pv_cli_fail(1,
		                 "journal verify: %s: %zu problem%s: records were edited, removed "
		                 "or reordered",
		                 path, s.problems, s.problems == 1 ? "" : "s");
	pv_buf_free(&report);
	return rc;
}

int pv_cmd_journal(PvCli *cli, int argc, char **argv)
{
	bool as_json = false;
	const char *sub = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			puts(JOURNAL_USAGE);
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return pv_cli_fail(2, "journal: unknown option %s; %s", argv[i],
			                   JOURNAL_USAGE);
		} else if (!sub) {
			sub = argv[i];
		} else {
			return pv_cli_fail(2, "journal: unexpected argument \"%s\"; %s", argv[i],
			                   JOURNAL_USAGE);
		}
	}
	if (!sub)
		return pv_cli_fail(2, "journal: missing subcommand; %s", JOURNAL_USAGE);
	if (strcmp(sub, "verify") == 0)
		return cmd_verify(cli, as_json);
	return pv_cli_fail(2, "journal: unknown subcommand \"%s\"; %s", sub, JOURNAL_USAGE);
}
