#include "pgvigild/journal_ext.h"

#include "pgvigild/daemon.h"

static int enabled = 1; /* a non-NULL state: the extension always runs */

static void apply(PvDaemon *d)
{
	pv_journal_set_rotation(d->journal, d->cfg->journal_max_bytes, d->cfg->journal_keep);
}

static void *journal_create(PvDaemon *d)
{
	apply(d);
	return &enabled;
}

static void journal_on_event(void *self, PvDaemon *d, PvDaemonEvent ev, int node)
{
	(void)self;
	(void)node;
	if (ev == PV_DEV_RELOADED)
		apply(d);
}

const PvExtension pv_journal_extension = {
    .name = "journal",
    .create = journal_create,
    .on_event = journal_on_event,
};
