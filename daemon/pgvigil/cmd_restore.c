/*
 * cmd_restore: `pgvigil restore (--incident ID | --backup LABEL) [--target-lsn L |
 * --target-name N | --target-time T] --to DIR [--start --port P] [--action A] [--user U]
 * [--timeout S]`: a restore drill.
 *
 * Builds a recovered copy from a verified base backup and the WAL archive: the backup is copied
 * into DIR (owned by the postgres user, mode 0700), recovery settings are appended to its
 * postgresql.auto.conf (restore_command, the target, archive_mode = off so a drill never writes
 * into the production archive, its own port and socket directory DIR, no TCP), and
 * recovery.signal is created.  With --start it is started with pg_ctl as that user and
 * followed until it reaches its target; the report says what it recovered to.
 *
 * With --incident the target is the incident's restore point, read from the journal, and the
 * backup the newest verified one that ends before it.  Everything is checked before anything
 * is written: an unknown incident or backup, a non-empty DIR, a target without a WAL archive
 * are errors that change nothing; a copy that fails to reach its target is removed again.
 * The CLI never writes the journal: a restore is not an action on the cluster.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "act/backup.h"
#include "common/clock.h"
#include "common/fileio.h"
#include "core/cluster.h"
#include "io/proc.h"
#include "journal/journal_read.h"
#include "pgvigil/cli.h"

#define RESTORE_USAGE                                                                              \
	"usage: pgvigil restore (--incident ID | --backup LABEL) [--target-lsn LSN | "             \
	"--target-name NAME | --target-time TIME] --to DIR [--start --port PORT] "                 \
	"[--action pause|promote|shutdown] [--user USER] [--timeout SECONDS]"

typedef struct {
	const char *incident, *backup, *target_lsn, *target_name, *target_time, *to, *action, *user;
	bool start;
	int port;
	int timeout_s;
} RestoreArgs;

typedef struct {
	char name[96];
	char lsn[32];
	uint64_t lsn_v;
	int timeline;
	char ts[40];
	int64_t wall_us;
} RestorePoint;

typedef struct {
	uid_t uid;
	gid_t gid;
	bool drop;
	char home[512];
	char *env_home;
} RunAs;

/* ---------------------------------------------------------------- arguments */

static int parse_args(int argc, char **argv, RestoreArgs *a)
{
	memset(a, 0, sizeof *a);
	a->action = "pause";
	a->user = "postgres";
	a->timeout_s = 600;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **dst = NULL;
		if (strcmp(o, "--start") == 0) {
			a->start = true;
			continue;
		}
		if (strcmp(o, "--incident") == 0)
			dst = &a->incident;
		else if (strcmp(o, "--backup") == 0)
			dst = &a->backup;
		else if (strcmp(o, "--target-lsn") == 0)
			dst = &a->target_lsn;
		else if (strcmp(o, "--target-name") == 0)
			dst = &a->target_name;
		else if (strcmp(o, "--target-time") == 0)
			dst = &a->target_time;
		else if (strcmp(o, "--to") == 0)
			dst = &a->to;
		else if (strcmp(o, "--action") == 0)
			dst = &a->action;
		else if (strcmp(o, "--user") == 0)
			dst = &a->user;
		if (dst && v && *v) {
			*dst = v;
			i++;
			continue;
		}
		if ((strcmp(o, "--port") == 0 || strcmp(o, "--timeout") == 0) && v) {
			char *end;
			long n = strtol(v, &end, 10);
			bool port = o[2] == 'p';
			if (end == v || *end || n < 1 || n > (port ? 65535 : 86400))
				return pv_cli_fail(2, "restore: %s %s: expected %s", o, v,
				                   port ? "a port 1..65535" : "seconds 1..86400");
			if (port)
				a->port = (int)n;
			else
				a->timeout_s = (int)n;
			i++;
			continue;
		}
		return pv_cli_fail(2, "restore: unexpected argument %s (%s)", o, RESTORE_USAGE);
	}
	if (!!a->incident == !!a->backup)
		return pv_cli_fail(2,
		                   "restore: give exactly one of --incident ID and --backup LABEL");
	if (!!a->target_lsn + !!a->target_name + !!a->target_time > 1)
		return pv_cli_fail(2,
		                   "restore: give at most one of --target-lsn, --target-name and "
		                   "--target-time");
	if (!a->to)
		return pv_cli_fail(2, "restore: --to DIR is required (an empty or new directory)");
	if (a->to[0] != '/')
		return pv_cli_fail(2, "restore: --to %s: give an absolute path", a->to);
	if (a->start && !a->port)
		return pv_cli_fail(2,
		                   "restore: --start needs --port PORT (the copy must not take a "
		                   "production port)");
	uint64_t l;
	if (a->target_lsn && !pv_lsn_parse(a->target_lsn, &l))
		return pv_cli_fail(2, "restore: --target-lsn %s: not an LSN (like 0/3000148)",
		                   a->target_lsn);
	if (strcmp(a->action, "pause") != 0 && strcmp(a->action, "promote") != 0 &&
	    strcmp(a->action, "shutdown") != 0)
		return pv_cli_fail(2, "restore: --action %s: expected pause, promote or shutdown",
		                   a->action);
	if (strlen(a->to) + 24 > 107)
		return pv_cli_fail(2,
		                   "restore: --to %s: too long for the Unix socket path the copy "
		                   "listens on",
		                   a->to);
	return 0;
}

/* ---------------------------------------------------------------- the incident's restore point */

static int find_restore_point(PvCli *cli, const char *id, RestorePoint *rp)
{
	PvJournalLog *log = NULL;
	PvError err;
	PvStatus st = pv_journal_read(cli->cfg->journal_path, &log, &err);
	if (st != PV_OK)
		return pv_cli_fail(1, "restore: %s", err.msg);
	PvJournalIncident inc;
	if (pv_journal_incident_summary(log, id, &inc, &err) != PV_OK) {
		pv_journal_log_free(log);
		return pv_cli_fail(1,
		                   "restore: %s: no incident %s in the journal (see pgvigil "
		                   "incident list)",
		                   cli->cfg->journal_path, id);
	}
	const PvJournalEntry *found = NULL, *other = NULL;
	for (size_t i = 0; i < log->nentries; i++) {
		const PvJournalEntry *e = &log->entries[i];
		if (!e->incident || strcmp(e->incident, id) != 0 ||
		    strcmp(e->event, "restore-point") != 0)
			continue;
		if (strcmp(e->phase, "end") == 0 && e->outcome && strcmp(e->outcome, "ok") == 0)
			found = e;
		else if (strcmp(e->phase, "begin") != 0)
			other = e;
	}
	int rc = 0;
	if (!found) {
		const char *why = other ? pv_journal_entry_detail_str(other, "reason") : NULL;
		if (!why && other)
			why = pv_journal_entry_detail_str(other, "error");
		if (other)
			rc = pv_cli_fail(
			    1,
			    "restore: incident %s has no restore point (restore-point %s: "
			    "%s); use --backup LABEL with --target-time",
			    id, other->outcome ? other->outcome : "?", why ? why : "no reason");
		else
			rc = pv_cli_fail(
			    1,
			    "restore: incident %s has no restore point in the journal; use "
			    "--backup LABEL with --target-time",
			    id);
		pv_journal_log_free(log);
		return rc;
	}
	const char *name = pv_journal_entry_detail_str(found, "name");
	const char *lsn = pv_journal_entry_detail_str(found, "lsn");
	json_t *tl = json_object_get(found->detail, "timeline");
	if (!name || !lsn || !pv_lsn_parse(lsn, &rp->lsn_v) || !json_is_integer(tl)) {
		pv_journal_log_free(log);
		return pv_cli_fail(
		    1,
		    "restore: incident %s: its restore-point record lacks name, lsn or "
		    "timeline",
		    id);
	}
	snprintf(rp->name, sizeof rp->name, "%s", name);
	snprintf(rp->lsn, sizeof rp->lsn, "%s", lsn);
	rp->timeline = (int)json_integer_value(tl);
	snprintf(rp->ts, sizeof rp->ts, "%s", found->ts);
	if (!pv_journal_parse_ts(found->ts, &rp->wall_us))
		rp->wall_us = 0;
	pv_journal_log_free(log);
	return 0;
}

/* ---------------------------------------------------------------- files */

static RunAs *cleanup_owner;
static int chown_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return lchown(path, cleanup_owner->uid, cleanup_owner->gid) == 0 ? 0 : -1;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Empties DIR again, and removes it when the restore created it. */
static void undo(const char *dir, bool created)
{
	DIR *d = opendir(dir);
	if (d) {
		for (struct dirent *de; (de = readdir(d)) != NULL;) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			char *p = pv_xasprintf("%s/%s", dir, de->d_name);
			if (nftw(p, remove_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
				fprintf(stderr, "pgvigil: restore: cannot remove %s: %s\n", p,
				        strerror(errno));
			free(p);
		}
		closedir(d);
	}
	if (created)
		rmdir(dir);
}

static bool dir_empty(const char *dir, bool *exists)
{
	struct stat st;
	*exists = stat(dir, &st) == 0;
	if (!*exists)
		return true;
	if (!S_ISDIR(st.st_mode))
		return false;
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool empty = true;
	for (struct dirent *de; (de = readdir(d)) != NULL && empty;)
		empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	closedir(d);
	return empty;
}

/*
 * Can uid/gid (not root) search every directory above path?  PostgreSQL, run as that user,
 * must reach its data directory.  Names the first one it cannot pass.
 */
static bool reachable(const char *path, uid_t uid, gid_t gid, char *why, size_t size)
{
	char *p = pv_xstrdup(path);
	bool ok = true;
	for (char *slash = strrchr(p, '/'); slash && ok; slash = strrchr(p, '/')) {
		*slash = '\0';
		const char *dir = *p ? p : "/";
		struct stat st;
		if (stat(dir, &st) != 0)
			continue; /* created later, by us, for that user */
		mode_t need = st.st_uid == uid ? S_IXUSR : st.st_gid == gid ? S_IXGRP : S_IXOTH;
		if (!(st.st_mode & need)) {
			snprintf(why, size, "%s is mode %04o, owner uid %u", dir,
			         (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
			ok = false;
		}
		if (!*p)
			break;
	}
	free(p);
	return ok;
}

static PvStatus write_file(const char *path, const char *text, PvError *err)
{
	return pv_file_write_atomic(path, text, strlen(text), 0600, err);
}

/* Runs argv (as the owner when drop), waiting; output captured. */
static PvStatus run(const char *const *argv, const RunAs *as, int timeout_ms, PvProc **out,
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

static void first_line(const PvProc *p, char *out, size_t size)
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
	PvStatus st = run(argv, as, 10000, &p, err);
	if (st != PV_OK)
		return st;
	if (pv_proc_exit_status(p) != 0) {
		char line[512];
		first_line(p, line, sizeof line);
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
	if (run(argv, as, 70000, &p, &err) == PV_OK)
		pv_proc_free(p);
}

/* Starts the copy and waits until it reached its target; prints what it recovered to. */
static int start_copy(PvCli *cli, const RestoreArgs *a, const RunAs *as, bool has_target)
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
	if (run(argv, as, a->timeout_s * 1000 + 10000, &p, &err) != PV_OK) {
		rc = pv_cli_fail(1, "restore: %s", err.msg);
		goto out;
	}
	bool started = pv_proc_exit_status(p) == 0;
	char line[512];
	first_line(p, line, sizeof line);
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

/* ---------------------------------------------------------------- the verb */

int pv_cmd_restore(PvCli *cli, int argc, char **argv)
{
	RestoreArgs a;
	RestorePoint rp;
	RunAs as = {0};
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc;
	memset(&rp, 0, sizeof rp);

	/* which backup, which target: everything is checked before anything is written */
	if (a.incident && (rc = find_restore_point(cli, a.incident, &rp)) != 0)
		return rc;
	char *dir = pv_backup_directory(cli->cfg);
	char *restore_cmd = pv_backup_restore_command(cli->cfg);
	char *src = NULL, *auto_conf = NULL;
	PvBackupEntry *list = NULL;
	size_t n = 0;
	PvError err;
	PvBuf text = {0};
	bool created = false, exists;
	if (pv_backup_catalog_list(dir, &list, &n, &err) != PV_OK) {
		rc = pv_cli_fail(1, "restore: %s", err.msg);
		goto out;
	}
	long bi;
	if (a.incident) {
		bi = pv_backup_choose(list, n, rp.timeline, rp.lsn_v, rp.wall_us);
		if (bi < 0) {
			rc = pv_cli_fail(
			    1,
			    "restore: no verified backup in %s ends before incident %s's "
			    "restore point (LSN %s, timeline %d)",
			    dir, a.incident, rp.lsn, rp.timeline);
			goto out;
		}
		if (!a.target_lsn && !a.target_name && !a.target_time)
			a.target_name = rp.name;
	} else {
		bi = pv_backup_catalog_find(list, n, a.backup);
		if (bi < 0) {
			rc = pv_cli_fail(1, "restore: no backup %s in %s (see pgvigil backup list)",
			                 a.backup, dir);
			goto out;
		}
		if (!pv_backup_status_good(list[bi].status)) {
			rc = pv_cli_fail(1, "restore: backup %s is %s%s%s: not restorable",
			                 a.backup, pv_backup_status_name(list[bi].status),
			                 list[bi].error[0] ? ": " : "", list[bi].error);
			goto out;
		}
	}
	const PvBackupEntry *b = &list[bi];
	src = pv_backup_entry_path(dir, b);
	char *label_file = pv_xasprintf("%s/backup_label", src ? src : "");
	bool data_dir = src && access(label_file, R_OK) == 0;
	free(label_file);
	if (!data_dir) {
		rc = pv_cli_fail(1,
		                 "restore: backup %s holds no data directory (no backup_label): "
		                 "restore it with the tool that made it",
		                 b->label);
		goto out;
	}
	bool has_target = a.target_lsn || a.target_name || a.target_time;
	if (has_target && !restore_cmd) {
		rc = pv_cli_fail(2,
		                 "restore: a recovery target needs the WAL archive: set "
		                 "backup.archive_dir or backup.restore_command in %s",
		                 cli->config_path);
		goto out;
	}
	uint64_t tl_lsn = 0;
	if (a.target_lsn && pv_lsn_parse(a.target_lsn, &tl_lsn) && b->stop_lsn &&
	    tl_lsn < b->stop_lsn) {
		char stop[32];
		pv_lsn_format(b->stop_lsn, stop, sizeof stop);
		rc = pv_cli_fail(1,
		                 "restore: --target-lsn %s is before the end of backup %s (%s): "
		                 "choose an older backup",
		                 a.target_lsn, b->label, stop);
		goto out;
	}
	if (!dir_empty(a.to, &exists)) {
		rc = pv_cli_fail(1, "restore: %s is not an empty directory: nothing changed", a.to);
		goto out;
	}
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(a.user);
		if (!pw) {
			rc = pv_cli_fail(2, "restore: --user %s: no such user", a.user);
			goto out;
		}
		as.uid = pw->pw_uid;
		as.gid = pw->pw_gid;
		as.drop = true;
		as.env_home = pv_xasprintf("HOME=%s", pw->pw_dir);
		char why[256];
		if (!reachable(a.to, as.uid, as.gid, why, sizeof why)) {
			rc = pv_cli_fail(
			    1,
			    "restore: %s cannot reach %s: %s (choose another directory, or "
			    "open the way)",
			    a.user, a.to, why);
			goto out;
		}
	}

	/* the copy */
	char tl[32] = "";
	if (b->timeline)
		snprintf(tl, sizeof tl, ", timeline %d", b->timeline);
	printf("backup %s (%s, %s%s%s%s) -> %s\n", b->label, pv_backup_status_name(b->status),
	       b->trigger[0] ? b->trigger : "?", b->incident[0] ? ", incident " : "",
	       b->incident[0] ? b->incident : "", tl, a.to);
	fflush(stdout);
	if (!exists) {
		if (mkdir(a.to, 0700) != 0) {
			rc =
			    pv_cli_fail(1, "restore: %s: cannot create: %s", a.to, strerror(errno));
			goto out;
		}
		created = true;
	}
	int64_t t0 = pv_clock_mono_ms();
	char *from = pv_xasprintf("%s/.", src);
	const char *cp[] = {"cp", "-a", "--", from, a.to, NULL};
	RunAs root = {0};
	PvProc *p = NULL;
	PvStatus st = run(cp, &root, 0, &p, &err);
	free(from);
	if (st == PV_OK && pv_proc_exit_status(p) != 0) {
		char line[512];
		first_line(p, line, sizeof line);
		st = pv_error_set(&err, PV_ERR_IO, "cp: %s", line);
	}
	pv_proc_free(p);
	if (st != PV_OK) {
		rc = pv_cli_fail(1, "restore: copying %s: %s", src, err.msg);
		undo(a.to, created);
		goto out;
	}
	int64_t copy_ms = pv_clock_mono_ms() - t0;

	/* what a copy of a Debian-style data directory (configuration elsewhere) lacks */
	static const struct {
		const char *file, *text;
	} minimal[] = {
	    {"postgresql.conf",
	     "# written by pgvigil restore: the backup had no postgresql.conf\n"},
	    {"pg_hba.conf", "# written by pgvigil restore: the backup had no pg_hba.conf\n"
	                    "local all all peer\n"},
	    {"pg_ident.conf", "# written by pgvigil restore\n"},
	};
	for (size_t k = 0; k < sizeof minimal / sizeof minimal[0] && st == PV_OK; k++) {
		char *f = pv_xasprintf("%s/%s", a.to, minimal[k].file);
		if (access(f, F_OK) != 0)
			st = write_file(f, minimal[k].text, &err);
		free(f);
	}
	for (const char *const *sig =
	         (const char *const[]){"standby.signal", "recovery.signal", "postmaster.pid", NULL};
	     *sig; sig++) {
		char *f = pv_xasprintf("%s/%s", a.to, *sig);
		unlink(f);
		free(f);
	}
	/* the recovery settings, after whatever the copied postgresql.auto.conf holds */
	auto_conf = pv_xasprintf("%s/postgresql.auto.conf", a.to);
	char *old = NULL;
	if (pv_file_read_all(auto_conf, &old, NULL, NULL) == PV_OK)
		pv_buf_puts(&text, old);
	free(old);
	char stamp[40], origin[256];
	pv_clock_format_utc(pv_clock_wall_us(), stamp, sizeof stamp);
	snprintf(origin, sizeof origin, "backup %s%s%s", b->label, a.incident ? ", incident " : "",
	         a.incident ? a.incident : "");
	PvRecoverySettings rs = {
	    .restore_command = restore_cmd,
	    .target_name = a.target_name,
	    .target_lsn = a.target_lsn,
	    .target_time = a.target_time,
	    .target_timeline = a.incident && a.target_name == rp.name ? rp.timeline : 0,
	    .action = a.action,
	    .port = a.port,
	    .socket_dir = a.to,
	    .stamp = stamp,
	    .origin = origin,
	};
	pv_backup_render_recovery(&rs, &text);
	if (st == PV_OK)
		st = write_file(auto_conf, text.data, &err);
	if (st == PV_OK && (has_target || restore_cmd)) {
		char *sig = pv_xasprintf("%s/recovery.signal", a.to);
		st = write_file(sig, "", &err);
		free(sig);
	}
	if (st == PV_OK && as.drop) {
		cleanup_owner = &as;
		if (nftw(a.to, chown_one, 32, FTW_PHYS) != 0)
			st = pv_error_set(&err, PV_ERR_IO, "%s: chown to %s: %s", a.to, a.user,
			                  strerror(errno));
	}
	if (st == PV_OK && chmod(a.to, 0700) != 0)
		st = pv_error_set(&err, PV_ERR_IO, "%s: chmod: %s", a.to, strerror(errno));
	if (st != PV_OK) {
		rc = pv_cli_fail(1, "restore: %s", err.msg);
		undo(a.to, created);
		goto out;
	}
	printf("copied in %.1f s; recovery settings appended to %s\n", (double)copy_ms / 1000.0,
	       auto_conf);
	if (a.target_name)
		printf("target: restore point '%s'%s%s%s\n", a.target_name,
		       rp.lsn[0] ? " (LSN " : "", rp.lsn, rp.lsn[0] ? ")" : "");
	else if (a.target_lsn)
		printf("target: LSN %s\n", a.target_lsn);
	else if (a.target_time)
		printf("target: time %s\n", a.target_time);
	else
		printf("target: %s\n", restore_cmd
		                           ? "the end of the archived WAL"
		                           : "the end of the backup (no WAL archive configured)");
	printf("restore_command: %s\n", restore_cmd ? restore_cmd : "(none)");
	if (a.start) {
		rc = start_copy(cli, &a, &as, has_target);
		if (rc != 0)
			undo(a.to, created);
	} else {
		char pg_ctl[4096];
		if (pv_backup_program(cli->cfg->backup_pg_bin_dir, "pg_ctl", pg_ctl, sizeof pg_ctl,
		                      &err) != PV_OK)
			snprintf(pg_ctl, sizeof pg_ctl, "pg_ctl");
		printf("start it:  runuser -u %s -- %s -D %s -l %s/restore.log start\n", a.user,
		       pg_ctl, a.to, a.to);
	}
out:
	free(as.env_home);
	free(auto_conf);
	pv_buf_free(&text);
	free(src);
	free(list);
	free(restore_cmd);
	free(dir);
	return rc;
}
