#include "core/cluster.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const probe_names[] = {"none", "up", "down", "unknown"};

const char *pv_probe_result_name(PvProbeResult r)
{
	return (r >= PV_PROBE_NONE && r <= PV_PROBE_UNKNOWN) ? probe_names[r] : "invalid";
}

static const char *const verdict_names[] = {
#define PV_X(c, n) n,
	PV_VERDICT_LIST(PV_X)
#undef PV_X
};

const char *pv_verdict_name(PvVerdict v)
{
	return (v >= 0 && (size_t)v < sizeof verdict_names / sizeof verdict_names[0])
	           ? verdict_names[v]
	           : "invalid";
}

bool pv_lsn_parse(const char *s, uint64_t *out)
{
	unsigned hi, lo;
	char tail;
	if (!s || sscanf(s, "%X/%X%c", &hi, &lo, &tail) != 2)
		return false;
	*out = ((uint64_t)hi << 32) | lo;
	return true;
}

void pv_lsn_format(uint64_t lsn, char *out, size_t size)
{
	snprintf(out, size, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xFFFFFFFFu));
}

static bool answers(const PvNodeView *n)
{
	return n->obs.result == PV_PROBE_UP;
}

int pv_core_find_primary(const PvClusterView *v)
{
	int found = -1;
	for (int i = 0; i < v->nnodes; i++) {
		if (answers(&v->nodes[i]) && !v->nodes[i].obs.in_recovery) {
			if (found >= 0)
				return -2;
			found = i;
		}
	}
	return found;
}

uint64_t pv_core_standby_lsn(const PvNodeObs *o)
{
	return o->receive_lsn > o->replay_lsn ? o->receive_lsn : o->replay_lsn;
}

static bool sender_is(const PvNodeObs *o, const PvNodeView *n)
{
	return o->sender_port == n->port && strcmp(o->sender_host, n->host) == 0;
}

bool pv_core_sees(const PvClusterView *v, int i, int p)
{
	const PvNodeObs *o = &v->nodes[i].obs;
	if (!answers(&v->nodes[i]) || !o->in_recovery || !o->receiver_streaming)
		return false;
	if (p >= 0 && sender_is(o, &v->nodes[p]))
		return true;
	/* Streaming from another known node (a cascade) says nothing about p; streaming from
	 * an address we cannot name might be p under another name: count it, to be safe. */
	for (int k = 0; k < v->nnodes; k++)
		if (k != p && sender_is(o, &v->nodes[k]))
			return false;
	return true;
}

void pv_core_rank(const PvClusterView *v, int old_primary, int target, PvDecision *out)
{
	uint64_t best = 0;
	bool any = false;

	out->old_primary = old_primary;
	out->winner = -1;
	out->ncandidates = 0;
	out->nvoters = 0;
	out->nseeing = 0;
	for (int i = 0; i < v->nnodes; i++) {
		const PvNodeView *n = &v->nodes[i];
		PvCandidate *c = &out->candidates[out->ncandidates++];
		c->node = i;
		c->eligible = false;
		c->sees_primary = false;
		c->lsn = n->obs.in_recovery ? pv_core_standby_lsn(&n->obs) : n->obs.current_lsn;
		if (i == old_primary) {
			c->reason = "old primary";
		} else if (!answers(n)) {
			c->reason = "not answering";
		} else if (!n->obs.in_recovery) {
			c->reason = "not a standby";
		} else {
			out->nvoters++;
			if (old_primary >= 0 && v->nodes[old_primary].consecutive_failures > 0 &&
			    n->obs.at_ms < v->nodes[old_primary].down_since_ms)
				out->nstale++;
			c->sees_primary = old_primary >= 0 && pv_core_sees(v, i, old_primary);
			if (c->sees_primary)
				out->nseeing++;
			if (n->failed)
				c->reason = "former primary";
			else if (n->priority <= 0)
				c->reason = "priority 0";
			else {
				c->eligible = true;
				c->reason = "eligible";
				if (!any || c->lsn > best)
					best = c->lsn;
				any = true;
			}
		}
	}
	if (!any)
		return;
	/* most advanced LSN wins; ties by priority, then by configuration order */
	for (int k = 0; k < out->ncandidates; k++) {
		PvCandidate *c = &out->candidates[k];
		if (!c->eligible)
			continue;
		if (c->lsn < best) {
			c->reason = "behind the most advanced standby";
			if (c->node != target)
				continue;
		}
		if (target >= 0 && c->node != target) {
			c->reason = "not the requested target";
			continue;
		}
		if (c->lsn < best)
			continue; /* the target itself is behind: no winner */
		if (out->winner < 0 || v->nodes[c->node].priority > v->nodes[out->winner].priority)
			out->winner = c->node;
	}
	for (int k = 0; k < out->ncandidates; k++) {
		PvCandidate *c = &out->candidates[k];
		if (c->node == out->winner)
			c->reason = "winner";
		else if (c->eligible && c->lsn == best && target < 0)
			c->reason = "lower priority";
	}
}

static void set_reason(PvDecision *out, PvVerdict verdict, const char *fmt, const char *a,
                       const char *b)
{
	out->verdict = verdict;
	snprintf(out->reason, sizeof out->reason, fmt, a ? a : "", b ? b : "");
}

/* Shared by the automatic and the manual path: the checks after "the primary looks gone". */
static void decide_gone(const PvClusterView *v, int p, int target, PvDecision *out)
{
	pv_core_rank(v, p, target, out);
	if (out->nstale > 0) {
		out->winner = -1;
		set_reason(out, PV_VERDICT_SUSPECT,
		           "primary %s looks down; waiting for fresh views from the standbys%s",
		           v->nodes[p].name, NULL);
		return;
	}
	if (out->nseeing > 0) {
		char n[16];
		out->winner = -1;
		snprintf(n, sizeof n, "%d", out->nseeing);
		set_reason(out, PV_VERDICT_STANDBYS_SEE_PRIMARY,
		           "%s standby(s) still stream from %s", n, v->nodes[p].name);
		return;
	}
	if (out->winner < 0) {
		if (target >= 0)
			set_reason(out, PV_VERDICT_NO_CANDIDATE, "%s cannot be promoted: %s",
			           v->nodes[target].name, out->candidates[target].reason);
		else
			set_reason(out, PV_VERDICT_NO_CANDIDATE, "no standby can be promoted%s%s",
			           NULL, NULL);
		return;
	}
	set_reason(out, PV_VERDICT_FAILOVER, "promote %s (primary %s is down)",
	           v->nodes[out->winner].name, v->nodes[p].name);
}

/* Verdicts that do not depend on the known primary failing. */
static bool decide_topology(const PvClusterView *v, PvDecision *out)
{
	int seen = pv_core_find_primary(v);
	if (seen == -2) {
		set_reason(out, PV_VERDICT_SPLIT_BRAIN, "more than one node answers as a primary%s%s",
		           NULL, NULL);
		return true;
	}
	if (v->primary < 0) {
		bool all = v->nnodes > 0;
		for (int i = 0; i < v->nnodes; i++)
			all = all && answers(&v->nodes[i]);
		if (all && seen < 0)
			set_reason(out, PV_VERDICT_NO_PRIMARY, "every node answers and none is a primary%s%s",
			           NULL, NULL);
		else
			set_reason(out, PV_VERDICT_UNKNOWN_PRIMARY, "no primary known yet%s%s", NULL, NULL);
		return true;
	}
	return false;
}

void pv_core_decide(const PvClusterView *v, const PvPolicy *p, PvDecision *out)
{
	memset(out, 0, sizeof *out);
	out->old_primary = v->primary;
	out->winner = -1;
	if (decide_topology(v, out))
		return;
	const PvNodeView *pn = &v->nodes[v->primary];
	if (answers(pn) && !pn->obs.in_recovery) {
		set_reason(out, PV_VERDICT_HEALTHY, "primary %s answers%s", pn->name, NULL);
		return;
	}
	if (pn->obs.result == PV_PROBE_UNKNOWN) {
		set_reason(out, PV_VERDICT_PRIMARY_UNKNOWN_STATE, "could not ask %s: %s", pn->name,
		           pn->obs.reason);
		return;
	}
	if (answers(pn) && pn->obs.in_recovery) {
		set_reason(out, PV_VERDICT_NO_PRIMARY, "primary %s is in recovery%s", pn->name, NULL);
		return;
	}
	if (pn->consecutive_failures < p->confirm_failures) {
		set_reason(out, PV_VERDICT_SUSPECT, "primary %s failed a probe: %s", pn->name,
		           pn->obs.reason);
		return;
	}
	decide_gone(v, v->primary, -1, out);
	if (out->verdict == PV_VERDICT_FAILOVER && !p->automatic)
		set_reason(out, PV_VERDICT_MANUAL_REQUIRED,
		           "primary %s is down; failover.mode is manual: run pgvigil failover%s",
		           pn->name, NULL);
}

void pv_core_decide_manual(const PvClusterView *v, int target, PvDecision *out)
{
	memset(out, 0, sizeof *out);
	out->old_primary = v->primary;
	out->winner = -1;
	int seen = pv_core_find_primary(v);
	if (seen == -2) {
		set_reason(out, PV_VERDICT_SPLIT_BRAIN, "more than one node answers as a primary%s%s",
		           NULL, NULL);
		return;
	}
	if (seen >= 0) {
		pv_core_rank(v, seen, target, out);
		set_reason(out, PV_VERDICT_HEALTHY,
		           "%s still answers as a primary: a failover now would make a second "
		           "primary (stop it first)%s",
		           v->nodes[seen].name, NULL);
		return;
	}
	if (v->primary < 0) {
		pv_core_rank(v, -1, target, out);
		set_reason(out, PV_VERDICT_UNKNOWN_PRIMARY,
		           "no primary known: refusing to pick one blind%s%s", NULL, NULL);
		return;
	}
	decide_gone(v, v->primary, target, out);
}
