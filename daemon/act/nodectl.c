#include "act/nodectl.h"

#include "act/act.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "io/proc.h"
#include "io/ssh.h"

PvSsh *pv_act_ssh_new(const PvSshConfig *c)
{
	PvSshTarget t = {
	    .host = c->host,
	    .port = c->port,
	    .user = c->user,
	    .key = c->key,
	    .passphrase = c->passphrase,
	    .known_hosts = c->known_hosts,
	    .connect_timeout_ms = c->timeout_ms,
	};
	return pv_ssh_new(&t);
}

bool pv_nodectl_possible(const PvConfig *cfg, int node)
{
	return cfg->nodes[node].pgdata && cfg->nodes[node].pgdata[0];
}

void pv_nodectl_result_free(PvNodeCmdResult *res)
{
	pv_buf_free(&res->out);
}

PvStatus pv_nodectl_pg_ctl(const PvConfig *cfg, int node, const char *const *args, int timeout_ms,
                           PvNodeCmdResult *res, PvError *err)
{
	const PvNodeConfig *nc = &cfg->nodes[node];
	const char *argv[24];
	char *prog = NULL;
	int n = 0;
	PvStatus st;

	memset(res, 0, sizeof *res);
	if (!pv_nodectl_possible(cfg, node))
		return pv_error_set(err, PV_ERR_CONFIG, "node %s has no pgdata configured", nc->name);
	prog = nc->pg_bin && nc->pg_bin[0] ? pv_xasprintf("%s/pg_ctl", nc->pg_bin) : pv_xstrdup("pg_ctl");
	argv[n++] = prog;
	for (int i = 0; args[i] && n < 20; i++)
		argv[n++] = args[i];
	argv[n++] = "-D";
	argv[n++] = nc->pgdata;
	argv[n] = NULL;

	if (nc->ssh.enabled) {
		PvSsh *s = pv_act_ssh_new(&nc->ssh);
		PvSshResult r;
		snprintf(res->where, sizeof res->where, "ssh %s@%s", nc->ssh.user, pv_ssh_name(s));
		st = pv_ssh_run(s, argv, timeout_ms, &r, err);
		res->ran = st == PV_OK;
		res->timed_out = st == PV_ERR_TIMEOUT;
		res->exit_status = r.exit_signal[0] ? -1 : r.exit_status;
		pv_buf_append(&res->out, r.out.data ? r.out.data : "", r.out.len);
		pv_buf_append(&res->out, r.err.data ? r.err.data : "", r.err.len);
		pv_ssh_result_free(&r);
		pv_ssh_free(s);
		if (st == PV_ERR_TIMEOUT || st == PV_OK)
			st = PV_OK;
		goto out;
	}

	struct stat sb;
	if (stat(nc->pgdata, &sb) != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: %s (node %s has no ssh group, so its data "
		                  "directory must be on this host)", nc->pgdata, strerror(errno), nc->name);
		goto out;
	}
	snprintf(res->where, sizeof res->where, "local as uid %u", (unsigned)sb.st_uid);
	PvProcSpec spec = {
		.argv = argv,
		.cwd = "/",
		.uid = sb.st_uid,
		.gid = sb.st_gid,
		.drop_privileges = geteuid() == 0 && sb.st_uid != 0,
		.timeout_ms = timeout_ms,
	};
	PvProc *p = NULL;
	st = pv_proc_run(&spec, &p, err);
	if (st == PV_OK) {
		res->ran = !pv_proc_timed_out(p);
		res->timed_out = pv_proc_timed_out(p);
		res->exit_status = pv_proc_exit_status(p);
		const PvBuf *o = pv_proc_stdout(p), *e = pv_proc_stderr(p);
		pv_buf_append(&res->out, o->data ? o->data : "", o->len);
		pv_buf_append(&res->out, e->data ? e->data : "", e->len);
	}
	pv_proc_free(p);
out:
	free(prog);
	return st;
}

/* Children of pid, from /proc. */
static int children(pid_t pid, pid_t *out, int max)
{
	int n = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < max) {
		char *end;
		long p = strtol(e->d_name, &end, 10);
		if (*end || p <= 0)
			continue;
		char path[64], buf[512];
		snprintf(path, sizeof path, "/proc/%ld/stat", p);
		FILE *fp = fopen(path, "r");
		if (!fp)
			continue;
		size_t len = fread(buf, 1, sizeof buf - 1, fp);
		fclose(fp);
		buf[len] = '\0';
		char *rp = strrchr(buf, ')');
		long ppid = 0;
		char state;
		if (rp && sscanf(rp + 2, "%c %ld", &state, &ppid) == 2 && ppid == pid)
			out[n++] = (pid_t)p;
	}
	closedir(d);
	return n;
}

int pv_nodectl_kill_local(const PvConfig *cfg, int node, PvError *err)
{
	const PvNodeConfig *nc = &cfg->nodes[node];
	if (!pv_nodectl_possible(cfg, node) || nc->ssh.enabled) {
		pv_error_set(err, PV_ERR_CONFIG, "node %s is not a local node with a known pgdata", nc->name);
		return -1;
	}
	char *path = pv_xasprintf("%s/postmaster.pid", nc->pgdata);
	FILE *fp = fopen(path, "r");
	free(path);
	long pm = 0;
	if (!fp || fscanf(fp, "%ld", &pm) != 1 || pm <= 1) {
		if (fp)
			fclose(fp);
		pv_error_set(err, PV_ERR_NOT_FOUND, "no postmaster.pid in %s", nc->pgdata);
		return -1;
	}
	fclose(fp);
	if (kill((pid_t)pm, 0) != 0) {
		pv_error_set(err, PV_ERR_NOT_FOUND, "postmaster %ld is not running", pm);
		return -1;
	}
	pid_t kids[4096];
	int nk = children((pid_t)pm, kids, 4096);
	int n = 0;
	/* the postmaster first, so it cannot start new children; then every child */
	if (kill((pid_t)pm, SIGKILL) == 0)
		n++;
	for (int i = 0; i < nk; i++)
		if (kill(kids[i], SIGKILL) == 0)
			n++;
	return n;
}
