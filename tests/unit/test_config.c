/*
 * test_config: pv_config_load, pv_config_print and the option table.
 *
 * Configurations are written into a mkdtemp directory.  Error cases are tables of
 * (file text, exact expected output) with %F standing for the file's path and %D for the
 * directory; range, type, required and default checks are generated from the option table
 * itself, so a new row is tested without a new test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/log.h"
#include "config/config.h"
#include "config/config_internal.h"

static char tmpdir[64];
static int file_seq;

/* ---- helpers ---- */

static char *expand(const char *pattern, const char *file)
{
	PvBuf b = {0};
	for (const char *p = pattern; *p; p++) {
		if (p[0] == '%' && p[1] == 'F') {
			pv_buf_puts(&b, file);
			p++;
		} else if (p[0] == '%' && p[1] == 'D') {
			pv_buf_puts(&b, tmpdir);
			p++;
		} else {
			pv_buf_putc(&b, *p);
		}
	}
	return pv_buf_steal(&b);
}

/* Writes text to tmpdir/name (NULL: a fresh name); returns the malloc'd path. */
static char *write_named(const char *name, const char *text)
{
	char *path = name ? pv_xasprintf("%s/%s", tmpdir, name)
	                  : pv_xasprintf("%s/c%d.conf", tmpdir, ++file_seq);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	return path;
}

static char *write_conf(const char *text)
{
	return write_named(NULL, text);
}

/* Loads path; on failure returns NULL and *errors holds the output. */
static PvConfig *load_path(const char *path, PvBuf *errors)
{
	PvConfig *cfg = (PvConfig *)(uintptr_t)0x1; /* must stay untouched on failure */
	PvStatus st = pv_config_load(path, &cfg, errors);
	if (st != PV_OK) {
		assert_int_equal(st, PV_ERR_CONFIG);
		assert_true(cfg == (PvConfig *)(uintptr_t)0x1);
		assert_true(errors->len > 0);
		assert_int_equal(errors->data[errors->len - 1], '\n');
		return NULL;
	}
	assert_non_null(cfg);
	return cfg;
}

static PvConfig *load_ok(const char *text)
{
	PvBuf errors = {0};
	char *path = write_conf(text);
	PvConfig *cfg = load_path(path, &errors);
	if (!cfg)
		fail_msg("unexpected errors for\n%s\n---\n%s", text, errors.data);
	assert_int_equal(errors.len, 0);
	assert_string_equal(cfg->path, path);
	free(path);
	pv_buf_free(&errors);
	return cfg;
}

/* Loads text, expects failure, returns the error output (caller frees). */
static char *load_err(const char *text, char **path_out)
{
	PvBuf errors = {0};
	char *path = write_conf(text);
	PvConfig *cfg = load_path(path, &errors);
	if (cfg) {
		pv_config_free(cfg);
		fail_msg("expected errors for\n%s", text);
	}
	if (path_out)
		*path_out = path;
	else
		free(path);
	return pv_buf_steal(&errors);
}

static char *print_cfg(const PvConfig *cfg)
{
	PvBuf b = {0};
	pv_config_print(cfg, &b);
	return pv_buf_steal(&b);
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* 1-based line of the first occurrence of needle in text. */
static int line_of(const char *text, const char *needle)
{
	const char *p = strstr(text, needle);
	assert_non_null(p);
	int line = 1;
	for (const char *q = text; q < p; q++)
		line += *q == '\n';
	return line;
}

/* ---- a full configuration, one setting a line, with one setting replaced or left out ---- */

typedef struct {
	const char *path; /* setting on this line, or NULL */
	const char *line; /* "\tinterval_ms = %s;" with %s the value */
	const char *value;
} TemplateLine;

static const TemplateLine template_lines[] = {
    {NULL, "cluster = {", NULL},
    {"cluster.name", "\tname = %s;", "\"demo\""},
    {NULL, "\tnodes = (", NULL},
    {NULL, "\t\t{", NULL},
    {"cluster.nodes.name", "\t\t\tname = %s;", "\"n0\""},
    {"cluster.nodes.conninfo", "\t\t\tconninfo = %s;", "\"host=h0 port=5432\""},
    {"cluster.nodes.priority", "\t\t\tpriority = %s;", "100"},
    {"cluster.nodes.pgdata", "\t\t\tpgdata = %s;", "\"/var/lib/postgresql/15/main\""},
    {"cluster.nodes.pg_bin", "\t\t\tpg_bin = %s;", "\"/usr/lib/postgresql/15/bin\""},
    {NULL, "\t\t\tssh = {", NULL},
    {"cluster.nodes.ssh.host", "\t\t\t\thost = %s;", "\"db0.example.net\""},
    {"cluster.nodes.ssh.port", "\t\t\t\tport = %s;", "22"},
    {"cluster.nodes.ssh.user", "\t\t\t\tuser = %s;", "\"postgres\""},
    {"cluster.nodes.ssh.key", "\t\t\t\tkey = %s;", "\"/etc/pgvigil/id_ed25519\""},
    {"cluster.nodes.ssh.passphrase", "\t\t\t\tpassphrase = %s;", "\"\""},
    {"cluster.nodes.ssh.known_hosts", "\t\t\t\tknown_hosts = %s;", "\"/etc/pgvigil/known_hosts\""},
    {"cluster.nodes.ssh.timeout_ms", "\t\t\t\ttimeout_ms = %s;", "10000"},
    {NULL, "\t\t\t};", NULL},
    {NULL, "\t\t},", NULL},
    {NULL, "\t\t{", NULL},
    {NULL, "\t\t\tname = \"n1\";", NULL},
    {NULL, "\t\t\tconninfo = \"host=h1 port=5432\";", NULL},
    {NULL, "\t\t}", NULL},
    {NULL, "\t);", NULL},
    {NULL, "};", NULL},
    {NULL, "probe = {", NULL},
    {"probe.interval_ms", "\tinterval_ms = %s;", "500"},
    {"probe.timeout_ms", "\ttimeout_ms = %s;", "1000"},
    {"probe.retry_interval_ms", "\tretry_interval_ms = %s;", "100"},
    {"probe.heartbeat", "\theartbeat = %s;", "\"on\""},
    {"probe.write_timeout_ms", "\twrite_timeout_ms = %s;", "2000"},
    {NULL, "};", NULL},
    {NULL, "failover = {", NULL},
    {"failover.mode", "\tmode = %s;", "\"automatic\""},
    {"failover.confirm_failures", "\tconfirm_failures = %s;", "3"},
    {"failover.promote_timeout_ms", "\tpromote_timeout_ms = %s;", "30000"},
    {"failover.repoint_timeout_ms", "\trepoint_timeout_ms = %s;", "10000"},
    {"failover.wedged_after_ms", "\twedged_after_ms = %s;", "10000"},
    {"failover.max_lag_bytes", "\tmax_lag_bytes = %s;", "16777216"},
    {"failover.hang_after_ms", "\thang_after_ms = %s;", "2600"},
    {"failover.standby_stale_ms", "\tstandby_stale_ms = %s;", "0"},
    {NULL, "};", NULL},
    {NULL, "fencing = {", NULL},
    {"fencing.methods", "\tmethods = %s;", "\"pgbouncer,stop\""},
    {"fencing.stop_timeout_ms", "\tstop_timeout_ms = %s;", "5000"},
    {NULL, "};", NULL},
    {NULL, "switchover = {", NULL},
    {"switchover.max_pause_ms", "\tmax_pause_ms = %s;", "5000"},
    {NULL, "};", NULL},
    {NULL, "slow = {", NULL},
    {"slow.threshold_ms", "\tthreshold_ms = %s;", "500"},
    {"slow.window", "\twindow = %s;", "5"},
    {NULL, "};", NULL},
    {NULL, "locks = {", NULL},
    {"locks.wait_threshold_ms", "\twait_threshold_ms = %s;", "1000"},
    {"locks.cancel_after_ms", "\tcancel_after_ms = %s;", "5000"},
    {"locks.terminate_after_ms", "\tterminate_after_ms = %s;", "10000"},
    {"locks.failover_after_ms", "\tfailover_after_ms = %s;", "0"},
    {"locks.act", "\tact = %s;", "\"on\""},
    {"locks.include_superusers", "\tinclude_superusers = %s;", "\"off\""},
    {"locks.exclude_users", "\texclude_users = %s;", "\"\""},
    {"locks.exclude_applications", "\texclude_applications = %s;", "\"\""},
    {"locks.exclude_databases", "\texclude_databases = %s;", "\"\""},
    {NULL, "};", NULL},
    {NULL, "saturation = {", NULL},
    {"saturation.threshold_pct", "\tthreshold_pct = %s;", "90"},
    {NULL, "};", NULL},
    {NULL, "replication = {", NULL},
    {"replication.warn_lag_bytes", "\twarn_lag_bytes = %s;", "16777216"},
    {NULL, "};", NULL},
    {NULL, "journal = {", NULL},
    {"journal.path", "\tpath = %s;", "\"/var/lib/pgvigil/journal.jsonl\""},
    {"journal.max_bytes", "\tmax_bytes = %s;", "67108864"},
    {"journal.keep", "\tkeep = %s;", "8"},
    {NULL, "};", NULL},
    {NULL, "control = {", NULL},
    {"control.socket", "\tsocket = %s;", "\"/run/pgvigil/pgvigil.sock\""},
    {"control.pidfile", "\tpidfile = %s;", "\"/run/pgvigil/pgvigil.sock.pid\""},
    {NULL, "};", NULL},
    {NULL, "log = {", NULL},
    {"log.path", "\tpath = %s;", "\"\""},
    {"log.level", "\tlevel = %s;", "\"info\""},
    {NULL, "};", NULL},
    {NULL, "pgbouncer = {", NULL},
    {"pgbouncer.admin_conninfo", "\tadmin_conninfo = %s;",
     "\"host=127.0.0.1 port=6432 dbname=pgbouncer\""},
    {"pgbouncer.include_file", "\tinclude_file = %s;", "\"/etc/pgbouncer/pgvigil-databases.ini\""},
    {"pgbouncer.timeout_ms", "\ttimeout_ms = %s;", "2000"},
    {"pgbouncer.pool_maxwait_ms", "\tpool_maxwait_ms = %s;", "1000"},
    {NULL, "\tssh = {", NULL},
    {"pgbouncer.ssh.host", "\t\thost = %s;", "\"bouncer.example.net\""},
    {"pgbouncer.ssh.port", "\t\tport = %s;", "22"},
    {"pgbouncer.ssh.user", "\t\tuser = %s;", "\"postgres\""},
    {"pgbouncer.ssh.key", "\t\tkey = %s;", "\"/etc/pgvigil/id_ed25519\""},
    {"pgbouncer.ssh.passphrase", "\t\tpassphrase = %s;", "\"\""},
    {"pgbouncer.ssh.known_hosts", "\t\tknown_hosts = %s;", "\"/etc/pgvigil/known_hosts\""},
    {"pgbouncer.ssh.timeout_ms", "\t\ttimeout_ms = %s;", "10000"},
    {NULL, "\t};", NULL},
    {NULL, "\tdatabases = (", NULL},
    {NULL, "\t\t{", NULL},
    {"pgbouncer.databases.name", "\t\t\tname = %s;", "\"app\""},
    {"pgbouncer.databases.dbname", "\t\t\tdbname = %s;", "\"postgres\""},
    {"pgbouncer.databases.options", "\t\t\toptions = %s;", "\"pool_size=20\""},
    {NULL, "\t\t}", NULL},
    {NULL, "\t);", NULL},
    {NULL, "};", NULL},
    {NULL, "backup = {", NULL},
    {"backup.method", "\tmethod = %s;", "\"pg_basebackup\""},
    {"backup.command", "\tcommand = %s;", "\"\""},
    {"backup.directory", "\tdirectory = %s;", "\"/var/lib/pgvigil/backups\""},
    {"backup.host", "\thost = %s;", "\"\""},
    {"backup.keep", "\tkeep = %s;", "3"},
    {"backup.interval_s", "\tinterval_s = %s;", "0"},
    {"backup.on_promotion", "\ton_promotion = %s;", "\"on\""},
    {"backup.restore_points", "\trestore_points = %s;", "\"on\""},
    {"backup.archive_dir", "\tarchive_dir = %s;", "\"/var/lib/pgvigil/wal-archive\""},
    {"backup.restore_command", "\trestore_command = %s;", "\"\""},
    {"backup.max_rate", "\tmax_rate = %s;", "0"},
    {"backup.timeout_s", "\ttimeout_s = %s;", "21600"},
    {"backup.pg_bin_dir", "\tpg_bin_dir = %s;", "\"\""},
    {NULL, "};", NULL},
    {NULL, "metrics = {", NULL},
    {"metrics.listen", "\tlisten = %s;", "\"127.0.0.1:9187\""},
    {NULL, "};", NULL},
    {NULL, "hooks = {", NULL},
    {"hooks.on_failover", "\ton_failover = %s;", "\"\""},
    {"hooks.on_incident", "\ton_incident = %s;", "\"\""},
    {"hooks.on_lock", "\ton_lock = %s;", "\"\""},
    {"hooks.timeout_ms", "\ttimeout_ms = %s;", "10000"},
    {NULL, "};", NULL},
};

/*
 * The template with path's value replaced by value (NULL: the line left out); *line (may be
 * NULL) is set to the line of the replaced setting.
 */
static char *build_at(const char *path, const char *value, int *line)
{
	PvBuf b = {0};
	int n = 0;
	for (size_t i = 0; i < sizeof template_lines / sizeof template_lines[0]; i++) {
		const TemplateLine *t = &template_lines[i];
		if (!t->path) {
			pv_buf_printf(&b, "%s\n", t->line);
			n++;
			continue;
		}
		bool match = path && strcmp(t->path, path) == 0;
		if (match && !value)
			continue;
		pv_buf_printf(&b, t->line, match ? value : t->value);
		pv_buf_putc(&b, '\n');
		n++;
		if (match && line)
			*line = n;
	}
	return pv_buf_steal(&b);
}

static char *build(const char *path, const char *value)
{
	return build_at(path, value, NULL);
}

/* Where a row's value lives in cfg (first element for list members). */
static char *row_base(PvConfig *cfg, const PvOption *o)
{
	if (strncmp(o->path, "cluster.nodes.", 14) == 0)
		return (char *)&cfg->nodes[0];
	if (strncmp(o->path, "pgbouncer.databases.", 20) == 0)
		return (char *)&cfg->pgbouncer.databases[0];
	return (char *)cfg;
}

static bool is_leaf(const PvOption *o)
{
	return o->type != PV_OPT_GROUP && o->type != PV_OPT_LIST;
}

/* The line of the group enclosing row o in the template. */
static int template_group_line(const char *text, const PvOption *o)
{
	if (strncmp(o->path, "cluster.nodes.ssh.", 18) == 0)
		return line_of(text, "\t\t\tssh = {");
	if (strncmp(o->path, "pgbouncer.ssh.", 14) == 0)
		return line_of(text, "\n\tssh = {") + 1;
	if (strncmp(o->path, "cluster.nodes.", 14) == 0 ||
	    strncmp(o->path, "pgbouncer.databases.", 20) == 0) {
		/* the first element's "{" is on the line after "nodes = (" / "databases = (" */
		return line_of(text, o->path[0] == 'c' ? "\tnodes = (" : "\tdatabases = (") + 1;
	}
	char *group = pv_xstrdup(o->path);
	*strchr(group, '.') = '\0';
	char *needle = pv_xasprintf("%s = {", group);
	int line = line_of(text, needle);
	free(needle);
	free(group);
	return line;
}

/* ---- setup ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/pv_test_config.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- tests: loading valid files ---- */

#define MINIMAL                                                                                    \
	"cluster = {\n"                                                                            \
	"\tname = \"demo\";\n"                                                                     \
	"\tnodes = (\n"                                                                            \
	"\t\t{ name = \"n0\"; conninfo = \"host=h0 port=5432\"; },\n"                              \
	"\t\t{ name = \"n1\"; conninfo = \"host=h1\"; priority = 0; }\n"                           \
	"\t);\n"                                                                                   \
	"};\n"

static void test_minimal_defaults(void **state)
{
	(void)state;
	PvConfig *cfg = load_ok(MINIMAL);
	assert_string_equal(cfg->cluster_name, "demo");
	assert_int_equal(cfg->nnodes, 2);
	assert_string_equal(cfg->nodes[0].name, "n0");
	assert_string_equal(cfg->nodes[0].conninfo, "host=h0 port=5432");
	assert_string_equal(cfg->nodes[0].conninfo_redacted, "host=h0 port=5432");
	assert_int_equal(cfg->nodes[0].priority, 100);
	assert_string_equal(cfg->nodes[1].name, "n1");
	assert_int_equal(cfg->nodes[1].priority, 0);
	assert_int_equal(cfg->probe_interval_ms, 500);
	assert_int_equal(cfg->probe_timeout_ms, 1000);
	assert_int_equal(cfg->probe_retry_interval_ms, 100);
	assert_int_equal(cfg->failover_mode, PV_FAILOVER_AUTOMATIC);
	assert_int_equal(cfg->failover_confirm_failures, 3);
	assert_int_equal(cfg->failover_promote_timeout_ms, 30000);
	assert_int_equal(cfg->failover_repoint_timeout_ms, 10000);
	assert_string_equal(cfg->journal_path, "/var/lib/pgvigil/journal.jsonl");
	assert_string_equal(cfg->control_socket, "/run/pgvigil/pgvigil.sock");
	assert_string_equal(cfg->control_pidfile, "/run/pgvigil/pgvigil.sock.pid");
	assert_string_equal(cfg->log_path, "");
	assert_int_equal(cfg->log_level, PV_LOG_INFO);
	assert_false(cfg->pgbouncer.enabled);
	assert_int_equal(cfg->pgbouncer.ndatabases, 0);
	assert_int_equal(pv_config_node_index(cfg, "n1"), 1);
	assert_int_equal(pv_config_node_index(cfg, "n0"), 0);
	assert_int_equal(pv_config_node_index(cfg, "n9"), -1);
	pv_config_free(cfg);
}

static void test_all_settings(void **state)
{
	(void)state;
	PvConfig *cfg = load_ok(
	    "cluster = { name = \"prod-1.eu_west\";\n"
	    "  nodes = ( { name = \"a\"; conninfo = \"postgresql://u@h:5432/db\"; priority = 1000; "
	    "},\n"
	    "            { name = \"b\"; conninfo = \"host=b\"; priority = 7; },\n"
	    "            { name = \"c\"; conninfo = \"host=c\"; } ); };\n"
	    "probe : { interval_ms = 100; timeout_ms = 60000; retry_interval_ms = 0x0a; };\n"
	    "failover = { mode = \"manual\"; confirm_failures = 100; promote_timeout_ms = 600000;\n"
	    "  repoint_timeout_ms = 1000; };\n"
	    "journal = { path = \"/j\" \".jsonl\"; };\n"
	    "control = { socket = \"/s.sock\"; pidfile = \"/p.pid\"; };\n"
	    "log = { path = \"/l.log\"; level = \"debug\"; };\n"
	    "pgbouncer = { admin_conninfo = \"port=6432 dbname=pgbouncer\"; include_file = "
	    "\"/i.ini\";\n"
	    "  timeout_ms = 100;\n"
	    "  databases = ( { name = \"app\"; }, { name = \"b\"; dbname = \"x y\"; options = "
	    "\"pool_size=5\"; } ); };\n");
	assert_string_equal(cfg->cluster_name, "prod-1.eu_west");
	assert_int_equal(cfg->nnodes, 3);
	assert_int_equal(cfg->nodes[0].priority, 1000);
	assert_int_equal(cfg->nodes[1].priority, 7);
	assert_int_equal(cfg->nodes[2].priority, 100);
	assert_string_equal(cfg->nodes[2].name, "c");
	assert_int_equal(cfg->probe_interval_ms, 100);
	assert_int_equal(cfg->probe_timeout_ms, 60000);
	assert_int_equal(cfg->probe_retry_interval_ms, 10);
	assert_int_equal(cfg->failover_mode, PV_FAILOVER_MANUAL);
	assert_int_equal(cfg->failover_confirm_failures, 100);
	assert_int_equal(cfg->failover_promote_timeout_ms, 600000);
	assert_int_equal(cfg->failover_repoint_timeout_ms, 1000);
	assert_string_equal(cfg->journal_path, "/j.jsonl");
	assert_string_equal(cfg->control_socket, "/s.sock");
	assert_string_equal(cfg->control_pidfile, "/p.pid");
	assert_string_equal(cfg->log_path, "/l.log");
	assert_int_equal(cfg->log_level, PV_LOG_DEBUG);
	assert_true(cfg->pgbouncer.enabled);
	assert_string_equal(cfg->pgbouncer.admin_conninfo, "port=6432 dbname=pgbouncer");
	assert_string_equal(cfg->pgbouncer.admin_conninfo_redacted, "port=6432 dbname=pgbouncer");
	assert_string_equal(cfg->pgbouncer.include_file, "/i.ini");
	assert_int_equal(cfg->pgbouncer.timeout_ms, 100);
	assert_int_equal(cfg->pgbouncer.ndatabases, 2);
	assert_string_equal(cfg->pgbouncer.databases[0].name, "app");
	assert_string_equal(cfg->pgbouncer.databases[0].dbname, "app");
	assert_string_equal(cfg->pgbouncer.databases[0].options, "");
	assert_string_equal(cfg->pgbouncer.databases[1].dbname, "x y");
	assert_string_equal(cfg->pgbouncer.databases[1].options, "pool_size=5");
	pv_config_free(cfg);
}

static void test_pgbouncer_defaults(void **state)
{
	(void)state;
	PvConfig *cfg =
	    load_ok(MINIMAL "pgbouncer = { admin_conninfo = \"port=6432\";\n"
	                    "  include_file = \"/i.ini\"; databases = ( { name = \"d\"; } ); };\n");
	assert_true(cfg->pgbouncer.enabled);
	assert_int_equal(cfg->pgbouncer.timeout_ms, 2000);
	assert_int_equal(cfg->pgbouncer.ndatabases, 1);
	assert_string_equal(cfg->pgbouncer.databases[0].dbname, "d");
	assert_string_equal(cfg->pgbouncer.databases[0].options, "");
	pv_config_free(cfg);

	/* the pidfile default follows a changed socket */
	cfg = load_ok(MINIMAL "control = { socket = \"/x/y.sock\"; };\n");
	assert_string_equal(cfg->control_pidfile, "/x/y.sock.pid");
	pv_config_free(cfg);
}

static void test_template_loads(void **state)
{
	(void)state;
	char *text = build(NULL, NULL);
	PvConfig *cfg = load_ok(text);
	assert_true(cfg->pgbouncer.enabled);
	pv_config_free(cfg);
	free(text);
}

static void sample_path(char *buf, size_t size)
{
	const char *src = getenv("PV_SOURCE_DIR");
	snprintf(buf, size, "%s/conf/pgvigil.conf", src && *src ? src : ".");
}

static void test_sample_loads(void **state)
{
	(void)state;
	char path[PATH_MAX];
	PvBuf errors = {0};
	sample_path(path, sizeof path);
	PvConfig *cfg = load_path(path, &errors);
	if (!cfg)
		fail_msg("%s does not load:\n%s", path, errors.data);
	assert_true(cfg->pgbouncer.enabled);
	assert_true(cfg->nnodes >= 2);
	/* the sample states every default: it loads to the same values as the defaults */
	PvConfig *min = load_ok(MINIMAL);
	assert_int_equal(cfg->probe_interval_ms, min->probe_interval_ms);
	assert_int_equal(cfg->probe_timeout_ms, min->probe_timeout_ms);
	assert_int_equal(cfg->probe_retry_interval_ms, min->probe_retry_interval_ms);
	assert_int_equal(cfg->failover_mode, min->failover_mode);
	assert_int_equal(cfg->failover_confirm_failures, min->failover_confirm_failures);
	assert_int_equal(cfg->failover_promote_timeout_ms, min->failover_promote_timeout_ms);
	assert_int_equal(cfg->failover_repoint_timeout_ms, min->failover_repoint_timeout_ms);
	assert_string_equal(cfg->journal_path, min->journal_path);
	assert_string_equal(cfg->control_socket, min->control_socket);
	assert_string_equal(cfg->control_pidfile, min->control_pidfile);
	assert_string_equal(cfg->log_path, min->log_path);
	assert_int_equal(cfg->log_level, min->log_level);
	assert_int_equal(cfg->pgbouncer.timeout_ms, 2000);
	pv_config_free(min);
	pv_config_free(cfg);
	pv_buf_free(&errors);
}

/* ---- tests: generated from the option table ---- */

static void expect_one_error(const char *text, const char *want_fmt, ...) PV_PRINTF(2, 3);
static void expect_one_error(const char *text, const char *want_fmt, ...)
{
	char *path = NULL;
	char *errs = load_err(text, &path);
	PvBuf want = {0};
	va_list ap;
	va_start(ap, want_fmt);
	pv_buf_printf(&want, "%s:", path);
	pv_buf_vprintf(&want, want_fmt, ap);
	pv_buf_putc(&want, '\n');
	va_end(ap);
	if (strcmp(errs, want.data) != 0)
		fail_msg("for\n%s\nwant: %sgot:  %s", text, want.data, errs);
	pv_buf_free(&want);
	free(errs);
	free(path);
}

static void test_int_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < pv_noptions; i++) {
		const PvOption *o = &pv_options[i];
		if (o->type != PV_OPT_INT)
			continue;
		const char *leaf = pv_option_leaf(o);
		char *disp = strncmp(o->path, "cluster.nodes.", 14) == 0
		                 ? pv_xasprintf("cluster.nodes[0].%s", o->path + 14)
		             : strncmp(o->path, "pgbouncer.databases.", 20) == 0
		                 ? pv_xasprintf("pgbouncer.databases[0].%s", leaf)
		                 : pv_xstrdup(o->path);
		int bounds[2] = {o->min, o->max};
		for (int k = 0; k < 2; k++) {
			char *v = pv_xasprintf("%d", bounds[k]);
			char *text = build(o->path, v);
			PvConfig *cfg = load_ok(text);
			assert_int_equal(*(int *)(row_base(cfg, o) + o->offset), bounds[k]);
			pv_config_free(cfg);
			free(text);
			free(v);
		}
		struct {
			char *value;
			char *problem;
		} bad[] = {
		    {pv_xasprintf("%d", o->min - 1),
		     pv_xasprintf("%d is out of range %d..%d", o->min - 1, o->min, o->max)},
		    {pv_xasprintf("%d", o->max + 1),
		     pv_xasprintf("%d is out of range %d..%d", o->max + 1, o->min, o->max)},
		    /* wraps to min in libconfig 1.5 */
		    {pv_xasprintf("%lld", 4294967296LL + o->min),
		     pv_xasprintf("%lld is out of range %d..%d", 4294967296LL + o->min, o->min,
		                  o->max)},
		    {pv_xasprintf("%lld", -4294967296LL + o->max),
		     pv_xasprintf("%lld is out of range %d..%d", -4294967296LL + o->max, o->min,
		                  o->max)},
		    {pv_xstrdup("99999999999999999999999"),
		     pv_xasprintf("99999999999999999999999 is out of range %d..%d", o->min,
		                  o->max)},
		    {pv_xasprintf("0x1%08x", o->min),
		     pv_xasprintf("0x1%08x is out of range %d..%d", o->min, o->min, o->max)},
		    {pv_xasprintf("%dL", o->min),
		     pv_xstrdup("expected an integer, got a 64-bit integer")},
		    {pv_xasprintf("%dLL", o->min),
		     pv_xstrdup("expected an integer, got a 64-bit integer")},
		    {pv_xstrdup("\"500\""), pv_xstrdup("expected an integer, got a string")},
		    {pv_xstrdup("1.5"), pv_xstrdup("expected an integer, got a float")},
		    {pv_xstrdup("1e3"), pv_xstrdup("expected an integer, got a float")},
		    {pv_xstrdup("true"), pv_xstrdup("expected an integer, got a boolean")},
		    {pv_xstrdup("[1, 2]"), pv_xstrdup("expected an integer, got an array")},
		    {pv_xstrdup("{ a = 1; }"), pv_xstrdup("expected an integer, got a group")},
		    {pv_xstrdup("( 1 )"), pv_xstrdup("expected an integer, got a list")},
		};
		for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
			int line = 0;
			char *text = build_at(o->path, bad[k].value, &line);
			expect_one_error(text, "%d: %s: %s", line, disp, bad[k].problem);
			free(text);
			free(bad[k].value);
			free(bad[k].problem);
		}
		free(disp);
	}
}

static void test_string_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < pv_noptions; i++) {
		const PvOption *o = &pv_options[i];
		if (!is_leaf(o) || o->type == PV_OPT_INT)
			continue;
		const char *leaf = pv_option_leaf(o);
		char *disp = strncmp(o->path, "cluster.nodes.", 14) == 0
		                 ? pv_xasprintf("cluster.nodes[0].%s", o->path + 14)
		             : strncmp(o->path, "pgbouncer.databases.", 20) == 0
		                 ? pv_xasprintf("pgbouncer.databases[0].%s", leaf)
		                 : pv_xstrdup(o->path);
		const char *values[] = {"5", "5L", "true", "1.0"};
		const char *types[] = {"an integer", "a 64-bit integer", "a boolean", "a float"};
		for (size_t k = 0; k < 4; k++) {
			int line = 0;
			char *text = build_at(o->path, values[k], &line);
			expect_one_error(text, "%d: %s: expected a string, got %s", line, disp,
			                 types[k]);
			free(text);
		}
		/* a control character is refused everywhere */
		char *text = build(o->path, "\"a\\nb\"");
		char *errs = load_err(text, NULL);
		assert_non_null(
		    strstr(errs, o->type == PV_OPT_ENUM ? "unknown value" : "control character"));
		assert_int_equal(count_lines(errs), 1);
		free(errs);
		free(text);
		/* so is a string that is too long */
		if (o->type != PV_OPT_ENUM) {
			int max = o->type == PV_OPT_NAME       ? PV_NAME_MAX - 1
			          : o->type == PV_OPT_CONNINFO ? 0
			                                       : o->max;
			if (max > 0) {
				PvBuf v = {0};
				pv_buf_putc(&v, '"');
				for (int c = 0; c < max; c++)
					pv_buf_putc(&v, 'a');
				pv_buf_putc(&v, '"');
				text = build(o->path, v.data);
				if (strcmp(o->path, "backup.host") == 0) {
					/* as long as it may be, but no node has that name */
					errs = load_err(text, NULL);
					assert_non_null(strstr(errs, "backup.host: no node"));
					free(errs);
				} else {
					PvConfig *cfg = load_ok(text);
					pv_config_free(cfg);
				}
				free(text);
				v.data[v.len - 1] = 'a';
				pv_buf_putc(&v, '"');
				text = build(o->path, v.data);
				errs = load_err(text, NULL);
				assert_non_null(strstr(errs, "too long"));
				assert_int_equal(count_lines(errs), 1);
				free(errs);
				free(text);
				pv_buf_free(&v);
			}
		}
		free(disp);
	}
}

static void test_required_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < pv_noptions; i++) {
		const PvOption *o = &pv_options[i];
		if (!is_leaf(o) || !(o->flags & PV_OPT_REQUIRED))
			continue;
		char *text = build(o->path, NULL);
		char *disp = strncmp(o->path, "cluster.nodes.", 14) == 0
		                 ? pv_xasprintf("cluster.nodes[0].%s", o->path + 14)
		             : strncmp(o->path, "pgbouncer.databases.", 20) == 0
		                 ? pv_xasprintf("pgbouncer.databases[0].%s", pv_option_leaf(o))
		                 : pv_xstrdup(o->path);
		expect_one_error(text, "%d: %s: missing required setting",
		                 template_group_line(text, o), disp);
		free(disp);
		free(text);
	}
}

static void test_default_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < pv_noptions; i++) {
		const PvOption *o = &pv_options[i];
		if (!is_leaf(o) || (o->flags & PV_OPT_REQUIRED))
			continue;
		char *text = build(o->path, NULL);
		PvConfig *cfg = load_ok(text);
		char *base = row_base(cfg, o);
		char *want = NULL;
		if (o->def_from) {
			const PvOption *src = pv_option_find(o->def_from);
			assert_non_null(src);
			const char *from = src->type == PV_OPT_NAME
			                       ? base + src->offset
			                       : *(char **)(base + src->offset);
			want = pv_xasprintf("%s%s", from, o->def);
		} else {
			want = pv_xstrdup(o->def);
		}
		switch (o->type) {
		case PV_OPT_INT:
			assert_int_equal(*(int *)(base + o->offset), atoi(want));
			assert_true(atoi(want) >= o->min && atoi(want) <= o->max);
			break;
		case PV_OPT_ENUM:
			assert_string_equal(o->en->name(*(int *)(base + o->offset)), want);
			break;
		default:
			assert_string_equal(*(char **)(base + o->offset), want);
			break;
		}
		free(want);
		pv_config_free(cfg);
		free(text);
	}
}

static void test_setting_names(void **state)
{
	(void)state;
	/* exactly the leaf rows of the option table, in table order, each once, each in the
	 * template above (so every other test covers it) */
	const char *const *names = pv_config_setting_names();
	size_t n = 0;
	for (size_t i = 0; i < pv_noptions; i++) {
		if (!is_leaf(&pv_options[i]))
			continue;
		assert_non_null(names[n]);
		assert_string_equal(names[n], pv_options[i].path);
		assert_non_null(strchr(names[n], '.'));
		for (size_t k = 0; k < n; k++)
			assert_string_not_equal(names[k], names[n]);
		bool in_template = false;
		for (size_t t = 0; t < sizeof template_lines / sizeof template_lines[0]; t++)
			if (template_lines[t].path && strcmp(template_lines[t].path, names[n]) == 0)
				in_template = true;
		if (!in_template)
			fail_msg("%s is not in the test template", names[n]);
		n++;
	}
	assert_null(names[n]);
	assert_true(n >= 22);
}

/* ---- tests: the error table ---- */

#define CL                                                                                         \
	"cluster = { name = \"demo\"; nodes = ( { name = \"n0\"; conninfo = \"host=h0\"; }, "      \
	"{ name = \"n1\"; conninfo = \"host=h1\"; } ); };\n"
#define PGB_HEAD "pgbouncer = { admin_conninfo = \"port=6432\"; include_file = \"/i.ini\";\n"

typedef struct {
	const char *name;
	const char *text;
	const char *want; /* exact output; %F is the file */
} ErrorCase;

static const ErrorCase error_cases[] = {
    {"syntax error", CL "probe = { interval_ms = ; };\n", "%F:2: syntax error\n"},
    {"syntax error, unterminated group", CL "probe = { interval_ms = 5;\n\n",
     "%F:4: syntax error\n"},
    {"libconfig duplicate", CL "probe = { interval_ms = 500;\n interval_ms = 600; };\n",
     "%F:3: duplicate setting name\n"},
    {"empty file", "", "%F: cluster: missing required setting\n"},
    {"comments only", "# nothing\n// here\n", "%F: cluster: missing required setting\n"},
    {"out of range", CL "probe = { interval_ms = 50; };\n",
     "%F:2: probe.interval_ms: 50 is out of range 100..60000\n"},
    {"unknown top level", CL "probes = { interval_ms = 500; };\n",
     "%F:2: probes: unknown setting\n"},
    {"unknown in group", CL "probe = {\n  intervl_ms = 500; };\n",
     "%F:3: probe.intervl_ms: unknown setting\n"},
    {"unknown in node",
     "cluster = { name = \"demo\"; nodes = (\n { name = \"n0\"; conninfo = \"host=h0\"; },\n"
     " { name = \"n1\"; conninfo = \"host=h1\"; prio = 5; } ); };\n",
     "%F:3: cluster.nodes[1].prio: unknown setting\n"},
    {"unknown in database", CL PGB_HEAD "databases = ( { name = \"a\"; pool = 3; } ); };\n",
     "%F:3: pgbouncer.databases[0].pool: unknown setting\n"},
    {"unknown in cluster",
     "cluster = { name = \"demo\"; nodes = ( { name = \"n0\"; conninfo = "
     "\"host=h0\"; }, { name = \"n1\"; conninfo = \"host=h1\"; } );\n"
     " primary = \"n0\"; };\n",
     "%F:2: cluster.primary: unknown setting\n"},
    {"wrong type in node",
     "cluster = { name = \"demo\"; nodes = (\n"
     " { name = \"n0\"; conninfo = \"host=h0\"; priority = \"high\"; },\n"
     " { name = \"n1\"; conninfo = \"host=h1\"; } ); };\n",
     "%F:2: cluster.nodes[0].priority: expected an integer, got a string\n"},
    {"group given a scalar", CL "probe = 5;\n", "%F:2: probe: expected a group, got an integer\n"},
    {"group given a list", CL "log = ( );\n", "%F:2: log: expected a group, got a list\n"},
    {"cluster given a string", "cluster = \"demo\";\n",
     "%F:1: cluster: expected a group, got a string\n"},
    {"nodes given a group", "cluster = {\n name = \"demo\";\n nodes = { name = \"n0\"; }; };\n",
     "%F:3: cluster.nodes: expected a list, got a group\n"},
    {"nodes given an array", "cluster = {\n name = \"demo\";\n nodes = [ \"n0\", \"n1\" ]; };\n",
     "%F:3: cluster.nodes: expected a list, got an array\n"},
    {"node not a group",
     "cluster = { name = \"demo\"; nodes = (\n { name = \"n0\"; conninfo = \"host=h0\"; },\n"
     " { name = \"n1\"; conninfo = \"host=h1\"; },\n \"n2\" ); };\n",
     "%F:4: cluster.nodes[2]: expected a group, got a string\n"},
    {"missing cluster.name",
     "cluster = {\n nodes = ( { name = \"n0\"; conninfo = \"host=h0\"; },\n"
     " { name = \"n1\"; conninfo = \"host=h1\"; } ); };\n",
     "%F:1: cluster.name: missing required setting\n"},
    {"missing cluster.nodes", "\ncluster = {\n name = \"demo\"; };\n",
     "%F:2: cluster.nodes: missing required setting\n"},
    {"missing node name",
     "cluster = { name = \"demo\"; nodes = (\n { name = \"n0\"; conninfo = \"host=h0\"; },\n"
     " {\n conninfo = \"host=h1\"; } ); };\n",
     "%F:3: cluster.nodes[1].name: missing required setting\n"},
    {"no nodes", "cluster = { name = \"demo\";\n nodes = ( ); };\n",
     "%F:2: cluster.nodes: at least 2 nodes are required\n"},
    {"one node",
     "cluster = { name = \"demo\";\n nodes = ( { name = \"n0\"; conninfo = \"host=h0\"; } ); };\n",
     "%F:2: cluster.nodes: at least 2 nodes are required\n"},
    {"duplicate node name",
     "cluster = { name = \"demo\"; nodes = (\n"
     "  { name = \"n0\"; conninfo = \"host=h0\"; },\n"
     "  { name = \"n0\"; conninfo = \"host=h1\"; },\n"
     "  { name = \"n2\"; conninfo = \"host=h2\"; },\n"
     "  { name = \"n2\"; conninfo = \"host=h3\"; },\n"
     "  { name = \"n0\"; conninfo = \"host=h4\"; } ); };\n",
     "%F:3: cluster.nodes[1].name: duplicate node name \"n0\" (first at line 2)\n"
     "%F:5: cluster.nodes[3].name: duplicate node name \"n2\" (first at line 4)\n"
     "%F:6: cluster.nodes[4].name: duplicate node name \"n0\" (first at line 2)\n"},
    {"invalid node name",
     "cluster = { name = \"demo\"; nodes = (\n { name = \"n 0\"; conninfo = \"host=h0\"; },\n"
     " { name = \"n/1\\\"\"; conninfo = \"host=h1\"; } ); };\n",
     "%F:2: cluster.nodes[0].name: invalid name \"n 0\" (allowed: A-Z a-z 0-9 _ . -)\n"
     "%F:3: cluster.nodes[1].name: invalid name \"n/1\\\"\" (allowed: A-Z a-z 0-9 _ . -)\n"},
    {"empty node name",
     "cluster = { name = \"demo\"; nodes = (\n { name = \"\"; conninfo = \"host=h0\"; },\n"
     " { name = \"n1\"; conninfo = \"host=h1\"; } ); };\n",
     "%F:2: cluster.nodes[0].name: must not be empty\n"},
    {"node name too long",
     "cluster = { name = \"demo\"; nodes = (\n { name = "
     "\"n123456789012345678901234567890123456789012345678901234567890123\"; conninfo = "
     "\"host=h0\"; },\n"
     " { name = \"n1\"; conninfo = \"host=h1\"; } ); };\n",
     "%F:2: cluster.nodes[0].name: name "
     "\"n123456789012345678901234567890123456789012345678901234567890123\" is too long (at most "
     "63 characters)\n"},
    {"invalid cluster name",
     "cluster = {\n name = \"my cluster\";\n nodes = ( { name = \"n0\"; "
     "conninfo = \"host=h0\"; }, { name = \"n1\"; conninfo = \"host=h1\"; } ); };\n",
     "%F:2: cluster.name: invalid name \"my cluster\" (allowed: A-Z a-z 0-9 _ . -)\n"},
    {"empty conninfo",
     "cluster = { name = \"demo\"; nodes = (\n { name = \"n0\"; conninfo = \"\"; },\n"
     " { name = \"n1\"; conninfo = \"  \"; } ); };\n",
     "%F:2: cluster.nodes[0].conninfo: must not be empty\n"
     "%F:3: cluster.nodes[1].conninfo: must not be empty\n"},
    {"invalid conninfo",
     "cluster = { name = \"demo\"; nodes = (\n { name = \"n0\"; conninfo = \"host=h0 hots=x\"; },\n"
     " { name = \"n1\"; conninfo = \"host='h1\"; } ); };\n",
     "%F:2: cluster.nodes[0].conninfo: invalid connection option \"hots\"\n"
     "%F:3: cluster.nodes[1].conninfo: unterminated quoted string in connection info string\n"},
    {"unknown enum values",
     CL "failover = { mode = \"auto\"; };\nlog = { level = \"WARNING\"; };\n",
     "%F:2: failover.mode: unknown value \"auto\" (expected automatic or manual)\n"
     "%F:3: log.level: unknown value \"WARNING\" (expected debug, info, warning or error)\n"},
    {"control character", CL "journal = { path = \"/a\\tb\"; };\n",
     "%F:2: journal.path: contains a control character\n"},
    {"empty path", CL "journal = { path = \"\"; };\ncontrol = { socket = \"\"; };\n",
     "%F:2: journal.path: must not be empty\n%F:3: control.socket: must not be empty\n"},
    {"socket path too long",
     CL "control = { socket = "
        "\"/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"; };\n",
     "%F:2: control.socket: is too long (117 bytes, at most 107)\n"},
    {"pgbouncer incomplete", CL "pgbouncer = {\n timeout_ms = 2000; };\n",
     "%F:2: pgbouncer.admin_conninfo: missing required setting\n"
     "%F:2: pgbouncer.include_file: missing required setting\n"
     "%F:2: pgbouncer.databases: missing required setting\n"},
    {"pgbouncer no databases", CL PGB_HEAD " databases = ( ); };\n",
     "%F:3: pgbouncer.databases: at least one database is required\n"},
    {"pgbouncer duplicate database",
     CL PGB_HEAD " databases = ( { name = \"a\"; },\n { name = \"b\"; },\n { name = \"a\"; dbname "
                 "= \"x\"; } ); };\n",
     "%F:5: pgbouncer.databases[2].name: duplicate database name \"a\" (first at line 3)\n"},
    {"pgbouncer database errors",
     CL PGB_HEAD " databases = ( { name = \"a b\"; dbname = \"\"; options = 5; } ); };\n",
     "%F:3: pgbouncer.databases[0].name: invalid name \"a b\" (allowed: A-Z a-z 0-9 _ . -)\n"
     "%F:3: pgbouncer.databases[0].dbname: must not be empty\n"
     "%F:3: pgbouncer.databases[0].options: expected a string, got an integer\n"},
    {"int64 and overflow",
     CL "probe = { interval_ms = 500L;\n timeout_ms = 3000000000;\n retry_interval_ms = "
        "4294967396; };\n"
        "failover = { confirm_failures = -4294967293; };\n",
     "%F:2: probe.interval_ms: expected an integer, got a 64-bit integer\n"
     "%F:3: probe.timeout_ms: 3000000000 is out of range 100..60000\n"
     "%F:4: probe.retry_interval_ms: 4294967396 is out of range 10..10000\n"
     "%F:5: failover.confirm_failures: -4294967293 is out of range 1..100\n"},
    {"overflow on a shared line",
     "cluster = { name = \"demo\"; nodes = ( { name = \"n0\"; conninfo = \"host=h0\"; priority = "
     "1; }, "
     "{ name = \"n1\"; conninfo = \"host=h1\"; priority = 4294967297; } ); };\n",
     "%F:1: cluster.nodes[1].priority: 4294967297 is out of range 0..1000\n"},
    {"overflow literal in comments and strings is ignored",
     CL "# interval_ms = 99999999999;\n/* interval_ms = 99999999999; */\n"
        "journal = { path = \"/x interval_ms = 99999999999;\"; };\nprobe = { interval_ms = "
        "99999999999; };\n",
     "%F:5: probe.interval_ms: 99999999999 is out of range 100..60000\n"},
    {"many problems, sorted by line",
     "cluster = {\n name = \"x y\";\n nodes = (\n  { name = \"n0\"; conninfo = \"host=h0\"; },\n"
     "  { name = \"n0\"; conninfo = \"host=h1\"; priority = 1001; } ); };\n"
     "probe = { interval_ms = 50; timeout_ms = \"1s\"; };\n"
     "probe_extra = 1;\n"
     "failover = { mode = \"sometimes\"; };\n",
     "%F:2: cluster.name: invalid name \"x y\" (allowed: A-Z a-z 0-9 _ . -)\n"
     "%F:5: cluster.nodes[1].priority: 1001 is out of range 0..1000\n"
     "%F:5: cluster.nodes[1].name: duplicate node name \"n0\" (first at line 4)\n"
     "%F:6: probe.interval_ms: 50 is out of range 100..60000\n"
     "%F:6: probe.timeout_ms: expected an integer, got a string\n"
     "%F:7: probe_extra: unknown setting\n"
     "%F:8: failover.mode: unknown value \"sometimes\" (expected automatic or manual)\n"},
};

static void test_error_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
		const ErrorCase *c = &error_cases[i];
		char *path = NULL;
		char *errs = load_err(c->text, &path);
		char *want = expand(c->want, path);
		if (strcmp(errs, want) != 0)
			fail_msg("case \"%s\"\nwant:\n%sgot:\n%s", c->name, want, errs);
		free(want);
		free(errs);
		free(path);
	}
}

static void test_too_many(void **state)
{
	(void)state;
	PvBuf t = {0};
	pv_buf_puts(&t, "cluster = { name = \"demo\";\n nodes = (\n");
	for (int i = 0; i <= PV_MAX_NODES; i++)
		pv_buf_printf(&t, "  { name = \"n%d\"; conninfo = \"host=h%d\"; }%s\n", i, i,
		              i < PV_MAX_NODES ? "," : "");
	pv_buf_puts(&t, " ); };\n" PGB_HEAD " databases = (\n");
	for (int i = 0; i <= PV_MAX_POOLER_DBS; i++)
		pv_buf_printf(&t, "  { name = \"d%d\"; }%s\n", i, i < PV_MAX_POOLER_DBS ? "," : "");
	pv_buf_puts(&t, " ); };\n");
	char *path = NULL;
	char *errs = load_err(t.data, &path);
	char *want = pv_xasprintf("%s:2: cluster.nodes: at most 32 nodes are allowed, got 33\n"
	                          "%s:38: pgbouncer.databases: at most 64 databases are allowed, "
	                          "got 65\n",
	                          path, path);
	assert_string_equal(errs, want);
	free(want);
	free(errs);
	free(path);

	/* exactly the maximum loads */
	pv_buf_reset(&t);
	pv_buf_puts(&t, "cluster = { name = \"demo\";\n nodes = (\n");
	for (int i = 0; i < PV_MAX_NODES; i++)
		pv_buf_printf(&t, "  { name = \"n%d\"; conninfo = \"host=h%d\"; }%s\n", i, i,
		              i < PV_MAX_NODES - 1 ? "," : "");
	pv_buf_puts(&t, " ); };\n" PGB_HEAD " databases = (\n");
	for (int i = 0; i < PV_MAX_POOLER_DBS; i++)
		pv_buf_printf(&t, "  { name = \"d%d\"; }%s\n", i,
		              i < PV_MAX_POOLER_DBS - 1 ? "," : "");
	pv_buf_puts(&t, " ); };\n");
	PvConfig *cfg = load_ok(t.data);
	assert_int_equal(cfg->nnodes, PV_MAX_NODES);
	assert_int_equal(cfg->pgbouncer.ndatabases, PV_MAX_POOLER_DBS);
	assert_string_equal(cfg->nodes[PV_MAX_NODES - 1].name, "n31");
	assert_string_equal(cfg->pgbouncer.databases[PV_MAX_POOLER_DBS - 1].dbname, "d63");
	pv_config_free(cfg);
	pv_buf_free(&t);
}

static void test_unreadable(void **state)
{
	(void)state;
	PvBuf errors = {0};
	char *missing = pv_xasprintf("%s/does-not-exist.conf", tmpdir);
	assert_null(load_path(missing, &errors));
	char *want = pv_xasprintf("%s: cannot read: No such file or directory\n", missing);
	assert_string_equal(errors.data, want);
	free(want);

	pv_buf_reset(&errors);
	assert_null(load_path(tmpdir, &errors));
	want = pv_xasprintf("%s: cannot read: Is a directory\n", tmpdir);
	assert_string_equal(errors.data, want);
	free(want);

	if (geteuid() != 0) {
		char *path = write_named("noperm.conf", MINIMAL);
		assert_int_equal(chmod(path, 0), 0);
		pv_buf_reset(&errors);
		assert_null(load_path(path, &errors));
		want = pv_xasprintf("%s: cannot read: Permission denied\n", path);
		assert_string_equal(errors.data, want);
		free(want);
		free(path);
	}

	/* errors may be NULL */
	PvConfig *cfg = NULL;
	assert_int_equal(pv_config_load(missing, &cfg, NULL), PV_ERR_CONFIG);
	assert_null(cfg);
	char *bad = write_conf("probe = 1;\n");
	assert_int_equal(pv_config_load(bad, &cfg, NULL), PV_ERR_CONFIG);
	assert_null(cfg);
	free(bad);
	bad = write_conf("probe = ;\n");
	assert_int_equal(pv_config_load(bad, &cfg, NULL), PV_ERR_CONFIG);
	free(bad);
	free(missing);
	pv_buf_free(&errors);
}

/* ---- tests: include ---- */

static void test_include_dir(void **state)
{
	(void)state;
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof cwd));
	char *sub = pv_xasprintf("%s/inc", tmpdir);
	assert_int_equal(mkdir(sub, 0700), 0);
	char *p1 = write_named("inc/nodes.conf",
	                       "nodes = ( { name = \"n0\"; conninfo = \"host=h0\"; },\n"
	                       "          { name = \"n1\"; conninfo = \"host=h1\"; } );\n");
	char *p2 =
	    write_named("inc/probe.conf", "interval_ms = 250;\n@include \"inc/more.conf\"\n");
	char *p3 = write_named("inc/more.conf", "timeout_ms = 750;\n");
	char *main_path = write_named("main.conf", "cluster = { name = \"demo\";\n"
	                                           "@include \"inc/nodes.conf\"\n};\n"
	                                           "probe = {\n@include \"inc/probe.conf\"\n};\n");
	/* run from elsewhere: includes are relative to the file's directory, not the cwd */
	assert_int_equal(chdir("/"), 0);
	PvBuf errors = {0};
	PvConfig *cfg = load_path(main_path, &errors);
	if (!cfg)
		fail_msg("%s", errors.data);
	assert_int_equal(cfg->nnodes, 2);
	assert_int_equal(cfg->probe_interval_ms, 250);
	assert_int_equal(cfg->probe_timeout_ms, 750);
	pv_config_free(cfg);

	/* a relative main path works the same */
	assert_int_equal(chdir(tmpdir), 0);
	cfg = load_path("main.conf", &errors);
	if (!cfg)
		fail_msg("%s", errors.data);
	assert_int_equal(cfg->probe_timeout_ms, 750);
	pv_config_free(cfg);

	/* errors inside an included file name that file and its line */
	assert_int_equal(chdir("/"), 0);
	free(write_named("inc/more.conf",
	                 "timeout_ms = 75;\nretry_interval_ms = 99999999999;\nx = 1;\n"));
	pv_buf_reset(&errors);
	assert_null(load_path(main_path, &errors));
	char *want =
	    pv_xasprintf("%s/inc/more.conf:1: probe.timeout_ms: 75 is out of range 100..60000\n"
	                 "%s/inc/more.conf:2: probe.retry_interval_ms: 99999999999 is out of "
	                 "range 10..10000\n"
	                 "%s/inc/more.conf:3: probe.x: unknown setting\n",
	                 tmpdir, tmpdir, tmpdir);
	assert_string_equal(errors.data, want);
	free(want);

	/* a syntax error in an included file */
	free(write_named("inc/more.conf", "timeout_ms = 750;\n\nretry_interval_ms == 3;\n"));
	pv_buf_reset(&errors);
	assert_null(load_path(main_path, &errors));
	want = pv_xasprintf("%s/inc/more.conf:3: syntax error\n", tmpdir);
	assert_string_equal(errors.data, want);
	free(want);

	/* a missing included file */
	assert_int_equal(unlink(p3), 0);
	pv_buf_reset(&errors);
	assert_null(load_path(main_path, &errors));
	want = pv_xasprintf("%s/inc/probe.conf:2: cannot open include file\n", tmpdir);
	assert_string_equal(errors.data, want);
	free(want);

	assert_int_equal(chdir(cwd), 0);
	pv_buf_free(&errors);
	free(main_path);
	free(p1);
	free(p2);
	free(p3);
	free(sub);
}

/* ---- tests: redaction and print ---- */

static void test_redaction(void **state)
{
	(void)state;
	PvConfig *cfg = load_ok(
	    "cluster = { name = \"demo\"; nodes = (\n"
	    " { name = \"n0\"; conninfo = \"host=h0 user=pv password=Sekr1tA\"; },\n"
	    " { name = \"n1\"; conninfo = \"host=h1 password = 'Sekr1t B' port=5\"; },\n"
	    " { name = \"n2\"; conninfo = \"postgresql://pv:Sekr1tC@h2:5432/db?password=Sekr1tD\"; "
	    "} ); };\n"
	    "pgbouncer = { admin_conninfo = \"port=6432 dbname=pgbouncer password=Sekr1tE\";\n"
	    " include_file = \"/i.ini\"; databases = ( { name = \"a\"; } ); };\n");
	assert_string_equal(cfg->nodes[0].conninfo, "host=h0 user=pv password=Sekr1tA");
	assert_string_equal(cfg->nodes[0].conninfo_redacted, "host=h0 user=pv password=********");
	assert_string_equal(cfg->nodes[1].conninfo_redacted, "host=h1 password = ******** port=5");
	assert_null(strstr(cfg->nodes[2].conninfo_redacted, "Sekr1t"));
	assert_string_equal(cfg->pgbouncer.admin_conninfo_redacted,
	                    "port=6432 dbname=pgbouncer password=********");
	char *out = print_cfg(cfg);
	assert_null(strstr(out, "Sekr1t"));
	assert_non_null(strstr(out, "password=********"));
	/* the redacted output still loads */
	char *path = write_conf(out);
	PvBuf errors = {0};
	PvConfig *again = load_path(path, &errors);
	if (!again)
		fail_msg("%s", errors.data);
	pv_config_free(again);
	pv_buf_free(&errors);
	free(path);
	free(out);
	pv_config_free(cfg);
}

static void test_errors_hide_passwords(void **state)
{
	(void)state;
	static const struct {
		const char *conninfo;
		const char *problem;
	} cases[] = {
	    {"host=h0 password=Sekr1t hots=x", "invalid connection option \"...\""},
	    {"postgresql://pv:Sekr1t%zz@h0/db", "invalid connection string (the error is in the "
	                                        "password, not shown)"},
	    {"postgresql://pv@h0/db?password=Sekr1t%zz", "invalid connection string (the error is "
	                                                 "in the password, not shown)"},
	    {"postgresql://pv:Sekr1t@[h0/db", NULL},
	    {"host=h0 password=Sekr1t Part2",
	     "missing \"=\" after \"...\" in connection info string"},
	    {"host=h0 password='Sekr1t", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = pv_xasprintf("cluster = { name = \"demo\"; nodes = (\n"
		                          " { name = \"n0\"; conninfo = \"%s\"; },\n"
		                          " { name = \"n1\"; conninfo = \"host=h1\"; } ); };\n",
		                          cases[i].conninfo);
		char *path = NULL;
		char *errs = load_err(text, &path);
		if (strstr(errs, "Sekr1t") || strstr(errs, "Part2"))
			fail_msg("password shown for %s: %s", cases[i].conninfo, errs);
		if (cases[i].problem) {
			char *want = pv_xasprintf("%s:2: cluster.nodes[0].conninfo: %s\n", path,
			                          cases[i].problem);
			assert_string_equal(errs, want);
			free(want);
		} else {
			assert_int_equal(count_lines(errs), 1);
			assert_non_null(strstr(errs, ":2: cluster.nodes[0].conninfo: "));
		}
		free(errs);
		free(path);
		free(text);
	}
}

static void assert_round_trip(PvConfig *cfg)
{
	char *first = print_cfg(cfg);
	char *path = write_conf(first);
	PvBuf errors = {0};
	PvConfig *again = load_path(path, &errors);
	if (!again)
		fail_msg("printed config does not load:\n%s\n---\n%s", first, errors.data);
	char *second = print_cfg(again);
	assert_string_equal(first, second);
	pv_config_free(again);
	pv_buf_free(&errors);
	free(second);
	free(path);
	free(first);
}

static void test_print_round_trip(void **state)
{
	(void)state;
	/* defaults filled in */
	PvConfig *cfg = load_ok(MINIMAL);
	char *out = print_cfg(cfg);
	for (const char *const *n = pv_config_setting_names(); *n; n++) {
		if (strncmp(*n, "pgbouncer.", 10) == 0 || strncmp(*n, "cluster.nodes.ssh.", 18) == 0 ||
		    strncmp(*n, "metrics.", 8) == 0)
			continue; /* absent group: not printed */
		const char *leaf = strrchr(*n, '.') + 1;
		char *needle = pv_xasprintf("\t%s = ", leaf);
		if (!strstr(out, needle))
			fail_msg("%s missing from\n%s", *n, out);
		free(needle);
	}
	assert_null(strstr(out, "pgbouncer = {")); /* the group; fencing.methods names it too */
	assert_non_null(strstr(out, "\tpidfile = \"/run/pgvigil/pgvigil.sock.pid\";\n"));
	assert_non_null(strstr(out, "\tmode = \"automatic\";\n"));
	assert_non_null(strstr(out, "\tlevel = \"info\";\n"));
	free(out);
	assert_round_trip(cfg);
	pv_config_free(cfg);

	/* every setting, strings that need escaping */
	char *text = build("pgbouncer.databases.options", "\"pool_size=20 x=\\\"q\\\\\\\\\\\" y\"");
	cfg = load_ok(text);
	assert_string_equal(cfg->pgbouncer.databases[0].options, "pool_size=20 x=\"q\\\\\" y");
	out = print_cfg(cfg);
	assert_non_null(strstr(out, "options = \"pool_size=20 x=\\\"q\\\\\\\\\\\" y\";"));
	free(out);
	assert_round_trip(cfg);
	pv_config_free(cfg);
	free(text);

	/* the sample */
	char path[PATH_MAX];
	PvBuf errors = {0};
	sample_path(path, sizeof path);
	cfg = load_path(path, &errors);
	assert_non_null(cfg);
	assert_round_trip(cfg);
	pv_config_free(cfg);
	pv_buf_free(&errors);
}

/* ---- tests: per-node ssh ---- */

static void test_node_ssh(void **state)
{
	(void)state;
	PvConfig *cfg = load_ok(
	    "cluster = { name = \"demo\"; nodes = (\n"
	    " { name = \"n0\"; conninfo = \"host=h0\"; pgdata = \"/d 0\"; pg_bin = \"/b\";\n"
	    "   ssh = { host = \"10.0.0.1\"; key = \"/k\"; passphrase = \"Sekr1t 'pass\"; }; },\n"
	    " { name = \"n1\"; conninfo = \"host=h1\"; ssh = { host = \"h1.example\"; port = 2222;\n"
	    "   user = \"pg\"; known_hosts = \"/kh\"; timeout_ms = 500; }; },\n"
	    " { name = \"n2\"; conninfo = \"host=h2\"; } ); };\n");
	const PvNodeConfig *n0 = &cfg->nodes[0], *n1 = &cfg->nodes[1], *n2 = &cfg->nodes[2];
	assert_string_equal(n0->pgdata, "/d 0");
	assert_string_equal(n0->pg_bin, "/b");
	assert_true(n0->ssh.enabled);
	assert_string_equal(n0->ssh.host, "10.0.0.1");
	assert_int_equal(n0->ssh.port, 22);
	assert_string_equal(n0->ssh.user, "postgres");
	assert_string_equal(n0->ssh.key, "/k");
	assert_string_equal(n0->ssh.passphrase, "Sekr1t 'pass");
	assert_string_equal(n0->ssh.known_hosts, "/etc/pgvigil/known_hosts");
	assert_int_equal(n0->ssh.timeout_ms, 10000);
	assert_true(n1->ssh.enabled);
	assert_string_equal(n1->ssh.host, "h1.example");
	assert_int_equal(n1->ssh.port, 2222);
	assert_string_equal(n1->ssh.user, "pg");
	assert_string_equal(n1->ssh.key, "");
	assert_string_equal(n1->ssh.passphrase, "");
	assert_string_equal(n1->ssh.known_hosts, "/kh");
	assert_int_equal(n1->ssh.timeout_ms, 500);
	assert_false(n2->ssh.enabled);
	assert_string_equal(n2->pgdata, "");
	assert_string_equal(n2->pg_bin, "");

	/* check-config's output: the passphrase redacted, an empty one shown as empty, no ssh
	 * group for a node without one; and it loads back */
	char *out = print_cfg(cfg);
	assert_null(strstr(out, "Sekr1t"));
	assert_non_null(strstr(out, "passphrase = \"********\";"));
	assert_non_null(strstr(out, "passphrase = \"\";"));
	const char *p = out;
	int groups = 0;
	while ((p = strstr(p, "ssh = {")) != NULL) {
		groups++;
		p++;
	}
	assert_int_equal(groups, 2);
	assert_round_trip(cfg);
	free(out);
	pv_config_free(cfg);

	/* errors name the nested setting and never show the passphrase */
	static const struct {
		const char *ssh;
		const char *want;
	} bad[] = {
	    {"ssh = { port = 22; };", "cluster.nodes[0].ssh.host: missing required setting"},
	    {"ssh = { host = \"h\"; hots = 1; };", "cluster.nodes[0].ssh.hots: unknown setting"},
	    {"ssh = { host = \"h\"; port = 0; };",
	     "cluster.nodes[0].ssh.port: 0 is out of range 1..65535"},
	    {"ssh = { host = \"h\"; passphrase = \"Sekr1t\\n\"; };",
	     "cluster.nodes[0].ssh.passphrase: contains a control character"},
	    {"ssh = { host = \"h\"; passphrase = 5; };",
	     "cluster.nodes[0].ssh.passphrase: expected a string, got an integer"},
	    {"ssh = \"h\";", "cluster.nodes[0].ssh: expected a group, got a string"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *text = pv_xasprintf("cluster = { name = \"demo\"; nodes = (\n"
		                          " { name = \"n0\"; conninfo = \"host=h0\"; %s },\n"
		                          " { name = \"n1\"; conninfo = \"host=h1\"; } ); };\n",
		                          bad[i].ssh);
		expect_one_error(text, "2: %s", bad[i].want);
		free(text);
	}
	PvBuf longpass = {0};
	for (int i = 0; i < 1025; i++)
		pv_buf_putc(&longpass, 'S');
	char *text = pv_xasprintf("cluster = { name = \"demo\"; nodes = (\n"
	                          " { name = \"n0\"; conninfo = \"host=h0\";\n"
	                          "   ssh = { host = \"h\"; passphrase = \"%s\"; }; },\n"
	                          " { name = \"n1\"; conninfo = \"host=h1\"; } ); };\n",
	                          longpass.data);
	expect_one_error(text,
	                 "3: cluster.nodes[0].ssh.passphrase: is too long (1025 bytes, at most 1024)");
	free(text);
	pv_buf_free(&longpass);
}

/* backup.host: a node with an ssh group; backup.directory then required and absolute */
static void test_backup_host(void **state)
{
	(void)state;
	static const char nodes[] =
	    "cluster = { name = \"demo\"; nodes = (\n"
	    " { name = \"n0\"; conninfo = \"host=h0\"; },\n"
	    " { name = \"n1\"; conninfo = \"host=h1\"; pg_bin = \"/b\"; ssh = { host = \"h1\"; }; } ); };\n";
	char *text = pv_xasprintf("%sbackup = { host = \"n1\"; directory = \"/srv/backups\"; };\n",
	                          nodes);
	PvConfig *cfg = load_ok(text);
	assert_string_equal(cfg->backup_host, "n1");
	assert_string_equal(cfg->backup_directory, "/srv/backups");
	assert_round_trip(cfg);
	pv_config_free(cfg);
	free(text);
	cfg = load_ok(nodes);
	assert_string_equal(cfg->backup_host, "");
	pv_config_free(cfg);

	static const struct {
		const char *backup;
		const char *want;
	} bad[] = {
	    {"backup = { host = \"n7\"; directory = \"/b\"; };",
	     "4: backup.host: no node \"n7\" in cluster.nodes"},
	    {"backup = { host = \"n0\"; directory = \"/b\"; };",
	     "4: backup.host: node n0 has no ssh group"},
	    {"backup = { host = \"n1\"; };",
	     "4: backup.directory: required with backup.host: the directory on n1's host"},
	    {"backup = { host = \"n1\"; directory = \"rel/b\"; };",
	     "4: backup.directory: must be an absolute path with backup.host"},
	    {"backup = { host = \"n1\"; directory = \"/b\"; method = \"command\"; command = \"x\"; };",
	     "4: backup.host: backup.method \"command\" runs on this host"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		text = pv_xasprintf("%s%s\n", nodes, bad[i].backup);
		char *errs = load_err(text, NULL);
		if (!strstr(errs, bad[i].want))
			fail_msg("want \"%s\" in\n%s", bad[i].want, errs);
		assert_int_equal(count_lines(errs), 1);
		free(errs);
		free(text);
	}
}

static void test_misc_api(void **state)
{
	(void)state;
	pv_config_free(NULL);
	assert_string_equal(pv_failover_mode_name(PV_FAILOVER_AUTOMATIC), "automatic");
	assert_string_equal(pv_failover_mode_name(PV_FAILOVER_MANUAL), "manual");
	assert_string_equal(pv_failover_mode_name((PvFailoverMode)7), "unknown");
}

/* ---- tests: docs in sync ---- */

static char *read_source(const char *rel)
{
	const char *src = getenv("PV_SOURCE_DIR");
	char *path = pv_xasprintf("%s/%s", src && *src ? src : ".", rel);
	FILE *fp = fopen(path, "r");
	if (!fp)
		fail_msg("%s: %s", path, strerror(errno));
	PvBuf b = {0};
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
		pv_buf_append(&b, chunk, n);
	fclose(fp);
	free(path);
	return pv_buf_steal(&b);
}

static void test_docs_sync(void **state)
{
	(void)state;
	char *man = read_source("man/pgvigil.conf.5");
	char *sample = read_source("conf/pgvigil.conf");
	for (const char *const *n = pv_config_setting_names(); *n; n++) {
		char *entry = pv_xasprintf(".It Cm %s ", *n);
		if (!strstr(man, entry))
			fail_msg("man/pgvigil.conf.5 has no entry \"%s\"", entry);
		free(entry);
		char *comment = pv_xasprintf("# %s: ", *n);
		if (!strstr(sample, comment))
			fail_msg("conf/pgvigil.conf does not document %s (\"%s\")", *n, comment);
		free(comment);
	}
	/* and the PgBouncer advice is in both */
	assert_non_null(strstr(man, "server_login_retry = 0.1"));
	assert_non_null(strstr(sample, "server_login_retry = 0.1"));
	assert_non_null(strstr(man, "%include /etc/pgbouncer/pgvigil-databases.ini"));
	assert_non_null(strstr(sample, "%include /etc/pgbouncer/pgvigil-databases.ini"));
	free(man);
	free(sample);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_minimal_defaults),   cmocka_unit_test(test_all_settings),
	    cmocka_unit_test(test_pgbouncer_defaults), cmocka_unit_test(test_template_loads),
	    cmocka_unit_test(test_sample_loads),       cmocka_unit_test(test_int_rows),
	    cmocka_unit_test(test_string_rows),        cmocka_unit_test(test_required_rows),
	    cmocka_unit_test(test_default_rows),       cmocka_unit_test(test_setting_names),
	    cmocka_unit_test(test_error_table),        cmocka_unit_test(test_too_many),
	    cmocka_unit_test(test_unreadable),         cmocka_unit_test(test_include_dir),
	    cmocka_unit_test(test_redaction),          cmocka_unit_test(test_errors_hide_passwords),
	    cmocka_unit_test(test_print_round_trip),   cmocka_unit_test(test_misc_api),
	    cmocka_unit_test(test_node_ssh),           cmocka_unit_test(test_backup_host),
	    cmocka_unit_test(test_docs_sync),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
