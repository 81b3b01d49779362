/*
 * backup_job: one backup or verification of pgvigild's backup component, in child processes
 * (pg_basebackup or backup.command, then pg_verifybackup), with its progress from
 * pg_stat_progress_basebackup and its catalog record; a good one is followed by retention
 * (backup_retention.c).  See backup_ext.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "act/backup.h"
#include "act/backup_int.h"
#include "common/clock.h"
#include "common/fileio.h"
#include "common/json.h"
#include "core/cluster.h"
#include "common/log.h"
#include "io/pgcmd.h"

#define PROGRESS_EVERY_MS 1000

/* ---------------------------------------------------------------- journal helpers */

void pv_backup_jevent(PvDaemon *d, const char *incident, const char *event, const char *node,
                      const char *outcome, const char *detail)
{
	pv_daemon_journal_event_in(d, incident, event, node, outcome, detail);
}

void pv_backup_jend(PvDaemon *d, const PvJournalSpan *span, const char *outcome, const char *detail)
{
	PvError err;
	if (pv_journal_end(d->journal, span, outcome, detail, &err) != PV_OK)
		pv_error("journal: %s", err.msg);
}

/* The last lines of text, on one line, for an error message. */
static void text_tail(const char *s, size_t n, char *out, size_t size)
{
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

/* ---------------------------------------------------------------- the job's program */

/* A program of the job runs: a child here, or a command on backup.host. */
static bool cmd_running(const Job *job)
{
	return job->proc || job->hcmd;
}

static bool cmd_step(Job *job, int64_t now)
{
	if (job->proc)
		return pv_proc_step(job->proc, now);
	return job->hcmd && pv_hostcmd_step(job->hcmd, now);
}

static bool cmd_timed_out(const Job *job)
{
	return job->proc ? pv_proc_timed_out(job->proc)
	                 : job->hcmd && pv_hostcmd_timed_out(job->hcmd);
}

static bool cmd_ok(const Job *job)
{
	if (job->proc)
		return pv_proc_exit_status(job->proc) == 0 && !pv_proc_timed_out(job->proc);
	return job->hcmd && pv_hostcmd_ok(job->hcmd);
}

static void cmd_describe(const Job *job, char *out, size_t size)
{
	if (job->proc)
		pv_proc_describe(job->proc, out, size);
	else if (job->hcmd)
		pv_hostcmd_describe(job->hcmd, out, size);
	else
		snprintf(out, size, "not running");
}

/* The last lines of its stderr (or stdout). */
static void cmd_tail(const Job *job, char *out, size_t size)
{
	const char *s = "";
	if (job->proc) {
		const PvBuf *b = pv_proc_stderr(job->proc);
		if (!b->len)
			b = pv_proc_stdout(job->proc);
		s = b->data ? b->data : "";
	} else if (job->hcmd) {
		s = pv_hostcmd_stderr(job->hcmd);
		if (!*s)
			s = pv_hostcmd_stdout(job->hcmd);
	}
	text_tail(s, strlen(s), out, size);
}

void pv_backup_job_stop_program(Job *job)
{
	pv_proc_free(job->proc);
	job->proc = NULL;
	if (job->hcmd) {
		char why[300];
		if (!pv_hostcmd_stop(job->hcmd, why, sizeof why))
			pv_warn("backup %s: %s", job->e.label, why);
		pv_hostcmd_free(job->hcmd);
		job->hcmd = NULL;
	}
}

/* Starts argv: here as a child, or detached on backup.host. */
static PvStatus cmd_start(Job *job, const char *const *argv, const char *const *env, int timeout_ms,
                          int64_t now, PvError *err)
{
	if (!job->remote) {
		PvProcSpec spec = {.argv = argv, .env = env, .timeout_ms = timeout_ms};
		return pv_proc_start(&spec, now, &job->proc, err);
	}
	PvHost h = {
	    .remote = true,
	    .ssh = job->ssh,
	    .ssh_timeout_ms = job->ssh_timeout_ms,
	    .tag = "pgvigil-backup",
	};
	return pv_hostcmd_start(&h, argv, NULL, timeout_ms, now, &job->hcmd, err);
}

/* "PG_BIN/name" on backup.host (the node's pg_bin), or the program found here. */
static PvStatus job_program(const Job *job, const PvConfig *cfg, const char *name, char *out,
                            size_t size, PvError *err)
{
	if (!job->remote)
		return pv_backup_program(cfg->backup_pg_bin_dir, name, out, size, err);
	if (job->pg_bin && *job->pg_bin)
		snprintf(out, size, "%s/%s", job->pg_bin, name);
	else
		snprintf(out, size, "%s", name);
	return PV_OK;
}

/* ---------------------------------------------------------------- job lifecycle */

void pv_backup_job_clear(Job *job)
{
	pv_proc_free(job->proc);
	pv_hostcmd_free(job->hcmd);
	pv_ssh_free(job->ssh);
	pv_pgconn_free(job->pg);
	free(job->dir);
	free(job->path);
	free(job->pg_bin);
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

void pv_backup_job_end(BackupExt *x, PvDaemon *d, const char *outcome, const char *step,
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
	pv_json_lsn(&j, "start_lsn", e->start_lsn);
	pv_json_lsn(&j, "stop_lsn", e->stop_lsn);
	if (e->timeline)
		pv_json_int(&j, "timeline", e->timeline);
	if (step)
		pv_json_str(&j, "failed_step", step);
	if (error)
		pv_json_str(&j, "error", error);
	pv_json_obj_close(&j);
	pv_backup_jend(d, &job->span, outcome, b.data);
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
	pv_backup_job_clear(job);
	if (good)
		pv_backup_retention_run(x, d, dir, incident, now);
	free(dir);
}

void pv_backup_copy_failed(BackupExt *x, PvDaemon *d, const char *outcome, const char *step,
                           const char *error, int64_t now)
{
	Job *job = &x->job;
	struct stat st;
	/* the writer goes first, so nothing writes into what is being removed */
	pv_backup_job_stop_program(job);
	if (job->remote) {
		PvError err;
		if (pv_backup_remote_remove(job->ssh, job->dir, job->e.label, ".partial", false,
		                            job->ssh_timeout_ms, &err) != PV_OK)
			pv_error("backup %s: its partial copy stays: %s", job->e.label, err.msg);
	} else if (job->path && lstat(job->path, &st) == 0) {
		PvError err;
		if (pv_backup_remove_later(x, job->dir, job->e.label, job->path, now, &err) !=
		    PV_OK)
			pv_error("%s", err.msg);
	}
	job->e.status = PV_BACKUP_FAILED;
	pv_backup_job_end(x, d, outcome, step, error, now);
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
		st = job_program(job, d->cfg, "pg_verifybackup", prog, sizeof prog, &err);
	}
	if (st == PV_OK) {
		const char *argv[] = {prog, job->path, NULL};
		st = cmd_start(job, argv, NULL, d->cfg->backup_timeout_s * 1000, now, &err);
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
		pv_backup_jend(d, &job->vspan, "failed", b.data);
		pv_buf_free(&b);
	}
	if (job->verify_only) {
		remember(x, "verify", "failed", err.msg);
		pv_backup_job_clear(job);
		return;
	}
	job->e.verify_ms = -1;
	pv_backup_copy_failed(x, d, "failed", "verify", err.msg, now);
}

/* Reads backup_label and backup_manifest of the finished (local) copy into the entry. */
static void read_backup_facts(Job *job)
{
	char *lpath = pv_xasprintf("%s/backup_label", job->path);
	char *mpath = pv_xasprintf("%s/backup_manifest", job->path);
	char *label = NULL, *manifest = NULL;
	if (pv_file_read_all(lpath, &label, NULL, NULL) != PV_OK)
		label = NULL;
	if (pv_file_read_all(mpath, &manifest, NULL, NULL) != PV_OK)
		manifest = NULL;
	pv_backup_entry_facts(&job->e, label, manifest);
	free(label);
	free(manifest);
	free(lpath);
	free(mpath);
}

/*
 * On backup.host: LABEL.partial renamed to LABEL (or LABEL.failed after a failed verification)
 * and measured there, by a command of its own (du takes its time on a big backup).
 */
static void start_finish(BackupExt *x, PvDaemon *d, bool failed, int64_t now)
{
	Job *job = &x->job;
	const char *av[8];
	PvError err;
	pv_backup_remote_finish_argv(job->dir, job->e.label, failed ? ".failed" : "", av);
	job->phase = JOB_FINISH;
	job->finish_failed = failed;
	snprintf(job->pphase, sizeof job->pphase, "finishing");
	if (cmd_start(job, av, NULL, d->cfg->backup_timeout_s * 1000, now, &err) == PV_OK)
		return;
	if (failed) {
		job->e.status = PV_BACKUP_FAILED;
		pv_backup_job_end(x, d, "failed", "verify", job->e.error, now);
	} else {
		pv_backup_copy_failed(x, d, "failed", "rename", err.msg, now);
	}
}

static void finish_done(BackupExt *x, PvDaemon *d, int64_t now)
{
	Job *job = &x->job;
	PvBackupEntry *e = &job->e;
	PvError err;
	bool ok =
	    cmd_ok(job) && job->hcmd && pv_backup_finish_parse(pv_hostcmd_stdout(job->hcmd), e);
	char msg[600] = "";
	if (!ok) {
		char how[128], tail[400];
		cmd_describe(job, how, sizeof how);
		cmd_tail(job, tail, sizeof tail);
		snprintf(msg, sizeof msg, "renaming %s.partial on %s: %s%s%s", e->label,
		         d->cfg->backup_host, how, tail[0] ? ": " : "", tail);
	}
	pv_backup_job_stop_program(job);
	e->duration_ms = now - job->start_ms;
	if (job->finish_failed) {
		/* the verification failed: catalogued as failed, kept (as LABEL.failed if renamed)
		 */
		char verr[sizeof e->error];
		snprintf(verr, sizeof verr, "%s", e->error);
		e->status = PV_BACKUP_FAILED;
		if (!ok) {
			pv_error("backup %s: %s", e->label, msg);
			e->size_bytes = -1;
		}
		if (pv_backup_remote_catalog_write(job->ssh, job->dir, e, job->ssh_timeout_ms,
		                                   &err) != PV_OK)
			pv_error("backup %s: %s", e->label, err.msg);
		pv_backup_job_end(x, d, "failed", "verify", verr, now);
		return;
	}
	if (!ok) {
		pv_backup_copy_failed(x, d, "failed", "rename", msg, now);
		return;
	}
	free(job->path);
	job->path = pv_xasprintf("%s/%s", job->dir, e->label);
	e->status = PV_BACKUP_VERIFIED;
	pv_clock_format_utc(pv_clock_wall_us(), e->stop_ts, sizeof e->stop_ts);
	if (pv_backup_remote_catalog_write(job->ssh, job->dir, e, job->ssh_timeout_ms, &err) !=
	    PV_OK) {
		/* the directory stays, listed as incomplete; retention removes it later */
		e->status = PV_BACKUP_INCOMPLETE;
		pv_backup_job_end(x, d, "failed", "catalog", err.msg, now);
		return;
	}
	pv_backup_job_end(x, d, "ok", NULL, NULL, now);
}

/* The copy is good (verified or, for a command backup, unverifiable): name it, catalog it. */
static void finalize(BackupExt *x, PvDaemon *d, PvBackupStatus status, int64_t now)
{
	Job *job = &x->job;
	PvBackupEntry *e = &job->e;
	PvError err;
	if (job->remote) {
		start_finish(x, d, false, now);
		return;
	}
	read_backup_facts(job);
	char *final = pv_xasprintf("%s/%s", job->dir, e->label);
	if (rename(job->path, final) != 0) {
		char msg[600];
		snprintf(msg, sizeof msg, "%s: cannot rename to %s: %s", job->path, final,
		         strerror(errno));
		free(final);
		pv_backup_copy_failed(x, d, "failed", "rename", msg, now);
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
		pv_backup_job_end(x, d, "failed", "catalog", err.msg, now);
		return;
	}
	pv_backup_job_end(x, d, "ok", NULL, NULL, now);
}

static void verify_done(BackupExt *x, PvDaemon *d, int64_t now)
{
	Job *job = &x->job;
	bool ok = cmd_ok(job);
	bool timed_out = cmd_timed_out(job);
	char error[sizeof job->e.error] = "";
	if (!ok) {
		char how[128], tail[360];
		cmd_describe(job, how, sizeof how);
		cmd_tail(job, tail, sizeof tail);
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
	pv_backup_jend(d, &job->vspan, ok ? "ok" : (timed_out ? "timeout" : "failed"), b.data);
	pv_buf_free(&b);
	job->vspan_open = false;
	pv_backup_job_stop_program(job);

	if (job->verify_only) {
		PvError err;
		job->e.status = ok ? PV_BACKUP_VERIFIED : PV_BACKUP_FAILED;
		snprintf(job->e.error, sizeof job->e.error, "%s", error);
		if ((job->remote ? pv_backup_remote_catalog_write(job->ssh, job->dir, &job->e,
		                                                  job->ssh_timeout_ms, &err)
		                 : pv_backup_catalog_write(job->dir, &job->e, &err)) != PV_OK)
			pv_error("backup %s: %s", job->e.label, err.msg);
		if (ok)
			pv_info("backup %s verified", job->e.label);
		else
			pv_error("backup %s failed verification: %s", job->e.label, error);
		remember(x, "verify", ok ? "ok" : "failed", ok ? NULL : error);
		pv_backup_job_clear(job);
		return;
	}
	if (ok) {
		finalize(x, d, PV_BACKUP_VERIFIED, now);
		return;
	}
	/* kept for inspection as LABEL.failed, catalogued as failed; nothing good is touched */
	if (job->remote) {
		snprintf(job->e.error, sizeof job->e.error, "%s", error);
		start_finish(x, d, true, now);
		return;
	}
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
	pv_backup_job_end(x, d, "failed", "verify", error, now);
}

static void copy_done(BackupExt *x, PvDaemon *d, int64_t now)
{
	Job *job = &x->job;
	job->copy_end_ms = now;
	job->e.copy_ms = now - job->start_ms;
	bool timed_out = cmd_timed_out(job);
	bool ok = cmd_ok(job);
	const char *step = job->method == PV_BACKUP_COMMAND ? "command" : "pg_basebackup";
	if (!ok) {
		char how[128], tail[400], error[600];
		cmd_describe(job, how, sizeof how);
		cmd_tail(job, tail, sizeof tail);
		snprintf(error, sizeof error, "%s: %s%s%s", step, how, tail[0] ? ": " : "", tail);
		pv_backup_copy_failed(x, d, timed_out ? "timeout" : "failed", step, error, now);
		return;
	}
	pv_backup_job_stop_program(job);
	pv_pgconn_free(job->pg);
	job->pg = NULL;
	char *manifest = pv_xasprintf("%s/backup_manifest", job->path);
	bool verifiable =
	    job->method == PV_BACKUP_PG_BASEBACKUP || job->remote || access(manifest, F_OK) == 0;
	free(manifest);
	if (verifiable)
		start_verify(x, d, now);
	else
		finalize(x, d, PV_BACKUP_UNVERIFIED, now);
}

/* ---------------------------------------------------------------- starting a backup */

bool pv_backup_job_busy(const BackupExt *x)
{
	return x->job.phase != JOB_IDLE;
}

PvStatus pv_backup_job_start(BackupExt *x, PvDaemon *d, const char *trigger, int node,
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
	if (pv_backup_job_busy(x))
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

	pv_backup_job_clear(job);
	job->dir = pv_backup_directory(cfg);
	int64_t wall = pv_clock_wall_us();
	int bhost = pv_backup_host_node(cfg);
	PvError prep_err;
	PvStatus prep = PV_OK;
	if (bhost >= 0) {
		/* the directory and the label on backup.host; a failure is journaled below */
		job->remote = true;
		job->ssh = pv_backup_ssh_new(cfg);
		job->ssh_timeout_ms = cfg->nodes[bhost].ssh.timeout_ms;
		job->pg_bin = pv_xstrdup(cfg->nodes[bhost].pg_bin ? cfg->nodes[bhost].pg_bin : "");
		char base[32];
		time_t sec = (time_t)(wall / 1000000);
		struct tm tm;
		gmtime_r(&sec, &tm);
		strftime(base, sizeof base, "%Y%m%dT%H%M%SZ", &tm);
		prep =
		    pv_backup_remote_prepare(job->ssh, job->dir, base, job->e.label,
		                             sizeof job->e.label, job->ssh_timeout_ms, &prep_err);
		if (prep != PV_OK)
			snprintf(job->e.label, sizeof job->e.label, "%s", base);
	} else {
		st = pv_backup_mkdirs(job->dir, err);
		if (st != PV_OK)
			goto fail;
		pv_backup_new_label(job->dir, wall, job->e.label, sizeof job->e.label);
	}
	job->path = pv_xasprintf("%s/%s.partial", job->dir, job->e.label);
	job->method = cfg->backup_method;
	snprintf(app, sizeof app, "pgvigil-backup-%s", job->e.label);
	st = pv_pg_conninfo_target(nc->conninfo, host, sizeof host, &port, err);
	if (st == PV_OK)
		st = pv_pgcmd_conninfo(nc->conninfo, app, &ci, &pw, err);
	if (st != PV_OK)
		goto fail;
	if (job->method == PV_BACKUP_PG_BASEBACKUP) {
		st = job_program(job, cfg, "pg_basebackup", prog, sizeof prog, err);
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
	if (job->remote) {
		pv_json_str(&j, "host", cfg->backup_host);
		if (pw)
			pv_json_str(&j, "password",
			            "left out: ~/.pgpass of the ssh user on the host");
	}
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
	if (prep != PV_OK) {
		/* backup.host could not be reached, or its directory is not usable: nothing ran */
		job->e.status = PV_BACKUP_FAILED;
		job->phase = JOB_COPY;
		job->start_ms = now;
		pv_error_set(err, prep_err.code, "%s", prep_err.msg);
		pv_backup_job_end(x, d, "failed", "prepare", prep_err.msg, now);
		st = PV_ERR_IO;
		goto out;
	}

	/* over ssh the password stays here: the host's ~/.pgpass has it (no PGPASSWORD there) */
	pwenv = pw && !job->remote ? pv_xasprintf("PGPASSWORD=%s", pw) : NULL;
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
		st = cmd_start(job, argv, spec.env, spec.timeout_ms, now, err);
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
		pv_backup_copy_failed(x, d, "failed", "start", err->msg, now);
		st = PV_ERR_IO;
		goto out;
	}
	pv_info("backup %s of %s started (%s, %s)", job->e.label, nc->name, trigger, job->e.method);
	if (label_out)
		snprintf(label_out, label_size, "%s", job->e.label);
	goto out;
fail:
	pv_backup_job_clear(job);
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

PvStatus pv_backup_verify_start(BackupExt *x, PvDaemon *d, const char *label, int64_t now,
                                PvError *err)
{
	Job *job = &x->job;
	if (pv_backup_job_busy(x))
		return pv_error_set(err, PV_ERR_BUSY, "a %s is already running: %s",
		                    job->verify_only ? "verification" : "backup", job->e.label);
	char *dir = pv_backup_directory(d->cfg);
	PvBackupEntry *list = NULL;
	size_t n = 0;
	PvStatus st = pv_backup_list(d->cfg, &list, &n, err);
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
	pv_backup_job_clear(job);
	job->verify_only = true;
	job->dir = dir;
	job->path = path;
	job->e = list[i];
	int host = pv_backup_host_node(d->cfg);
	if (host >= 0) {
		job->remote = true;
		job->ssh = pv_backup_ssh_new(d->cfg);
		job->ssh_timeout_ms = d->cfg->nodes[host].ssh.timeout_ms;
		job->pg_bin =
		    pv_xstrdup(d->cfg->nodes[host].pg_bin ? d->cfg->nodes[host].pg_bin : "");
	}
	job->start_ms = now;
	free(list);
	start_verify(x, d, now);
	return pv_backup_job_busy(x) ? PV_OK : pv_error_set(err, PV_ERR_IO, "%s", x->last_error);
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
	/* the rate since the first sample that saw bytes; until there are two, since the start */
	if (job->done > 0 && !job->rate_t0_ms) {
		job->rate_t0_ms = now;
		job->rate_done0 = job->done;
		if (now > job->start_ms)
			job->rate_bps = job->done * 1000 / (now - job->start_ms);
	} else if (job->rate_t0_ms && now > job->rate_t0_ms + 200 && job->done > job->rate_done0) {
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
			pv_backup_jevent(d, job->e.incident, EV(PV_EV_BACKUP_PROGRESS), job->e.node,
			                 NULL, b.data);
			pv_buf_free(&b);
		}
		/* a disk that cannot hold the rest: stop now, with a clear reason */
		struct statvfs vfs;
		int64_t left = job->total - job->done;
		if (left > 0 && !job->remote && statvfs(job->dir, &vfs) == 0) {
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

/* Advances the running job: its progress query, its child, its next progress poll. */
void pv_backup_job_step(BackupExt *x, PvDaemon *d, short pg_revents, int64_t now)
{
	Job *job = &x->job;

	if (job->pg && (pv_pgconn_busy(job->pg) || pg_revents)) {
		PvPgcEvent ev = pv_pgconn_step(job->pg, pg_revents, now);
		if (ev == PV_PGC_DONE) {
			PGresult *res = pv_pgconn_take_result(job->pg);
			progress_result(x, d, res, now);
			if (res)
				PQclear(res);
		} else if (ev == PV_PGC_FAILED) {
			pv_debug("backup progress query: %s", pv_pgconn_error(job->pg));
		}
	}
	if (cmd_running(job) && job->abort_reason[0] && job->phase == JOB_COPY) {
		char reason[sizeof job->abort_reason];
		snprintf(reason, sizeof reason, "%s", job->abort_reason);
		pv_backup_copy_failed(x, d, "failed", "space", reason, now);
	}
	if (cmd_running(job) && cmd_step(job, now)) {
		if (job->phase == JOB_COPY)
			copy_done(x, d, now);
		else if (job->phase == JOB_VERIFY)
			verify_done(x, d, now);
		else
			finish_done(x, d, now);
	}
	if (job->phase == JOB_COPY && job->pg && !pv_pgconn_busy(job->pg) &&
	    now >= job->next_poll_ms)
		progress_start(x, now, d->cfg->probe_timeout_ms);
}
