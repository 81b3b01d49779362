/*
 * nodectl: runs a PostgreSQL server command (pg_ctl) on a node's host.  A node with an `ssh`
 * group is remote: the command goes through io/ssh (argv quoted, host key verified).  A node
 * without one is on pgvigil's own host: the command runs through io/proc as the owner of its
 * data directory (PostgreSQL refuses to run as root).  Either way the caller gets one result
 * shape and a deadline that holds.  Needs cluster.nodes.pgdata; cluster.nodes.pg_bin names
 * where pg_ctl lives ("" : the PATH).
 */
#ifndef PV_ACT_NODECTL_H
#define PV_ACT_NODECTL_H

#include <stdbool.h>

#include "common/buf.h"
#include "config/config.h"

typedef struct {
	bool ran;          /* the command started and ended (exit status below) */
	int exit_status;   /* -1: killed by a signal */
	bool timed_out;
	char where[160];   /* "local as uid 101" or "ssh postgres@host:22" */
	PvBuf out;         /* stdout then stderr, capped */
} PvNodeCmdResult;

/* True when nodectl can act on node (pgdata is known). */
bool pv_nodectl_possible(const PvConfig *cfg, int node);
/*
 * Runs pg_ctl with args (NULL-terminated, e.g. {"stop", "-m", "immediate", NULL}); "-D pgdata"
 * is added.  PV_OK when the command ran (whatever its exit status): see res.
 */
PvStatus pv_nodectl_pg_ctl(const PvConfig *cfg, int node, const char *const *args, int timeout_ms,
                           PvNodeCmdResult *res, PvError *err) PV_MUSTCHECK;
void pv_nodectl_result_free(PvNodeCmdResult *res);

/*
 * Local nodes only: SIGKILL the postmaster named in pgdata/postmaster.pid and all its children
 * (a frozen server cannot act on pg_ctl's signals; SIGKILL needs no cooperation).  Returns how
 * many processes were signalled, -1 when there is no running postmaster to kill.
 */
int pv_nodectl_kill_local(const PvConfig *cfg, int node, PvError *err);

#endif
