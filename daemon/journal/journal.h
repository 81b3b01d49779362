/*
 * journal: the append-only incident journal (writer side).
 *
 * One JSON object per line, keys in a fixed order:
 *   {"seq","ts","mono_ms","incident","event","phase","node","outcome","duration_ms","detail",
 *    "prev"}
 * "prev" chains the records (journal_chain.h): the SHA-256 of the previous record's line.
 * Every record is written with a single write(2) on an O_APPEND descriptor and fdatasync'ed
 * before pv_journal_append() returns, so a "begin" record is on disk before its action runs.
 *
 * Invariants: seq is strictly increasing across reopenings of the same file (open reads the
 * last complete record); a line is always valid JSON whatever bytes the caller passes
 * (strings go through pv_json_escape, invalid UTF-8 becomes U+FFFD); a torn last line left by
 * a crash is terminated before the next record, so it never glues onto a good one; seq and
 * the chain continue across rotation (path -> path.1 -> ... -> path.keep, once the file has
 * reached max_bytes: see pv_journal_set_rotation), and from path.1 when path has no record.
 *
 * Not done here: reading records back (journal_read.h), redaction (callers pass conninfo
 * through pv_redact_conninfo before it reaches a detail), locking against a second writer
 * (the daemon's pidfile lock does that).
 */
#ifndef PV_JOURNAL_JOURNAL_H
#define PV_JOURNAL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct PvJournal PvJournal;

/*
 * Opens (creates, mode 0600, parent dir must exist) path for append; reads the last complete
 * record to continue seq.  A torn last line (no newline) is ignored for seq and a newline is
 * written before the next record.  (Exception, for safety: a torn last line that nevertheless
 * parses as a whole record, i.e. only its newline is missing, still counts for seq, so no seq
 * is ever written twice.)
 */
PvStatus pv_journal_open(const char *path, PvJournal **out, PvError *err) PV_MUSTCHECK;
void pv_journal_free(PvJournal *j); /* NULL ok */
int64_t pv_journal_last_seq(const PvJournal *j);
const char *pv_journal_path(const PvJournal *j);
/* The hash the next record's "prev" will carry (64 hex digits). */
const char *pv_journal_last_hash(const PvJournal *j);
/*
 * Before an append finds the file at max_bytes or more (max_bytes > 0), the file is rotated:
 * path.k -> path.k+1 (path.keep dropped), path -> path.1, a new path.  A rotation that fails
 * is logged and the record goes to the current file (a record is never dropped for it).
 * Default: no rotation, keep 1.
 */
void pv_journal_set_rotation(PvJournal *j, int64_t max_bytes, int keep);

typedef enum {
	PV_PHASE_EVENT,
	PV_PHASE_BEGIN,
	PV_PHASE_END
} PvJournalPhase; /* "event","begin","end" */
const char *pv_journal_phase_name(PvJournalPhase p);
/* Returns -1 for an unknown name. */
int pv_journal_phase_parse(const char *name);

typedef struct {
	const char *incident; /* NULL -> null */
	const char *event;    /* required, e.g. "promote" */
	PvJournalPhase phase;
	const char *node;        /* NULL -> null */
	const char *outcome;     /* NULL -> null: "ok","failed","skipped","refused","timeout" */
	int64_t duration_ms;     /* < 0 -> null */
	const char *detail_json; /* NULL -> {} ; must be a JSON object produced by PvJson */
} PvJournalRecord;

/*
 * Writes one line {"seq","ts","mono_ms","incident","event","phase","node","outcome",
 * "duration_ms","detail","prev"} in that key order, then fsync.  Returns the seq in *seq (may be NULL).
 * A failed write (ENOSPC, EIO, ...) returns PV_ERR_IO; the journal stays usable and the next
 * record starts on a fresh line.
 */
PvStatus pv_journal_append(PvJournal *j, const PvJournalRecord *r, int64_t *seq,
                           PvError *err) PV_MUSTCHECK;

/* begin/end helpers for actions.  Empty event/node/incident strings mean null. */
typedef struct {
	int64_t begin_seq;
	int64_t start_mono_ms;
	char event[64];
	char node[64];
	char incident[64];
} PvJournalSpan;

/* Appends a "begin" record and fills span.  Names longer than 63 bytes are refused. */
PvStatus pv_journal_begin(PvJournal *j, PvJournalSpan *span, const char *incident,
                          const char *event, const char *node, const char *detail_json,
                          PvError *err) PV_MUSTCHECK;
/* end record: same event/node/incident, outcome, duration_ms = now - start, detail (may
 * include anything) */
PvStatus pv_journal_end(PvJournal *j, const PvJournalSpan *span, const char *outcome,
                        const char *detail_json, PvError *err) PV_MUSTCHECK;

/* A new incident id "YYYYMMDDTHHMMSSZ-<next seq>" (buffer >= 40 bytes): the id names the seq
 * the next appended record (the incident-open) will get. */
void pv_journal_new_incident_id(const PvJournal *j, char *out, size_t size);

#endif
