/*
 * journal_ext: keeps the journal's rotation (journal.max_bytes, journal.keep) in step with the
 * configuration: set at start, and again after each accepted reload.  The rotation itself is
 * the journal writer's (journal/journal.h).
 */
#ifndef PV_PGVIGILD_JOURNAL_EXT_H
#define PV_PGVIGILD_JOURNAL_EXT_H

#include "pgvigild/extension.h"

extern const PvExtension pv_journal_extension;

#endif
