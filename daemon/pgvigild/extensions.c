/*
 * The extensions pgvigild runs, in order.  Adding one: write its PvExtension table in its own
 * module and list it here.
 */
#include "pgvigild/extension.h"

#include "act/backup_ext.h"
#include "act/rejoin.h"
#include "pgvigild/hooks.h"
#include "pgvigild/journal_ext.h"
#include "pgvigild/metrics.h"
#include "pgvigild/notify.h"

static const char *const event_names[] = {"incident-open", "promoted", "incident-close",
                                          "reloaded", "lock-chain"};

const char *pv_daemon_event_name(PvDaemonEvent ev)
{
	return (ev >= 0 && (size_t)ev < sizeof event_names / sizeof event_names[0]) ? event_names[ev]
	                                                                            : "invalid";
}

const PvExtension *const pv_extensions[] = {
	&pv_journal_extension,
	&pv_hooks_extension, /* before any extension that journals on events: PGVIGIL_SEQ */
	&pv_backup_extension,
	&pv_rejoin_extension,
	&pv_metrics_extension,
	&pv_notify_extension,
	NULL,
};
