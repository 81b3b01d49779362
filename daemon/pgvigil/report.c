#include "pgvigil/report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "core/cluster.h"

int pv_report_format_parse(const char *name)
{
	if (!name)
		return -1;
	if (strcmp(name, "md") == 0 || strcmp(name, "markdown") == 0)
		return PV_REPORT_MD;
	if (strcmp(name, "json") == 0)
		return PV_REPORT_JSON;
	if (strcmp(name, "html") == 0)
		return PV_REPORT_HTML;
	return -1;
}

/* ---------------------------------------------------------------- analysis */

static bool is(const PvJournalEntry *e, const char *event)
{
	return strcmp(e->event, event) == 0;
}

static const char *dstr(const PvJournalEntry *e, const char *key)
{
	return e ? pv_journal_entry_detail_str(e, key) : NULL;
}

static int64_t dint(const PvJournalEntry *e, const char *key)
{
	json_t *v = e ? json_object_get(e->detail, key) : NULL;
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* A short note for a step: its error, reason or note, else nothing. */
static void step_note(PvReportStep *s)
{
	static const char *const keys[] = {"error", "failed_step", "reason", "note", "winner"};
	const PvJournalEntry *src[] = {s->end, s->rec};
	s->note[0] = '\0';
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
		for (size_t i = 0; i < 2; i++) {
			const char *v = src[i] ? dstr(src[i], keys[k]) : NULL;
			if (v && *v) {
				snprintf(s->note, sizeof s->note, "%s%s%s",
				         strcmp(keys[k], "winner") == 0 ? "winner " : "", v,
				         strcmp(keys[k], "failed_step") == 0 ? " failed" : "");
				return;
			}
		}
}

static void phase(PvReport *r, const char *name, int64_t start, int64_t end)
{
	if (r->nphases < PV_REPORT_MAX_PHASES && start != INT64_MIN && end != INT64_MIN)
		r->phases[r->nphases++] = (PvReportPhase){name, start, end < start ? start : end};
}

/* First start and last end of the steps of event (INT64_MIN when there is none). */
static void span_of(const PvReport *r, const char *event, const char *until_event, int64_t *start,
                    int64_t *end)
{
	*start = *end = INT64_MIN;
	for (size_t i = 0; i < r->nsteps; i++) {
		const PvReportStep *s = &r->steps[i];
		bool first = is(s->rec, event);
		bool last = first || (until_event && is(s->rec, until_event));
		if (first && *start == INT64_MIN)
			*start = s->start_ms;
		if (last) {
			int64_t e = s->start_ms + (s->duration_ms > 0 ? s->duration_ms : 0);
			if (e > *end)
				*end = e;
		}
	}
}

void pv_report_build(const PvJournalIncident *summary, const PvJournalEntry *const *recs, size_t n,
                     PvReport *r)
{
	long *partner = pv_xcalloc(n ? n : 1, sizeof *partner);
	int64_t *off = pv_xcalloc(n ? n : 1, sizeof *off);

	memset(r, 0, sizeof *r);
	r->summary = *summary;
	r->detection_ms = -1;
	r->loss_bytes = -1;
	r->outage_end_ms = -1;
	pv_journal_pair_steps(recs, n, partner);
	pv_journal_offsets(recs, n, off);
	r->steps = pv_xcalloc(n ? n : 1, sizeof *r->steps);
	for (size_t i = 0; i < n; i++) {
		const PvJournalEntry *e = recs[i];
		bool end = strcmp(e->phase, "end") == 0;
		if (end && partner[i] >= 0)
			continue; /* shown with its begin */
		PvReportStep *s = &r->steps[r->nsteps++];
		s->rec = e;
		s->start_ms = off[i];
		s->duration_ms = -1;
		s->outcome = e->outcome;
		if (strcmp(e->phase, "begin") == 0) {
			if (partner[i] >= 0) {
				s->end = recs[partner[i]];
				s->outcome = s->end->outcome;
				s->duration_ms = s->end->duration_ms >= 0
				                     ? s->end->duration_ms
				                     : off[partner[i]] - off[i];
			} else {
				s->unfinished = true;
			}
		} else if (end) {
			s->duration_ms = e->duration_ms;
		}
		step_note(s);
		if (is(e, "incident-open") && !r->open)
			r->open = e;
		else if (is(e, "failover-decision"))
			r->decision = e;
		else if (is(e, "manual-failover") && !r->manual)
			r->manual = e;
		else if (is(e, "incident-close"))
			r->close = e;
	}
	r->total_ms = n ? off[n - 1] : 0;
	r->detection_ms = dint(r->open, "detection_ms");

	int64_t a, b;
	if (r->detection_ms >= 0 && r->open)
		phase(r, "detection", -r->detection_ms, 0);
	if (r->open && r->decision) {
		for (size_t i = 0; i < r->nsteps; i++)
			if (r->steps[i].rec == r->decision)
				phase(r, "decision", 0, r->steps[i].start_ms);
	}
	span_of(r, "fence", NULL, &a, &b);
	phase(r, "fencing", a, b);
	span_of(r, "promote", NULL, &a, &b);
	phase(r, "promotion", a, b);
	int64_t promote_end = b;
	span_of(r, "endpoint-switch", NULL, &a, &b);
	phase(r, "endpoint switch", a, b);
	int64_t switch_end = b;
	span_of(r, "repoint", "repoint-verify", &a, &b);
	phase(r, "repointing", a, b);
	span_of(r, "backup", NULL, &a, &b);
	phase(r, "backup", a, b);

	/* the client-facing window, as pgvigil saw it */
	if (promote_end != INT64_MIN) {
		bool switched = false, switch_ok = false, pooled = false;
		for (size_t i = 0; i < r->nsteps; i++)
			if (is(r->steps[i].rec, "endpoint-switch")) {
				pooled = true;
				if (r->steps[i].outcome && strcmp(r->steps[i].outcome, "ok") == 0)
					switch_ok = switched = true;
			}
		r->outage_known = true;
		r->outage_start_ms = r->detection_ms >= 0 ? -r->detection_ms : 0;
		r->outage_by_switch = pooled;
		r->outage_end_ms = switched && switch_ok ? switch_end : pooled ? -1 : promote_end;
	}

	/* data loss: the decision's own figure, else the LSN gap */
	if (r->decision) {
		json_t *d = r->decision->detail;
		r->old_primary_lsn = dstr(r->decision, "old_primary_last_lsn");
		r->sync_guarded = json_is_true(json_object_get(d, "sync_guarded"));
		const char *winner = dstr(r->decision, "winner");
		json_t *cands = json_object_get(d, "candidates");
		size_t k;
		json_t *c;
		json_array_foreach(cands, k, c)
		{
			const char *node = json_string_value(json_object_get(c, "node"));
			if (winner && node && strcmp(node, winner) == 0) {
				const char *lsn = json_string_value(json_object_get(c, "rank_lsn"));
				if (!lsn)
					lsn = json_string_value(json_object_get(c, "received_lsn"));
				r->winner_lsn = lsn;
			}
		}
		json_t *loss = json_object_get(d, "loss_bytes");
		uint64_t o, w;
		if (json_is_integer(loss))
			r->loss_bytes = (int64_t)json_integer_value(loss);
		else if (r->old_primary_lsn && r->winner_lsn &&
		         pv_lsn_parse(r->old_primary_lsn, &o) && pv_lsn_parse(r->winner_lsn, &w))
			r->loss_bytes = o > w ? (int64_t)(o - w) : 0;
	}
	free(partner);
	free(off);
}

void pv_report_free(PvReport *r)
{
	if (!r)
		return;
	free(r->steps);
	r->steps = NULL;
	r->nsteps = 0;
}

/* ---------------------------------------------------------------- formatting helpers */

/* "+1.234s" / "-0.800s" / "1.234s"; "-" for unknown (INT64_MIN or, unsigned, < 0). */
static void secs(char *out, size_t size, int64_t ms, bool sign)
{
	if (ms == INT64_MIN || (!sign && ms < 0)) {
		snprintf(out, size, "-");
		return;
	}
	const char *s = ms < 0 ? "-" : sign ? "+" : "";
	int64_t a = ms < 0 ? -ms : ms;
	snprintf(out, size, "%s%" PRId64 ".%03" PRId64 "s", s, a / 1000, a % 1000);
}

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static char *scalar(json_t *v)
{
	if (!v || json_is_null(v))
		return pv_xstrdup("-");
	if (json_is_string(v))
		return pv_xstrdup(json_string_value(v));
	if (json_is_true(v))
		return pv_xstrdup("yes");
	if (json_is_false(v))
		return pv_xstrdup("no");
	if (json_is_integer(v))
		return pv_xasprintf("%" PRId64, (int64_t)json_integer_value(v));
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	char *copy = pv_xstrdup(s ? s : "-");
	free(s);
	return copy;
}

/* Markdown table cells: no line breaks, '|' escaped. */
static void md_cell(PvBuf *b, const char *s)
{
	pv_buf_puts(b, "| ");
	for (const char *p = s ? s : "-"; *p; p++) {
		if (*p == '|')
			pv_buf_puts(b, "\\|");
		else if (*p == '\n' || *p == '\r')
			pv_buf_putc(b, ' ');
		else
			pv_buf_putc(b, *p);
	}
	pv_buf_putc(b, ' ');
}

static void html_text(PvBuf *b, const char *s)
{
	for (const char *p = s ? s : "-"; *p; p++) {
		switch (*p) {
		case '<':
			pv_buf_puts(b, "&lt;");
			break;
		case '>':
			pv_buf_puts(b, "&gt;");
			break;
		case '&':
			pv_buf_puts(b, "&amp;");
			break;
		case '"':
			pv_buf_puts(b, "&quot;");
			break;
		case '\'':
			pv_buf_puts(b, "&#39;");
			break;
		default:
			pv_buf_putc(b, *p);
		}
	}
}

static const char *const cand_keys[] = {"node",      "reachable",    "received_lsn", "priority",
                                        "gap_bytes", "sees_primary", "eligible",     "reason"};
static const char *const cand_heads[] = {"node", "reachable",    "received LSN", "priority",
                                         "gap",  "sees primary", "eligible",     "reason"};
#define NCAND (sizeof cand_keys / sizeof cand_keys[0])

static void outage_text(const PvReport *r, char *out, size_t size)
{
	char a[32], b[32], d[32];
	if (!r->outage_known) {
		snprintf(out, size, "no failover in this incident");
		return;
	}
	secs(a, sizeof a, r->outage_start_ms, true);
	if (r->outage_end_ms < 0) {
		snprintf(out, size,
		         "from %s, not restored within the incident (no endpoint switch)", a);
		return;
	}
	secs(b, sizeof b, r->outage_end_ms, true);
	secs(d, sizeof d, r->outage_end_ms - r->outage_start_ms, false);
	snprintf(out, size, "%s, from %s (%s) to %s (end of the %s)", d, a,
	         r->detection_ms >= 0 ? "first failed probe of the primary" : "incident-open", b,
	         r->outage_by_switch ? "PgBouncer switch" : "promotion");
}

static void loss_text(const PvReport *r, char *out, size_t size)
{
	if (!r->decision)
		snprintf(out, size, "no failover decision in this incident");
	else if (r->sync_guarded)
		snprintf(out, size, "none: the winner was a synchronous standby");
	else if (r->loss_bytes < 0)
		snprintf(out, size, "unknown (no LSN of the old primary)");
	else if (r->loss_bytes == 0)
		snprintf(
		    out, size,
		    "none seen: the winner had received all the old primary was last seen to have "
		    "written (%s; it may have written more after its last probe)",
		    or_dash(r->old_primary_lsn));
	else
		snprintf(out, size,
		         "at least %" PRId64
		         " bytes of WAL (old primary last seen at %s, winner had %s; "
		         "the old primary may have written more after its last probe)",
		         r->loss_bytes, or_dash(r->old_primary_lsn), or_dash(r->winner_lsn));
}

static void summary_rows(const PvReport *r, void (*row)(PvBuf *, const char *, const char *),
                         PvBuf *b)
{
	const PvJournalIncident *s = &r->summary;
	char dur[32], det[32], outage[256], loss[256];
	secs(dur, sizeof dur, s->duration_ms >= 0 ? s->duration_ms : r->total_ms, false);
	secs(det, sizeof det, r->detection_ms, false);
	outage_text(r, outage, sizeof outage);
	loss_text(r, loss, sizeof loss);
	row(b, "incident", s->id);
	row(b, "started", s->first_ts);
	row(b, "ended", s->ended_ts);
	row(b, "duration", dur);
	row(b, "outcome", s->outcome);
	row(b, "trigger", s->trigger);
	row(b, "reason", s->reason);
	row(b, "new primary", s->new_primary);
	row(b, "detection", det);
	if (r->manual) {
		char *uid = scalar(json_object_get(r->manual->detail, "operator_uid"));
		row(b, "operator uid", uid);
		row(b, "operator reason", dstr(r->manual, "reason"));
		free(uid);
	}
	row(b, "client outage", outage);
	row(b, "data loss", loss);
}

/* ---------------------------------------------------------------- Markdown */

static void md_row(PvBuf *b, const char *k, const char *v)
{
	md_cell(b, k);
	md_cell(b, or_dash(v));
	pv_buf_puts(b, "|\n");
}

static void render_md(const PvReport *r, PvBuf *b)
{
	char t1[32], t2[32];
	pv_buf_printf(b, "# Incident %s\n\n", or_dash(r->summary.id));
	pv_buf_puts(b, "| | |\n|---|---|\n");
	summary_rows(r, md_row, b);

	pv_buf_puts(b, "\n## Phases\n\n| phase | start | duration |\n|---|---|---|\n");
	for (int i = 0; i < r->nphases; i++) {
		secs(t1, sizeof t1, r->phases[i].start_ms, true);
		secs(t2, sizeof t2, r->phases[i].end_ms - r->phases[i].start_ms, false);
		md_cell(b, r->phases[i].name);
		md_cell(b, t1);
		md_cell(b, t2);
		pv_buf_puts(b, "|\n");
	}

	pv_buf_puts(b,
	            "\n## Steps\n\n| offset | time | event | node | outcome | duration | note |\n"
	            "|---|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < r->nsteps; i++) {
		const PvReportStep *s = &r->steps[i];
		secs(t1, sizeof t1, s->start_ms, true);
		secs(t2, sizeof t2, s->duration_ms, false);
		md_cell(b, t1);
		md_cell(b, s->rec->ts);
		md_cell(b, s->rec->event);
		md_cell(b, or_dash(s->rec->node));
		md_cell(b, s->unfinished ? "no end record" : or_dash(s->outcome));
		md_cell(b, t2);
		md_cell(b, or_dash(s->note));
		pv_buf_puts(b, "|\n");
	}

	if (r->decision) {
		pv_buf_printf(b, "\n## Decision\n\n%s\n\n", or_dash(dstr(r->decision, "reason")));
		for (size_t k = 0; k < NCAND; k++)
			md_cell(b, cand_heads[k]);
		pv_buf_puts(b, "|\n");
		for (size_t k = 0; k < NCAND; k++)
			pv_buf_puts(b, "|---");
		pv_buf_puts(b, "|\n");
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(r->decision->detail, "candidates"), i, c)
		{
			for (size_t k = 0; k < NCAND; k++) {
				char *v = scalar(json_object_get(c, cand_keys[k]));
				md_cell(b, v);
				free(v);
			}
			pv_buf_puts(b, "|\n");
		}
	}
}

/* ---------------------------------------------------------------- JSON */

static void render_json(const PvReport *r, PvBuf *b)
{
	PvJson j;
	char outage[256], loss[256];
	pv_json_init(&j, b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "id", r->summary.id);
	pv_json_str(&j, "started", r->summary.first_ts);
	pv_json_str(&j, "ended", r->summary.ended_ts);
	pv_json_int(&j, "duration_ms",
	            r->summary.duration_ms >= 0 ? r->summary.duration_ms : r->total_ms);
	pv_json_str(&j, "outcome", r->summary.outcome);
	pv_json_str(&j, "trigger", r->summary.trigger);
	pv_json_str(&j, "reason", r->summary.reason);
	pv_json_str(&j, "new_primary", r->summary.new_primary);
	if (r->detection_ms >= 0)
		pv_json_int(&j, "detection_ms", r->detection_ms);
	else
		pv_json_null(&j, "detection_ms");
	pv_json_arr_open(&j, "phases");
	for (int i = 0; i < r->nphases; i++) {
		pv_json_obj_open(&j, NULL);
		pv_json_str(&j, "phase", r->phases[i].name);
		pv_json_int(&j, "start_ms", r->phases[i].start_ms);
		pv_json_int(&j, "duration_ms", r->phases[i].end_ms - r->phases[i].start_ms);
		pv_json_obj_close(&j);
	}
	pv_json_arr_close(&j);
	pv_json_arr_open(&j, "steps");
	for (size_t i = 0; i < r->nsteps; i++) {
		const PvReportStep *s = &r->steps[i];
		pv_json_obj_open(&j, NULL);
		pv_json_int(&j, "seq", s->rec->seq);
		pv_json_int(&j, "offset_ms", s->start_ms);
		pv_json_str(&j, "ts", s->rec->ts);
		pv_json_str(&j, "event", s->rec->event);
		pv_json_str(&j, "kind", s->end || s->unfinished ? "action" : "event");
		pv_json_str(&j, "node", s->rec->node);
		pv_json_str(&j, "outcome", s->outcome);
		pv_json_bool(&j, "unfinished", s->unfinished);
		if (s->duration_ms >= 0)
			pv_json_int(&j, "duration_ms", s->duration_ms);
		else
			pv_json_null(&j, "duration_ms");
		pv_json_str(&j, "note", s->note[0] ? s->note : NULL);
		pv_json_obj_close(&j);
	}
	pv_json_arr_close(&j);
	if (r->decision) {
		char *d = pv_journal_entry_detail_string(r->decision);
		pv_json_raw(&j, "decision", d);
		free(d);
	} else {
		pv_json_null(&j, "decision");
	}
	if (r->manual) {
		char *d = pv_journal_entry_detail_string(r->manual);
		pv_json_raw(&j, "manual_request", d);
		free(d);
	} else {
		pv_json_null(&j, "manual_request");
	}
	pv_json_obj_open(&j, "outage");
	outage_text(r, outage, sizeof outage);
	pv_json_bool(&j, "known", r->outage_known);
	if (r->outage_known) {
		pv_json_int(&j, "start_ms", r->outage_start_ms);
		if (r->outage_end_ms >= 0) {
			pv_json_int(&j, "end_ms", r->outage_end_ms);
			pv_json_int(&j, "duration_ms", r->outage_end_ms - r->outage_start_ms);
		} else {
			pv_json_null(&j, "end_ms");
			pv_json_null(&j, "duration_ms");
		}
	}
	pv_json_str(&j, "text", outage);
	pv_json_obj_close(&j);
	pv_json_obj_open(&j, "data_loss");
	loss_text(r, loss, sizeof loss);
	if (r->loss_bytes >= 0)
		pv_json_int(&j, "min_bytes", r->loss_bytes);
	else
		pv_json_null(&j, "min_bytes");
	pv_json_bool(&j, "sync_guarded", r->sync_guarded);
	pv_json_str(&j, "old_primary_last_lsn", r->old_primary_lsn);
	pv_json_str(&j, "winner_lsn", r->winner_lsn);
	pv_json_str(&j, "text", loss);
	pv_json_obj_close(&j);
	pv_json_obj_close(&j);
	pv_buf_putc(b, '\n');
}

/* ---------------------------------------------------------------- HTML */

static void html_row(PvBuf *b, const char *k, const char *v)
{
	pv_buf_puts(b, "<tr><th>");
	html_text(b, k);
	pv_buf_puts(b, "</th><td>");
	html_text(b, or_dash(v));
	pv_buf_puts(b, "</td></tr>\n");
}

static const char *outcome_color(const char *outcome, bool unfinished)
{
	if (unfinished)
		return "#b06ab3";
	if (!outcome)
		return "#5b7db1";
	if (strcmp(outcome, "ok") == 0 || strcmp(outcome, "recovered") == 0)
		return "#2e8b57";
	if (strcmp(outcome, "skipped") == 0)
		return "#999999";
	return "#c0392b"; /* failed, refused, timeout */
}

#define SVG_W 960
#define SVG_LEFT 170
#define SVG_ROW 22

static void render_svg(const PvReport *r, PvBuf *b)
{
	int64_t t0 = 0, t1 = r->total_ms;
	for (int i = 0; i < r->nphases; i++) {
		if (r->phases[i].start_ms < t0)
			t0 = r->phases[i].start_ms;
		if (r->phases[i].end_ms > t1)
			t1 = r->phases[i].end_ms;
	}
	for (size_t i = 0; i < r->nsteps; i++) {
		int64_t e = r->steps[i].start_ms +
		            (r->steps[i].duration_ms > 0 ? r->steps[i].duration_ms : 0);
		if (e > t1)
			t1 = e;
	}
	if (t1 <= t0)
		t1 = t0 + 1;
	double span = (double)(t1 - t0), w = SVG_W - SVG_LEFT - 20;
#define X(ms) (SVG_LEFT + ((double)((ms)-t0)) * w / span)
	int rows = r->nphases + (int)r->nsteps;
	int h = 40 + rows * SVG_ROW + 30;
	pv_buf_printf(b,
	              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	              "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"incident timeline\">\n",
	              SVG_W, h, SVG_W, h);
	pv_buf_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fbfbfd\"/>\n",
	              SVG_W, h);
	/* the time axis: ticks at round intervals */
	static const int64_t steps_ms[] = {1,     2,     5,      10,     20,     50,      100,
	                                   200,   500,   1000,   2000,   5000,   10000,   20000,
	                                   30000, 60000, 120000, 300000, 600000, 1800000, 3600000};
	int64_t tick = steps_ms[sizeof steps_ms / sizeof steps_ms[0] - 1];
	for (size_t i = 0; i < sizeof steps_ms / sizeof steps_ms[0]; i++)
		if (span / (double)steps_ms[i] <= 10) {
			tick = steps_ms[i];
			break;
		}
	int64_t first = t0 >= 0 ? (t0 + tick - 1) / tick * tick : -((-t0) / tick * tick);
	for (int64_t t = first; t <= t1; t += tick) {
		char lab[32];
		secs(lab, sizeof lab, t, true);
		pv_buf_printf(
		    b,
		    "<line x1=\"%.1f\" y1=\"30\" x2=\"%.1f\" y2=\"%d\" stroke=\"#dddddd\"/>"
		    "<text x=\"%.1f\" y=\"22\" font-size=\"11\" text-anchor=\"middle\" "
		    "fill=\"#555\">%s</text>\n",
		    X(t), X(t), h - 20, X(t), lab);
	}
	int y = 40;
	for (int i = 0; i < r->nphases; i++, y += SVG_ROW) {
		const PvReportPhase *p = &r->phases[i];
		double x0 = X(p->start_ms), x1 = X(p->end_ms);
		pv_buf_printf(b, "<text x=\"8\" y=\"%d\" font-size=\"12\" font-weight=\"bold\">",
		              y + 14);
		html_text(b, p->name);
		pv_buf_printf(b,
		              "</text><rect class=\"phase\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
		              "height=\"16\" rx=\"3\" fill=\"#f0a500\" opacity=\"0.8\"><title>",
		              x0, y + 2, x1 - x0 < 2 ? 2 : x1 - x0);
		html_text(b, p->name);
		pv_buf_puts(b, "</title></rect>\n");
	}
	for (size_t i = 0; i < r->nsteps; i++, y += SVG_ROW) {
		const PvReportStep *s = &r->steps[i];
		const char *color = outcome_color(s->outcome, s->unfinished);
		double x0 = X(s->start_ms);
		pv_buf_printf(b, "<text x=\"8\" y=\"%d\" font-size=\"12\">", y + 14);
		html_text(b, s->rec->event);
		if (s->rec->node) {
			pv_buf_puts(b, " ");
			html_text(b, s->rec->node);
		}
		pv_buf_puts(b, "</text>");
		if (s->end || s->unfinished) {
			double x1 = s->duration_ms > 0 ? X(s->start_ms + s->duration_ms) : x0;
			pv_buf_printf(b,
			              "<rect class=\"step\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
			              "height=\"14\" fill=\"%s\"><title>",
			              x0, y + 3, x1 - x0 < 3 ? 3 : x1 - x0, color);
		} else {
			pv_buf_printf(b,
			              "<circle class=\"event\" cx=\"%.1f\" cy=\"%d\" r=\"5\" "
			              "fill=\"%s\"><title>",
			              x0, y + 10, color);
		}
		html_text(b, s->rec->event);
		pv_buf_puts(b, ": ");
		html_text(b, s->unfinished ? "no end record" : or_dash(s->outcome));
		if (s->note[0]) {
			pv_buf_puts(b, " - ");
			html_text(b, s->note);
		}
		pv_buf_puts(b,
		            s->end || s->unfinished ? "</title></rect>\n" : "</title></circle>\n");
	}
	if (r->outage_known) {
		double x0 = X(r->outage_start_ms),
		       x1 = r->outage_end_ms >= 0 ? X(r->outage_end_ms) : X(t1);
		pv_buf_printf(
		    b,
		    "<rect class=\"outage\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"8\" "
		    "fill=\"#c0392b\"/><text x=\"8\" y=\"%d\" font-size=\"12\" "
		    "fill=\"#c0392b\">client outage</text>\n",
		    x0, y + 4, x1 - x0 < 2 ? 2 : x1 - x0, y + 12);
	}
	pv_buf_puts(b, "</svg>\n");
#undef X
}

static void render_html(const PvReport *r, PvBuf *b)
{
	char t1[32], t2[32];
	pv_buf_puts(b,
	            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>");
	pv_buf_puts(b, "Incident ");
	html_text(b, r->summary.id);
	pv_buf_puts(b,
	            "</title>\n<style>\n"
	            "body{font-family:sans-serif;margin:2em;color:#222;background:#fff}\n"
	            "table{border-collapse:collapse;margin:1em 0}\n"
	            "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}\n"
	            "th{background:#eef}\n"
	            ".ok{color:#2e8b57}.bad{color:#c0392b}\n"
	            "</style></head><body>\n<h1>Incident ");
	html_text(b, r->summary.id);
	pv_buf_puts(b, "</h1>\n<table class=\"summary\">\n");
	summary_rows(r, html_row, b);
	pv_buf_puts(b, "</table>\n<h2>Timeline</h2>\n");
	render_svg(r, b);
	pv_buf_puts(
	    b, "<h2>Phases</h2>\n<table><tr><th>phase</th><th>start</th><th>duration</th></tr>\n");
	for (int i = 0; i < r->nphases; i++) {
		secs(t1, sizeof t1, r->phases[i].start_ms, true);
		secs(t2, sizeof t2, r->phases[i].end_ms - r->phases[i].start_ms, false);
		pv_buf_puts(b, "<tr><td>");
		html_text(b, r->phases[i].name);
		pv_buf_printf(b, "</td><td>%s</td><td>%s</td></tr>\n", t1, t2);
	}
	pv_buf_puts(
	    b, "</table>\n<h2>Steps</h2>\n<table><tr><th>offset</th><th>time</th>"
	       "<th>event</th><th>node</th><th>outcome</th><th>duration</th><th>note</th></tr>\n");
	for (size_t i = 0; i < r->nsteps; i++) {
		const PvReportStep *s = &r->steps[i];
		const char *out = s->unfinished ? "no end record" : or_dash(s->outcome);
		bool bad = s->unfinished || (s->outcome && strcmp(s->outcome, "ok") != 0 &&
		                             strcmp(s->outcome, "skipped") != 0 &&
		                             strcmp(s->outcome, "recovered") != 0);
		secs(t1, sizeof t1, s->start_ms, true);
		secs(t2, sizeof t2, s->duration_ms, false);
		pv_buf_printf(b, "<tr><td>%s</td><td>", t1);
		html_text(b, s->rec->ts);
		pv_buf_puts(b, "</td><td>");
		html_text(b, s->rec->event);
		pv_buf_puts(b, "</td><td>");
		html_text(b, or_dash(s->rec->node));
		pv_buf_printf(b, "</td><td class=\"%s\">", bad ? "bad" : s->outcome ? "ok" : "");
		html_text(b, out);
		pv_buf_printf(b, "</td><td>%s</td><td>", t2);
		html_text(b, or_dash(s->note));
		pv_buf_puts(b, "</td></tr>\n");
	}
	pv_buf_puts(b, "</table>\n");
	if (r->decision) {
		pv_buf_puts(b, "<h2>Decision</h2>\n<p>");
		html_text(b, or_dash(dstr(r->decision, "reason")));
		pv_buf_puts(b, "</p>\n<table><tr>");
		for (size_t k = 0; k < NCAND; k++) {
			pv_buf_puts(b, "<th>");
			html_text(b, cand_heads[k]);
			pv_buf_puts(b, "</th>");
		}
		pv_buf_puts(b, "</tr>\n");
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(r->decision->detail, "candidates"), i, c)
		{
			pv_buf_puts(b, "<tr>");
			for (size_t k = 0; k < NCAND; k++) {
				char *v = scalar(json_object_get(c, cand_keys[k]));
				pv_buf_puts(b, "<td>");
				html_text(b, v);
				pv_buf_puts(b, "</td>");
				free(v);
			}
			pv_buf_puts(b, "</tr>\n");
		}
		pv_buf_puts(b, "</table>\n");
	}
	pv_buf_puts(b, "<p><small>pgvigil incident report, from the journal; offsets are from the "
	               "incident's first record.</small></p>\n</body></html>\n");
}

void pv_report_render(const PvReport *r, PvReportFormat f, PvBuf *out)
{
	switch (f) {
	case PV_REPORT_MD:
		render_md(r, out);
		break;
	case PV_REPORT_JSON:
		render_json(r, out);
		break;
	case PV_REPORT_HTML:
		render_html(r, out);
		break;
	}
}
