#include "core/health.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const health_names[] = {
#define PV_X(c, n) n,
	PV_HEALTH_LIST(PV_X)
#undef PV_X
};

const char *pv_health_name(PvHealth h)
{
	return (h >= 0 && (size_t)h < sizeof health_names / sizeof health_names[0]) ? health_names[h]
	                                                                            : "invalid";
}

static const char *const lock_action_names[] = {
#define PV_X(c, n) n,
	PV_LOCK_ACTION_LIST(PV_X)
#undef PV_X
};

const char *pv_lock_action_name(PvLockAction a)
{
	return (a >= 0 && (size_t)a < sizeof lock_action_names / sizeof lock_action_names[0])
	           ? lock_action_names[a]
	           : "invalid";
}

static void reason(PvHealthReport *r, PvHealth h, const char *fmt, ...)
{
	if (h > r->health)
		r->health = h;
	if (r->nreasons >= PV_HEALTH_MAX_REASONS)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->reasons[r->nreasons++], sizeof r->reasons[0], fmt, ap);
	va_end(ap);
}

void pv_health_classify(const PvNodeView *n, bool is_primary, uint64_t primary_lsn,
                        const PvHealthPolicy *p, PvHealthReport *out)
{
	const PvNodeObs *o = &n->obs;
	memset(out, 0, sizeof *out);
	out->health = PV_HEALTH_HEALTHY;

	switch (o->result) {
	case PV_PROBE_NONE:
		out->health = PV_HEALTH_UNKNOWN;
		reason(out, PV_HEALTH_UNKNOWN, "not probed yet");
		return;
	case PV_PROBE_DOWN:
		out->health = PV_HEALTH_DOWN;
		reason(out, PV_HEALTH_DOWN, "%d failed probe(s): %s", n->consecutive_failures, o->reason);
		return;
	case PV_PROBE_UNKNOWN:
		if (o->refused_saturated) {
			out->health = PV_HEALTH_SATURATED;
			out->saturated = true;
			reason(out, PV_HEALTH_SATURATED, "refuses connections: %s", o->reason);
		} else {
			out->health = PV_HEALTH_UNKNOWN;
			reason(out, PV_HEALTH_UNKNOWN, "could not ask: %s", o->reason);
		}
		return;
	case PV_PROBE_UP:
		break;
	}

	if (is_primary && n->write == PV_WRITE_FAILED && !n->write_blocked_by_lock) {
		out->wedged = true;
		reason(out, PV_HEALTH_WEDGED, "answers but cannot commit: %s", n->write_error);
	}
	if (o->lock_waiters > 0 && o->oldest_lock_wait_ms >= p->lock_wait_threshold_ms) {
		out->locked = true;
		reason(out, PV_HEALTH_LOCKED, "%d session(s) wait on locks (%d on tables), the oldest for %lld ms",
		       o->lock_waiters, o->relation_waiters, (long long)o->oldest_lock_wait_ms);
	}
	if (is_primary && n->write == PV_WRITE_FAILED && n->write_blocked_by_lock) {
		out->locked = true;
		reason(out, PV_HEALTH_LOCKED, "heartbeat write blocked by a lock: %s", n->write_error);
	}
	int open_slots = o->max_connections - o->reserved_connections;
	if (open_slots > 0 && o->clients * 100 >= open_slots * p->saturation_threshold_pct) {
		out->saturated = true;
		reason(out, PV_HEALTH_SATURATED, "%d client backends of %d open slots (max_connections %d)",
		       o->clients, open_slots, o->max_connections);
	}
	if (is_primary && p->slow_window > 0 && n->ncommit >= p->slow_window) {
		bool all_slow = true;
		int64_t worst = 0;
		for (int i = 0; i < p->slow_window; i++) {
			all_slow = all_slow && n->commit_ms[i] > p->slow_threshold_ms;
			if (n->commit_ms[i] > worst)
				worst = n->commit_ms[i];
		}
		if (all_slow) {
			out->slow = true;
			reason(out, PV_HEALTH_SLOW, "the last %d heartbeat commits took over %d ms (worst %lld ms)",
			       p->slow_window, p->slow_threshold_ms, (long long)worst);
		}
	}
	if (!is_primary && o->in_recovery) {
		uint64_t lsn = pv_core_standby_lsn(o);
		if (p->warn_lag_bytes > 0 && primary_lsn > lsn && (int64_t)(primary_lsn - lsn) > p->warn_lag_bytes) {
			out->lagging = true;
			/* lag is reported, it does not make the node unhealthy */
			if (out->nreasons < PV_HEALTH_MAX_REASONS)
				snprintf(out->reasons[out->nreasons++], sizeof out->reasons[0],
				         "%llu bytes behind the primary",
				         (unsigned long long)(primary_lsn - lsn));
		}
		if (!o->receiver_streaming && out->nreasons < PV_HEALTH_MAX_REASONS)
			snprintf(out->reasons[out->nreasons++], sizeof out->reasons[0],
			         "WAL receiver not streaming");
	}
	if (o->archive_failing && out->nreasons < PV_HEALTH_MAX_REASONS)
		snprintf(out->reasons[out->nreasons++], sizeof out->reasons[0],
		         "WAL archiving is failing (pg_stat_archiver)");
}

bool pv_list_contains(const char *list, const char *name)
{
	if (!list || !name || !*name)
		return false;
	size_t n = strlen(name);
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && t[-1] == ' ')
			t--;
		if ((size_t)(t - p) == n && strncmp(p, name, n) == 0)
			return true;
		p = e;
	}
	return false;
}

PvLockAction pv_lock_decide(const PvLockRoot *r, const PvLockPolicy *p, const char **why)
{
	if (r->pid == 0) {
		*why = "a prepared transaction: only COMMIT/ROLLBACK PREPARED by an operator ends it";
		return PV_LOCK_PROTECTED;
	}
	if (strcmp(r->backend_type, "client backend") != 0) {
		*why = "not a client backend";
		return PV_LOCK_PROTECTED;
	}
	if (p->own_application && strcmp(r->application, p->own_application) == 0) {
		*why = "one of pgvigil's own sessions";
		return PV_LOCK_PROTECTED;
	}
	if (pv_list_contains(p->exclude_users, r->user)) {
		*why = "its user is in locks.exclude_users";
		return PV_LOCK_PROTECTED;
	}
	if (pv_list_contains(p->exclude_applications, r->application)) {
		*why = "its application is in locks.exclude_applications";
		return PV_LOCK_PROTECTED;
	}
	if (pv_list_contains(p->exclude_databases, r->database)) {
		*why = "its database is in locks.exclude_databases";
		return PV_LOCK_PROTECTED;
	}
	if (r->superuser && !p->include_superusers) {
		*why = "a superuser session (locks.include_superusers is off)";
		return PV_LOCK_PROTECTED;
	}
	if (!p->act) {
		*why = "locks.act is off";
		return PV_LOCK_REPORT;
	}
	bool idle_in_xact = strncmp(r->state, "idle in transaction", 19) == 0;
	if (p->terminate_after_ms > 0 && r->blocked_for_ms >= p->terminate_after_ms) {
		*why = "still blocking after locks.terminate_after_ms";
		return PV_LOCK_TERMINATE;
	}
	if (p->cancel_after_ms > 0 && r->blocked_for_ms >= p->cancel_after_ms) {
		if (idle_in_xact) {
			*why = "idle in transaction: a cancel would not release its locks, terminate";
			return PV_LOCK_TERMINATE;
		}
		*why = "blocking for locks.cancel_after_ms: cancel its statement";
		return PV_LOCK_CANCEL;
	}
	*why = "below the thresholds: reported";
	return PV_LOCK_REPORT;
}

int64_t pv_lock_next_step_ms(const PvLockRoot *roots, int n, const PvLockPolicy *p)
{
	int64_t next = -1;
	for (int i = 0; i < n; i++) {
		const char *why;
		const PvLockRoot *r = &roots[i];
		PvLockAction a = pv_lock_decide(r, p, &why);
		int64_t in;
		if (a == PV_LOCK_PROTECTED || !p->act)
			continue;
		if (a == PV_LOCK_TERMINATE || a == PV_LOCK_CANCEL)
			in = 0; /* acting now: look again soon to see it worked */
		else if (p->cancel_after_ms > 0)
			in = p->cancel_after_ms - r->blocked_for_ms;
		else if (p->terminate_after_ms > 0)
			in = p->terminate_after_ms - r->blocked_for_ms;
		else
			continue; /* reported only, for ever */
		if (in < 0)
			in = 0;
		if (next < 0 || in < next)
			next = in;
	}
	return next;
}
