/*
 * rejoin_plan: the pure parts of the rejoin (rejoin.h): postgresql.auto.conf reading and
 * rewriting, pg_controldata and pg_rewind output, names and the dry-run plan.  No I/O.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "act/rejoin.h"
#include "common/clock.h"
#include "io/pgcmd.h"
#include "io/pgconn.h"

static const char *const step_names[PV_REJOIN_NSTEPS] = {
    "stop", "checkpoint", "rewind", "basebackup", "configure", "start", "verify",
};

const char *pv_rejoin_step_name(PvRejoinStep s)
{
	return (s >= 0 && s < PV_REJOIN_NSTEPS) ? step_names[s] : "invalid";
}

/* ---------------------------------------------------------------- postgresql.conf lines */

/*
 * If line (up to its end) sets a parameter, its name span [*name, *name + *nlen) and where its
 * value starts; false for comments, blank and malformed lines.
 */
static bool conf_line(const char *line, size_t len, const char **name, size_t *nlen,
                      const char **value)
{
	const char *p = line, *end = line + len;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p >= end || !(isalpha((unsigned char)*p) || *p == '_'))
		return false;
	*name = p;
	while (p < end && (isalnum((unsigned char)*p) || *p == '_' || *p == '.'))
		p++;
	*nlen = (size_t)(p - *name);
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end && *p == '=')
		p++;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	*value = p;
	return true;
}

static bool name_is(const char *name, size_t nlen, const char *key)
{
	return strlen(key) == nlen && strncasecmp(name, key, nlen) == 0;
}

/* The value starting at v (up to end), unquoted, into out. */
static void conf_value(const char *v, const char *end, char *out, size_t size)
{
	size_t o = 0;
	if (v < end && *v == '\'') {
		for (v++; v < end; v++) {
			char c = *v;
			if (c == '\'') {
				if (v + 1 < end && v[1] == '\'') {
					v++;
				} else {
					break;
				}
			} else if (c == '\\' && v + 1 < end) {
				c = *++v;
				switch (c) {
				case 'n':
					c = '\n';
					break;
				case 't':
					c = '\t';
					break;
				case 'r':
					c = '\r';
					break;
				default:
					break;
				}
			}
			if (o + 1 < size)
				out[o++] = c;
		}
	} else {
		while (v < end && *v != '#' && *v != ' ' && *v != '\t' && *v != '\r') {
			if (o + 1 < size)
				out[o++] = *v;
			v++;
		}
	}
	if (size)
		out[o] = '\0';
}

bool pv_rejoin_conf_get(const char *text, const char *key, char *out, size_t size)
{
	bool found = false;
	if (size)
		out[0] = '\0';
	for (const char *l = text ? text : ""; *l;) {
		size_t n = strcspn(l, "\n");
		const char *name, *value;
		size_t nlen;
		if (conf_line(l, n, &name, &nlen, &value) && name_is(name, nlen, key)) {
			conf_value(value, l + n, out, size);
			found = true;
		}
		l += n;
		if (*l == '\n')
			l++;
	}
	return found;
}

void pv_rejoin_conf_quote(PvBuf *b, const char *value)
{
	pv_buf_putc(b, '\'');
	for (const char *c = value; *c; c++) {
		if (*c == '\'' || *c == '\\')
			pv_buf_putc(b, *c);
		pv_buf_putc(b, *c);
	}
	pv_buf_putc(b, '\'');
}

void pv_rejoin_autoconf_rewrite(const char *text, const char *const *drop,
                                const char *primary_conninfo, const char *slot, PvBuf *out)
{
	for (const char *l = text ? text : ""; *l;) {
		size_t n = strcspn(l, "\n");
		size_t with_nl = n + (l[n] == '\n');
		const char *name, *value;
		size_t nlen;
		bool keep = true;
		if (conf_line(l, n, &name, &nlen, &value)) {
			if (name_is(name, nlen, "primary_conninfo") ||
			    name_is(name, nlen, "primary_slot_name"))
				keep = false;
			for (int i = 0; keep && drop && drop[i]; i++)
				if (name_is(name, nlen, drop[i]))
					keep = false;
		}
		if (keep) {
			pv_buf_append(out, l, n);
			pv_buf_putc(out, '\n');
		}
		l += with_nl;
	}
	pv_buf_puts(out, "primary_conninfo = ");
	pv_rejoin_conf_quote(out, primary_conninfo);
	pv_buf_putc(out, '\n');
	if (slot && *slot) {
		pv_buf_puts(out, "primary_slot_name = ");
		pv_rejoin_conf_quote(out, slot);
		pv_buf_putc(out, '\n');
	}
}

/* ---------------------------------------------------------------- program output */

/* The text after "label:" on the line that starts with label, trimmed, into out. */
static bool field(const char *text, const char *label, char *out, size_t size)
{
	size_t ll = strlen(label);
	for (const char *l = text ? text : ""; *l;) {
		size_t n = strcspn(l, "\n");
		if (n > ll && strncmp(l, label, ll) == 0 && l[ll] == ':') {
			const char *v = l + ll + 1, *e = l + n;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && (e[-1] == ' ' || e[-1] == '\r' || e[-1] == '\t'))
				e--;
			snprintf(out, size, "%.*s", (int)(e - v), v);
			return true;
		}
		l += n;
		if (*l == '\n')
			l++;
	}
	return false;
}

void pv_rejoin_controldata_parse(const char *text, PvControlData *cd)
{
	char v[64];
	memset(cd, 0, sizeof *cd);
	cd->wal_log_hints = -1;
	cd->checksums = -1;
	if (field(text, "Database cluster state", v, sizeof v))
		snprintf(cd->state, sizeof cd->state, "%s", v);
	if (field(text, "Latest checkpoint's TimeLineID", v, sizeof v))
		cd->timeline = atoi(v);
	if (field(text, "wal_log_hints setting", v, sizeof v))
		cd->wal_log_hints = strcmp(v, "on") == 0 ? 1 : strcmp(v, "off") == 0 ? 0 : -1;
	if (field(text, "Data page checksum version", v, sizeof v) && isdigit((unsigned char)v[0]))
		cd->checksums = atoi(v);
}

bool pv_rejoin_rewind_possible(const PvControlData *cd, char *why, size_t size)
{
	if (cd->wal_log_hints == 0 && cd->checksums == 0) {
		snprintf(why, size,
		         "the node has neither wal_log_hints = on nor data checksums "
		         "(pg_controldata): pg_rewind cannot work");
		return false;
	}
	if (size)
		why[0] = '\0';
	return true;
}

bool pv_rejoin_rewind_fallback(const char *output)
{
	static const char *const connection[] = {
	    "could not connect to server",    "connection to server", "Connection refused",
	    "password authentication failed", "no pg_hba.conf entry", "no password supplied",
	    "could not translate host name",  "timeout expired",
	};
	for (size_t i = 0; i < sizeof connection / sizeof connection[0]; i++)
		if (output && strstr(output, connection[i]))
			return false;
	return true;
}

void pv_rejoin_aside_path(const char *pgdata, int64_t wall_us, char *out, size_t size)
{
	size_t n = strlen(pgdata);
	while (n > 1 && pgdata[n - 1] == '/')
		n--;
	char ts[64];
	pv_clock_format_utc(wall_us, ts, sizeof ts); /* 2026-11-25T17:34:55.123456Z */
	char compact[32];
	size_t o = 0;
	for (const char *c = ts; *c && *c != '.' && o + 2 < sizeof compact; c++)
		if (*c != '-' && *c != ':')
			compact[o++] = *c;
	compact[o++] = 'Z';
	compact[o] = '\0';
	snprintf(out, size, "%.*s.pgvigil-old-%s", (int)n, pgdata, compact);
}

void pv_rejoin_conf_key(const char *pgdata, char *out, size_t size)
{
	size_t o = 0;
	for (const char *c = pgdata; *c && o + 1 < size; c++)
		out[o++] =
		    (isalnum((unsigned char)*c) || *c == '.' || *c == '_' || *c == '-') ? *c : '_';
	if (size)
		out[o] = '\0';
}

void pv_rejoin_tail(const char *text, int lines, char *out, size_t size)
{
	const char *s = text ? text : "";
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	size_t start = n;
	for (int k = 0; start > 0; start--)
		if (s[start - 1] == '\n' && ++k == lines)
			break;
	size_t o = 0;
	for (size_t i = start; i < n && o + 1 < size; i++)
		out[o++] = (s[i] == '\n' || s[i] == '\r' || s[i] == '\t') ? ' ' : s[i];
	if (size)
		out[o] = '\0';
}

/* ---------------------------------------------------------------- plan */

void pv_rejoin_plan(const PvRejoinPlanIn *in, PvBuf *b)
{
	pv_buf_printf(
	    b,
	    "stop: pg_ctl stop -D %s -m fast, then -m immediate (not running is fine); "
	    "pg_controldata; save %s/*.conf in ~/.pgvigil-rejoin on the node's host (%s)\n",
	    in->pgdata, in->pgdata, in->where);
	pv_buf_printf(b, "checkpoint: CHECKPOINT on the primary %s\n", in->primary);
	pv_buf_printf(b, "rewind: pg_rewind --target-pgdata=%s --source-server=\"%s\" -R\n",
	              in->pgdata, in->source);
	pv_buf_printf(b,
	              "basebackup (only if pg_rewind cannot work): mv %s %s (kept); "
	              "pg_basebackup -D %s -d \"%s\" -X stream -c fast -R\n",
	              in->pgdata, in->aside, in->pgdata, in->source);
	pv_buf_printf(b,
	              "configure: the saved *.conf back; standby.signal; postgresql.auto.conf: "
	              "primary_conninfo = \"%s\", the copied primary_slot_name removed\n",
	              in->primary_conninfo);
	pv_buf_printf(b, "start: pg_ctl start -D %s -w -t %d -l %s/%s\n", in->pgdata,
	              PV_REJOIN_START_TIMEOUT_S, in->pgdata, PV_REJOIN_START_LOG);
	pv_buf_printf(b,
	              "verify: %s in recovery, pg_stat_wal_receiver streaming from %s (%s port %d) "
	              "within %d s\n",
	              in->node, in->primary, in->primary_host, in->primary_port,
	              PV_REJOIN_VERIFY_TIMEOUT_MS / 1000);
}

/* ---------------------------------------------------------------- primary_conninfo */

/* s (key='value' pairs as io/ writes them) without the pairs whose key is key. */
static void drop_key(char *s, const char *key)
{
	size_t kl = strlen(key);
	char *p = s;
	while (*p) {
		char *start = p;
		while (*p == ' ')
			p++;
		char *k = p;
		p += strcspn(p, "=");
		bool match = (size_t)(p - k) == kl && strncmp(k, key, kl) == 0;
		if (*p == '=')
			p++;
		if (*p == '\'') {
			for (p++; *p && *p != '\''; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p == '\'')
				p++;
		} else {
			p += strcspn(p, " ");
		}
		if (match) {
			memmove(start, p, strlen(p) + 1);
			p = start;
		}
	}
	while (*s == ' ')
		memmove(s, s + 1, strlen(s));
}

PvStatus pv_rejoin_primary_conninfo(const char *base, const char *host, int port, const char *node,
                                    bool keep_password, char **out, bool *dropped, PvError *err)
{
	char *retargeted = NULL, *clean = NULL, *password = NULL;
	*out = NULL;
	*dropped = false;
	PvStatus st = pv_pg_conninfo_retarget(base, host, port, &retargeted, err);
	if (st == PV_OK)
		st = pv_pgcmd_conninfo(retargeted, node, &clean, &password, err);
	if (st == PV_OK) {
		drop_key(clean, "dbname");
		PvBuf b = {0};
		pv_buf_puts(&b, clean);
		if (password && keep_password) {
			pv_buf_puts(&b, " password='");
			for (const char *c = password; *c; c++) {
				if (*c == '\'' || *c == '\\')
					pv_buf_putc(&b, '\\');
				pv_buf_putc(&b, *c);
			}
			pv_buf_putc(&b, '\'');
		}
		*dropped = password && !keep_password;
		*out = pv_buf_steal(&b);
	}
	free(retargeted);
	free(clean);
	free(password);
	return st;
}
