/*
 * cmd_restore_start: `pgvigil restore --start`: the copy started with pg_ctl as its owner, then
 * followed with psql until it pauses at its target (or leaves recovery), its log's recovery
 * lines and errors shown.  Also the process helpers both halves use.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act/backup.h"
#include "common/clock.h"
#include "common/fileio.h"
#include "io/proc.h"
#include "pgvigil/restore.h"

/* Runs argv (as the owner when drop), waiting; output captured. */
PvStatus pv_restore_run(const char *const *argv, const RunAs *as, int timeout_ms, PvProc **out,
                        PvError *err)
{
	const char *env[] = {as->env_home, NULL};
	PvProcSpec spec = {.argv = argv,
	                   .env = as->env_home ? env : NULL,
	                   .cwd = "/",
	                   .uid = as->uid,
	                   .gid = as->gid,
	                   .drop_privileges = as->drop,
	                   .timeout_ms = timeout_ms};
	return pv_proc_run(&spec, out, err);
}

void pv_restore_first_line(const PvProc *p, char *out, size_t size)
{
	const PvBuf *b = pv_proc_stderr(p)->len ? pv_proc_stderr(p) : pv_proc_stdout(p);
	const char *s = b->data ? b->data : "";
	size_t n = strcspn(s, "\n");
	snprintf(out, size, "%.*s", (int)n, s);
}

/* ---------------------------------------------------------------- starting the copy */

/* Lines of the server log that say how recovery went. */
static void print_log_lines(const char *log, bool errors_only)
{
	char *text = NULL;
	if (pv_file_read_all(log, &text, NULL, NULL) != PV_OK)
		return;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		bool error = strstr(l, "FATAL:") || strstr(l, "PANIC:") || strstr(l, "ERROR:");
		bool story =
		    strstr(l, "recovery stopping") || strstr(l, "starting point-in-time") ||
		    strstr(l, "pausing at the end of recovery") ||
		    strstr(l, "consistent recovery state reached") ||
		    strstr(l, "selected new timeline") || strstr(l, "archive recovery complete");
		if (error || (!errors_only && story))
			printf("  log: %s\n", l);
	}
	free(text);
}

/* psql -Atc sql on the copy; the first line of output in out. */
static PvStatus query(const char *psql, const RestoreArgs *a, const RunAs *as, const char *sql,
                      char *out, size_t size, PvError *err)
{
	char port[16];
	snprintf(port, sizeof port, "%d", a->port);
	const char *argv[] = {psql, "-X",    "-At", "-h",       a->to, "-p", port,
	                      "-U", a->user, "-d",  "postgres", "-c",  sql,  NULL};
	PvProc *p = NULL;
	PvStatus st = pv_restore_run(argv, as, 10000, &p, err);
	if (st != PV_OK)
		return st;
	if (pv_proc_exit_status(p) != 0) {
		char line[512];
		pv_restore_first_line(p, line, sizeof line);
		st = pv_error_set(err, PV_ERR_PG, "%s", line);
	} else {
		const char *s = pv_proc_stdout(p)->data ? pv_proc_stdout(p)->data : "";
		snprintf(out, size, "%.*s", (int)strcspn(s, "\n"), s);
	}
	pv_proc_free(p);
	return st;
}

static bool postmaster_running(const char *dir)
{
	char *pidfile = pv_xasprintf("%s/postmaster.pid", dir);
	char *text = NULL;
	bool alive = false;
	if (pv_file_read_all(pidfile, &text, NULL, NULL) == PV_OK) {
		long pid = strtol(text, NULL, 10);
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/%ld/stat", pid);
		char *stat = NULL;
		if (pid > 0 && pv_file_read_all(proc, &stat, NULL, NULL) == PV_OK) {
			const char *rp = strrchr(stat, ')');
			alive = rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
		}
		free(stat);
	}
	free(text);
	free(pidfile);
	return alive;
}

static void stop_copy(const char *pg_ctl, const RestoreArgs *a, const RunAs *as)
{
	const char *argv[] = {pg_ctl, "-D", a->to, "-m",   "immediate",
	                      "-w",   "-t", "60",  "stop", NULL};
	PvProc *p = NULL;
	PvError err;
	if (pv_restore_run(argv, as, 70000, &p, &err) == PV_OK)
		pv_proc_free(p);
}

int pv_restore_start(PvCli *cli, const RestoreArgs *a, const RunAs *as, bool has_target)
{
	char pg_ctl[4096], psql[4096], tos[16], state[512];
	PvError err;
	if (pv_backup_program(cli->cfg->backup_pg_bin_dir, "pg_ctl", pg_ctl, sizeof pg_ctl, &err) !=
	        PV_OK ||
	    pv_backup_program(cli->cfg->backup_pg_bin_dir, "psql", psql, sizeof psql, &err) !=
	        PV_OK)
		return pv_cli_fail(1, "restore: %s", err.msg);
	char *log = pv_xasprintf("%s/restore.log", a->to);
	snprintf(tos, sizeof tos, "%d", a->timeout_s);
	const char *argv[] = {pg_ctl, "-D", a->to, "-l", log, "-w", "-t", tos, "start", NULL};
	PvProc *p = NULL;
	int64_t t0 = pv_clock_mono_ms();
	printf("starting the copy: %s -D %s -l %s start\n", pg_ctl, a->to, log);
	fflush(stdout);
	int rc = 0;
	if (pv_restore_run(argv, as, a->timeout_s * 1000 + 10000, &p, &err) != PV_OK) {
		rc = pv_cli_fail(1, "restore: %s", err.msg);
		goto out;
	}
	bool started = pv_proc_exit_status(p) == 0;
	char line[512];
	pv_restore_first_line(p, line, sizeof line);
	pv_proc_free(p);
	p = NULL;
	/* until it pauses at the target (or, promoted or without a target, leaves recovery) */
	const char *sql = "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "
	                  "pg_get_wal_replay_pause_state() ELSE 'not paused' END, "
	                  "COALESCE(pg_last_wal_replay_lsn()::text, ''), "
	                  "COALESCE(pg_last_xact_replay_timestamp()::text, ''), "
	                  "(SELECT timeline_id FROM pg_control_checkpoint())";
	int64_t deadline = t0 + (int64_t)a->timeout_s * 1000;
	bool reached = false;
	while (started) {
		PvStatus st = query(psql, a, as, sql, state, sizeof state, &err);
		if (st == PV_OK) {
			bool in_rec = state[0] == 't';
			bool paused = strstr(state, "|paused|") != NULL;
			if ((strcmp(a->action, "pause") == 0 && has_target && paused) ||
			    ((strcmp(a->action, "promote") == 0 || !has_target) && !in_rec)) {
				reached = true;
				break;
			}
		}
		if (!postmaster_running(a->to)) {
			if (strcmp(a->action, "shutdown") == 0 && has_target) {
				reached = true;
				snprintf(state, sizeof state, "shut down at the target");
			}
			break;
		}
		if (pv_clock_mono_ms() > deadline)
			break;
		poll(NULL, 0, 200);
	}
	int64_t took = pv_clock_mono_ms() - t0;
	if (!reached) {
		fprintf(stderr, "pgvigil: restore: the copy %s: %s\n",
		        !started                    ? "did not start"
		        : postmaster_running(a->to) ? "did not reach its target in time"
		                                    : "stopped before reaching its target",
		        started ? "see its log below" : line);
		print_log_lines(log, true);
		if (postmaster_running(a->to))
			stop_copy(pg_ctl, a, as);
		rc = 1;
		goto out;
	}
	printf("recovered in %.1f s\n", (double)took / 1000.0);
	print_log_lines(log, false);
	if (strcmp(state, "shut down at the target") == 0) {
		printf("the copy shut down at its target (--action shutdown)\n");
	} else {
		/* t|paused|0/3000148|2026-11-25 17:34:55.12+00|1 */
		char *f[5] = {0};
		char *save = NULL, *s = state;
		for (int k = 0; k < 5; k++) {
			f[k] = strsep(&s, "|");
			if (!f[k])
				break;
		}
		(void)save;
		printf("recovered to: LSN %s, timeline %s, last transaction replayed %s; %s\n",
		       f[2] && *f[2] ? f[2] : "?", f[4] ? f[4] : "?",
		       f[3] && *f[3] ? f[3] : "(none)",
		       f[0] && f[0][0] == 't' ? "paused in recovery (read-only)"
		                              : "promoted (read-write)");
		printf("connect:  psql -h %s -p %d -U %s postgres\n", a->to, a->port, a->user);
		printf("stop:     runuser -u %s -- %s -D %s stop\n", a->user, pg_ctl, a->to);
	}
out:
	free(log);
	return rc;
}
