/*
 * journal_read: reads a journal written by journal.c back, for `pgvigil incident` and tests.
 *
 * The whole file is parsed with jansson, one record per line.  A line that is not a JSON
 * object with an integer "seq" and a string "event" is skipped and counted (a torn line from a
 * crash, a hand edit); empty lines are ignored.  The last line may lack its newline: it is
 * used if it parses and counted as torn otherwise.
 *
 * pv_journal_read() reads the rotated files too (path.N ... path.1, then path: see
 * journal_chain.h), as one log in that order.
 * Records keep the files' order; incident lists and timelines are sorted by seq.  Strings in a
 * PvJournalEntry point into its jansson object and live as long as the PvJournalLog.
 * Nothing here writes.
 */
#ifndef PV_JOURNAL_JOURNAL_READ_H
#define PV_JOURNAL_JOURNAL_READ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"

typedef struct {
	int64_t seq;
	const char *ts;       /* "" when absent */
	int64_t mono_ms;      /* -1 when absent */
	const char *incident; /* NULL for null */
	const char *event;
	const char *phase;   /* "event", "begin", "end" (as written; "" when absent) */
	const char *node;    /* NULL for null */
	const char *outcome; /* NULL for null */
	int64_t duration_ms; /* -1 for null */
	json_t *detail;      /* borrowed; always an object (empty when absent or not an object) */
	json_t *record;      /* borrowed; the whole record object */
	size_t line;         /* 1-based line number in the file */
	const char *file;    /* the file it was read from (NULL for pv_journal_parse text) */
} PvJournalEntry;

typedef struct {
	PvJournalEntry *entries;
	size_t nentries;
	size_t nbad;           /* unparseable lines skipped (a torn last line included) */
	size_t first_bad_line; /* 0 when nbad == 0 */
	const char *first_bad_file; /* its file (NULL for pv_journal_parse text) */
	bool torn_tail;        /* the last line had no newline and did not parse */
} PvJournalLog;

/* Reads path and its rotated files, oldest first.  No file at all is PV_ERR_NOT_FOUND
 * (callers may treat it as empty). */
PvStatus pv_journal_read(const char *path, PvJournalLog **out, PvError *err) PV_MUSTCHECK;
/* Parses journal text held in memory (never fails; bad lines are counted). */
PvJournalLog *pv_journal_parse(const char *text, size_t len);
void pv_journal_log_free(PvJournalLog *log); /* NULL ok */

/* The detail object as compact JSON (malloc'd, "{}" at least). */
char *pv_journal_entry_detail_string(const PvJournalEntry *e);
/* A string member of the detail, or NULL. */
const char *pv_journal_entry_detail_str(const PvJournalEntry *e, const char *key);

typedef struct {
	const char *id;
	const char *first_ts;
	const char *last_ts;
	int64_t first_seq;
	int64_t last_seq;
	size_t nrecords;
	const char *trigger; /* incident-open detail.trigger, or NULL */
	const char *reason;  /* incident-open detail.reason, or NULL */
	bool closed;         /* an incident-close record exists */
	const char *outcome; /* incident-close outcome, "open" without one ("unknown" if null) */
	const char *new_primary; /* incident-close detail.new_primary, or NULL */
	const char *ended_ts;    /* ts of the incident-close record, or NULL */
	int64_t duration_ms;     /* incident-close detail.duration_ms, or -1 */
} PvJournalIncident;

/* Every incident in the log, ordered by the seq of its first record.  Strings borrow from log.
 * *out is malloc'd (free() it); *n may be 0. */
void pv_journal_list_incidents(const PvJournalLog *log, PvJournalIncident **out, size_t *n);
/* One incident's records in seq order (pointers into log; free() the array).  An id that no
 * record carries is PV_ERR_NOT_FOUND. */
PvStatus pv_journal_incident_records(const PvJournalLog *log, const char *id,
                                     const PvJournalEntry ***out, size_t *n,
                                     PvError *err) PV_MUSTCHECK;
/* Fills the incident's summary (as pv_journal_list_incidents would); PV_ERR_NOT_FOUND if none. */
PvStatus pv_journal_incident_summary(const PvJournalLog *log, const char *id,
                                     PvJournalIncident *out, PvError *err) PV_MUSTCHECK;

/*
 * Pairs begin and end records of a seq-ordered array: partner[i] is the index of the matching
 * end of a begin (or begin of an end), -1 when it has none (an action interrupted by a crash,
 * or an end whose begin is elsewhere).  An end matches the latest unmatched earlier begin with
 * the same event, node and incident.
 */
void pv_journal_pair_steps(const PvJournalEntry *const *recs, size_t n, long *partner);

/*
 * Milliseconds of each record since recs[0]: mono_ms differences between consecutive records,
 * falling back to ts differences where mono_ms is missing or goes backwards (a reboot).
 */
void pv_journal_offsets(const PvJournalEntry *const *recs, size_t n, int64_t *offset_ms);

/* "2026-11-25T17:34:55.123456Z" -> microseconds since the epoch; false if malformed. */
bool pv_journal_parse_ts(const char *ts, int64_t *wall_us);

#endif
