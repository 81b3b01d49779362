/*
 * backup_retention: after a good backup, the backups beyond backup.keep (never the newest
 * verified one) and failed or partial ones older than the newest good one are renamed to
 * LABEL.deleting (never listed again), their catalog record unlinked, each journaled
 * (backup-delete), and removed by a child rm, one at a time; on backup.host the same over ssh,
 * rm -rf running there in the background.  See backup_ext.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act/backup.h"
#include "act/backup_int.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"

/* ---------------------------------------------------------------- removals */

void pv_backup_rm_next(BackupExt *x, int64_t now)
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
PvStatus pv_backup_remove_later(BackupExt *x, const char *dir, const char *label, const char *path,
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
	pv_backup_rm_next(x, now);
	return PV_OK;
}

void pv_backup_retention_run(BackupExt *x, PvDaemon *d, const char *dir, const char *incident,
                             int64_t now)
{
	PvBackupEntry *list = NULL;
	size_t n = 0;
	PvError err;
	PvSsh *ssh = pv_backup_ssh_new(d->cfg); /* NULL: the backups are here */
	int ssh_ms = pv_backup_ssh_timeout_ms(d->cfg);
	if ((ssh ? pv_backup_remote_list(ssh, dir, ssh_ms + 10000, &list, &n, &err)
	         : pv_backup_catalog_list(dir, &list, &n, &err)) != PV_OK) {
		pv_error("retention: %s", err.msg);
		pv_ssh_free(ssh);
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
		if (ssh) {
			/* renamed to LABEL.deleting, the record unlinked, rm -rf in the background
			 */
			st = pv_backup_remote_remove(ssh, dir, e->label, path ? e->dir : NULL, true,
			                             ssh_ms, &err);
		} else {
			if (path)
				st = pv_backup_remove_later(x, dir, e->label, path, now, &err);
			if (st == PV_OK && unlink(json) != 0 && errno != ENOENT)
				st = pv_error_set(&err, PV_ERR_IO, "%s: %s", json, strerror(errno));
			if (st == PV_OK && pv_file_sync_dir(json, &err) != PV_OK)
				pv_warn("%s", err.msg);
		}
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
		pv_backup_jevent(d, incident, EV(PV_EV_BACKUP_DELETE), NULL,
		                 st == PV_OK ? "ok" : "failed", b.data);
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
	pv_ssh_free(ssh);
}

/* Reaps a finished rm and starts the next one. */
void pv_backup_rm_step(BackupExt *x, int64_t now)
{
	if (!x->rm || !pv_proc_step(x->rm, now))
		return;
	if (pv_proc_exit_status(x->rm) != 0) {
		char how[64];
		pv_proc_describe(x->rm, how, sizeof how);
		pv_warn("removing an old backup: rm %s", how);
	}
	pv_proc_free(x->rm);
	x->rm = NULL;
	pv_backup_rm_next(x, now);
}
