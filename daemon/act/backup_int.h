/*
 * backup_int: what the parts of pgvigild's backup component share: backup_ext.c (the
 * extension, its schedule and control verbs), backup_job.c (one backup or verification in
 * child processes, and its catalog record), backup_retention.c (retention), backup_rp.c
 * (restore points).  Not for other modules.
 */
#ifndef PV_ACT_BACKUP_INT_H
#define PV_ACT_BACKUP_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "act/backup.h"
#include "act/hostcmd.h"
#include "io/pgconn.h"
#include "io/proc.h"
#include "journal/events.h"
#include "journal/journal.h"
#include "pgvigild/daemon.h"

#define EV(e) pv_journal_event_name(e)

/* JOB_FINISH: on backup.host, the copy renamed and measured there (a command of its own) */
typedef enum { JOB_IDLE, JOB_COPY, JOB_VERIFY, JOB_FINISH } JobPhase;

typedef struct {
	JobPhase phase;
	bool verify_only; /* a backup-verify request on a finished backup */
	int method;
	char *dir;  /* backup.directory when the job started */
	char *path; /* the directory copied into, then verified */
	PvProc *proc;
	/* backup.host: the directory is on that host, the programs run there */
	bool remote;
	PvSsh *ssh;
	int ssh_timeout_ms;
	char *pg_bin;        /* the node's pg_bin there ("" : its PATH) */
	PvHostCmd *hcmd;     /* the program running there */
	bool finish_failed;  /* JOB_FINISH after a failed verification (to LABEL.failed) */
	PvJournalSpan span;  /* backup (not for verify_only) */
	PvJournalSpan vspan; /* backup-verify */
	bool vspan_open;
	int64_t start_ms, copy_end_ms, verify_start_ms;
	PvBackupEntry e;
	/* progress, from pg_stat_progress_basebackup on the source */
	PvPgConn *pg;
	char app[96];
	int64_t next_poll_ms;
	char pphase[64];
	int64_t done, total; /* total -1: unknown */
	int64_t rate_t0_ms, rate_done0;
	int64_t rate_bps; /* -1: unknown */
	int milestone;
	char abort_reason[256];
} Job;

typedef struct {
	PvDaemon *d;
	Job job;
	/* the last job's outcome, for backup-status */
	bool have_last;
	char last_label[PV_BACKUP_LABEL_MAX], last_kind[16], last_outcome[16], last_error[512];
	int64_t last_size, last_duration_ms;
	/* what runs next */
	bool pend_promotion;
	int pend_node;
	char pend_incident[64];
	bool pend_schedule;
	int64_t due_ms; /* next scheduled backup (monotonic), 0 none */
	/* a restore point's WAL segment on its way to backup.archive_dir */
	bool arch_wait;
	char arch_path[4096], arch_wal[32], arch_name[96], arch_incident[64], arch_node[64];
	int64_t arch_start_ms, arch_deadline_ms, arch_next_ms;
	/* retention's removals, one child rm at a time */
	PvProc *rm;
	char **rm_queue;
	size_t rm_n;
	/* where each part sits in the pollfds handed to the loop */
	int fd_pg;
} BackupExt;

/* journal records (failures to write are logged) */
void pv_backup_jevent(PvDaemon *d, const char *incident, const char *event, const char *node,
                      const char *outcome, const char *detail);
void pv_backup_jend(PvDaemon *d, const PvJournalSpan *span, const char *outcome,
                    const char *detail);

/* backup_job.c */
void pv_backup_job_clear(Job *job);
/* Stops and forgets the job's program (a remote one is stopped on its host). */
void pv_backup_job_stop_program(Job *job);
bool pv_backup_job_busy(const BackupExt *x);
/*
 * Starts a backup of node (-1: the primary).  *recorded tells whether a backup begin record
 * was written (its end record is then written too, also when starting fails).
 */
PvStatus pv_backup_job_start(BackupExt *x, PvDaemon *d, const char *trigger, int node,
                             const char *incident, int64_t now, char *label_out, size_t label_size,
                             bool *recorded, PvError *err) PV_MUSTCHECK;
/* Verifies a finished backup again (backup-verify). */
PvStatus pv_backup_verify_start(BackupExt *x, PvDaemon *d, const char *label, int64_t now,
                                PvError *err) PV_MUSTCHECK;
/* Stops the running copy: its partial directory goes, the backup end record says why. */
void pv_backup_copy_failed(BackupExt *x, PvDaemon *d, const char *outcome, const char *step,
                           const char *error, int64_t now);
/* The backup span's end record; the job is over (retention runs after a good one). */
void pv_backup_job_end(BackupExt *x, PvDaemon *d, const char *outcome, const char *step,
                       const char *error, int64_t now);
void pv_backup_job_step(BackupExt *x, PvDaemon *d, short pg_revents, int64_t now);

/* backup_retention.c */
void pv_backup_retention_run(BackupExt *x, PvDaemon *d, const char *dir, const char *incident,
                             int64_t now);
/* Renames path to DIR/LABEL.deleting (never listed again) and queues its removal. */
PvStatus pv_backup_remove_later(BackupExt *x, const char *dir, const char *label, const char *path,
                                int64_t now, PvError *err) PV_MUSTCHECK;
void pv_backup_rm_next(BackupExt *x, int64_t now);
void pv_backup_rm_step(BackupExt *x, int64_t now);

/* backup_rp.c */
void pv_backup_restore_point(BackupExt *x, PvDaemon *d, int node, int64_t now);
void pv_backup_archive_check(BackupExt *x, PvDaemon *d, int64_t now);

#endif
