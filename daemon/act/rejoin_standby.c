/*
 * rejoin_standby: the steps of a rejoin that make the node a standby of the primary once its
 * data directory holds the primary's history (rejoin.h): configure, start, verify.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act/rejoin_int.h"
#include "common/fileio.h"
#include "common/redact.h"

/* The saved *.conf files back over the copied ones ($1 saved, $2 PGDATA); standby.signal;
 * prints the node's own postgresql.auto.conf (none: the copied one goes too). */
static const char RESTORE[] =
    "s=$1; d=$2\n"
    "for f in \"$s\"/*.conf; do [ -f \"$f\" ] || continue; cp -p \"$f\" \"$d/\" || exit 1; done\n"
    "[ -f \"$s/postgresql.auto.conf\" ] || rm -f \"$d/postgresql.auto.conf\" || exit 1\n"
    ": >\"$d/standby.signal\" && rm -f \"$d/recovery.signal\" || exit 1\n"
    "if [ -f \"$d/postgresql.auto.conf\" ]; then cat \"$d/postgresql.auto.conf\"; fi\n";
/* $2 into $1, atomically, mode 0600. */
static const char WRITE[] = "umask 077; printf '%s' \"$2\" >\"$1.pgvigil-tmp\" && "
                            "mv \"$1.pgvigil-tmp\" \"$1\"\n";

static const char VERIFY_SQL[] =
    "SELECT pg_is_in_recovery(), coalesce(w.status, ''), coalesce(w.sender_host, ''), "
    "coalesce(w.sender_port, 0), coalesce(w.received_tli, 0) "
    "FROM (SELECT 1) x LEFT JOIN pg_stat_wal_receiver w ON true";

/* ---------------------------------------------------------------- configure */

RjResult pv_rj_do_configure(Rj *x, int64_t now)
{
	char t[400];
	PvError err;
	for (;;) {
		switch (x->sub) {
		case 0:
			if (x->standby_ci) {
				pv_rj_sql(x, x->standby_ci, "SHOW primary_conninfo",
				          PV_REJOIN_SQL_TIMEOUT_MS, now);
				x->sub = 1;
				return RJ_WAIT;
			}
			x->sub = 2;
			continue;
		case 1:
			if (!x->pg_failed && x->res && PQntuples(x->res) == 1 &&
			    *PQgetvalue(x->res, 0, 0)) {
				x->tmpl = pv_xstrdup(PQgetvalue(x->res, 0, 0));
			} else {
				pv_rj_note(
				    x,
				    "could not read primary_conninfo on %s (%s): built from the "
				    "configuration",
				    x->standby, x->pg_failed ? x->pg_error : "empty");
				x->standby[0] = '\0';
			}
			x->sub = 2;
			continue;
		case 2: {
			bool dropped = false;
			if (pv_rejoin_primary_conninfo(
			        x->tmpl ? x->tmpl : x->primary_ci, x->primary_host, x->primary_port,
			        x->node, !x->host.remote, &x->pconninfo, &dropped, &err) != PV_OK)
				return pv_rj_fail(x, "primary_conninfo: %s", err.msg);
			if (dropped)
				pv_rj_note(
				    x,
				    "the password is left out of primary_conninfo on an ssh node: "
				    "the node's host needs it in ~/.pgpass");
			char *red = pv_redact_conninfo(x->pconninfo);
			pv_rj_fact_str(x, "primary_conninfo", red);
			free(red);
			pv_rj_fact_str(x, "template", x->tmpl ? x->standby : "configuration");
			const char *av[] = {"sh",     "-c",      RESTORE, "pgvigil-rejoin",
			                    x->saved, x->pgdata, NULL};
			if (!pv_rj_run(x, now,
			               "restore the saved *.conf files, write standby.signal, read "
			               "postgresql.auto.conf",
			               av, NULL, 60000))
				return RJ_FAIL;
			x->sub = 3;
			return RJ_WAIT;
		}
		case 3: {
			if (!pv_hostcmd_ok(x->cmd)) {
				pv_rj_cmd_tail(x->cmd, t, sizeof t);
				return pv_rj_fail(
				    x, "restoring the node's configuration files from %s: %s",
				    x->saved, t);
			}
			const char *text = pv_hostcmd_stdout(x->cmd);
			pv_rejoin_conf_get(text, "primary_slot_name", x->slot, sizeof x->slot);
			PvBuf b = {0};
			pv_rejoin_autoconf_rewrite(text, NULL, x->pconninfo, x->slot, &b);
			x->autoconf = pv_buf_steal(&b);
			if (x->slot[0])
				pv_rj_fact_str(x, "slot", x->slot);
			if (!x->slot[0]) {
				x->sub = 5;
				continue;
			}
			PvBuf q = {0};
			pv_buf_puts(&q, "SELECT pg_create_physical_replication_slot(n, true) FROM "
			                "(SELECT ");
			pv_rejoin_conf_quote(&q, x->slot); /* '' doubling is SQL quoting too */
			pv_buf_puts(&q, "::name AS n) s WHERE NOT EXISTS "
			                "(SELECT 1 FROM pg_replication_slots WHERE slot_name = n)");
			pv_rj_sql(x, x->primary_ci, q.data, PV_REJOIN_SQL_TIMEOUT_MS, now);
			pv_buf_free(&q);
			x->sub = 4;
			return RJ_WAIT;
		}
		case 4:
			if (x->pg_failed)
				return pv_rj_fail(x, "creating the replication slot %s on %s: %s",
				                  x->slot, x->primary, x->pg_error);
			pv_rj_note(x, "replication slot %s on %s", x->slot, x->primary);
			x->sub = 5;
			continue;
		case 5: {
			char *path = pv_xasprintf("%s/postgresql.auto.conf", x->pgdata);
			if (x->host.remote) {
				const char *av[] = {"sh", "-c",        WRITE, "pgvigil-rejoin",
				                    path, x->autoconf, NULL};
				bool ok = pv_rj_run(x, now, "write postgresql.auto.conf", av, NULL,
				                    60000);
				free(path);
				if (!ok)
					return RJ_FAIL;
				x->sub = 6;
				return RJ_WAIT;
			}
			PvStatus st = pv_file_write_atomic(path, x->autoconf, strlen(x->autoconf),
			                                   0600, &err);
			if (st == PV_OK && chown(path, x->host.uid, x->host.gid) != 0)
				st = pv_error_set(&err, PV_ERR_IO, "chown %s: %s", path,
				                  strerror(errno));
			free(path);
			if (st != PV_OK)
				return pv_rj_fail(x, "writing postgresql.auto.conf: %s", err.msg);
			x->sub = 7;
			continue;
		}
		case 6:
			if (!pv_hostcmd_ok(x->cmd)) {
				pv_rj_cmd_tail(x->cmd, t, sizeof t);
				return pv_rj_fail(x, "writing postgresql.auto.conf: %s", t);
			}
			x->sub = 7;
			continue;
		case 7: {
			pv_rj_note(x, "primary_conninfo points at %s (%s port %d)", x->primary,
			           x->primary_host, x->primary_port);
			if (!strstr(x->saved, "/.pgvigil-rejoin/")) {
				x->saved[0] = '\0';
				return RJ_DONE;
			}
			const char *av[] = {"rm", "-rf", "--", x->saved, NULL};
			if (!pv_rj_run(x, now, NULL, av, NULL, 60000))
				return RJ_FAIL;
			x->sub = 8;
			return RJ_WAIT;
		}
		default:
			if (!pv_hostcmd_ok(x->cmd))
				pv_rj_note(x, "could not remove %s", x->saved);
			x->saved[0] = '\0';
			return RJ_DONE;
		}
	}
}

/* ---------------------------------------------------------------- start, verify */

RjResult pv_rj_do_start(Rj *x, int64_t now)
{
	char t[400], how[192];
	char *log = pv_xasprintf("%s/%s", x->pgdata, PV_REJOIN_START_LOG);
	RjResult r = RJ_WAIT;
	switch (x->sub) {
	case 0: {
		char pg_ctl[4096], secs[16];
		pv_rj_prog(x, "pg_ctl", pg_ctl, sizeof pg_ctl);
		snprintf(secs, sizeof secs, "%d", PV_REJOIN_START_TIMEOUT_S);
		const char *av[] = {pg_ctl, "start", "-D", x->pgdata, "-w",
		                    "-t",   secs,    "-l", log,       NULL};
		if (!pv_rj_run(x, now, NULL, av, NULL, PV_REJOIN_START_TIMEOUT_S * 1000 + 10000))
			r = RJ_FAIL;
		x->sub = 1;
		break;
	}
	case 1: {
		if (pv_hostcmd_ok(x->cmd)) {
			pv_rj_note(x, "started as a standby");
			r = RJ_DONE;
			break;
		}
		pv_rj_cmd_tail(x->cmd, t, sizeof t);
		pv_hostcmd_describe(x->cmd, how, sizeof how);
		pv_rj_fail(x, "pg_ctl start: %s: %s", how, t);
		char keep[sizeof x->error];
		snprintf(keep, sizeof keep, "%s", x->error);
		const char *av[] = {"tail", "-n", "5", log, NULL};
		if (!pv_rj_run(x, now, NULL, av, NULL, 30000)) {
			snprintf(x->error, sizeof x->error, "%s", keep);
			r = RJ_FAIL;
			break;
		}
		snprintf(x->error, sizeof x->error, "%s", keep);
		x->sub = 2;
		break;
	}
	default: {
		char keep[sizeof x->error];
		snprintf(keep, sizeof keep, "%s", x->error);
		pv_rj_cmd_tail(x->cmd, t, sizeof t);
		pv_rj_fail(x, "%.600s; %s: %s", keep, log, t);
		r = RJ_FAIL;
		break;
	}
	}
	free(log);
	return r;
}

RjResult pv_rj_do_verify(Rj *x, int64_t now)
{
	if (x->sub == 0) {
		x->deadline_ms = now + PV_REJOIN_VERIFY_TIMEOUT_MS;
		x->sub = 1;
	}
	if (x->sub == 1) {
		if (x->primary_changed)
			return pv_rj_fail(x, "the primary changed while %s was starting", x->node);
		pv_rj_sql(x, x->node_ci, VERIFY_SQL, 10000, now);
		x->sub = 2;
		return RJ_WAIT;
	}
	if (!x->pg_failed && x->res && PQntuples(x->res) == 1) {
		const char *rec = PQgetvalue(x->res, 0, 0), *status = PQgetvalue(x->res, 0, 1);
		const char *host = PQgetvalue(x->res, 0, 2);
		int port = atoi(PQgetvalue(x->res, 0, 3)), tli = atoi(PQgetvalue(x->res, 0, 4));
		if (strcmp(rec, "f") == 0)
			return pv_rj_fail(x, "%s answers as a primary: stop it now", x->node);
		if (strcmp(status, "streaming") == 0 && strcmp(host, x->primary_host) == 0 &&
		    port == x->primary_port) {
			char sender[320];
			snprintf(sender, sizeof sender, "%s:%d", host, port);
			pv_rj_fact_str(x, "sender", sender);
			pv_rj_note(x, "in recovery, streaming from %s (%s) on timeline %d",
			           x->primary, sender, tli);
			return RJ_DONE;
		}
		snprintf(x->last_seen, sizeof x->last_seen,
		         "in recovery, walreceiver %s%s%.200s:%d", *status ? status : "not running",
		         *status ? " from " : "", host, port);
	} else {
		snprintf(x->last_seen, sizeof x->last_seen, "%.250s",
		         x->pg_failed ? x->pg_error : "no answer");
	}
	if (now >= x->deadline_ms)
		return pv_rj_fail(x, "%s does not stream from %s within %d s (last seen: %s)",
		                  x->node, x->primary, PV_REJOIN_VERIFY_TIMEOUT_MS / 1000,
		                  x->last_seen);
	x->wake_ms = now + 500;
	x->sub = 1;
	return RJ_WAIT;
}
