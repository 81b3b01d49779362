#include "pgvigild/daemon.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act/act.h"
#include "common/clock.h"
#include "common/json.h"
#include "core/cluster.h"
#include "common/log.h"
#include "ctl/ctl.h"
#include "io/pgconn.h"

#define PV_POLL_MAX (PV_MAX_NODES * 2 + 3)

/* ---------------------------------------------------------------- journal helpers */

void pv_daemon_journal_event(PvDaemon *d, const char *event, const char *node, const char *outcome,
                             const char *detail)
{
	pv_daemon_journal_event_in(d, d->incident, event, node, outcome, detail);
}

void pv_daemon_journal_event_in(PvDaemon *d, const char *incident, const char *event,
                                const char *node, const char *outcome, const char *detail)
{
	PvJournalRecord r = {
		.incident = incident && *incident ? incident : NULL,
		.event = event,
		.phase = PV_PHASE_EVENT,
		.node = node && *node ? node : NULL,
		.outcome = outcome,
		.duration_ms = -1,
		.detail_json = detail,
	};
	PvError err;
	if (pv_journal_append(d->journal, &r, NULL, &err) != PV_OK)
		pv_error("journal: %s (event %s not recorded)", err.msg, event);
}

/* Fresh views from everyone but the primary (whose own retries keep their spacing). */
static void kick_others(PvDaemon *d, int64_t now)
{
	for (int i = 0; i < d->view.nnodes; i++)
		if (i != d->view.primary)
			pv_prober_kick(d->prober, i, now);
}

void pv_daemon_journal_reason(PvDaemon *d, const char *event, const char *node,
                              const char *outcome, const char *reason)
{
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "reason", reason);
	pv_json_obj_close(&j);
	pv_daemon_journal_event(d, event, node, outcome, b.data);
	pv_buf_free(&b);
}

/* ---------------------------------------------------------------- view */

void pv_daemon_build_view(PvClusterView *view, const PvConfig *cfg)
{
	PvClusterView old = *view;
	char primary_name[64] = "";
	if (old.primary >= 0 && old.primary < old.nnodes)
		snprintf(primary_name, sizeof primary_name, "%s", old.nodes[old.primary].name);

	memset(view, 0, sizeof *view);
	view->nnodes = cfg->nnodes;
	view->primary = -1;
	for (int i = 0; i < cfg->nnodes; i++) {
		PvNodeView *n = &view->nodes[i];
		for (int k = 0; k < old.nnodes; k++)
			if (strcmp(old.nodes[k].name, cfg->nodes[i].name) == 0)
				*n = old.nodes[k];
		snprintf(n->name, sizeof n->name, "%s", cfg->nodes[i].name);
		n->priority = cfg->nodes[i].priority;
		PvError err;
		if (pv_pg_conninfo_target(cfg->nodes[i].conninfo, n->host, sizeof n->host, &n->port,
		                          &err) != PV_OK) {
			n->host[0] = '\0';
			n->port = 0;
		}
		if (primary_name[0] && strcmp(primary_name, n->name) == 0)
			view->primary = i;
	}
}

static const char *role_of(const PvNodeView *n, bool is_primary)
{
	switch (n->obs.result) {
	case PV_PROBE_UP:
		return n->obs.in_recovery ? "standby" : "primary";
	case PV_PROBE_DOWN:
		return is_primary ? "primary (down)" : n->failed ? "former primary (down)" : "down";
	case PV_PROBE_UNKNOWN:
		return "unknown";
	default:
		return "unprobed";
	}
}

static void view_json(const PvDaemon *d, PvJson *j)
{
	const PvClusterView *v = &d->view;
	uint64_t primary_lsn = v->primary >= 0 ? v->nodes[v->primary].obs.current_lsn : 0;
	pv_json_arr_open(j, "nodes");
	for (int i = 0; i < v->nnodes; i++) {
		const PvNodeView *n = &v->nodes[i];
		const PvNodeObs *o = &n->obs;
		pv_json_obj_open(j, NULL);
		pv_json_str(j, "name", n->name);
		pv_json_str(j, "role", role_of(n, i == v->primary));
		pv_json_str(j, "probe", pv_probe_result_name(o->result));
		pv_json_bool(j, "reachable", o->result == PV_PROBE_UP);
		pv_json_str(j, "reason", o->reason[0] ? o->reason : NULL);
		pv_json_str(j, "conninfo", d->cfg->nodes[i].conninfo_redacted);
		pv_json_int(j, "priority", n->priority);
		pv_json_bool(j, "in_recovery", o->in_recovery);
		if (o->timeline)
			pv_json_int(j, "timeline", o->timeline);
		else
			pv_json_null(j, "timeline");
		uint64_t lsn = o->in_recovery ? pv_core_standby_lsn(o) : o->current_lsn;
		pv_json_lsn(j, "lsn", lsn);
		pv_json_lsn(j, "receive_lsn", o->receive_lsn);
		pv_json_lsn(j, "replay_lsn", o->replay_lsn);
		if (o->in_recovery && primary_lsn && lsn && o->result == PV_PROBE_UP)
			pv_json_int(j, "lag_bytes", primary_lsn > lsn ? (int64_t)(primary_lsn - lsn) : 0);
		else
			pv_json_null(j, "lag_bytes");
		pv_json_bool(j, "streaming", o->receiver_streaming);
		if (o->sender_port) {
			char s[160];
			snprintf(s, sizeof s, "%s:%d", o->sender_host, o->sender_port);
			pv_json_str(j, "upstream", s);
		} else
			pv_json_null(j, "upstream");
		pv_json_int(j, "probe_latency_ms", o->latency_ms);
		pv_json_int(j, "consecutive_failures", n->consecutive_failures);
		pv_json_bool(j, "failed_primary", n->failed);
		const PvHealthReport *h = &d->health[i];
		pv_json_str(j, "health", d->health_known[i] ? pv_health_name(h->health) : "unknown");
		pv_json_arr_open(j, "health_reasons");
		for (int r = 0; d->health_known[i] && r < h->nreasons; r++)
			pv_json_str(j, NULL, h->reasons[r]);
		pv_json_arr_close(j);
		if (i == v->primary) {
			pv_json_str(j, "write", n->write == PV_WRITE_OK       ? "ok"
			                        : n->write == PV_WRITE_FAILED ? "failed"
			                                                      : NULL);
			if (n->ncommit)
				pv_json_int(j, "commit_ms", n->commit_ms[0]);
			else
				pv_json_null(j, "commit_ms");
		}
		if (o->in_recovery && n->heartbeat_age_ms >= 0)
			pv_json_int(j, "heartbeat_age_ms", n->heartbeat_age_ms);
		if (o->in_recovery && o->since_last_msg_ms >= 0)
			pv_json_int(j, "since_last_msg_ms", o->since_last_msg_ms);
		pv_json_int(j, "clients", o->clients);
		pv_json_int(j, "max_connections", o->max_connections);
		pv_json_int(j, "lock_waiters", o->lock_waiters);
		if (o->lock_waiters > 0) {
			const PvLockRoot *roots;
			int nroots = pv_prober_chain(d->prober, i, &roots);
			pv_json_arr_open(j, "lock_roots");
			for (int r = 0; r < nroots; r++) {
				pv_json_obj_open(j, NULL);
				pv_json_int(j, "pid", roots[r].pid);
				pv_json_str(j, "user", roots[r].user);
				pv_json_str(j, "state", roots[r].state);
				pv_json_int(j, "blocked", roots[r].blocked);
				pv_json_int(j, "blocked_for_ms", roots[r].blocked_for_ms);
				pv_json_str(j, "relations", roots[r].relations);
				pv_json_obj_close(j);
			}
			pv_json_arr_close(j);
		}
		pv_json_obj_close(j);
	}
	pv_json_arr_close(j);
}

static void decision_json(const PvDaemon *d, PvJson *j, const char *key, const PvDecision *dec)
{
	const PvClusterView *v = &d->view;
	pv_json_obj_open(j, key);
	pv_json_str(j, "verdict", pv_verdict_name(dec->verdict));
	pv_json_str(j, "reason", dec->reason);
	pv_json_str(j, "old_primary", dec->old_primary >= 0 ? v->nodes[dec->old_primary].name : NULL);
	pv_json_str(j, "winner", dec->winner >= 0 ? v->nodes[dec->winner].name : NULL);
	if (dec->old_primary >= 0)
		pv_json_lsn(j, "old_primary_last_lsn", v->nodes[dec->old_primary].obs.current_lsn);
	pv_json_int(j, "standbys_asked", dec->nvoters);
	if (dec->loss_bytes >= 0)
		pv_json_int(j, "loss_bytes", dec->loss_bytes);
	else
		pv_json_null(j, "loss_bytes");
	pv_json_bool(j, "sync_guarded", dec->sync_guarded);
	pv_json_int(j, "standbys_seeing_primary", dec->nseeing);
	if (dec->old_primary >= 0) {
		/* how the old primary was found gone: failed probes in a row, or hung */
		pv_json_str(j, "detected_by", dec->hung ? "hang" : "failures");
		pv_json_int(j, "primary_failures", v->nodes[dec->old_primary].consecutive_failures);
	}
	pv_json_arr_open(j, "candidates");
	for (int k = 0; k < dec->ncandidates; k++) {
		const PvCandidate *c = &dec->candidates[k];
		const PvNodeView *n = &v->nodes[c->node];
		pv_json_obj_open(j, NULL);
		pv_json_str(j, "node", n->name);
		pv_json_bool(j, "reachable", n->obs.result == PV_PROBE_UP);
		pv_json_bool(j, "in_recovery", n->obs.in_recovery);
		pv_json_lsn(j, "received_lsn", n->obs.receive_lsn);
		pv_json_lsn(j, "replayed_lsn", n->obs.replay_lsn);
		pv_json_lsn(j, "rank_lsn", c->lsn);
		pv_json_int(j, "priority", n->priority);
		pv_json_bool(j, "sees_primary", c->sees_primary);
		if (c->gap_bytes >= 0)
			pv_json_int(j, "gap_bytes", c->gap_bytes);
		else
			pv_json_null(j, "gap_bytes");
		pv_json_bool(j, "sync", c->sync);
		pv_json_bool(j, "eligible", c->eligible);
		pv_json_str(j, "reason", c->reason);
		pv_json_obj_close(j);
	}
	pv_json_arr_close(j);
	pv_json_obj_close(j);
}

/* ---------------------------------------------------------------- extensions */

void pv_daemon_notify(PvDaemon *d, PvDaemonEvent ev, int node)
{
	for (int i = 0; pv_extensions[i] && i < PV_MAX_EXTENSIONS; i++)
		if (d->ext_state[i] && pv_extensions[i]->on_event)
			pv_extensions[i]->on_event(d->ext_state[i], d, ev, node);
}

static void extensions_create(PvDaemon *d)
{
	for (int i = 0; pv_extensions[i] && i < PV_MAX_EXTENSIONS; i++)
		d->ext_state[i] = pv_extensions[i]->create ? pv_extensions[i]->create(d) : NULL;
}

static void extensions_destroy(PvDaemon *d)
{
	for (int i = 0; pv_extensions[i] && i < PV_MAX_EXTENSIONS; i++) {
		if (d->ext_state[i] && pv_extensions[i]->destroy)
			pv_extensions[i]->destroy(d->ext_state[i]);
		d->ext_state[i] = NULL;
	}
}

/* ---------------------------------------------------------------- incidents */

static void incident_open(PvDaemon *d, const char *trigger, const char *reason, const char *node)
{
	const PvNodeView *p = d->view.primary >= 0 ? &d->view.nodes[d->view.primary] : NULL;
	int64_t now = pv_clock_mono_ms();
	if (d->incident[0])
		return;
	pv_journal_new_incident_id(d->journal, d->incident, sizeof d->incident);
	d->incident_start_ms = now;
	d->incident_refusal_journaled = false;
	d->incident_automatic = strcmp(trigger, "automatic") == 0;
	d->problems = 0;
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "trigger", trigger);
	pv_json_str(&j, "reason", reason);
	if (p && p->consecutive_failures > 0) {
		/* detection: from the first failed probe of the primary to this decision */
		pv_json_int(&j, "primary_failures", p->consecutive_failures);
		pv_json_int(&j, "detection_ms", now - p->down_since_ms);
	}
	pv_json_obj_close(&j);
	pv_daemon_journal_event(d, "incident-open", node, NULL, b.data);
	pv_buf_free(&b);
	pv_warn("incident %s opened (%s): %s", d->incident, trigger, reason);
	pv_daemon_notify(d, PV_DEV_INCIDENT_OPEN, d->view.primary);
}

static void incident_close_note(PvDaemon *d, const char *new_primary, const char *outcome,
                                const char *note)
{
	if (!d->incident[0])
		return;
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "new_primary", new_primary);
	pv_json_int(&j, "duration_ms", pv_clock_mono_ms() - d->incident_start_ms);
	pv_json_int(&j, "failed_steps", d->problems);
	if (note)
		pv_json_str(&j, "note", note);
	pv_json_obj_close(&j);
	pv_daemon_journal_event(d, "incident-close", new_primary, outcome, b.data);
	pv_buf_free(&b);
	pv_warn("incident %s closed: %s, primary is %s", d->incident, outcome,
	        new_primary ? new_primary : "unknown");
	pv_daemon_notify(d, PV_DEV_INCIDENT_CLOSE, d->view.primary);
	d->incident[0] = '\0';
}

static void incident_close_as(PvDaemon *d, const char *new_primary, const char *outcome)
{
	incident_close_note(d, new_primary, outcome, NULL);
}

static void incident_close(PvDaemon *d, const char *new_primary)
{
	incident_close_as(d, new_primary, d->problems ? "failed" : "ok");
}

/* A node just promoted starts with a clean write path (its old heartbeat state, from before it
 * was a primary or from an earlier life as one, says nothing about it now). */
void pv_daemon_reset_write_state(PvNodeView *n)
{
	n->write = PV_WRITE_NONE;
	n->write_failing_since_ms = 0;
	n->write_timed_out = false;
	n->write_blocked_by_lock = false;
	n->write_error[0] = '\0';
	n->ncommit = 0;
}

void pv_daemon_incident_open(PvDaemon *d, const char *trigger, const char *reason, const char *node)
{
	incident_open(d, trigger, reason, node);
}

void pv_daemon_incident_close(PvDaemon *d, const char *new_primary, bool failed)
{
	if (failed)
		d->problems++;
	incident_close(d, new_primary);
}

/* ---------------------------------------------------------------- failover */

void pv_daemon_verify_begin(PvDaemon *d, int primary)
{
	PvBuf b = {0};
	PvJson j;
	PvError err;
	int npending = 0;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "new_primary", d->view.nodes[primary].name);
	pv_json_arr_open(&j, "standbys");
	for (int i = 0; i < d->view.nnodes; i++)
		if (d->verify_pending[i]) {
			pv_json_str(&j, NULL, d->view.nodes[i].name);
			npending++;
		}
	pv_json_arr_close(&j);
	pv_json_int(&j, "timeout_ms", d->cfg->failover_repoint_timeout_ms);
	pv_json_obj_close(&j);
	if (npending == 0) {
		pv_buf_free(&b);
		incident_close(d, d->view.nodes[primary].name);
		return;
	}
	if (pv_journal_begin(d->journal, &d->verify_span, d->incident, "repoint-verify", NULL, b.data,
	                     &err) != PV_OK)
		pv_error("journal: %s", err.msg);
	pv_buf_free(&b);
	d->verifying = true;
	d->verify_primary = primary;
	d->verify_start_ms = pv_clock_mono_ms();
	d->verify_deadline_ms = d->verify_start_ms + d->cfg->failover_repoint_timeout_ms;
	pv_prober_kick(d->prober, -1, d->verify_start_ms);
}

static void verify_check(PvDaemon *d, int64_t now)
{
	if (!d->verifying)
		return;
	const PvNodeView *p = &d->view.nodes[d->verify_primary];
	int left = 0;
	for (int i = 0; i < d->view.nnodes; i++) {
		if (!d->verify_pending[i])
			continue;
		const PvNodeObs *o = &d->view.nodes[i].obs;
		if (o->at_ms > d->verify_start_ms && o->result == PV_PROBE_UP && o->receiver_streaming &&
		    o->sender_port == p->port && strcmp(o->sender_host, p->host) == 0) {
			d->verify_pending[i] = false;
			pv_info("%s streams from %s", d->view.nodes[i].name, p->name);
		} else
			left++;
	}
	if (left && now < d->verify_deadline_ms)
		return;
	PvBuf b = {0};
	PvJson j;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_arr_open(&j, "not_streaming");
	for (int i = 0; i < d->view.nnodes; i++)
		if (d->verify_pending[i])
			pv_json_str(&j, NULL, d->view.nodes[i].name);
	pv_json_arr_close(&j);
	pv_json_obj_close(&j);
	if (pv_journal_end(d->journal, &d->verify_span, left ? "timeout" : "ok", b.data, &err) != PV_OK)
		pv_error("journal: %s", err.msg);
	pv_buf_free(&b);
	if (left) {
		d->problems++;
		pv_error("%d standby(s) do not stream from %s after %d ms", left, p->name,
		         d->cfg->failover_repoint_timeout_ms);
	}
	memset(d->verify_pending, 0, sizeof d->verify_pending);
	d->verifying = false;
	incident_close(d, p->name);
}

/*
 * Carries out a FAILOVER decision: decision record, promote, endpoint, repoint; verification
 * of the repointed standbys continues in the loop.  Returns the promotion's status.
 */
static PvStatus run_failover(PvDaemon *d, const PvDecision *dec, PvError *err)
{
	PvActCtx ctx = {.cfg = d->cfg, .journal = d->journal, .incident = d->incident};
	PvClusterView *v = &d->view;
	int winner = dec->winner, old = dec->old_primary;
	PvBuf b = {0};
	PvJson j;

	pv_json_init(&j, &b);
	decision_json(d, &j, NULL, dec);
	pv_daemon_journal_event(d, "failover-decision", v->nodes[winner].name, NULL, b.data);
	pv_buf_free(&b);
	pv_warn("failover: %s", dec->reason);

	/* fence first: promotion only once a fence held or the old primary is out of reach */
	PvFenceResult fr = {0};
	if (old >= 0) {
		bool unreachable = v->nodes[old].obs.result == PV_PROBE_DOWN && dec->nseeing == 0;
		if (unreachable) {
			PvBuf f = {0};
			PvJson fj;
			pv_json_init(&fj, &f);
			pv_json_obj_open(&fj, NULL);
			pv_json_str(&fj, "method", "finding");
			pv_json_str(&fj, "probe_error", v->nodes[old].obs.reason);
			pv_json_int(&fj, "failures", v->nodes[old].consecutive_failures);
			pv_json_int(&fj, "standbys_asked", dec->nvoters);
			pv_json_int(&fj, "standbys_seeing_primary", dec->nseeing);
			pv_json_obj_close(&fj);
			pv_daemon_journal_event(d, "fence", v->nodes[old].name, "ok", f.data);
			pv_buf_free(&f);
		}
		if (pv_act_fence(&ctx, old, unreachable, &fr, err) != PV_OK) {
			pv_daemon_journal_event(d, "failover-refused", v->nodes[old].name, "refused", NULL);
			pv_error("failover: %s", err->msg);
			PvError e2;
			if (fr.bouncer_killed && pv_act_bouncer_resume(&ctx, &e2) != PV_OK)
				pv_error("RESUME after an aborted failover: %s", e2.msg);
			d->problems++;
			d->failover_hold_until_ms = pv_clock_mono_ms() + 10 * d->cfg->probe_interval_ms;
			incident_close(d, v->nodes[old].name);
			return PV_ERR_STATE;
		}
	}

	PvStatus st = pv_act_promote(&ctx, winner, err);
	if (st != PV_OK) {
		PvError e2;
		if (fr.bouncer_killed && pv_act_bouncer_resume(&ctx, &e2) != PV_OK)
			pv_error("RESUME after a failed promotion: %s", e2.msg);
		d->problems++;
		d->failover_hold_until_ms = pv_clock_mono_ms() + 10 * d->cfg->probe_interval_ms;
		incident_close(d, old >= 0 ? v->nodes[old].name : NULL);
		return st;
	}
	if (old >= 0)
		v->nodes[old].failed = true;
	v->nodes[winner].failed = false;
	v->nodes[winner].obs.in_recovery = false; /* checked by the promotion itself */
	v->nodes[winner].promoted_at_ms = pv_clock_mono_ms();
	pv_daemon_reset_write_state(&v->nodes[winner]);
	v->nodes[winner].obs.receiver_streaming = false;
	v->primary = winner;

	if (d->cfg->pgbouncer.enabled) {
		PvError e2;
		if (pv_act_endpoint_switch(&ctx, winner, &e2) != PV_OK)
			d->problems++;
	}

	memset(d->verify_pending, 0, sizeof d->verify_pending);
	for (int i = 0; i < v->nnodes; i++) {
		if (i == winner || i == old)
			continue;
		const PvNodeView *n = &v->nodes[i];
		if (n->obs.result != PV_PROBE_UP || !n->obs.in_recovery) {
			pv_daemon_journal_reason(d, "repoint", n->name, "skipped", "not answering as a standby");
			continue;
		}
		PvError e2;
		if (pv_act_repoint(&ctx, i, winner, &e2) == PV_OK)
			d->verify_pending[i] = true;
		else
			d->problems++;
	}
	/* the stop deferred past the promotion: a thawed old primary must not take writes */
	if (fr.stop_deferred && !pv_act_fence_stop(&ctx, old))
		pv_warn("the old primary %s could not be stopped after the promotion", v->nodes[old].name);
	pv_daemon_notify(d, PV_DEV_PROMOTED, winner);
	pv_daemon_verify_begin(d, winner);
	return PV_OK;
}

/* ---------------------------------------------------------------- the round's decision */

static void identify_primary(PvDaemon *d)
{
	PvClusterView *v = &d->view;
	int found = pv_core_find_primary(v);
	if (found < 0 || found == v->primary)
		return;
	if (v->primary >= 0) {
		const PvNodeView *old = &v->nodes[v->primary];
		if (old->obs.result == PV_PROBE_UP && !old->obs.in_recovery)
			return; /* split brain: the decision reports it */
		if (v->nodes[found].failed)
			return; /* a former primary came back: never adopt it */
	}
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "previous", v->primary >= 0 ? v->nodes[v->primary].name : NULL);
	pv_json_int(&j, "timeline", v->nodes[found].obs.timeline);
	pv_json_lsn(&j, "lsn", v->nodes[found].obs.current_lsn);
	pv_json_obj_close(&j);
	v->primary = found;
	pv_daemon_journal_event(d, "primary-found", v->nodes[found].name, NULL, b.data);
	pv_buf_free(&b);
	pv_info("primary is %s", v->nodes[found].name);
}

/*
 * Two nodes answer as primaries.  The one to fence is the former primary we failed over from
 * (view.failed), else the one on the older timeline; it is stopped and the endpoint is made to
 * point at the other.  Same timeline and neither a former primary: report only, the operator
 * decides.
 */
static void fence_split_brain(PvDaemon *d)
{
	PvClusterView *v = &d->view;
	int a = -1, b = -1;
	for (int i = 0; i < v->nnodes; i++)
		if (v->nodes[i].obs.result == PV_PROBE_UP && !v->nodes[i].obs.in_recovery) {
			if (a < 0)
				a = i;
			else
				b = i;
		}
	if (a < 0 || b < 0 || d->paused)
		return;
	int stale = -1;
	if (v->nodes[a].failed != v->nodes[b].failed)
		stale = v->nodes[a].failed ? a : b;
	else if (v->nodes[a].obs.timeline != v->nodes[b].obs.timeline && v->nodes[a].obs.timeline &&
	         v->nodes[b].obs.timeline)
		stale = v->nodes[a].obs.timeline < v->nodes[b].obs.timeline ? a : b;
	if (stale < 0)
		return;
	int keep = stale == a ? b : a;
	PvActCtx ctx = {.cfg = d->cfg, .journal = d->journal, .incident = d->incident};
	PvBuf bj = {0};
	PvJson j;
	pv_json_init(&j, &bj);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "keep", v->nodes[keep].name);
	pv_json_int(&j, "keep_timeline", v->nodes[keep].obs.timeline);
	pv_json_str(&j, "fence", v->nodes[stale].name);
	pv_json_int(&j, "fence_timeline", v->nodes[stale].obs.timeline);
	pv_json_bool(&j, "former_primary", v->nodes[stale].failed);
	pv_json_obj_close(&j);
	pv_daemon_journal_event(d, "split-brain-fence", v->nodes[stale].name, NULL, bj.data);
	pv_buf_free(&bj);
	pv_warn("split brain: fencing %s (timeline %d), keeping %s (timeline %d)", v->nodes[stale].name,
	        v->nodes[stale].obs.timeline, v->nodes[keep].name, v->nodes[keep].obs.timeline);
	v->nodes[stale].failed = true;
	v->primary = keep;
	PvError err;
	if (d->cfg->pgbouncer.enabled && pv_act_endpoint_switch(&ctx, keep, &err) != PV_OK)
		pv_error("split brain: endpoint: %s", err.msg);
	if (!pv_act_fence_stop(&ctx, stale))
		pv_error("split brain: %s could not be stopped", v->nodes[stale].name);
	pv_prober_kick(d->prober, stale, pv_clock_mono_ms());
}

static void evaluate(PvDaemon *d, int64_t now)
{
	PvPolicy pol = {
		.confirm_failures = d->cfg->failover_confirm_failures,
		.automatic = d->cfg->failover_mode == PV_FAILOVER_AUTOMATIC,
		.standby_stale_ms = d->cfg->failover_standby_stale_ms,
		.wedged_after_ms = d->cfg->failover_wedged_after_ms,
		.max_lag_bytes = d->cfg->failover_max_lag_bytes,
		.locks_failover_after_ms = d->cfg->locks_failover_after_ms,
		.hang_after_ms = d->cfg->failover_hang_after_ms,
		.now_ms = now,
	};
	PvDecision dec;

	if (pv_resume_step(d, now))
		return; /* a resumed incident waits for every node's first probe */
	identify_primary(d);
	verify_check(d, now);
	if (d->verifying)
		return;
	pv_core_decide(&d->view, &pol, &dec);
	d->recheck_at_ms = dec.recheck_at_ms > now ? dec.recheck_at_ms : 0;
	if (d->resume_target >= 0 && dec.verdict == PV_VERDICT_FAILOVER &&
	    dec.winner != d->resume_target) {
		/* a promotion began in this incident: never promote a second node */
		PvRankRules rules = {.standby_stale_ms = pol.standby_stale_ms,
		                     .max_lag_bytes = pol.max_lag_bytes};
		pv_core_rank(&d->view, dec.old_primary, d->resume_target, &rules, &dec);
		if (dec.winner != d->resume_target) {
			dec.verdict = PV_VERDICT_NO_CANDIDATE;
			snprintf(dec.reason, sizeof dec.reason,
			         "the promotion of %s began before a restart and it cannot be promoted now: "
			         "not promoting another node",
			         d->view.nodes[d->resume_target].name);
		}
	}
	PvVerdict prev = d->last_verdict;
	d->last_verdict = dec.verdict;
	const char *pname = d->view.primary >= 0 ? d->view.nodes[d->view.primary].name : NULL;

	switch (dec.verdict) {
	case PV_VERDICT_HEALTHY:
		if (prev != PV_VERDICT_HEALTHY && d->suspect_since_ms) {
			/* a blip: the primary failed probes, then answered before any action */
			PvBuf b = {0};
			PvJson j;
			pv_json_init(&j, &b);
			pv_json_obj_open(&j, NULL);
			pv_json_int(&j, "duration_ms", now - d->suspect_since_ms);
			pv_json_int(&j, "failures", d->last_suspect_failures);
			pv_json_str(&j, "previous_state", pv_verdict_name(prev));
			pv_json_obj_close(&j);
			pv_daemon_journal_event(d, "primary-blip", pname, "recovered", b.data);
			pv_buf_free(&b);
			pv_info("primary %s answers again after %lld ms: ridden out", pname ? pname : "?",
			        (long long)(now - d->suspect_since_ms));
		}
		d->last_suspect_failures = 0;
		d->suspect_since_ms = 0;
		d->partition_journaled = false;
		/* an incident detection opened without a failover (manual mode, no candidate) ends
		 * here; one an operator opened stays open until closed */
		if (d->incident_automatic)
			incident_close_as(d, pname, "recovered");
		break;
	case PV_VERDICT_SUSPECT:
	case PV_VERDICT_STANDBYS_SEE_PRIMARY: {
		int f = d->view.primary >= 0 ? d->view.nodes[d->view.primary].consecutive_failures : 0;
		if (!d->suspect_since_ms)
			d->suspect_since_ms = d->view.nodes[d->view.primary].down_since_ms
			                          ? d->view.nodes[d->view.primary].down_since_ms
			                          : now;
		if (dec.verdict == PV_VERDICT_STANDBYS_SEE_PRIMARY && !d->partition_journaled) {
			/* we lost the primary, the standbys did not: our own network, not its death */
			PvBuf b = {0};
			PvJson j;
			pv_json_init(&j, &b);
			decision_json(d, &j, NULL, &dec);
			pv_daemon_journal_event(d, "watchdog-partition", pname, NULL, b.data);
			pv_buf_free(&b);
			pv_warn("pgvigil cannot reach %s but %d standby(s) still stream from it: no failover",
			        pname ? pname : "?", dec.nseeing);
			d->partition_journaled = true;
		}
		if (f != d->last_suspect_failures || dec.verdict != prev) {
			PvBuf b = {0};
			PvJson j;
			pv_json_init(&j, &b);
			pv_json_obj_open(&j, NULL);
			pv_json_int(&j, "failures", f);
			pv_json_int(&j, "confirm_failures", pol.confirm_failures);
			pv_json_str(&j, "probe_error", d->view.nodes[d->view.primary].obs.reason);
			pv_json_str(&j, "reason", dec.reason);
			pv_json_int(&j, "standbys_seeing_primary", dec.nseeing);
			pv_json_obj_close(&j);
			pv_daemon_journal_event(d, "primary-suspect", pname, NULL, b.data);
			pv_buf_free(&b);
			pv_warn("%s", dec.reason);
		}
		d->last_suspect_failures = f;
		/* fresh standby views are what the decision waits for */
		kick_others(d, now);
		break;
	}
	case PV_VERDICT_WEDGED:
	case PV_VERDICT_LOCKED:
		if (prev != dec.verdict) {
			PvBuf b = {0};
			PvJson j;
			pv_json_init(&j, &b);
			pv_json_obj_open(&j, NULL);
			pv_json_str(&j, "reason", dec.reason);
			pv_json_str(&j, "write_error", d->view.nodes[d->view.primary].write_error);
			pv_json_int(&j, "failover_after_ms", dec.verdict == PV_VERDICT_WEDGED
			                                         ? d->cfg->failover_wedged_after_ms
			                                         : d->cfg->locks_failover_after_ms);
			pv_json_obj_close(&j);
			pv_daemon_journal_event(d, pv_verdict_name(dec.verdict), pname, NULL, b.data);
			pv_buf_free(&b);
			pv_warn("%s", dec.reason);
		}
		break;
	case PV_VERDICT_SPLIT_BRAIN:
		if (prev != dec.verdict) {
			pv_daemon_journal_reason(d, pv_verdict_name(dec.verdict), NULL, NULL, dec.reason);
			pv_error("%s", dec.reason);
		}
		fence_split_brain(d);
		break;
	case PV_VERDICT_NO_PRIMARY:
		if (prev != dec.verdict) {
			pv_daemon_journal_reason(d, pv_verdict_name(dec.verdict), NULL, NULL, dec.reason);
			pv_error("%s: no automatic action", dec.reason);
		}
		break;
	case PV_VERDICT_NO_CANDIDATE:
	case PV_VERDICT_MANUAL_REQUIRED:
		incident_open(d, "automatic", dec.reason, pname);
		if (!d->incident_refusal_journaled) {
			PvBuf b = {0};
			PvJson j;
			pv_json_init(&j, &b);
			decision_json(d, &j, NULL, &dec);
			pv_daemon_journal_event(d, "failover-refused", pname, "refused", b.data);
			pv_buf_free(&b);
			pv_error("no failover: %s", dec.reason);
			d->incident_refusal_journaled = true;
		}
		break;
	case PV_VERDICT_FAILOVER: {
		if (now < d->failover_hold_until_ms)
			break;
		if (d->paused) {
			/* maintenance: decide and report, never act */
			incident_open(d, "automatic", dec.reason, pname);
			if (!d->incident_refusal_journaled) {
				PvBuf b = {0};
				PvJson j;
				pv_json_init(&j, &b);
				decision_json(d, &j, NULL, &dec);
				pv_daemon_journal_event(d, "failover-refused", pname, "refused", b.data);
				pv_buf_free(&b);
				pv_error("no failover: pgvigil is paused for maintenance (%s); %s",
				         d->paused_reason, dec.reason);
				d->incident_refusal_journaled = true;
			}
			break;
		}
		incident_open(d, "automatic", dec.reason, pname);
		PvError err;
		if (run_failover(d, &dec, &err) != PV_OK)
			pv_error("failover failed: %s", err.msg);
		break;
	}
	default:
		if (prev != dec.verdict)
			pv_info("%s", dec.reason);
		break;
	}
}

/* ---------------------------------------------------------------- control requests */

void pv_daemon_respond_error(PvCtlRequest *req, const char *msg)
{
	pv_ctl_respond_error(req, msg);
}

static void ctl_status(PvDaemon *d, PvCtlRequest *req)
{
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_bool(&j, "ok", true);
	pv_json_str(&j, "cluster", d->cfg->cluster_name);
	pv_json_str(&j, "mode", pv_failover_mode_name(d->cfg->failover_mode));
	pv_json_str(&j, "primary", d->view.primary >= 0 ? d->view.nodes[d->view.primary].name : NULL);
	pv_json_str(&j, "incident", d->incident[0] ? d->incident : NULL);
	pv_json_str(&j, "state", pv_verdict_name(d->last_verdict));
	pv_json_bool(&j, "paused", d->paused);
	pv_json_str(&j, "paused_reason", d->paused ? d->paused_reason : NULL);
	view_json(d, &j);
	if (d->cfg->pgbouncer.enabled) {
		const PvPool *pools;
		const char *perr;
		int np = pv_prober_pools(d->prober, &pools, &perr);
		pv_json_obj_open(&j, "pgbouncer");
		pv_json_str(&j, "error", np < 0 ? perr : NULL);
		pv_json_arr_open(&j, "pools");
		for (int i = 0; i < np; i++) {
			pv_json_obj_open(&j, NULL);
			pv_json_str(&j, "database", pools[i].database);
			pv_json_str(&j, "user", pools[i].user);
			pv_json_int(&j, "cl_active", pools[i].cl_active);
			pv_json_int(&j, "cl_waiting", pools[i].cl_waiting);
			pv_json_int(&j, "sv_active", pools[i].sv_active);
			pv_json_int(&j, "sv_idle", pools[i].sv_idle);
			pv_json_int(&j, "maxwait_ms", pools[i].maxwait_ms);
			pv_json_bool(&j, "exhausted", pools[i].cl_waiting > 0 &&
			                                  pools[i].maxwait_ms >= d->cfg->pgbouncer.pool_maxwait_ms);
			pv_json_obj_close(&j);
		}
		pv_json_arr_close(&j);
		pv_json_obj_close(&j);
	}
	pv_json_obj_close(&j);
	pv_ctl_respond(req, b.data);
	pv_buf_free(&b);
}

static void plan_json(const PvDaemon *d, PvJson *j, const PvDecision *dec)
{
	const PvClusterView *v = &d->view;
	pv_json_arr_open(j, "plan");
	if (dec->winner >= 0) {
		const PvNodeView *w = &v->nodes[dec->winner];
		PvBuf s = {0};
		pv_buf_printf(&s, "promote %s: pg_promote(true, %d), then check it left recovery",
		              w->name, (d->cfg->failover_promote_timeout_ms + 999) / 1000);
		pv_json_str(j, NULL, s.data);
		pv_buf_reset(&s);
		if (d->cfg->pgbouncer.enabled) {
			pv_buf_printf(&s, "point PgBouncer at %s (%s:%d): rewrite %s, RELOAD, check SHOW DATABASES",
			              w->name, w->host, w->port, d->cfg->pgbouncer.include_file);
			pv_json_str(j, NULL, s.data);
			pv_buf_reset(&s);
		}
		for (int i = 0; i < v->nnodes; i++) {
			if (i == dec->winner || i == dec->old_primary)
				continue;
			if (v->nodes[i].obs.result == PV_PROBE_UP && v->nodes[i].obs.in_recovery)
				pv_buf_printf(&s, "repoint %s to %s: ALTER SYSTEM SET primary_conninfo, "
				                  "pg_reload_conf(), wait up to %d ms until it streams",
				              v->nodes[i].name, w->name, d->cfg->failover_repoint_timeout_ms);
			else
				pv_buf_printf(&s, "skip %s: not answering as a standby", v->nodes[i].name);
			pv_json_str(j, NULL, s.data);
			pv_buf_reset(&s);
		}
		pv_buf_free(&s);
	}
	pv_json_arr_close(j);
}

static void ctl_failover(PvDaemon *d, PvCtlRequest *req, json_t *rq)
{
	const char *to = json_string_value(json_object_get(rq, "to"));
	const char *reason = json_string_value(json_object_get(rq, "reason"));
	bool dry = json_is_true(json_object_get(rq, "dry_run"));
	int target = -1;
	PvDecision dec;

	if (!reason || !*reason) {
		pv_daemon_respond_error(req, "a reason is required (--reason TEXT)");
		return;
	}
	if (to && (target = pv_config_node_index(d->cfg, to)) < 0) {
		PvBuf m = {0};
		pv_buf_printf(&m, "unknown node \"%s\"", to);
		pv_daemon_respond_error(req, m.data);
		pv_buf_free(&m);
		return;
	}
	if (d->verifying) {
		pv_daemon_respond_error(req, "a failover is still completing (waiting for standbys to follow)");
		return;
	}
	PvRankRules rules = {
		.standby_stale_ms = d->cfg->failover_standby_stale_ms,
		.max_lag_bytes = d->cfg->failover_max_lag_bytes,
		.allow_data_loss = json_is_true(json_object_get(rq, "allow_data_loss")),
	};
	pv_core_decide_manual(&d->view, target, &rules, &dec);

	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_int(&j, "operator_uid", (int64_t)req->uid);
	pv_json_int(&j, "operator_pid", (int64_t)req->pid);
	pv_json_str(&j, "reason", reason);
	pv_json_str(&j, "target", to);
	pv_json_bool(&j, "dry_run", dry);
	pv_json_bool(&j, "allow_data_loss", rules.allow_data_loss);
	pv_json_str(&j, "verdict", pv_verdict_name(dec.verdict));
	pv_json_str(&j, "decision_reason", dec.reason);
	pv_json_obj_close(&j);
	pv_daemon_journal_event(d, "manual-failover", to, dec.verdict == PV_VERDICT_FAILOVER ? (dry ? "skipped" : NULL) : "refused",
	              b.data);
	pv_buf_reset(&b);

	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	if (dec.verdict != PV_VERDICT_FAILOVER) {
		pv_json_bool(&j, "ok", false);
		pv_json_str(&j, "error", dec.reason);
		decision_json(d, &j, "decision", &dec);
	} else if (dry) {
		pv_json_bool(&j, "ok", true);
		pv_json_bool(&j, "dry_run", true);
		decision_json(d, &j, "decision", &dec);
		plan_json(d, &j, &dec);
	} else {
		PvBuf why = {0};
		pv_buf_printf(&why, "manual failover by uid %u: %s", (unsigned)req->uid, reason);
		incident_open(d, "manual", why.data, dec.old_primary >= 0 ? d->view.nodes[dec.old_primary].name : NULL);
		pv_buf_free(&why);
		char incident[64];
		snprintf(incident, sizeof incident, "%s", d->incident);
		PvError err;
		PvStatus st = run_failover(d, &dec, &err);
		pv_json_bool(&j, "ok", st == PV_OK);
		if (st != PV_OK)
			pv_json_str(&j, "error", err.msg);
		pv_json_str(&j, "incident", incident);
		pv_json_str(&j, "new_primary", st == PV_OK ? d->view.nodes[dec.winner].name : NULL);
		decision_json(d, &j, "decision", &dec);
		plan_json(d, &j, &dec);
	}
	pv_json_obj_close(&j);
	pv_ctl_respond(req, b.data);
	pv_buf_free(&b);
}

/* An operator marks a moment ("I am looking at this"): extensions take a restore point. */
static void ctl_incident(PvDaemon *d, PvCtlRequest *req, json_t *rq, bool open)
{
	const char *reason = json_string_value(json_object_get(rq, "reason"));
	const char *id = json_string_value(json_object_get(rq, "id"));
	const char *pname = d->view.primary >= 0 ? d->view.nodes[d->view.primary].name : NULL;
	PvBuf why = {0};
	if (!reason || !*reason) {
		pv_daemon_respond_error(req, "a reason is required (--reason TEXT)");
		return;
	}
	pv_buf_printf(&why, "uid %u: %s", (unsigned)req->uid, reason);
	if (open) {
		if (d->incident[0]) {
			pv_buf_reset(&why);
			pv_buf_printf(&why, "incident %s is already open", d->incident);
			pv_daemon_respond_error(req, why.data);
			pv_buf_free(&why);
			return;
		}
		incident_open(d, "operator", why.data, pname);
	} else {
		if (!d->incident[0] || !id || strcmp(id, d->incident) != 0) {
			pv_buf_reset(&why);
			pv_buf_printf(&why, "incident %s is not the open one (open: %s)", id ? id : "?",
			              d->incident[0] ? d->incident : "none");
			pv_daemon_respond_error(req, why.data);
			pv_buf_free(&why);
			return;
		}
		if (d->verifying) {
			pv_daemon_respond_error(req, "a failover is still completing in this incident");
			pv_buf_free(&why);
			return;
		}
	}
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_bool(&j, "ok", true);
	pv_json_str(&j, "incident", open ? d->incident : id);
	pv_json_obj_close(&j);
	if (!open)
		incident_close_note(d, pname, "ok", why.data);
	pv_ctl_respond(req, b.data);
	pv_buf_free(&b);
	pv_buf_free(&why);
}

static void ctl_maintenance(PvDaemon *d, PvCtlRequest *req, json_t *rq, bool pause)
{
	const char *reason = json_string_value(json_object_get(rq, "reason"));
	if (!reason || !*reason) {
		pv_daemon_respond_error(req, "a reason is required (--reason TEXT)");
		return;
	}
	bool was = d->paused;
	d->paused = pause;
	snprintf(d->paused_reason, sizeof d->paused_reason, "%s", pause ? reason : "");
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_int(&j, "operator_uid", (int64_t)req->uid);
	pv_json_str(&j, "reason", reason);
	pv_json_bool(&j, "was_paused", was);
	pv_json_obj_close(&j);
	pv_daemon_journal_event(d, "maintenance", NULL, pause ? "paused" : "resumed", b.data);
	pv_buf_reset(&b);
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_bool(&j, "ok", true);
	pv_json_bool(&j, "paused", pause);
	pv_json_obj_close(&j);
	pv_ctl_respond(req, b.data);
	pv_buf_free(&b);
	pv_warn("%s by uid %u: %s", pause ? "paused: no automatic action until pgvigil resume"
	                                  : "resumed: automatic actions again",
	        (unsigned)req->uid, reason);
}

static bool ctl_extensions(PvDaemon *d, const char *cmd, json_t *rq, PvCtlRequest *req)
{
	for (int i = 0; pv_extensions[i] && i < PV_MAX_EXTENSIONS; i++)
		if (d->ext_state[i] && pv_extensions[i]->control &&
		    pv_extensions[i]->control(d->ext_state[i], d, cmd, rq, req))
			return true;
	return false;
}

static void serve_control(PvDaemon *d)
{
	for (int k = 0; k < 4; k++) {
		PvCtlRequest req;
		PvError err;
		PvStatus st = pv_ctl_accept(d->listen_fd, 1000, &req, &err);
		if (st == PV_ERR_BUSY)
			return;
		if (st != PV_OK) {
			pv_warn("control: %s", err.msg);
			continue;
		}
		json_error_t jerr;
		json_t *rq = json_loads(req.line, 0, &jerr);
		const char *cmd = rq ? json_string_value(json_object_get(rq, "cmd")) : NULL;
		if (!cmd)
			pv_daemon_respond_error(&req, "malformed request: expected a JSON object with \"cmd\"");
		else if (strcmp(cmd, "status") == 0)
			ctl_status(d, &req);
		else if (strcmp(cmd, "failover") == 0)
			ctl_failover(d, &req, rq);
		else if (strcmp(cmd, "switchover") == 0)
			pv_switchover_ctl(d, &req, rq);
		else if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0)
			ctl_maintenance(d, &req, rq, strcmp(cmd, "pause") == 0);
		else if (strcmp(cmd, "incident-open") == 0)
			ctl_incident(d, &req, rq, true);
		else if (strcmp(cmd, "incident-close") == 0)
			ctl_incident(d, &req, rq, false);
		else if (!ctl_extensions(d, cmd, rq, &req))
			pv_daemon_respond_error(&req, "unknown command");
		json_decref(rq);
	}
}

/* ---------------------------------------------------------------- signals and reload */

static void reload(PvDaemon *d)
{
	PvConfig *fresh = NULL;
	PvBuf errors = {0};
	pv_info("SIGHUP: reloading %s", d->cfg->path);
	if (pv_config_load(d->cfg->path, &fresh, &errors) != PV_OK) {
		PvBuf b = {0};
		PvJson j;
		pv_json_init(&j, &b);
		pv_json_obj_open(&j, NULL);
		pv_json_str(&j, "path", d->cfg->path);
		pv_json_str(&j, "errors", errors.data);
		pv_json_obj_close(&j);
		pv_daemon_journal_event(d, "config-reload", NULL, "refused", b.data);
		pv_buf_free(&b);
		pv_error("reload refused, keeping the running configuration:\n%s", errors.data);
		pv_buf_free(&errors);
		return;
	}
	pv_buf_free(&errors);
	if (strcmp(fresh->journal_path, d->cfg->journal_path) != 0 ||
	    strcmp(fresh->control_socket, d->cfg->control_socket) != 0)
		pv_warn("journal.path and control.socket changes take effect at restart");
	PvConfig *old = d->cfg;
	d->cfg = fresh;
	pv_prober_free(d->prober);
	d->prober = pv_prober_new(fresh, pv_clock_mono_ms());
	pv_daemon_build_view(&d->view, fresh);
	d->verifying = false;
	memset(d->verify_pending, 0, sizeof d->verify_pending);
	pv_config_free(old);
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "path", d->cfg->path);
	pv_json_int(&j, "nodes", d->cfg->nnodes);
	pv_json_obj_close(&j);
	pv_daemon_journal_event(d, "config-reload", NULL, "ok", b.data);
	pv_buf_free(&b);
	pv_daemon_notify(d, PV_DEV_RELOADED, d->view.primary);
}

static void read_signals(PvDaemon *d)
{
	unsigned char sigs[64];
	ssize_t n;
	while ((n = read(d->signal_fd, sigs, sizeof sigs)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (sigs[i] == SIGHUP)
				reload(d);
			else if (sigs[i] == SIGTERM || sigs[i] == SIGINT) {
				d->stop = true;
				d->stop_signal = sigs[i];
			}
		}
	}
}

/* ---------------------------------------------------------------- lifecycle */

PvStatus pv_daemon_init(PvDaemon *d, PvConfig *cfg, PvJournal *journal, int listen_fd,
                        int signal_fd, PvError *err)
{
	(void)err;
	memset(d, 0, sizeof *d);
	d->cfg = cfg;
	d->journal = journal;
	d->listen_fd = listen_fd;
	d->signal_fd = signal_fd;
	d->view.primary = -1;
	d->last_verdict = PV_VERDICT_UNKNOWN_PRIMARY;
	pv_daemon_build_view(&d->view, cfg);
	d->prober = pv_prober_new(cfg, pv_clock_mono_ms());

	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "config", cfg->path);
	pv_json_str(&j, "cluster", cfg->cluster_name);
	pv_json_int(&j, "nodes", cfg->nnodes);
	pv_json_str(&j, "mode", pv_failover_mode_name(cfg->failover_mode));
	pv_json_int(&j, "pid", (int64_t)getpid());
	pv_json_obj_close(&j);
	pv_daemon_journal_event(d, "daemon-start", NULL, NULL, b.data);
	pv_buf_free(&b);
	d->resume_target = -1;
	pv_resume_load(d);
	extensions_create(d);
	pv_info("pgvigild started: cluster %s, %d nodes, failover %s", cfg->cluster_name,
	        cfg->nnodes, pv_failover_mode_name(cfg->failover_mode));
	return PV_OK;
}

void pv_daemon_run(PvDaemon *d)
{
	struct pollfd fds[PV_POLL_MAX];
	int owner[PV_POLL_MAX];
	PvProbeEvent events[PV_MAX_NODES * 2];
	struct pollfd efds[PV_MAX_EXTENSIONS][PV_EXT_MAX_FDS];
	int enfds[PV_MAX_EXTENSIONS];

	while (!d->stop) {
		int64_t now = pv_clock_mono_ms();
		fds[0] = (struct pollfd){.fd = d->signal_fd, .events = POLLIN};
		fds[1] = (struct pollfd){.fd = d->listen_fd, .events = POLLIN};
		int np = pv_prober_pollfds(d->prober, fds + 2, owner, PV_POLL_MAX - 2);
		int timeout = pv_prober_timeout(d->prober, now);
		if (d->verifying && d->verify_deadline_ms - now < timeout)
			timeout = (int)(d->verify_deadline_ms > now ? d->verify_deadline_ms - now : 0);
		if (d->recheck_at_ms && d->recheck_at_ms - now < timeout)
			timeout = (int)(d->recheck_at_ms > now ? d->recheck_at_ms - now : 0);

		/* the extensions' descriptors follow the prober's in one poll() */
		struct pollfd all[PV_POLL_MAX + PV_MAX_EXTENSIONS * PV_EXT_MAX_FDS];
		int nall = np + 2;
		memcpy(all, fds, sizeof(struct pollfd) * (size_t)nall);
		for (int i = 0; pv_extensions[i] && i < PV_MAX_EXTENSIONS; i++) {
			enfds[i] = 0;
			if (!d->ext_state[i])
				continue;
			const PvExtension *x = pv_extensions[i];
			if (x->pollfds) {
				enfds[i] = x->pollfds(d->ext_state[i], efds[i], PV_EXT_MAX_FDS);
				memcpy(all + nall, efds[i], sizeof(struct pollfd) * (size_t)enfds[i]);
				nall += enfds[i];
			}
			int t = x->timeout ? x->timeout(d->ext_state[i], now) : -1;
			if (t >= 0 && t < timeout)
				timeout = t;
		}
		int n = poll(all, (nfds_t)nall, timeout);
		memcpy(fds, all, sizeof(struct pollfd) * (size_t)(np + 2));
		int off = np + 2;
		for (int i = 0; pv_extensions[i] && i < PV_MAX_EXTENSIONS; i++) {
			memcpy(efds[i], all + off, sizeof(struct pollfd) * (size_t)enfds[i]);
			off += enfds[i];
		}
		if (n < 0 && errno != EINTR) {
			pv_error("poll: %s", strerror(errno));
			break;
		}
		now = pv_clock_mono_ms();
		if (n > 0 && (fds[0].revents & POLLIN))
			read_signals(d);
		if (d->stop)
			break;
		if (n > 0 && (fds[1].revents & POLLIN))
			serve_control(d);

		int nev = pv_prober_step(d->prober, fds + 2, owner, np, now,
		                         d->cfg->failover_confirm_failures, &d->view, events,
		                         (int)(sizeof events / sizeof events[0]));
		for (int k = 0; k < nev; k++) {
			const PvProbeEvent *e = &events[k];
			const PvNodeView *nv = &d->view.nodes[e->node];
			if (e->kind == PV_PEV_LOST) {
				pv_info("%s closed its connection: probing now", nv->name);
				if (e->node == d->view.primary)
					kick_others(d, now);
				continue;
			}
			if (e->kind == PV_PEV_CHAIN) {
				const PvLockRoot *roots;
				int nroots = pv_prober_chain(d->prober, e->node, &roots);
				pv_watch_chain(d, e->node, roots, nroots, now);
				continue;
			}
			if (e->kind == PV_PEV_POOLS) {
				pv_watch_pools(d, now);
				continue;
			}
			if (e->kind == PV_PEV_WRITE) {
				pv_watch_health(d, e->node, now);
				continue;
			}
			if (e->result == PV_PROBE_DOWN && e->previous != PV_PROBE_DOWN) {
				pv_daemon_journal_reason(d, "node-down", nv->name, NULL, nv->obs.reason);
				pv_warn("%s is down: %s", nv->name, nv->obs.reason);
				if (e->node == d->view.primary)
					kick_others(d, now);
			} else if (e->result == PV_PROBE_UP && e->previous == PV_PROBE_DOWN) {
				pv_daemon_journal_reason(d, "node-up", nv->name, NULL,
				               nv->obs.in_recovery ? "answers as a standby"
				                                   : "answers as a primary");
				pv_info("%s is up", nv->name);
			} else if (e->result == PV_PROBE_UNKNOWN && e->previous != PV_PROBE_UNKNOWN) {
				pv_warn("could not ask %s: %s", nv->name, nv->obs.reason);
			}
			pv_watch_health(d, e->node, now);
		}
		if (nev > 0 || d->verifying || (d->recheck_at_ms && now >= d->recheck_at_ms))
			evaluate(d, now);
		for (int i = 0; pv_extensions[i] && i < PV_MAX_EXTENSIONS; i++)
			if (d->ext_state[i] && pv_extensions[i]->step)
				pv_extensions[i]->step(d->ext_state[i], d, efds[i], enfds[i], now);
	}
}

void pv_daemon_fini(PvDaemon *d)
{
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_int(&j, "signal", d->stop_signal);
	pv_json_obj_close(&j);
	if (d->journal)
		pv_daemon_journal_event(d, "daemon-stop", NULL, NULL, b.data);
	pv_buf_free(&b);
	pv_info("pgvigild stopping");
	extensions_destroy(d);
	pv_prober_free(d->prober);
	pv_journal_free(d->journal);
	pv_config_free(d->cfg);
	d->prober = NULL;
	d->journal = NULL;
	d->cfg = NULL;
}
