/*
 * config: pgvigil's configuration, loaded from a libconfig file and validated whole.
 *
 * The option table (config.c) is data: every setting's path, type, default and range lives
 * there once, and drives loading, validation, check-config output and the docs-sync test.
 * Loading never stops at the first problem: every error is collected as
 * "FILE:LINE: setting: problem" and the load fails if there is any.  A PvConfig is immutable
 * once loaded; reload builds a fresh one and swaps it only if it is valid.
 * Secrets are redacted once, here: each conninfo has a *_redacted twin for display.
 */
#ifndef PV_CONFIG_CONFIG_H
#define PV_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"

#define PV_MAX_NODES 32
#define PV_MAX_POOLER_DBS 64
#define PV_NAME_MAX 64

typedef enum { PV_FAILOVER_AUTOMATIC, PV_FAILOVER_MANUAL } PvFailoverMode;
typedef enum { PV_BACKUP_PG_BASEBACKUP, PV_BACKUP_COMMAND } PvBackupMethod;

/* How pgvigil reaches a node's host over SSH (io/ssh.h); the group is optional. */
typedef struct {
	bool enabled;      /* false when the node has no ssh group */
	char *host;        /* as written in known_hosts */
	int port;
	char *user;
	char *key;         /* private key file; "": the ssh-agent */
	char *passphrase;  /* of the key; "": none.  A secret: never print or log */
	char *known_hosts;
	int timeout_ms;    /* deadline for connecting, and for a command without its own */
} PvSshConfig;

typedef struct {
	char name[PV_NAME_MAX];
	char *conninfo;          /* as written; may hold a password: never print */
	char *conninfo_redacted; /* for logs, journal, check-config */
	int priority;            /* 0 = never promoted; default 100 */
	char *pgdata;            /* the data directory on the node's host; "": unknown */
	char *pg_bin;            /* directory of pg_ctl etc. on the host; "": the PATH */
	PvSshConfig ssh;
} PvNodeConfig;

typedef struct {
	char name[PV_NAME_MAX]; /* the name clients use in PgBouncer */
	char *dbname;           /* the PostgreSQL database it maps to */
	char *options;          /* extra PgBouncer parameters appended verbatim ("pool_size=20"), may be "" */
} PvPoolerDb;

typedef struct {
	bool enabled; /* false when the pgbouncer group is absent */
	char *admin_conninfo;
	char *admin_conninfo_redacted;
	char *include_file; /* the [databases] file pgvigil owns; pgbouncer.ini %includes it */
	int timeout_ms;
	int pool_maxwait_ms; /* a client queued longer than this: the pool is exhausted */
	PvSshConfig ssh;     /* enabled: include_file is on PgBouncer's host, written over SSH */
	int ndatabases;
	PvPoolerDb databases[PV_MAX_POOLER_DBS];
} PvPgbouncerConfig;

typedef struct {
	char *path;        /* file name the config was read from */
	char cluster_name[PV_NAME_MAX];
	int nnodes;
	PvNodeConfig nodes[PV_MAX_NODES];

	/* probe */
	int probe_interval_ms;
	int probe_timeout_ms;
	int probe_retry_interval_ms;

	/* failover */
	PvFailoverMode failover_mode;
	int failover_confirm_failures;
	int failover_promote_timeout_ms;
	int failover_repoint_timeout_ms;
	int failover_wedged_after_ms;  /* 0: a wedged primary is never failed over */
	int failover_hang_after_ms;    /* 0: off */
	int failover_standby_stale_ms; /* 0: from each standby's wal_receiver_timeout */
	int failover_max_lag_bytes;    /* 0: no limit */
	char *fencing_methods;         /* comma-separated, in order: pgbouncer, stop */
	int switchover_max_pause_ms;
	int fencing_stop_timeout_ms;

	/* detection (probe, slow, locks, saturation) */
	int probe_heartbeat;     /* bool */
	int probe_write_timeout_ms;
	int slow_threshold_ms;
	int slow_window;
	int locks_wait_threshold_ms;
	int locks_cancel_after_ms;
	int locks_terminate_after_ms;
	int locks_failover_after_ms; /* 0: off */
	int locks_act;               /* bool: false = report only */
	int locks_include_superusers; /* bool */
	char *locks_exclude_users;        /* comma-separated */
	char *locks_exclude_applications; /* comma-separated */
	char *locks_exclude_databases;    /* comma-separated */
	int saturation_threshold_pct;
	int replication_warn_lag_bytes;

	char *journal_path;
	int journal_max_bytes; /* rotate once the file has reached this size */
	int journal_keep;      /* rotated files kept */
	char *control_socket;
	char *control_pidfile; /* default: control_socket + ".pid" */

	char *log_path; /* "" = stderr */
	int log_level;  /* PvLogLevel */

	PvPgbouncerConfig pgbouncer;

	/* backup (act/backup.h): base backups, restore points, restore drills */
	int backup_method;           /* PvBackupMethod */
	char *backup_command;        /* method command: argv template with %d %l %c %h %p %n */
	char *backup_directory;      /* "": "backups" beside journal.path; a path on backup_host's host */
	char *backup_host;           /* "": local; else a node's name: its host over its ssh group */
	int backup_keep;
	int backup_interval_s;       /* 0: no schedule */
	int backup_on_promotion;     /* bool */
	int backup_restore_points;   /* bool */
	char *backup_archive_dir;    /* "": no WAL archive known */
	char *backup_restore_command; /* "": cp from archive_dir */
	int backup_max_rate_kb;      /* 0: unlimited */
	int backup_timeout_s;
	char *backup_pg_bin_dir;     /* "": PATH, then /usr/lib/postgresql/N/bin */

	/* metrics (pgvigild/metrics.c): Prometheus and health endpoints over HTTP */
	bool metrics_enabled; /* false when the metrics group is absent */
	char *metrics_listen; /* "HOST:PORT" */

	/* hooks (pgvigild/hooks.c): operator programs run on daemon events */
	char *hooks_on_failover; /* "": none */
	char *hooks_on_incident; /* "": none */
	char *hooks_on_lock;     /* "": none */
	int hooks_timeout_ms;
} PvConfig;

/*
 * Loads and validates path.  On failure returns PV_ERR_CONFIG with every problem, one per line,
 * in errors (a PvBuf so nothing is truncated) and *out untouched.
 */
PvStatus pv_config_load(const char *path, PvConfig **out, PvBuf *errors) PV_MUSTCHECK;
void pv_config_free(PvConfig *cfg);

/* The effective configuration in libconfig syntax, every setting, passwords redacted. */
void pv_config_print(const PvConfig *cfg, PvBuf *out);

const char *pv_failover_mode_name(PvFailoverMode m);
const char *pv_backup_method_name(PvBackupMethod m);
/* Index of the node called name, or -1. */
int pv_config_node_index(const PvConfig *cfg, const char *name);

/* Every setting path the option table knows (NULL-terminated), for the docs-sync test. */
const char *const *pv_config_setting_names(void);

#endif
