#include "probe/probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const pv_probe_sql =
	"SELECT pg_is_in_recovery(),"
	" CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,"
	" pg_last_wal_receive_lsn()::text,"
	" pg_last_wal_replay_lsn()::text,"
	" CASE WHEN pg_is_in_recovery()"
	"  THEN coalesce(w.received_tli, (SELECT timeline_id FROM pg_control_checkpoint()))"
	"  ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,"
	" w.status,"
	" w.sender_host,"
	" w.sender_port,"
	" (extract(epoch FROM now() - w.last_msg_receipt_time) * 1000)::bigint,"
	" (SELECT system_identifier FROM pg_control_system())::text"
	" FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS w ON true";

static const char *val(const PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? NULL : PQgetvalue(r, 0, col);
}

bool pv_probe_parse(const PGresult *res, PvNodeObs *obs)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 10) {
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
	return true;
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
