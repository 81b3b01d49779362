/*
 * watch: the daemon's answers to what detection finds, in proportion: a node's health
 * changing is journaled with its reasons; a lock chain on the primary is reported and, per
 * root blocker, walked up the ladder (report, cancel, terminate) that core/health decides;
 * every cancel and terminate is an action with begin/end records and the evidence.
 * Failover decisions stay in daemon.c (core/cluster decides them).
 */
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "io/pgconn.h"
#include "pgvigild/daemon.h"

/* The longest a lock chain goes unread while sessions wait. */
#define PV_WATCH_CHAIN_MAX_DEFER_MS 10000

PvHealthPolicy pv_watch_health_policy(const PvConfig *cfg)
{
	return (PvHealthPolicy){
		.slow_threshold_ms = cfg->slow_threshold_ms,
		.slow_window = cfg->slow_window,
		.lock_wait_threshold_ms = cfg->locks_wait_threshold_ms,
		.saturation_threshold_pct = cfg->saturation_threshold_pct,
		.warn_lag_bytes = cfg->replication_warn_lag_bytes,
		.standby_stale_ms = cfg->failover_standby_stale_ms,
	};
}

PvLockPolicy pv_watch_lock_policy(const PvConfig *cfg)
{
	return (PvLockPolicy){
		.cancel_after_ms = cfg->locks_cancel_after_ms,
		.terminate_after_ms = cfg->locks_terminate_after_ms,
		.act = cfg->locks_act != 0,
		.include_superusers = cfg->locks_include_superusers != 0,
		.exclude_users = cfg->locks_exclude_users,
		.exclude_applications = cfg->locks_exclude_applications,
		.exclude_databases = cfg->locks_exclude_databases,
		.own_application = "pgvigil",
	};
}

static void reasons_json(PvJson *j, const char *key, const PvHealthReport *r)
{
	pv_json_arr_open(j, key);
	for (int i = 0; i < r->nreasons; i++)
		pv_json_str(j, NULL, r->reasons[i]);
	pv_json_arr_close(j);
}

void pv_watch_health(PvDaemon *d, int node, int64_t now_ms)
{
	(void)now_ms;
	const PvNodeView *n = &d->view.nodes[node];
	uint64_t primary_lsn = d->view.primary >= 0 ? d->view.nodes[d->view.primary].obs.current_lsn : 0;
	PvHealthPolicy pol = pv_watch_health_policy(d->cfg);
	PvHealthReport now;
	pv_health_classify(n, node == d->view.primary, primary_lsn, &pol, &now);
	PvHealthReport *was = &d->health[node];
	bool changed = !d->health_known[node] || was->health != now.health ||
	               was->lagging != now.lagging;
	/* DOWN and UP have their own records (node-down, node-up) */
	bool quiet = (now.health == PV_HEALTH_DOWN || (d->health_known[node] && was->health == PV_HEALTH_DOWN)) ||
	             (!d->health_known[node] && now.health == PV_HEALTH_HEALTHY);
	if (changed && !quiet) {
		PvBuf b = {0};
		PvJson j;
		pv_json_init(&j, &b);
		pv_json_obj_open(&j, NULL);
		pv_json_str(&j, "from", d->health_known[node] ? pv_health_name(was->health) : NULL);
		pv_json_str(&j, "to", pv_health_name(now.health));
		pv_json_bool(&j, "lagging", now.lagging);
		reasons_json(&j, "reasons", &now);
		if (node == d->view.primary && n->ncommit > 0)
			pv_json_int(&j, "last_commit_ms", n->commit_ms[0]);
		pv_json_int(&j, "clients", n->obs.clients);
		pv_json_int(&j, "max_connections", n->obs.max_connections);
		pv_json_int(&j, "lock_waiters", n->obs.lock_waiters);
		pv_json_obj_close(&j);
		pv_daemon_journal_event(d, "node-health", n->name, NULL, b.data);
		pv_buf_free(&b);
		if (now.health == PV_HEALTH_HEALTHY)
			pv_info("%s is healthy again", n->name);
		else
			pv_warn("%s is %s: %s", n->name, pv_health_name(now.health),
			        now.nreasons ? now.reasons[0] : "");
	}
	*was = now;
	d->health_known[node] = true;

	if (!d->advised[node] && n->obs.result == PV_PROBE_UP && n->obs.in_recovery &&
	    d->cfg->failover_standby_stale_ms == 0 && n->obs.wal_receiver_timeout_ms > 20000) {
		pv_warn("%s: wal_receiver_timeout is %lld ms, so a frozen or cut-off primary is only "
		        "concluded lost after %lld ms; set wal_receiver_timeout = 5s on the standbys (or "
		        "failover.standby_stale_ms) for a failover within seconds",
		        n->name, (long long)n->obs.wal_receiver_timeout_ms,
		        (long long)pv_core_stale_limit_ms(&n->obs, 0));
		d->advised[node] = true;
	}

	/* a chain that was reported and is gone */
	if (d->chain_npids[node] && n->obs.result == PV_PROBE_UP && n->obs.lock_waiters == 0) {
		PvBuf b = {0};
		PvJson j;
		pv_json_init(&j, &b);
		pv_json_obj_open(&j, NULL);
		pv_json_int(&j, "duration_ms", now_ms - d->chain_since_ms[node]);
		pv_json_obj_close(&j);
		pv_daemon_journal_event(d, "lock-cleared", n->name, "ok", b.data);
		pv_buf_free(&b);
		pv_info("%s: no session waits on a lock any more", n->name);
		d->chain_npids[node] = 0;
	}
}

static void root_json(PvJson *j, const PvLockRoot *r)
{
	pv_json_int(j, "pid", r->pid);
	pv_json_str(j, "user", r->user);
	pv_json_str(j, "application", r->application);
	pv_json_str(j, "database", r->database);
	pv_json_str(j, "client", r->client[0] ? r->client : NULL);
	pv_json_str(j, "state", r->state);
	pv_json_bool(j, "superuser", r->superuser);
	pv_json_int(j, "blocked", r->blocked);
	pv_json_int(j, "blocked_for_ms", r->blocked_for_ms);
	pv_json_int(j, "xact_age_ms", r->xact_age_ms);
	pv_json_int(j, "state_age_ms", r->state_age_ms);
	pv_json_str(j, "relations", r->relations);
	pv_json_str(j, "wanted_modes", r->modes);
	pv_json_str(j, "query", r->query);
}

static bool acted_recently(PvDaemon *d, int pid, PvLockAction a, int64_t now_ms)
{
	for (size_t k = 0; k < sizeof d->lock_acted / sizeof d->lock_acted[0]; k++)
		if (d->lock_acted[k].pid == pid && d->lock_acted[k].action == (int)a &&
		    now_ms - d->lock_acted[k].at_ms < 3000)
			return true;
	return false;
}

static void remember_action(PvDaemon *d, int pid, PvLockAction a, int64_t now_ms)
{
	size_t oldest = 0;
	for (size_t k = 0; k < sizeof d->lock_acted / sizeof d->lock_acted[0]; k++)
		if (d->lock_acted[k].at_ms < d->lock_acted[oldest].at_ms)
			oldest = k;
	d->lock_acted[oldest].pid = pid;
	d->lock_acted[oldest].action = (int)a;
	d->lock_acted[oldest].at_ms = now_ms;
}

static void signal_root(PvDaemon *d, int node, const PvLockRoot *r, PvLockAction a, const char *why)
{
	const PvNodeConfig *nc = &d->cfg->nodes[node];
	const char *event = a == PV_LOCK_CANCEL ? "lock-cancel" : "lock-terminate";
	PvBuf b = {0}, sql = {0};
	PvJson j;
	PvJournalSpan span;
	PvError err;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "why", why);
	root_json(&j, r);
	pv_json_obj_close(&j);
	if (pv_journal_begin(d->journal, &span, d->incident, event, nc->name, b.data, &err) != PV_OK) {
		pv_error("journal: %s: not signalling pid %d", err.msg, r->pid);
		pv_buf_free(&b);
		return;
	}
	/* the pid must still be the same session: same backend start is not visible here, so
	 * check it still blocks someone (it is a root of a current chain) */
	pv_buf_printf(&sql,
	              "SELECT %s(%d) FROM pg_stat_activity WHERE pid = %d AND backend_type = 'client backend'"
	              " AND EXISTS (SELECT 1 FROM pg_stat_activity w WHERE w.wait_event_type = 'Lock'"
	              " AND %d = ANY(pg_blocking_pids(w.pid)))",
	              a == PV_LOCK_CANCEL ? "pg_cancel_backend" : "pg_terminate_backend", r->pid,
	              r->pid, r->pid);
	PGresult *res = NULL;
	PvStatus st = pv_pg_exec_once(nc->conninfo, PV_PGC_KIND_POSTGRES, sql.data, 2000, &res, &err);
	const char *outcome = "ok";
	char note[160] = "";
	if (st != PV_OK) {
		outcome = "failed";
		pv_strlcpy(note, err.msg, sizeof note);
	} else if (PQntuples(res) == 0) {
		outcome = "skipped";
		snprintf(note, sizeof note, "pid %d no longer blocks anyone", r->pid);
	} else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		outcome = "failed";
		snprintf(note, sizeof note, "the signal was not delivered (permission?)");
	}
	if (res)
		PQclear(res);
	pv_buf_reset(&b);
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_int(&j, "pid", r->pid);
	if (note[0])
		pv_json_str(&j, "note", note);
	pv_json_obj_close(&j);
	if (pv_journal_end(d->journal, &span, outcome, b.data, &err) != PV_OK)
		pv_error("journal: %s", err.msg);
	pv_warn("%s pid %d (user %s, %s, blocking %d for %lld ms): %s%s%s", event, r->pid, r->user,
	        r->state, r->blocked, (long long)r->blocked_for_ms, outcome, note[0] ? ": " : "", note);
	pv_buf_free(&b);
	pv_buf_free(&sql);
}

void pv_watch_chain(PvDaemon *d, int node, const PvLockRoot *roots, int nroots, int64_t now_ms)
{
	const PvNodeView *n = &d->view.nodes[node];
	if (nroots == 0)
		return;
	/* journal the chain when its set of roots changes */
	bool same = nroots == d->chain_npids[node];
	for (int i = 0; same && i < nroots; i++)
		same = roots[i].pid == d->chain_pids[node][i];
	PvLockPolicy pol = pv_watch_lock_policy(d->cfg);
	if (!same) {
		if (!d->chain_npids[node])
			d->chain_since_ms[node] = now_ms;
		PvBuf b = {0};
		PvJson j;
		pv_json_init(&j, &b);
		pv_json_obj_open(&j, NULL);
		pv_json_int(&j, "lock_waiters", n->obs.lock_waiters);
		pv_json_int(&j, "oldest_wait_ms", n->obs.oldest_lock_wait_ms);
		pv_json_arr_open(&j, "roots");
		for (int i = 0; i < nroots; i++) {
			const char *why;
			PvLockAction a = pv_lock_decide(&roots[i], &pol, &why);
			pv_json_obj_open(&j, NULL);
			root_json(&j, &roots[i]);
			pv_json_str(&j, "ladder", pv_lock_action_name(a));
			pv_json_str(&j, "why", why);
			pv_json_obj_close(&j);
		}
		pv_json_arr_close(&j);
		pv_json_obj_close(&j);
		pv_daemon_journal_event(d, "lock-chain", n->name, NULL, b.data);
		pv_buf_free(&b);
		pv_daemon_notify(d, PV_DEV_LOCK_CHAIN, node);
		pv_warn("%s: %d session(s) wait on locks; %d root blocker(s), the first pid %d (%s, %s) "
		        "blocks %d",
		        n->name, n->obs.lock_waiters, nroots, roots[0].pid, roots[0].user, roots[0].state,
		        roots[0].blocked);
		d->chain_npids[node] = nroots;
		for (int i = 0; i < nroots && i < 20; i++)
			d->chain_pids[node][i] = roots[i].pid;
	}
	/* read the chain again when the ladder could next act, within 2 to 10 s: a chain of
	 * protected roots costs the primary one read every 10 s, not every 2 */
	int64_t step = node == d->view.primary && !d->paused ? pv_lock_next_step_ms(roots, nroots, &pol) : -1;
	if (step < 0 || step > PV_WATCH_CHAIN_MAX_DEFER_MS)
		step = PV_WATCH_CHAIN_MAX_DEFER_MS;
	pv_prober_chain_defer(d->prober, node, now_ms + step);
	if (node != d->view.primary || d->paused)
		return; /* on a standby, or during maintenance, locks are reported only */
	for (int i = 0; i < nroots; i++) {
		const char *why;
		PvLockAction a = pv_lock_decide(&roots[i], &pol, &why);
		if (a != PV_LOCK_CANCEL && a != PV_LOCK_TERMINATE)
			continue;
		if (acted_recently(d, roots[i].pid, a, now_ms))
			continue;
		remember_action(d, roots[i].pid, a, now_ms);
		signal_root(d, node, &roots[i], a, why);
	}
}

/* PgBouncer pools: a pool whose oldest queued client waited past pool_maxwait_ms ran dry. */
void pv_watch_pools(PvDaemon *d, int64_t now_ms)
{
	(void)now_ms;
	const PvPool *pools;
	const char *err;
	int np = pv_prober_pools(d->prober, &pools, &err);
	if (np < 0)
		return; /* cannot ask PgBouncer: nothing to conclude about its pools */
	char now_exhausted[PV_MAX_POOLS][130];
	int nnow = 0;
	for (int i = 0; i < np; i++) {
		const PvPool *pl = &pools[i];
		char key[130];
		snprintf(key, sizeof key, "%s/%s", pl->database, pl->user);
		bool dry = pl->cl_waiting > 0 && pl->maxwait_ms >= d->cfg->pgbouncer.pool_maxwait_ms;
		bool was = false;
		for (int k = 0; k < d->nexhausted; k++)
			was = was || strcmp(d->exhausted_pools[k], key) == 0;
		if (dry && nnow < PV_MAX_POOLS)
			snprintf(now_exhausted[nnow++], sizeof now_exhausted[0], "%s", key);
		if (dry == was)
			continue;
		PvBuf b = {0};
		PvJson j;
		pv_json_init(&j, &b);
		pv_json_obj_open(&j, NULL);
		pv_json_str(&j, "database", pl->database);
		pv_json_str(&j, "user", pl->user);
		pv_json_int(&j, "cl_active", pl->cl_active);
		pv_json_int(&j, "cl_waiting", pl->cl_waiting);
		pv_json_int(&j, "sv_active", pl->sv_active);
		pv_json_int(&j, "sv_idle", pl->sv_idle);
		pv_json_int(&j, "maxwait_ms", pl->maxwait_ms);
		pv_json_str(&j, "pool_mode", pl->mode);
		pv_json_obj_close(&j);
		pv_daemon_journal_event(d, dry ? "pool-exhausted" : "pool-recovered", NULL, NULL, b.data);
		pv_buf_free(&b);
		if (dry)
			pv_warn("pgbouncer pool %s ran dry: %d client(s) queued, the oldest for %lld ms, %d "
			        "server connection(s) busy",
			        key, pl->cl_waiting, (long long)pl->maxwait_ms, pl->sv_active);
		else
			pv_info("pgbouncer pool %s no longer queues clients", key);
	}
	/* pools that vanished from SHOW POOLS are no longer exhausted */
	memcpy(d->exhausted_pools, now_exhausted, sizeof now_exhausted[0] * (size_t)nnow);
	d->nexhausted = nnow;
}
