/*
 * hostcmd: one command on a node's host, locally or over ssh, never blocking the loop beyond
 * the node's ssh.timeout_ms (see hostcmd.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/hostcmd.h"
#include "io/proc.h"

#define POLL_EVERY_MS 500
#define REMOTE_GRACE_MS 30000 /* past the remote timeout(1): give up polling */
#define NOT_DONE 75
#define GONE 76

/* Starts "$@" detached under timeout(1), prints the name its files start with ($0: the tag).
 * FILE.pid holds timeout's pid while it runs. */
static const char LAUNCH[] =
    "s=$1; shift\n"
    "f=$(mktemp \"${TMPDIR:-/tmp}/$0.XXXXXX\") || exit 1\n"
    "(cd / && { timeout -k 5 \"$s\" \"$@\" >\"$f.out\" 2>\"$f.err\" </dev/null & "
    "echo $! >\"$f.pid\"; wait $!; echo $? >\"$f.rc.tmp\" && mv \"$f.rc.tmp\" \"$f.rc\"; }) "
    ">/dev/null 2>&1 </dev/null &\n"
    "echo \"$f\"\n";
/* Not done: exit 75, no output.  Done: its exit status on the first line, then its stdout;
 * its stderr on stderr; the files removed.  Gone without an exit status (killed with the
 * shell that waited for it, the host restarted): exit 76, a line on stderr, files removed. */
static const char POLL[] =
    "f=$1\n"
    "if [ ! -f \"$f.rc\" ]; then\n"
    "  p=$(cat \"$f.pid\" 2>/dev/null)\n"
    "  { [ -z \"$p\" ] || kill -0 \"$p\" 2>/dev/null; } && exit 75\n"
    "  sleep 1; [ -f \"$f.rc\" ] || { echo \"the command (pid $p) is gone without an exit "
    "status\" >&2; cat \"$f.err\" >&2 2>/dev/null; rm -f \"$f\" \"$f.out\" \"$f.err\" "
    "\"$f.pid\" \"$f.rc.tmp\"; exit 76; }\n"
    "fi\n"
    "cat \"$f.rc\"; cat \"$f.out\"; cat \"$f.err\" >&2\n"
    "rm -f \"$f\" \"$f.rc\" \"$f.out\" \"$f.err\" \"$f.pid\"\n";
/* SIGTERM to timeout(1) if it still runs; waits (5 s at most) for its exit status; files gone. */
static const char STOP[] =
    "f=$1\n"
    "[ -f \"$f.rc\" ] || { p=$(cat \"$f.pid\" 2>/dev/null) && [ -n \"$p\" ] && kill -TERM \"$p\" "
    "2>/dev/null; }\n"
    "i=0; while [ ! -f \"$f.rc\" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done\n"
    "rm -f \"$f\" \"$f.rc\" \"$f.rc.tmp\" \"$f.out\" \"$f.err\" \"$f.pid\"\n";

struct PvHostCmd {
	PvProc *proc; /* local */
	PvSsh *ssh;   /* remote (not owned) */
	int ssh_timeout_ms;
	char remote[512];
	const char *tag;
	int64_t start_ms, end_ms, deadline_ms, next_poll_ms;
	bool done, timed_out;
	int poll_failures; /* consecutive polls the host did not answer: the next waits longer */
	int exit_status;
	char error[512];
	PvBuf out, err, both;
};

void pv_hostcmd_cloexec_all(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int self = dirfd(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end || fd <= 2 || fd == self)
			continue;
		int fl = fcntl((int)fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC))
			fcntl((int)fd, F_SETFD, fl | FD_CLOEXEC);
	}
	closedir(d);
}

static PvStatus start_local(const PvHost *h, const char *const *argv, const char *const *env,
                            int timeout_ms, int64_t now, PvHostCmd *c, PvError *err)
{
	const char *envv[16];
	int n = 0;
	char *home = h->home[0] ? pv_xasprintf("HOME=%s", h->home) : NULL;
	if (home)
		envv[n++] = home;
	for (int i = 0; env && env[i] && n < 15; i++)
		envv[n++] = env[i];
	envv[n] = NULL;
	PvProcSpec spec = {
	    .argv = argv,
	    .env = envv,
	    .cwd = "/",
	    .uid = h->uid,
	    .gid = h->gid,
	    .drop_privileges = h->drop,
	    .timeout_ms = timeout_ms,
	};
	pv_hostcmd_cloexec_all();
	PvStatus st = pv_proc_start(&spec, now, &c->proc, err);
	free(home);
	return st;
}

static PvStatus start_remote(const PvHost *h, const char *const *argv, int timeout_ms, int64_t now,
                             PvHostCmd *c, PvError *err)
{
	const char *av[40];
	char secs[16];
	int n = 0;
	snprintf(secs, sizeof secs, "%d", (timeout_ms + 999) / 1000);
	av[n++] = "sh";
	av[n++] = "-c";
	av[n++] = LAUNCH;
	av[n++] = h->tag ? h->tag : "pgvigil-rejoin";
	av[n++] = secs;
	for (int i = 0; argv[i] && n < 39; i++)
		av[n++] = argv[i];
	av[n] = NULL;
	PvSshResult r;
	PvStatus st = pv_ssh_run(h->ssh, av, h->ssh_timeout_ms, &r, err);
	if (st == PV_OK && !pv_ssh_result_ok(&r)) {
		char how[64];
		pv_ssh_result_describe(&r, how, sizeof how);
		st = pv_error_set(err, PV_ERR_IO, "%s: starting the command: %s: %.300s",
		                  pv_ssh_name(h->ssh), how, r.err.data ? r.err.data : "");
	}
	if (st == PV_OK) {
		const char *o = r.out.data ? r.out.data : "";
		size_t len = strcspn(o, "\n");
		if (o[0] != '/' || len == 0 || len >= sizeof c->remote)
			st = pv_error_set(err, PV_ERR_PROTOCOL,
			                  "%s: unexpected answer from mktemp: %.100s",
			                  pv_ssh_name(h->ssh), o);
		else
			snprintf(c->remote, sizeof c->remote, "%.*s", (int)len, o);
	}
	pv_ssh_result_free(&r);
	if (st != PV_OK)
		return st;
	c->ssh = h->ssh;
	c->ssh_timeout_ms = h->ssh_timeout_ms;
	c->tag = h->tag ? h->tag : "pgvigil-rejoin";
	c->deadline_ms = now + timeout_ms + REMOTE_GRACE_MS;
	c->next_poll_ms = now + 200;
	return PV_OK;
}

PvStatus pv_hostcmd_start(const PvHost *h, const char *const *argv, const char *const *env,
                          int timeout_ms, int64_t now, PvHostCmd **out, PvError *err)
{
	PvHostCmd *c = pv_xcalloc(1, sizeof *c);
	c->start_ms = now;
	PvStatus st = h->remote ? start_remote(h, argv, timeout_ms, now, c, err)
	                        : start_local(h, argv, env, timeout_ms, now, c, err);
	if (st != PV_OK) {
		pv_hostcmd_free(c);
		*out = NULL;
		return st;
	}
	*out = c;
	return PV_OK;
}

void pv_hostcmd_free(PvHostCmd *c)
{
	if (!c)
		return;
	pv_proc_free(c->proc);
	pv_buf_free(&c->out);
	pv_buf_free(&c->err);
	pv_buf_free(&c->both);
	free(c);
}

int pv_hostcmd_pollfds(const PvHostCmd *c, struct pollfd *fds, int max)
{
	return c->proc && !c->done ? pv_proc_pollfds(c->proc, fds, max) : 0;
}

int pv_hostcmd_timeout(const PvHostCmd *c, int64_t now)
{
	if (c->done)
		return -1;
	if (c->proc)
		return pv_proc_timeout(c->proc, now);
	return c->next_poll_ms > now ? (int)(c->next_poll_ms - now) : 0;
}

static void finish(PvHostCmd *c, int64_t now)
{
	c->done = true;
	c->end_ms = now;
}

static void poll_remote(PvHostCmd *c, int64_t now)
{
	if (now < c->next_poll_ms)
		return;
	const char *av[] = {"sh", "-c", POLL, c->tag, c->remote, NULL};
	PvSshResult r;
	PvError err;
	PvStatus st = pv_ssh_run(c->ssh, av, c->ssh_timeout_ms, &r, &err);
	bool answered = st == PV_OK && (pv_ssh_result_ok(&r) || r.exit_status == NOT_DONE ||
	                                r.exit_status == GONE);
	if (st == PV_OK && r.exit_status == NOT_DONE && !r.exit_signal[0] && r.out.len == 0) {
		/* still running */
		c->error[0] = '\0';
	} else if (st == PV_OK && r.exit_status == GONE && !r.exit_signal[0]) {
		c->exit_status = -1;
		pv_buf_append(&c->err, r.err.data ? r.err.data : "", r.err.len);
		snprintf(c->error, sizeof c->error, "%.*s",
		         (int)strcspn(pv_hostcmd_stderr(c), "\n"), pv_hostcmd_stderr(c));
		finish(c, now);
	} else if (st == PV_OK && pv_ssh_result_ok(&r)) {
		const char *o = r.out.data ? r.out.data : "";
		size_t first = strcspn(o, "\n");
		c->exit_status = atoi(o);
		if (c->exit_status == 124) {
			c->timed_out = true;
			c->exit_status = -1;
		}
		const char *rest = o[first] ? o + first + 1 : o + first;
		c->error[0] = '\0';
		pv_buf_puts(&c->out, rest);
		pv_buf_append(&c->err, r.err.data ? r.err.data : "", r.err.len);
		finish(c, now);
	} else if (st == PV_OK) {
		char how[64];
		pv_ssh_result_describe(&r, how, sizeof how);
		snprintf(c->error, sizeof c->error, "ssh: polling the command: %s: %.300s", how,
		         r.err.data ? r.err.data : "");
	} else {
		snprintf(c->error, sizeof c->error, "ssh: %.490s", err.msg);
	}
	int64_t after = now + (r.duration_ms > 0 ? r.duration_ms : 0); /* the call took a while */
	pv_ssh_result_free(&r);
	if (!c->done && after >= c->deadline_ms) {
		c->timed_out = true;
		c->exit_status = -1;
		finish(c, after);
	}
	/* a host that does not answer is asked less and less often (each try may hold the
	 * daemon's loop up to ssh.timeout_ms): 1, 2, 4 ... 30 s */
	c->poll_failures = answered ? 0 : c->poll_failures + 1;
	int64_t wait = POLL_EVERY_MS;
	if (c->poll_failures > 0)
		wait = c->poll_failures >= 6 ? 30000 : (int64_t)POLL_EVERY_MS << c->poll_failures;
	c->next_poll_ms = after + wait;
}

bool pv_hostcmd_step(PvHostCmd *c, int64_t now)
{
	if (c->done)
		return true;
	if (c->proc) {
		if (!pv_proc_step(c->proc, now))
			return false;
		c->exit_status = pv_proc_exit_status(c->proc);
		c->timed_out = pv_proc_timed_out(c->proc);
		const PvBuf *o = pv_proc_stdout(c->proc), *e = pv_proc_stderr(c->proc);
		pv_buf_append(&c->out, o->data ? o->data : "", o->len);
		pv_buf_append(&c->err, e->data ? e->data : "", e->len);
		c->start_ms = now - pv_proc_duration_ms(c->proc);
		finish(c, now);
		pv_proc_free(c->proc);
		c->proc = NULL;
		return true;
	}
	poll_remote(c, now);
	return c->done;
}

bool pv_hostcmd_ok(const PvHostCmd *c)
{
	return c->done && !c->timed_out && c->exit_status == 0 && !c->error[0];
}

int pv_hostcmd_exit(const PvHostCmd *c)
{
	return c->timed_out ? -1 : c->exit_status;
}

const char *pv_hostcmd_stdout(const PvHostCmd *c)
{
	return c->out.data ? c->out.data : "";
}

const char *pv_hostcmd_stderr(const PvHostCmd *c)
{
	return c->err.data ? c->err.data : "";
}

const char *pv_hostcmd_output(PvHostCmd *c)
{
	pv_buf_reset(&c->both);
	pv_buf_puts(&c->both, pv_hostcmd_stdout(c));
	if (c->out.len && c->err.len && c->out.data[c->out.len - 1] != '\n')
		pv_buf_putc(&c->both, '\n');
	pv_buf_puts(&c->both, pv_hostcmd_stderr(c));
	return c->both.data ? c->both.data : "";
}

bool pv_hostcmd_timed_out(const PvHostCmd *c)
{
	return c->timed_out;
}

int64_t pv_hostcmd_duration_ms(const PvHostCmd *c)
{
	return c->end_ms - c->start_ms;
}

void pv_hostcmd_describe(const PvHostCmd *c, char *out, size_t size)
{
	if (c->timed_out && c->error[0])
		snprintf(out, size, "timed out after %lld ms (%s)",
		         (long long)(c->end_ms - c->start_ms), c->error);
	else if (c->timed_out)
		snprintf(out, size, "timed out after %lld ms",
		         (long long)(c->end_ms - c->start_ms));
	else if (c->exit_status < 0 && c->error[0])
		snprintf(out, size, "%s", c->error);
	else if (c->exit_status < 0)
		snprintf(out, size, "killed by a signal");
	else
		snprintf(out, size, "exit %d", c->exit_status);
}

bool pv_hostcmd_stop(PvHostCmd *c, char *error, size_t size)
{
	if (error && size)
		error[0] = '\0';
	if (!c || c->proc || !c->ssh || !c->remote[0] || c->done)
		return true;
	const char *av[] = {"sh", "-c", STOP, c->tag, c->remote, NULL};
	PvSshResult r;
	PvError err;
	PvStatus st = pv_ssh_run(c->ssh, av, c->ssh_timeout_ms + 6000, &r, &err);
	bool ok = st == PV_OK && pv_ssh_result_ok(&r);
	if (!ok && error) {
		char how[64];
		if (st == PV_OK)
			pv_ssh_result_describe(&r, how, sizeof how);
		snprintf(error, size, "stopping the command on the host: %s",
		         st == PV_OK ? how : err.msg);
	}
	pv_ssh_result_free(&r);
	c->done = true;
	c->timed_out = true;
	c->exit_status = -1;
	return ok;
}
