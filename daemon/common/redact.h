/*
 * redact: hides secrets in libpq connection strings before they can reach a log, the
 * journal, or the terminal.  Both forms are handled: "key=value ..." (password=...) and URIs
 * (postgresql://user:SECRET@host/db?password=SECRET).  The result keeps everything else
 * readable; a secret becomes "********".
 */
#ifndef PV_COMMON_REDACT_H
#define PV_COMMON_REDACT_H

#define PV_REDACTED "********"

/* Returns a malloc'd copy of conninfo with every password replaced. */
char *pv_redact_conninfo(const char *conninfo);

#endif
