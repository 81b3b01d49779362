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

#define PV_JOURNAL_TAIL_WINDOW (64 * 1024)

struct PvJournal {
	char *path;
	int fd;
	bool regular;      /* a regular file: scanned on open, fdatasync'ed after each record */
	bool need_newline; /* the file ends in a torn line: terminate it before the next record */
	int64_t last_seq;
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

static PvStatus read_at(PvJournal *j, char *buf, size_t len, off_t off, PvError *err)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(j->fd, buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pv_error_set(err, PV_ERR_IO, "%s: read: %s", j->path,
			                    strerror(errno));
		if (n == 0)
			return pv_error_set(err, PV_ERR_IO, "%s: read: file shrank while reading",
			                    j->path);
		done += (size_t)n;
	}
	return PV_OK;
}

/*
 * Finds the seq of the last whole record, reading backwards from the end in growing windows
 * so that a long journal costs one small read.  Sets need_newline when the file does not end
 * in a newline.
 */
static PvStatus scan_tail(PvJournal *j, off_t size, PvError *err)
{
	PvStatus st = PV_OK;
	char *buf = NULL;
	off_t window = PV_JOURNAL_TAIL_WINDOW;

	j->last_seq = 0;
	j->need_newline = false;
	if (size == 0)
		return PV_OK;
	for (;;) {
		off_t start = size > window ? size - window : 0;
		size_t len = (size_t)(size - start);
		buf = pv_xrealloc(buf, len);
		st = read_at(j, buf, len, start, err);
		if (st != PV_OK)
			goto out;
		j->need_newline = buf[len - 1] != '\n';

		/* the torn tail, if any: only counts when it is nevertheless a whole record */
		size_t end = len;
		if (j->need_newline) {
			size_t p = len;
			while (p > 0 && buf[p - 1] != '\n')
				p--;
			int64_t seq;
			if ((p > 0 || start == 0) && line_seq(buf + p, len - p, &seq)) {
				j->last_seq = seq;
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
				j->last_seq = seq;
				goto out;
			}
			end = b;
		}
		if (start == 0)
			goto out; /* no whole record at all: start at 1 */
		window *= 4;
	}
out:
	free(buf);
	return st;
}

PvStatus pv_journal_open(const char *path, PvJournal **out, PvError *err)
{
	PvStatus st = PV_OK;
	PvJournal *j = pv_xcalloc(1, sizeof *j);
	struct stat sb;
	bool created = false;

	j->fd = -1;
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
		st = scan_tail(j, sb.st_size, err);
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
	seq = j->last_seq + 1;
	pv_clock_format_utc(pv_clock_wall_us(), ts, sizeof ts);

	if (j->need_newline)
		pv_buf_putc(&b, '\n');
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
	pv_json_obj_close(&w);
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
				 * terminate it before the next record */
				j->need_newline = true;
				j->last_seq = seq;
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
	if (j->regular && fdatasync(j->fd) != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: fsync of journal record %" PRId64 ": %s",
		                  j->path, seq, strerror(errno));
		goto out;
	}
	if (seq_out)
		*seq_out = seq;
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
