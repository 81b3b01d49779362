#include "journal/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "journal/journal_chain.h"

#define PV_JOURNAL_TAIL_WINDOW (64 * 1024)

struct PvJournal {
	char *path;
	int fd;
	bool regular;      /* a regular file: scanned on open, fdatasync'ed after each record */
	bool need_newline; /* the file ends in a torn line: terminate it before the next record */
	int64_t last_seq;
	char last_hash[PV_JOURNAL_HASH_HEX + 1]; /* of the last whole record's line: the next prev */
	int64_t size;      /* bytes in the file (regular files) */
	int64_t max_bytes; /* rotate before appending once size reached this; <= 0: never */
	int keep;          /* rotated files kept: path.1 .. path.keep */
	bool rotate_failing; /* the last rotation attempt failed (logged once until it works) */
};

static const char *const phase_names[] = {"event", "begin", "end"};

const char *pv_journal_phase_name(PvJournalPhase p)
{
	return (p >= PV_PHASE_EVENT && p <= PV_PHASE_END) ? phase_names[p] : "unknown";
}

int pv_journal_phase_parse(const char *name)
{
	if (!name)
		return -1;
	for (int i = PV_PHASE_EVENT; i <= PV_PHASE_END; i++)
		if (strcmp(name, phase_names[i]) == 0)
			return i;
	return -1;
}

int64_t pv_journal_last_seq(const PvJournal *j)
{
	return j ? j->last_seq : 0;
}

const char *pv_journal_last_hash(const PvJournal *j)
{
	return j ? j->last_hash : PV_JOURNAL_GENESIS;
}

void pv_journal_set_rotation(PvJournal *j, int64_t max_bytes, int keep)
{
	if (!j)
		return;
	j->max_bytes = max_bytes;
	j->keep = keep < 1 ? 1 : keep;
}

const char *pv_journal_path(const PvJournal *j)
{
	return j ? j->path : NULL;
}

void pv_journal_free(PvJournal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j->path);
	free(j);
}

/* The seq of one line, if it is a whole record; false otherwise. */
static bool line_seq(const char *line, size_t len, int64_t *seq)
{
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, 0, &jerr);
	bool ok = false;
	if (obj && json_is_object(obj)) {
		json_t *s = json_object_get(obj, "seq");
		json_t *e = json_object_get(obj, "event");
		if (json_is_integer(s) && json_is_string(e)) {
			*seq = (int64_t)json_integer_value(s);
			ok = true;
		}
	}
	json_decref(obj);
	return ok;
}

static PvStatus read_at(int fd, const char *path, char *buf, size_t len, off_t off, PvError *err)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pv_error_set(err, PV_ERR_IO, "%s: read: %s", path, strerror(errno));
		if (n == 0)
			return pv_error_set(err, PV_ERR_IO, "%s: read: file shrank while reading",
			                    path);
		done += (size_t)n;
	}
	return PV_OK;
}

/* What the tail of a journal file says: the last whole record's seq and hash. */
typedef struct {
	bool found;
	int64_t seq;
	char hash[PV_JOURNAL_HASH_HEX + 1];
	bool torn; /* the file does not end in a newline */
} Tail;

static void tail_found(Tail *t, int64_t seq, const char *line, size_t len)
{
	t->found = true;
	t->seq = seq;
	pv_journal_hash(line, len, t->hash);
}

/*
 * Finds the last whole record of the file open at fd, reading backwards from the end in
 * growing windows so that a long journal costs one small read.
 */
static PvStatus scan_tail(int fd, const char *path, off_t size, Tail *t, PvError *err)
{
	PvStatus st = PV_OK;
	char *buf = NULL;
	off_t window = PV_JOURNAL_TAIL_WINDOW;

	memset(t, 0, sizeof *t);
	if (size == 0)
		return PV_OK;
	for (;;) {
		off_t start = size > window ? size - window : 0;
		size_t len = (size_t)(size - start);
		buf = pv_xrealloc(buf, len);
		st = read_at(fd, path, buf, len, start, err);
		if (st != PV_OK)
			goto out;
		t->torn = buf[len - 1] != '\n';

		/* the torn tail, if any: only counts when it is nevertheless a whole record */
		size_t end = len;
		if (t->torn) {
			size_t p = len;
			while (p > 0 && buf[p - 1] != '\n')
				p--;
			int64_t seq;
			if ((p > 0 || start == 0) && line_seq(buf + p, len - p, &seq)) {
				tail_found(t, seq, buf + p, len - p);
				goto out;
			}
			end = p;
		}
		/* whole lines, last first; the first line of a window not at 0 may be cut */
		while (end > 0) {
			size_t e = end - 1; /* buf[e] == '\n' */
			size_t b = e;
			while (b > 0 && buf[b - 1] != '\n')
				b--;
			if (b == 0 && start > 0)
				break;
			int64_t seq;
			if (line_seq(buf + b, e - b, &seq)) {
				tail_found(t, seq, buf + b, e - b);
				goto out;
			}
			end = b;
		}
		if (start == 0)
			goto out; /* no whole record at all */
		window *= 4;
	}
out:
	free(buf);
	return st;
}

/*
 * Where seq and the chain continue from: the last whole record of the file, or, in a file
 * without one (new, or started by a rotation a crash interrupted), that of path.1.
 */
static PvStatus continue_chain(PvJournal *j, off_t size, PvError *err)
{
	Tail t;
	PvStatus st = scan_tail(j->fd, j->path, size, &t, err);
	if (st != PV_OK)
		return st;
	j->need_newline = t.torn;
	if (!t.found) {
		char *prev = pv_journal_rotated_name(j->path, 1);
		int fd = open(prev, O_RDONLY | O_CLOEXEC);
		struct stat sb;
		if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode))
			st = scan_tail(fd, prev, sb.st_size, &t, err);
		if (fd >= 0)
			close(fd);
		free(prev);
		if (st != PV_OK)
			return st;
	}
	j->last_seq = t.found ? t.seq : 0;
	pv_strlcpy(j->last_hash, t.found ? t.hash : PV_JOURNAL_GENESIS, sizeof j->last_hash);
	return PV_OK;
}

PvStatus pv_journal_open(const char *path, PvJournal **out, PvError *err)
{
	PvStatus st = PV_OK;
	PvJournal *j = pv_xcalloc(1, sizeof *j);
	struct stat sb;
	bool created = false;

	j->fd = -1;
	j->keep = 1;
	pv_strlcpy(j->last_hash, PV_JOURNAL_GENESIS, sizeof j->last_hash);
	j->path = pv_xstrdup(path ? path : "");
	if (!path || !*path) {
		st = pv_error_set(err, PV_ERR_CONFIG, "journal path is empty");
		goto out;
	}
	j->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (j->fd < 0 && errno == ENOENT) {
		j->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		created = j->fd >= 0;
		if (j->fd < 0 && errno == EEXIST)
			j->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	}
	if (j->fd < 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: cannot open journal: %s", path,
		                  strerror(errno));
		goto out;
	}
	if (fstat(j->fd, &sb) != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: stat: %s", path, strerror(errno));
		goto out;
	}
	j->regular = S_ISREG(sb.st_mode);
	if (created) {
		/* exactly 0600 whatever the umask; then make the new name durable */
		if (fchmod(j->fd, 0600) != 0) {
			st = pv_error_set(err, PV_ERR_IO, "%s: chmod: %s", path, strerror(errno));
			goto out;
		}
		st = pv_file_sync_dir(path, err);
		if (st != PV_OK)
			goto out;
	}
	if (j->regular) {
		j->size = sb.st_size;
		st = continue_chain(j, sb.st_size, err);
		if (st != PV_OK)
			goto out;
	}
out:
	if (st != PV_OK) {
		pv_journal_free(j);
		j = NULL;
	}
	*out = j;
	return st;
}

/* detail_json is trusted, but a raw line break in it would split the record: JSON allows
 * whitespace between tokens and none inside strings, so a blank keeps the line valid. */
static void put_detail(PvJson *w, PvBuf *b, const char *detail_json)
{
	size_t from = b->len;
	pv_json_raw(w, "detail", detail_json && *detail_json ? detail_json : "{}");
	for (size_t i = from; i < b->len; i++)
		if (b->data[i] == '\n' || b->data[i] == '\r')
			b->data[i] = ' ';
}

/*
 * Rotation: path -> path.1 -> path.2 ... -> path.keep (the oldest dropped), then a new path.
 * Only the run of existing files from path.1 up is shifted, so an attempt that failed halfway
 * (path.1 already moved on) shifts nothing the next time.  A crash between the rename of path
 * and the creation of the new file is harmless: open continues seq and chain from path.1.
 */
static PvStatus rotate(PvJournal *j, PvError *err)
{
	PvStatus st = PV_OK;
	char *a = NULL, *b = NULL;
	int fd = -1, m = 1;

	/* files beyond keep (keep was lowered) go first */
	for (int k = j->keep + 1;; k++) {
		free(a);
		a = pv_journal_rotated_name(j->path, k);
		if (unlink(a) != 0)
			break;
	}
	/* m: the first free slot in 1..keep (keep itself when all are taken: it is dropped) */
	for (; m < j->keep; m++) {
		free(a);
		a = pv_journal_rotated_name(j->path, m);
		if (access(a, F_OK) != 0 && errno == ENOENT)
			break;
	}
	for (int k = m - 1; k >= 1; k--) {
		free(a);
		free(b);
		a = pv_journal_rotated_name(j->path, k);
		b = pv_journal_rotated_name(j->path, k + 1);
		if (rename(a, b) != 0 && errno != ENOENT) {
			st = pv_error_set(err, PV_ERR_IO, "%s: rename to %s: %s", a, b, strerror(errno));
			goto out;
		}
	}
	free(b);
	b = pv_journal_rotated_name(j->path, 1);
	if (rename(j->path, b) != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: rename to %s: %s", j->path, b, strerror(errno));
		goto out;
	}
	fd = open(j->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: cannot create journal: %s", j->path,
		                  strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(j->path);
		}
		if (rename(b, j->path) != 0)
			pv_error("journal: %s: cannot rename back to %s: %s", b, j->path,
			         strerror(errno));
		goto out;
	}
	PvError derr;
	if (pv_file_sync_dir(j->path, &derr) != PV_OK)
		pv_warn("journal: %s", derr.msg);
	close(j->fd);
	j->fd = fd;
	j->size = 0;
	j->need_newline = false;
out:
	free(a);
	free(b);
	return st;
}

static void maybe_rotate(PvJournal *j)
{
	PvError err;
	if (!j->regular || j->max_bytes <= 0 || j->size < j->max_bytes)
		return;
	if (rotate(j, &err) != PV_OK) {
		if (!j->rotate_failing)
			pv_error("journal: rotation failed, appending to %s beyond journal.max_bytes: %s",
			         j->path, err.msg);
		j->rotate_failing = true;
		return;
	}
	if (j->rotate_failing)
		pv_info("journal: rotation works again");
	j->rotate_failing = false;
	pv_info("journal: rotated %s (journal.max_bytes %" PRId64 ", keep %d)", j->path,
	        j->max_bytes, j->keep);
}

/*
 * Test-only fault point: PGVIGIL_FAULT_AFTER="EVENT:PHASE" (e.g. "promote:begin") ends the
 * process the moment that record is on disk, as a crash there would.  The crash-safety tests
 * use it to stop the daemon at every step of a failover.
 */
static void fault_point(const PvJournalRecord *r)
{
	const char *f = getenv("PGVIGIL_FAULT_AFTER");
	if (!f || !*f)
		return;
	const char *colon = strchr(f, ':');
	size_t n = colon ? (size_t)(colon - f) : strlen(f);
	if (strlen(r->event) != n || strncmp(f, r->event, n) != 0)
		return;
	if (colon && strcmp(colon + 1, pv_journal_phase_name(r->phase)) != 0)
		return;
	_exit(99);
}

static PvStatus append_at(PvJournal *j, const PvJournalRecord *r, int64_t mono_ms, int64_t *seq_out,
                          PvError *err)
{
	PvStatus st = PV_OK;
	PvBuf b = {0};
	PvJson w;
	char ts[40];
	int64_t seq;
	size_t off = 0;

	if (!j || j->fd < 0)
		return pv_error_set(err, PV_ERR_STATE, "journal is not open");
	if (!r || !r->event || !*r->event)
		return pv_error_set(err, PV_ERR_STATE, "%s: journal record without an event",
		                    j->path);
	maybe_rotate(j);
	seq = j->last_seq + 1;
	pv_clock_format_utc(pv_clock_wall_us(), ts, sizeof ts);

	if (j->need_newline)
		pv_buf_putc(&b, '\n');
	size_t line_start = b.len;
	pv_json_init(&w, &b);
	pv_json_obj_open(&w, NULL);
	pv_json_int(&w, "seq", seq);
	pv_json_str(&w, "ts", ts);
	pv_json_int(&w, "mono_ms", mono_ms);
	pv_json_str(&w, "incident", r->incident);
	pv_json_str(&w, "event", r->event);
	pv_json_str(&w, "phase", pv_journal_phase_name(r->phase));
	pv_json_str(&w, "node", r->node);
	pv_json_str(&w, "outcome", r->outcome);
	if (r->duration_ms >= 0)
		pv_json_int(&w, "duration_ms", r->duration_ms);
	else
		pv_json_null(&w, "duration_ms");
	put_detail(&w, &b, r->detail_json);
	pv_json_str(&w, "prev", j->last_hash);
	pv_json_obj_close(&w);
	char hash[PV_JOURNAL_HASH_HEX + 1];
	pv_journal_hash(b.data + line_start, b.len - line_start, hash);
	pv_buf_putc(&b, '\n');

	/* one write(2) for the whole line; O_APPEND places it at the end atomically */
	while (off < b.len) {
		ssize_t n = write(j->fd, b.data + off, b.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			if (off > 0) {
				/* part of the line is on disk: never reuse its seq, and
				 * terminate it before the next record (which chains to the
				 * last whole one: the fragment is not a record) */
				j->need_newline = true;
				j->last_seq = seq;
				j->size += (int64_t)off;
			}
			st = pv_error_set(err, PV_ERR_IO,
			                  "%s: cannot write journal record %" PRId64 " (%s): %s",
			                  j->path, seq, r->event, strerror(e));
			goto out;
		}
		off += (size_t)n;
	}
	j->need_newline = false;
	j->last_seq = seq;
	j->size += (int64_t)b.len;
	memcpy(j->last_hash, hash, sizeof hash);
	if (j->regular && fdatasync(j->fd) != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: fsync of journal record %" PRId64 ": %s",
		                  j->path, seq, strerror(errno));
		goto out;
	}
	if (seq_out)
		*seq_out = seq;
	fault_point(r);
out:
	pv_buf_free(&b);
	return st;
}


PvStatus pv_journal_append(PvJournal *j, const PvJournalRecord *r, int64_t *seq, PvError *err)
{
	return append_at(j, r, pv_clock_mono_ms(), seq, err);
}

static bool copy_name(char *dst, size_t size, const char *src)
{
	if (!src) {
		dst[0] = '\0';
		return true;
	}
	return pv_strlcpy(dst, src, size) < size;
}

static const char *or_null(const char *s)
{
	return s && *s ? s : NULL;
}

PvStatus pv_journal_begin(PvJournal *j, PvJournalSpan *span, const char *incident,
                          const char *event, const char *node, const char *detail_json,
                          PvError *err)
{
	int64_t mono = pv_clock_mono_ms();
	int64_t seq = 0;
	PvStatus st;

	memset(span, 0, sizeof *span);
	if (!event || !*event)
		return pv_error_set(err, PV_ERR_STATE, "journal begin record without an event");
	if (!copy_name(span->event, sizeof span->event, event) ||
	    !copy_name(span->node, sizeof span->node, node) ||
	    !copy_name(span->incident, sizeof span->incident, incident))
		return pv_error_set(err, PV_ERR_STATE, "journal begin record %s: name too long",
		                    event);
	PvJournalRecord r = {
	    .incident = or_null(incident),
	    .event = event,
	    .phase = PV_PHASE_BEGIN,
	    .node = or_null(node),
	    .duration_ms = -1,
	    .detail_json = detail_json,
	};
	st = append_at(j, &r, mono, &seq, err);
	if (st != PV_OK)
		return st;
	span->begin_seq = seq;
	span->start_mono_ms = mono;
	return PV_OK;
}

PvStatus pv_journal_end(PvJournal *j, const PvJournalSpan *span, const char *outcome,
                        const char *detail_json, PvError *err)
{
	int64_t mono = pv_clock_mono_ms();
	int64_t dur = mono - span->start_mono_ms;
	PvJournalRecord r = {
	    .incident = or_null(span->incident),
	    .event = span->event,
	    .phase = PV_PHASE_END,
	    .node = or_null(span->node),
	    .outcome = outcome,
	    .duration_ms = dur < 0 ? 0 : dur,
	    .detail_json = detail_json,
	};
	return append_at(j, &r, mono, NULL, err);
}

void pv_journal_new_incident_id(const PvJournal *j, char *out, size_t size)
{
	time_t sec = (time_t)(pv_clock_wall_us() / 1000000);
	struct tm tm;
	char stamp[32];

	if (!out || size == 0)
		return;
	gmtime_r(&sec, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	snprintf(out, size, "%s-%" PRId64, stamp, pv_journal_last_seq(j) + 1);
}
