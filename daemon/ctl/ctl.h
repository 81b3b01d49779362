/*
 * ctl: the control socket between pgvigil (client) and pgvigild (server).
 *
 * A Unix stream socket, mode 0600.  One request line, one response line, each a JSON object.
 * The server checks the peer's credentials (SO_PEERCRED): only root and the daemon's own uid
 * may talk to it.  The server side reads a request under a short deadline, so a stuck client
 * cannot hold the daemon.  Protocol (see docs/architecture.md): {"cmd":"status"},
 * {"cmd":"failover","to":NODE|null,"dry_run":BOOL,"reason":TEXT} -> {"ok":BOOL,...}.
 */
#ifndef PV_CTL_CTL_H
#define PV_CTL_CTL_H

#include <sys/types.h>

#include "common/buf.h"
#include "common/error.h"

/* Creates the socket (replacing a stale one) and listens; *fd is non-blocking. */
PvStatus pv_ctl_listen(const char *path, int *fd, PvError *err) PV_MUSTCHECK;

typedef struct {
	uid_t uid;
	pid_t pid;
	char *line; /* the request, NUL-terminated, without the newline */
	int fd;
} PvCtlRequest;

/*
 * Accepts one pending connection and reads its request line (deadline timeout_ms).
 * PV_ERR_BUSY when nothing is pending; PV_ERR_REFUSED for a peer that may not talk to us
 * (already answered and closed).
 */
PvStatus pv_ctl_accept(int listen_fd, int timeout_ms, PvCtlRequest *req, PvError *err) PV_MUSTCHECK;
/* Writes the response line and closes the request. */
void pv_ctl_respond(PvCtlRequest *req, const char *json);

/* Answers {"ok":false,"error":msg} and closes the request. */
void pv_ctl_respond_error(PvCtlRequest *req, const char *msg);

/* Client: sends one request and returns the response line (malloc'd). */
PvStatus pv_ctl_call(const char *path, const char *request_json, int timeout_ms, char **response,
                     PvError *err) PV_MUSTCHECK;

#endif
