/*
 * backup_catalog: the catalog files of backup.directory (LABEL.json records and the
 * directories beside them), backup locations, PostgreSQL's programs (see backup.h).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "act/backup.h"
#include "common/fileio.h"
#include "core/cluster.h"

static const char *const status_names[] = {"verified", "unverified", "failed", "partial",
                                           "incomplete"};

const char *pv_backup_status_name(PvBackupStatus s)
{
	return ((int)s >= 0 && (size_t)s < sizeof status_names / sizeof status_names[0])
	           ? status_names[s]
	           : "unknown";
}

int pv_backup_status_parse(const char *name)
{
	for (size_t i = 0; name && i < sizeof status_names / sizeof status_names[0]; i++)
		if (strcmp(name, status_names[i]) == 0)
			return (int)i;
	return -1;
}

bool pv_backup_status_good(PvBackupStatus s)
{
	return s == PV_BACKUP_VERIFIED || s == PV_BACKUP_UNVERIFIED;
}

/* ---------------------------------------------------------------- locations and programs */

char *pv_backup_directory(const PvConfig *cfg)
{
	if (cfg->backup_directory && *cfg->backup_directory)
		return pv_xstrdup(cfg->backup_directory);
	const char *j = cfg->journal_path;
	const char *slash = strrchr(j, '/');
	if (!slash)
		return pv_xstrdup("backups");
	if (slash == j)
		return pv_xstrdup("/backups");
	return pv_xasprintf("%.*s/backups", (int)(slash - j), j);
}

static bool executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

PvStatus pv_backup_program(const char *bin_dir, const char *name, char *out, size_t size,
                           PvError *err)
{
	if (bin_dir && *bin_dir) {
		snprintf(out, size, "%s/%s", bin_dir, name);
		if (executable(out))
			return PV_OK;
		return pv_error_set(err, PV_ERR_NOT_FOUND,
		                    "%s: not found or not executable (backup.pg_bin_dir)", out);
	}
	const char *path = getenv("PATH");
	char *copy = pv_xstrdup(path && *path ? path : "/usr/bin:/bin");
	bool found = false;
	for (char *save = NULL, *d = strtok_r(copy, ":", &save); d && !found;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(out, size, "%s/%s", *d ? d : ".", name);
		found = executable(out);
	}
	free(copy);
	if (found)
		return PV_OK;
	/* Debian and Ubuntu keep the server's programs out of PATH */
	DIR *dir = opendir("/usr/lib/postgresql");
	long best = -1;
	if (dir) {
		for (struct dirent *de; (de = readdir(dir)) != NULL;) {
			char *end;
			long v = strtol(de->d_name, &end, 10);
			if (end == de->d_name || *end || v <= best)
				continue;
			char p[512];
			snprintf(p, sizeof p, "/usr/lib/postgresql/%ld/bin/%s", v, name);
			if (executable(p))
				best = v;
		}
		closedir(dir);
	}
	if (best >= 0) {
		snprintf(out, size, "/usr/lib/postgresql/%ld/bin/%s", best, name);
		return PV_OK;
	}
	return pv_error_set(
	    err, PV_ERR_NOT_FOUND,
	    "%s not found in PATH nor in /usr/lib/postgresql/*/bin (set backup.pg_bin_dir)", name);
}

char *pv_backup_restore_command(const PvConfig *cfg)
{
	if (cfg->backup_restore_command && *cfg->backup_restore_command)
		return pv_xstrdup(cfg->backup_restore_command);
	if (cfg->backup_archive_dir && *cfg->backup_archive_dir)
		return pv_xasprintf("cp \"%s/%%f\" \"%%p\"", cfg->backup_archive_dir);
	return NULL;
}

PvStatus pv_backup_mkdirs(const char *path, PvError *err)
{
	char *p = pv_xstrdup(path);
	PvStatus st = PV_OK;
	for (char *s = p + 1;; s++) {
		bool last = *s == '\0';
		if (*s != '/' && !last)
			continue;
		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			st = pv_error_set(err, PV_ERR_IO, "%s: cannot create directory: %s", p,
			                  strerror(errno));
			break;
		}
		if (last)
			break;
		*s = '/';
	}
	struct stat sb;
	if (st == PV_OK && (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)))
		st = pv_error_set(err, PV_ERR_IO, "%s: not a directory", path);
	free(p);
	return st;
}

static int64_t tree_bytes;

static int tree_add(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F && S_ISREG(sb->st_mode))
		tree_bytes += (int64_t)sb->st_size;
	return 0;
}

PvStatus pv_backup_tree_size(const char *path, int64_t *bytes, PvError *err)
{
	tree_bytes = 0;
	if (nftw(path, tree_add, 32, FTW_PHYS) != 0)
		return pv_error_set(err, PV_ERR_IO, "%s: cannot walk: %s", path, strerror(errno));
	*bytes = tree_bytes;
	return PV_OK;
}

static bool exists(const char *dir, const char *label, const char *suffix)
{
	char p[4096];
	struct stat st;
	snprintf(p, sizeof p, "%s/%s%s", dir, label, suffix);
	return lstat(p, &st) == 0;
}

void pv_backup_new_label(const char *dir, int64_t wall_us, char *out, size_t size)
{
	static const char *const suffixes[] = {"", ".partial", ".failed", ".deleting", ".json"};
	char base[32];
	time_t sec = (time_t)(wall_us / 1000000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	strftime(base, sizeof base, "%Y%m%dT%H%M%SZ", &tm);
	for (int n = 1;; n++) {
		if (n == 1)
			snprintf(out, size, "%s", base);
		else
			snprintf(out, size, "%s-%d", base, n);
		bool taken = false;
		for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0] && !taken; i++)
			taken = exists(dir, out, suffixes[i]);
		if (!taken)
			return;
	}
}

/* "YYYYMMDDTHHMMSSZ[-N]" -> microseconds; 0 when the label is not one. */
static int64_t label_wall_us(const char *label)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(label, "%Y%m%dT%H%M%SZ", &tm);
	if (!end || (*end && *end != '-'))
		return 0;
	return (int64_t)timegm(&tm) * 1000000;
}

/* ---------------------------------------------------------------- catalog files */

static void str_or_null(PvJson *j, const char *key, const char *s)
{
	pv_json_str(j, key, s && *s ? s : NULL);
}

void pv_backup_entry_json(PvJson *j, const char *key, const PvBackupEntry *e)
{
	pv_json_obj_open(j, key);
	pv_json_str(j, "label", e->label);
	pv_json_str(j, "status", pv_backup_status_name(e->status));
	pv_json_bool(j, "verified", e->status == PV_BACKUP_VERIFIED);
	str_or_null(j, "method", e->method);
	str_or_null(j, "trigger", e->trigger);
	str_or_null(j, "incident", e->incident);
	str_or_null(j, "node", e->node);
	str_or_null(j, "source", e->source);
	str_or_null(j, "start_ts", e->start_ts);
	str_or_null(j, "stop_ts", e->stop_ts);
	pv_json_lsn(j, "start_lsn", e->start_lsn);
	pv_json_lsn(j, "stop_lsn", e->stop_lsn);
	pv_json_lsn(j, "checkpoint_lsn", e->checkpoint_lsn);
	if (e->timeline)
		pv_json_int(j, "timeline", e->timeline);
	else
		pv_json_null(j, "timeline");
	str_or_null(j, "start_wal", e->start_wal);
	str_or_null(j, "system_identifier", e->system_id);
	if (e->size_bytes >= 0)
		pv_json_int(j, "size_bytes", e->size_bytes);
	else
		pv_json_null(j, "size_bytes");
	pv_json_int(j, "duration_ms", e->duration_ms);
	pv_json_int(j, "copy_ms", e->copy_ms);
	if (e->verify_ms >= 0)
		pv_json_int(j, "verify_ms", e->verify_ms);
	else
		pv_json_null(j, "verify_ms");
	str_or_null(j, "error", e->error);
	pv_json_obj_close(j);
}

static void get_str(json_t *o, const char *key, char *out, size_t size)
{
	const char *s = json_string_value(json_object_get(o, key));
	snprintf(out, size, "%s", s ? s : "");
}

static int64_t get_int(json_t *o, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static uint64_t get_lsn(json_t *o, const char *key)
{
	uint64_t v = 0;
	const char *s = json_string_value(json_object_get(o, key));
	if (!s || !pv_lsn_parse(s, &v))
		return 0;
	return v;
}

static bool valid_label(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n < PV_BACKUP_LABEL_MAX && s[0] != '.' &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* "2026-11-25T17:34:55.123456Z" -> microseconds, 0 when malformed. */
static int64_t ts_wall_us(const char *ts)
{
	struct tm tm;
	int us = 0;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return 0;
	if (*end == '.')
		us = atoi(end + 1);
	return (int64_t)timegm(&tm) * 1000000 + us;
}

bool pv_backup_entry_from_json(json_t *o, PvBackupEntry *e)
{
	memset(e, 0, sizeof *e);
	get_str(o, "label", e->label, sizeof e->label);
	if (!json_is_object(o) || !valid_label(e->label))
		return false;
	int s = pv_backup_status_parse(json_string_value(json_object_get(o, "status")));
	e->status = s < 0 ? PV_BACKUP_INCOMPLETE : (PvBackupStatus)s;
	get_str(o, "method", e->method, sizeof e->method);
	get_str(o, "trigger", e->trigger, sizeof e->trigger);
	get_str(o, "incident", e->incident, sizeof e->incident);
	get_str(o, "node", e->node, sizeof e->node);
	get_str(o, "source", e->source, sizeof e->source);
	get_str(o, "start_ts", e->start_ts, sizeof e->start_ts);
	get_str(o, "stop_ts", e->stop_ts, sizeof e->stop_ts);
	e->start_wall_us = e->start_ts[0] ? ts_wall_us(e->start_ts) : label_wall_us(e->label);
	e->start_lsn = get_lsn(o, "start_lsn");
	e->stop_lsn = get_lsn(o, "stop_lsn");
	e->checkpoint_lsn = get_lsn(o, "checkpoint_lsn");
	e->timeline = (int)get_int(o, "timeline", 0);
	get_str(o, "start_wal", e->start_wal, sizeof e->start_wal);
	get_str(o, "system_identifier", e->system_id, sizeof e->system_id);
	e->size_bytes = get_int(o, "size_bytes", -1);
	e->duration_ms = get_int(o, "duration_ms", 0);
	e->copy_ms = get_int(o, "copy_ms", 0);
	e->verify_ms = get_int(o, "verify_ms", -1);
	get_str(o, "error", e->error, sizeof e->error);
	return true;
}

PvStatus pv_backup_catalog_write(const char *dir, const PvBackupEntry *e, PvError *err)
{
	PvBuf b = {0};
	PvJson j;
	pv_json_init(&j, &b);
	pv_backup_entry_json(&j, NULL, e);
	pv_buf_putc(&b, '\n');
	char *path = pv_xasprintf("%s/%s.json", dir, e->label);
	PvStatus st = pv_file_write_atomic(path, b.data, b.len, 0600, err);
	free(path);
	pv_buf_free(&b);
	return st;
}

static const PvBackupItem *item_find(const PvBackupItem *it, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(it[i].name, name) == 0)
			return &it[i];
	return NULL;
}

static bool item_is_dir(const PvBackupItem *it, size_t n, const char *label, const char *suffix)
{
	char name[PV_BACKUP_LABEL_MAX + 16];
	snprintf(name, sizeof name, "%s%s", label, suffix);
	const PvBackupItem *i = item_find(it, n, name);
	return i && i->is_dir;
}

static bool ends_with(const char *s, const char *suffix, size_t *stem)
{
	size_t n = strlen(s), k = strlen(suffix);
	if (n <= k || strcmp(s + n - k, suffix) != 0)
		return false;
	*stem = n - k;
	return true;
}

static int entry_cmp(const void *a, const void *b)
{
	const PvBackupEntry *x = a, *y = b;
	if (x->start_wall_us != y->start_wall_us)
		return x->start_wall_us < y->start_wall_us ? -1 : 1;
	return strcmp(x->label, y->label);
}

static void add_entry(PvBackupEntry **list, size_t *n, const PvBackupEntry *e)
{
	*list = pv_xrealloc(*list, (*n + 1) * sizeof **list);
	(*list)[(*n)++] = *e;
}

void pv_backup_catalog_build(const PvBackupItem *items, size_t nitems, PvBackupEntry **out,
                             size_t *n)
{
	PvBackupEntry *list = NULL;
	size_t count = 0;
	/* catalog records first */
	for (size_t k = 0; k < nitems; k++) {
		const PvBackupItem *it = &items[k];
		size_t stem;
		if (it->is_dir || !it->json || !ends_with(it->name, ".json", &stem) ||
		    stem >= PV_BACKUP_LABEL_MAX)
			continue;
		PvBackupEntry e;
		json_error_t jerr;
		json_t *o = json_loads(it->json, 0, &jerr);
		bool ok = pv_backup_entry_from_json(o, &e) && strlen(e.label) == stem &&
		          strncmp(e.label, it->name, stem) == 0;
		json_decref(o);
		if (!ok)
			continue;
		if (item_is_dir(items, nitems, e.label, ""))
			snprintf(e.dir, sizeof e.dir, "%s", "");
		else if (item_is_dir(items, nitems, e.label, ".failed"))
			snprintf(e.dir, sizeof e.dir, "%s", ".failed");
		else {
			snprintf(e.dir, sizeof e.dir, "%s", "-");
			if (pv_backup_status_good(e.status))
				snprintf(e.error, sizeof e.error, "%s", "its directory is missing");
			e.status = PV_BACKUP_INCOMPLETE;
		}
		add_entry(&list, &count, &e);
	}
	/* then directories without a record */
	for (size_t k = 0; k < nitems; k++) {
		const PvBackupItem *it = &items[k];
		PvBackupEntry e;
		size_t stem = strlen(it->name);
		const char *suffix = "";
		if (!it->is_dir || it->name[0] == '.' || strstr(it->name, ".json") ||
		    strstr(it->name, ".tmp.") || ends_with(it->name, ".deleting", &stem))
			continue;
		if (ends_with(it->name, ".partial", &stem))
			suffix = ".partial";
		else if (ends_with(it->name, ".failed", &stem))
			suffix = ".failed";
		else
			stem = strlen(it->name);
		if (stem >= PV_BACKUP_LABEL_MAX)
			continue;
		memset(&e, 0, sizeof e);
		memcpy(e.label, it->name, stem);
		if (!valid_label(e.label) || pv_backup_catalog_find(list, count, e.label) >= 0)
			continue;
		e.status =
		    *suffix == '.' && suffix[1] == 'p' ? PV_BACKUP_PARTIAL : PV_BACKUP_INCOMPLETE;
		snprintf(e.dir, sizeof e.dir, "%s", suffix);
		snprintf(e.error, sizeof e.error, "%s",
		         e.status == PV_BACKUP_PARTIAL
		             ? "being written, or left by an interrupted backup"
		             : "no catalog record");
		e.start_wall_us = label_wall_us(e.label);
		e.size_bytes = -1;
		e.verify_ms = -1;
		add_entry(&list, &count, &e);
	}
	if (count)
		qsort(list, count, sizeof *list, entry_cmp);
	*out = list;
	*n = count;
}

void pv_backup_items_free(PvBackupItem *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].name);
		free(items[i].json);
	}
	free(items);
}

static void add_item(PvBackupItem **items, size_t *n, const char *name, bool is_dir, char *json)
{
	*items = pv_xrealloc(*items, (*n + 1) * sizeof **items);
	(*items)[(*n)++] = (PvBackupItem){pv_xstrdup(name), is_dir, json};
}

PvStatus pv_backup_catalog_list(const char *dir, PvBackupEntry **out, size_t *n, PvError *err)
{
	PvBackupItem *items = NULL;
	size_t count = 0;
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return PV_OK;
		return pv_error_set(err, PV_ERR_IO, "%s: cannot read backup directory: %s", dir,
		                    strerror(errno));
	}
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		size_t stem;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *path = pv_xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			add_item(&items, &count, de->d_name, true, NULL);
		} else if (ends_with(de->d_name, ".json", &stem)) {
			char *text = NULL;
			if (pv_file_read_all(path, &text, NULL, NULL) == PV_OK)
				add_item(&items, &count, de->d_name, false, text);
		}
		free(path);
	}
	closedir(d);
	pv_backup_catalog_build(items, count, out, n);
	pv_backup_items_free(items, count);
	return PV_OK;
}

long pv_backup_catalog_find(const PvBackupEntry *e, size_t n, const char *label)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].label, label) == 0)
			return (long)i;
	return -1;
}

char *pv_backup_entry_path(const char *dir, const PvBackupEntry *e)
{
	if (strcmp(e->dir, "-") == 0)
		return NULL;
	return pv_xasprintf("%s/%s%s", dir, e->label, e->dir);
}
