/*
 * hostcmd: one command on a node's host, as the owner of its data, without blocking the
 * daemon's loop: locally through io/proc, or over ssh (io/ssh).  Rejoin and backups (on
 * backup.host) run their programs through it.
 *
 * A local command is an io/proc child (uid/gid dropped to the data directory's owner, HOME
 * set to the owner's home, so ~/.pgpass works).  An ssh command is started detached on the
 * host, under timeout(1) there, its output and exit status going to files of a mktemp(1) name
 * (TMPDIR/TAG.XXXXXX) that later short ssh calls poll (every 500 ms) and collect; each ssh call
 * blocks the loop at most the node's ssh.timeout_ms.  A transport failure while polling is
 * retried until the command's deadline, less often each time (1, 2, 4 ... 30 s), since each try
 * may hold the loop for ssh.timeout_ms.  A remote command can be stopped (SIGTERM to timeout(1),
 * which passes it on), its files then removed by the stop itself.
 */
#ifndef PV_ACT_HOSTCMD_H
#define PV_ACT_HOSTCMD_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "io/ssh.h"

typedef struct {
	bool remote; /* over ssh (ssh below), else local */
	PvSsh *ssh;  /* remote: the node's session, kept for every command of a rejoin */
	int ssh_timeout_ms;
	uid_t uid; /* local: the data directory's owner */
	gid_t gid;
	bool drop;       /* local: switch to uid/gid (the daemon runs as root) */
	char home[256];  /* local: the owner's home directory */
	const char *tag; /* remote: what its temporary files are called; NULL: "pgvigil-rejoin" */
} PvHost;

typedef struct PvHostCmd PvHostCmd;

/*
 * Starts argv (argv[0] the program, searched in PATH) on the host; env ("NAME=value",
 * NULL-terminated, may be NULL) is for a local command only.  Over ssh the start itself is
 * one ssh call.
 */
PvStatus pv_hostcmd_start(const PvHost *h, const char *const *argv, const char *const *env,
                          int timeout_ms, int64_t now_ms, PvHostCmd **out,
                          PvError *err) PV_MUSTCHECK;
void pv_hostcmd_free(PvHostCmd *c);
int pv_hostcmd_pollfds(const PvHostCmd *c, struct pollfd *fds, int max);
/* ms until it needs attention, -1 none. */
int pv_hostcmd_timeout(const PvHostCmd *c, int64_t now_ms);
/* Advances; true once the command is over (exit status and output below). */
bool pv_hostcmd_step(PvHostCmd *c, int64_t now_ms);

/* After it is over: */
bool pv_hostcmd_ok(const PvHostCmd *c);  /* exit 0 */
int pv_hostcmd_exit(const PvHostCmd *c); /* 0-255; -1: signal, deadline or transport */
const char *pv_hostcmd_stdout(const PvHostCmd *c);
const char *pv_hostcmd_stderr(const PvHostCmd *c);
/* stdout then stderr */
const char *pv_hostcmd_output(PvHostCmd *c);
int64_t pv_hostcmd_duration_ms(const PvHostCmd *c);
/* It ran past its deadline (or could no longer be polled until then). */
bool pv_hostcmd_timed_out(const PvHostCmd *c);
/* "exit 0", "exit 1", "timed out after 60000 ms", "ssh: HOST:PORT: ..." */
void pv_hostcmd_describe(const PvHostCmd *c, char *out, size_t size);

/* Marks every descriptor of this process above 2 close-on-exec (a server started by a
 * command must not inherit the daemon's files and sockets). */
void pv_hostcmd_cloexec_all(void);
/*
 * A remote command still running: SIGTERM to it (through timeout(1)) and its files removed on
 * the host, in one ssh call (best effort: false with a message when that call failed).  A local
 * one is killed by pv_hostcmd_free().
 */
bool pv_hostcmd_stop(PvHostCmd *c, char *error, size_t size);

#endif
