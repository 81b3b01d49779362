#include "journal/journal_chain.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/sha256.h"

void pv_journal_hash(const void *data, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[PV_SHA256_LEN];

	pv_sha256(data, len, md);
	for (unsigned i = 0; i < PV_SHA256_LEN; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * PV_SHA256_LEN] = '\0';
}

char *pv_journal_rotated_name(const char *path, int k)
{
	return pv_xasprintf("%s.%d", path, k);
}

/* ---------------------------------------------------------------- files */

typedef struct {
	long k;
	char *name;
} Rotated;

static int cmp_rotated(const void *a, const void *b)
{
	const Rotated *x = a, *y = b;
	return x->k > y->k ? -1 : x->k < y->k; /* oldest (highest k) first */
}

PvStatus pv_journal_files(const char *path, char ***out, size_t *n, PvError *err)
{
	char *dir, *base;
	const char *slash = strrchr(path, '/');
	Rotated *rot = NULL;
	size_t nrot = 0;
	PvStatus st = PV_OK;

	*out = NULL;
	*n = 0;
	if (slash) {
		dir = pv_xstrdup(path);
		dir[slash - path + (slash == path)] = '\0';
		base = pv_xstrdup(slash + 1);
	} else {
		dir = pv_xstrdup(".");
		base = pv_xstrdup(path);
	}
	size_t blen = strlen(base);
	DIR *dh = opendir(dir);
	if (!dh) {
		st = pv_error_set(err, errno == ENOENT ? PV_ERR_NOT_FOUND : PV_ERR_IO, "%s: %s",
		                  dir, strerror(errno));
		goto out;
	}
	struct dirent *de;
	while ((de = readdir(dh)) != NULL) {
		const char *nm = de->d_name;
		if (strncmp(nm, base, blen) != 0 || nm[blen] != '.' || !nm[blen + 1])
			continue;
		const char *digits = nm + blen + 1;
		if (strspn(digits, "0123456789") != strlen(digits) || digits[0] == '0' ||
		    strlen(digits) > 6)
			continue;
		rot = pv_xrealloc(rot, (nrot + 1) * sizeof *rot);
		rot[nrot].k = strtol(digits, NULL, 10);
		rot[nrot].name = pv_xasprintf("%s.%s", path, digits);
		nrot++;
	}
	closedir(dh);
	if (nrot > 1)
		qsort(rot, nrot, sizeof *rot, cmp_rotated);

	FILE *fp = fopen(path, "r");
	bool live = fp != NULL;
	if (fp)
		fclose(fp);
	else if (errno != ENOENT) {
		st = pv_error_set(err, PV_ERR_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!live && nrot == 0) {
		st = pv_error_set(err, PV_ERR_NOT_FOUND, "%s: no such journal", path);
		goto out;
	}
	*out = pv_xcalloc(nrot + 1, sizeof **out);
	for (size_t i = 0; i < nrot; i++) {
		(*out)[i] = rot[i].name;
		rot[i].name = NULL;
	}
	*n = nrot;
	if (live)
		(*out)[(*n)++] = pv_xstrdup(path);
out:
	for (size_t i = 0; i < nrot; i++)
		free(rot[i].name);
	free(rot);
	free(dir);
	free(base);
	return st;
}

void pv_journal_files_free(char **files, size_t n)
{
	if (!files)
		return;
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
}

/* ---------------------------------------------------------------- verify */

typedef struct {
	PvBuf *report;
	PvJournalVerify *sum;
	bool have_prev; /* a record was seen before (in this or an earlier file) */
	char prev_hash[PV_JOURNAL_HASH_HEX + 1];
	bool prev_chained; /* that record had a "prev" */
	char prev_file[4096];
	size_t prev_line;
	int64_t prev_seq;
	/* the first unparseable line since that record, if any */
	char bad_file[4096];
	size_t bad_line;
	bool bad_has_newline;
	size_t nbad;
} Verifier;

static void finding(Verifier *v, bool problem, const char *file, size_t line, const char *fmt, ...)
    PV_PRINTF(5, 6);
static void finding(Verifier *v, bool problem, const char *file, size_t line, const char *fmt, ...)
{
	va_list ap;
	pv_buf_printf(v->report, "%s:%zu: ", file, line);
	va_start(ap, fmt);
	pv_buf_vprintf(v->report, fmt, ap);
	va_end(ap);
	pv_buf_putc(v->report, '\n');
	if (problem)
		v->sum->problems++;
}

static bool is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

static bool is_hash(const char *s)
{
	return strlen(s) == PV_JOURNAL_HASH_HEX &&
	       strspn(s, "0123456789abcdef") == PV_JOURNAL_HASH_HEX;
}

/* The pending unparseable lines, resolved by whether the chain skips them cleanly. */
static void resolve_bad(Verifier *v, bool chain_ok)
{
	if (!v->nbad)
		return;
	if (chain_ok) {
		v->sum->fragments += v->nbad;
		finding(
		    v, false, v->bad_file, v->bad_line,
		    "note: %s not a record, skipped cleanly by the chain (an interrupted write)",
		    v->nbad == 1 ? "line is" : "lines from here are");
	} else {
		finding(
		    v, true, v->bad_file, v->bad_line,
		    "not a record, and the chain does not skip it: a record here was damaged or "
		    "edited");
	}
	v->nbad = 0;
}

static void check_record(Verifier *v, const char *file, size_t line, const char *text, size_t len,
                         int64_t seq, json_t *prev, bool rotated_file)
{
	PvJournalVerify *s = v->sum;
	char hash[PV_JOURNAL_HASH_HEX + 1];
	bool had_bad = v->nbad > 0;

	s->records++;
	if (s->first_seq < 0)
		s->first_seq = seq;
	if (!prev) {
		s->unchained++;
		if (v->have_prev && v->prev_chained)
			finding(v, true, file, line,
			        "seq %" PRId64
			        ": no prev although the records before it are chained "
			        "(added by hand, or written by an older pgvigild)",
			        seq);
		resolve_bad(v, true);
	} else if (!json_is_string(prev) || !is_hash(json_string_value(prev))) {
		s->chained++;
		finding(v, true, file, line, "seq %" PRId64 ": prev is not a SHA-256 hex digest",
		        seq);
		resolve_bad(v, true);
	} else {
		const char *p = json_string_value(prev);
		s->chained++;
		if (!v->have_prev) {
			if (strcmp(p, PV_JOURNAL_GENESIS) != 0) {
				if (rotated_file)
					finding(v, false, file, line,
					        "note: seq %" PRId64
					        ": the chain begins in a file no longer "
					        "present (rotated out, see journal.keep)",
					        seq);
				else
					finding(v, true, file, line,
					        "seq %" PRId64
					        ": prev is not the start of a journal: the "
					        "records before this one were removed",
					        seq);
			}
			resolve_bad(v, true);
		} else if (strcmp(p, v->prev_hash) == 0) {
			resolve_bad(v, true);
		} else if (had_bad) {
			resolve_bad(v, false);
		} else if (seq <= v->prev_seq) {
			finding(v, true, file, line,
			        "seq %" PRId64 ": out of order after seq %" PRId64
			        " (%s:%zu): records were moved",
			        seq, v->prev_seq, v->prev_file, v->prev_line);
		} else if (seq == v->prev_seq + 1) {
			finding(v, true, file, line,
			        "seq %" PRId64
			        ": prev does not match the record before it (%s:%zu, "
			        "seq %" PRId64 "): that record was edited, or this one's prev was",
			        seq, v->prev_file, v->prev_line, v->prev_seq);
		} else {
			finding(
			    v, true, file, line,
			    "seq %" PRId64 ": prev does not match the record before it (%s:%zu, "
			    "seq %" PRId64 "): the records with seq %" PRId64 "..%" PRId64
			    " were removed",
			    seq, v->prev_file, v->prev_line, v->prev_seq, v->prev_seq + 1, seq - 1);
		}
	}
	if (v->have_prev && seq <= v->prev_seq && prev && json_is_string(prev) &&
	    strcmp(json_string_value(prev), v->prev_hash) == 0)
		finding(v, true, file, line,
		        "seq %" PRId64 ": not greater than seq %" PRId64 " before it", seq,
		        v->prev_seq);

	pv_journal_hash(text, len, hash);
	memcpy(v->prev_hash, hash, sizeof hash);
	v->have_prev = true;
	v->prev_chained = prev != NULL;
	pv_strlcpy(v->prev_file, file, sizeof v->prev_file);
	v->prev_line = line;
	v->prev_seq = seq;
	s->last_seq = seq;
	memcpy(s->last_hash, hash, sizeof hash);
}

static void verify_file(Verifier *v, const char *file, const char *text, size_t len,
                        bool rotated_file)
{
	const char *p = text, *end = text + len;
	size_t lineno = 0;

	v->sum->files++;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t n = (size_t)(le - p);
		lineno++;
		if (!is_blank(p, n)) {
			json_error_t jerr;
			json_t *obj = json_loadb(p, n, 0, &jerr);
			json_t *seq = obj ? json_object_get(obj, "seq") : NULL;
			json_t *ev = obj ? json_object_get(obj, "event") : NULL;
			if (obj && json_is_object(obj) && json_is_integer(seq) &&
			    json_is_string(ev)) {
				check_record(v, file, lineno, p, n,
				             (int64_t)json_integer_value(seq),
				             json_object_get(obj, "prev"), rotated_file);
			} else if (v->nbad++ == 0) {
				pv_strlcpy(v->bad_file, file, sizeof v->bad_file);
				v->bad_line = lineno;
				v->bad_has_newline = nl != NULL;
			} else {
				v->bad_has_newline = nl != NULL;
			}
			json_decref(obj);
		}
		p = nl ? nl + 1 : end;
	}
}

static void verify_finish(Verifier *v)
{
	/* unparseable lines at the very end: a torn last write has no newline */
	if (v->nbad) {
		if (!v->bad_has_newline && v->nbad == 1) {
			v->sum->fragments++;
			finding(v, false, v->bad_file, v->bad_line,
			        "note: the last line is not a whole record (an interrupted write)");
			v->nbad = 0;
		} else {
			resolve_bad(v, false);
		}
	}
}

static void verifier_init(Verifier *v, PvBuf *report, PvJournalVerify *sum)
{
	memset(v, 0, sizeof *v);
	memset(sum, 0, sizeof *sum);
	sum->first_seq = sum->last_seq = -1;
	v->report = report;
	v->sum = sum;
}

void pv_journal_verify_text(const char *display, const char *text, size_t len, PvBuf *report,
                            PvJournalVerify *sum)
{
	Verifier v;
	verifier_init(&v, report, sum);
	verify_file(&v, display, text, len, false);
	verify_finish(&v);
}

PvStatus pv_journal_verify(const char *path, PvBuf *report, PvJournalVerify *sum, PvError *err)
{
	char **files = NULL;
	size_t nfiles = 0;
	Verifier v;
	PvStatus st;

	verifier_init(&v, report, sum);
	st = pv_journal_files(path, &files, &nfiles, err);
	if (st != PV_OK)
		return st;
	for (size_t i = 0; i < nfiles; i++) {
		char *text = NULL;
		size_t len = 0;
		st = pv_file_read_all(files[i], &text, &len, err);
		if (st == PV_ERR_NOT_FOUND) {
			st = PV_OK; /* rotated away while we read: the next file carries on */
			continue;
		}
		if (st != PV_OK)
			break;
		verify_file(&v, files[i], text, len, strcmp(files[i], path) != 0);
		free(text);
	}
	if (st == PV_OK)
		verify_finish(&v);
	pv_journal_files_free(files, nfiles);
	return st;
}
