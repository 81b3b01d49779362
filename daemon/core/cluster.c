#include "core/cluster.h"

#include "common/json.h"

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

void pv_json_lsn(PvJson *j, const char *key, uint64_t lsn)
{
	char s[32];
	if (!lsn) {
		pv_json_null(j, key);
		return;
	}
	pv_lsn_format(lsn, s, sizeof s);
	pv_json_str(j, key, s);
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

int64_t pv_core_stale_limit_ms(const PvNodeObs *o, int stale_ms)
{
	if (stale_ms > 0)
		return stale_ms;
	if (o->wal_receiver_timeout_ms > 0)
		return o->wal_receiver_timeout_ms / 2 + 1000;
	return -1; /* no timeout: a streaming receiver always counts */
}

static bool heard_recently(const PvNodeObs *o, int stale_ms)
{
	int64_t limit = pv_core_stale_limit_ms(o, stale_ms);
	return limit < 0 || o->since_last_msg_ms < 0 || o->since_last_msg_ms <= limit;
}

/* Did the standby hear from the primary after it went silent to us (plus the slack)? */
static bool heard_after(const PvNodeObs *o, int64_t silent_since_ms)
{
	if (o->since_last_msg_ms < 0)
		return true; /* unknown: count it, to be safe */
	return o->at_ms - o->since_last_msg_ms > silent_since_ms + PV_CORE_HANG_SLACK_MS;
}

static bool sees(const PvClusterView *v, int i, int p, int stale_ms, int64_t silent_since_ms)
{
	const PvNodeObs *o = &v->nodes[i].obs;
	if (!answers(&v->nodes[i]) || !o->in_recovery || !o->receiver_streaming)
		return false;
	if (silent_since_ms > 0 ? !heard_after(o, silent_since_ms) : !heard_recently(o, stale_ms))
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

bool pv_core_sees(const PvClusterView *v, int i, int p, int stale_ms)
{
	return sees(v, i, p, stale_ms, 0);
}

/* Is name in the comma-separated list? (core cannot use health.h's: no dependency loop) */
static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

void pv_core_rank(const PvClusterView *v, int old_primary, int target, const PvRankRules *rules,
                  PvDecision *out)
{
	uint64_t best = 0;
	bool any = false;
	int stale_ms = rules ? rules->standby_stale_ms : 0;
	const PvNodeObs *old = old_primary >= 0 ? &v->nodes[old_primary].obs : NULL;
	uint64_t old_lsn = old ? old->current_lsn : 0;
	/* with synchronous replication, commits were acknowledged only once a listed standby had
	 * them; with no standby ever seen synchronous, none was acknowledged: no guard needed */
	bool sync_guard = old && old->sync_configured && old->sync_standbys[0] &&
	                  !(rules && rules->allow_data_loss);
	int64_t max_lag = rules && !rules->allow_data_loss ? rules->max_lag_bytes : 0;

	out->old_primary = old_primary;
	out->winner = -1;
	out->loss_bytes = -1;
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
		c->gap_bytes = old_lsn && c->lsn ? (old_lsn > c->lsn ? (int64_t)(old_lsn - c->lsn) : 0) : -1;
		c->sync = old && in_list(old->sync_standbys, n->name);
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
			c->sees_primary = old_primary >= 0 &&
			                  sees(v, i, old_primary, stale_ms,
			                       rules ? rules->hung_silent_since_ms : 0);
			if (c->sees_primary)
				out->nseeing++;
			if (n->failed)
				c->reason = "former primary";
			else if (n->priority <= 0)
				c->reason = "priority 0";
			else if (sync_guard && !c->sync)
				c->reason = "not a synchronous standby (synchronous replication is configured)";
			else if (max_lag > 0 && c->gap_bytes > max_lag)
				c->reason = "behind the old primary by more than failover.max_lag_bytes";
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
	out->sync_guarded = sync_guard;
	out->loss_bytes = out->winner >= 0 ? out->candidates[out->winner].gap_bytes : -1;
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
static void decide_gone(const PvClusterView *v, int p, int target, const PvRankRules *rules,
                        PvDecision *out)
{
	pv_core_rank(v, p, target, rules, out);
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

/*
 * The primary answers queries.  It may still be unable to commit (WEDGED: the write path is
 * stuck, for longer than wedged_after_ms -> fail over) or have writes blocked by locks for
 * longer than locks_failover_after_ms (off by default).
 */
static void decide_alive(const PvClusterView *v, const PvPolicy *p, PvDecision *out)
{
	const PvNodeView *pn = &v->nodes[v->primary];
	int64_t failing = pn->write == PV_WRITE_FAILED && pn->write_failing_since_ms
	                      ? p->now_ms - pn->write_failing_since_ms
	                      : -1;
	char ms[32];
	if (failing < 0) {
		set_reason(out, PV_VERDICT_HEALTHY, "primary %s answers%s", pn->name, NULL);
		return;
	}
	snprintf(ms, sizeof ms, "%lld", (long long)failing);
	int64_t limit = pn->write_blocked_by_lock ? p->locks_failover_after_ms : p->wedged_after_ms;
	PvVerdict stuck = pn->write_blocked_by_lock ? PV_VERDICT_LOCKED : PV_VERDICT_WEDGED;
	if (limit <= 0 || failing < limit) {
		set_reason(out, stuck,
		           pn->write_blocked_by_lock
		               ? "primary %s: heartbeat writes blocked by locks for %s ms"
		               : "primary %s answers but cannot commit for %s ms",
		           pn->name, ms);
		return;
	}
	/* first-hand evidence: no standby vote needed, but the candidates are ranked the same way */
	PvRankRules rules = {.standby_stale_ms = p->standby_stale_ms, .max_lag_bytes = p->max_lag_bytes};
	pv_core_rank(v, v->primary, -1, &rules, out);
	if (out->winner < 0) {
		set_reason(out, PV_VERDICT_NO_CANDIDATE, "primary %s stuck for %s ms and no standby can be promoted",
		           pn->name, ms);
		return;
	}
	set_reason(out, PV_VERDICT_FAILOVER,
	           pn->write_blocked_by_lock ? "promote %s (primary %s: writes blocked by locks too long)"
	                                     : "promote %s (primary %s is wedged: cannot commit)",
	           v->nodes[out->winner].name, pn->name);
	if (!p->automatic)
		set_reason(out, PV_VERDICT_MANUAL_REQUIRED,
		           "primary %s is stuck; failover.mode is manual: run pgvigil failover%s", pn->name,
		           NULL);
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
		decide_alive(v, p, out);
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
	PvRankRules rules = {.standby_stale_ms = p->standby_stale_ms, .max_lag_bytes = p->max_lag_bytes};
	if (pn->consecutive_failures < p->confirm_failures) {
		bool armed = p->hang_after_ms > 0 && pn->consecutive_failures > 0 && pn->alive_ms > 0;
		int64_t due = pn->alive_ms + p->hang_after_ms;
		if (pn->acked_since_ms > 0 && pn->acked_since_ms + PV_CORE_HANG_ACKED_MS > due)
			due = pn->acked_since_ms + PV_CORE_HANG_ACKED_MS;
		if (!armed || pn->acked_since_ms <= 0 || p->now_ms < due) {
			/* not yet: look again when it could be (sooner while the host is not acking:
			 * the samples of its acknowledgements come without a probe event) */
			if (armed)
				out->recheck_at_ms = pn->acked_since_ms > 0 || due > p->now_ms
				                         ? due
				                         : p->now_ms + PV_CORE_HANG_RECHECK_MS;
			set_reason(out, PV_VERDICT_SUSPECT, "primary %s failed a probe: %s", pn->name,
			           pn->obs.reason);
			return;
		}
		/* hung: its host takes our requests in, the server answers none of them */
		out->hung = true;
		rules.hung_silent_since_ms = pn->alive_ms;
	}
	decide_gone(v, v->primary, -1, &rules, out);
	if (out->hung && out->verdict == PV_VERDICT_FAILOVER) {
		char ms[24];
		snprintf(ms, sizeof ms, "%lld", (long long)(p->now_ms - pn->alive_ms));
		snprintf(out->reason, sizeof out->reason,
		         "promote %s (primary %s is hung: its host acknowledges our requests, the "
		         "server answered none for %s ms)",
		         v->nodes[out->winner].name, pn->name, ms);
	}
	if (out->verdict == PV_VERDICT_FAILOVER && !p->automatic)
		set_reason(out, PV_VERDICT_MANUAL_REQUIRED,
		           "primary %s is down; failover.mode is manual: run pgvigil failover%s",
		           pn->name, NULL);
}

void pv_core_decide_manual(const PvClusterView *v, int target, const PvRankRules *rules,
                           PvDecision *out)
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
		pv_core_rank(v, seen, target, rules, out);
		set_reason(out, PV_VERDICT_HEALTHY,
		           "%s still answers as a primary: a failover now would make a second "
		           "primary (stop it first)%s",
		           v->nodes[seen].name, NULL);
		return;
	}
	if (v->primary < 0) {
		pv_core_rank(v, -1, target, rules, out);
		set_reason(out, PV_VERDICT_UNKNOWN_PRIMARY,
		           "no primary known: refusing to pick one blind%s%s", NULL, NULL);
		return;
	}
	decide_gone(v, v->primary, target, rules, out);
}
