/*
 * cmd_incident: `pgvigil incident list [--json]` and `pgvigil incident show ID [--json]`;
 * `incident show ID --format md|json|html` is the post-incident report (report.c).
 *
 * Reads journal.path directly: no daemon is needed, so an operator can read what happened
 * while pgvigild is stopped or wedged.  Text output is for people (tables, offsets from the
 * incident's first record); --json prints data for scripts.  Strings from the journal are
 * made safe for a terminal (control characters become '?').
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "journal/journal_read.h"
#include "pgvigil/cli.h"
#include "pgvigil/report.h"

#define INCIDENT_USAGE                                                                             \
	"usage: pgvigil incident list [--json] | "                                                   \
	"pgvigil incident show ID [--json | --format md|json|html] | "                               \
	"pgvigil incident open --reason TEXT | pgvigil incident close ID [--reason TEXT]"

/* ---- a small text table: rows of cells, plus free lines attached after a row ---- */

#define TABLE_MAX_COLS 8

typedef struct {
	char *cells[TABLE_MAX_COLS]; /* NULL cells[0]: a free line in extra */
	char *extra;
} TableRow;

typedef struct {
	int ncols;
	TableRow *rows;
	size_t nrows;
} Table;

/* A terminal-safe copy: control characters (and DEL) become '?'; NULL becomes "-". */
static char *safe(const char *s)
{
	if (!s || !*s)
		return pv_xstrdup("-");
	char *d = pv_xstrdup(s);
	for (unsigned char *p = (unsigned char *)d; *p; p++)
		if (*p < 0x20 || *p == 0x7F)
			*p = '?';
	return d;
}

/* Display width: UTF-8 code points (continuation bytes do not count). */
static size_t width(const char *s)
{
	size_t w = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xC0) != 0x80)
			w++;
	return w;
}

static void table_row(Table *t, const char *const *cells)
{
	t->rows = pv_xrealloc(t->rows, (t->nrows + 1) * sizeof *t->rows);
	TableRow *r = &t->rows[t->nrows++];
	memset(r, 0, sizeof *r);
	for (int c = 0; c < t->ncols; c++)
		r->cells[c] = safe(cells[c]);
}

/* Takes ownership of line. */
static void table_line(Table *t, char *line)
{
	t->rows = pv_xrealloc(t->rows, (t->nrows + 1) * sizeof *t->rows);
	TableRow *r = &t->rows[t->nrows++];
	memset(r, 0, sizeof *r);
	r->extra = line;
}

static void table_print(const Table *t, FILE *fp)
{
	size_t w[TABLE_MAX_COLS] = {0};
	for (size_t i = 0; i < t->nrows; i++)
		for (int c = 0; t->rows[i].cells[0] && c < t->ncols; c++)
			if (width(t->rows[i].cells[c]) > w[c])
				w[c] = width(t->rows[i].cells[c]);
	for (size_t i = 0; i < t->nrows; i++) {
		const TableRow *r = &t->rows[i];
		if (!r->cells[0]) {
			fprintf(fp, "%s\n", r->extra);
			continue;
		}
		for (int c = 0; c < t->ncols; c++) {
			fputs(r->cells[c], fp);
			if (c + 1 < t->ncols)
				for (size_t k = width(r->cells[c]); k < w[c] + 2; k++)
					fputc(' ', fp);
		}
		fputc('\n', fp);
	}
}

static void table_free(Table *t)
{
	for (size_t i = 0; i < t->nrows; i++) {
		for (int c = 0; c < t->ncols; c++)
			free(t->rows[i].cells[c]);
		free(t->rows[i].extra);
	}
	free(t->rows);
	t->rows = NULL;
	t->nrows = 0;
}

/* ---- formatting helpers ---- */

static void fmt_secs(char *out, size_t size, const char *sign, int64_t ms)
{
	if (ms < 0) {
		snprintf(out, size, "-");
		return;
	}
	snprintf(out, size, "%s%" PRId64 ".%03ds", sign, ms / 1000, (int)(ms % 1000));
}

/* A JSON scalar as text for a table cell (caller frees). */
static char *scalar_text(json_t *v)
{
	if (json_is_string(v))
		return safe(json_string_value(v));
	if (json_is_integer(v))
		return pv_xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	if (json_is_true(v))
		return pv_xstrdup("yes");
	if (json_is_false(v))
		return pv_xstrdup("no");
	if (json_is_real(v))
		return pv_xasprintf("%g", json_real_value(v));
	return pv_xstrdup("-");
}

/* The short note shown at the end of a timeline row (caller frees; NULL for none). */
static char *row_note(const PvJournalEntry *e)
{
	if (strcmp(e->event, "failover-decision") == 0) {
		const char *w = pv_journal_entry_detail_str(e, "winner");
		return w ? pv_xasprintf("winner %s", w) : pv_xstrdup("no winner");
	}
	if (strcmp(e->event, "incident-close") == 0) {
		const char *np = pv_journal_entry_detail_str(e, "new_primary");
		if (np)
			return pv_xasprintf("new primary %s", np);
	}
	const char *s = pv_journal_entry_detail_str(e, "reason");
	if (!s)
		s = pv_journal_entry_detail_str(e, "error");
	return s ? pv_xstrdup(s) : NULL;
}

/* failover-decision: one indented line per candidate, aligned among themselves. */
static void add_candidates(Table *t, const PvJournalEntry *e)
{
	json_t *cands = json_object_get(e->detail, "candidates");
	if (!json_is_array(cands) || json_array_size(cands) == 0)
		return;
	static const char *const keys[] = {"node", "received_lsn", "priority", "eligible",
	                                   "reason"};
	enum { NK = sizeof keys / sizeof keys[0] };
	size_t n = json_array_size(cands);
	char ***cell = pv_xcalloc(n + 1, sizeof *cell);
	size_t w[NK] = {0};

	for (size_t r = 0; r <= n; r++) {
		json_t *c = r ? json_array_get(cands, r - 1) : NULL;
		cell[r] = pv_xcalloc(NK, sizeof **cell);
		for (size_t k = 0; k < NK; k++) {
			if (r == 0)
				cell[r][k] = pv_xstrdup(k == 0 ? "candidate" : keys[k]);
			else
				cell[r][k] = scalar_text(
				    json_is_object(c) ? json_object_get(c, keys[k]) : NULL);
			if (width(cell[r][k]) > w[k])
				w[k] = width(cell[r][k]);
		}
	}
	for (size_t r = 0; r <= n; r++) {
		PvBuf b = {0};
		pv_buf_puts(&b, "          ");
		for (size_t k = 0; k < NK; k++) {
			pv_buf_puts(&b, cell[r][k]);
			if (k + 1 < NK)
				for (size_t s = width(cell[r][k]); s < w[k] + 2; s++)
					pv_buf_putc(&b, ' ');
			free(cell[r][k]);
		}
		free(cell[r]);
		table_line(t, pv_buf_steal(&b));
	}
	free(cell);
}

/* ---- the journal ---- */

/* Loads the journal; *log NULL (and 0) when the file does not exist. */
static int load(PvCli *cli, PvJournalLog **log, const char **path_out)
{
	PvError err = {0};
	const char *path = cli && cli->cfg ? cli->cfg->journal_path : NULL;

	*log = NULL;
	*path_out = path;
	if (!path || !*path)
		return pv_cli_fail(2, "journal.path is not set in %s",
		                   cli && cli->config_path ? cli->config_path
		                                           : "the configuration");
	PvStatus st = pv_journal_read(path, log, &err);
	if (st == PV_ERR_NOT_FOUND)
		return 0;
	if (st != PV_OK)
		return pv_cli_fail(1, "%s", err.msg);
	return 0;
}

/* After a successful listing: say that lines were skipped (stderr, so --json stays clean). */
static void warn_skipped(const PvJournalLog *log, const char *path)
{
	if (log && log->nbad > 0)
		fprintf(
		    stderr,
		    "pgvigil: warning: %s: %zu unparseable line%s skipped (first at line %zu)\n",
		    path, log->nbad, log->nbad == 1 ? "" : "s", log->first_bad_line);
}

static void json_incident(PvJson *w, const PvJournalIncident *inc)
{
	pv_json_obj_open(w, NULL);
	pv_json_str(w, "id", inc->id);
	pv_json_str(w, "first_ts", inc->first_ts);
	pv_json_str(w, "last_ts", inc->last_ts);
	pv_json_str(w, "ended", inc->ended_ts);
	pv_json_int(w, "first_seq", inc->first_seq);
	pv_json_int(w, "last_seq", inc->last_seq);
	pv_json_int(w, "records", (int64_t)inc->nrecords);
	pv_json_str(w, "trigger", inc->trigger);
	pv_json_str(w, "reason", inc->reason);
	pv_json_str(w, "outcome", inc->outcome);
	pv_json_str(w, "new_primary", inc->new_primary);
	if (inc->duration_ms >= 0)
		pv_json_int(w, "duration_ms", inc->duration_ms);
	else
		pv_json_null(w, "duration_ms");
	pv_json_obj_close(w);
}

static int cmd_list(PvCli *cli, bool as_json)
{
	PvJournalLog *log = NULL;
	PvJournalIncident *inc = NULL;
	size_t n = 0;
	const char *path;
	int rc = load(cli, &log, &path);

	if (rc != 0)
		return rc;
	if (log)
		pv_journal_list_incidents(log, &inc, &n);
	if (as_json) {
		PvBuf b = {0};
		pv_buf_puts(&b, "[");
		for (size_t i = 0; i < n; i++) {
			PvJson w;
			pv_buf_puts(&b, i ? ",\n" : "\n");
			pv_json_init(&w, &b);
			json_incident(&w, &inc[i]);
		}
		pv_buf_puts(&b, n ? "\n]\n" : "]\n");
		fputs(b.data, stdout);
		pv_buf_free(&b);
	} else if (n == 0) {
		puts("no incidents");
	} else {
		Table t = {.ncols = 8};
		table_row(&t, (const char *const[]){"ID", "STARTED", "ENDED", "RECORDS", "TRIGGER",
		                                    "OUTCOME", "NEW PRIMARY", "REASON"});
		for (size_t i = 0; i < n; i++) {
			char nrec[32];
			snprintf(nrec, sizeof nrec, "%zu", inc[i].nrecords);
			table_row(&t,
			          (const char *const[]){inc[i].id, inc[i].first_ts, inc[i].ended_ts,
			                                nrec, inc[i].trigger, inc[i].outcome,
			                                inc[i].new_primary, inc[i].reason});
		}
		table_print(&t, stdout);
		table_free(&t);
	}
	free(inc);
	rc = fflush(stdout) == 0 ? 0 : pv_cli_fail(1, "cannot write output");
	if (rc == 0)
		warn_skipped(log, path);
	pv_journal_log_free(log);
	return rc;
}

static void print_records_json(const PvJournalEntry *const *recs, size_t n)
{
	fputs("[", stdout);
	for (size_t i = 0; i < n; i++) {
		char *s = json_dumps(recs[i]->record, JSON_COMPACT);
		fputs(i ? ",\n" : "\n", stdout);
		fputs(s ? s : "null", stdout);
		free(s);
	}
	fputs(n ? "\n]\n" : "]\n", stdout);
}

static void print_header(const PvJournalIncident *inc, int64_t last_offset)
{
	char dur[80];
	if (inc->duration_ms >= 0)
		fmt_secs(dur, sizeof dur, "", inc->duration_ms);
	else if (inc->closed)
		fmt_secs(dur, sizeof dur, "", last_offset);
	else {
		char so_far[32];
		fmt_secs(so_far, sizeof so_far, "", last_offset);
		snprintf(dur, sizeof dur, "- (open, last record at +%s)", so_far);
	}
	char *id = safe(inc->id), *np = safe(inc->new_primary), *trig = safe(inc->trigger),
	     *reason = safe(inc->reason), *outcome = safe(inc->outcome),
	     *started = safe(inc->first_ts), *ended = safe(inc->ended_ts);
	printf("incident     %s\n", id);
	printf("started      %s\n", started);
	printf("ended        %s\n", ended);
	printf("duration     %s\n", dur);
	printf("outcome      %s\n", outcome);
	printf("new primary  %s\n", np);
	printf("trigger      %s\n", trig);
	printf("reason       %s\n", reason);
	printf("records      %zu (seq %" PRId64 "-%" PRId64 ")\n", inc->nrecords, inc->first_seq,
	       inc->last_seq);
	free(id);
	free(np);
	free(trig);
	free(reason);
	free(outcome);
	free(started);
	free(ended);
}

static int cmd_show(PvCli *cli, const char *id, bool as_json)
{
	PvJournalLog *log = NULL;
	const PvJournalEntry **recs = NULL;
	PvJournalIncident inc;
	PvError err = {0};
	size_t n = 0;
	long *partner = NULL;
	int64_t *offset = NULL;
	const char *path;
	int rc = load(cli, &log, &path);

	if (rc != 0)
		return rc;
	if (!log) {
		rc = pv_cli_fail(1, "no incident %s: journal %s does not exist", id, path);
		goto out;
	}
	if (pv_journal_incident_records(log, id, &recs, &n, &err) != PV_OK) {
		rc = pv_cli_fail(1, "%s: %s", path, err.msg);
		goto out;
	}
	if (as_json) {
		print_records_json(recs, n);
		goto out;
	}
	if (pv_journal_incident_summary(log, id, &inc, &err) != PV_OK) {
		rc = pv_cli_fail(1, "%s: %s", path, err.msg);
		goto out;
	}
	partner = pv_xcalloc(n, sizeof *partner);
	offset = pv_xcalloc(n, sizeof *offset);
	pv_journal_pair_steps(recs, n, partner);
	pv_journal_offsets(recs, n, offset);
	print_header(&inc, offset[n - 1]);
	putchar('\n');

	Table t = {.ncols = 7};
	table_row(&t, (const char *const[]){"OFFSET", "EVENT", "PHASE", "NODE", "OUTCOME",
	                                    "DURATION", "NOTE"});
	for (size_t i = 0; i < n; i++) {
		const PvJournalEntry *e = recs[i];
		char off[32], dur[32] = "-";
		const char *outcome = e->outcome;
		fmt_secs(off, sizeof off, "+", offset[i]);
		if (strcmp(e->phase, "begin") == 0) {
			if (partner[i] < 0)
				outcome = "no end record";
		} else if (strcmp(e->phase, "end") == 0) {
			int64_t d = e->duration_ms;
			if (d < 0 && partner[i] >= 0)
				d = offset[i] - offset[partner[i]];
			fmt_secs(dur, sizeof dur, "", d);
		} else if (e->duration_ms >= 0) {
			fmt_secs(dur, sizeof dur, "", e->duration_ms);
		}
		char *note = row_note(e);
		table_row(&t, (const char *const[]){off, e->event, e->phase, e->node, outcome, dur,
		                                    note});
		free(note);
		if (strcmp(e->event, "failover-decision") == 0)
			add_candidates(&t, e);
	}
	table_print(&t, stdout);
	table_free(&t);
out:
	if (fflush(stdout) != 0 && rc == 0)
		rc = pv_cli_fail(1, "cannot write output");
	if (rc == 0)
		warn_skipped(log, path);
	free(offset);
	free(partner);
	free(recs);
	pv_journal_log_free(log);
	return rc;
}

/* open/close: asks the daemon, which owns incidents */
static int cmd_open_close(PvCli *cli, const char *sub, const char *id, const char *reason)
{
	PvBuf req = {0};
	PvJson j;
	pv_json_init(&j, &req);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "cmd", strcmp(sub, "open") == 0 ? "incident-open" : "incident-close");
	pv_json_str(&j, "id", id);
	pv_json_str(&j, "reason", reason);
	pv_json_obj_close(&j);
	char verb[32];
	snprintf(verb, sizeof verb, "incident %s", sub);
	int rc = 0;
	json_t *obj = pv_cli_ask_ok(cli, verb, req.data, 10000, "refused", &rc);
	pv_buf_free(&req);
	if (obj)
		printf("%s\n", json_string_value(json_object_get(obj, "incident")));
	json_decref(obj);
	return rc;
}

int pv_cmd_incident(PvCli *cli, int argc, char **argv)
{
	bool as_json = false;
	const char *sub = NULL, *id = NULL, *reason = NULL, *format = NULL;
	int npos = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
			reason = argv[++i];
		} else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
			format = argv[++i];
		} else if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			puts(INCIDENT_USAGE);
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return pv_cli_fail(2, "incident: unknown option %s; %s", argv[i],
			                   INCIDENT_USAGE);
		} else if (!sub) {
			sub = argv[i];
		} else {
			if (npos++ == 0)
				id = argv[i];
		}
	}
	if (!sub)
		return pv_cli_fail(2, "incident: missing subcommand; %s", INCIDENT_USAGE);
	if (strcmp(sub, "list") == 0) {
		if (npos != 0)
			return pv_cli_fail(2, "incident list: unexpected argument \"%s\"; %s", id,
			                   INCIDENT_USAGE);
		return cmd_list(cli, as_json);
	}
	if (strcmp(sub, "show") == 0) {
		if (npos != 1)
			return pv_cli_fail(2, "incident show: %s; %s",
			                   npos ? "too many arguments" : "missing incident ID",
			                   INCIDENT_USAGE);
		if (format && as_json)
			return pv_cli_fail(2, "incident show: --json or --format, not both; %s",
			                   INCIDENT_USAGE);
		if (format)
			return pv_cmd_incident_report(cli, id, format);
		return cmd_show(cli, id, as_json);
	}
	if (strcmp(sub, "open") == 0) {
		if (npos != 0 || !reason || !*reason)
			return pv_cli_fail(2, "incident open: --reason TEXT is required, nothing else; %s",
			                   INCIDENT_USAGE);
		return cmd_open_close(cli, sub, NULL, reason);
	}
	if (strcmp(sub, "close") == 0) {
		if (npos != 1)
			return pv_cli_fail(2, "incident close: %s; %s",
			                   npos ? "too many arguments" : "missing incident ID", INCIDENT_USAGE);
		return cmd_open_close(cli, sub, id, reason ? reason : "closed by the operator");
	}
	return pv_cli_fail(2, "incident: unknown subcommand \"%s\"; %s", sub, INCIDENT_USAGE);
}
