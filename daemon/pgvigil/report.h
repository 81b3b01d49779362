/*
 * report: the post-incident review of one incident, from its journal records, as Markdown,
 * JSON or a self-contained HTML page with an SVG timeline (`pgvigil incident show ID --format`).
 *
 * pv_report_build() is pure: the incident's records (seq order) in, the analysis out.
 *   steps     every record in order; a begin and its end are one step (start, duration,
 *             outcome, and the error or note);
 *   phases    detection (the primary's first failed probe to incident-open), decision
 *             (incident-open to failover-decision), fencing, promotion, endpoint switch,
 *             repointing (first repoint to repoint-verify's end), backup: each present one
 *             with its start and duration;
 *   decision  the failover-decision record: verdict, reason, winner, every candidate;
 *             a manual-failover's operator and reason; the incident-open's trigger and reason;
 *   outage    the client-facing window as pgvigil saw it: from the primary's first failed probe
 *             (or incident-open) to the end of the endpoint switch (or of the promotion when
 *             there is no PgBouncer); open when there was no switch;
 *   data loss the LSN gap between the old primary's last observed position and what the winner
 *             had received: a floor, since the old primary may have written more after its last
 *             probe (0 with a synchronous standby guard).
 * Offsets are milliseconds from the incident's first record (journal_read's offsets).
 */
#ifndef PV_PGVIGIL_REPORT_H
#define PV_PGVIGIL_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "journal/journal_read.h"
#include "pgvigil/cli.h"

typedef enum { PV_REPORT_MD, PV_REPORT_JSON, PV_REPORT_HTML } PvReportFormat;
/* "md", "json", "html"; -1 for anything else. */
int pv_report_format_parse(const char *name);

typedef struct {
	const PvJournalEntry *rec; /* the begin record, or the only one */
	const PvJournalEntry *end; /* its end record, or NULL */
	int64_t start_ms;
	int64_t duration_ms; /* -1: not an action, or no end */
	const char *outcome; /* NULL: none */
	bool unfinished;     /* a begin without an end */
	char note[256];
} PvReportStep;

typedef struct {
	const char *name;
	int64_t start_ms;
	int64_t end_ms;
} PvReportPhase;

#define PV_REPORT_MAX_PHASES 7

typedef struct {
	PvJournalIncident summary;
	PvReportStep *steps;
	size_t nsteps;
	PvReportPhase phases[PV_REPORT_MAX_PHASES];
	int nphases;
	int64_t total_ms;     /* last record's offset */
	int64_t detection_ms; /* first failed probe to incident-open; -1 unknown */
	const PvJournalEntry *open, *decision, *manual, *close;
	bool outage_known;
	bool outage_by_switch; /* ends with the PgBouncer switch (else with the promotion) */
	int64_t outage_start_ms, outage_end_ms; /* outage_end_ms -1: not restored within it */
	int64_t loss_bytes;                     /* -1 unknown */
	bool sync_guarded;
	const char *old_primary_lsn, *winner_lsn; /* NULL unknown */
} PvReport;

/* recs: the incident's records in seq order (pv_journal_incident_records); summary: its
 * pv_journal_incident_summary.  The report borrows both (and the log behind them). */
void pv_report_build(const PvJournalIncident *summary, const PvJournalEntry *const *recs, size_t n,
                     PvReport *out);
void pv_report_free(PvReport *r);
void pv_report_render(const PvReport *r, PvReportFormat f, PvBuf *out);

/* `pgvigil incident show ID --format FORMAT` (cmd_report.c): reads journal.path, prints the
 * report; returns the exit status. */
int pv_cmd_incident_report(PvCli *cli, const char *id, const char *format);

#endif
