/*
 * backup_rp: restore points when an incident opens (pg_create_restore_point, pg_switch_wal on
 * the primary within probe.timeout_ms), and the wait for their WAL segment in
 * backup.archive_dir.  See backup_ext.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "act/backup.h"
#include "act/backup_int.h"
#include "common/clock.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "io/pgcmd.h"

#define ARCHIVE_WAIT_MS 60000
#define ARCHIVE_CHECK_MS 250

/* ---------------------------------------------------------------- restore points */

void pv_backup_restore_point(BackupExt *x, PvDaemon *d, int node, int64_t now)
{
	const PvConfig *cfg = d->cfg;
	char reason[256];
	if (!cfg->backup_restore_points) {
		pv_daemon_journal_reason(d, EV(PV_EV_RESTORE_POINT), NULL, "skipped",
		                         "backup.restore_points is off");
		return;
	}
	if (node < 0 || node >= d->view.nnodes) {
		pv_daemon_journal_reason(d, EV(PV_EV_RESTORE_POINT), NULL, "skipped", "no primary is known");
		return;
	}
	const PvNodeView *nv = &d->view.nodes[node];
	if (nv->obs.result != PV_PROBE_UP || nv->obs.in_recovery) {
		snprintf(reason, sizeof reason, "%s does not answer as a primary%s%s", nv->name,
		         nv->obs.reason[0] ? ": " : "", nv->obs.reason);
		pv_daemon_journal_reason(d, EV(PV_EV_RESTORE_POINT), nv->name, "skipped", reason);
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
	pv_backup_jend(d, &span,
	               st == PV_OK            ? "ok"
	               : st == PV_ERR_TIMEOUT ? "timeout"
	                                      : "failed",
	               b.data);
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

void pv_backup_archive_check(BackupExt *x, PvDaemon *d, int64_t now)
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
	pv_backup_jevent(d, x->arch_incident, EV(PV_EV_RESTORE_POINT_ARCHIVED), x->arch_node,
	                 there ? "ok" : "timeout", b.data);
	pv_buf_free(&b);
	if (!there)
		pv_error(
		    "restore point %s: WAL segment %s not in %s after %d s: check archive_command",
		    x->arch_name, x->arch_wal, d->cfg->backup_archive_dir, ARCHIVE_WAIT_MS / 1000);
	x->arch_wait = false;
}
