/*
 * pgcmd: what a PostgreSQL client program (pg_basebackup, a backup tool) is given to connect
 * with.  A password never goes on a command line, where every user can read it in ps: it is
 * taken out of the connection string and handed over in PGPASSWORD, in the child's
 * environment, which only its own user and root can read.
 */
#ifndef PV_IO_PGCMD_H
#define PV_IO_PGCMD_H

#include "common/error.h"

/*
 * conninfo (key=value or URI form) as a key='value' string without password, with
 * application_name set to appname (when not NULL) and the password, if it had one, in
 * *password (NULL otherwise).  Both malloc'd.
 */
PvStatus pv_pgcmd_conninfo(const char *conninfo, const char *appname, char **out, char **password,
                           PvError *err) PV_MUSTCHECK;

#endif
