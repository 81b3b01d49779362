#include "journal/journal_read.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fileio.h"
#include "journal/journal_chain.h"

/* The private part of a log: one empty object every detail-less entry points to, and the
 * names of the files read. */
typedef struct {
	PvJournalLog pub;
	json_t *empty_detail;
	size_t cap;
	char **files;
	size_t nfiles;
} LogImpl;

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

static const char *opt_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t opt_int(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* Fills e from one line; false if the line is not a record. */
static bool parse_line(LogImpl *L, const char *line, size_t len, PvJournalEntry *e)
{
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, 0, &jerr);
	if (!obj)
		return false;
	json_t *seq = json_object_get(obj, "seq");
	json_t *event = json_object_get(obj, "event");
	if (!json_is_object(obj) || !json_is_integer(seq) || !json_is_string(event)) {
		json_decref(obj);
		return false;
	}
	memset(e, 0, sizeof *e);
	e->record = obj;
	e->seq = (int64_t)json_integer_value(seq);
	e->event = json_string_value(event);
	e->ts = opt_str(obj, "ts");
	if (!e->ts)
		e->ts = "";
	e->mono_ms = opt_int(obj, "mono_ms");
	e->incident = opt_str(obj, "incident");
	e->phase = opt_str(obj, "phase");
	if (!e->phase)
		e->phase = "";
	e->node = opt_str(obj, "node");
	e->outcome = opt_str(obj, "outcome");
	e->duration_ms = opt_int(obj, "duration_ms");
	e->detail = json_object_get(obj, "detail");
	if (!json_is_object(e->detail))
		e->detail = L->empty_detail;
	return true;
}

static LogImpl *log_new(void)
{
	LogImpl *L = pv_xcalloc(1, sizeof *L);
	L->empty_detail = json_object();
	return L;
}

static void parse_into(LogImpl *L, const char *text, size_t len, const char *file)
{
	PvJournalLog *log = &L->pub;
	size_t lineno = 0;
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t n = (size_t)(le - p);
		lineno++;
		if (!blank(p, n)) {
			if (log->nentries == L->cap) {
				L->cap = L->cap ? L->cap * 2 : 64;
				log->entries =
				    pv_xrealloc(log->entries, L->cap * sizeof *log->entries);
			}
			PvJournalEntry *e = &log->entries[log->nentries];
			if (parse_line(L, p, n, e)) {
				e->line = lineno;
				e->file = file;
				log->nentries++;
			} else {
				if (log->nbad++ == 0) {
					log->first_bad_line = lineno;
					log->first_bad_file = file;
				}
				/* only the newest file's last line is a torn tail now */
				log->torn_tail = !nl;
			}
		}
		p = nl ? nl + 1 : end;
	}
}

PvJournalLog *pv_journal_parse(const char *text, size_t len)
{
	LogImpl *L = log_new();
	parse_into(L, text, len, NULL);
	return &L->pub;
}

PvStatus pv_journal_read(const char *path, PvJournalLog **out, PvError *err)
{
	char **files = NULL;
	size_t nfiles = 0;
	PvStatus st = pv_journal_files(path, &files, &nfiles, err);
	*out = NULL;
	if (st != PV_OK)
		return st;
	LogImpl *L = log_new();
	L->files = files;
	L->nfiles = nfiles;
	for (size_t i = 0; i < nfiles; i++) {
		char *text = NULL;
		size_t len = 0;
		st = pv_file_read_all(files[i], &text, &len, err);
		if (st == PV_ERR_NOT_FOUND && i + 1 < nfiles)
			continue; /* rotated away meanwhile: its records are in the next file */
		if (st != PV_OK) {
			pv_journal_log_free(&L->pub);
			return st;
		}
		L->pub.torn_tail = false;
		parse_into(L, text, len, files[i]);
		free(text);
	}
	*out = &L->pub;
	return PV_OK;
}

void pv_journal_log_free(PvJournalLog *log)
{
	if (!log)
		return;
	LogImpl *L = (LogImpl *)log;
	for (size_t i = 0; i < log->nentries; i++)
		json_decref(log->entries[i].record);
	json_decref(L->empty_detail);
	pv_journal_files_free(L->files, L->nfiles);
	free(log->entries);
	free(L);
}

char *pv_journal_entry_detail_string(const PvJournalEntry *e)
{
	char *s = e && e->detail ? json_dumps(e->detail, JSON_COMPACT) : NULL;
	if (!s)
		return pv_xstrdup("{}");
	/* hand back memory callers release with free() whatever jansson's allocator is */
	char *copy = pv_xstrdup(s);
	free(s);
	return copy;
}

const char *pv_journal_entry_detail_str(const PvJournalEntry *e, const char *key)
{
	return e && e->detail ? opt_str(e->detail, key) : NULL;
}

static bool same_str(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static int cmp_seq(const void *a, const void *b)
{
	const PvJournalEntry *x = *(const PvJournalEntry *const *)a;
	const PvJournalEntry *y = *(const PvJournalEntry *const *)b;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int cmp_incident_seq(const void *a, const void *b)
{
	const PvJournalEntry *x = *(const PvJournalEntry *const *)a;
	const PvJournalEntry *y = *(const PvJournalEntry *const *)b;
	int c = strcmp(x->incident, y->incident);
	return c ? c : cmp_seq(a, b);
}

static int cmp_first_seq(const void *a, const void *b)
{
	const PvJournalIncident *x = a, *y = b;
	if (x->first_seq != y->first_seq)
		return x->first_seq < y->first_seq ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Summarizes recs[0..n) (one incident, seq order). */
static void summarize(const PvJournalEntry *const *recs, size_t n, PvJournalIncident *inc)
{
	memset(inc, 0, sizeof *inc);
	inc->id = recs[0]->incident;
	inc->first_ts = recs[0]->ts;
	inc->last_ts = recs[n - 1]->ts;
	inc->first_seq = recs[0]->seq;
	inc->last_seq = recs[n - 1]->seq;
	inc->nrecords = n;
	inc->outcome = "open";
	inc->duration_ms = -1;
	bool opened = false;
	for (size_t i = 0; i < n; i++) {
		const PvJournalEntry *e = recs[i];
		if (!opened && strcmp(e->event, "incident-open") == 0) {
			opened = true;
			inc->trigger = pv_journal_entry_detail_str(e, "trigger");
			inc->reason = pv_journal_entry_detail_str(e, "reason");
		} else if (strcmp(e->event, "incident-close") == 0) {
			json_t *d = json_object_get(e->detail, "duration_ms");
			inc->closed = true;
			inc->outcome = e->outcome ? e->outcome : "unknown";
			inc->new_primary = pv_journal_entry_detail_str(e, "new_primary");
			inc->ended_ts = e->ts;
			inc->duration_ms = json_is_integer(d) ? (int64_t)json_integer_value(d) : -1;
		}
	}
}

void pv_journal_list_incidents(const PvJournalLog *log, PvJournalIncident **out, size_t *n)
{
	const PvJournalEntry **recs = pv_xcalloc(log->nentries, sizeof *recs);
	size_t nrecs = 0, ninc = 0;
	PvJournalIncident *inc = NULL;

	for (size_t i = 0; i < log->nentries; i++)
		if (log->entries[i].incident)
			recs[nrecs++] = &log->entries[i];
	qsort(recs, nrecs, sizeof *recs, cmp_incident_seq);
	for (size_t i = 0; i < nrecs;) {
		size_t k = i + 1;
		while (k < nrecs && strcmp(recs[k]->incident, recs[i]->incident) == 0)
			k++;
		inc = pv_xrealloc(inc, (ninc + 1) * sizeof *inc);
		summarize(recs + i, k - i, &inc[ninc++]);
		i = k;
	}
	if (ninc > 1)
		qsort(inc, ninc, sizeof *inc, cmp_first_seq);
	free(recs);
	*out = inc;
	*n = ninc;
}

PvStatus pv_journal_incident_records(const PvJournalLog *log, const char *id,
                                     const PvJournalEntry ***out, size_t *n, PvError *err)
{
	const PvJournalEntry **recs = NULL;
	size_t nrecs = 0;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < log->nentries; i++) {
		if (!id || !same_str(log->entries[i].incident, id))
			continue;
		recs = pv_xrealloc(recs, (nrecs + 1) * sizeof *recs);
		recs[nrecs++] = &log->entries[i];
	}
	if (nrecs == 0)
		return pv_error_set(err, PV_ERR_NOT_FOUND, "no incident %s in the journal",
		                    id ? id : "(null)");
	qsort(recs, nrecs, sizeof *recs, cmp_seq);
	*out = recs;
	*n = nrecs;
	return PV_OK;
}

PvStatus pv_journal_incident_summary(const PvJournalLog *log, const char *id,
                                     PvJournalIncident *out, PvError *err)
{
	const PvJournalEntry **recs;
	size_t n;
	PvStatus st = pv_journal_incident_records(log, id, &recs, &n, err);
	if (st != PV_OK)
		return st;
	summarize(recs, n, out);
	free(recs);
	return PV_OK;
}

void pv_journal_pair_steps(const PvJournalEntry *const *recs, size_t n, long *partner)
{
	for (size_t i = 0; i < n; i++)
		partner[i] = -1;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(recs[i]->phase, "end") != 0)
			continue;
		for (size_t k = i; k-- > 0;) {
			if (partner[k] != -1 || strcmp(recs[k]->phase, "begin") != 0)
				continue;
			if (strcmp(recs[k]->event, recs[i]->event) != 0 ||
			    !same_str(recs[k]->node, recs[i]->node) ||
			    !same_str(recs[k]->incident, recs[i]->incident))
				continue;
			partner[k] = (long)i;
			partner[i] = (long)k;
			break;
		}
	}
}

bool pv_journal_parse_ts(const char *ts, int64_t *wall_us)
{
	struct tm tm;
	int y, mo, d, h, mi, s, used = 0;
	long frac = 0;

	if (!ts || sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &used) != 6)
		return false;
	const char *p = ts + used;
	if (*p == '.') {
		int digits = 0;
		for (p++; isdigit((unsigned char)*p); p++) {
			if (digits < 6) {
				frac = frac * 10 + (*p - '0');
				digits++;
			}
		}
		for (; digits < 6; digits++)
			frac *= 10;
	}
	if (strcmp(p, "Z") != 0)
		return false;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*wall_us = (int64_t)t * 1000000 + frac;
	return true;
}

void pv_journal_offsets(const PvJournalEntry *const *recs, size_t n, int64_t *offset_ms)
{
	for (size_t i = 0; i < n; i++) {
		if (i == 0) {
			offset_ms[i] = 0;
			continue;
		}
		const PvJournalEntry *a = recs[i - 1], *b = recs[i];
		int64_t delta = 0, wa, wb;
		if (a->mono_ms >= 0 && b->mono_ms >= a->mono_ms)
			delta = b->mono_ms - a->mono_ms;
		else if (pv_journal_parse_ts(a->ts, &wa) && pv_journal_parse_ts(b->ts, &wb) &&
		         wb > wa)
			delta = (wb - wa) / 1000;
		offset_ms[i] = offset_ms[i - 1] + delta;
	}
}
