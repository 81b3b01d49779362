/*
 * journal_chain: the hash chain that makes edits of the journal visible, and the list of a
 * journal's files across rotation.
 *
 * Every record the writer appends carries "prev": the SHA-256 (64 lowercase hex digits) of the
 * previous record's line, the bytes as written without the newline.  The first record of a
 * brand-new journal has 64 zeros; the first record of a file started by rotation has the hash
 * of the last record of the file before it (path.1), so the chain runs through every file.
 *
 * pv_journal_verify() walks the files oldest first and recomputes the chain.  It names the
 * first record whose "prev" does not match (an edited, removed or reordered record shows up
 * there), records out of seq order, malformed "prev" values and lines that are not records.
 * A line that does not parse but that the chain skips cleanly is a fragment of an interrupted
 * write (a crash, a full disk), reported as a note, not a problem.  Records written before
 * the chain existed (no "prev" at all) are counted as unchained, not as tampered, as long as
 * no chained record precedes them.
 *
 * What the chain cannot show: records cut off the end of the newest file (compare the last
 * seq and hash with a copy kept elsewhere), and a whole chain recomputed by someone who edits
 * the file on purpose (there is no secret key).  Nothing here writes.
 */
#ifndef PV_JOURNAL_JOURNAL_CHAIN_H
#define PV_JOURNAL_JOURNAL_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"

#define PV_JOURNAL_HASH_HEX 64
/* The "prev" of the first record of a new journal. */
#define PV_JOURNAL_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

/* SHA-256 of data[0..len) as 64 lowercase hex digits; out must hold 65 bytes. */
void pv_journal_hash(const void *data, size_t len, char *out);

/*
 * The journal's files, oldest first: path.N ... path.2, path.1 (those that exist, whatever
 * gaps a crash left), then path itself if it exists.  *out is malloc'd, as is every name;
 * free with pv_journal_files_free.  No file at all is PV_ERR_NOT_FOUND.
 */
PvStatus pv_journal_files(const char *path, char ***out, size_t *n, PvError *err) PV_MUSTCHECK;
void pv_journal_files_free(char **files, size_t n);

/* The rotated file number k of path ("path.k"), malloc'd. */
char *pv_journal_rotated_name(const char *path, int k);

typedef struct {
	size_t files;     /* files read */
	size_t records;   /* records checked */
	size_t chained;   /* records with a "prev" */
	size_t unchained; /* records without one (written before the chain existed) */
	size_t fragments; /* unparseable lines the chain skips cleanly (interrupted writes) */
	size_t problems;  /* findings that mean the journal is not as written */
	int64_t first_seq, last_seq;             /* -1 when there are no records */
	char last_hash[PV_JOURNAL_HASH_HEX + 1]; /* hash of the last record's line, "" if none */
} PvJournalVerify;

/*
 * Verifies the chain of path and its rotated files.  Each finding is one line appended to
 * report: "FILE:LINE: seq N: PROBLEM" for a problem, "FILE:LINE: note: ..." for a note.
 * Returns PV_OK when the files could be read (sum->problems says whether the chain holds),
 * PV_ERR_NOT_FOUND when there is no journal, PV_ERR_IO when a file cannot be read.
 */
PvStatus pv_journal_verify(const char *path, PvBuf *report, PvJournalVerify *sum,
                           PvError *err) PV_MUSTCHECK;
/* The same over journal text held in memory, as the file name display (for tests). */
void pv_journal_verify_text(const char *display, const char *text, size_t len, PvBuf *report,
                            PvJournalVerify *sum);

#endif
