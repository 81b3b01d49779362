/*
 * rejoin: `pgvigil rejoin NODE` turns a node that is not the current primary (typically the
 * old primary after a failover) into a streaming standby of the current primary.  pgvigild
 * does the work, as a PvExtension (pgvigild/extension.h) with the control verb "rejoin",
 * answered when the rejoin is done or failed.
 *
 * Steps, each journaled begin/end as rejoin-step (detail.step), the whole as rejoin:
 *   stop        pg_ctl status; pg_ctl stop -m fast, then -m immediate (a local server that
 *               still runs is SIGKILLed); "not running" is fine.  A stale postmaster.pid (a
 *               crash) is left to PostgreSQL, or removed when its pid is not this data
 *               directory's postmaster.  Then pg_controldata (state, timeline, wal_log_hints,
 *               checksums) and a copy of the node's own *.conf files in ~/.pgvigil-rejoin/KEY
 *               on its host: pg_rewind and pg_basebackup copy the source's postgresql.conf,
 *               postgresql.auto.conf, pg_hba.conf (its port, its primary_conninfo and
 *               primary_slot_name).  The copy is marked before pg_rewind or pg_basebackup
 *               begins; a marked copy, left by an interrupted rejoin, is used again as it is
 *   checkpoint  CHECKPOINT on the primary, so its control file shows the new timeline
 *   rewind      pg_rewind --target-pgdata --source-server -R (crash recovery included);
 *               skipped when pg_controldata shows neither wal_log_hints nor checksums, or
 *               when there is no data directory.  A failure that is not a connection
 *               problem falls back to:
 *   basebackup  the data directory moved aside to PGDATA.pgvigil-old-<UTC time> (never
 *               deleted), then pg_basebackup -X stream -c fast -R into PGDATA
 *   configure   the saved *.conf files back; standby.signal; postgresql.auto.conf rewritten:
 *               every primary_conninfo and primary_slot_name line replaced by one
 *               primary_conninfo retargeted at the primary (the format a streaming standby
 *               uses, else the primary's conninfo from the configuration) with
 *               application_name = NODE, and the node's own primary_slot_name if it had one
 *               (the slot is created on the primary)
 *   start       pg_ctl start -w (log: PGDATA/pgvigil-start.log)
 *   verify      pg_stat_wal_receiver streaming from the primary's host and port, in recovery;
 *               then the node's `failed` mark (a former primary) is cleared: it may be a
 *               failover candidate again
 *
 * Commands run on the node's host as the owner of its data directory: locally through io/proc
 * (never blocking the loop), or over ssh (io/ssh) started detached on the host and polled, each
 * ssh call bounded by the node's ssh.timeout_ms.  No password is ever on a command line: a
 * local command gets it in PGPASSWORD; over ssh the host's ~/.pgpass must hold it.
 * Refused, nothing done: the current primary, an unknown node, a node without pgdata, no known
 * primary, an open incident, another rejoin running.
 */
#ifndef PV_ACT_REJOIN_H
#define PV_ACT_REJOIN_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"
#include "pgvigild/extension.h"

extern const PvExtension pv_rejoin_extension;

typedef enum {
	PV_REJOIN_STOP,
	PV_REJOIN_CHECKPOINT,
	PV_REJOIN_REWIND,
	PV_REJOIN_BASEBACKUP,
	PV_REJOIN_CONFIGURE,
	PV_REJOIN_START,
	PV_REJOIN_VERIFY,
	PV_REJOIN_NSTEPS
} PvRejoinStep;

/* "stop", "checkpoint", ... "verify" */
const char *pv_rejoin_step_name(PvRejoinStep s);

/* Deadlines (ms) of the steps that have no setting of their own. */
#define PV_REJOIN_STOP_TIMEOUT_S 60
#define PV_REJOIN_START_TIMEOUT_S 300
#define PV_REJOIN_SQL_TIMEOUT_MS 60000
#define PV_REJOIN_VERIFY_TIMEOUT_MS 60000
#define PV_REJOIN_START_LOG "pgvigil-start.log"

/* ---- pure helpers (unit-tested) ---- */

/*
 * The value of the last line setting key (case-insensitive) in a postgresql.conf-style text,
 * quotes removed and '' or \x unescaped, into out.  False when no line sets it.
 */
bool pv_rejoin_conf_get(const char *text, const char *key, char *out, size_t size);
/* Appends value as a postgresql.conf string literal: 'it''s', backslashes doubled. */
void pv_rejoin_conf_quote(PvBuf *b, const char *value);
/*
 * postgresql.auto.conf for the rejoined node: text without any line that sets
 * primary_conninfo, primary_slot_name or one of drop (NULL-terminated, may be NULL), then
 * "primary_conninfo = '...'" and, when slot is not empty, "primary_slot_name = '...'".
 * Comments and every other line are kept as they are.
 */
void pv_rejoin_autoconf_rewrite(const char *text, const char *const *drop,
                                const char *primary_conninfo, const char *slot, PvBuf *out);

typedef struct {
	char state[64];    /* "shut down", "in production", ...; "" unknown */
	int timeline;      /* latest checkpoint's; 0 unknown */
	int wal_log_hints; /* 1 on, 0 off, -1 unknown */
	int checksums;     /* data page checksum version; -1 unknown */
} PvControlData;

/* Parses pg_controldata output (LC_ALL=C). */
void pv_rejoin_controldata_parse(const char *text, PvControlData *cd);
/* False (with why) when the control data shows pg_rewind cannot work: no hints, no checksums. */
bool pv_rejoin_rewind_possible(const PvControlData *cd, char *why, size_t size);
/*
 * After pg_rewind failed with output: true when a fresh base backup may do better; false for
 * a problem the base backup would meet too (the source cannot be reached or refuses us).
 */
bool pv_rejoin_rewind_fallback(const char *output);
/* "PGDATA.pgvigil-old-YYYYMMDDTHHMMSSZ" (trailing slashes of pgdata dropped). */
void pv_rejoin_aside_path(const char *pgdata, int64_t wall_us, char *out, size_t size);
/* The name of a data directory's saved configuration: pgdata with every character but
 * [A-Za-z0-9._-] as '_' ("/var/lib/pg/main" -> "_var_lib_pg_main"). */
void pv_rejoin_conf_key(const char *pgdata, char *out, size_t size);
/* The last n lines of text on one line (newlines and tabs as spaces), for an error message. */
void pv_rejoin_tail(const char *text, int n, char *out, size_t size);

typedef struct {
	const char *node;
	const char *pgdata;
	const char *where; /* "local as uid 101" / "ssh postgres@host:22" */
	const char *primary;
	const char *source;           /* pg_rewind/pg_basebackup conninfo, password-free */
	const char *primary_conninfo; /* for postgresql.auto.conf, redacted */
	const char *primary_host;
	int primary_port;
	const char *aside; /* the basebackup fallback's PGDATA.pgvigil-old-... */
} PvRejoinPlanIn;

/* The steps in words, one line each ("stop: ..."), for --dry-run. */
void pv_rejoin_plan(const PvRejoinPlanIn *in, PvBuf *lines);

/*
 * primary_conninfo for node: base (a standby's primary_conninfo, or the primary's conninfo
 * from the configuration) with host and port set to the primary's, application_name = node,
 * and dbname dropped; its password kept when keep_password, else dropped (*dropped says so).
 * key='value' form, malloc'd.
 */
PvStatus pv_rejoin_primary_conninfo(const char *base, const char *host, int port, const char *node,
                                    bool keep_password, char **out, bool *dropped,
                                    PvError *err) PV_MUSTCHECK;

#endif
