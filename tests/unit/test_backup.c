/*
 * test_backup: the pure parts of act/backup (backup_label and manifest parsing, retention, the
 * backup for a restore target, recovery settings, backup.command templates), its catalog files
 * in a temporary directory, and io/pgcmd.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "act/backup.h"
#include "common/buf.h"
#include "common/fileio.h"
#include "core/cluster.h"
#include "io/pgcmd.h"

static char tmpdir[64];

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
	strcpy(tmpdir, "/tmp/pv-test-backup-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- backup_label and backup_manifest ---- */

#define LABEL_PG15                                                                                 \
	"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"                          \
	"CHECKPOINT LOCATION: 0/2000060\n"                                                         \
	"BACKUP METHOD: streamed\n"                                                                \
	"BACKUP FROM: primary\n"                                                                   \
	"START TIME: 2026-11-25 18:11:02 UTC\n"                                                    \
	"LABEL: pgvigil 20261125T181102Z\n"                                                        \
	"START TIMELINE: 3\n"

static void test_label_parse(void **state)
{
	(void)state;
	PvBackupLabel l;
	assert_true(pv_backup_label_parse(LABEL_PG15, &l));
	assert_int_equal(l.start_lsn, 0x2000028);
	assert_int_equal(l.checkpoint_lsn, 0x2000060);
	assert_int_equal(l.timeline, 3);
	assert_string_equal(l.start_wal, "000000010000000000000002");
	assert_string_equal(l.label, "pgvigil 20261125T181102Z");
	assert_string_equal(l.start_time, "2026-11-25 18:11:02 UTC");

	/* without its final newline, and with the lines in another order */
	assert_true(
	    pv_backup_label_parse("START TIMELINE: 1\nCHECKPOINT LOCATION: 1/A0\n"
	                          "START WAL LOCATION: 1/A0 (file 0000000100000001000000A0)",
	                          &l));
	assert_int_equal(l.start_lsn, 0x1000000A0ULL);
	assert_int_equal(l.timeline, 1);
	assert_string_equal(l.label, "");

	static const char *const bad[] = {
	    NULL,
	    "",
	    "garbage\n",
	    /* no timeline */
	    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
	    "CHECKPOINT LOCATION: 0/2000060\n",
	    /* bad LSN */
	    "START WAL LOCATION: 0-2000028 (file 000000010000000000000002)\n"
	    "CHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: 1\n",
	    /* short file name */
	    "START WAL LOCATION: 0/2000028 (file 0000000100000000)\n"
	    "CHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: 1\n",
	    /* no checkpoint */
	    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIMELINE: 1\n",
	    /* timeline 0, and not a number */
	    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
	    "CHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: 0\n",
	    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
	    "CHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: one\n",
	    /* a key must start its line */
	    "XSTART WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
	    "CHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: 1\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (pv_backup_label_parse(bad[i], &l))
			fail_msg("bad label %zu parsed", i);
}

static void test_manifest_wal(void **state)
{
	(void)state;
	int tl = 0;
	uint64_t s = 0, e = 0;
	assert_true(pv_backup_manifest_wal(
	    "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [],\n\"WAL-Ranges\": [\n"
	    "{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n],\n"
	    "\"Manifest-Checksum\": \"ab\"}\n",
	    &tl, &s, &e));
	assert_int_equal(tl, 1);
	assert_int_equal(s, 0x2000028);
	assert_int_equal(e, 0x2000100);
	/* a timeline switch during the backup: first start, last end, last timeline */
	assert_true(pv_backup_manifest_wal(
	    "{\"WAL-Ranges\": [{\"Timeline\": 2, \"Start-LSN\": \"0/5000000\", \"End-LSN\": "
	    "\"0/5800000\"}, {\"Timeline\": 3, \"Start-LSN\": \"0/5800000\", \"End-LSN\": "
	    "\"0/6000100\"}]}",
	    &tl, &s, &e));
	assert_int_equal(tl, 3);
	assert_int_equal(s, 0x5000000);
	assert_int_equal(e, 0x6000100);
	static const char *const bad[] = {
	    NULL,
	    "",
	    "not json",
	    "{}",
	    "{\"WAL-Ranges\": []}",
	    "{\"WAL-Ranges\": [{\"Timeline\": 1, \"Start-LSN\": \"x\", \"End-LSN\": \"0/1\"}]}",
	    "{\"WAL-Ranges\": [{\"Timeline\": 0, \"Start-LSN\": \"0/1\", \"End-LSN\": \"0/1\"}]}",
	    "{\"WAL-Ranges\": [{\"Start-LSN\": \"0/1\", \"End-LSN\": \"0/1\"}]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (pv_backup_manifest_wal(bad[i], &tl, &s, &e))
			fail_msg("bad manifest %zu parsed", i);
}

/* ---- retention ---- */

/* A list from a string of status letters, oldest first: V verified, U unverified, F failed,
 * P partial, I incomplete. */
static size_t make_list(const char *spec, PvBackupEntry *e)
{
	size_t n = strlen(spec);
	for (size_t i = 0; i < n; i++) {
		memset(&e[i], 0, sizeof e[i]);
		snprintf(e[i].label, sizeof e[i].label, "L%zu", i);
		e[i].start_wall_us = (int64_t)(i + 1) * 1000000;
		e[i].status = spec[i] == 'V'   ? PV_BACKUP_VERIFIED
		              : spec[i] == 'U' ? PV_BACKUP_UNVERIFIED
		              : spec[i] == 'F' ? PV_BACKUP_FAILED
		              : spec[i] == 'P' ? PV_BACKUP_PARTIAL
		                               : PV_BACKUP_INCOMPLETE;
	}
	return n;
}

static void test_retention(void **state)
{
	(void)state;
	static const struct {
		const char *list;
		int keep;
		const char *want; /* d: deleted, .: kept */
	} cases[] = {
	    {"", 3, ""},
	    {"V", 1, "."},
	    {"VV", 1, "d."},
	    {"VVV", 3, "..."},
	    {"VVVVV", 3, "dd..."},
	    {"VVVVV", 1, "dddd."},
	    /* failures never cost a good backup; they go once a newer good one exists */
	    {"VVF", 1, "d.."},
	    {"VFV", 1, "dd."},
	    {"FFF", 1, "..."},
	    {"PVP", 3, "d.."},
	    {"IVV", 5, "d.."},
	    /* the newest verified backup is never deleted, even beyond keep */
	    {"VUU", 2, "..."},
	    {"VUUU", 2, ".d.."},
	    {"VVUU", 1, "d.d."},
	    {"UUU", 1, "dd."},
	    {"VFFVFF", 2, ".dd..."},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		PvBackupEntry e[16];
		bool del[16];
		size_t n = make_list(cases[c].list, e);
		size_t count = pv_backup_retention(e, n, cases[c].keep, del);
		char got[17];
		size_t want_count = 0;
		for (size_t i = 0; i < n; i++) {
			got[i] = del[i] ? 'd' : '.';
			want_count += cases[c].want[i] == 'd';
		}
		got[n] = '\0';
		if (strcmp(got, cases[c].want) != 0 || count != want_count)
			fail_msg("retention of %s keep %d: want %s, got %s (%zu)", cases[c].list,
			         cases[c].keep, cases[c].want, got, count);
	}
}

/* ---- the backup for a restore target ---- */

static void test_choose(void **state)
{
	(void)state;
	PvBackupEntry e[5];
	size_t n = make_list("VVFVV", e);
	/* timelines and stop LSNs: 1:0/100, 1:0/300, 1:0/350 (failed), 2:0/500, 2:0/700 */
	int tl[] = {1, 1, 1, 2, 2};
	uint64_t stop[] = {0x100, 0x300, 0x350, 0x500, 0x700};
	for (size_t i = 0; i < n; i++) {
		e[i].timeline = tl[i];
		e[i].stop_lsn = stop[i];
	}
	assert_int_equal(pv_backup_choose(e, n, 0, 0, 0), 4);       /* the newest */
	assert_int_equal(pv_backup_choose(e, n, 1, 0x400, 0), 1);   /* not the failed one */
	assert_int_equal(pv_backup_choose(e, n, 1, 0x300, 0), 1);   /* ends exactly there */
	assert_int_equal(pv_backup_choose(e, n, 1, 0x2ff, 0), 0);   /* ends after it */
	assert_int_equal(pv_backup_choose(e, n, 1, 0x50, 0), -1);   /* none ends before */
	assert_int_equal(pv_backup_choose(e, n, 2, 0x600, 0), 3);   /* same timeline */
	assert_int_equal(pv_backup_choose(e, n, 2, 0x800, 0), 4);   /* */
	assert_int_equal(pv_backup_choose(e, n, 3, 0x100, 0), 4);   /* older timelines */
	assert_int_equal(pv_backup_choose(e, n, 0, 0, 4000000), 1); /* started before */
	assert_int_equal(pv_backup_choose(e, n, 2, 0x800, 4000001), 3);
	assert_int_equal(pv_backup_choose(e, n, 0, 0, 1000000), -1); /* nothing before */
	e[1].stop_lsn = 0;                                           /* end unknown */
	assert_int_equal(pv_backup_choose(e, n, 1, 0x400, 0), 0);
	assert_int_equal(pv_backup_choose(e, 0, 0, 0, 0), -1);
}

/* ---- recovery settings ---- */

static void test_render_recovery(void **state)
{
	(void)state;
	PvBuf b = {0};
	PvRecoverySettings s = {
	    .restore_command = "cp \"/arch ive/%f\" \"%p\"",
	    .target_name = "pgvigil-20261125T182040Z-7",
	    .target_timeline = 2,
	    .action = "pause",
	    .port = 57010,
	    .socket_dir = "/tmp/it's",
	    .stamp = "2026-11-25T18:20:41.000000Z",
	    .origin = "backup X, incident Y",
	};
	pv_backup_render_recovery(&s, &b);
	static const char *const want[] = {
	    "# --- pgvigil restore, 2026-11-25T18:20:41.000000Z: backup X, incident Y ---\n",
	    "\narchive_mode = 'off'\n",
	    "\nprimary_conninfo = ''\n",
	    "\nsynchronous_standby_names = ''\n",
	    "\nlisten_addresses = ''\n",
	    "\nport = '57010'\n",
	    "\nunix_socket_directories = '/tmp/it''s'\n",
	    "\nrestore_command = 'cp \"/arch ive/%f\" \"%p\"'\n",
	    "\nrecovery_target_name = 'pgvigil-20261125T182040Z-7'\n",
	    "\nrecovery_target_timeline = '2'\n",
	    "\nrecovery_target_action = 'pause'\n",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		if (!strstr(b.data, want[i]))
			fail_msg("no \"%s\" in:\n%s", want[i], b.data);
	assert_null(strstr(b.data, "recovery_target_lsn"));
	assert_null(strstr(b.data, "recovery_target_time "));
	/* the drill settings come before the recovery ones, archive_mode first of all */
	assert_true(strstr(b.data, "archive_mode") < strstr(b.data, "restore_command"));
	pv_buf_free(&b);

	/* no target: no action, timeline latest, no restore_command without an archive */
	PvRecoverySettings none = {.action = "pause"};
	pv_backup_render_recovery(&none, &b);
	assert_null(strstr(b.data, "recovery_target_action"));
	assert_null(strstr(b.data, "restore_command"));
	assert_null(strstr(b.data, "\nport"));
	assert_non_null(strstr(b.data, "recovery_target_timeline = 'latest'"));
	pv_buf_free(&b);

	PvRecoverySettings lsn = {.target_lsn = "0/3000148", .action = "promote"};
	pv_backup_render_recovery(&lsn, &b);
	assert_non_null(strstr(b.data, "recovery_target_lsn = '0/3000148'\n"));
	assert_non_null(strstr(b.data, "recovery_target_action = 'promote'\n"));
	pv_buf_free(&b);

	pv_backup_conf_quote(&b, "a'b\\c");
	assert_string_equal(b.data, "'a''b\\\\c'");
	pv_buf_free(&b);
}

/* ---- backup.command ---- */

static void test_command_argv(void **state)
{
	(void)state;
	PvBackupVars v = {.dir = "/b/L.partial",
	                  .label = "L",
	                  .conninfo = "host=h port=5 user=u",
	                  .host = "h",
	                  .port = 5,
	                  .node = "n1"};
	char **argv = NULL;
	PvError err;
	assert_int_equal(
	    pv_backup_command_argv("  tool  --to=%d -l %l\t'%c' \"a b\" %h:%p %n 100%% ", &v, &argv,
	                           &err),
	    PV_OK);
	static const char *const want[] = {
	    "tool", "--to=/b/L.partial", "-l", "L", "host=h port=5 user=u", "a b", "h:5", "n1",
	    "100%"};
	size_t n = 0;
	while (argv[n])
		n++;
	assert_int_equal(n, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(argv[i], want[i]);
	pv_backup_argv_free(argv);

	/* an empty quoted word is a word */
	assert_int_equal(pv_backup_command_argv("x '' y", &v, &argv, &err), PV_OK);
	assert_string_equal(argv[1], "");
	assert_string_equal(argv[2], "y");
	pv_backup_argv_free(argv);

	static const struct {
		const char *tmpl, *msg;
	} bad[] = {
	    {"", "backup.command is empty"},        {"   ", "backup.command is empty"},
	    {"tool %x", "unknown placeholder %x"},  {"tool 100%", "a lone %"},
	    {"tool 'open", "unterminated ' quote"}, {"tool \"open", "unterminated \" quote"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		argv = (char **)1;
		assert_int_equal(pv_backup_command_argv(bad[i].tmpl, &v, &argv, &err),
		                 PV_ERR_CONFIG);
		assert_null(argv);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("for \"%s\": want \"%s\" in \"%s\"", bad[i].tmpl, bad[i].msg,
			         err.msg);
	}
	pv_backup_argv_free(NULL);
}

/* ---- the catalog on disk ---- */

static void mkdir_in(const char *dir, const char *name)
{
	char *p = pv_xasprintf("%s/%s", dir, name);
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
}

static PvBackupEntry entry(const char *label, PvBackupStatus st, const char *ts)
{
	PvBackupEntry e;
	memset(&e, 0, sizeof e);
	snprintf(e.label, sizeof e.label, "%s", label);
	e.status = st;
	snprintf(e.method, sizeof e.method, "pg_basebackup");
	snprintf(e.trigger, sizeof e.trigger, "promotion");
	snprintf(e.incident, sizeof e.incident, "20261125T173455Z-42");
	snprintf(e.node, sizeof e.node, "n1");
	snprintf(e.source, sizeof e.source, "127.0.0.1:5433");
	snprintf(e.start_ts, sizeof e.start_ts, "%s", ts);
	e.start_lsn = 0x5000028;
	e.stop_lsn = 0x5000100;
	e.checkpoint_lsn = 0x5000060;
	e.timeline = 2;
	e.size_bytes = 12345;
	e.duration_ms = 1500;
	e.copy_ms = 1200;
	e.verify_ms = 300;
	return e;
}

static void test_catalog(void **state)
{
	(void)state;
	char *dir = pv_xasprintf("%s/cat", tmpdir);
	PvBackupEntry *list = NULL;
	size_t n = 99;
	PvError err;
	/* a missing directory is an empty catalog */
	assert_int_equal(pv_backup_catalog_list(dir, &list, &n, &err), PV_OK);
	assert_int_equal(n, 0);
	assert_int_equal(pv_backup_mkdirs(dir, &err), PV_OK);
	assert_int_equal(pv_backup_mkdirs(dir, &err), PV_OK); /* again: fine */

	PvBackupEntry a =
	    entry("20261125T100000Z", PV_BACKUP_VERIFIED, "2026-11-25T10:00:00.000001Z");
	PvBackupEntry b =
	    entry("20261125T110000Z", PV_BACKUP_FAILED, "2026-11-25T11:00:00.000000Z");
	PvBackupEntry c =
	    entry("20261125T090000Z", PV_BACKUP_VERIFIED, "2026-11-25T09:00:00.000000Z");
	snprintf(b.error, sizeof b.error, "pg_verifybackup: exit 1: checksum mismatch");
	b.verify_ms = -1;
	assert_int_equal(pv_backup_catalog_write(dir, &a, &err), PV_OK);
	assert_int_equal(pv_backup_catalog_write(dir, &b, &err), PV_OK);
	assert_int_equal(pv_backup_catalog_write(dir, &c, &err), PV_OK); /* its directory is gone */
	mkdir_in(dir, "20261125T100000Z");
	mkdir_in(dir, "20261125T110000Z.failed");
	mkdir_in(dir, "20261125T120000Z.partial");  /* being written */
	mkdir_in(dir, "20261125T080000Z");          /* no record */
	mkdir_in(dir, "20261125T070000Z.deleting"); /* never listed */
	char *junk = pv_xasprintf("%s/notes.txt.json", dir);
	assert_int_equal(pv_file_write_atomic(junk, "{", 1, 0600, &err), PV_OK);
	free(junk);

	assert_int_equal(pv_backup_catalog_list(dir, &list, &n, &err), PV_OK);
	assert_int_equal(n, 5);
	static const struct {
		const char *label;
		PvBackupStatus status;
		const char *dir;
	} want[] = {
	    {"20261125T080000Z", PV_BACKUP_INCOMPLETE, ""},
	    {"20261125T090000Z", PV_BACKUP_INCOMPLETE, "-"},
	    {"20261125T100000Z", PV_BACKUP_VERIFIED, ""},
	    {"20261125T110000Z", PV_BACKUP_FAILED, ".failed"},
	    {"20261125T120000Z", PV_BACKUP_PARTIAL, ".partial"},
	};
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(list[i].label, want[i].label);
		if (list[i].status != want[i].status)
			fail_msg("%s: status %s, want %s", list[i].label,
			         pv_backup_status_name(list[i].status),
			         pv_backup_status_name(want[i].status));
		assert_string_equal(list[i].dir, want[i].dir);
	}
	/* a record read back is the record written */
	const PvBackupEntry *r = &list[2];
	assert_string_equal(r->trigger, "promotion");
	assert_string_equal(r->incident, "20261125T173455Z-42");
	assert_string_equal(r->source, "127.0.0.1:5433");
	assert_int_equal(r->start_lsn, 0x5000028);
	assert_int_equal(r->stop_lsn, 0x5000100);
	assert_int_equal(r->checkpoint_lsn, 0x5000060);
	assert_int_equal(r->timeline, 2);
	assert_int_equal(r->size_bytes, 12345);
	assert_int_equal(r->duration_ms, 1500);
	assert_int_equal(r->verify_ms, 300);
	assert_true(r->start_wall_us > 0);
	assert_int_equal(r->start_wall_us % 1000000, 1);
	assert_string_equal(list[3].error, "pg_verifybackup: exit 1: checksum mismatch");
	assert_int_equal(list[3].verify_ms, -1);
	assert_non_null(strstr(list[1].error, "directory is missing"));
	/* entries from a bare directory get their time from the label */
	assert_true(list[0].start_wall_us > 0 && list[0].start_wall_us < list[1].start_wall_us);

	assert_int_equal(pv_backup_catalog_find(list, n, "20261125T110000Z"), 3);
	assert_int_equal(pv_backup_catalog_find(list, n, "nope"), -1);
	char *p = pv_backup_entry_path(dir, &list[3]);
	char *want_p = pv_xasprintf("%s/20261125T110000Z.failed", dir);
	assert_string_equal(p, want_p);
	free(p);
	free(want_p);
	assert_null(pv_backup_entry_path(dir, &list[1]));

	/* retention over this catalog: the older incomplete ones go, the rest stays */
	bool del[8];
	assert_int_equal(pv_backup_retention(list, n, 3, del), 2);
	assert_true(del[0] && del[1] && !del[2] && !del[3] && !del[4]);

	/* a new label never reuses a name in use */
	char label[PV_BACKUP_LABEL_MAX];
	int64_t t = list[2].start_wall_us - 1; /* 10:00:00 */
	pv_backup_new_label(dir, t, label, sizeof label);
	assert_string_equal(label, "20261125T100000Z-2");
	pv_backup_new_label(dir, t + 3600000000LL * 2, label, sizeof label); /* 12:00:00 .partial */
	assert_string_equal(label, "20261125T120000Z-2");
	pv_backup_new_label(dir, t + 3600000000LL * 5, label, sizeof label);
	assert_string_equal(label, "20261125T150000Z");

	int64_t size = 0;
	char *f = pv_xasprintf("%s/20261125T100000Z/f", dir);
	assert_int_equal(pv_file_write_atomic(f, "12345", 5, 0600, &err), PV_OK);
	free(f);
	char *bdir = pv_xasprintf("%s/20261125T100000Z", dir);
	assert_int_equal(pv_backup_tree_size(bdir, &size, &err), PV_OK);
	assert_int_equal(size, 5);
	free(bdir);

	free(list);
	free(dir);
}

static char *entry_text(const PvBackupEntry *e)
{
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_backup_entry_json(&j, NULL, e);
	return pv_buf_steal(&b);
}

/* A backup directory on backup.host: its listing gives the entries a local one would. */
static void test_remote_listing(void **state)
{
	(void)state;
	PvBackupEntry a =
	    entry("20261125T100000Z", PV_BACKUP_VERIFIED, "2026-11-25T10:00:00.000001Z");
	PvBackupEntry b =
	    entry("20261125T110000Z", PV_BACKUP_FAILED, "2026-11-25T11:00:00.000000Z");
	PvBackupEntry c =
	    entry("20261125T090000Z", PV_BACKUP_VERIFIED, "2026-11-25T09:00:00.000000Z");
	char *ja = entry_text(&a), *jb = entry_text(&b), *jc = entry_text(&c);
	char *text = pv_xasprintf("d 20261125T070000Z.deleting\n"
	                          "d 20261125T080000Z\n"
	                          "j 20261125T090000Z.json\t%s\n"
	                          "d 20261125T100000Z\n"
	                          "j 20261125T100000Z.json\t%s\n"
	                          "d 20261125T110000Z.failed\n"
	                          "j 20261125T110000Z.json\t%s\n"
	                          "d 20261125T120000Z.partial\n"
	                          "j notes.txt.json\t{\n"
	                          "j broken.json\n"    /* no tab: skipped */
	                          "x something else\n" /* unknown kind: skipped */
	                          "d \n"               /* no name: skipped */
	                          "j 20261125T130000Z.json.tmp.42\t{}\n"
	                          "d 20261125T140000Z",
	                          jc, ja, jb);
	PvBackupItem *items = NULL;
	size_t k = pv_backup_listing_parse(text, &items);
	assert_int_equal(k, 11);
	assert_true(items[0].is_dir);
	assert_null(items[0].json);
	assert_string_equal(items[2].name, "20261125T090000Z.json");
	assert_string_equal(items[2].json, jc);
	assert_string_equal(items[10].name, "20261125T140000Z"); /* the last line, no newline */
	PvBackupEntry *list = NULL;
	size_t n = 0;
	pv_backup_catalog_build(items, k, &list, &n);
	static const struct {
		const char *label;
		PvBackupStatus status;
		const char *dir;
	} want[] = {
	    {"20261125T080000Z", PV_BACKUP_INCOMPLETE, ""},
	    {"20261125T090000Z", PV_BACKUP_INCOMPLETE, "-"},
	    {"20261125T100000Z", PV_BACKUP_VERIFIED, ""},
	    {"20261125T110000Z", PV_BACKUP_FAILED, ".failed"},
	    {"20261125T120000Z", PV_BACKUP_PARTIAL, ".partial"},
	    {"20261125T140000Z", PV_BACKUP_INCOMPLETE, ""},
	};
	assert_int_equal(n, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(list[i].label, want[i].label);
		assert_int_equal(list[i].status, want[i].status);
		assert_string_equal(list[i].dir, want[i].dir);
	}
	assert_int_equal(list[2].size_bytes, 12345);
	assert_int_equal(list[2].stop_lsn, 0x5000100);
	assert_string_equal(list[2].incident, "20261125T173455Z-42");
	free(list);
	pv_backup_items_free(items, k);
	assert_int_equal(pv_backup_listing_parse("", &items), 0);
	assert_int_equal(pv_backup_listing_parse(NULL, &items), 0);
	pv_backup_items_free(NULL, 0);
	free(text);
	free(ja);
	free(jb);
	free(jc);
}

static void test_du_and_finish(void **state)
{
	(void)state;
	int64_t v = -1;
	assert_true(pv_backup_du_parse("40064152\t/srv/b/20261125T100000Z\n", &v));
	assert_int_equal(v, 40064152);
	assert_true(pv_backup_du_parse("0 x", &v));
	assert_int_equal(v, 0);
	static const char *const bad[] = {NULL,    "",       "du: cannot access 'x'",
	                                  "-5\tx", "12x\tx", "99999999999999999999999\tx",
	                                  "12"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (pv_backup_du_parse(bad[i], &v))
			fail_msg("du output %zu parsed", i);

	/* what the finish script prints: du, backup_label, the manifest's last bytes */
	const char *out =
	    "56841368\t/srv/b/L\n@@label\n"
	    "START WAL LOCATION: 0/A000028 (file 00000001000000000000000A)\n"
	    "CHECKPOINT LOCATION: 0/A000060\nBACKUP METHOD: streamed\nSTART TIMELINE: 1\n"
	    "@@manifest\n"
	    "ksum-Algorithm\": \"CRC32C\", \"Checksum\": \"c0ffee\" }\n],\n"
	    "\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/A000028\", \"End-LSN\": "
	    "\"0/A000B30\" }\n],\n\"Manifest-Checksum\": \"ab\"}\n";
	PvBackupEntry e;
	memset(&e, 0, sizeof e);
	assert_true(pv_backup_finish_parse(out, &e));
	assert_int_equal(e.size_bytes, 56841368);
	assert_int_equal(e.start_lsn, 0xA000028);
	assert_int_equal(e.checkpoint_lsn, 0xA000060);
	assert_int_equal(e.stop_lsn, 0xA000B30);
	assert_int_equal(e.timeline, 1);
	assert_string_equal(e.start_wal, "00000001000000000000000A");
	/* no label nor manifest (an unverifiable copy): the size only */
	memset(&e, 0, sizeof e);
	assert_true(pv_backup_finish_parse("7\tx\n@@label\n@@manifest\n", &e));
	assert_int_equal(e.size_bytes, 7);
	assert_int_equal(e.stop_lsn, 0);
	assert_false(pv_backup_finish_parse("mv: cannot move", &e));
	assert_false(pv_backup_finish_parse(NULL, &e));

	/* the manifest's tail alone gives the WAL range; a tail cut inside it does not */
	int tl = 0;
	uint64_t s = 0, end = 0;
	assert_true(pv_backup_manifest_wal(strstr(out, "ksum"), &tl, &s, &end));
	assert_int_equal(end, 0xA000B30);
	assert_false(pv_backup_manifest_wal("\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN",
	                                    &tl, &s, &end));
}

static void test_entry_json(void **state)
{
	(void)state;
	json_error_t jerr;
	PvBackupEntry e;
	json_t *o = json_loads("{\"label\":\"../etc\"}", 0, &jerr);
	assert_false(pv_backup_entry_from_json(o, &e)); /* a label is a file name, never a path */
	json_decref(o);
	o = json_loads("{\"label\":\"20261125T100000Z\",\"status\":\"weird\"}", 0, &jerr);
	assert_true(pv_backup_entry_from_json(o, &e));
	assert_int_equal(e.status, PV_BACKUP_INCOMPLETE);
	assert_int_equal(e.size_bytes, -1);
	assert_true(e.start_wall_us > 0);
	json_decref(o);
	assert_false(pv_backup_entry_from_json(NULL, &e));
	for (int s = 0; s < 5; s++)
		assert_int_equal(pv_backup_status_parse(pv_backup_status_name((PvBackupStatus)s)),
		                 s);
	assert_int_equal(pv_backup_status_parse("x"), -1);
	assert_int_equal(pv_backup_status_parse(NULL), -1);
	assert_string_equal(pv_backup_status_name((PvBackupStatus)9), "unknown");
}

/* ---- locations and programs ---- */

static void test_locations(void **state)
{
	(void)state;
	PvConfig cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.backup_directory = "";
	cfg.journal_path = "/var/lib/pgvigil/journal.jsonl";
	char *d = pv_backup_directory(&cfg);
	assert_string_equal(d, "/var/lib/pgvigil/backups");
	free(d);
	cfg.journal_path = "journal.jsonl";
	d = pv_backup_directory(&cfg);
	assert_string_equal(d, "backups");
	free(d);
	cfg.journal_path = "/journal.jsonl";
	d = pv_backup_directory(&cfg);
	assert_string_equal(d, "/backups");
	free(d);
	cfg.backup_directory = "/srv/bk";
	d = pv_backup_directory(&cfg);
	assert_string_equal(d, "/srv/bk");
	free(d);

	cfg.backup_restore_command = "";
	cfg.backup_archive_dir = "";
	assert_null(pv_backup_restore_command(&cfg));
	cfg.backup_archive_dir = "/arch";
	char *r = pv_backup_restore_command(&cfg);
	assert_string_equal(r, "cp \"/arch/%f\" \"%p\"");
	free(r);
	cfg.backup_restore_command = "pgbackrest --stanza=main archive-get %f \"%p\"";
	r = pv_backup_restore_command(&cfg);
	assert_string_equal(r, "pgbackrest --stanza=main archive-get %f \"%p\"");
	free(r);

	/* programs: an explicit directory, PATH */
	char path[4096];
	PvError err;
	char *bin = pv_xasprintf("%s/bin", tmpdir);
	assert_int_equal(pv_backup_mkdirs(bin, &err), PV_OK);
	char *tool = pv_xasprintf("%s/pg_fake", bin);
	assert_int_equal(pv_file_write_atomic(tool, "#!/bin/sh\n", 10, 0755, &err), PV_OK);
	assert_int_equal(pv_backup_program(bin, "pg_fake", path, sizeof path, &err), PV_OK);
	assert_string_equal(path, tool);
	assert_int_equal(pv_backup_program(bin, "pg_none", path, sizeof path, &err),
	                 PV_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "backup.pg_bin_dir"));
	char *old = getenv("PATH") ? pv_xstrdup(getenv("PATH")) : NULL;
	char *np = pv_xasprintf("/nonexistent:%s", bin);
	setenv("PATH", np, 1);
	assert_int_equal(pv_backup_program("", "pg_fake", path, sizeof path, &err), PV_OK);
	assert_string_equal(path, tool);
	assert_int_equal(pv_backup_program(NULL, "pg_surely_missing_tool", path, sizeof path, &err),
	                 PV_ERR_NOT_FOUND);
	if (old)
		setenv("PATH", old, 1);
	free(old);
	free(np);
	free(tool);
	free(bin);

	/* mkdirs through a file fails cleanly */
	char *file = pv_xasprintf("%s/plain", tmpdir);
	assert_int_equal(pv_file_write_atomic(file, "x", 1, 0600, &err), PV_OK);
	char *under = pv_xasprintf("%s/sub", file);
	assert_int_equal(pv_backup_mkdirs(under, &err), PV_ERR_IO);
	free(under);
	free(file);
}

/* ---- io/pgcmd ---- */

static void test_pgcmd(void **state)
{
	(void)state;
	char *out = NULL, *pw = NULL;
	PvError err;
	assert_int_equal(pv_pgcmd_conninfo("host=h port=5 user=u password=s3cr'et dbname=postgres",
	                                   "pgvigil-backup-L", &out, &pw, &err),
	                 PV_OK);
	assert_null(strstr(out, "s3cr"));
	assert_non_null(strstr(out, "host='h'"));
	assert_non_null(strstr(out, "port='5'"));
	assert_non_null(strstr(out, "application_name='pgvigil-backup-L'"));
	assert_string_equal(pw, "s3cr'et");
	free(out);
	free(pw);
	/* URIs too; an application_name given is replaced; no password: NULL */
	assert_int_equal(pv_pgcmd_conninfo("postgresql://u:p%40ss@h:6/db?application_name=x",
	                                   "mine", &out, &pw, &err),
	                 PV_OK);
	assert_string_equal(pw, "p@ss");
	assert_null(strstr(out, "'x'"));
	assert_non_null(strstr(out, "application_name='mine'"));
	free(out);
	free(pw);
	assert_int_equal(pv_pgcmd_conninfo("host=h", NULL, &out, &pw, &err), PV_OK);
	assert_null(pw);
	assert_string_equal(out, "host='h'");
	free(out);
	assert_int_equal(pv_pgcmd_conninfo("host='unterminated", NULL, &out, &pw, &err),
	                 PV_ERR_CONFIG);
	assert_null(out);
	assert_null(pw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_label_parse),     cmocka_unit_test(test_manifest_wal),
	    cmocka_unit_test(test_retention),       cmocka_unit_test(test_choose),
	    cmocka_unit_test(test_render_recovery), cmocka_unit_test(test_command_argv),
	    cmocka_unit_test(test_catalog),         cmocka_unit_test(test_entry_json),
	    cmocka_unit_test(test_locations),       cmocka_unit_test(test_pgcmd),
	    cmocka_unit_test(test_remote_listing),  cmocka_unit_test(test_du_and_finish),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
