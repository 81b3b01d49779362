/*
 * backup_ext: pgvigild's backup component as a PvExtension: its schedule, its reactions to the
 * daemon's events, its control verbs (see backup_ext.h).  The work is in backup_job.c and
 * backup_rp.c.
 */
#include "act/backup_ext.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "act/backup.h"
#include "act/backup_int.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"

/* ---------------------------------------------------------------- schedule */

static void schedule(BackupExt *x, PvDaemon *d, int64_t now)
{
	x->due_ms = 0;
	if (d->cfg->backup_interval_s <= 0)
		return;
	int64_t interval_ms = (int64_t)d->cfg->backup_interval_s * 1000;
	int64_t due = now + interval_ms;
	PvBackupEntry *list = NULL;
	size_t n = 0;
	PvError err;
	if (pv_backup_list(d->cfg, &list, &n, &err) == PV_OK && n > 0 &&
	    list[n - 1].start_wall_us > 0) {
		int64_t age_ms = (pv_clock_wall_us() - list[n - 1].start_wall_us) / 1000;
		due = now + (age_ms >= interval_ms ? 0 : interval_ms - age_ms);
	}
	free(list);
	x->due_ms = due > 0 ? due : 1;
}

/* ---------------------------------------------------------------- the extension */

static void *ext_create(PvDaemon *d)
{
	BackupExt *x = pv_xcalloc(1, sizeof *x);
	x->d = d;
	x->fd_pg = -1;
	pv_backup_job_clear(&x->job);
	int64_t now = pv_clock_mono_ms();
	schedule(x, d, now);
	/* removals a stopped daemon left unfinished (on backup.host: by the next removal there) */
	char *dir = pv_backup_directory(d->cfg);
	DIR *dh = pv_backup_host_node(d->cfg) < 0 ? opendir(dir) : NULL;
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
	pv_backup_rm_next(x, now);
	return x;
}

static void ext_destroy(void *self)
{
	BackupExt *x = self;
	Job *job = &x->job;
	int64_t now = pv_clock_mono_ms();
	if (job->phase != JOB_IDLE) {
		/* stopped with the daemon: its end record says so; the directory goes next start */
		pv_backup_job_stop_program(job);
		const char *why = "the daemon stopped";
		if (job->vspan_open) {
			PvBuf b = {0};
			PvJson j;
			pv_json_init(&j, &b);
			pv_json_obj_open(&j, NULL);
			pv_json_str(&j, "label", job->e.label);
			pv_json_str(&j, "error", why);
			pv_json_obj_close(&j);
			pv_backup_jend(x->d, &job->vspan, "failed", b.data);
			pv_buf_free(&b);
		}
		if (!job->verify_only && job->remote) {
			PvError err;
			if (pv_backup_remote_remove(job->ssh, job->dir, job->e.label, ".partial",
			                            false, job->ssh_timeout_ms, &err) != PV_OK)
				pv_warn("backup %s: %s", job->e.label, err.msg);
		}
		if (!job->verify_only) {
			struct stat st;
			if (!job->remote && job->path && lstat(job->path, &st) == 0) {
				char *dst = pv_xasprintf("%s/%s.deleting", job->dir, job->e.label);
				if (rename(job->path, dst) != 0)
					pv_warn("%s: %s", job->path, strerror(errno));
				free(dst);
			}
			job->e.status = PV_BACKUP_FAILED;
			pv_backup_job_end(x, x->d, "failed",
			                  job->phase == JOB_COPY     ? "copy"
			                  : job->phase == JOB_VERIFY ? "verify"
			                                             : "rename",
			                  why, now);
		}
	}
	pv_backup_job_clear(job);
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
	if (x->job.hcmd)
		n += pv_hostcmd_pollfds(x->job.hcmd, fds + n, max - n);
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
	if (job->hcmd)
		t = min_pos(t, pv_hostcmd_timeout(job->hcmd, now));
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
	if (!pv_backup_job_busy(x) && (x->pend_promotion || x->pend_schedule))
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
	pv_backup_jevent(d, d->incident, EV(PV_EV_BACKUP), NULL, skipped ? "skipped" : "failed",
	                 b.data);
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
		if (pv_backup_job_start(x, d, "promotion", node, x->pend_incident, now, NULL, 0,
		                        &recorded, &err) != PV_OK &&
		    !recorded)
			journal_not_started(d, "promotion", &err);
		return;
	}
	if (x->pend_schedule) {
		x->pend_schedule = false;
		if (pv_backup_job_start(x, d, "schedule", -1, d->incident, now, NULL, 0, &recorded,
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
	short rev = (x->fd_pg >= 0 && x->fd_pg < nfds) ? fds[x->fd_pg].revents : 0;

	pv_backup_job_step(x, d, rev, now);
	pv_backup_rm_step(x, now);
	pv_backup_archive_check(x, d, now);
	if (x->due_ms && now >= x->due_ms) {
		x->due_ms = 0;
		x->pend_schedule = true;
	}
	if (!pv_backup_job_busy(x))
		start_pending(x, d, now);
}

static void ext_on_event(void *self, PvDaemon *d, PvDaemonEvent ev, int node)
{
	BackupExt *x = self;
	Job *job = &x->job;
	int64_t now = pv_clock_mono_ms();
	switch (ev) {
	case PV_DEV_INCIDENT_OPEN:
		pv_backup_restore_point(x, d, node, now);
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
			pv_backup_copy_failed(x, d, "failed", "promotion", why, now);
		}
		if (!pv_backup_job_busy(x))
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
	char *dir = pv_backup_location(d->cfg);
	pv_json_str(j, "directory", dir);
	free(dir);
	if (pv_backup_job_busy(x)) {
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
		if (pv_backup_job_start(x, d, "manual", -1, d->incident, now, label, sizeof label,
		                        &recorded, &err) == PV_OK)
			respond_label(req, label);
		else
			pv_ctl_respond_error(req, err.msg);
		return true;
	}
	if (strcmp(cmd, "backup-verify") == 0) {
		const char *label = json_string_value(json_object_get(rq, "label"));
		if (!label || !*label)
			pv_ctl_respond_error(req, "a label is required");
		else if (pv_backup_verify_start(x, d, label, now, &err) == PV_OK)
			respond_label(req, label);
		else
			pv_ctl_respond_error(req, err.msg);
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
