/*
 * error: the one error idiom of pgvigil.
 *
 * Fallible functions return a PvStatus and fill a caller-provided PvError with a one-line,
 * lowercase message (no final period).  Context is added on the way up with
 * pv_error_prefix(): "pgvigil.conf:14: cluster.nodes[1].conninfo: missing host".
 * The status list is an X-macro: code, name, process exit status.
 */
#ifndef PV_COMMON_ERROR_H
#define PV_COMMON_ERROR_H

#include <stddef.h>

#define PV_MUSTCHECK __attribute__((warn_unused_result))
#define PV_PRINTF(a, b) __attribute__((format(printf, a, b)))

#define PV_STATUS_LIST(X)                 \
	X(PV_OK, "ok", 0)                     \
	X(PV_ERR_USAGE, "usage", 2)           \
	X(PV_ERR_CONFIG, "config", 2)         \
	X(PV_ERR_IO, "io", 1)                 \
	X(PV_ERR_PG, "postgres", 1)           \
	X(PV_ERR_TIMEOUT, "timeout", 1)       \
	X(PV_ERR_STATE, "state", 1)           \
	X(PV_ERR_REFUSED, "refused", 1)       \
	X(PV_ERR_NOT_FOUND, "not-found", 1)   \
	X(PV_ERR_PROTOCOL, "protocol", 1)     \
	X(PV_ERR_BUSY, "busy", 1)

typedef enum {
#define PV_X(code, name, exit) code,
	PV_STATUS_LIST(PV_X)
#undef PV_X
	PV_STATUS_COUNT
} PvStatus;

typedef struct {
	PvStatus code;
	char msg[1024];
} PvError;

const char *pv_status_name(PvStatus s);
int pv_status_exit(PvStatus s);

/* Sets err (may be NULL) and returns code, so callers can `return pv_error_set(...)`. */
PvStatus pv_error_set(PvError *err, PvStatus code, const char *fmt, ...) PV_PRINTF(3, 4);
/* Prepends "context: " to err->msg; returns err->code. */
PvStatus pv_error_prefix(PvError *err, const char *fmt, ...) PV_PRINTF(2, 3);
void pv_error_clear(PvError *err);

#endif
