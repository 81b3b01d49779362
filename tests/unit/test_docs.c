/*
 * test_docs: the man pages say what the code does, for the things that can be listed.
 *
 *   - every journal event the code writes is in journal/events.h, and every event there has an
 *     entry in pgvigil-journal(5); the man page lists no event the code does not know.  Events
 *     written by the code are found by reading every daemon/MODULE/FILE.c: the event argument
 *     of the journaling calls in JOURNAL_CALLS, and ".event = " initializers;
 *   - every verb and subcommand of the verb table in daemon/pgvigil/main.c has an entry in
 *     pgvigil(1), and every "pgvigil VERB" command line in pgvigil-runbook(7) is a real verb;
 *   - every configuration setting is in pgvigil.conf(5) and in the sample conf/pgvigil.conf;
 *   - every metric and every hook environment variable is in pgvigild(8), and the variables
 *     are the ones hooks.c sets;
 *   - every .Xr to a pgvigil page points at a page in man/, and each page is mandoc -Tlint
 *     clean at -W warning (skipped without mandoc).
 *
 * Sources are read from PV_SOURCE_DIR (default "."), the repository root.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "config/config.h"
#include "core/cluster.h"
#include "journal/events.h"
#include "pgvigild/metrics.h"

/* Journaling calls and the index of their event argument (0-based). */
static const struct {
	const char *fn;
	int arg;
} JOURNAL_CALLS[] = {
    {"pv_daemon_journal_event", 1},
    {"journal_reason", 1},
    {"pv_journal_begin", 3},
    {"jevent", 2},
    {"journal_skip", 1},
};

/* The environment hooks.c sets (pgvigild(8), HOOKS). */
static const char *const HOOK_ENV[] = {
    "PGVIGIL_HOOK",        "PGVIGIL_EVENT",       "PGVIGIL_INCIDENT", "PGVIGIL_NODE",
    "PGVIGIL_OLD_PRIMARY", "PGVIGIL_NEW_PRIMARY", "PGVIGIL_CLUSTER",  "PGVIGIL_JOURNAL",
    "PGVIGIL_CONFIG",      "PGVIGIL_SEQ",
};

static const char *const MAN_PAGES[] = {"pgvigil.1", "pgvigil.conf.5", "pgvigil-journal.5",
                                        "pgvigil-runbook.7", "pgvigild.8"};

static char *source_path(const char *rel)
{
	const char *src = getenv("PV_SOURCE_DIR");
	return pv_xasprintf("%s/%s", src && *src ? src : ".", rel);
}

static char *read_source(const char *rel)
{
	char *path = source_path(rel);
	FILE *fp = fopen(path, "r");
	if (!fp)
		fail_msg("%s: %s", path, strerror(errno));
	PvBuf b = {0};
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
		pv_buf_append(&b, chunk, n);
	fclose(fp);
	free(path);
	return pv_buf_steal(&b);
}

/* Collected problems, reported all at once. */
static PvBuf problems;

static void problem(const char *fmt, ...) PV_PRINTF(1, 2);
static void problem(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pv_buf_vprintf(&problems, fmt, ap);
	va_end(ap);
	pv_buf_putc(&problems, '\n');
}

static int reset(void **state)
{
	(void)state;
	pv_buf_free(&problems);
	return 0;
}

static void report(void)
{
	if (problems.len) {
		char *msg = pv_buf_steal(&problems);
		print_error("%s", msg);
		free(msg);
		fail();
	}
	pv_buf_free(&problems);
}

/* ---------------------------------------------------------------- C source scanning */

/* Skips a string or character literal starting at p (the quote); returns past its end. */
static const char *skip_literal(const char *p)
{
	char q = *p++;
	while (*p && *p != q) {
		if (*p == '\\' && p[1])
			p++;
		p++;
	}
	return *p ? p + 1 : p;
}

/* Skips a comment at p if there is one. */
static const char *skip_comment(const char *p)
{
	if (p[0] == '/' && p[1] == '*') {
		const char *e = strstr(p + 2, "*/");
		return e ? e + 2 : p + strlen(p);
	}
	if (p[0] == '/' && p[1] == '/')
		return p + strcspn(p, "\n");
	return p;
}

/* The string literals in text[0..len) (escapes kept as written), appended to out. */
static void literals(const char *text, size_t len, char ***out, size_t *n)
{
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *c = skip_comment(p);
		if (c != p) {
			p = c;
			continue;
		}
		if (*p == '\'') {
			p = skip_literal(p);
			continue;
		}
		if (*p == '"') {
			const char *e = skip_literal(p);
			*out = pv_xrealloc(*out, (*n + 1) * sizeof **out);
			(*out)[(*n)++] = pv_xasprintf("%.*s", (int)(e - p - 2), p + 1);
			p = e;
			continue;
		}
		p++;
	}
}

/* The text of argument k of the call whose '(' is at open, or NULL. */
static bool call_arg(const char *open, int k, const char **start, size_t *len)
{
	int depth = 0, idx = 0;
	const char *p = open, *arg = open + 1;
	while (*p) {
		const char *c = skip_comment(p);
		if (c != p) {
			p = c;
			continue;
		}
		if (*p == '"' || *p == '\'') {
			p = skip_literal(p);
			continue;
		}
		if (*p == '(' || *p == '[' || *p == '{')
			depth++;
		else if (*p == ')' || *p == ']' || *p == '}') {
			if (--depth == 0) {
				if (idx == k) {
					*start = arg;
					*len = (size_t)(p - arg);
					return true;
				}
				return false;
			}
		} else if (*p == ',' && depth == 1) {
			if (idx == k) {
				*start = arg;
				*len = (size_t)(p - arg);
				return true;
			}
			idx++;
			arg = p + 1;
		}
		p++;
	}
	return false;
}

static bool ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* A copy of C source with its comments blanked out (literals kept). */
static char *uncomment(const char *text)
{
	char *copy = pv_xstrdup(text);
	for (char *p = copy; *p;) {
		if (*p == '"' || *p == '\'') {
			p = (char *)skip_literal(p);
			continue;
		}
		const char *e = skip_comment(p);
		if (e == p) {
			p++;
			continue;
		}
		for (; p < e; p++)
			if (*p != '\n')
				*p = ' ';
	}
	return copy;
}

/* Every event literal the file's journaling calls and .event initializers pass. */
static void file_events(const char *name, const char *source, char ***out, size_t *n, char ***where)
{
	char *text = uncomment(source);
	for (size_t f = 0; f < sizeof JOURNAL_CALLS / sizeof JOURNAL_CALLS[0]; f++) {
		size_t fl = strlen(JOURNAL_CALLS[f].fn);
		for (const char *p = strstr(text, JOURNAL_CALLS[f].fn); p;
		     p = strstr(p + fl, JOURNAL_CALLS[f].fn)) {
			if ((p > text && ident_char(p[-1])) || p[fl] != '(')
				continue;
			const char *a;
			size_t len;
			if (!call_arg(p + fl, JOURNAL_CALLS[f].arg, &a, &len))
				continue;
			size_t before = *n;
			literals(a, len, out, n);
			for (size_t i = before; i < *n; i++) {
				*where = pv_xrealloc(*where, *n * sizeof **where);
				(*where)[i] = pv_xasprintf("%s (%s)", name, JOURNAL_CALLS[f].fn);
			}
		}
	}
	for (const char *p = strstr(text, ".event = \""); p; p = strstr(p + 1, ".event = \"")) {
		const char *e = skip_literal(p + 9);
		*out = pv_xrealloc(*out, (*n + 1) * sizeof **out);
		(*out)[(*n)++] = pv_xasprintf("%.*s", (int)(e - p - 11), p + 10);
		*where = pv_xrealloc(*where, *n * sizeof **where);
		(*where)[*n - 1] = pv_xasprintf("%s (.event)", name);
	}
	free(text);
}

/* Calls fn on every daemon/<module>/<file>.c. */
static void each_source(void (*fn)(const char *rel, const char *text, void *arg), void *arg)
{
	char *root = source_path("daemon");
	DIR *d = opendir(root);
	if (!d)
		fail_msg("%s: %s", root, strerror(errno));
	struct dirent *m;
	while ((m = readdir(d)) != NULL) {
		if (m->d_name[0] == '.')
			continue;
		char *sub = pv_xasprintf("%s/%s", root, m->d_name);
		DIR *sd = opendir(sub);
		free(sub);
		if (!sd)
			continue;
		struct dirent *f;
		while ((f = readdir(sd)) != NULL) {
			size_t l = strlen(f->d_name);
			if (l < 3 || strcmp(f->d_name + l - 2, ".c") != 0)
				continue;
			char *rel = pv_xasprintf("daemon/%s/%s", m->d_name, f->d_name);
			char *text = read_source(rel);
			fn(rel, text, arg);
			free(text);
			free(rel);
		}
		closedir(sd);
	}
	closedir(d);
	free(root);
}

/* ---------------------------------------------------------------- tests: journal events */

typedef struct {
	char **names;
	char **where;
	size_t n;
} Found;

static void collect(const char *rel, const char *text, void *arg)
{
	Found *f = arg;
	if (strncmp(rel, "daemon/journal/", 15) == 0)
		return; /* the writer itself and the list */
	file_events(rel, text, &f->names, &f->n, &f->where);
}

static void test_scanner(void **state)
{
	(void)state;
	const char *code =
	    "static void jevent(PvDaemon *d, const char *incident, const char *event) {}\n"
	    "void f(void) {\n"
	    "  /* pv_daemon_journal_event(d, \"in-a-comment\", NULL); */\n"
	    "  pv_daemon_journal_event(d, dry ? \"one\" : \"two\", name(\"x,y\"), \"ok\", NULL);\n"
	    "  pv_journal_begin(j, &s, inc, \"three\", f(a, b), \"{}\", &err);\n"
	    "  xjevent(d, i, \"not-this\");\n"
	    "  jevent(d, i, pv_journal_event_name(PV_EV_HOOK), \"ok\");\n"
	    "  PvJournalRecord r = {.event = \"four\", .phase = 0};\n"
	    "}\n";
	Found f = {0};
	file_events("t.c", code, &f.names, &f.n, &f.where);
	assert_int_equal(f.n, 4);
	assert_string_equal(f.names[0], "one");
	assert_string_equal(f.names[1], "two");
	assert_string_equal(f.names[2], "three");
	assert_string_equal(f.names[3], "four");
	assert_string_equal(f.where[2], "t.c (pv_journal_begin)");
	for (size_t i = 0; i < f.n; i++) {
		free(f.names[i]);
		free(f.where[i]);
	}
	free(f.names);
	free(f.where);
}

static void test_journal_events(void **state)
{
	(void)state;
	Found f = {0};
	each_source(collect, &f);
	assert_true(f.n >= 20); /* the scan finds the daemon's events at all */
	for (size_t i = 0; i < f.n; i++) {
		if (pv_journal_event_parse(f.names[i]) < 0)
			problem("%s journals event \"%s\": not in daemon/journal/events.h",
			        f.where[i], f.names[i]);
		free(f.names[i]);
		free(f.where[i]);
	}
	free(f.names);
	free(f.where);
	/* daemon.c journals these verdicts under their own names */
	const PvVerdict as_events[] = {PV_VERDICT_SPLIT_BRAIN, PV_VERDICT_NO_PRIMARY,
	                               PV_VERDICT_WEDGED, PV_VERDICT_LOCKED};
	for (size_t i = 0; i < sizeof as_events / sizeof as_events[0]; i++)
		if (pv_journal_event_parse(pv_verdict_name(as_events[i])) < 0)
			problem("verdict %s is journaled as an event: not in events.h",
			        pv_verdict_name(as_events[i]));

	char *man = read_source("man/pgvigil-journal.5");
	for (int e = 0; e < PV_EV_COUNT; e++) {
		char *entry =
		    pv_xasprintf("\n.It Cm %s Pq ", pv_journal_event_name((PvJournalEvent)e));
		if (!strstr(man, entry))
			problem("man/pgvigil-journal.5 has no entry \".It Cm %s Pq ...\"",
			        pv_journal_event_name((PvJournalEvent)e));
		free(entry);
	}
	/* and documents no event the code does not know */
	for (const char *p = strstr(man, "\n.It Cm "); p; p = strstr(p + 1, "\n.It Cm ")) {
		const char *name = p + 8;
		size_t n = strcspn(name, " \n");
		if (strncmp(name + n, " Pq ", 4) != 0)
			continue;
		char *ev = pv_xasprintf("%.*s", (int)n, name);
		if (pv_journal_event_parse(ev) < 0)
			problem("man/pgvigil-journal.5 documents event \"%s\" that events.h does "
			        "not list",
			        ev);
		free(ev);
	}
	free(man);
	report();
}

/* ---------------------------------------------------------------- tests: CLI verbs */

/* The verb table of daemon/pgvigil/main.c: each entry's command phrases ("incident list"). */
static size_t verb_phrases(char ***out)
{
	char *text = read_source("daemon/pgvigil/main.c");
	const char *p = strstr(text, "verbs[] = {");
	size_t n = 0;
	*out = NULL;
	assert_non_null(p);
	p = strchr(p, '{') + 1;
	for (;;) {
		p += strspn(p, " \t\n");
		if (*p != '{')
			break;
		const char *close = p;
		int depth = 0;
		for (; *close; close++) {
			if (*close == '"') {
				close = skip_literal(close) - 1;
				continue;
			}
			if (*close == '{')
				depth++;
			else if (*close == '}' && --depth == 0)
				break;
		}
		char **lits = NULL;
		size_t nl = 0;
		literals(p, (size_t)(close - p), &lits, &nl);
		assert_true(nl >= 2);
		/* lits[0] is the verb, the rest the usage, concatenated */
		PvBuf usage = {0};
		for (size_t i = 1; i < nl; i++)
			pv_buf_puts(&usage, lits[i]);
		/* alternatives at bracket depth 0, separated by " | " */
		int d = 0;
		const char *alt = usage.data;
		for (const char *q = usage.data;; q++) {
			if (*q == '(' || *q == '[')
				d++;
			else if (*q == ')' || *q == ']')
				d--;
			if (*q && !(d == 0 && strncmp(q, " | ", 3) == 0))
				continue;
			/* leading lowercase words of the alternative */
			PvBuf phrase = {0};
			char *copy = pv_xasprintf("%.*s", (int)(q - alt), alt), *save = NULL;
			for (char *w = strtok_r(copy, " ", &save); w;
			     w = strtok_r(NULL, " ", &save)) {
				if (w[0] == '-' ||
				    strspn(w, "abcdefghijklmnopqrstuvwxyz-") != strlen(w))
					break;
				if (phrase.len)
					pv_buf_putc(&phrase, ' ');
				pv_buf_puts(&phrase, w);
			}
			free(copy);
			if (phrase.len) {
				*out = pv_xrealloc(*out, (n + 1) * sizeof **out);
				(*out)[n++] = pv_buf_steal(&phrase);
			}
			pv_buf_free(&phrase);
			if (!*q)
				break;
			alt = q + 3;
			q += 2;
		}
		if (!n || strncmp((*out)[n - 1], lits[0], strlen(lits[0])) != 0)
			fail_msg("verb %s: usage does not start with it", lits[0]);
		pv_buf_free(&usage);
		for (size_t i = 0; i < nl; i++)
			free(lits[i]);
		free(lits);
		p = close + 1;
		p += strspn(p, " \t\n,");
	}
	free(text);
	return n;
}

static bool man_has_command(const char *man, const char *phrase)
{
	const char *forms[] = {"\n.It Cm %s", "\n.It Xo\n.Cm %s"};
	for (size_t f = 0; f < 2; f++) {
		char *needle = pv_xasprintf(forms[f], phrase);
		size_t nl = strlen(needle);
		for (const char *p = strstr(man, needle); p; p = strstr(p + 1, needle)) {
			char c = p[nl];
			if (c == ' ' || c == '\n') {
				free(needle);
				return true;
			}
		}
		free(needle);
	}
	return false;
}

static void test_cli_verbs(void **state)
{
	(void)state;
	char **phrases;
	size_t n = verb_phrases(&phrases);
	assert_true(n >= 8);
	char *man = read_source("man/pgvigil.1");
	bool have_verify = false;
	for (size_t i = 0; i < n; i++) {
		if (!man_has_command(man, phrases[i]))
			problem("man/pgvigil.1 has no entry \".It Cm %s ...\"", phrases[i]);
		have_verify |= strcmp(phrases[i], "journal verify") == 0;
	}
	assert_true(have_verify); /* the parse sees subcommands */

	/* the runbook runs only real commands */
	char *runbook = read_source("man/pgvigil-runbook.7");
	const char *prompts[] = {"$ pgvigil ", "# pgvigil "};
	for (size_t k = 0; k < 2; k++) {
		for (const char *p = strstr(runbook, prompts[k]); p;
		     p = strstr(p + 1, prompts[k])) {
			const char *verb = p + 10;
			if (strncmp(verb, "-c ", 3) == 0) /* "pgvigil -c FILE verb" */
				verb += 3 + strcspn(verb + 3, " ") + 1;
			size_t vl = strspn(verb, "abcdefghijklmnopqrstuvwxyz-");
			bool known = false;
			for (size_t i = 0; i < n && !known; i++)
				known = strncmp(phrases[i], verb, vl) == 0 &&
				        (phrases[i][vl] == '\0' || phrases[i][vl] == ' ');
			if (!known)
				problem(
				    "man/pgvigil-runbook.7 runs \"pgvigil %.*s\", which is no verb",
				    (int)vl, verb);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(phrases[i]);
	free(phrases);
	free(man);
	free(runbook);
	report();
}

/* ---------------------------------------------------------------- tests: settings */

static void test_settings(void **state)
{
	(void)state;
	char *man = read_source("man/pgvigil.conf.5");
	char *sample = read_source("conf/pgvigil.conf");
	for (const char *const *n = pv_config_setting_names(); *n; n++) {
		char *entry = pv_xasprintf(".It Cm %s ", *n);
		if (!strstr(man, entry))
			problem("man/pgvigil.conf.5 has no entry \"%s\"", entry);
		free(entry);
		char *comment = pv_xasprintf("# %s: ", *n);
		if (!strstr(sample, comment))
			problem("conf/pgvigil.conf does not document %s (\"%s\")", *n, comment);
		free(comment);
	}
	free(man);
	free(sample);
	report();
}

/* ---------------------------------------------------------------- tests: metrics, hooks */

static void test_metrics_and_hooks(void **state)
{
	(void)state;
	char *man = read_source("man/pgvigild.8");
	for (const char *const *n = pv_metrics_names(); *n; n++) {
		char *entry = pv_xasprintf("\n.It Cm %s\n", *n);
		if (!strstr(man, entry))
			problem(
			    "man/pgvigild.8 has no entry \".It Cm %s\" (METRICS AND HEALTH CHECKS)",
			    *n);
		free(entry);
	}
	char *hooks = read_source("daemon/pgvigild/hooks.c");
	size_t set = 0;
	for (const char *p = strstr(hooks, "\"PGVIGIL_"); p; p = strstr(p + 1, "\"PGVIGIL_"))
		set++;
	assert_int_equal(set, sizeof HOOK_ENV / sizeof HOOK_ENV[0]);
	for (size_t i = 0; i < sizeof HOOK_ENV / sizeof HOOK_ENV[0]; i++) {
		char *code = pv_xasprintf("\"%s=", HOOK_ENV[i]);
		if (!strstr(hooks, code))
			problem("hooks.c does not set %s", HOOK_ENV[i]);
		free(code);
		char *entry = pv_xasprintf("\n.It Ev %s\n", HOOK_ENV[i]);
		if (!strstr(man, entry))
			problem("man/pgvigild.8 has no entry \".It Ev %s\" (HOOKS)", HOOK_ENV[i]);
		free(entry);
	}
	free(hooks);
	free(man);
	report();
}

/* ---------------------------------------------------------------- tests: the pages */

static void test_pages(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof MAN_PAGES / sizeof MAN_PAGES[0]; i++) {
		char *rel = pv_xasprintf("man/%s", MAN_PAGES[i]);
		char *text = read_source(rel);
		/* cross references to pgvigil pages resolve */
		for (const char *p = strstr(text, ".Xr pgvigil"); p;
		     p = strstr(p + 1, ".Xr pgvigil")) {
			char page[64];
			int sec;
			if (sscanf(p, ".Xr %63s %d", page, &sec) != 2)
				continue;
			char *target = pv_xasprintf("man/%s.%d", page, sec);
			char *path = source_path(target);
			if (access(path, R_OK) != 0)
				problem("%s refers to %s(%d): no %s", rel, page, sec, target);
			free(path);
			free(target);
		}
		free(text);
		free(rel);
	}
	report();

	if (system("command -v mandoc >/dev/null 2>&1") != 0) {
		print_message("mandoc is not installed: lint skipped\n");
		skip();
	}
	for (size_t i = 0; i < sizeof MAN_PAGES / sizeof MAN_PAGES[0]; i++) {
		char *rel = pv_xasprintf("man/%s", MAN_PAGES[i]);
		char *path = source_path(rel);
		char *cmd = pv_xasprintf("mandoc -Tlint -W warning '%s' 2>&1", path);
		FILE *fp = popen(cmd, "r");
		assert_non_null(fp);
		PvBuf out = {0};
		char chunk[4096];
		size_t n;
		while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
			pv_buf_append(&out, chunk, n);
		int rc = pclose(fp);
		if (out.len || rc != 0)
			problem("mandoc -Tlint -W warning %s:\n%s", rel, out.data ? out.data : "");
		pv_buf_free(&out);
		free(cmd);
		free(path);
		free(rel);
	}
	report();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_scanner, reset),
	    cmocka_unit_test_setup(test_journal_events, reset),
	    cmocka_unit_test_setup(test_cli_verbs, reset),
	    cmocka_unit_test_setup(test_settings, reset),
	    cmocka_unit_test_setup(test_metrics_and_hooks, reset),
	    cmocka_unit_test_setup(test_pages, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
