/*
 * backup_remote: backup.directory on backup.host's host, over its node's ssh group (see
 * backup.h).  Each operation is one ssh call running a fixed sh(1) script; every value (a path,
 * a label, a catalog record) travels as a quoted argument, never inside the script.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/act.h"
#include "act/backup.h"
#include "io/ssh.h"

#define TAG "pgvigil-backup"

/* d: lines for each directory ("d NAME") and catalog file ("j NAME<TAB>its text on one line");
 * a missing directory is an empty listing. */
static const char LIST[] =
    "cd -- \"$1\" 2>/dev/null || { [ -e \"$1\" ] || exit 0; echo \"$1: cannot read the backup "
    "directory\" >&2; exit 1; }\n"
    "for f in *; do\n"
    "  if [ -d \"$f\" ] && [ ! -h \"$f\" ]; then printf 'd %s\\n' \"$f\"\n"
    "  elif [ -f \"$f\" ]; then case $f in *.json) printf 'j %s\\t' \"$f\"; tr -d '\\n' <\"$f\"; "
    "echo;; esac\n"
    "  fi\n"
    "done\n";

/* $1 dir, $2 base label: mkdir -p, a write test, the first free label. */
static const char PREPARE[] =
    "d=$1; b=$2\n"
    "mkdir -p -- \"$d\" 2>/dev/null; [ -d \"$d\" ] || { echo \"$d: cannot create the backup "
    "directory\" >&2; exit 1; }\n"
    "t=\"$d/.pgvigil-write-test.$$\"\n"
    "( : >\"$t\" ) 2>/dev/null && rm -f -- \"$t\" || { echo \"$d: the backup directory is not "
    "writable by $(id -un)\" >&2; exit 1; }\n"
    "l=$b; n=1\n"
    "while :; do\n"
    "  taken=; for s in '' .partial .failed .deleting .json; do [ -e \"$d/$l$s\" ] && taken=1; "
    "done\n"
    "  [ -z \"$taken\" ] && break\n"
    "  n=$((n + 1)); l=\"$b-$n\"\n"
    "done\n"
    "echo \"$l\"\n";

/* $1 dir, $2 label, $3 suffix: LABEL.partial renamed, its size, backup_label, manifest end. */
static const char FINISH[] = "d=$1; l=$2; p=\"$1/$2$3\"\n"
                             "mv -- \"$d/$l.partial\" \"$p\" || exit 1\n"
                             "sync -- \"$d\" 2>/dev/null\n"
                             "du -sb -- \"$p\" || exit 1\n"
                             "echo @@label; cat -- \"$p/backup_label\" 2>/dev/null\n"
                             "echo @@manifest; tail -c 8192 -- \"$p/backup_manifest\" 2>/dev/null\n"
                             "exit 0\n";

/* $1 dir, $2 label, $3 the record: written to a temporary file, synced, renamed, synced. */
static const char CATALOG[] = "t=\"$1/$2.json.tmp.$$\"\n"
                              "printf '%s\\n' \"$3\" >\"$t\" && sync -- \"$t\" && "
                              "mv -f -- \"$t\" \"$1/$2.json\" && sync -- \"$1\" || "
                              "{ rm -f -- \"$t\"; exit 1; }\n";

/* $1 dir, $2 label, $3 directory suffix or "-" (none), $4 1: the catalog record too. */
static const char REMOVE[] =
    "d=$1; l=$2\n"
    "if [ \"$3\" != - ] && [ -e \"$d/$l$3\" ]; then mv -- \"$d/$l$3\" \"$d/$l.deleting\" || "
    "exit 1; fi\n"
    "if [ \"$4\" = 1 ]; then rm -f -- \"$d/$l.json\" || exit 1; fi\n"
    "sync -- \"$d\" 2>/dev/null\n"
    "(cd / && rm -rf -- \"$d\"/*.deleting) >/dev/null 2>&1 </dev/null &\n"
    "exit 0\n";

static const char HAS_LABEL[] = "[ -r \"$1/backup_label\" ] && echo yes || echo no\n";

/* ---------------------------------------------------------------- configuration */

int pv_backup_host_node(const PvConfig *cfg)
{
	if (!cfg->backup_host || !*cfg->backup_host)
		return -1;
	return pv_config_node_index(cfg, cfg->backup_host);
}

PvSsh *pv_backup_ssh_new(const PvConfig *cfg)
{
	int node = pv_backup_host_node(cfg);
	if (node < 0)
		return NULL;
	return pv_act_ssh_new(&cfg->nodes[node].ssh);
}

int pv_backup_ssh_timeout_ms(const PvConfig *cfg)
{
	int node = pv_backup_host_node(cfg);
	return node < 0 ? 10000 : cfg->nodes[node].ssh.timeout_ms;
}

char *pv_backup_location(const PvConfig *cfg)
{
	char *dir = pv_backup_directory(cfg);
	int node = pv_backup_host_node(cfg);
	if (node < 0)
		return dir;
	const PvSshConfig *c = &cfg->nodes[node].ssh;
	char hp[300];
	pv_ssh_format_hostport(c->host, c->port, hp, sizeof hp);
	char *s = pv_xasprintf("%s@%s:%s", c->user, hp, dir);
	free(dir);
	return s;
}

PvStatus pv_backup_list(const PvConfig *cfg, PvBackupEntry **out, size_t *n, PvError *err)
{
	char *dir = pv_backup_directory(cfg);
	PvStatus st;
	PvSsh *s = pv_backup_ssh_new(cfg);
	if (s)
		st = pv_backup_remote_list(s, dir, pv_backup_ssh_timeout_ms(cfg) + 10000, out, n,
		                           err);
	else
		st = pv_backup_catalog_list(dir, out, n, err);
	pv_ssh_free(s);
	free(dir);
	return st;
}

/* ---------------------------------------------------------------- pure parsing */

size_t pv_backup_listing_parse(const char *text, PvBackupItem **items)
{
	size_t n = 0;
	*items = NULL;
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (len > 2 && line[1] == ' ' && (line[0] == 'd' || line[0] == 'j')) {
			const char *name = line + 2;
			size_t nlen = len - 2;
			const char *json = NULL;
			if (line[0] == 'j') {
				const char *tab = memchr(name, '\t', nlen);
				if (tab) {
					json = tab + 1;
					nlen = (size_t)(tab - name);
				}
			}
			if (nlen > 0 && (line[0] == 'd' || json)) {
				*items = pv_xrealloc(*items, (n + 1) * sizeof **items);
				PvBackupItem *it = &(*items)[n++];
				it->name = pv_xasprintf("%.*s", (int)nlen, name);
				it->is_dir = line[0] == 'd';
				it->json =
				    json ? pv_xasprintf("%.*s", (int)(line + len - json), json)
				         : NULL;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return n;
}

bool pv_backup_du_parse(const char *text, int64_t *bytes)
{
	if (!text)
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (end == text || errno || v < 0 || (*end != '\t' && *end != ' '))
		return false;
	*bytes = (int64_t)v;
	return true;
}

bool pv_backup_finish_parse(const char *text, PvBackupEntry *e)
{
	if (!text || !pv_backup_du_parse(text, &e->size_bytes))
		return false;
	const char *l = strstr(text, "\n@@label\n");
	const char *m = strstr(text, "\n@@manifest\n");
	char *label = NULL;
	if (l && m && m > l)
		label = pv_xasprintf("%.*s", (int)(m - (l + 9)), l + 9);
	pv_backup_entry_facts(e, label, m ? m + 12 : NULL);
	free(label);
	return true;
}

/* ---------------------------------------------------------------- remote operations */

PvStatus pv_backup_remote_sh(PvSsh *s, const char *script, const char *const *args, int timeout_ms,
                             PvBuf *out, PvError *err)
{
	const char *av[16];
	int n = 0;
	av[n++] = "sh";
	av[n++] = "-c";
	av[n++] = script;
	av[n++] = TAG;
	for (int i = 0; args && args[i] && n < 15; i++)
		av[n++] = args[i];
	av[n] = NULL;
	PvSshResult r;
	PvStatus st = pv_ssh_run(s, av, timeout_ms, &r, err);
	if (st == PV_OK && !pv_ssh_result_ok(&r)) {
		char how[64];
		pv_ssh_result_describe(&r, how, sizeof how);
		const char *e = r.err.data ? r.err.data : "";
		size_t len = strcspn(e, "\n");
		if (len)
			st = pv_error_set(err, PV_ERR_IO, "%s: %.*s", pv_ssh_name(s), (int)len, e);
		else
			st = pv_error_set(err, PV_ERR_IO, "%s: %s", pv_ssh_name(s), how);
	}
	if (st == PV_OK && out)
		pv_buf_append(out, r.out.data ? r.out.data : "", r.out.len);
	pv_ssh_result_free(&r);
	return st;
}

PvStatus pv_backup_remote_list(PvSsh *s, const char *dir, int timeout_ms, PvBackupEntry **out,
                               size_t *n, PvError *err)
{
	PvBuf b = {0};
	const char *args[] = {dir, NULL};
	*out = NULL;
	*n = 0;
	PvStatus st = pv_backup_remote_sh(s, LIST, args, timeout_ms, &b, err);
	if (st == PV_OK) {
		PvBackupItem *items = NULL;
		size_t k = pv_backup_listing_parse(b.data, &items);
		pv_backup_catalog_build(items, k, out, n);
		pv_backup_items_free(items, k);
	}
	pv_buf_free(&b);
	return st;
}

PvStatus pv_backup_remote_prepare(PvSsh *s, const char *dir, const char *base, char *label,
                                  size_t size, int timeout_ms, PvError *err)
{
	PvBuf b = {0};
	const char *args[] = {dir, base, NULL};
	PvStatus st = pv_backup_remote_sh(s, PREPARE, args, timeout_ms, &b, err);
	if (st == PV_OK) {
		const char *o = b.data ? b.data : "";
		size_t len = strcspn(o, "\n");
		if (len == 0 || len >= size || strncmp(o, base, strlen(base)) != 0)
			st = pv_error_set(err, PV_ERR_PROTOCOL, "%s: unexpected answer: %.80s",
			                  pv_ssh_name(s), o);
		else
			snprintf(label, size, "%.*s", (int)len, o);
	}
	pv_buf_free(&b);
	return st;
}

void pv_backup_remote_finish_argv(const char *dir, const char *label, const char *suffix,
                                  const char *av[8])
{
	int n = 0;
	av[n++] = "sh";
	av[n++] = "-c";
	av[n++] = FINISH;
	av[n++] = TAG;
	av[n++] = dir;
	av[n++] = label;
	av[n++] = suffix;
	av[n] = NULL;
}

PvStatus pv_backup_remote_catalog_write(PvSsh *s, const char *dir, const PvBackupEntry *e,
                                        int timeout_ms, PvError *err)
{
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_backup_entry_json(&j, NULL, e);
	const char *args[] = {dir, e->label, b.data, NULL};
	PvStatus st = pv_backup_remote_sh(s, CATALOG, args, timeout_ms, NULL, err);
	if (st != PV_OK)
		pv_error_prefix(err, "writing the catalog record %s/%s.json", dir, e->label);
	pv_buf_free(&b);
	return st;
}

PvStatus pv_backup_remote_remove(PvSsh *s, const char *dir, const char *label, const char *suffix,
                                 bool json, int timeout_ms, PvError *err)
{
	const char *args[] = {dir, label, suffix ? suffix : "-", json ? "1" : "0", NULL};
	return pv_backup_remote_sh(s, REMOVE, args, timeout_ms, NULL, err);
}

PvStatus pv_backup_remote_has_label(PvSsh *s, const char *path, int timeout_ms, bool *yes,
                                    PvError *err)
{
	PvBuf b = {0};
	const char *args[] = {path, NULL};
	PvStatus st = pv_backup_remote_sh(s, HAS_LABEL, args, timeout_ms, &b, err);
	*yes = st == PV_OK && b.data && strncmp(b.data, "yes", 3) == 0;
	pv_buf_free(&b);
	return st;
}
