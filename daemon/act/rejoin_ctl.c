/*
 * rejoin_ctl: the control verb "rejoin" (see rejoin.h): the refusals, everything a rejoin
 * needs from the configuration and the view, the dry run's plan, and the start of a rejoin
 * (its begin record; the request is answered when it is over).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "act/act.h"
#include "act/rejoin.h"
#include "act/rejoin_int.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/redact.h"
#include "io/pgcmd.h"
#include "journal/events.h"

/* Everything a rejoin (or its dry run) needs from the configuration; refusals in err. */
static PvStatus setup(Rj *x, PvDaemon *d, const char *node, PvError *err)
{
	const PvConfig *cfg = d->cfg;
	int n = pv_config_node_index(cfg, node);
	if (n < 0)
		return pv_error_set(err, PV_ERR_NOT_FOUND, "no node called %s in %s", node,
		                    cfg->path);
	const PvNodeConfig *nc = &cfg->nodes[n];
	int p = d->view.primary;
	if (p < 0)
		return pv_error_set(err, PV_ERR_STATE,
		                    "no primary is known: there is nothing to rejoin %s to", node);
	const PvNodeView *pv = &d->view.nodes[p];
	if (p == n || strcmp(pv->name, node) == 0)
		return pv_error_set(err, PV_ERR_REFUSED,
		                    "%s is the current primary: refusing to rejoin it", node);
	if (!nc->pgdata || !*nc->pgdata)
		return pv_error_set(err, PV_ERR_CONFIG,
		                    "%s has no pgdata configured (cluster.nodes.pgdata): pgvigil "
		                    "cannot act on its data directory",
		                    node);
	if (d->incident[0])
		return pv_error_set(err, PV_ERR_BUSY,
		                    "incident %s is open: rejoin %s once it is closed", d->incident,
		                    node);
	if (pv->obs.result != PV_PROBE_UP || pv->obs.in_recovery)
		return pv_error_set(err, PV_ERR_STATE,
		                    "the primary %s does not answer as a primary right now",
		                    pv->name);
	int pi = pv_config_node_index(cfg, pv->name);
	if (pi < 0)
		return pv_error_set(err, PV_ERR_STATE, "the primary %s is not in the configuration",
		                    pv->name);
	const PvNodeConfig *pc = &cfg->nodes[pi];

	snprintf(x->node, sizeof x->node, "%s", node);
	snprintf(x->primary, sizeof x->primary, "%s", pc->name);
	x->pgdata = pv_xstrdup(nc->pgdata);
	x->pg_bin = pv_xstrdup(nc->pg_bin ? nc->pg_bin : "");
	x->node_ci = pv_xstrdup(nc->conninfo);
	x->primary_ci = pv_xstrdup(pc->conninfo);
	x->backup_timeout_ms = cfg->backup_timeout_s * 1000; /* at most 604800 s: fits an int */
	PvStatus st = pv_pg_conninfo_target(pc->conninfo, x->primary_host, sizeof x->primary_host,
	                                    &x->primary_port, err);
	if (st != PV_OK)
		return pv_error_prefix(err, "node %s", pc->name);
	char app[96];
	snprintf(app, sizeof app, "pgvigil-rejoin-%s", node);
	st = pv_pgcmd_conninfo(pc->conninfo, app, &x->source, &x->source_pw, err);
	if (st != PV_OK)
		return pv_error_prefix(err, "node %s", pc->name);

	/* a standby that streams from the primary shows the primary_conninfo format in use */
	for (int i = 0; i < d->view.nnodes; i++) {
		const PvNodeView *v = &d->view.nodes[i];
		int ci = pv_config_node_index(cfg, v->name);
		if (i == p || strcmp(v->name, node) == 0 || ci < 0 ||
		    v->obs.result != PV_PROBE_UP || !v->obs.in_recovery ||
		    !v->obs.receiver_streaming || v->obs.sender_port != x->primary_port)
			continue;
		snprintf(x->standby, sizeof x->standby, "%s", v->name);
		x->standby_ci = pv_xstrdup(cfg->nodes[ci].conninfo);
		break;
	}

	if (nc->ssh.enabled) {
		x->host.remote = true;
		x->host.ssh = pv_act_ssh_new(&nc->ssh);
		x->host.ssh_timeout_ms = nc->ssh.timeout_ms;
		snprintf(x->where, sizeof x->where, "ssh %s@%s", nc->ssh.user,
		         pv_ssh_name(x->host.ssh));
	} else {
		/* the data directory's owner runs the commands; when it is gone (a base backup
		 * that failed removes its copy), the owner of the directory that held it */
		struct stat sb;
		if (stat(nc->pgdata, &sb) != 0) {
			int e = errno;
			char parent[4096];
			snprintf(parent, sizeof parent, "%s", nc->pgdata);
			char *slash = strrchr(parent, '/');
			while (slash && slash > parent && slash[1] == '\0') {
				*slash = '\0';
				slash = strrchr(parent, '/');
			}
			if (slash)
				*(slash == parent ? slash + 1 : slash) = '\0';
			if (e != ENOENT || !slash || stat(parent, &sb) != 0)
				return pv_error_set(err, PV_ERR_IO,
				                    "%s: %s (node %s has no ssh group, so its data "
				                    "directory must be on this host)",
				                    nc->pgdata, strerror(e), node);
			if (sb.st_uid == 0)
				return pv_error_set(
				    err, PV_ERR_STATE,
				    "%s does not exist and %s belongs to root: create the "
				    "data directory, owned by the PostgreSQL user",
				    nc->pgdata, parent);
		}
		x->host.uid = sb.st_uid;
		x->host.gid = sb.st_gid;
		x->host.drop = geteuid() == 0 && sb.st_uid != 0;
		struct passwd pw, *res = NULL;
		char buf[4096];
		if (getpwuid_r(sb.st_uid, &pw, buf, sizeof buf, &res) == 0 && res)
			snprintf(x->host.home, sizeof x->host.home, "%s", pw.pw_dir);
		snprintf(x->where, sizeof x->where, "local as uid %u", (unsigned)sb.st_uid);
		if (x->source_pw)
			snprintf(x->pwenv, sizeof x->pwenv, "PGPASSWORD=%s", x->source_pw);
	}
	return PV_OK;
}

static void dry_run(Rj *x, PvCtlRequest *req)
{
	char aside[4096];
	char *pci = NULL, *red = NULL;
	bool dropped = false;
	PvError err;
	pv_rejoin_aside_path(x->pgdata, pv_clock_wall_us(), aside, sizeof aside);
	/* the format the rejoin will copy (a short read, bounded like a probe) */
	PGresult *res = NULL;
	char *tmpl = NULL;
	if (x->standby_ci &&
	    pv_pg_exec_once(x->standby_ci, PV_PGC_KIND_POSTGRES, "SHOW primary_conninfo",
	                    x->d->cfg->probe_timeout_ms, &res, &err) == PV_OK &&
	    PQntuples(res) == 1 && *PQgetvalue(res, 0, 0))
		tmpl = pv_xstrdup(PQgetvalue(res, 0, 0));
	else
		x->standby[0] = '\0';
	if (res)
		PQclear(res);
	PvStatus st = pv_rejoin_primary_conninfo(tmpl ? tmpl : x->primary_ci, x->primary_host,
	                                         x->primary_port, x->node, !x->host.remote, &pci,
	                                         &dropped, &err);
	pv_rj_wipe_free(tmpl);
	if (st != PV_OK) {
		pv_ctl_respond_error(req, err.msg);
		return;
	}
	red = pv_redact_conninfo(pci);
	PvRejoinPlanIn in = {
	    .node = x->node,
	    .pgdata = x->pgdata,
	    .where = x->where,
	    .primary = x->primary,
	    .source = x->source,
	    .primary_conninfo = red,
	    .primary_host = x->primary_host,
	    .primary_port = x->primary_port,
	    .aside = aside,
	};
	PvBuf lines = {0}, b = {0};
	pv_rejoin_plan(&in, &lines);
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_bool(&j, "ok", true);
	pv_json_bool(&j, "dry_run", true);
	pv_json_str(&j, "node", x->node);
	pv_json_str(&j, "primary", x->primary);
	pv_json_str(&j, "where", x->where);
	pv_json_str(&j, "template", x->standby[0] ? x->standby : "configuration");
	pv_json_arr_open(&j, "plan");
	for (char *l = lines.data; l && *l;) {
		char *e = strchr(l, '\n');
		if (e)
			*e = '\0';
		pv_json_str(&j, NULL, l);
		l = e ? e + 1 : l + strlen(l);
	}
	pv_json_arr_close(&j);
	pv_json_obj_close(&j);
	pv_ctl_respond(req, b.data);
	pv_buf_free(&b);
	pv_buf_free(&lines);
	memset(pci, 0, strlen(pci));
	free(pci);
	free(red);
}

void pv_rj_control(Rj *x, PvDaemon *d, json_t *rq, PvCtlRequest *req)
{
	const char *node = json_string_value(json_object_get(rq, "node"));
	const char *reason = json_string_value(json_object_get(rq, "reason"));
	bool dry = json_is_true(json_object_get(rq, "dry_run"));
	PvError err;
	int64_t now = pv_clock_mono_ms();
	if (x->active) {
		char msg[256];
		snprintf(msg, sizeof msg, "a rejoin of %s is running (step %s)", x->node,
		         pv_rejoin_step_name(x->step));
		pv_ctl_respond_error(req, msg);
		return;
	}
	if (!node || !*node) {
		pv_ctl_respond_error(req, "a node is required");
		return;
	}
	if (!reason || !*reason) {
		pv_ctl_respond_error(req, "a reason is required (--reason TEXT)");
		return;
	}
	if (setup(x, d, node, &err) != PV_OK) {
		pv_rj_job_clear(x);
		pv_ctl_respond_error(req, err.msg);
		return;
	}
	if (dry) {
		dry_run(x, req);
		pv_rj_job_clear(x);
		return;
	}
	snprintf(x->reason, sizeof x->reason, "%s", reason);
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "primary", x->primary);
	pv_json_str(&j, "reason", reason);
	pv_json_int(&j, "operator_uid", (int64_t)req->uid);
	pv_json_int(&j, "operator_pid", (int64_t)req->pid);
	pv_json_str(&j, "pgdata", x->pgdata);
	pv_json_str(&j, "where", x->where);
	pv_json_obj_close(&j);
	PvStatus st = pv_journal_begin(d->journal, &x->span, "",
	                               pv_journal_event_name(PV_EV_REJOIN), x->node, b.data, &err);
	pv_buf_free(&b);
	if (st != PV_OK) {
		pv_error("journal: %s", err.msg);
		char msg[1200];
		snprintf(msg, sizeof msg, "journal: %s: nothing done", err.msg);
		pv_rj_job_clear(x);
		pv_ctl_respond_error(req, msg);
		return;
	}
	pv_info("rejoin %s as a standby of %s (%s): %s", x->node, x->primary, x->where, reason);
	x->active = true;
	x->req = *req;
	x->have_req = true;
	x->start_ms = now;
	pv_rj_begin(x, now);
}
