/*
 * config: loads a libconfig file into a PvConfig by walking the option table (config_table.c).
 *
 * The walk visits every row for every group: a member with no row is an unknown setting, a
 * row with no member takes its default or, when required, is missing.  Problems are collected
 * with their file and line, sorted, and printed at the end; nothing stops at the first one.
 */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/redact.h"
#include "config/config_internal.h"

typedef struct {
	size_t file; /* index into PvLoad.files */
	unsigned line;
	size_t seq;
	char *msg;
} PvLoadError;

typedef struct {
	const char *path; /* the main file, as given */
	char *dir;        /* its directory: libconfig's include dir */
	const char *text; /* its contents */
	char **files;     /* display names, in order of first appearance; [0] is path */
	size_t nfiles;
	PvLoadError *errs;
	size_t nerrs, cap;
} PvLoad;

/* ---- messages ---- */

static char *quoted(const char *s)
{
	PvBuf b = {0};
	pv_config_put_quoted(&b, s);
	return pv_buf_steal(&b);
}

static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
		return "an integer";
	case CONFIG_TYPE_INT64:
		return "a 64-bit integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

static int expected_type(PvOptType t)
{
	switch (t) {
	case PV_OPT_GROUP:
		return CONFIG_TYPE_GROUP;
	case PV_OPT_LIST:
		return CONFIG_TYPE_LIST;
	case PV_OPT_INT:
		return CONFIG_TYPE_INT;
	default:
		return CONFIG_TYPE_STRING;
	}
}

/* The name to show for a file libconfig names: @include paths are relative to dir. */
static size_t file_index(PvLoad *l, const char *file)
{
	char *shown;
	if (!file || strcmp(file, l->path) == 0)
		return 0;
	if (file[0] == '/' || strcmp(l->dir, ".") == 0)
		shown = pv_xstrdup(file);
	else
		shown = pv_xasprintf("%s%s%s", l->dir, strcmp(l->dir, "/") == 0 ? "" : "/", file);
	for (size_t i = 0; i < l->nfiles; i++) {
		if (strcmp(l->files[i], shown) == 0) {
			free(shown);
			return i;
		}
	}
	l->files = pv_xrealloc(l->files, (l->nfiles + 1) * sizeof *l->files);
	l->files[l->nfiles] = shown;
	return l->nfiles++;
}

static void add_error_at(PvLoad *l, size_t file, unsigned line, const char *setting,
                         const char *fmt, va_list ap)
{
	PvBuf b = {0};
	pv_buf_printf(&b, "%s: ", setting);
	pv_buf_vprintf(&b, fmt, ap);
	if (l->nerrs == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->errs = pv_xrealloc(l->errs, l->cap * sizeof *l->errs);
	}
	l->errs[l->nerrs] = (PvLoadError){file, line, l->nerrs, pv_buf_steal(&b)};
	l->nerrs++;
}

/* Records "FILE:LINE: setting: problem", FILE and LINE those of the setting at (NULL: none). */
static void add_error(PvLoad *l, const config_setting_t *at, const char *setting, const char *fmt,
                      ...) PV_PRINTF(4, 5);
static void add_error(PvLoad *l, const config_setting_t *at, const char *setting, const char *fmt,
                      ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_error_at(l, file_index(l, at ? config_setting_source_file(at) : NULL),
	             at ? config_setting_source_line(at) : 0, setting, fmt, ap);
	va_end(ap);
}

static int error_cmp(const void *a, const void *b)
{
	const PvLoadError *x = a, *y = b;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void flush_errors(PvLoad *l, PvBuf *out)
{
	qsort(l->errs, l->nerrs, sizeof *l->errs, error_cmp);
	for (size_t i = 0; out && i < l->nerrs; i++) {
		const PvLoadError *e = &l->errs[i];
		if (e->line)
			pv_buf_printf(out, "%s:%u: %s\n", l->files[e->file], e->line, e->msg);
		else
			pv_buf_printf(out, "%s: %s\n", l->files[e->file], e->msg);
	}
}

/* ---- values ---- */

static char *join(const char *prefix, const char *name)
{
	return *prefix ? pv_xasprintf("%s.%s", prefix, name) : pv_xstrdup(name);
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool is_blank(const char *s)
{
	return s[strspn(s, " \t\n\r\f\v")] == '\0';
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n < PV_NAME_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/*
 * libpq quotes pieces of the input in its messages.  For a conninfo that holds a password the
 * message comes from the redacted string, and any quoted piece that is not a libpq keyword
 * becomes "..." (a mistyped password can end up outside the value redaction recognises).
 */
static char *scrub_libpq_message(const char *msg, bool secret)
{
	PvBuf b = {0};
	PQconninfoOption *known = secret ? PQconninfoParse("", NULL) : NULL;
	const char *p = msg;
	while (*p) {
		const char *q = strchr(p, '"');
		const char *e = q ? strchr(q + 1, '"') : NULL;
		if (!secret || !e) {
			pv_buf_puts(&b, p);
			break;
		}
		pv_buf_append(&b, p, (size_t)(q - p + 1));
		size_t n = (size_t)(e - q - 1);
		bool safe = n == 1 && q[1] == '=';
		for (PQconninfoOption *o = known; o && o->keyword && !safe; o++)
			safe = strlen(o->keyword) == n && strncmp(o->keyword, q + 1, n) == 0;
		if (safe)
			pv_buf_append(&b, q + 1, n);
		else
			pv_buf_puts(&b, "...");
		pv_buf_putc(&b, '"');
		p = e + 1;
	}
	if (known)
		PQconninfoFree(known);
	while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
		b.data[--b.len] = '\0';
	return pv_buf_steal(&b);
}

static void check_conninfo(PvLoad *l, const config_setting_t *m, const char *disp, const char *s,
                           const char *redacted)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(s, &msg);
	bool secret = strcmp(s, redacted) != 0;
	if (opts)
		goto out;
	if (secret) {
		PQfreemem(msg);
		msg = NULL;
		opts = PQconninfoParse(redacted, &msg);
		if (opts) {
			add_error(l, m, disp,
			          "invalid connection string (the error is in the password, "
			          "not shown)");
			goto out;
		}
	}
	if (msg) {
		char *clean = scrub_libpq_message(msg, secret);
		add_error(l, m, disp, "%s", clean);
		free(clean);
	} else {
		add_error(l, m, disp, "invalid connection string");
	}
out:
	if (opts)
		PQconninfoFree(opts);
	PQfreemem(msg);
}

static const char *string_source(const PvOption *src, const char *base)
{
	if (src->type == PV_OPT_NAME)
		return base + src->offset;
	return *(char *const *)(base + src->offset);
}

/* Stores a row's default into base. */
static void apply_default(const PvOption *o, char *base)
{
	switch (o->type) {
	case PV_OPT_INT:
		*(int *)(base + o->offset) = (int)strtol(o->def, NULL, 10);
		break;
	case PV_OPT_ENUM:
		*(int *)(base + o->offset) = o->en->parse(o->def);
		break;
	case PV_OPT_STRING:
		if (o->def_from) {
			const char *from = string_source(pv_option_find(o->def_from), base);
			if (from)
				*(char **)(base + o->offset) = pv_xasprintf("%s%s", from, o->def);
		} else {
			*(char **)(base + o->offset) = pv_xstrdup(o->def);
		}
		break;
	default:
		break;
	}
}

static void load_int(PvLoad *l, const PvOption *o, const config_setting_t *m, const char *disp,
                     char *base)
{
	const char *lit = pv_int_scan_overflow(m);
	int v = config_setting_get_int(m);
	if (lit)
		add_error(l, m, disp, "%s is out of range %d..%d", lit, o->min, o->max);
	else if (v < o->min || v > o->max)
		add_error(l, m, disp, "%d is out of range %d..%d", v, o->min, o->max);
	else
		*(int *)(base + o->offset) = v;
}

static void load_enum(PvLoad *l, const PvOption *o, const config_setting_t *m, const char *disp,
                      char *base)
{
	const char *s = config_setting_get_string(m);
	int v = o->en->parse(s);
	if (v >= 0) {
		*(int *)(base + o->offset) = v;
		return;
	}
	PvBuf want = {0};
	for (int i = 0; i < o->en->count; i++)
		pv_buf_printf(&want, "%s%s",
		              i == 0                  ? ""
		              : i == o->en->count - 1 ? " or "
		                                      : ", ",
		              o->en->name(i));
	char *q = quoted(s);
	add_error(l, m, disp, "unknown value %s (expected %s)", q, want.data);
	free(q);
	pv_buf_free(&want);
}

static void load_string(PvLoad *l, const PvOption *o, const config_setting_t *m, const char *disp,
                        char *base)
{
	const char *s = config_setting_get_string(m);
	size_t n = strlen(s);
	char *q = NULL;

	if (has_control(s)) {
		add_error(l, m, disp, "contains a control character");
	} else if (o->type == PV_OPT_NAME) {
		if (n == 0)
			add_error(l, m, disp, "must not be empty");
		else if (n >= PV_NAME_MAX)
			add_error(l, m, disp, "name %s is too long (at most %d characters)",
			          q = quoted(s), PV_NAME_MAX - 1);
		else if (!valid_name(s))
			add_error(l, m, disp, "invalid name %s (allowed: A-Z a-z 0-9 _ . -)",
			          q = quoted(s));
		else
			pv_strlcpy(base + o->offset, s, PV_NAME_MAX);
	} else if (o->type == PV_OPT_CONNINFO) {
		if (is_blank(s)) {
			add_error(l, m, disp, "must not be empty");
		} else {
			char *redacted = pv_redact_conninfo(s);
			check_conninfo(l, m, disp, s, redacted);
			*(char **)(base + o->offset) = pv_xstrdup(s);
			*(char **)(base + o->aux) = redacted;
		}
	} else if (n < (size_t)o->min) {
		add_error(l, m, disp, "must not be empty");
	} else if (n > (size_t)o->max) {
		add_error(l, m, disp, "is too long (%zu bytes, at most %d)", n, o->max);
	} else {
		*(char **)(base + o->offset) = pv_xstrdup(s);
	}
	free(q);
}

static void load_children(PvLoad *l, const config_setting_t *grp, const char *tpath,
                          const char *dpath, char *base);

static void check_unique(PvLoad *l, const PvOption *o, const config_setting_t *m, const char *disp,
                         char *base, int count)
{
	const PvOption *u = pv_option_find(o->unique);
	const char *leaf = pv_option_leaf(u);
	char *arr = base + o->offset;
	for (int i = 1; i < count; i++) {
		const char *vi = arr + (size_t)i * o->elem_size + u->offset;
		if (!*vi)
			continue;
		for (int j = 0; j < i; j++) {
			const char *vj = arr + (size_t)j * o->elem_size + u->offset;
			if (strcmp(vi, vj) != 0)
				continue;
			const config_setting_t *si = config_setting_get_member(
			    config_setting_get_elem(m, (unsigned)i), leaf);
			const config_setting_t *sj = config_setting_get_member(
			    config_setting_get_elem(m, (unsigned)j), leaf);
			char *d = pv_xasprintf("%s[%d].%s", disp, i, leaf);
			add_error(l, si, d, "duplicate %s name \"%s\" (first at line %u)", o->noun,
			          vi, config_setting_source_line(sj));
			free(d);
			break;
		}
	}
}

static void load_list(PvLoad *l, const PvOption *o, const config_setting_t *m, const char *disp,
                      char *base)
{
	int n = config_setting_length(m);
	if (n < o->min) {
		if (o->min == 1)
			add_error(l, m, disp, "at least one %s is required", o->noun);
		else
			add_error(l, m, disp, "at least %d %ss are required", o->min, o->noun);
	} else if (n > o->max) {
		add_error(l, m, disp, "at most %d %ss are allowed, got %d", o->max, o->noun, n);
		n = o->max;
	}
	*(int *)(base + o->aux) = n;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
		char *d = pv_xasprintf("%s[%d]", disp, i);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			add_error(l, e, d, "expected a group, got %s",
			          type_name(config_setting_type(e)));
		else
			load_children(l, e, o->path, d,
			              base + o->offset + (size_t)i * o->elem_size);
		free(d);
	}
	if (o->unique)
		check_unique(l, o, m, disp, base, n);
}

static void load_row(PvLoad *l, const PvOption *o, const config_setting_t *grp,
                     const config_setting_t *m, const char *disp, char *base)
{
	if (!m) {
		if (o->flags & PV_OPT_REQUIRED)
			add_error(l, grp, disp, "missing required setting");
		else if (o->type == PV_OPT_GROUP && !(o->flags & PV_OPT_PRESENCE))
			load_children(l, NULL, o->path, disp, base);
		else
			apply_default(o, base);
		return;
	}
	if (config_setting_type(m) != expected_type(o->type)) {
		add_error(l, m, disp, "expected %s, got %s", type_name(expected_type(o->type)),
		          type_name(config_setting_type(m)));
		return;
	}
	switch (o->type) {
	case PV_OPT_GROUP:
		if (o->flags & PV_OPT_PRESENCE)
			*(bool *)(base + o->aux) = true;
		load_children(l, m, o->path, disp, base);
		break;
	case PV_OPT_LIST:
		load_list(l, o, m, disp, base);
		break;
	case PV_OPT_INT:
		load_int(l, o, m, disp, base);
		break;
	case PV_OPT_ENUM:
		load_enum(l, o, m, disp, base);
		break;
	default:
		load_string(l, o, m, disp, base);
		break;
	}
}

/*
 * Loads the rows under table path tpath from grp (NULL: absent, defaults only) into base;
 * dpath is how the group is shown in messages ("cluster.nodes[1]").
 */
static void load_children(PvLoad *l, const config_setting_t *grp, const char *tpath,
                          const char *dpath, char *base)
{
	int n = grp ? config_setting_length(grp) : 0;
	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(grp, (unsigned)i);
		char *path = join(tpath, config_setting_name(m));
		if (!pv_option_find(path)) {
			char *d = join(dpath, config_setting_name(m));
			add_error(l, m, d, "unknown setting");
			free(d);
		}
		free(path);
	}
	for (size_t i = 0; i < pv_noptions; i++) {
		const PvOption *o = &pv_options[i];
		if (!pv_option_is_child(o, tpath))
			continue;
		const char *leaf = pv_option_leaf(o);
		char *d = join(dpath, leaf);
		load_row(l, o, grp, grp ? config_setting_get_member(grp, leaf) : NULL, d, base);
		free(d);
	}
}

/* ---- settings that depend on each other ---- */

/* backup.host names a node with an ssh group; backup.directory is then an absolute path there. */
static void check_backup_host(PvLoad *l, const config_t *lc, PvConfig *cfg)
{
	if (!cfg->backup_host || !*cfg->backup_host)
		return;
	const config_setting_t *at = config_lookup(lc, "backup.host");
	int node = pv_config_node_index(cfg, cfg->backup_host);
	if (node < 0) {
		add_error(l, at, "backup.host", "no node \"%s\" in cluster.nodes",
		          cfg->backup_host);
		return;
	}
	if (!cfg->nodes[node].ssh.enabled) {
		add_error(
		    l, at, "backup.host",
		    "node %s has no ssh group: pgvigil cannot reach its host (give it one, or "
		    "leave backup.host empty for backups on this host)",
		    cfg->backup_host);
		return;
	}
	if (cfg->backup_method == PV_BACKUP_COMMAND)
		add_error(l, at, "backup.host",
		          "backup.method \"command\" runs on this host: it cannot be combined with "
		          "backup.host");
	const config_setting_t *dir = config_lookup(lc, "backup.directory");
	if (!cfg->backup_directory || !*cfg->backup_directory)
		add_error(l, at, "backup.directory",
		          "required with backup.host: the directory on %s's host",
		          cfg->backup_host);
	else if (cfg->backup_directory[0] != '/')
		add_error(l, dir, "backup.directory",
		          "must be an absolute path with backup.host (it is on %s's host)",
		          cfg->backup_host);
}

/* ---- files ---- */

static char *read_text(const char *path, int *err)
{
	PvBuf b = {0};
	char chunk[8192];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*err = errno;
		return NULL;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		*err = EISDIR;
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = errno;
			close(fd);
			pv_buf_free(&b);
			return NULL;
		}
		if (n == 0)
			break;
		pv_buf_append(&b, chunk, (size_t)n);
	}
	close(fd);
	return pv_buf_steal(&b);
}

/* For the integer scan: the text of a file as libconfig names it. */
static char *scan_read(void *arg, const char *file)
{
	PvLoad *l = arg;
	size_t i = file_index(l, *file ? file : NULL);
	char *text = NULL;
	if (i == 0)
		return pv_xstrdup(l->text);
	if (pv_file_read_all(l->files[i], &text, NULL, NULL) != PV_OK)
		return NULL;
	return text;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return pv_xstrdup(".");
	if (slash == path)
		return pv_xstrdup("/");
	char *d = pv_xstrdup(path);
	d[slash - path] = '\0';
	return d;
}

PvStatus pv_config_load(const char *path, PvConfig **out, PvBuf *errors)
{
	PvLoad l = {.path = path};
	PvIntScan scan = {0};
	PvConfig *cfg = NULL;
	PvStatus st = PV_ERR_CONFIG;
	config_t lc;
	bool lc_init = false;
	char *text = NULL;
	int err = 0;

	l.files = pv_xmalloc(sizeof *l.files);
	l.files[0] = pv_xstrdup(path);
	l.nfiles = 1;
	l.dir = dir_of(path);

	text = read_text(path, &err);
	if (!text) {
		if (errors)
			pv_buf_printf(errors, "%s: cannot read: %s\n", path, strerror(err));
		goto out;
	}
	l.text = text;

	config_init(&lc);
	lc_init = true;
	config_set_include_dir(&lc, l.dir);
	if (!config_read_file(&lc, path)) {
		size_t file = file_index(&l, config_error_file(&lc)); /* may grow l.files */
		if (errors && config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			pv_buf_printf(errors, "%s: cannot read: %s\n", path,
			              config_error_text(&lc));
		else if (errors)
			pv_buf_printf(errors, "%s:%d: %s\n", l.files[file], config_error_line(&lc),
			              config_error_text(&lc));
		goto out;
	}
	pv_int_scan(&scan, config_root_setting(&lc), scan_read, &l);

	cfg = pv_xcalloc(1, sizeof *cfg);
	cfg->path = pv_xstrdup(path);
	load_children(&l, config_root_setting(&lc), "", "", (char *)cfg);
	if (!l.nerrs)
		check_backup_host(&l, &lc, cfg);
	if (l.nerrs) {
		flush_errors(&l, errors);
		goto out;
	}
	*out = cfg;
	cfg = NULL;
	st = PV_OK;
out:
	pv_config_free(cfg);
	pv_int_scan_free(&scan);
	if (lc_init)
		config_destroy(&lc);
	free(text);
	for (size_t i = 0; i < l.nerrs; i++)
		free(l.errs[i].msg);
	free(l.errs);
	for (size_t i = 0; i < l.nfiles; i++)
		free(l.files[i]);
	free(l.files);
	free(l.dir);
	return st;
}
