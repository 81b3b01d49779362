#include "io/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"

#define PV_PROC_KILL_GRACE_MS 2000

struct PvProc {
	pid_t pid;
	int fd[2]; /* stdout, stderr read ends; -1 when closed */
	PvBuf out[2];
	size_t dropped[2];
	int64_t start_ms;
	int64_t deadline_ms; /* 0: none */
	int64_t kill_at_ms;  /* SIGKILL after SIGTERM; 0: not yet */
	bool exited;
	bool timed_out;
	int status;
	int64_t end_ms;
};

static void set_cloexec_nonblock(int fd)
{
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

PvStatus pv_proc_start(const PvProcSpec *spec, int64_t now_ms, PvProc **out, PvError *err)
{
	int po[2] = {-1, -1}, pe[2] = {-1, -1}, px[2] = {-1, -1};
	/* close-on-exec everywhere: dup2() onto 0/1/2 clears it for the child's own stdio, and
	 * nothing else of the daemon leaks into what it starts (a postmaster lives on) */
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0 || pipe2(px, O_CLOEXEC) != 0) {
		int e = errno;
		for (int i = 0; i < 2; i++) {
			if (po[i] >= 0)
				close(po[i]);
			if (pe[i] >= 0)
				close(pe[i]);
		}
		return pv_error_set(err, PV_ERR_IO, "pipe: %s", strerror(e));
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(po[0]), close(po[1]), close(pe[0]), close(pe[1]), close(px[0]), close(px[1]);
		return pv_error_set(err, PV_ERR_IO, "fork: %s", strerror(e));
	}
	if (pid == 0) {
		/* child: only async-signal-safe calls until exec */
		int code = 0;
		dup2(po[1], 1);
		dup2(pe[1], 2);
		if (spec->stdin_fd > 0) {
			dup2(spec->stdin_fd, 0);
		} else {
			int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (devnull >= 0)
				dup2(devnull, 0);
		}
		signal(SIGPIPE, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setpgid(0, 0);
		if (spec->cwd && chdir(spec->cwd) != 0)
			code = errno;
		if (!code && spec->drop_privileges &&
		    (setgroups(0, NULL) != 0 || setgid(spec->gid) != 0 || setuid(spec->uid) != 0))
			code = errno;
		if (!code) {
			for (const char *const *e = spec->env; e && *e; e++)
				putenv((char *)*e);
			execvp(spec->argv[0], (char *const *)spec->argv);
			code = errno;
		}
		if (write(px[1], &code, sizeof code) < 0) {
			/* nothing more to do */
		}
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	close(px[1]);
	int code = 0;
	ssize_t n;
	do
		n = read(px[0], &code, sizeof code);
	while (n < 0 && errno == EINTR);
	close(px[0]);
	if (n == (ssize_t)sizeof code) {
		waitpid(pid, NULL, 0);
		close(po[0]);
		close(pe[0]);
		return pv_error_set(err, PV_ERR_IO, "cannot run %s: %s", spec->argv[0], strerror(code));
	}
	PvProc *p = pv_xcalloc(1, sizeof *p);
	p->pid = pid;
	p->fd[0] = po[0];
	p->fd[1] = pe[0];
	set_cloexec_nonblock(p->fd[0]);
	set_cloexec_nonblock(p->fd[1]);
	p->start_ms = now_ms;
	p->deadline_ms = spec->timeout_ms > 0 ? now_ms + spec->timeout_ms : 0;
	*out = p;
	return PV_OK;
}

static void drain(PvProc *p, int k)
{
	char chunk[8192];
	while (p->fd[k] >= 0) {
		ssize_t n = read(p->fd[k], chunk, sizeof chunk);
		if (n > 0) {
			size_t room = p->out[k].len < PV_PROC_OUTPUT_CAP ? PV_PROC_OUTPUT_CAP - p->out[k].len : 0;
			size_t take = (size_t)n < room ? (size_t)n : room;
			pv_buf_append(&p->out[k], chunk, take);
			p->dropped[k] += (size_t)n - take;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		close(p->fd[k]); /* EOF or error */
		p->fd[k] = -1;
	}
}

bool pv_proc_step(PvProc *p, int64_t now_ms)
{
	if (p->exited && p->fd[0] < 0 && p->fd[1] < 0)
		return true;
	drain(p, 0);
	drain(p, 1);
	if (!p->exited) {
		int st;
		pid_t r = waitpid(p->pid, &st, WNOHANG);
		if (r == p->pid) {
			p->exited = true;
			p->status = st;
			p->end_ms = now_ms;
			/* the child is gone: what is left in the pipes is all there is */
			drain(p, 0);
			drain(p, 1);
		} else if (p->deadline_ms && now_ms >= p->deadline_ms && !p->kill_at_ms) {
			p->timed_out = true;
			kill(-p->pid, SIGTERM);
			kill(p->pid, SIGTERM);
			p->kill_at_ms = now_ms + PV_PROC_KILL_GRACE_MS;
		} else if (p->kill_at_ms && now_ms >= p->kill_at_ms) {
			kill(-p->pid, SIGKILL);
			kill(p->pid, SIGKILL);
		}
	}
	if (p->exited) {
		/* a grandchild may hold the pipes open: do not wait for it */
		for (int k = 0; k < 2; k++)
			if (p->fd[k] >= 0) {
				close(p->fd[k]);
				p->fd[k] = -1;
			}
	}
	return p->exited;
}

void pv_proc_free(PvProc *p)
{
	if (!p)
		return;
	if (!p->exited) {
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	for (int k = 0; k < 2; k++) {
		if (p->fd[k] >= 0)
			close(p->fd[k]);
		pv_buf_free(&p->out[k]);
	}
	free(p);
}

int pv_proc_pollfds(const PvProc *p, struct pollfd *fds, int max)
{
	int n = 0;
	for (int k = 0; k < 2 && n < max; k++)
		if (p->fd[k] >= 0) {
			fds[n].fd = p->fd[k];
			fds[n].events = POLLIN;
			fds[n++].revents = 0;
		}
	return n;
}

int pv_proc_timeout(const PvProc *p, int64_t now_ms)
{
	if (p->exited)
		return 0;
	/* SIGCHLD is not watched: look again soon, so an exit without output is reaped */
	int64_t next = now_ms + 50;
	if (p->deadline_ms && !p->kill_at_ms && p->deadline_ms < next)
		next = p->deadline_ms;
	if (p->kill_at_ms && p->kill_at_ms < next)
		next = p->kill_at_ms;
	return next > now_ms ? (int)(next - now_ms) : 0;
}

bool pv_proc_done(const PvProc *p) { return p->exited; }
pid_t pv_proc_pid(const PvProc *p) { return p->pid; }
bool pv_proc_timed_out(const PvProc *p) { return p->timed_out; }
const PvBuf *pv_proc_stdout(const PvProc *p) { return &p->out[0]; }
const PvBuf *pv_proc_stderr(const PvProc *p) { return &p->out[1]; }
int64_t pv_proc_duration_ms(const PvProc *p) { return (p->exited ? p->end_ms : pv_clock_mono_ms()) - p->start_ms; }

int pv_proc_exit_status(const PvProc *p)
{
	if (!p->exited || !WIFEXITED(p->status))
		return -1;
	return WEXITSTATUS(p->status);
}

int pv_proc_signal(const PvProc *p)
{
	return (p->exited && WIFSIGNALED(p->status)) ? WTERMSIG(p->status) : 0;
}

void pv_proc_describe(const PvProc *p, char *out, size_t size)
{
	if (!p->exited)
		snprintf(out, size, "running");
	else if (WIFEXITED(p->status))
		snprintf(out, size, "exit %d", WEXITSTATUS(p->status));
	else
		snprintf(out, size, "killed by signal %d%s", WTERMSIG(p->status),
		         p->timed_out ? " after its deadline" : "");
}

void pv_proc_wait(PvProc *p)
{
	while (!pv_proc_step(p, pv_clock_mono_ms())) {
		struct pollfd fds[2];
		int n = pv_proc_pollfds(p, fds, 2);
		int t = pv_proc_timeout(p, pv_clock_mono_ms());
		if (poll(fds, (nfds_t)n, t < 0 ? 1000 : t) < 0 && errno != EINTR)
			break;
	}
}

PvStatus pv_proc_run(const PvProcSpec *spec, PvProc **out, PvError *err)
{
	PvProc *p = NULL;
	PvStatus st = pv_proc_start(spec, pv_clock_mono_ms(), &p, err);
	if (st != PV_OK)
		return st;
	pv_proc_wait(p);
	*out = p;
	return PV_OK;
}
