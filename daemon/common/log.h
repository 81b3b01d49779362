/*
 * log: the operator-facing text log (the journal is the record; this is the narration).
 * One line per message: "TIME LEVEL: message", to stderr or an append-only file.
 * Callers never log secrets: conninfo strings are redacted when the config is loaded.
 */
#ifndef PV_COMMON_LOG_H
#define PV_COMMON_LOG_H

#include "common/error.h"

typedef enum { PV_LOG_DEBUG, PV_LOG_INFO, PV_LOG_WARNING, PV_LOG_ERROR } PvLogLevel;

const char *pv_log_level_name(PvLogLevel l);
/* Returns -1 for an unknown name. */
int pv_log_level_parse(const char *name);

/* path NULL or "" logs to stderr.  Reopening is how SIGHUP rotates. */
PvStatus pv_log_open(const char *path, PvLogLevel level, PvError *err) PV_MUSTCHECK;
void pv_log_close(void);
void pv_log(PvLogLevel level, const char *fmt, ...) PV_PRINTF(2, 3);

#define pv_debug(...) pv_log(PV_LOG_DEBUG, __VA_ARGS__)
#define pv_info(...) pv_log(PV_LOG_INFO, __VA_ARGS__)
#define pv_warn(...) pv_log(PV_LOG_WARNING, __VA_ARGS__)
#define pv_error(...) pv_log(PV_LOG_ERROR, __VA_ARGS__)

#endif
