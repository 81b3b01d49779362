/*
 * backup_ext: pgvigild's backup component, a PvExtension (pgvigild/extension.h).
 *
 * What it does, each step journaled (pgvigil-journal(5)):
 *   - incident opens, the primary answers as one: pg_create_restore_point('pgvigil-<id>') and
 *     pg_switch_wal() within probe.timeout_ms (restore-point begin/end), then watches
 *     backup.archive_dir for that WAL segment (restore-point-archived); otherwise
 *     restore-point with outcome skipped and the reason;
 *   - after a promotion (backup.on_promotion), on backup.interval_s, and on request
 *     (control verb backup-start): a base backup of the primary in a child process
 *     (backup begin/end, backup-progress milestones), verified with pg_verifybackup in another
 *     (backup-verify begin/end), renamed from LABEL.partial to LABEL and catalogued only then,
 *     then retention (backup-delete, the directories removed by a child rm);
 *   - control verbs backup-start, backup-status (progress from pg_stat_progress_basebackup,
 *     polled once a second with a probe.timeout_ms deadline) and backup-verify.
 * One job (backup or verification) at a time; a promotion's or a schedule's backup waits for
 * the running one, except that a promotion stops a copy still reading from another node.
 * The loop is never blocked longer than probe.timeout_ms (the restore point), plus the few
 * file operations of the catalog.  With backup.host the directory is on that node's host:
 * the programs (pg_basebackup, pg_verifybackup, the rename and du) run there detached and
 * polled (act/hostcmd.h), and each catalog operation is one short ssh call, each bounded by
 * the node's ssh.timeout_ms (backup.h, backup_remote.c).
 */
#ifndef PV_ACT_BACKUP_EXT_H
#define PV_ACT_BACKUP_EXT_H

#include "pgvigild/extension.h"

extern const PvExtension pv_backup_extension;

#endif
