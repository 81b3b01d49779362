/*
 * config_table: every setting pgvigil knows, as data.  Loading, validation, pv_config_print
 * and pv_config_setting_names all walk this one array; conf/pgvigil.conf and
 * man/pgvigil.conf.5 document the same rows (a unit test keeps them in sync).
 */
#include <stddef.h>
#include <string.h>

#include "common/log.h"
#include "config/config.h"
#include "config/config_internal.h"

static const char *const failover_mode_names[] = {
    [PV_FAILOVER_AUTOMATIC] = "automatic",
    [PV_FAILOVER_MANUAL] = "manual",
};

const char *pv_failover_mode_name(PvFailoverMode m)
{
	return ((int)m >= 0 &&
	        (size_t)m < sizeof failover_mode_names / sizeof failover_mode_names[0])
	           ? failover_mode_names[m]
	           : "unknown";
}

static int failover_mode_parse(const char *name)
{
	for (size_t i = 0; i < sizeof failover_mode_names / sizeof failover_mode_names[0]; i++)
		if (strcmp(name, failover_mode_names[i]) == 0)
			return (int)i;
	return -1;
}

static const char *failover_mode_name_int(int v)
{
	return pv_failover_mode_name((PvFailoverMode)v);
}

static const char *log_level_name_int(int v)
{
	return pv_log_level_name((PvLogLevel)v);
}

static const char *const onoff_names[] = {"off", "on"};

static int onoff_parse(const char *name)
{
	for (int i = 0; i < 2; i++)
		if (strcmp(name, onoff_names[i]) == 0)
			return i;
	return -1;
}

static const char *onoff_name(int v)
{
	return (v == 0 || v == 1) ? onoff_names[v] : "unknown";
}

static const char *const backup_method_names[] = {
    [PV_BACKUP_PG_BASEBACKUP] = "pg_basebackup",
    [PV_BACKUP_COMMAND] = "command",
};

const char *pv_backup_method_name(PvBackupMethod m)
{
	return ((int)m >= 0 &&
	        (size_t)m < sizeof backup_method_names / sizeof backup_method_names[0])
	           ? backup_method_names[m]
	           : "unknown";
}

static int backup_method_parse(const char *name)
{
	for (size_t i = 0; i < sizeof backup_method_names / sizeof backup_method_names[0]; i++)
		if (strcmp(name, backup_method_names[i]) == 0)
			return (int)i;
	return -1;
}

static const char *backup_method_name_int(int v)
{
	return pv_backup_method_name((PvBackupMethod)v);
}

static const PvOptEnum backup_method_enum = {backup_method_parse, backup_method_name_int, 2};
static const PvOptEnum onoff_enum = {onoff_parse, onoff_name, 2};
static const PvOptEnum failover_mode_enum = {failover_mode_parse, failover_mode_name_int, 2};
static const PvOptEnum log_level_enum = {pv_log_level_parse, log_level_name_int, PV_LOG_ERROR + 1};

/* Enum settings are stored through an int *. */
_Static_assert(sizeof(PvFailoverMode) == sizeof(int), "PvFailoverMode must be int-sized");

#define CF(f) offsetof(PvConfig, f)
#define NF(f) offsetof(PvNodeConfig, f)
#define DF(f) offsetof(PvPoolerDb, f)
#define PV_PATH_LEN 4095
#define PV_SOCKET_LEN 107 /* sizeof sun_path - 1 */

const PvOption pv_options[] = {
    {.path = "cluster",
     .type = PV_OPT_GROUP,
     .flags = PV_OPT_REQUIRED,
     .doc = "the PostgreSQL cluster pgvigil watches"},
    {.path = "cluster.name",
     .type = PV_OPT_NAME,
     .flags = PV_OPT_REQUIRED,
     .offset = CF(cluster_name),
     .doc = "name of the cluster, shown in status and the journal"},
    {.path = "cluster.nodes",
     .type = PV_OPT_LIST,
     .flags = PV_OPT_REQUIRED,
     .min = 2,
     .max = PV_MAX_NODES,
     .offset = CF(nodes),
     .aux = CF(nnodes),
     .elem_size = sizeof(PvNodeConfig),
     .noun = "node",
     .unique = "cluster.nodes.name",
     .doc = "the PostgreSQL servers of the cluster, primary and standbys"},
    {.path = "cluster.nodes.name",
     .type = PV_OPT_NAME,
     .flags = PV_OPT_REQUIRED,
     .offset = NF(name),
     .doc = "name of the node, unique in the cluster"},
    {.path = "cluster.nodes.conninfo",
     .type = PV_OPT_CONNINFO,
     .flags = PV_OPT_REQUIRED,
     .offset = NF(conninfo),
     .aux = NF(conninfo_redacted),
     .doc = "libpq connection string pgvigil uses to probe, promote and repoint the node"},
    {.path = "cluster.nodes.priority",
     .type = PV_OPT_INT,
     .def = "100",
     .min = 0,
     .max = 1000,
     .offset = NF(priority),
     .doc = "promotion preference among equally advanced standbys; 0 means never promoted"},
    {.path = "cluster.nodes.pgdata",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = NF(pgdata),
     .doc = "the node's data directory on its host (for pg_ctl over ssh); empty: unknown"},
    {.path = "cluster.nodes.pg_bin",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = NF(pg_bin),
     .doc = "directory of pg_ctl and the other PostgreSQL programs on the node's host; empty: "
            "the PATH of the ssh user"},
    {.path = "cluster.nodes.ssh",
     .type = PV_OPT_GROUP,
     .flags = PV_OPT_PRESENCE,
     .aux = NF(ssh.enabled),
     .doc = "how pgvigil runs commands on the node's host over SSH; absent: it does not"},
    {.path = "cluster.nodes.ssh.host",
     .type = PV_OPT_STRING,
     .flags = PV_OPT_REQUIRED,
     .min = 1,
     .max = 255,
     .offset = NF(ssh.host),
     .doc = "host name or address of the node's host, as known_hosts names it"},
    {.path = "cluster.nodes.ssh.port",
     .type = PV_OPT_INT,
     .def = "22",
     .min = 1,
     .max = 65535,
     .offset = NF(ssh.port),
     .doc = "TCP port of its sshd"},
    {.path = "cluster.nodes.ssh.user",
     .type = PV_OPT_STRING,
     .def = "postgres",
     .min = 1,
     .max = 255,
     .offset = NF(ssh.user),
     .doc = "the account pgvigil logs in as"},
    {.path = "cluster.nodes.ssh.key",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = NF(ssh.key),
     .doc = "private key file (ed25519 or ECDSA); empty: the ssh-agent at SSH_AUTH_SOCK"},
    {.path = "cluster.nodes.ssh.passphrase",
     .type = PV_OPT_STRING,
     .flags = PV_OPT_SECRET,
     .def = "",
     .min = 0,
     .max = 1024,
     .offset = NF(ssh.passphrase),
     .doc = "passphrase of the key file; empty: none.  Never printed"},
    {.path = "cluster.nodes.ssh.known_hosts",
     .type = PV_OPT_STRING,
     .def = "/etc/pgvigil/known_hosts",
     .min = 1,
     .max = PV_PATH_LEN,
     .offset = NF(ssh.known_hosts),
     .doc = "the OpenSSH known_hosts file the host key must match"},
    {.path = "cluster.nodes.ssh.timeout_ms",
     .type = PV_OPT_INT,
     .def = "10000",
     .min = 100,
     .max = 600000,
     .offset = NF(ssh.timeout_ms),
     .doc = "deadline for connecting (TCP, handshake, host key, authentication)"},

    {.path = "probe", .type = PV_OPT_GROUP, .doc = "how nodes are probed"},
    {.path = "probe.interval_ms",
     .type = PV_OPT_INT,
     .def = "500",
     .min = 100,
     .max = 60000,
     .offset = CF(probe_interval_ms),
     .doc = "time between probes of each node"},
    {.path = "probe.timeout_ms",
     .type = PV_OPT_INT,
     .def = "1000",
     .min = 100,
     .max = 60000,
     .offset = CF(probe_timeout_ms),
     .doc = "hard deadline for one probe, connect and query"},
    {.path = "probe.retry_interval_ms",
     .type = PV_OPT_INT,
     .def = "100",
     .min = 10,
     .max = 10000,
     .offset = CF(probe_retry_interval_ms),
     .doc = "spacing of the confirming probes after a failed probe"},
    {.path = "probe.heartbeat",
     .type = PV_OPT_ENUM,
     .def = "on",
     .offset = CF(probe_heartbeat),
     .en = &onoff_enum,
     .doc = "on: write a heartbeat row on the primary every interval (commit latency, standby freshness)"},
    {.path = "probe.write_timeout_ms",
     .type = PV_OPT_INT,
     .def = "2000",
     .min = 100,
     .max = 60000,
     .offset = CF(probe_write_timeout_ms),
     .doc = "a heartbeat commit slower than this fails: the primary is wedged"},

    {.path = "failover", .type = PV_OPT_GROUP, .doc = "when and how pgvigil fails over"},
    {.path = "failover.mode",
     .type = PV_OPT_ENUM,
     .def = "automatic",
     .offset = CF(failover_mode),
     .en = &failover_mode_enum,
     .doc = "automatic: fail over when the primary is down; manual: only on request"},
    {.path = "failover.confirm_failures",
     .type = PV_OPT_INT,
     .def = "3",
     .min = 1,
     .max = 100,
     .offset = CF(failover_confirm_failures),
     .doc = "consecutive failed probes of the primary before it counts as down"},
    {.path = "failover.promote_timeout_ms",
     .type = PV_OPT_INT,
     .def = "30000",
     .min = 1000,
     .max = 600000,
     .offset = CF(failover_promote_timeout_ms),
     .doc = "deadline for the promoted standby to leave recovery"},
    {.path = "failover.repoint_timeout_ms",
     .type = PV_OPT_INT,
     .def = "10000",
     .min = 1000,
     .max = 600000,
     .offset = CF(failover_repoint_timeout_ms),
     .doc = "deadline for the other standbys to stream from the new primary"},
    {.path = "failover.wedged_after_ms",
     .type = PV_OPT_INT,
     .def = "10000",
     .min = 0,
     .max = 3600000,
     .offset = CF(failover_wedged_after_ms),
     .doc = "fail over a primary that answers but cannot commit for this long; 0: never"},
    {.path = "failover.max_lag_bytes",
     .type = PV_OPT_INT,
     .def = "16777216",
     .min = 0,
     .max = 1073741824,
     .offset = CF(failover_max_lag_bytes),
     .doc = "a standby further behind the old primary's last seen LSN is not promoted; 0: no limit"},
    {.path = "failover.hang_after_ms",
     .type = PV_OPT_INT,
     .def = "2600",
     .min = 0,
     .max = 600000,
     .offset = CF(failover_hang_after_ms),
     .doc = "a primary whose host acknowledges our requests but whose server answered none for "
            "this long is down, without waiting for confirm_failures; 0: off"},
    {.path = "failover.standby_stale_ms",
     .type = PV_OPT_INT,
     .def = "0",
     .min = 0,
     .max = 3600000,
     .offset = CF(failover_standby_stale_ms),
     .doc = "a standby that heard nothing from the primary for this long no longer sees it; "
            "0: half its wal_receiver_timeout plus one second"},

    {.path = "fencing", .type = PV_OPT_GROUP, .doc = "how the old primary is fenced before a promotion"},
    {.path = "fencing.methods",
     .type = PV_OPT_STRING,
     .def = "pgbouncer,stop",
     .min = 0,
     .max = 256,
     .offset = CF(fencing_methods),
     .doc = "fences tried in order: pgbouncer (KILL the databases), stop (pg_ctl stop -m immediate)"},
    {.path = "fencing.stop_timeout_ms",
     .type = PV_OPT_INT,
     .def = "5000",
     .min = 1000,
     .max = 600000,
     .offset = CF(fencing_stop_timeout_ms),
     .doc = "deadline for pg_ctl stop; a local server still running then is SIGKILLed"},

    {.path = "switchover", .type = PV_OPT_GROUP, .doc = "planned switchovers"},
    {.path = "switchover.max_pause_ms",
     .type = PV_OPT_INT,
     .def = "5000",
     .min = 100,
     .max = 600000,
     .offset = CF(switchover_max_pause_ms),
     .doc = "the longest clients may queue; a switchover predicted or found to need more aborts "
            "before promoting"},

    {.path = "slow", .type = PV_OPT_GROUP, .doc = "when a primary counts as slow"},
    {.path = "slow.threshold_ms",
     .type = PV_OPT_INT,
     .def = "500",
     .min = 1,
     .max = 600000,
     .offset = CF(slow_threshold_ms),
     .doc = "heartbeat commit latency above which a sample is slow"},
    {.path = "slow.window",
     .type = PV_OPT_INT,
     .def = "5",
     .min = 1,
     .max = 16,
     .offset = CF(slow_window),
     .doc = "the primary is SLOW when this many consecutive samples are slow"},

    {.path = "locks", .type = PV_OPT_GROUP, .doc = "lock chains and what pgvigil does about them"},
    {.path = "locks.wait_threshold_ms",
     .type = PV_OPT_INT,
     .def = "1000",
     .min = 100,
     .max = 3600000,
     .offset = CF(locks_wait_threshold_ms),
     .doc = "a lock wait longer than this makes the node LOCKED and its chains reported"},
    {.path = "locks.cancel_after_ms",
     .type = PV_OPT_INT,
     .def = "5000",
     .min = 0,
     .max = 3600000,
     .offset = CF(locks_cancel_after_ms),
     .doc = "cancel an active root blocker's statement once sessions waited this long; 0: never"},
    {.path = "locks.terminate_after_ms",
     .type = PV_OPT_INT,
     .def = "10000",
     .min = 0,
     .max = 3600000,
     .offset = CF(locks_terminate_after_ms),
     .doc = "terminate a root blocker still blocking after this long (idle in transaction: "
            "already at cancel_after_ms); 0: never"},
    {.path = "locks.failover_after_ms",
     .type = PV_OPT_INT,
     .def = "0",
     .min = 0,
     .max = 3600000,
     .offset = CF(locks_failover_after_ms),
     .doc = "fail over when writes stay blocked by locks this long; 0: never"},
    {.path = "locks.act",
     .type = PV_OPT_ENUM,
     .def = "on",
     .offset = CF(locks_act),
     .en = &onoff_enum,
     .doc = "off: report lock chains, never cancel or terminate"},
    {.path = "locks.include_superusers",
     .type = PV_OPT_ENUM,
     .def = "off",
     .offset = CF(locks_include_superusers),
     .en = &onoff_enum,
     .doc = "on: superuser sessions may be cancelled or terminated too"},
    {.path = "locks.exclude_users",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = 4096,
     .offset = CF(locks_exclude_users),
     .doc = "comma-separated roles whose sessions are reported but never touched"},
    {.path = "locks.exclude_applications",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = 4096,
     .offset = CF(locks_exclude_applications),
     .doc = "comma-separated application_name values never touched"},
    {.path = "locks.exclude_databases",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = 4096,
     .offset = CF(locks_exclude_databases),
     .doc = "comma-separated databases whose sessions are never touched"},

    {.path = "saturation", .type = PV_OPT_GROUP, .doc = "connection exhaustion"},
    {.path = "saturation.threshold_pct",
     .type = PV_OPT_INT,
     .def = "90",
     .min = 1,
     .max = 100,
     .offset = CF(saturation_threshold_pct),
     .doc = "client backends at this percentage of the slots open to them: SATURATED"},

    {.path = "replication", .type = PV_OPT_GROUP, .doc = "replication lag reporting"},
    {.path = "replication.warn_lag_bytes",
     .type = PV_OPT_INT,
     .def = "16777216",
     .min = 0,
     .max = 1073741824,
     .offset = CF(replication_warn_lag_bytes),
     .doc = "a standby further behind than this is reported as lagging; 0: never"},

    {.path = "journal", .type = PV_OPT_GROUP, .doc = "the incident journal"},
    {.path = "journal.path",
     .type = PV_OPT_STRING,
     .def = "/var/lib/pgvigil/journal.jsonl",
     .min = 1,
     .max = PV_PATH_LEN,
     .offset = CF(journal_path),
     .doc = "the append-only JSON-lines journal file"},
    {.path = "journal.max_bytes",
     .type = PV_OPT_INT,
     .def = "67108864",
     .min = 4096,
     .max = 1073741824,
     .offset = CF(journal_max_bytes),
     .doc = "rotate the journal once it has reached this size, in bytes"},
    {.path = "journal.keep",
     .type = PV_OPT_INT,
     .def = "8",
     .min = 1,
     .max = 1000,
     .offset = CF(journal_keep),
     .doc = "rotated journal files kept (path.1 .. path.keep); older ones are removed"},

    {.path = "control", .type = PV_OPT_GROUP, .doc = "the control socket of the daemon"},
    {.path = "control.socket",
     .type = PV_OPT_STRING,
     .def = "/run/pgvigil/pgvigil.sock",
     .min = 1,
     .max = PV_SOCKET_LEN,
     .offset = CF(control_socket),
     .doc = "Unix socket the pgvigil command talks to the daemon through"},
    {.path = "control.pidfile",
     .type = PV_OPT_STRING,
     .def_from = "control.socket",
     .def = ".pid",
     .min = 1,
     .max = PV_PATH_LEN,
     .offset = CF(control_pidfile),
     .doc = "pid file, locked while the daemon runs; default: the socket path plus .pid"},

    {.path = "log", .type = PV_OPT_GROUP, .doc = "the operator log"},
    {.path = "log.path",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = CF(log_path),
     .doc = "log file; empty: stderr in the foreground, else pgvigild.log beside the journal"},
    {.path = "log.level",
     .type = PV_OPT_ENUM,
     .def = "info",
     .offset = CF(log_level),
     .en = &log_level_enum,
     .doc = "least severe level logged: debug, info, warning, error"},

    {.path = "pgbouncer",
     .type = PV_OPT_GROUP,
     .flags = PV_OPT_PRESENCE,
     .aux = CF(pgbouncer.enabled),
     .doc = "the PgBouncer pgvigil repoints; absent: none"},
    {.path = "pgbouncer.admin_conninfo",
     .type = PV_OPT_CONNINFO,
     .flags = PV_OPT_REQUIRED,
     .offset = CF(pgbouncer.admin_conninfo),
     .aux = CF(pgbouncer.admin_conninfo_redacted),
     .doc = "libpq connection string of the PgBouncer admin console"},
    {.path = "pgbouncer.include_file",
     .type = PV_OPT_STRING,
     .flags = PV_OPT_REQUIRED,
     .min = 1,
     .max = PV_PATH_LEN,
     .offset = CF(pgbouncer.include_file),
     .doc = "the [databases] file pgvigil owns and pgbouncer.ini %includes"},
    {.path = "pgbouncer.timeout_ms",
     .type = PV_OPT_INT,
     .def = "2000",
     .min = 100,
     .max = 60000,
     .offset = CF(pgbouncer.timeout_ms),
     .doc = "deadline for each admin console command (RELOAD, SHOW DATABASES)"},
    {.path = "pgbouncer.pool_maxwait_ms",
     .type = PV_OPT_INT,
     .def = "1000",
     .min = 1,
     .max = 3600000,
     .offset = CF(pgbouncer.pool_maxwait_ms),
     .doc = "a client queued in a pool longer than this: the pool is exhausted (SHOW POOLS)"},
    {.path = "pgbouncer.ssh",
     .type = PV_OPT_GROUP,
     .flags = PV_OPT_PRESENCE,
     .aux = CF(pgbouncer.ssh.enabled),
     .doc = "how pgvigil writes include_file on PgBouncer's host over SSH; absent: a local file"},
    {.path = "pgbouncer.ssh.host",
     .type = PV_OPT_STRING,
     .flags = PV_OPT_REQUIRED,
     .min = 1,
     .max = 255,
     .offset = CF(pgbouncer.ssh.host),
     .doc = "host name or address of PgBouncer's host, as known_hosts names it"},
    {.path = "pgbouncer.ssh.port",
     .type = PV_OPT_INT,
     .def = "22",
     .min = 1,
     .max = 65535,
     .offset = CF(pgbouncer.ssh.port),
     .doc = "TCP port of its sshd"},
    {.path = "pgbouncer.ssh.user",
     .type = PV_OPT_STRING,
     .def = "postgres",
     .min = 1,
     .max = 255,
     .offset = CF(pgbouncer.ssh.user),
     .doc = "the account pgvigil logs in as"},
    {.path = "pgbouncer.ssh.key",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = CF(pgbouncer.ssh.key),
     .doc = "private key file (ed25519 or ECDSA); empty: the ssh-agent at SSH_AUTH_SOCK"},
    {.path = "pgbouncer.ssh.passphrase",
     .type = PV_OPT_STRING,
     .flags = PV_OPT_SECRET,
     .def = "",
     .min = 0,
     .max = 1024,
     .offset = CF(pgbouncer.ssh.passphrase),
     .doc = "passphrase of the key file; empty: none.  Never printed"},
    {.path = "pgbouncer.ssh.known_hosts",
     .type = PV_OPT_STRING,
     .def = "/etc/pgvigil/known_hosts",
     .min = 1,
     .max = PV_PATH_LEN,
     .offset = CF(pgbouncer.ssh.known_hosts),
     .doc = "the OpenSSH known_hosts file the host key must match"},
    {.path = "pgbouncer.ssh.timeout_ms",
     .type = PV_OPT_INT,
     .def = "10000",
     .min = 100,
     .max = 600000,
     .offset = CF(pgbouncer.ssh.timeout_ms),
     .doc = "deadline for connecting (TCP, handshake, host key, authentication)"},
    {.path = "pgbouncer.databases",
     .type = PV_OPT_LIST,
     .flags = PV_OPT_REQUIRED,
     .min = 1,
     .max = PV_MAX_POOLER_DBS,
     .offset = CF(pgbouncer.databases),
     .aux = CF(pgbouncer.ndatabases),
     .elem_size = sizeof(PvPoolerDb),
     .noun = "database",
     .unique = "pgbouncer.databases.name",
     .doc = "the PgBouncer databases pointed at the current primary"},
    {.path = "pgbouncer.databases.name",
     .type = PV_OPT_NAME,
     .flags = PV_OPT_REQUIRED,
     .offset = DF(name),
     .doc = "the database name clients use in PgBouncer"},
    {.path = "pgbouncer.databases.dbname",
     .type = PV_OPT_STRING,
     .def_from = "pgbouncer.databases.name",
     .def = "",
     .min = 1,
     .max = PV_NAME_MAX - 1,
     .offset = DF(dbname),
     .doc = "the PostgreSQL database it maps to; default: name"},
    {.path = "pgbouncer.databases.options",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = 1024,
     .offset = DF(options),
     .doc = "extra PgBouncer parameters appended to the line verbatim"},

    {.path = "backup",
     .type = PV_OPT_GROUP,
     .doc = "base backups, restore points and restore drills"},
    {.path = "backup.method",
     .type = PV_OPT_ENUM,
     .def = "pg_basebackup",
     .offset = CF(backup_method),
     .en = &backup_method_enum,
     .doc = "pg_basebackup (verified with pg_verifybackup), or command: backup.command"},
    {.path = "backup.command",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = CF(backup_command),
     .doc =
         "with method command: the program and its arguments, placeholders %d %l %c %h %p %n %%"},
    {.path = "backup.directory",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = CF(backup_directory),
     .doc = "where base backups and their catalog go (on backup.host's host when set); empty: "
            "backups beside journal.path"},
    {.path = "backup.host",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_NAME_MAX - 1,
     .offset = CF(backup_host),
     .doc = "a node (with an ssh group) whose host keeps the backups; empty: this host"},
    {.path = "backup.keep",
     .type = PV_OPT_INT,
     .def = "3",
     .min = 1,
     .max = 1000,
     .offset = CF(backup_keep),
     .doc = "retention: the number of good backups kept"},
    {.path = "backup.interval_s",
     .type = PV_OPT_INT,
     .def = "0",
     .min = 0,
     .max = 31536000,
     .offset = CF(backup_interval_s),
     .doc = "a scheduled backup this long after the newest one; 0: no schedule"},
    {.path = "backup.on_promotion",
     .type = PV_OPT_ENUM,
     .def = "on",
     .offset = CF(backup_on_promotion),
     .en = &onoff_enum,
     .doc = "on: a base backup of the new primary right after a promotion"},
    {.path = "backup.restore_points",
     .type = PV_OPT_ENUM,
     .def = "on",
     .offset = CF(backup_restore_points),
     .en = &onoff_enum,
     .doc = "on: a restore point on the primary when an incident opens"},
    {.path = "backup.archive_dir",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = CF(backup_archive_dir),
     .doc = "the directory archive_command copies WAL into; empty: none known"},
    {.path = "backup.restore_command",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = CF(backup_restore_command),
     .doc = "restore_command of a restored copy; empty: a cp from archive_dir"},
    {.path = "backup.max_rate",
     .type = PV_OPT_INT,
     .def = "0",
     .min = 0,
     .max = 1048576,
     .offset = CF(backup_max_rate_kb),
     .doc = "pg_basebackup --max-rate in kB/s (at least 32); 0: unlimited"},
    {.path = "backup.timeout_s",
     .type = PV_OPT_INT,
     .def = "21600",
     .min = 60,
     .max = 604800,
     .offset = CF(backup_timeout_s),
     .doc = "deadline for one backup, and for its verification"},
    {.path = "backup.pg_bin_dir",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = CF(backup_pg_bin_dir),
     .doc = "directory of pg_basebackup, pg_verifybackup, pg_ctl; empty: PATH, then "
            "/usr/lib/postgresql/N/bin"},

    {.path = "metrics",
     .type = PV_OPT_GROUP,
     .flags = PV_OPT_PRESENCE,
     .aux = CF(metrics_enabled),
     .doc = "Prometheus metrics and HAProxy health checks over HTTP; absent: off"},
    {.path = "metrics.listen",
     .type = PV_OPT_STRING,
     .def = "127.0.0.1:9187",
     .min = 3,
     .max = 255,
     .offset = CF(metrics_listen),
     .doc = "address and port the HTTP server listens on: HOST:PORT, [IPV6]:PORT or *:PORT"},

    {.path = "hooks", .type = PV_OPT_GROUP, .doc = "programs pgvigild runs on events"},
    {.path = "hooks.on_failover",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = CF(hooks_on_failover),
     .doc = "absolute path of a program run when a standby was promoted; empty: none"},
    {.path = "hooks.on_incident",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = CF(hooks_on_incident),
     .doc = "absolute path of a program run when an incident opens and when it closes; "
            "empty: none"},
    {.path = "hooks.on_lock",
     .type = PV_OPT_STRING,
     .def = "",
     .min = 0,
     .max = PV_PATH_LEN,
     .offset = CF(hooks_on_lock),
     .doc = "absolute path of a program run when a new lock chain is found; empty: none"},
    {.path = "hooks.timeout_ms",
     .type = PV_OPT_INT,
     .def = "10000",
     .min = 100,
     .max = 3600000,
     .offset = CF(hooks_timeout_ms),
     .doc = "deadline of one hook run: SIGTERM, then SIGKILL 2 s later"},
};

const size_t pv_noptions = sizeof pv_options / sizeof pv_options[0];

const PvOption *pv_option_find(const char *path)
{
	for (size_t i = 0; i < pv_noptions; i++)
		if (strcmp(pv_options[i].path, path) == 0)
			return &pv_options[i];
	return NULL;
}

const char *pv_option_leaf(const PvOption *o)
{
	const char *dot = strrchr(o->path, '.');
	return dot ? dot + 1 : o->path;
}

bool pv_option_is_child(const PvOption *o, const char *parent)
{
	size_t n = strlen(parent);
	if (n == 0)
		return strchr(o->path, '.') == NULL;
	return strncmp(o->path, parent, n) == 0 && o->path[n] == '.' &&
	       strchr(o->path + n + 1, '.') == NULL;
}

const char *const *pv_config_setting_names(void)
{
	static const char *names[sizeof pv_options / sizeof pv_options[0] + 1];
	if (!names[0]) {
		size_t n = 0;
		for (size_t i = 0; i < pv_noptions; i++)
			if (pv_options[i].type != PV_OPT_GROUP && pv_options[i].type != PV_OPT_LIST)
				names[n++] = pv_options[i].path;
		names[n] = NULL;
	}
	return names;
}
