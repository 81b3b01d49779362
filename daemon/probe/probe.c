#include "probe/probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The status statement.  Its costly part is the pass over every backend's status (the
 * activity counts: one row per backend, over a millisecond per thousand), so it comes in two
 * forms: with it ("full") and without it ("lite", the same columns, NULL there).  The
 * synchronous standbys are looked up (a second pass, through pg_stat_replication) only when
 * synchronous_standby_names is set: an uncorrelated subquery in an untaken CASE branch is
 * never run.  wal_receiver_timeout comes as current_setting() text ("5s"), not from
 * pg_settings, which builds every setting's row.
 */
#define PV_STATUS_HEAD                                                                         \
	"SELECT pg_is_in_recovery(),"                                                            \
	" CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,"          \
	" pg_last_wal_receive_lsn()::text,"                                                      \
	" pg_last_wal_replay_lsn()::text,"                                                       \
	" CASE WHEN pg_is_in_recovery()"                                                         \
	"  THEN coalesce(w.received_tli, (SELECT timeline_id FROM pg_control_checkpoint()))"     \
	"  ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END," \
	" w.status,"                                                                             \
	" w.sender_host,"                                                                        \
	" w.sender_port,"                                                                        \
	" (extract(epoch FROM now() - w.last_msg_receipt_time) * 1000)::bigint,"                 \
	" (SELECT system_identifier FROM pg_control_system())::text,"
#define PV_STATUS_TAIL                                                                         \
	" current_setting('wal_receiver_timeout'),"                                              \
	" to_regclass('pgvigil.heartbeat') IS NOT NULL,"                                         \
	" (SELECT coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false)" \
	"  FROM pg_stat_archiver),"                                                              \
	" current_setting('synchronous_standby_names') <> '',"                                    \
	" CASE WHEN current_setting('synchronous_standby_names') <> ''"                           \
	"  THEN (SELECT string_agg(application_name, ',') FROM pg_stat_replication"              \
	"   WHERE sync_state IN ('sync', 'quorum')) END"                                          \
	" FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS w ON true"
#define PV_STATUS_FULL_SQL                                                                     \
	PV_STATUS_HEAD                                                                             \
	" a.clients, current_setting('max_connections')::int,"                                   \
	" current_setting('superuser_reserved_connections')::int,"                               \
	" a.lock_waiters, a.relation_waiters, a.oldest_wait_ms, a.oldest_idle_xact_ms,"          \
	PV_STATUS_TAIL ","                                                                         \
	" (SELECT count(*) FILTER (WHERE backend_type = 'client backend') AS clients,"           \
	"   count(*) FILTER (WHERE wait_event_type = 'Lock' AND backend_type = 'client backend')" \
	"    AS lock_waiters,"                                                                   \
	"   count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event = 'relation'"          \
	"    AND backend_type = 'client backend') AS relation_waiters,"                          \
	"   (extract(epoch FROM max(now() - query_start) FILTER (WHERE wait_event_type = 'Lock'"  \
	"    AND backend_type = 'client backend')) * 1000)::bigint AS oldest_wait_ms,"           \
	"   (extract(epoch FROM max(now() - state_change) FILTER (WHERE state LIKE"              \
	"    'idle in transaction%')) * 1000)::bigint AS oldest_idle_xact_ms"                     \
	"  FROM pg_stat_get_activity(NULL)) AS a"
#define PV_STATUS_LITE_SQL                                                                     \
	PV_STATUS_HEAD                                                                             \
	" NULL::bigint, current_setting('max_connections')::int,"                                \
	" current_setting('superuser_reserved_connections')::int,"                               \
	" NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint," PV_STATUS_TAIL

const char *const pv_probe_sql = PV_STATUS_FULL_SQL;

/* Prepared once per connection (PREPARE is per session), then only EXECUTEd: the statement
 * is planned once, not every half second. */
const char *const pv_probe_prepare_sql =
	"PREPARE pgvigil_status_full AS " PV_STATUS_FULL_SQL ";"
	" PREPARE pgvigil_status_lite AS " PV_STATUS_LITE_SQL;
const int pv_probe_prepare_statements = 2;

const char *pv_probe_execute_sql(bool full, bool heartbeat_read)
{
	/* the heartbeat table may not exist yet when the connection is made: not prepared */
	if (heartbeat_read)
		return full ? "EXECUTE pgvigil_status_full; SELECT seq FROM pgvigil.heartbeat WHERE id = 1"
		            : "EXECUTE pgvigil_status_lite; SELECT seq FROM pgvigil.heartbeat WHERE id = 1";
	return full ? "EXECUTE pgvigil_status_full" : "EXECUTE pgvigil_status_lite";
}

int64_t pv_probe_parse_duration_ms(const char *text)
{
	if (!text || !*text)
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (end == text || errno)
		return -1;
	static const struct {
		const char *unit;
		long long ms;
	} units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"min", 60000}, {"h", 3600000}, {"d", 86400000}};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strcmp(end, units[i].unit) == 0)
			return v * units[i].ms;
	return -1;
}

const char *const pv_probe_heartbeat_ddl =
	"CREATE SCHEMA IF NOT EXISTS pgvigil;"
	" CREATE TABLE IF NOT EXISTS pgvigil.heartbeat (id int PRIMARY KEY, seq bigint NOT NULL,"
	" ts timestamptz NOT NULL, src text NOT NULL)";

/*
 * Root blockers with UNION (not UNION ALL): the recursion dedups (root, waiter) pairs, so it
 * ends, and stays bounded when every waiter is soft-blocked by all the earlier ones.
 */
const char *const pv_probe_chain_sql =
	"WITH RECURSIVE"
	" waiters AS (SELECT a.pid, pg_blocking_pids(a.pid) AS blockers, a.query_start"
	"  FROM pg_stat_activity a WHERE a.wait_event_type = 'Lock'),"
	" wanted AS (SELECT l.pid, l.mode, CASE WHEN l.locktype = 'relation' AND l.database ="
	"  (SELECT oid FROM pg_database WHERE datname = current_database())"
	"  THEN l.relation::regclass::text END AS rel FROM pg_locks l WHERE NOT l.granted),"
	" edges AS (SELECT DISTINCT w.pid AS waiter, unnest(w.blockers) AS blocker FROM waiters w),"
	" reach(root, waiter) AS ("
	"  SELECT blocker, waiter FROM edges WHERE blocker NOT IN (SELECT pid FROM waiters)"
	"  UNION SELECT r.root, e.waiter FROM reach r JOIN edges e ON e.blocker = r.waiter)"
	" SELECT r.root, a.usename, a.application_name, a.datname, host(a.client_addr), a.state,"
	"  a.backend_type, coalesce(ro.rolsuper, false),"
	"  count(DISTINCT r.waiter),"
	"  (extract(epoch FROM max(now() - w.query_start)) * 1000)::bigint,"
	"  (extract(epoch FROM now() - a.xact_start) * 1000)::bigint,"
	"  (extract(epoch FROM now() - a.state_change) * 1000)::bigint,"
	"  string_agg(DISTINCT wa.rel, ','), string_agg(DISTINCT wa.mode, ','), left(a.query, 200)"
	" FROM reach r JOIN waiters w ON w.pid = r.waiter"
	" LEFT JOIN wanted wa ON wa.pid = r.waiter"
	" LEFT JOIN pg_stat_activity a ON a.pid = r.root"
	" LEFT JOIN pg_roles ro ON ro.oid = a.usesysid"
	" GROUP BY r.root, a.usename, a.application_name, a.datname, a.client_addr, a.state,"
	"  a.backend_type, ro.rolsuper, a.xact_start, a.state_change, a.query"
	" ORDER BY count(DISTINCT r.waiter) DESC, r.root LIMIT 20";

static const char *val(const PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? NULL : PQgetvalue(r, 0, col);
}

bool pv_probe_parse(const PGresult *res, PvNodeObs *obs)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 22) {
		obs->result = PV_PROBE_UNKNOWN;
		snprintf(obs->reason, sizeof obs->reason, "malformed probe result");
		return false;
	}
	const char *s;
	obs->result = PV_PROBE_UP;
	obs->reason[0] = '\0';
	obs->in_recovery = (s = val(res, 0)) && s[0] == 't';
	obs->current_lsn = obs->receive_lsn = obs->replay_lsn = 0;
	if ((s = val(res, 1)))
		(void)pv_lsn_parse(s, &obs->current_lsn);
	if ((s = val(res, 2)))
		(void)pv_lsn_parse(s, &obs->receive_lsn);
	if ((s = val(res, 3)))
		(void)pv_lsn_parse(s, &obs->replay_lsn);
	obs->timeline = (s = val(res, 4)) ? atoi(s) : 0;
	obs->receiver_streaming = (s = val(res, 5)) && strcmp(s, "streaming") == 0;
	snprintf(obs->sender_host, sizeof obs->sender_host, "%s", (s = val(res, 6)) ? s : "");
	obs->sender_port = (s = val(res, 7)) ? atoi(s) : 0;
	obs->since_last_msg_ms = (s = val(res, 8)) ? strtoll(s, NULL, 10) : -1;
	obs->system_id = (s = val(res, 9)) ? strtoull(s, NULL, 10) : 0;
	obs->max_connections = (s = val(res, 11)) ? atoi(s) : 0;
	obs->reserved_connections = (s = val(res, 12)) ? atoi(s) : 0;
	obs->refused_saturated = false;
	/* the activity counts: NULL from the lite form, which keeps the last full probe's */
	if ((s = val(res, 10))) {
		obs->clients = atoi(s);
		obs->lock_waiters = (s = val(res, 13)) ? atoi(s) : 0;
		obs->relation_waiters = (s = val(res, 14)) ? atoi(s) : 0;
		obs->oldest_lock_wait_ms = (s = val(res, 15)) ? strtoll(s, NULL, 10) : -1;
		obs->oldest_idle_xact_ms = (s = val(res, 16)) ? strtoll(s, NULL, 10) : -1;
	}
	obs->wal_receiver_timeout_ms = pv_probe_parse_duration_ms(val(res, 17));
	obs->has_heartbeat_table = (s = val(res, 18)) && s[0] == 't';
	obs->archive_failing = (s = val(res, 19)) && s[0] == 't';
	obs->sync_configured = (s = val(res, 20)) && s[0] == 't';
	snprintf(obs->sync_standbys, sizeof obs->sync_standbys, "%s", (s = val(res, 21)) ? s : "");
	return true;
}

int64_t pv_probe_parse_heartbeat(const PGresult *res)
{
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQgetisnull(res, 0, 0))
		return -1;
	return strtoll(PQgetvalue(res, 0, 0), NULL, 10);
}

void pv_probe_heartbeat_sql(int64_t seq, char *buf, size_t size)
{
	snprintf(buf, size,
	         "INSERT INTO pgvigil.heartbeat AS h (id, seq, ts, src)"
	         " VALUES (1, %lld, clock_timestamp(), 'pgvigil')"
	         " ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, ts = EXCLUDED.ts",
	         (long long)seq);
}

static void copy_val(const PGresult *r, int row, int col, char *dst, size_t size)
{
	const char *s = PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
	snprintf(dst, size, "%s", s);
}

static int64_t int_val(const PGresult *r, int row, int col, int64_t dflt)
{
	return PQgetisnull(r, row, col) ? dflt : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int pv_probe_parse_chain(const PGresult *res, PvLockRoot *roots, int max)
{
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) < 15)
		return 0;
	int n = 0;
	for (int row = 0; row < PQntuples(res) && n < max; row++) {
		PvLockRoot *r = &roots[n++];
		memset(r, 0, sizeof *r);
		r->pid = (int)int_val(res, row, 0, 0);
		copy_val(res, row, 1, r->user, sizeof r->user);
		copy_val(res, row, 2, r->application, sizeof r->application);
		copy_val(res, row, 3, r->database, sizeof r->database);
		copy_val(res, row, 4, r->client, sizeof r->client);
		copy_val(res, row, 5, r->state, sizeof r->state);
		copy_val(res, row, 6, r->backend_type, sizeof r->backend_type);
		r->superuser = !PQgetisnull(res, row, 7) && PQgetvalue(res, row, 7)[0] == 't';
		r->blocked = (int)int_val(res, row, 8, 0);
		r->blocked_for_ms = int_val(res, row, 9, 0);
		r->xact_age_ms = int_val(res, row, 10, -1);
		r->state_age_ms = int_val(res, row, 11, -1);
		copy_val(res, row, 12, r->relations, sizeof r->relations);
		copy_val(res, row, 13, r->modes, sizeof r->modes);
		copy_val(res, row, 14, r->query, sizeof r->query);
	}
	return n;
}

bool pv_probe_is_saturation(const char *message, const char *sqlstate)
{
	if (sqlstate && strcmp(sqlstate, "53300") == 0)
		return true;
	return message && (strstr(message, "too many clients") ||
	                   strstr(message, "remaining connection slots are reserved"));
}

PvProbeResult pv_probe_classify_failure(const char *message, const char *sqlstate, bool timed_out)
{
	static const char *const unknown_states[] = {
		"53300", /* too_many_connections */
		"53",    /* insufficient resources, any */
		"28",    /* invalid authorization, any */
		"3D000", /* invalid_catalog_name */
		"42",    /* syntax error or access rule violation */
		"57014", /* query_canceled: our statement_timeout (a slow, not a dead, server) */
		"55P03", /* lock_not_available */
	};
	static const char *const unknown_texts[] = {
		"too many clients",
		"remaining connection slots are reserved",
		"authentication failed",
		"no pg_hba.conf entry",
		"does not exist",
		"permission denied",
		"SSL",
		"out of memory",
	};
	if (timed_out)
		return PV_PROBE_DOWN;
	if (sqlstate && *sqlstate) {
		for (size_t i = 0; i < sizeof unknown_states / sizeof unknown_states[0]; i++)
			if (strncmp(sqlstate, unknown_states[i], strlen(unknown_states[i])) == 0)
				return PV_PROBE_UNKNOWN;
		return PV_PROBE_DOWN; /* 57P01 admin_shutdown, 57P03 cannot_connect_now, 08xxx ... */
	}
	for (size_t i = 0; message && i < sizeof unknown_texts / sizeof unknown_texts[0]; i++)
		if (strstr(message, unknown_texts[i]))
			return PV_PROBE_UNKNOWN;
	return PV_PROBE_DOWN;
}
