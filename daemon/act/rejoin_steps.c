/*
 * rejoin_steps: what each step of a rejoin does (rejoin.h lists them): stop, checkpoint,
 * rewind, basebackup here; configure, start and verify in rejoin_standby.c.  A step is a small
 * state machine over x->sub: each state either starts one command, one statement or a timer
 * and returns RJ_WAIT (the driver in rejoin.c calls again once it is over), or looks at the
 * result and moves on; RJ_DONE, RJ_FAIL or RJ_FAIL_ON end the step.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act/nodectl.h"
#include "act/rejoin_int.h"

/*
 * Saves the node's *.conf files into ~/.pgvigil-rejoin/KEY on its host (the owner's home: no
 * other user can plant anything there) and says where, and whether a base backup could go in
 * the data directory's place ($1 PGDATA, $2 its parent, $3 KEY).  A copy marked .overwritten
 * is kept as it is: an interrupted rejoin left it after pg_rewind or pg_basebackup began, so
 * the files in PGDATA may be the primary's.
 */
static const char SAVE[] =
    "d=$1; p=$2; b=\"${HOME:-/nonexistent}/.pgvigil-rejoin\"; t=\"$b/$3\"\n"
    "mkdir -p \"$b\" && chmod 700 \"$b\" || exit 1\n"
    "if [ -f \"$t/.overwritten\" ]; then echo reused=1; else\n"
    "  rm -rf \"$t\" && mkdir -m 700 \"$t\" || exit 1\n"
    "  for f in \"$d\"/*.conf; do [ -f \"$f\" ] || continue; cp -p \"$f\" \"$t/\" || exit 1; done\n"
    "fi\n"
    "echo \"saved=$t\"\n"
    "if [ -w \"$p\" ]; then echo parent_writable=1; else echo parent_writable=0; fi\n"
    "if [ -n \"$(ls -A \"$d/pg_tblspc\" 2>/dev/null)\" ]; then echo tablespaces=1; "
    "else echo tablespaces=0; fi\n";
/* Marks the saved copy ($1) as the only good one, then runs the rest. */
static const char MARK[] = "touch \"$1/.overwritten\" || exit 1; shift; exec \"$@\"";

static const char *const *pwenv(const Rj *x)
{
	static const char *env[2];
	env[0] = x->pwenv[0] && !x->host.remote ? x->pwenv : NULL;
	env[1] = NULL;
	return env;
}

static void parent_of(const char *path, char *out, size_t size)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	while (n > 0 && path[n - 1] != '/')
		n--;
	while (n > 1 && path[n - 1] == '/')
		n--;
	snprintf(out, size, "%.*s", (int)(n ? n : 1), n ? path : ".");
}

/* The value of "key=" in key=value lines. */
static bool kv(const char *text, const char *key, char *out, size_t size)
{
	size_t kl = strlen(key);
	for (const char *l = text; *l;) {
		size_t n = strcspn(l, "\n");
		if (n > kl && strncmp(l, key, kl) == 0 && l[kl] == '=') {
			snprintf(out, size, "%.*s", (int)(n - kl - 1), l + kl + 1);
			return true;
		}
		l += n;
		if (*l)
			l++;
	}
	return false;
}

/* ---------------------------------------------------------------- stop */

/*
 * Local nodes: pg_ctl status saw the pid of postmaster.pid alive.  True (the file removed)
 * when that pid is not this data directory's postmaster: a zombie, or a process working
 * elsewhere that took the pid of a crashed one (pg_ctl stop would signal it).
 */
static bool stale_pidfile(Rj *x)
{
	char *path = pv_xasprintf("%s/postmaster.pid", x->pgdata);
	FILE *fp = fopen(path, "r");
	long pid = 0;
	bool stale = false;
	if (!fp || fscanf(fp, "%ld", &pid) != 1 || pid <= 1) {
		if (fp)
			fclose(fp);
		free(path);
		return false;
	}
	fclose(fp);
	char proc[64], stat[512], cwd[PATH_MAX], real[PATH_MAX];
	snprintf(proc, sizeof proc, "/proc/%ld/stat", pid);
	FILE *sp = fopen(proc, "r");
	char state = '?';
	if (sp) {
		size_t len = fread(stat, 1, sizeof stat - 1, sp);
		stat[len] = '\0';
		fclose(sp);
		char *rp = strrchr(stat, ')');
		if (rp && rp[1] == ' ')
			state = rp[2];
	}
	snprintf(proc, sizeof proc, "/proc/%ld/cwd", pid);
	ssize_t n = readlink(proc, cwd, sizeof cwd - 1);
	int e = errno;
	if (state == 'Z' || state == 'X') {
		stale = true;
	} else if (n > 0 && realpath(x->pgdata, real)) {
		cwd[n] = '\0';
		stale = strcmp(cwd, real) != 0;
	} else if (n < 0 && e == ENOENT) {
		stale = true; /* gone since pg_ctl looked */
	}
	if (stale) {
		if (unlink(path) == 0)
			pv_rj_note(x, "removed a stale postmaster.pid (pid %ld %s)", pid,
			           state == 'Z' || state == 'X'
			               ? "is a dead postmaster not yet reaped"
			           : n < 0 ? "is gone"
			                   : "is another process, not this data "
			                     "directory's postmaster");
		else
			stale = false;
	}
	free(path);
	return stale;
}

static bool not_running(const char *out)
{
	return strstr(out, "No such process") || strstr(out, "Is server running") ||
	       strstr(out, "is not running") || strstr(out, "no server running");
}

static RjResult do_stop(Rj *x, int64_t now)
{
	char pg_ctl[4096], prog[4096], t[400], how[192];
	pv_rj_prog(x, "pg_ctl", pg_ctl, sizeof pg_ctl);
	for (;;) {
		switch (x->sub) {
		case 0: {
			const char *av[] = {"env", "LC_ALL=C", pg_ctl, "status",
			                    "-D",  x->pgdata,  NULL};
			if (!pv_rj_run(x, now, NULL, av, NULL, 30000))
				return RJ_FAIL;
			x->sub = 1;
			return RJ_WAIT;
		}
		case 1: {
			int e = pv_hostcmd_exit(x->cmd);
			pv_rj_cmd_tail(x->cmd, t, sizeof t);
			if (e == 3) {
				pv_rj_note(x, "not running");
				x->sub = 4;
				continue;
			}
			if (e == 4) {
				/* gone (a base backup that failed removes its copy): a fresh one */
				x->no_pgdata = true;
				pv_rj_note(
				    x, "no data directory at %s (%s): it gets a fresh base backup",
				    x->pgdata, t);
				x->sub = 6;
				continue;
			}
			if (e != 0) {
				pv_hostcmd_describe(x->cmd, how, sizeof how);
				return pv_rj_fail(x, "pg_ctl status: %s: %s", how, t);
			}
			if (!x->host.remote && stale_pidfile(x)) {
				x->sub = 4;
				continue;
			}
			char secs[16];
			snprintf(secs, sizeof secs, "%d", PV_REJOIN_STOP_TIMEOUT_S);
			const char *av[] = {"env", "LC_ALL=C", pg_ctl, "stop", "-D", x->pgdata,
			                    "-m",  "fast",     "-w",   "-t",   secs, NULL};
			if (!pv_rj_run(x, now, NULL, av, NULL,
			               PV_REJOIN_STOP_TIMEOUT_S * 1000 + 10000))
				return RJ_FAIL;
			x->sub = 2;
			return RJ_WAIT;
		}
		case 2: {
			if (pv_hostcmd_ok(x->cmd)) {
				pv_rj_note(x, "stopped (fast)");
				x->sub = 4;
				continue;
			}
			pv_rj_cmd_tail(x->cmd, t, sizeof t);
			if (not_running(pv_hostcmd_output(x->cmd))) {
				pv_rj_note(x, "not running (%s)", t);
				x->sub = 4;
				continue;
			}
			pv_rj_note(x, "pg_ctl stop -m fast failed: %s", t);
			const char *av[] = {"env", "LC_ALL=C",  pg_ctl, "stop", "-D", x->pgdata,
			                    "-m",  "immediate", "-w",   "-t",   "30", NULL};
			if (!pv_rj_run(x, now, NULL, av, NULL, 40000))
				return RJ_FAIL;
			x->sub = 3;
			return RJ_WAIT;
		}
		case 3: {
			pv_rj_cmd_tail(x->cmd, t, sizeof t);
			if (pv_hostcmd_ok(x->cmd) || not_running(pv_hostcmd_output(x->cmd))) {
				if (pv_hostcmd_ok(x->cmd))
					pv_rj_note(x, "stopped (immediate)");
				else
					pv_rj_note(x, "not running (%s)", t);
				x->sub = 4;
				continue;
			}
			int i = pv_config_node_index(x->d->cfg, x->node);
			PvError err;
			int n = !x->host.remote && i >= 0
			            ? pv_nodectl_kill_local(x->d->cfg, i, &err)
			            : -1;
			if (n > 0) {
				pv_rj_note(x, "SIGKILLed %d process(es)", n);
				x->sub = 4;
				continue;
			}
			return pv_rj_fail(x, "the server does not stop: %s", t);
		}
		case 4: {
			pv_rj_prog(x, "pg_controldata", prog, sizeof prog);
			const char *av[] = {"env", "LC_ALL=C", prog, "-D", x->pgdata, NULL};
			if (!pv_rj_run(x, now, NULL, av, NULL, 30000))
				return RJ_FAIL;
			x->sub = 5;
			return RJ_WAIT;
		}
		case 5: {
			if (pv_hostcmd_ok(x->cmd)) {
				pv_rejoin_controldata_parse(pv_hostcmd_stdout(x->cmd), &x->cd);
				x->have_cd = true;
				pv_rj_fact_str(x, "cluster_state", x->cd.state);
				pv_rj_fact_int(x, "timeline", x->cd.timeline);
				pv_rj_fact_int(x, "wal_log_hints", x->cd.wal_log_hints);
				pv_rj_fact_int(x, "checksums", x->cd.checksums);
				if (strcmp(x->cd.state, "shut down") != 0 &&
				    strcmp(x->cd.state, "shut down in recovery") != 0)
					pv_rj_note(
					    x,
					    "not shut down cleanly (%s): pg_rewind runs crash "
					    "recovery first",
					    x->cd.state);
			} else {
				pv_rj_cmd_tail(x->cmd, t, sizeof t);
				pv_rj_note(x, "pg_controldata failed: %s", t);
			}
			x->sub = 6;
			continue;
		}
		case 6: {
			char parent[4096], key[512];
			parent_of(x->pgdata, parent, sizeof parent);
			pv_rejoin_conf_key(x->pgdata, key, sizeof key);
			const char *av[] = {"sh",      "-c",   SAVE, "pgvigil-rejoin",
			                    x->pgdata, parent, key,  NULL};
			if (!pv_rj_run(
			        x, now,
			        "save the node's *.conf files in ~/.pgvigil-rejoin on its host", av,
			        NULL, 60000))
				return RJ_FAIL;
			x->sub = 7;
			return RJ_WAIT;
		}
		default: {
			const char *o = pv_hostcmd_stdout(x->cmd);
			char v[16];
			if (!pv_hostcmd_ok(x->cmd) || !kv(o, "saved", x->saved, sizeof x->saved) ||
			    x->saved[0] != '/') {
				pv_rj_cmd_tail(x->cmd, t, sizeof t);
				x->saved[0] = '\0';
				return pv_rj_fail(
				    x, "could not save the node's configuration files: %s", t);
			}
			if (kv(o, "reused", v, sizeof v))
				pv_rj_note(
				    x,
				    "the configuration files an interrupted rejoin saved in %s are "
				    "used (those in the data directory may be the primary's)",
				    x->saved);
			x->parent_writable = kv(o, "parent_writable", v, sizeof v) && v[0] == '1';
			x->tablespaces = kv(o, "tablespaces", v, sizeof v) && v[0] == '1';
			pv_rj_fact_str(x, "saved_conf", x->saved);
			return RJ_DONE;
		}
		}
	}
}

/* ---------------------------------------------------------------- checkpoint */

static RjResult do_checkpoint(Rj *x, int64_t now)
{
	if (x->sub == 0) {
		pv_rj_sql(x, x->primary_ci,
		          "CHECKPOINT; SELECT pg_is_in_recovery(), "
		          "(SELECT timeline_id FROM pg_control_checkpoint())",
		          5 * PV_REJOIN_SQL_TIMEOUT_MS, now);
		x->sub = 1;
		return RJ_WAIT;
	}
	if (x->pg_failed || !x->res || PQntuples(x->res) != 1)
		return pv_rj_fail(x, "CHECKPOINT on %s: %s", x->primary,
		                  x->pg_failed ? x->pg_error : "no answer");
	if (strcmp(PQgetvalue(x->res, 0, 0), "t") == 0)
		return pv_rj_fail(x, "%s is in recovery: it is not a primary", x->primary);
	int tli = atoi(PQgetvalue(x->res, 0, 1));
	pv_rj_fact_int(x, "primary_timeline", tli);
	pv_rj_note(x, "%s checkpointed on timeline %d", x->primary, tli);
	return RJ_DONE;
}

/* ---------------------------------------------------------------- rewind, basebackup */

static RjResult do_rewind(Rj *x, int64_t now)
{
	char t[400], how[192];
	if (x->sub == 0) {
		char prog[4096], label[256];
		pv_rj_prog(x, "pg_rewind", prog, sizeof prog);
		char *target = pv_xasprintf("--target-pgdata=%s", x->pgdata);
		char *source = pv_xasprintf("--source-server=%s", x->source);
		const char *av[] = {"sh",       "-c", MARK,   "pgvigil-rejoin", x->saved, "env",
		                    "LC_ALL=C", prog, target, source,           "-R",     NULL};
		snprintf(label, sizeof label,
		         "pg_rewind --target-pgdata=%s --source-server=\"%s\" -R", x->pgdata,
		         x->source);
		bool ok = pv_rj_run(x, now, label, av, pwenv(x), x->backup_timeout_ms);
		free(target);
		free(source);
		if (!ok)
			return RJ_FAIL;
		x->sub = 1;
		return RJ_WAIT;
	}
	const char *out = pv_hostcmd_output(x->cmd);
	if (pv_hostcmd_ok(x->cmd)) {
		snprintf(x->method, sizeof x->method, "rewind");
		if (strstr(out, "complete crash recovery"))
			pv_rj_note(x, "crash recovery ran first");
		const char *div = strstr(out, "servers diverged at");
		if (strstr(out, "no rewind required"))
			pv_rj_note(x, "no rewind required");
		else if (div)
			pv_rj_note(x, "%.*s", (int)strcspn(div, "\n"), div);
		return RJ_DONE;
	}
	pv_rj_cmd_tail(x->cmd, t, sizeof t);
	pv_hostcmd_describe(x->cmd, how, sizeof how);
	if (!pv_rejoin_rewind_fallback(out))
		return pv_rj_fail(x,
		                  "pg_rewind: %s: %s (the primary cannot be reached or refuses: a "
		                  "base backup would fail the same way)",
		                  how, t);
	pv_rj_fail(x, "pg_rewind: %s: %s", how, t);
	pv_rj_note(x, "falling back to a fresh base backup");
	x->next = PV_REJOIN_BASEBACKUP;
	return RJ_FAIL_ON;
}

static RjResult do_basebackup(Rj *x, int64_t now)
{
	char t[400], how[192], parent[4096], label[256];
	for (;;) {
		switch (x->sub) {
		case 0: {
			parent_of(x->pgdata, parent, sizeof parent);
			if (!x->parent_writable)
				return pv_rj_fail(
				    x,
				    "no base backup: %s is not writable by the data "
				    "directory's owner, so %s cannot be moved aside or made "
				    "again (nothing moved)",
				    parent, x->pgdata);
			if (x->tablespaces)
				return pv_rj_fail(
				    x,
				    "no base backup: %s has tablespaces (pg_tblspc), which "
				    "pg_basebackup would write over; rebuild it by hand "
				    "(nothing moved)",
				    x->pgdata);
			if (x->no_pgdata) {
				pv_rj_note(x, "a fresh copy of %s", x->primary);
				x->sub = 2;
				continue;
			}
			const char *av[] = {"sh", "-c", MARK,      "pgvigil-rejoin", x->saved,
			                    "mv", "-T", x->pgdata, x->aside,         NULL};
			snprintf(label, sizeof label, "mv -T %.120s %.120s", x->pgdata, x->aside);
			if (!pv_rj_run(x, now, label, av, NULL, 300000))
				return RJ_FAIL;
			x->sub = 1;
			return RJ_WAIT;
		}
		case 1:
			if (!pv_hostcmd_ok(x->cmd)) {
				pv_rj_cmd_tail(x->cmd, t, sizeof t);
				return pv_rj_fail(x, "could not move %s aside: %s", x->pgdata, t);
			}
			x->moved = true;
			pv_rj_note(x, "the old data directory is kept at %s", x->aside);
			pv_rj_fact_str(x, "moved_aside_to", x->aside);
			x->sub = 2;
			continue;
		case 2: {
			char prog[4096];
			pv_rj_prog(x, "pg_basebackup", prog, sizeof prog);
			const char *av[] = {"sh",     "-c",      MARK,       "pgvigil-rejoin",
			                    x->saved, "env",     "LC_ALL=C", prog,
			                    "-D",     x->pgdata, "-d",       x->source,
			                    "-X",     "stream",  "-c",       "fast",
			                    "-R",     "-w",      NULL};
			snprintf(label, sizeof label,
			         "pg_basebackup -D %s -d \"%s\" -X stream -c fast -R -w", x->pgdata,
			         x->source);
			if (!pv_rj_run(x, now, label, av, pwenv(x), x->backup_timeout_ms))
				return RJ_FAIL;
			x->sub = 3;
			return RJ_WAIT;
		}
		default:
			if (!pv_hostcmd_ok(x->cmd)) {
				pv_rj_cmd_tail(x->cmd, t, sizeof t);
				pv_hostcmd_describe(x->cmd, how, sizeof how);
				if (x->moved)
					return pv_rj_fail(
					    x,
					    "pg_basebackup: %s: %s (the old data directory is "
					    "at %s; run the rejoin again once the cause is "
					    "fixed)",
					    how, t, x->aside);
				return pv_rj_fail(x, "pg_basebackup: %s: %s", how, t);
			}
			snprintf(x->method, sizeof x->method, "basebackup");
			return RJ_DONE;
		}
	}
}

RjResult (*const pv_rj_steps[PV_REJOIN_NSTEPS])(Rj *x, int64_t now) = {
    do_stop,        do_checkpoint,   do_rewind, do_basebackup, pv_rj_do_configure,
    pv_rj_do_start, pv_rj_do_verify,
};

void pv_rj_begin_detail(Rj *x, PvRejoinStep step, PvJson *j)
{
	char *log;
	switch (step) {
	case PV_REJOIN_STOP:
		pv_json_str(j, "pgdata", x->pgdata);
		pv_json_str(j, "where", x->where);
		break;
	case PV_REJOIN_CHECKPOINT:
		pv_json_str(j, "primary", x->primary);
		break;
	case PV_REJOIN_REWIND:
		pv_json_str(j, "source", x->source);
		break;
	case PV_REJOIN_BASEBACKUP:
		pv_json_str(j, "source", x->source);
		pv_json_str(j, "move_aside_to", x->aside[0] ? x->aside : NULL);
		break;
	case PV_REJOIN_START:
		log = pv_xasprintf("%s/%s", x->pgdata, PV_REJOIN_START_LOG);
		pv_json_str(j, "log", log);
		free(log);
		break;
	case PV_REJOIN_VERIFY:
		pv_json_str(j, "primary", x->primary);
		pv_json_str(j, "host", x->primary_host);
		pv_json_int(j, "port", x->primary_port);
		pv_json_int(j, "timeout_ms", PV_REJOIN_VERIFY_TIMEOUT_MS);
		break;
	default:
		break;
	}
}
