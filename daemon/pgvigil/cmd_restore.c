/*
 * cmd_restore: `pgvigil restore (--incident ID | --backup LABEL) [--target-lsn L |
 * --target-name N | --target-time T] --to DIR [--start --port P] [--action A] [--user U]
 * [--timeout S]`: a restore drill.
 *
 * Builds a recovered copy from a verified base backup and the WAL archive: the backup is copied
 * into DIR (owned by the postgres user, mode 0700; from backup.host as a tar stream over ssh,
 * so DIR is always on this host), recovery settings are appended to its
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
#include <pwd.h>
#include <signal.h>
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
#include "io/ssh.h"
#include "journal/journal_read.h"
#include "pgvigil/cli.h"
#include "pgvigil/restore.h"

#define RESTORE_USAGE                                                                              \
	"usage: pgvigil restore (--incident ID | --backup LABEL) [--target-lsn LSN | "             \
	"--target-name NAME | --target-time TIME] --to DIR [--start --port PORT] "                 \
	"[--action pause|promote|shutdown] [--user USER] [--timeout SECONDS]"

/* an incident's restore point, from its journal record */
typedef struct {
	char name[96];
	char lsn[32];
	uint64_t lsn_v;
	int timeline;
	char ts[40];
	int64_t wall_us;
} RestorePoint;

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

/*
 * The backup at src on backup.host into to, here: tar -c there, streamed over ssh into tar -x
 * here (as root, like cp -a: the copy is given to its owner afterwards).
 */
static PvStatus copy_remote(PvSsh *ssh, const char *src, const char *to, int timeout_ms,
                            PvError *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return pv_error_set(err, PV_ERR_IO, "pipe: %s", strerror(errno));
	const char *x[] = {"tar", "-x", "-f", "-", "-C", to, NULL};
	PvProcSpec spec = {.argv = x, .cwd = "/", .stdin_fd = fds[0], .timeout_ms = timeout_ms};
	PvProc *p = NULL;
	PvStatus st = pv_proc_start(&spec, pv_clock_mono_ms(), &p, err);
	close(fds[0]);
	if (st != PV_OK) {
		close(fds[1]);
		return st;
	}
	const char *c[] = {"tar", "-c", "-f", "-", "-C", src, ".", NULL};
	PvSshResult r;
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	st = pv_ssh_run_to_fd(ssh, c, timeout_ms, fds[1], &r, err);
	close(fds[1]);
	signal(SIGPIPE, old);
	if (st == PV_OK && !pv_ssh_result_ok(&r)) {
		char how[64];
		pv_ssh_result_describe(&r, how, sizeof how);
		const char *e = r.err.data ? r.err.data : "";
		st = pv_error_set(err, PV_ERR_IO, "tar on %s: %s%s%.*s", pv_ssh_name(ssh), how,
		                  *e ? ": " : "", (int)strcspn(e, "\n"), e);
	}
	pv_ssh_result_free(&r);
	pv_proc_wait(p);
	if (st == PV_OK && pv_proc_exit_status(p) != 0) {
		char line[512];
		pv_restore_first_line(p, line, sizeof line);
		st = pv_error_set(err, PV_ERR_IO, "tar here: %s", line);
	}
	pv_proc_free(p);
	return st;
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
	char *dir = pv_backup_location(cli->cfg);
	char *bdir = pv_backup_directory(cli->cfg);
	char *restore_cmd = pv_backup_restore_command(cli->cfg);
	char *src = NULL, *auto_conf = NULL;
	PvBackupEntry *list = NULL;
	size_t n = 0;
	PvError err;
	PvBuf text = {0};
	bool created = false, exists;
	PvSsh *ssh = pv_backup_ssh_new(cli->cfg); /* NULL: the backups are here */
	int ssh_ms = pv_backup_ssh_timeout_ms(cli->cfg);
	if ((ssh ? pv_backup_remote_list(ssh, bdir, ssh_ms + 10000, &list, &n, &err)
	         : pv_backup_catalog_list(bdir, &list, &n, &err)) != PV_OK) {
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
	src = pv_backup_entry_path(bdir, b);
	bool data_dir = false;
	if (src && ssh) {
		if (pv_backup_remote_has_label(ssh, src, ssh_ms, &data_dir, &err) != PV_OK) {
			rc = pv_cli_fail(1, "restore: %s", err.msg);
			goto out;
		}
	} else if (src) {
		char *label_file = pv_xasprintf("%s/backup_label", src);
		data_dir = access(label_file, R_OK) == 0;
		free(label_file);
	}
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
	PvStatus st;
	if (ssh) {
		st = copy_remote(ssh, src, a.to, cli->cfg->backup_timeout_s * 1000, &err);
	} else {
		char *from = pv_xasprintf("%s/.", src);
		const char *cp[] = {"cp", "-a", "--", from, a.to, NULL};
		RunAs root = {0};
		PvProc *p = NULL;
		st = pv_restore_run(cp, &root, 0, &p, &err);
		free(from);
		if (st == PV_OK && pv_proc_exit_status(p) != 0) {
			char line[512];
			pv_restore_first_line(p, line, sizeof line);
			st = pv_error_set(&err, PV_ERR_IO, "cp: %s", line);
		}
		pv_proc_free(p);
	}
	if (st != PV_OK) {
		rc = pv_cli_fail(1, "restore: copying %s%s: %s", ssh ? "from " : "",
		                 ssh ? dir : src, err.msg);
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
		rc = pv_restore_start(cli, &a, &as, has_target);
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
	free(bdir);
	pv_ssh_free(ssh);
	return rc;
}
