/*
 * restore: what the two halves of `pgvigil restore` share: cmd_restore.c (arguments, checks,
 * the copy and its settings) and cmd_restore_start.c (starting the copy and following it to
 * its target).  Not for other modules.
 */
#ifndef PV_PGVIGIL_RESTORE_H
#define PV_PGVIGIL_RESTORE_H

#include <stdbool.h>
#include <sys/types.h>

#include "io/proc.h"
#include "pgvigil/cli.h"

typedef struct {
	const char *incident, *backup, *target_lsn, *target_name, *target_time, *to, *action, *user;
	bool start;
	int port;
	int timeout_s;
} RestoreArgs;

/* whom the copy belongs to and its programs run as (drop: not when the CLI is not root) */
typedef struct {
	uid_t uid;
	gid_t gid;
	bool drop;
	char home[512];
	char *env_home;
} RunAs;

/* Runs argv (as the owner when drop) to its end; output captured. */
PvStatus pv_restore_run(const char *const *argv, const RunAs *as, int timeout_ms, PvProc **out,
                        PvError *err) PV_MUSTCHECK;
/* The first line a program printed (stderr first). */
void pv_restore_first_line(const PvProc *p, char *out, size_t size);
/* Starts the copy in a->to and follows it until it reached its target: 0, or 1 after an
 * error line (the copy then stopped). */
int pv_restore_start(PvCli *cli, const RestoreArgs *a, const RunAs *as, bool has_target);

#endif
