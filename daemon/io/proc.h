/*
 * proc: child processes the daemon runs without waiting for them (pg_basebackup,
 * pg_verifybackup, pg_ctl, hooks).
 *
 * A PvProc is started from an argv (no shell: no argument can inject anything), optionally
 * with extra environment entries, a working directory, and a uid/gid to drop to.  Its stdout
 * and stderr are captured (up to a cap each, the rest counted and dropped) through non-blocking
 * pipes the caller polls like any other descriptor; pv_proc_step() reads them and reaps the
 * child.  Past its deadline the child gets SIGTERM, then SIGKILL two seconds later.
 * pv_proc_run() is the blocking form for the CLI and for short actions.
 */
#ifndef PV_IO_PROC_H
#define PV_IO_PROC_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/error.h"

#define PV_PROC_OUTPUT_CAP (256 * 1024)

typedef struct {
	const char *const *argv; /* argv[0] is the program; PATH is searched */
	const char *const *env;  /* extra "NAME=value" entries (NULL-terminated), or NULL */
	const char *cwd;         /* NULL: inherit */
	uid_t uid;               /* with drop_privileges: switch to uid/gid before exec */
	gid_t gid;
	bool drop_privileges;
	int timeout_ms;          /* <= 0: none */
	int stdin_fd;            /* > 0: the child's stdin (the caller closes its copy); 0: /dev/null */
} PvProcSpec;

typedef struct PvProc PvProc;

PvStatus pv_proc_start(const PvProcSpec *spec, int64_t now_ms, PvProc **out, PvError *err) PV_MUSTCHECK;
/* Kills (SIGKILL) a child still running, reaps it, frees everything.  NULL ok. */
void pv_proc_free(PvProc *p);

/* Up to 2 pollfds (its open pipes). */
int pv_proc_pollfds(const PvProc *p, struct pollfd *fds, int max);
/* ms until its deadline or kill needs attention, -1 for none; 0 after exit not yet reaped. */
int pv_proc_timeout(const PvProc *p, int64_t now_ms);
/* Reads output, enforces the deadline, reaps.  Returns true once the child has exited. */
bool pv_proc_step(PvProc *p, int64_t now_ms);

bool pv_proc_done(const PvProc *p);
pid_t pv_proc_pid(const PvProc *p);
/* After done: exit status (0-255), or -1 if killed by a signal. */
int pv_proc_exit_status(const PvProc *p);
int pv_proc_signal(const PvProc *p); /* the killing signal, 0 if none */
bool pv_proc_timed_out(const PvProc *p);
const PvBuf *pv_proc_stdout(const PvProc *p);
const PvBuf *pv_proc_stderr(const PvProc *p);
int64_t pv_proc_duration_ms(const PvProc *p);
/* "exit 0", "exit 3", "killed by SIGKILL after the 5000 ms deadline" */
void pv_proc_describe(const PvProc *p, char *out, size_t size);

/* Blocking: steps a started child until it has exited (or its deadline killed it). */
void pv_proc_wait(PvProc *p);
/* Blocking: start, wait for exit (or deadline), return the finished PvProc in *out. */
PvStatus pv_proc_run(const PvProcSpec *spec, PvProc **out, PvError *err) PV_MUSTCHECK;

#endif
