/*
 * resume: finishing a failover that a crash of pgvigild interrupted.
 *
 * At start the journal is read back: if its last incident has no incident-close, the daemon
 * takes that incident over, with what the records say was done (the decision's winner and old
 * primary, whether the promotion began, whether PgBouncer was fenced).  Once every node has
 * been probed it rolls forward:
 *   - the winner answers as a primary: it was promoted; the endpoint is switched (again: the
 *     step is idempotent), the other standbys repointed, the old primary stopped, verified,
 *     the incident closed;
 *   - the promotion began but the winner is still a standby: the failover is decided afresh,
 *     but only the same winner may be promoted (never a second node);
 *   - no promotion began: KILLed PgBouncer databases are RESUMEd and the daemon decides as
 *     usual (a primary that answers again closes the incident as recovered).
 * Every step is journaled; nothing is ever promoted twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/act.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "journal/journal_read.h"
#include "pgvigild/daemon.h"

void pv_resume_load(PvDaemon *d)
{
	PvJournalLog *log = NULL;
	PvError err;
	d->resume_pending = false;
	d->resume_target = -1;
	if (pv_journal_read(d->cfg->journal_path, &log, &err) != PV_OK) {
		pv_journal_log_free(log);
		return;
	}
	/* the last primary the journal knows of: a restarted daemon starts from it, so a primary
	 * that died while pgvigild was down is still recognised as the one to replace */
	for (size_t i = log->nentries; i-- > 0;) {
		const PvJournalEntry *e = &log->entries[i];
		bool found = strcmp(e->event, "primary-found") == 0 ||
		             (strcmp(e->event, "promote") == 0 && strcmp(e->phase, "end") == 0 &&
		              e->outcome && strcmp(e->outcome, "ok") == 0);
		if (found && e->node) {
			int k = pv_config_node_index(d->cfg, e->node);
			if (k >= 0 && d->view.primary < 0) {
				d->view.primary = k;
				pv_info("the journal's last known primary is %s", e->node);
			}
			break;
		}
	}

	/* maintenance mode survives restarts: the last maintenance record decides */
	for (size_t i = log->nentries; i-- > 0;) {
		const PvJournalEntry *e = &log->entries[i];
		if (strcmp(e->event, "maintenance") != 0)
			continue;
		if (e->outcome && strcmp(e->outcome, "paused") == 0) {
			const char *r = pv_journal_entry_detail_str(e, "reason");
			d->paused = true;
			snprintf(d->paused_reason, sizeof d->paused_reason, "%s", r ? r : "");
			pv_warn("paused for maintenance since before the restart (%s): no automatic action",
			        d->paused_reason);
		}
		break;
	}

	PvJournalIncident *incs = NULL;
	size_t n = 0;
	pv_journal_list_incidents(log, &incs, &n);
	const PvJournalIncident *last = NULL;
	for (size_t i = 0; i < n; i++)
		if (!last || incs[i].first_seq > last->first_seq)
			last = &incs[i];
	if (!last || last->closed) {
		free(incs);
		pv_journal_log_free(log);
		return;
	}
	const PvJournalEntry **recs = NULL;
	size_t nrecs = 0;
	if (pv_journal_incident_records(log, last->id, &recs, &nrecs, &err) != PV_OK) {
		free(incs);
		pv_journal_log_free(log);
		return;
	}
	int winner = -1, old = -1;
	bool promote_begun = false, promote_ok = false, killed = false, endpoint_ok = false;
	for (size_t i = 0; i < nrecs; i++) {
		const PvJournalEntry *e = recs[i];
		if (strcmp(e->event, "failover-decision") == 0) {
			const char *w = pv_journal_entry_detail_str(e, "winner");
			const char *o = pv_journal_entry_detail_str(e, "old_primary");
			winner = w ? pv_config_node_index(d->cfg, w) : -1;
			old = o ? pv_config_node_index(d->cfg, o) : -1;
		} else if (strcmp(e->event, "promote") == 0) {
			promote_begun = true;
			if (strcmp(e->phase, "end") == 0 && e->outcome && strcmp(e->outcome, "ok") == 0)
				promote_ok = true;
		} else if (strcmp(e->event, "fence") == 0 && strcmp(e->phase, "end") == 0 &&
		           e->outcome && strcmp(e->outcome, "ok") == 0) {
			const char *m = pv_journal_entry_detail_str(e, "method");
			if (m && strcmp(m, "pgbouncer") == 0)
				killed = true;
		} else if (strcmp(e->event, "endpoint-switch") == 0 && strcmp(e->phase, "end") == 0 &&
		           e->outcome && strcmp(e->outcome, "ok") == 0) {
			endpoint_ok = true;
		}
	}
	snprintf(d->incident, sizeof d->incident, "%s", last->id);
	d->incident_start_ms = pv_clock_mono_ms();
	d->incident_automatic = last->trigger && strcmp(last->trigger, "automatic") == 0;
	d->incident_refusal_journaled = false;
	d->resume_pending = true;
	d->resume_winner = winner;
	d->resume_old = old;
	d->resume_promote_begun = promote_begun;
	d->resume_bouncer_killed = killed && !endpoint_ok;

	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "winner", winner >= 0 ? d->cfg->nodes[winner].name : NULL);
	pv_json_str(&j, "old_primary", old >= 0 ? d->cfg->nodes[old].name : NULL);
	pv_json_bool(&j, "promote_begun", promote_begun);
	pv_json_bool(&j, "promote_ended_ok", promote_ok);
	pv_json_bool(&j, "pgbouncer_fenced", killed);
	pv_json_bool(&j, "endpoint_switched", endpoint_ok);
	pv_json_int(&j, "records", (int64_t)nrecs);
	pv_json_obj_close(&j);
	pv_daemon_journal_event(d, "incident-resume", winner >= 0 ? d->cfg->nodes[winner].name : NULL,
	                        NULL, b.data);
	pv_buf_free(&b);
	pv_warn("incident %s was left open by a previous pgvigild: resuming it", d->incident);
	free(recs);
	free(incs);
	pv_journal_log_free(log);
}

/* Called from evaluate() until it returns false: acts once every node has been probed. */
bool pv_resume_step(PvDaemon *d, int64_t now)
{
	(void)now;
	if (!d->resume_pending)
		return false;
	PvClusterView *v = &d->view;
	for (int i = 0; i < v->nnodes; i++)
		if (v->nodes[i].obs.result == PV_PROBE_NONE)
			return true; /* not everyone asked yet */
	d->resume_pending = false;
	PvActCtx ctx = {.cfg = d->cfg, .journal = d->journal, .incident = d->incident};
	int w = d->resume_winner, old = d->resume_old;
	PvError err;

	if (w >= 0 && v->nodes[w].obs.result == PV_PROBE_UP && !v->nodes[w].obs.in_recovery) {
		/* promoted: roll forward */
		pv_info("resume: %s is the primary; finishing the failover", v->nodes[w].name);
		if (old >= 0 && old != w)
			v->nodes[old].failed = true;
		v->primary = w;
		if (d->cfg->pgbouncer.enabled && pv_act_endpoint_switch(&ctx, w, &err) != PV_OK)
			d->problems++;
		memset(d->verify_pending, 0, sizeof d->verify_pending);
		for (int i = 0; i < v->nnodes; i++) {
			const PvNodeView *n = &v->nodes[i];
			if (i == w || i == old || n->obs.result != PV_PROBE_UP || !n->obs.in_recovery)
				continue;
			if (n->obs.receiver_streaming && n->obs.sender_port == v->nodes[w].port &&
			    strcmp(n->obs.sender_host, v->nodes[w].host) == 0)
				continue; /* already follows */
			if (pv_act_repoint(&ctx, i, w, &err) == PV_OK)
				d->verify_pending[i] = true;
			else
				d->problems++;
		}
		if (old >= 0 && old != w)
			(void)pv_act_fence_stop(&ctx, old);
		pv_daemon_verify_begin(d, w);
		return false;
	}
	if (old >= 0 && v->primary < 0)
		v->primary = old;
	if (d->resume_bouncer_killed && pv_act_bouncer_resume(&ctx, &err) != PV_OK)
		pv_error("resume: RESUME of the PgBouncer databases: %s", err.msg);
	if (w >= 0 && d->resume_promote_begun) {
		/* the promotion of w began: only w may be promoted now */
		d->resume_target = w;
		pv_info("resume: the promotion of %s began but it is still a standby: only it may be "
		        "promoted", v->nodes[w].name);
	}
	return false;
}
