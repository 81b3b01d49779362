/*
 * cmd_report: `pgvigil incident show ID --format md|json|html`, the post-incident report
 * (report.c) of one incident, read from journal.path and its rotated files; no daemon needed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "pgvigil/cli.h"
#include "pgvigil/report.h"

int pv_cmd_incident_report(PvCli *cli, const char *id, const char *format)
{
	int f = pv_report_format_parse(format);
	const char *path = cli->cfg->journal_path;
	PvJournalLog *log = NULL;
	const PvJournalEntry **recs = NULL;
	size_t n = 0;
	PvJournalIncident summary;
	PvError err = {0};
	PvBuf out = {0};
	PvReport r;
	int rc = 0;

	if (f < 0)
		return pv_cli_fail(2, "incident show: unknown --format \"%s\" (md, json or html)",
		                   format ? format : "");
	PvStatus st = pv_journal_read(path, &log, &err);
	if (st == PV_ERR_NOT_FOUND)
		return pv_cli_fail(1, "%s: no incident %s in the journal", path, id);
	if (st != PV_OK)
		return pv_cli_fail(1, "%s", err.msg);
	if (pv_journal_incident_records(log, id, &recs, &n, &err) != PV_OK ||
	    pv_journal_incident_summary(log, id, &summary, &err) != PV_OK) {
		rc = pv_cli_fail(1, "%s: %s", path, err.msg);
		goto out;
	}
	pv_report_build(&summary, recs, n, &r);
	pv_report_render(&r, (PvReportFormat)f, &out);
	pv_report_free(&r);
	fwrite(out.data, 1, out.len, stdout);
	if (fflush(stdout) != 0)
		rc = pv_cli_fail(1, "cannot write output");
out:
	pv_buf_free(&out);
	free(recs);
	pv_journal_log_free(log);
	return rc;
}
