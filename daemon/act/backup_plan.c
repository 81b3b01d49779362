/*
 * backup_plan: the pure parts of act/backup (no I/O): backup_label and backup_manifest parsing,
 * retention's choice, the backup for a restore target, a restored copy's recovery settings,
 * backup.command templates.  Unit-tested as tables in test_backup.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/backup.h"
#include "core/cluster.h"

/* ---------------------------------------------------------------- parsing */

/* The text after "KEY: " on its own line, up to the end of the line, into out. */
static bool label_field(const char *text, const char *key, char *out, size_t size)
{
	size_t kn = strlen(key);
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (len > kn + 1 && strncmp(line, key, kn) == 0 && line[kn] == ':' &&
		    line[kn + 1] == ' ') {
			size_t v = len - kn - 2;
			if (v >= size)
				v = size - 1;
			memcpy(out, line + kn + 2, v);
			out[v] = '\0';
			return true;
		}
		line = nl ? nl + 1 : NULL;
	}
	return false;
}

bool pv_backup_label_parse(const char *text, PvBackupLabel *out)
{
	char v[256], lsn[64], file[64];
	memset(out, 0, sizeof *out);
	if (!text)
		return false;
	/* START WAL LOCATION: 0/2000028 (file 000000010000000000000002) */
	if (!label_field(text, "START WAL LOCATION", v, sizeof v) ||
	    sscanf(v, "%63s (file %63[0-9A-F])", lsn, file) != 2 || strlen(file) != 24 ||
	    !pv_lsn_parse(lsn, &out->start_lsn))
		return false;
	snprintf(out->start_wal, sizeof out->start_wal, "%s", file);
	if (!label_field(text, "CHECKPOINT LOCATION", v, sizeof v) ||
	    !pv_lsn_parse(v, &out->checkpoint_lsn))
		return false;
	if (!label_field(text, "START TIMELINE", v, sizeof v))
		return false;
	char *end;
	long tl = strtol(v, &end, 10);
	if (end == v || *end || tl < 1 || tl > 0x7fffffff)
		return false;
	out->timeline = (int)tl;
	label_field(text, "LABEL", out->label, sizeof out->label);
	label_field(text, "START TIME", out->start_time, sizeof out->start_time);
	return true;
}

/* {"WAL-Ranges": [...]} cut out of a manifest's text (its end, as tail -c gives it), or NULL. */
static json_t *wal_ranges_only(const char *text)
{
	const char *k = text ? strstr(text, "\"WAL-Ranges\"") : NULL;
	const char *close = k ? strchr(k, ']') : NULL;
	if (!close)
		return NULL;
	char *obj = pv_xasprintf("{%.*s}", (int)(close + 1 - k), k);
	json_error_t jerr;
	json_t *m = json_loads(obj, 0, &jerr);
	free(obj);
	return m;
}

bool pv_backup_manifest_wal(const char *text, int *timeline, uint64_t *start, uint64_t *end)
{
	json_error_t jerr;
	json_t *m = text ? json_loads(text, 0, &jerr) : NULL;
	if (!m)
		m = wal_ranges_only(text);
	json_t *ranges = json_object_get(m, "WAL-Ranges");
	bool ok = json_is_array(ranges) && json_array_size(ranges) > 0;
	if (ok) {
		json_t *first = json_array_get(ranges, 0);
		json_t *last = json_array_get(ranges, json_array_size(ranges) - 1);
		const char *s = json_string_value(json_object_get(first, "Start-LSN"));
		const char *e = json_string_value(json_object_get(last, "End-LSN"));
		json_t *tl = json_object_get(last, "Timeline");
		ok = s && e && json_is_integer(tl) && json_integer_value(tl) > 0 &&
		     pv_lsn_parse(s, start) && pv_lsn_parse(e, end);
		if (ok)
			*timeline = (int)json_integer_value(tl);
	}
	json_decref(m);
	return ok;
}

/* ---------------------------------------------------------------- retention and choice */

size_t pv_backup_retention(const PvBackupEntry *e, size_t n, int keep, bool *del)
{
	long newest_good = -1, newest_verified = -1;
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		del[i] = false;
		if (pv_backup_status_good(e[i].status))
			newest_good = (long)i;
		if (e[i].status == PV_BACKUP_VERIFIED)
			newest_verified = (long)i;
	}
	int kept = 0;
	for (size_t k = n; k-- > 0;) {
		if (pv_backup_status_good(e[k].status)) {
			if (kept < keep)
				kept++;
			else if ((long)k != newest_verified)
				del[k] = true;
		} else if ((long)k < newest_good) {
			del[k] = true;
		}
		count += del[k];
	}
	return count;
}

long pv_backup_choose(const PvBackupEntry *e, size_t n, int timeline, uint64_t lsn,
                      int64_t before_wall_us)
{
	for (size_t k = n; k-- > 0;) {
		const PvBackupEntry *b = &e[k];
		if (b->status != PV_BACKUP_VERIFIED)
			continue;
		if (before_wall_us > 0 &&
		    (b->start_wall_us <= 0 || b->start_wall_us >= before_wall_us))
			continue;
		if (timeline > 0 && b->timeline > timeline)
			continue;
		if (lsn && (timeline <= 0 || b->timeline == timeline) &&
		    (b->stop_lsn == 0 || b->stop_lsn > lsn))
			continue;
		return (long)k;
	}
	return -1;
}

/* ---------------------------------------------------------------- recovery settings */

void pv_backup_conf_quote(PvBuf *b, const char *s)
{
	pv_buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			pv_buf_puts(b, "''");
		else if (*s == '\\')
			pv_buf_puts(b, "\\\\");
		else
			pv_buf_putc(b, *s);
	}
	pv_buf_putc(b, '\'');
}

static void conf_line(PvBuf *b, const char *name, const char *value)
{
	pv_buf_printf(b, "%s = ", name);
	pv_backup_conf_quote(b, value);
	pv_buf_putc(b, '\n');
}

void pv_backup_render_recovery(const PvRecoverySettings *s, PvBuf *out)
{
	char num[32];
	pv_buf_printf(out, "\n# --- pgvigil restore, %s: %s ---\n", s->stamp ? s->stamp : "",
	              s->origin ? s->origin : "");
	pv_buf_puts(out, "# a drill copy: it never archives, replicates or listens on TCP\n");
	conf_line(out, "archive_mode", "off");
	conf_line(out, "primary_conninfo", "");
	conf_line(out, "primary_slot_name", "");
	conf_line(out, "synchronous_standby_names", "");
	conf_line(out, "listen_addresses", "");
	conf_line(out, "cluster_name", "pgvigil-restore");
	conf_line(out, "hot_standby", "on");
	if (s->port > 0) {
		snprintf(num, sizeof num, "%d", s->port);
		conf_line(out, "port", num);
	}
	if (s->socket_dir)
		conf_line(out, "unix_socket_directories", s->socket_dir);
	if (s->restore_command && *s->restore_command)
		conf_line(out, "restore_command", s->restore_command);
	if (s->target_name)
		conf_line(out, "recovery_target_name", s->target_name);
	else if (s->target_lsn)
		conf_line(out, "recovery_target_lsn", s->target_lsn);
	else if (s->target_time)
		conf_line(out, "recovery_target_time", s->target_time);
	if (s->target_timeline > 0) {
		snprintf(num, sizeof num, "%d", s->target_timeline);
		conf_line(out, "recovery_target_timeline", num);
	} else {
		conf_line(out, "recovery_target_timeline", "latest");
	}
	if (s->target_name || s->target_lsn || s->target_time) {
		conf_line(out, "recovery_target_inclusive", "on");
		conf_line(out, "recovery_target_action", s->action ? s->action : "pause");
	}
}

/* ---------------------------------------------------------------- backup.command */

void pv_backup_argv_free(char **argv)
{
	for (char **a = argv; a && *a; a++)
		free(*a);
	free(argv);
}

PvStatus pv_backup_command_argv(const char *tmpl, const PvBackupVars *v, char ***argv, PvError *err)
{
	char **words = NULL;
	size_t n = 0;
	PvBuf w = {0};
	bool in_word = false;
	char quote = 0;
	PvStatus st = PV_OK;

	for (const char *p = tmpl;; p++) {
		char c = *p;
		if (c == '\0' || (!quote && (c == ' ' || c == '\t'))) {
			if (quote) {
				st = pv_error_set(err, PV_ERR_CONFIG,
				                  "backup.command: unterminated %c quote", quote);
				goto out;
			}
			if (in_word) {
				words = pv_xrealloc(words, (n + 2) * sizeof *words);
				words[n++] = pv_buf_steal(&w);
				words[n] = NULL;
				in_word = false;
			}
			if (c == '\0')
				break;
			continue;
		}
		in_word = true;
		if (quote && c == quote) {
			quote = 0;
			continue;
		}
		if (!quote && (c == '\'' || c == '"')) {
			quote = c;
			continue;
		}
		if (c != '%') {
			pv_buf_putc(&w, c);
			continue;
		}
		char k = *++p;
		switch (k) {
		case 'd':
			pv_buf_puts(&w, v->dir ? v->dir : "");
			break;
		case 'l':
			pv_buf_puts(&w, v->label ? v->label : "");
			break;
		case 'c':
			pv_buf_puts(&w, v->conninfo ? v->conninfo : "");
			break;
		case 'h':
			pv_buf_puts(&w, v->host ? v->host : "");
			break;
		case 'p':
			pv_buf_printf(&w, "%d", v->port);
			break;
		case 'n':
			pv_buf_puts(&w, v->node ? v->node : "");
			break;
		case '%':
			pv_buf_putc(&w, '%');
			break;
		case '\0':
			st = pv_error_set(err, PV_ERR_CONFIG,
			                  "backup.command: a lone %% at the end");
			goto out;
		default:
			st = pv_error_set(
			    err, PV_ERR_CONFIG,
			    "backup.command: unknown placeholder %%%c (known: %%d %%l %%c %%h "
			    "%%p %%n %%%%)",
			    k);
			goto out;
		}
	}
	if (n == 0)
		st = pv_error_set(err, PV_ERR_CONFIG, "backup.command is empty");
out:
	pv_buf_free(&w);
	if (st != PV_OK) {
		pv_backup_argv_free(words);
		words = NULL;
	}
	*argv = words;
	return st;
}

/* ---------------------------------------------------------------- facts of a finished copy */

void pv_backup_entry_facts(PvBackupEntry *e, const char *label_text, const char *manifest_text)
{
	PvBackupLabel bl;
	if (label_text && pv_backup_label_parse(label_text, &bl)) {
		e->start_lsn = bl.start_lsn;
		e->checkpoint_lsn = bl.checkpoint_lsn;
		e->timeline = bl.timeline;
		snprintf(e->start_wal, sizeof e->start_wal, "%s", bl.start_wal);
	}
	int tl;
	uint64_t s, end;
	if (manifest_text && pv_backup_manifest_wal(manifest_text, &tl, &s, &end)) {
		if (!e->start_lsn)
			e->start_lsn = s;
		e->stop_lsn = end;
		if (!e->timeline)
			e->timeline = tl;
	}
}
