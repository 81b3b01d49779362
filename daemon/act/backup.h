/*
 * backup: base backups tied to incidents, their catalog, retention, and what a restore needs.
 *
 * A backup lives in backup.directory (default: "backups" beside the journal) as
 *   LABEL.partial/   while pg_basebackup (or backup.command) writes it and until it is verified
 *   LABEL/           a finished backup: renamed from LABEL.partial only after verification
 *   LABEL.failed/    a backup whose verification failed, kept for inspection
 *   LABEL.deleting/  a backup retention is removing (never listed)
 *   LABEL.json       its catalog record, written atomically once the directory has its name
 * Invariants: a backup is good (usable for a restore, counted by retention) only when its
 * catalog record says verified or unverified (a backup.command backup without a manifest to
 * check) AND its directory LABEL/ exists; a .partial is never good; retention never deletes the
 * newest verified backup.  Labels are "YYYYMMDDTHHMMSSZ" (UTC start), "-N" appended on a clash,
 * so they sort by time.
 *
 * This module is what the daemon (backup_ext.c) and the CLI (cmd_backup.c, cmd_restore.c)
 * share: pure functions (backup_label and manifest parsing, retention choice, the backup for a
 * restore target, recovery settings, backup.command templates; unit-tested) and the catalog
 * files.  It never writes the journal; only the daemon does.
 */
#ifndef PV_ACT_BACKUP_H
#define PV_ACT_BACKUP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "config/config.h"
#include "io/ssh.h"

#define PV_BACKUP_LABEL_MAX 64

typedef enum {
	PV_BACKUP_VERIFIED,   /* pg_verifybackup passed */
	PV_BACKUP_UNVERIFIED, /* backup.command made it and left nothing pgvigil can check */
	PV_BACKUP_FAILED,     /* verification failed (its directory is kept: LABEL.failed/) */
	PV_BACKUP_PARTIAL,    /* LABEL.partial/: being written, or left by a crash */
	PV_BACKUP_INCOMPLETE, /* a catalog record without its directory, or the reverse */
} PvBackupStatus;
const char *pv_backup_status_name(PvBackupStatus s);
/* -1 for an unknown name. */
int pv_backup_status_parse(const char *name);
/* verified or unverified */
bool pv_backup_status_good(PvBackupStatus s);

typedef struct {
	char label[PV_BACKUP_LABEL_MAX];
	PvBackupStatus status;
	char method[16];   /* pg_basebackup, command */
	char trigger[16];  /* promotion, schedule, manual */
	char incident[64]; /* the open incident when it started, "" for none */
	char node[64];     /* the source node */
	char source[160];  /* host:port */
	char start_ts[32]; /* UTC, as in the journal */
	char stop_ts[32];
	int64_t start_wall_us; /* from start_ts; 0 when unknown */
	uint64_t start_lsn;    /* 0 unknown */
	uint64_t stop_lsn;
	uint64_t checkpoint_lsn;
	int timeline; /* 0 unknown */
	char start_wal[32];
	char system_id[24]; /* "" unknown */
	int64_t size_bytes; /* -1 unknown */
	int64_t duration_ms;
	int64_t copy_ms;
	int64_t verify_ms; /* -1: not verified */
	char error[512];
	char dir[16]; /* the directory's suffix: "", ".failed", ".partial"; "-" when none exists */
} PvBackupEntry;

/* ---- locations and programs ---- */

/* backup.directory, or "backups" in the directory of journal.path (malloc'd). */
char *pv_backup_directory(const PvConfig *cfg);
/*
 * The path of a PostgreSQL program: bin_dir/name when bin_dir is set, else the first in PATH,
 * else the newest /usr/lib/postgresql/N/bin/name.  PV_ERR_NOT_FOUND when there is none.
 */
PvStatus pv_backup_program(const char *bin_dir, const char *name, char *out, size_t size,
                           PvError *err) PV_MUSTCHECK;
/* backup.restore_command, or cp "ARCHIVE/%f" "%p" with backup.archive_dir; NULL when neither. */
char *pv_backup_restore_command(const PvConfig *cfg);
/* mkdir -p with mode 0700 for the directories it creates. */
PvStatus pv_backup_mkdirs(const char *path, PvError *err) PV_MUSTCHECK;
/* Total size of the files under path (not following links). */
PvStatus pv_backup_tree_size(const char *path, int64_t *bytes, PvError *err) PV_MUSTCHECK;
/* A label for a backup starting at wall_us that no file in dir uses yet. */
void pv_backup_new_label(const char *dir, int64_t wall_us, char *out, size_t size);

/* ---- pure parsing ---- */

typedef struct {
	uint64_t start_lsn;      /* START WAL LOCATION */
	uint64_t checkpoint_lsn; /* CHECKPOINT LOCATION */
	int timeline;            /* START TIMELINE */
	char start_wal[32];      /* the file named after START WAL LOCATION */
	char label[128];         /* LABEL */
	char start_time[64];     /* START TIME, as written */
} PvBackupLabel;

/* Parses a backup_label file's text; false when a required line is missing or malformed. */
bool pv_backup_label_parse(const char *text, PvBackupLabel *out);
/* From a backup_manifest: the WAL range the backup needs (first start, last end and its
 * timeline).  The text may also be the manifest's last bytes, from somewhere before
 * "WAL-Ranges" on.  False when the text has no WAL-Ranges. */
bool pv_backup_manifest_wal(const char *text, int *timeline, uint64_t *start, uint64_t *end);

/* ---- retention ---- */

/*
 * Chooses what retention deletes among entries sorted oldest first: every good backup beyond
 * the keep newest good ones, except the newest verified one; every failed, partial or
 * incomplete entry older than the newest good backup.  Sets del[i]; returns how many.
 */
size_t pv_backup_retention(const PvBackupEntry *e, size_t n, int keep, bool *del);

/* ---- restore targets ---- */

/*
 * The newest verified backup a recovery to (timeline, lsn) can start from: it started before
 * before_wall_us (0: no limit), on that timeline or an earlier one, and, on the same timeline,
 * ended (stop_lsn) at or before lsn (0: no LSN limit).  Entries sorted oldest first; -1 if none.
 */
long pv_backup_choose(const PvBackupEntry *e, size_t n, int timeline, uint64_t lsn,
                      int64_t before_wall_us);

typedef struct {
	const char *restore_command; /* NULL or "": none */
	const char *target_name;     /* at most one of the three */
	const char *target_lsn;
	const char *target_time;
	int target_timeline;    /* 0: latest */
	const char *action;     /* pause, promote, shutdown */
	int port;               /* 0: keep the copied setting */
	const char *socket_dir; /* NULL: keep */
	const char *stamp;      /* shown in the header comment */
	const char *origin;     /* "backup LABEL, incident ID": shown in the header comment */
} PvRecoverySettings;

/*
 * The block appended to a restored copy's postgresql.auto.conf: recovery settings, the port and
 * socket directory, and what keeps a drill apart from production (archive_mode = off, no
 * primary_conninfo, no synchronous standbys, listen on the socket only).
 */
void pv_backup_render_recovery(const PvRecoverySettings *s, PvBuf *out);
/* Appends s as a postgresql.conf string literal ('...' with ' doubled). */
void pv_backup_conf_quote(PvBuf *b, const char *s);

/* ---- backup.command ---- */

typedef struct {
	const char *dir;      /* %d */
	const char *label;    /* %l */
	const char *conninfo; /* %c */
	const char *host;     /* %h */
	int port;             /* %p */
	const char *node;     /* %n */
} PvBackupVars;

/*
 * Splits tmpl into words at blanks (single or double quotes keep blanks; no other shell
 * syntax) and substitutes the placeholders in each word.  *argv is NULL-terminated; free it with
 * pv_backup_argv_free.  An unknown placeholder, an unterminated quote or no word at all is
 * PV_ERR_CONFIG.
 */
PvStatus pv_backup_command_argv(const char *tmpl, const PvBackupVars *v, char ***argv,
                                PvError *err) PV_MUSTCHECK;
void pv_backup_argv_free(char **argv);

/* ---- the catalog ---- */

/* Writes dir/LABEL.json atomically. */
PvStatus pv_backup_catalog_write(const char *dir, const PvBackupEntry *e,
                                 PvError *err) PV_MUSTCHECK;
/*
 * Every backup in dir, oldest first: catalog records (with their directory's state), and
 * directories without one (partial or incomplete).  A missing dir is an empty list.
 * *out is malloc'd (free()).
 */
PvStatus pv_backup_catalog_list(const char *dir, PvBackupEntry **out, size_t *n,
                                PvError *err) PV_MUSTCHECK;
/* One name in a backup directory: a subdirectory, or a catalog file with its text. */
typedef struct {
	char *name;
	bool is_dir;
	char *json; /* a LABEL.json file's contents; NULL for a directory */
} PvBackupItem;
/* The catalog of a directory holding items (pure; what pv_backup_catalog_list does with a
 * local directory, and the remote listing with one on backup.host).  *out malloc'd. */
void pv_backup_catalog_build(const PvBackupItem *items, size_t nitems, PvBackupEntry **out,
                             size_t *n);
void pv_backup_items_free(PvBackupItem *items, size_t n);
/* Index of label in the list, or -1. */
long pv_backup_catalog_find(const PvBackupEntry *e, size_t n, const char *label);
/* The entry as a JSON object member (key NULL inside arrays). */
void pv_backup_entry_json(PvJson *j, const char *key, const PvBackupEntry *e);
/* Reads an entry back from its JSON object; false when it has no valid label. */
bool pv_backup_entry_from_json(json_t *o, PvBackupEntry *e);
/* The path of an entry's directory (malloc'd), or NULL when it has none. */
char *pv_backup_entry_path(const char *dir, const PvBackupEntry *e);

/* From a finished copy's backup_label and backup_manifest texts (either may be NULL, the
 * manifest may be its last bytes): start, checkpoint and stop LSN, timeline, start WAL file. */
void pv_backup_entry_facts(PvBackupEntry *e, const char *label_text, const char *manifest_text);

/* ---- backups on another host (backup.host) ----
 *
 * backup.directory is then a path on that node's host, reached with the node's ssh group; the
 * same layout and catalog files as above, each file operation one short ssh call running a
 * fixed sh(1) script with quoted arguments (io/ssh.h): a listing, LABEL.partial renamed only
 * after verification, LABEL.json written to a temporary file, synced, then mv(1), retention
 * renaming to LABEL.deleting and removing it with rm -rf in the background.  The programs
 * (pg_basebackup, pg_verifybackup) run there through act/hostcmd.h.
 */

/* The index of backup.host's node, -1 when backups are on this host. */
int pv_backup_host_node(const PvConfig *cfg);
/* A session to backup.host (NULL when backups are local); free with pv_ssh_free(). */
PvSsh *pv_backup_ssh_new(const PvConfig *cfg);
/* The node's ssh.timeout_ms: the deadline of one short remote call. */
int pv_backup_ssh_timeout_ms(const PvConfig *cfg);
/* Where the backups are, for messages: "DIR" or "USER@HOST:PORT:DIR" (malloc'd). */
char *pv_backup_location(const PvConfig *cfg);
/* The catalog wherever it is (backup.directory here, or on backup.host over ssh). */
PvStatus pv_backup_list(const PvConfig *cfg, PvBackupEntry **out, size_t *n,
                        PvError *err) PV_MUSTCHECK;

/* pure: the remote listing's output ("d NAME" and "j NAME<TAB>JSON" lines) as items */
size_t pv_backup_listing_parse(const char *text, PvBackupItem **items);
/* pure: du -sb's "BYTES<TAB>PATH" line */
bool pv_backup_du_parse(const char *text, int64_t *bytes);
/* pure: what pv_backup_remote_finish's script printed (du, then @@label and @@manifest
 * sections) into the entry's size and facts; false when the size is missing */
bool pv_backup_finish_parse(const char *text, PvBackupEntry *e);

/* Runs a fixed sh script with args ("$1"...) on the host: PV_OK when it exits 0, its stdout in
 * *out (may be NULL); otherwise the first line of its stderr in the error. */
PvStatus pv_backup_remote_sh(PvSsh *s, const char *script, const char *const *args, int timeout_ms,
                             PvBuf *out, PvError *err) PV_MUSTCHECK;
PvStatus pv_backup_remote_list(PvSsh *s, const char *dir, int timeout_ms, PvBackupEntry **out,
                               size_t *n, PvError *err) PV_MUSTCHECK;
/* Creates dir if missing, checks that the ssh user can write in it, and chooses a label for
 * base ("-N" appended when a file of that name exists). */
PvStatus pv_backup_remote_prepare(PvSsh *s, const char *dir, const char *base, char *label,
                                  size_t size, int timeout_ms, PvError *err) PV_MUSTCHECK;
/* The command (sh -c SCRIPT) that renames DIR/LABEL.partial to DIR/LABEL+suffix ("" or
 * ".failed") and prints its size (du -sb) and facts for pv_backup_finish_parse; the daemon
 * runs it detached (act/hostcmd.h), du taking its time on a big backup.  av: 8 slots. */
void pv_backup_remote_finish_argv(const char *dir, const char *label, const char *suffix,
                                  const char *av[8]);
/* Writes DIR/LABEL.json atomically on the host (temporary file, sync, mv, sync). */
PvStatus pv_backup_remote_catalog_write(PvSsh *s, const char *dir, const PvBackupEntry *e,
                                        int timeout_ms, PvError *err) PV_MUSTCHECK;
/* Renames DIR/LABEL+suffix (suffix NULL: no directory) to LABEL.deleting, unlinks LABEL.json
 * when json, and starts rm -rf of every *.deleting in the background. */
PvStatus pv_backup_remote_remove(PvSsh *s, const char *dir, const char *label, const char *suffix,
                                 bool json, int timeout_ms, PvError *err) PV_MUSTCHECK;
/* Whether DIR/LABEL/backup_label is readable there. */
PvStatus pv_backup_remote_has_label(PvSsh *s, const char *path, int timeout_ms, bool *yes,
                                    PvError *err) PV_MUSTCHECK;

#endif
