/*
 * backup_ext: pgvigild's backup component (see backup_ext.h for what it does).
 */
#include "act/backup_ext.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "act/backup.h"
#include "common/clock.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "io/pgcmd.h"
#include "io/pgconn.h"
#include "io/proc.h"
#include "journal/events.h"
#include "pgvigild/daemon.h"

#define PROGRESS_EVERY_MS 1000
#define EV(e) pv_journal_event_name(e)
#define ARCHIVE_WAIT_MS 60000
#define ARCHIVE_CHECK_MS 250

typedef enum { JOB_IDLE, JOB_COPY, JOB_VERIFY } JobPhase;

typedef struct {
	JobPhase phase;
	bool verify_only; /* a backup-verify request on a finished backup */
	int method;
	char *dir;  /* backup.directory when the job started */
	char *path; /* the directory copied into, then verified */
	PvProc *proc;
	PvJournalSpan span;  /* backup (not for verify_only) */
	PvJournalSpan vspan; /* backup-verify */
	bool vspan_open;
	int64_t start_ms, copy_end_ms, verify_start_ms;
	PvBackupEntry e;
	/* progress, from pg_stat_progress_basebackup on the source */
	PvPgConn *pg;
	char app[96];
	int64_t next_poll_ms;
	char pphase[64];
	int64_t done, total; /* total -1: unknown */
	int64_t rate_t0_ms, rate_done0;
	int64_t rate_bps; /* -1: unknown */
	int milestone;
	char abort_reason[256];
} Job;

typedef struct {
	PvDaemon *d;
	Job job;
	/* the last job's outcome, for backup-status */
	bool have_last;
	char last_label[PV_BACKUP_LABEL_MAX], last_kind[16], last_outcome[16], last_error[512];
	int64_t last_size, last_duration_ms;
	/* what runs next */
	bool pend_promotion;
	int pend_node;
	char pend_incident[64];
	bool pend_schedule;
	int64_t due_ms; /* next scheduled backup (monotonic), 0 none */
	/* a restore point's WAL segment on its way to backup.archive_dir */
	bool arch_wait;
	char arch_path[4096], arch_wal[32], arch_name[96], arch_incident[64], arch_node[64];
	int64_t arch_start_ms, arch_deadline_ms, arch_next_ms;
	/* retention's removals, one child rm at a time */
	PvProc *rm;
	char **rm_queue;
	size_t rm_n;
	/* where each part sits in the pollfds handed to the loop */
	int fd_pg;
} BackupExt;

/* ---------------------------------------------------------------- journal helpers */

static void jevent(PvDaemon *d, const char *incident, const char *event, const char *node,
                   const char *outcome, const char *detail)
{
	PvJournalRecord r = {
	    .incident = incident && *incident ? incident : NULL,
	    .event = event,
	    .phase = PV_PHASE_EVENT,
	    .node = node && *node ? node : NULL,
	    .outcome = outcome,
	    .duration_ms = -1,
	    .detail_json = detail,
	};
	PvError err;
	if (pv_journal_append(d->journal, &r, NULL, &err) != PV_OK)
		pv_error("journal: %s (event %s not recorded)", err.msg, event);
}

static void jend(PvDaemon *d, const PvJournalSpan *span, const char *outcome, const char *detail)
{
	PvError err;
	if (pv_journal_end(d->journal, span, outcome, detail, &err) != PV_OK)
		pv_error("journal: %s", err.msg);
}

static void lsn_json(PvJson *j, const char *key, uint64_t lsn)
{
	char s[32];
	if (!lsn) {
		pv_json_null(j, key);
		return;
	}
	pv_lsn_format(lsn, s, sizeof s);
	pv_json_str(j, key, s);
}

/* The last lines of a child's stderr (or stdout), on one line, for an error message. */
static void output_tail(const PvProc *p, char *out, size_t size)
{
	const PvBuf *b = pv_proc_stderr(p);
	if (!b->len)
		b = pv_proc_stdout(p);
	const char *s = b->data ? b->data : "";
	size_t n = b->len;
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	/* up to three lines */
	size_t start = n;
	for (int lines = 0; start > 0 && lines < 3; start--)
		if (s[start - 1] == '\n' && ++lines == 3)
			break;
	size_t o = 0;
	for (size_t i = start; i < n && o + 1 < size; i++)
		out[o++] = (s[i] == '\n' || s[i] == '\r' || s[i] == '\t') ? ' ' : s[i];
	out[o] = '\0';
}

/* ---------------------------------------------------------------- removals */

static void rm_next(BackupExt *x, int64_t now)
{
	while (!x->rm && x->rm_n > 0) {
		char *path = x->rm_queue[0];
		memmove(x->rm_queue, x->rm_queue + 1, (x->rm_n - 1) * sizeof *x->rm_queue);
		x->rm_n--;
		const char *argv[] = {"rm", "-rf", "--", path, NULL};
		PvProcSpec spec = {.argv = argv, .timeout_ms = 3600 * 1000};
		PvError err;
		if (pv_proc_start(&spec, now, &x->rm, &err) != PV_OK)
			pv_error("cannot remove %s: %s", path, err.msg);
		free(path);
	}
}

/* Renames path to DIR/LABEL.deleting (so it is never listed again) and queues its removal. */
static PvStatus remove_later(BackupExt *x, const char *dir, const char *label, const char *path,
                             int64_t now, PvError *err)
{
	char *dst = pv_xasprintf("%s/%s.deleting", dir, label);
	PvStatus st = PV_OK;
	if (rename(path, dst) != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: cannot rename to %s: %s", path, dst,
		                  strerror(errno));
		free(dst);
		return st;
	}
	x->rm_queue = pv_xrealloc(x->rm_queue, (x->rm_n + 1) * sizeof *x->rm_queue);
	x->rm_queue[x->rm_n++] = dst;
	rm_next(x, now);
	return PV_OK;
}

/* ---------------------------------------------------------------- job lifecycle */

static void job_clear(Job *job)
{
	pv_proc_free(job->proc);
	pv_pgconn_free(job->pg);
	free(job->dir);
	free(job->path);
	memset(job, 0, sizeof *job);
	job->phase = JOB_IDLE;
}

static void remember(BackupExt *x, const char *kind, const char *outcome, const char *error)
{
	Job *job = &x->job;
	x->have_last = true;
	snprintf(x->last_label, sizeof x->last_label, "%s", job->e.label);
	snprintf(x->last_kind, sizeof x->last_kind, "%s", kind);
	snprintf(x->last_outcome, sizeof x->last_outcome, "%s", outcome);
	snprintf(x->last_error, sizeof x->last_error, "%s", error ? error : "");
	x->last_size = job->e.size_bytes;
	x->last_duration_ms = job->e.duration_ms;
}

static void retention(BackupExt *x, PvDaemon *d, const char *dir, const char *incident, int64_t now)
{
	PvBackupEntry *list = NULL;
	size_t n = 0;
	PvError err;
	if (pv_backup_catalog_list(dir, &list, &n, &err) != PV_OK) {
		pv_error("retention: %s", err.msg);
		return;
	}
	bool *del = pv_xcalloc(n ? n : 1, sizeof *del);
	pv_backup_retention(list, n, d->cfg->backup_keep, del);
	for (size_t i = 0; i < n; i++) {
		if (!del[i])
			continue;
		const PvBackupEntry *e = &list[i];
		char *path = pv_backup_entry_path(dir, e);
		char *json = pv_xasprintf("%s/%s.json", dir, e->label);
		PvStatus st = PV_OK;
		if (path)
			st = remove_later(x, dir, e->label, path, now, &err);
		if (st == PV_OK && unlink(json) != 0 && errno != ENOENT)
			st = pv_error_set(&err, PV_ERR_IO, "%s: %s", json, strerror(errno));
		if (st == PV_OK && pv_file_sync_dir(json, &err) != PV_OK)
			pv_warn("%s", err.msg);
		PvBuf b = {0};
		PvJson j;
		pv_json_init(&j, &b);
		pv_json_obj_open(&j, NULL);
		pv_json_str(&j, "label", e->label);
		pv_json_str(&j, "status", pv_backup_status_name(e->status));
		if (e->size_bytes >= 0)
			pv_json_int(&j, "size_bytes", e->size_bytes);
		pv_json_str(&j, "reason",
		            pv_backup_status_good(e->status)
		                ? "retention: more good backups than backup.keep"
		                : "retention: a newer good backup exists");
		pv_json_int(&j, "keep", d->cfg->backup_keep);
		if (st != PV_OK)
			pv_json_str(&j, "error", err.msg);
		pv_json_obj_close(&j);
		jevent(d, incident, EV(PV_EV_BACKUP_DELETE), NULL, st == PV_OK ? "ok" : "failed",
		       b.data);
		pv_buf_free(&b);
		if (st == PV_OK)
			pv_info("backup %s deleted (%s)", e->label,
			        pv_backup_status_name(e->status));
		else
			pv_error("backup %s not deleted: %s", e->label, err.msg);
		free(path);
		free(json);
	}
	free(del);
	free(list);
}

/* The backup span's end record, then the job is over. */
static void backup_end(BackupExt *x, PvDaemon *d, const char *outcome, const char *step,
                       const char *error, int64_t now)
{
	Job *job = &x->job;
	PvBackupEntry *e = &job->e;
	e->duration_ms = now - job->start_ms;
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "label", e->label);
	pv_json_str(&j, "trigger", e->trigger);
	pv_json_str(&j, "status", pv_backup_status_name(e->status));
	pv_json_bool(&j, "verified", e->status == PV_BACKUP_VERIFIED);
	if (e->size_bytes >= 0)
		pv_json_int(&j, "size_bytes", e->size_bytes);
	pv_json_int(&j, "duration_ms", e->duration_ms);
	pv_json_int(&j, "copy_ms", e->copy_ms);
	if (e->verify_ms >= 0)
		pv_json_int(&j, "verify_ms", e->verify_ms);
	lsn_json(&j, "start_lsn", e->start_lsn);
	lsn_json(&j, "stop_lsn", e->stop_lsn);
	if (e->timeline)
		pv_json_int(&j, "timeline", e->timeline);
	if (step)
		pv_json_str(&j, "failed_step", step);
	if (error)
		pv_json_str(&j, "error", error);
	pv_json_obj_close(&j);
	jend(d, &job->span, outcome, b.data);
	pv_buf_free(&b);
	if (strcmp(outcome, "ok") == 0)
		pv_info("backup %s of %s %s: %lld bytes in %lld ms", e->label, e->node,
		        pv_backup_status_name(e->status), (long long)e->size_bytes,
		        (long long)e->duration_ms);
	else
		pv_error("backup %s of %s %s at %s: %s", e->label, e->node, outcome,
		         step ? step : "?", error ? error : "");
	remember(x, "backup", outcome, error);
	char *dir = pv_xstrdup(job->dir);
	char incident[64];
	snprintf(incident, sizeof incident, "%s", e->incident);
	bool good = pv_backup_status_good(e->status) && strcmp(outcome, "ok") == 0;
	job_clear(job);
	if (good)
		retention(x, d, dir, incident, now);
	free(dir);
}

/* A copy that failed: its partial directory goes, nothing else is touched. */
static void copy_failed(BackupExt *x, PvDaemon *d, const char *outcome, const char *step,
                        const char *error, int64_t now)
{
	Job *job = &x->job;
	struct stat st;
	/* the writer goes first, so nothing writes into what is being removed */
	pv_proc_free(job->proc);
	job->proc = NULL;
	if (job->path && lstat(job->path, &st) == 0) {
		PvError err;
		if (remove_later(x, job->dir, job->e.label, job->path, now, &err) != PV_OK)
			pv_error("%s", err.msg);
	}
	job->e.status = PV_BACKUP_FAILED;
	backup_end(x, d, outcome, step, error, now);
}

static void start_verify(BackupExt *x, PvDaemon *d, int64_t now)
{
	Job *job = &x->job;
	char prog[4096];
	PvError err;
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "label", job->e.label);
	pv_json_str(&j, "path", job->path);
	pv_json_obj_close(&j);
	PvStatus st = pv_journal_begin(d->journal, &job->vspan, job->e.incident,
	                               EV(PV_EV_BACKUP_VERIFY), job->e.node, b.data, &err);
	pv_buf_free(&b);
	if (st == PV_OK) {
		job->vspan_open = true;
		st = pv_backup_program(d->cfg->backup_pg_bin_dir, "pg_verifybackup", prog,
		                       sizeof prog, &err);
	}
	if (st == PV_OK) {
		const char *argv[] = {prog, job->path, NULL};
		PvProcSpec spec = {.argv = argv, .timeout_ms = d->cfg->backup_timeout_s * 1000};
		st = pv_proc_start(&spec, now, &job->proc, &err);
	}
	job->phase = JOB_VERIFY;
	job->verify_start_ms = now;
	snprintf(job->pphase, sizeof job->pphase, "verifying");
	if (st == PV_OK)
		return;
	/* could not even start: the verification failed */
	if (job->vspan_open) {
		pv_buf_reset(&b);
		pv_json_init(&j, &b);
		pv_json_obj_open(&j, NULL);
		pv_json_str(&j, "label", job->e.label);
		pv_json_str(&j, "error", err.msg);
		pv_json_obj_close(&j);
		jend(d, &job->vspan, "failed", b.data);
		pv_buf_free(&b);
	}
	if (job->verify_only) {
		remember(x, "verify", "failed", err.msg);
		job_clear(job);
		return;
	}
	job->e.verify_ms = -1;
	copy_failed(x, d, "failed", "verify", err.msg, now);
}

/* Reads backup_label and backup_manifest of the finished copy into the entry. */
static void read_backup_facts(Job *job)
{
	char *path = pv_xasprintf("%s/backup_label", job->path);
	char *text = NULL;
	PvBackupLabel bl;
	if (pv_file_read_all(path, &text, NULL, NULL) == PV_OK &&
	    pv_backup_label_parse(text, &bl)) {
		job->e.start_lsn = bl.start_lsn;
		job->e.checkpoint_lsn = bl.checkpoint_lsn;
		job->e.timeline = bl.timeline;
		snprintf(job->e.start_wal, sizeof job->e.start_wal, "%s", bl.start_wal);
	}
	free(text);
	free(path);
	text = NULL;
	path = pv_xasprintf("%s/backup_manifest", job->path);
	int tl;
	uint64_t s, e;
	if (pv_file_read_all(path, &text, NULL, NULL) == PV_OK &&
	    pv_backup_manifest_wal(text, &tl, &s, &e)) {
		if (!job->e.start_lsn)
			job->e.start_lsn = s;
		job->e.stop_lsn = e;
		if (!job->e.timeline)
			job->e.timeline = tl;
	}
	free(text);
	free(path);
}

/* The copy is good (verified or, for a command backup, unverifiable): name it, catalog it. */
static void finalize(BackupExt *x, PvDaemon *d, PvBackupStatus status, int64_t now)
{
	Job *job = &x->job;
	PvBackupEntry *e = &job->e;
	PvError err;
	read_backup_facts(job);
	char *final = pv_xasprintf("%s/%s", job->dir, e->label);
	if (rename(job->path, final) != 0) {
		char msg[600];
		snprintf(msg, sizeof msg, "%s: cannot rename to %s: %s", job->path, final,
		         strerror(errno));
		free(final);
		copy_failed(x, d, "failed", "rename", msg, now);
		return;
	}
	if (pv_file_sync_dir(final, &err) != PV_OK)
		pv_warn("%s", err.msg);
	free(job->path);
	job->path = final;
	e->status = status;
	if (pv_backup_tree_size(final, &e->size_bytes, &err) != PV_OK)
		e->size_bytes = -1;
	pv_clock_format_utc(pv_clock_wall_us(), e->stop_ts, sizeof e->stop_ts);
	e->duration_ms = now - job->start_ms;
	if (pv_backup_catalog_write(job->dir, e, &err) != PV_OK) {
		/* the directory stays, listed as incomplete; retention removes it later */
		e->status = PV_BACKUP_INCOMPLETE;
		backup_end(x, d, "failed", "catalog", err.msg, now);
		return;
	}
	backup_end(x, d, "ok", NULL, NULL, now);
}

static void verify_done(BackupExt *x, PvDaemon *d, int64_t now)
{
	Job *job = &x->job;
	bool ok = pv_proc_exit_status(job->proc) == 0 && !pv_proc_timed_out(job->proc);
	char error[sizeof job->e.error] = "";
	if (!ok) {
		char how[128], tail[360];
		pv_proc_describe(job->proc, how, sizeof how);
		output_tail(job->proc, tail, sizeof tail);
		snprintf(error, sizeof error, "pg_verifybackup: %s%s%s", how, tail[0] ? ": " : "",
		         tail);
	}
	job->e.verify_ms = now - job->verify_start_ms;
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "label", job->e.label);
	if (!ok)
		pv_json_str(&j, "error", error);
	pv_json_obj_close(&j);
	jend(d, &job->vspan, ok ? "ok" : (pv_proc_timed_out(job->proc) ? "timeout" : "failed"),
	     b.data);
	pv_buf_free(&b);
	job->vspan_open = false;
	pv_proc_free(job->proc);
	job->proc = NULL;

	if (job->verify_only) {
		PvError err;
		job->e.status = ok ? PV_BACKUP_VERIFIED : PV_BACKUP_FAILED;
		snprintf(job->e.error, sizeof job->e.error, "%s", error);
		if (pv_backup_catalog_write(job->dir, &job->e, &err) != PV_OK)
			pv_error("backup %s: %s", job->e.label, err.msg);
		if (ok)
			pv_info("backup %s verified", job->e.label);
		else
			pv_error("backup %s failed verification: %s", job->e.label, error);
		remember(x, "verify", ok ? "ok" : "failed", ok ? NULL : error);
		job_clear(job);
		return;
	}
	if (ok) {
		finalize(x, d, PV_BACKUP_VERIFIED, now);
		return;
	}
	/* kept for inspection as LABEL.failed, catalogued as failed; nothing good is touched */
	char *failed = pv_xasprintf("%s/%s.failed", job->dir, job->e.label);
	if (rename(job->path, failed) == 0) {
		free(job->path);
		job->path = failed;
	} else {
		free(failed);
	}
	read_backup_facts(job);
	job->e.status = PV_BACKUP_FAILED;
	snprintf(job->e.error, sizeof job->e.error, "%s", error);
	PvError err;
	if (pv_backup_tree_size(job->path, &job->e.size_bytes, &err) != PV_OK)
		job->e.size_bytes = -1;
	job->e.duration_ms = now - job->start_ms;
	if (pv_backup_catalog_write(job->dir, &job->e, &err) != PV_OK)
		pv_error("backup %s: %s", job->e.label, err.msg);
	backup_end(x, d, "failed", "verify", error, now);
}

static void copy_done(BackupExt *x, PvDaemon *d, int64_t now)
{
	Job *job = &x->job;
	job->copy_end_ms = now;
	job->e.copy_ms = now - job->start_ms;
	bool timed_out = pv_proc_timed_out(job->proc);
	bool ok = pv_proc_exit_status(job->proc) == 0 && !timed_out;
	const char *step = job->method == PV_BACKUP_COMMAND ? "command" : "pg_basebackup";
	if (!ok) {
		char how[128], tail[400], error[600];
		pv_proc_describe(job->proc, how, sizeof how);
		output_tail(job->proc, tail, sizeof tail);
		snprintf(error, sizeof error, "%s: %s%s%s", step, how, tail[0] ? ": " : "", tail);
		copy_failed(x, d, timed_out ? "timeout" : "failed", step, error, now);
		return;
	}
	pv_proc_free(job->proc);
	job->proc = NULL;
	pv_pgconn_free(job->pg);
	job->pg = NULL;
	char *manifest = pv_xasprintf("%s/backup_manifest", job->path);
	bool verifiable = job->method == PV_BACKUP_PG_BASEBACKUP || access(manifest, F_OK) == 0;
	free(manifest);
	if (verifiable)
		start_verify(x, d, now);
	else
		finalize(x, d, PV_BACKUP_UNVERIFIED, now);
}

/* ---------------------------------------------------------------- starting a backup */

static bool job_busy(const BackupExt *x)
{
	return x->job.phase != JOB_IDLE;
}

/*
 * Starts a backup of node (-1: the primary).  *recorded tells whether a backup begin record
 * was written (its end record is then written too, also when starting fails).
 */
static PvStatus start_backup(BackupExt *x, PvDaemon *d, const char *trigger, int node,
                             const char *incident, int64_t now, char *label_out, size_t label_size,
                             bool *recorded, PvError *err)
{
	const PvConfig *cfg = d->cfg;
	Job *job = &x->job;
	char prog[4096], host[256], app[96], maxrate[32];
	int port = 0;
	char *ci = NULL, *pw = NULL, *pwenv = NULL;
	char **cargv = NULL;
	PvStatus st;

	*recorded = false;
	if (job_busy(x))
		return pv_error_set(err, PV_ERR_BUSY, "a %s is already running: %s",
		                    job->verify_only ? "verification" : "backup", job->e.label);
	int src = node >= 0 ? node : d->view.primary;
	if (src < 0 || src >= d->view.nnodes)
		return pv_error_set(err, PV_ERR_STATE, "no primary is known");
	const PvNodeView *nv = &d->view.nodes[src];
	if (nv->obs.result != PV_PROBE_UP || nv->obs.in_recovery)
		return pv_error_set(err, PV_ERR_STATE, "%s does not answer as a primary%s%s",
		                    nv->name, nv->obs.reason[0] ? ": " : "", nv->obs.reason);
	const PvNodeConfig *nc = &cfg->nodes[src];

	job_clear(job);
	job->dir = pv_backup_directory(cfg);
	st = pv_backup_mkdirs(job->dir, err);
	if (st != PV_OK)
		goto fail;
	int64_t wall = pv_clock_wall_us();
	pv_backup_new_label(job->dir, wall, job->e.label, sizeof job->e.label);
	job->path = pv_xasprintf("%s/%s.partial", job->dir, job->e.label);
	job->method = cfg->backup_method;
	snprintf(app, sizeof app, "pgvigil-backup-%s", job->e.label);
	st = pv_pg_conninfo_target(nc->conninfo, host, sizeof host, &port, err);
	if (st == PV_OK)
		st = pv_pgcmd_conninfo(nc->conninfo, app, &ci, &pw, err);
	if (st != PV_OK)
		goto fail;
	if (job->method == PV_BACKUP_PG_BASEBACKUP) {
		st = pv_backup_program(cfg->backup_pg_bin_dir, "pg_basebackup", prog, sizeof prog,
		                       err);
	} else {
		PvBackupVars v = {.dir = job->path,
		                  .label = job->e.label,
		                  .conninfo = ci,
		                  .host = host,
		                  .port = port,
		                  .node = nc->name};
		st = pv_backup_command_argv(cfg->backup_command, &v, &cargv, err);
		if (st == PV_OK && mkdir(job->path, 0700) != 0)
			st = pv_error_set(err, PV_ERR_IO, "%s: cannot create: %s", job->path,
			                  strerror(errno));
	}
	if (st != PV_OK)
		goto fail;

	/* the record before the action */
	snprintf(job->e.trigger, sizeof job->e.trigger, "%s", trigger);
	snprintf(job->e.incident, sizeof job->e.incident, "%s", incident ? incident : "");
	snprintf(job->e.node, sizeof job->e.node, "%s", nc->name);
	char source[300];
	snprintf(source, sizeof source, "%s:%d", host, port);
	pv_strlcpy(job->e.source, source, sizeof job->e.source);
	snprintf(job->e.method, sizeof job->e.method, "%s", pv_backup_method_name(job->method));
	pv_clock_format_utc(wall, job->e.start_ts, sizeof job->e.start_ts);
	job->e.start_wall_us = wall;
	if (nv->obs.system_id)
		snprintf(job->e.system_id, sizeof job->e.system_id, "%llu",
		         (unsigned long long)nv->obs.system_id);
	job->e.size_bytes = -1;
	job->e.verify_ms = -1;
	job->e.status = PV_BACKUP_PARTIAL;
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "label", job->e.label);
	pv_json_str(&j, "trigger", trigger);
	pv_json_str(&j, "method", job->e.method);
	pv_json_str(&j, "source", job->e.source);
	pv_json_str(&j, "directory", job->dir);
	pv_json_obj_close(&j);
	st = pv_journal_begin(d->journal, &job->span, job->e.incident, EV(PV_EV_BACKUP), nc->name,
	                      b.data, err);
	pv_buf_free(&b);
	if (st != PV_OK) {
		pv_error_prefix(err, "journal");
		if (job->method == PV_BACKUP_COMMAND)
			rmdir(job->path);
		goto fail;
	}
	*recorded = true;

	pwenv = pw ? pv_xasprintf("PGPASSWORD=%s", pw) : NULL;
	const char *env[] = {pwenv, NULL};
	PvProcSpec spec = {.env = pwenv ? env : NULL, .timeout_ms = cfg->backup_timeout_s * 1000};
	char label_opt[128];
	snprintf(label_opt, sizeof label_opt, "pgvigil %s", job->e.label);
	if (job->method == PV_BACKUP_PG_BASEBACKUP) {
		const char *argv[16];
		int a = 0;
		argv[a++] = prog;
		argv[a++] = "-d";
		argv[a++] = ci;
		argv[a++] = "-D";
		argv[a++] = job->path;
		argv[a++] = "-X";
		argv[a++] = "stream";
		argv[a++] = "-c";
		argv[a++] = "fast";
		argv[a++] = "-l";
		argv[a++] = label_opt;
		argv[a++] = "-w";
		if (cfg->backup_max_rate_kb > 0) {
			snprintf(maxrate, sizeof maxrate, "--max-rate=%dk",
			         cfg->backup_max_rate_kb < 32 ? 32 : cfg->backup_max_rate_kb);
			argv[a++] = maxrate;
		}
		argv[a] = NULL;
		spec.argv = argv;
		st = pv_proc_start(&spec, now, &job->proc, err);
	} else {
		spec.argv = (const char *const *)cargv;
		st = pv_proc_start(&spec, now, &job->proc, err);
	}
	job->phase = JOB_COPY;
	job->start_ms = now;
	job->total = -1;
	job->rate_bps = -1;
	snprintf(job->pphase, sizeof job->pphase, "starting");
	snprintf(job->app, sizeof job->app, "%s", app);
	if (job->method == PV_BACKUP_PG_BASEBACKUP) {
		job->pg = pv_pgconn_new(nc->conninfo, PV_PGC_KIND_POSTGRES, cfg->probe_timeout_ms);
		job->next_poll_ms = now + PROGRESS_EVERY_MS / 2;
	}
	if (cfg->backup_interval_s > 0)
		x->due_ms = now + (int64_t)cfg->backup_interval_s * 1000;
	if (st != PV_OK) {
		copy_failed(x, d, "failed", "start", err->msg, now);
		st = PV_ERR_IO;
		goto out;
	}
	pv_info("backup %s of %s started (%s, %s)", job->e.label, nc->name, trigger, job->e.method);
	if (label_out)
		snprintf(label_out, label_size, "%s", job->e.label);
	goto out;
fail:
	job_clear(job);
out:
	free(ci);
	if (pw) {
		memset(pw, 0, strlen(pw));
		free(pw);
	}
	if (pwenv) {
		memset(pwenv, 0, strlen(pwenv));
		free(pwenv);
	}
	pv_backup_argv_free(cargv);
	return st;
}

static PvStatus start_verify_only(BackupExt *x, PvDaemon *d, const char *label, int64_t now,
                                  PvError *err)
{
	Job *job = &x->job;
	if (job_busy(x))
		return pv_error_set(err, PV_ERR_BUSY, "a %s is already running: %s",
		                    job->verify_only ? "verification" : "backup", job->e.label);
	char *dir = pv_backup_directory(d->cfg);
	PvBackupEntry *list = NULL;
	size_t n = 0;
	PvStatus st = pv_backup_catalog_list(dir, &list, &n, err);
	long i = st == PV_OK ? pv_backup_catalog_find(list, n, label) : -1;
	if (st == PV_OK && i < 0)
		st = pv_error_set(err, PV_ERR_NOT_FOUND, "no backup %s in %s", label, dir);
	char *path = st == PV_OK ? pv_backup_entry_path(dir, &list[i]) : NULL;
	if (st == PV_OK && (list[i].status == PV_BACKUP_PARTIAL || !path))
		st = pv_error_set(err, PV_ERR_STATE, "backup %s is %s: nothing to verify", label,
		                  pv_backup_status_name(list[i].status));
	if (st != PV_OK) {
		free(path);
		free(list);
		free(dir);
		return st;
	}
	job_clear(job);
	job->verify_only = true;
	job->dir = dir;
	job->path = path;
	job->e = list[i];
	job->start_ms = now;
	free(list);
	start_verify(x, d, now);
	return job_busy(x) ? PV_OK : pv_error_set(err, PV_ERR_IO, "%s", x->last_error);
}

/* ---------------------------------------------------------------- progress */

static void progress_result(BackupExt *x, PvDaemon *d, PGresult *res, int64_t now)
{
	Job *job = &x->job;
	if (!res || PQntuples(res) != 1)
		return;
	snprintf(job->pphase, sizeof job->pphase, "%s", PQgetvalue(res, 0, 0));
	job->total = PQgetisnull(res, 0, 1) ? -1 : atoll(PQgetvalue(res, 0, 1));
	job->done = PQgetisnull(res, 0, 2) ? 0 : atoll(PQgetvalue(res, 0, 2));
	if (job->done > 0 && !job->rate_t0_ms) {
		job->rate_t0_ms = now;
		job->rate_done0 = job->done;
	} else if (job->rate_t0_ms && now > job->rate_t0_ms + 200) {
		job->rate_bps = (job->done - job->rate_done0) * 1000 / (now - job->rate_t0_ms);
	}
	if (job->total > 0) {
		int quarter = (int)(job->done * 4 / job->total);
		if (quarter > 3)
			quarter = 3;
		if (quarter > job->milestone) {
			job->milestone = quarter;
			PvBuf b = {0};
			PvJson j;
			pv_json_init(&j, &b);
			pv_json_obj_open(&j, NULL);
			pv_json_str(&j, "label", job->e.label);
			pv_json_str(&j, "phase", job->pphase);
			pv_json_int(&j, "percent", quarter * 25);
			pv_json_int(&j, "bytes_done", job->done);
			pv_json_int(&j, "bytes_total", job->total);
			if (job->rate_bps >= 0)
				pv_json_int(&j, "rate_bps", job->rate_bps);
			pv_json_obj_close(&j);
			jevent(d, job->e.incident, EV(PV_EV_BACKUP_PROGRESS), job->e.node, NULL,
			       b.data);
			pv_buf_free(&b);
		}
		/* a disk that cannot hold the rest: stop now, with a clear reason */
		struct statvfs vfs;
		int64_t left = job->total - job->done;
		if (left > 0 && statvfs(job->dir, &vfs) == 0) {
			int64_t avail = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
			if (avail < left) {
				snprintf(job->abort_reason, sizeof job->abort_reason,
				         "not enough space in %s: %lld bytes free, about %lld more "
				         "to copy",
				         job->dir, (long long)avail, (long long)left);
			}
		}
	}
}

static void progress_start(BackupExt *x, int64_t now, int timeout_ms)
{
	Job *job = &x->job;
	PvBuf sql = {0};
	pv_buf_puts(&sql, "SELECT p.phase, p.backup_total, p.backup_streamed "
	                  "FROM pg_stat_progress_basebackup p JOIN pg_stat_activity a "
	                  "ON a.pid = p.pid WHERE a.application_name = ");
	pv_backup_conf_quote(&sql, job->app); /* a label holds no quote or backslash */
	pv_pgconn_start(job->pg, sql.data, now + timeout_ms, now);
	pv_buf_free(&sql);
	job->next_poll_ms = now + PROGRESS_EVERY_MS;
}

/* ---------------------------------------------------------------- restore points */

static void journal_skip(PvDaemon *d, const char *event, const char *node, const char *reason)
{
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "reason", reason);
	pv_json_obj_close(&j);
	jevent(d, d->incident, event, node, "skipped", b.data);
	pv_buf_free(&b);
}

static void restore_point(BackupExt *x, PvDaemon *d, int node, int64_t now)
{
	const PvConfig *cfg = d->cfg;
	char reason[256];
	if (!cfg->backup_restore_points) {
		journal_skip(d, EV(PV_EV_RESTORE_POINT), NULL, "backup.restore_points is off");
		return;
	}
	if (node < 0 || node >= d->view.nnodes) {
		journal_skip(d, EV(PV_EV_RESTORE_POINT), NULL, "no primary is known");
		return;
	}
	const PvNodeView *nv = &d->view.nodes[node];
	if (nv->obs.result != PV_PROBE_UP || nv->obs.in_recovery) {
		snprintf(reason, sizeof reason, "%s does not answer as a primary%s%s", nv->name,
		         nv->obs.reason[0] ? ": " : "", nv->obs.reason);
		journal_skip(d, EV(PV_EV_RESTORE_POINT), nv->name, reason);
		return;
	}
	char name[96];
	snprintf(name, sizeof name, "pgvigil-%s", d->incident);
	PvBuf b = {0}, sql = {0};
	PvJson j;
	PvJournalSpan span;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "name", name);
	pv_json_int(&j, "timeout_ms", cfg->probe_timeout_ms);
	pv_json_obj_close(&j);
	if (pv_journal_begin(d->journal, &span, d->incident, EV(PV_EV_RESTORE_POINT), nv->name,
	                     b.data, &err) != PV_OK) {
		pv_error("journal: %s (no restore point)", err.msg);
		pv_buf_free(&b);
		return;
	}
	pv_buf_puts(&sql, "SELECT s.lsn, pg_walfile_name(s.lsn - 1), pg_switch_wal(), "
	                  "current_setting('archive_mode') FROM (SELECT pg_create_restore_point(");
	pv_backup_conf_quote(&sql, name);
	pv_buf_puts(&sql, ") AS lsn) s");
	PGresult *res = NULL;
	PvStatus st = pv_pg_exec_once(cfg->nodes[node].conninfo, PV_PGC_KIND_POSTGRES, sql.data,
	                              cfg->probe_timeout_ms, &res, &err);
	if (st == PV_OK && PQntuples(res) != 1)
		st = pv_error_set(&err, PV_ERR_PROTOCOL,
		                  "pg_create_restore_point() returned no row");
	pv_buf_reset(&b);
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "name", name);
	char wal[32] = "";
	if (st == PV_OK) {
		snprintf(wal, sizeof wal, "%s", PQgetvalue(res, 0, 1));
		char tl[9] = "";
		memcpy(tl, wal, strlen(wal) >= 8 ? 8 : 0);
		pv_json_str(&j, "lsn", PQgetvalue(res, 0, 0));
		pv_json_str(&j, "wal_file", wal);
		pv_json_int(&j, "timeline", strtol(tl, NULL, 16));
		pv_json_str(&j, "switch_lsn", PQgetvalue(res, 0, 2));
		pv_json_str(&j, "archive_mode", PQgetvalue(res, 0, 3));
		pv_info("restore point %s at %s on %s (WAL %s)", name, PQgetvalue(res, 0, 0),
		        nv->name, wal);
	} else {
		pv_json_str(&j, "error", err.msg);
		pv_error("restore point %s on %s failed: %s", name, nv->name, err.msg);
	}
	pv_json_obj_close(&j);
	jend(d, &span, st == PV_OK ? "ok" : st == PV_ERR_TIMEOUT ? "timeout" : "failed", b.data);
	if (st == PV_OK && cfg->backup_archive_dir && *cfg->backup_archive_dir &&
	    strcmp(PQgetvalue(res, 0, 3), "off") != 0 && strlen(wal) == 24) {
		x->arch_wait = true;
		snprintf(x->arch_path, sizeof x->arch_path, "%s/%s", cfg->backup_archive_dir, wal);
		snprintf(x->arch_wal, sizeof x->arch_wal, "%s", wal);
		snprintf(x->arch_name, sizeof x->arch_name, "%s", name);
		snprintf(x->arch_incident, sizeof x->arch_incident, "%s", d->incident);
		snprintf(x->arch_node, sizeof x->arch_node, "%s", nv->name);
		x->arch_start_ms = now;
		x->arch_deadline_ms = now + ARCHIVE_WAIT_MS;
		x->arch_next_ms = now;
	}
	if (res)
		PQclear(res);
	pv_buf_free(&b);
	pv_buf_free(&sql);
}

static void archive_check(BackupExt *x, PvDaemon *d, int64_t now)
{
	if (!x->arch_wait || now < x->arch_next_ms)
		return;
	struct stat st;
	bool there = stat(x->arch_path, &st) == 0 && st.st_size > 0;
	if (!there && now < x->arch_deadline_ms) {
		x->arch_next_ms = now + ARCHIVE_CHECK_MS;
		return;
	}
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "name", x->arch_name);
	pv_json_str(&j, "wal_file", x->arch_wal);
	pv_json_str(&j, "archive_dir", d->cfg->backup_archive_dir);
	pv_json_int(&j, "waited_ms", now - x->arch_start_ms);
	pv_json_obj_close(&j);
	jevent(d, x->arch_incident, EV(PV_EV_RESTORE_POINT_ARCHIVED), x->arch_node,
	       there ? "ok" : "timeout", b.data);
	pv_buf_free(&b);
	if (!there)
		pv_error(
		    "restore point %s: WAL segment %s not in %s after %d s: check archive_command",
		    x->arch_name, x->arch_wal, d->cfg->backup_archive_dir, ARCHIVE_WAIT_MS / 1000);
	x->arch_wait = false;
}

/* ---------------------------------------------------------------- schedule */

static void schedule(BackupExt *x, PvDaemon *d, int64_t now)
{
	x->due_ms = 0;
	if (d->cfg->backup_interval_s <= 0)
		return;
	int64_t interval_ms = (int64_t)d->cfg->backup_interval_s * 1000;
	int64_t due = now + interval_ms;
	char *dir = pv_backup_directory(d->cfg);
	PvBackupEntry *list = NULL;
	size_t n = 0;
	PvError err;
	if (pv_backup_catalog_list(dir, &list, &n, &err) == PV_OK && n > 0 &&
	    list[n - 1].start_wall_us > 0) {
		int64_t age_ms = (pv_clock_wall_us() - list[n - 1].start_wall_us) / 1000;
		due = now + (age_ms >= interval_ms ? 0 : interval_ms - age_ms);
	}
	free(list);
	free(dir);
	x->due_ms = due > 0 ? due : 1;
}

/* ---------------------------------------------------------------- the extension */

static void *ext_create(PvDaemon *d)
{
	BackupExt *x = pv_xcalloc(1, sizeof *x);
	x->d = d;
	x->fd_pg = -1;
	job_clear(&x->job);
	int64_t now = pv_clock_mono_ms();
	schedule(x, d, now);
	/* removals a stopped daemon left unfinished */
	char *dir = pv_backup_directory(d->cfg);
	DIR *dh = opendir(dir);
	if (dh) {
		for (struct dirent *de; (de = readdir(dh)) != NULL;) {
			size_t n = strlen(de->d_name);
			if (n > 9 && strcmp(de->d_name + n - 9, ".deleting") == 0) {
				x->rm_queue =
				    pv_xrealloc(x->rm_queue, (x->rm_n + 1) * sizeof *x->rm_queue);
				x->rm_queue[x->rm_n++] = pv_xasprintf("%s/%s", dir, de->d_name);
			}
		}
		closedir(dh);
	}
	free(dir);
	rm_next(x, now);
	return x;
}

static void ext_destroy(void *self)
{
	BackupExt *x = self;
	Job *job = &x->job;
	int64_t now = pv_clock_mono_ms();
	if (job->phase != JOB_IDLE) {
		/* stopped with the daemon: its end record says so; the directory goes next start */
		pv_proc_free(job->proc);
		job->proc = NULL;
		const char *why = "the daemon stopped";
		if (job->vspan_open) {
			PvBuf b = {0};
			PvJson j;
			pv_json_init(&j, &b);
			pv_json_obj_open(&j, NULL);
			pv_json_str(&j, "label", job->e.label);
			pv_json_str(&j, "error", why);
			pv_json_obj_close(&j);
			jend(x->d, &job->vspan, "failed", b.data);
			pv_buf_free(&b);
		}
		if (!job->verify_only) {
			struct stat st;
			if (job->path && lstat(job->path, &st) == 0) {
				char *dst = pv_xasprintf("%s/%s.deleting", job->dir, job->e.label);
				if (rename(job->path, dst) != 0)
					pv_warn("%s: %s", job->path, strerror(errno));
				free(dst);
			}
			job->e.status = PV_BACKUP_FAILED;
			backup_end(x, x->d, "failed", job->phase == JOB_COPY ? "copy" : "verify",
			           why, now);
		}
	}
	job_clear(job);
	pv_proc_free(x->rm);
	for (size_t i = 0; i < x->rm_n; i++)
		free(x->rm_queue[i]);
	free(x->rm_queue);
	free(x);
}

static int ext_pollfds(void *self, struct pollfd *fds, int max)
{
	BackupExt *x = self;
	int n = 0;
	if (x->job.proc)
		n += pv_proc_pollfds(x->job.proc, fds + n, max - n);
	if (x->rm && n < max)
		n += pv_proc_pollfds(x->rm, fds + n, max - n);
	x->fd_pg = -1;
	short events = 0;
	int fd = x->job.pg && n < max ? pv_pgconn_pollfd(x->job.pg, &events) : -1;
	if (fd >= 0) {
		fds[n] = (struct pollfd){.fd = fd, .events = events};
		x->fd_pg = n++;
	}
	return n;
}

static int64_t min_pos(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int ext_timeout(void *self, int64_t now)
{
	BackupExt *x = self;
	Job *job = &x->job;
	int64_t t = -1;
	if (job->proc)
		t = min_pos(t, pv_proc_timeout(job->proc, now));
	if (x->rm)
		t = min_pos(t, pv_proc_timeout(x->rm, now));
	if (job->pg) {
		int64_t at =
		    pv_pgconn_busy(job->pg) ? pv_pgconn_deadline(job->pg) : job->next_poll_ms;
		t = min_pos(t, at > now ? at - now : 0);
	}
	if (x->due_ms)
		t = min_pos(t, x->due_ms > now ? x->due_ms - now : 0);
	if (x->arch_wait)
		t = min_pos(t, x->arch_next_ms > now ? x->arch_next_ms - now : 0);
	if (!job_busy(x) && (x->pend_promotion || x->pend_schedule))
		t = 0;
	return t > 60000 ? 60000 : (int)t;
}

/* A backup that could not start and left no record of its own. */
static void journal_not_started(PvDaemon *d, const char *trigger, const PvError *err)
{
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "trigger", trigger);
	pv_json_str(&j, "reason", err->msg);
	pv_json_obj_close(&j);
	bool skipped = err->code == PV_ERR_STATE || err->code == PV_ERR_BUSY;
	jevent(d, d->incident, EV(PV_EV_BACKUP), NULL, skipped ? "skipped" : "failed", b.data);
	pv_buf_free(&b);
	pv_warn("%s backup not taken: %s", trigger, err->msg);
}

static void start_pending(BackupExt *x, PvDaemon *d, int64_t now)
{
	PvError err;
	bool recorded;
	if (x->pend_promotion) {
		x->pend_promotion = false;
		int node = x->pend_node;
		if (node >= 0 && node < d->view.nnodes && node != d->view.primary)
			node = -1;
		if (start_backup(x, d, "promotion", node, x->pend_incident, now, NULL, 0, &recorded,
		                 &err) != PV_OK &&
		    !recorded)
			journal_not_started(d, "promotion", &err);
		return;
	}
	if (x->pend_schedule) {
		x->pend_schedule = false;
		if (start_backup(x, d, "schedule", -1, d->incident, now, NULL, 0, &recorded,
		                 &err) == PV_OK)
			return;
		if (!recorded)
			journal_not_started(d, "schedule", &err);
		if (d->cfg->backup_interval_s > 0)
			x->due_ms = now + (int64_t)d->cfg->backup_interval_s * 1000;
	}
}

static void ext_step(void *self, PvDaemon *d, const struct pollfd *fds, int nfds, int64_t now)
{
	BackupExt *x = self;
	Job *job = &x->job;

	if (job->pg) {
		short rev = (x->fd_pg >= 0 && x->fd_pg < nfds) ? fds[x->fd_pg].revents : 0;
		bool busy = pv_pgconn_busy(job->pg);
		if (busy || rev) {
			PvPgcEvent ev = pv_pgconn_step(job->pg, rev, now);
			if (ev == PV_PGC_DONE) {
				PGresult *res = pv_pgconn_take_result(job->pg);
				progress_result(x, d, res, now);
				if (res)
					PQclear(res);
			} else if (ev == PV_PGC_FAILED) {
				pv_debug("backup progress query: %s", pv_pgconn_error(job->pg));
			}
		}
	}
	if (job->proc && job->abort_reason[0] && job->phase == JOB_COPY) {
		char reason[sizeof job->abort_reason];
		snprintf(reason, sizeof reason, "%s", job->abort_reason);
		copy_failed(x, d, "failed", "space", reason, now);
	}
	if (job->proc && pv_proc_step(job->proc, now)) {
		if (job->phase == JOB_COPY)
			copy_done(x, d, now);
		else
			verify_done(x, d, now);
	}
	if (job->phase == JOB_COPY && job->pg && !pv_pgconn_busy(job->pg) &&
	    now >= job->next_poll_ms)
		progress_start(x, now, d->cfg->probe_timeout_ms);

	if (x->rm && pv_proc_step(x->rm, now)) {
		if (pv_proc_exit_status(x->rm) != 0) {
			char how[64];
			pv_proc_describe(x->rm, how, sizeof how);
			pv_warn("removing an old backup: rm %s", how);
		}
		pv_proc_free(x->rm);
		x->rm = NULL;
		rm_next(x, now);
	}
	archive_check(x, d, now);

	if (x->due_ms && now >= x->due_ms) {
		x->due_ms = 0;
		x->pend_schedule = true;
	}
	if (!job_busy(x))
		start_pending(x, d, now);
}

static void ext_on_event(void *self, PvDaemon *d, PvDaemonEvent ev, int node)
{
	BackupExt *x = self;
	Job *job = &x->job;
	int64_t now = pv_clock_mono_ms();
	switch (ev) {
	case PV_DEV_INCIDENT_OPEN:
		restore_point(x, d, node, now);
		break;
	case PV_DEV_PROMOTED:
		if (!d->cfg->backup_on_promotion)
			break;
		x->pend_promotion = true;
		x->pend_node = node;
		snprintf(x->pend_incident, sizeof x->pend_incident, "%s", d->incident);
		/* a copy still reading from another node (the old primary) is stopped */
		if (job->phase == JOB_COPY && node >= 0 && node < d->view.nnodes &&
		    strcmp(job->e.node, d->view.nodes[node].name) != 0) {
			char why[160];
			snprintf(why, sizeof why,
			         "stopped: %s was promoted, the source is no longer the primary",
			         d->view.nodes[node].name);
			copy_failed(x, d, "failed", "promotion", why, now);
		}
		if (!job_busy(x))
			start_pending(x, d, now);
		break;
	case PV_DEV_RELOADED:
		schedule(x, d, now);
		break;
	default:
		break;
	}
}

/* ---------------------------------------------------------------- control verbs */

static void respond_error(PvCtlRequest *req, const char *msg)
{
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_bool(&j, "ok", false);
	pv_json_str(&j, "error", msg);
	pv_json_obj_close(&j);
	pv_ctl_respond(req, b.data);
	pv_buf_free(&b);
}

static void respond_label(PvCtlRequest *req, const char *label)
{
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_bool(&j, "ok", true);
	pv_json_str(&j, "label", label);
	pv_json_obj_close(&j);
	pv_ctl_respond(req, b.data);
	pv_buf_free(&b);
}

static void status_json(BackupExt *x, PvDaemon *d, PvJson *j, int64_t now)
{
	Job *job = &x->job;
	pv_json_bool(j, "ok", true);
	char *dir = pv_backup_directory(d->cfg);
	pv_json_str(j, "directory", dir);
	free(dir);
	if (job_busy(x)) {
		pv_json_obj_open(j, "running");
		pv_json_str(j, "label", job->e.label);
		pv_json_str(j, "kind", job->verify_only ? "verify" : "backup");
		pv_json_str(j, "trigger", job->verify_only ? "manual" : job->e.trigger);
		pv_json_str(j, "node", job->e.node[0] ? job->e.node : NULL);
		pv_json_str(j, "phase", job->pphase);
		pv_json_int(j, "elapsed_ms", now - job->start_ms);
		if (job->phase == JOB_COPY && job->method == PV_BACKUP_PG_BASEBACKUP) {
			pv_json_int(j, "bytes_done", job->done);
			if (job->total >= 0)
				pv_json_int(j, "bytes_total", job->total);
			else
				pv_json_null(j, "bytes_total");
			if (job->rate_bps > 0) {
				pv_json_int(j, "rate_bps", job->rate_bps);
				if (job->total > job->done)
					pv_json_int(j, "eta_s",
					            (job->total - job->done) / job->rate_bps);
				else
					pv_json_int(j, "eta_s", 0);
			} else {
				pv_json_null(j, "rate_bps");
				pv_json_null(j, "eta_s");
			}
		}
		pv_json_obj_close(j);
	} else {
		pv_json_null(j, "running");
	}
	if (x->have_last) {
		pv_json_obj_open(j, "last");
		pv_json_str(j, "label", x->last_label);
		pv_json_str(j, "kind", x->last_kind);
		pv_json_str(j, "outcome", x->last_outcome);
		pv_json_str(j, "error", x->last_error[0] ? x->last_error : NULL);
		if (x->last_size >= 0)
			pv_json_int(j, "size_bytes", x->last_size);
		pv_json_int(j, "duration_ms", x->last_duration_ms);
		pv_json_obj_close(j);
	} else {
		pv_json_null(j, "last");
	}
	pv_json_arr_open(j, "pending");
	if (x->pend_promotion)
		pv_json_str(j, NULL, "promotion");
	if (x->pend_schedule)
		pv_json_str(j, NULL, "schedule");
	pv_json_arr_close(j);
	if (x->due_ms)
		pv_json_int(j, "next_scheduled_s", x->due_ms > now ? (x->due_ms - now) / 1000 : 0);
	else
		pv_json_null(j, "next_scheduled_s");
}

static bool ext_control(void *self, PvDaemon *d, const char *cmd, json_t *rq, PvCtlRequest *req)
{
	BackupExt *x = self;
	int64_t now = pv_clock_mono_ms();
	PvError err;
	if (strcmp(cmd, "backup-start") == 0) {
		char label[PV_BACKUP_LABEL_MAX];
		bool recorded;
		if (start_backup(x, d, "manual", -1, d->incident, now, label, sizeof label,
		                 &recorded, &err) == PV_OK)
			respond_label(req, label);
		else
			respond_error(req, err.msg);
		return true;
	}
	if (strcmp(cmd, "backup-verify") == 0) {
		const char *label = json_string_value(json_object_get(rq, "label"));
		if (!label || !*label)
			respond_error(req, "a label is required");
		else if (start_verify_only(x, d, label, now, &err) == PV_OK)
			respond_label(req, label);
		else
			respond_error(req, err.msg);
		return true;
	}
	if (strcmp(cmd, "backup-status") == 0) {
		PvBuf b = {0};
		PvJson j;
		pv_json_init(&j, &b);
		pv_json_obj_open(&j, NULL);
		status_json(x, d, &j, now);
		pv_json_obj_close(&j);
		pv_ctl_respond(req, b.data);
		pv_buf_free(&b);
		return true;
	}
	return false;
}

const PvExtension pv_backup_extension = {
    .name = "backup",
    .create = ext_create,
    .destroy = ext_destroy,
    .pollfds = ext_pollfds,
    .timeout = ext_timeout,
    .step = ext_step,
    .on_event = ext_on_event,
    .control = ext_control,
};
