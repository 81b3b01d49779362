/*
 * config_scan: finds integer settings whose literal does not fit in an int.
 *
 * libconfig 1.5 converts a decimal literal with atoi() and a hex one with strtoul(), so
 * "interval_ms = 4294967796;" silently reads as 500.  This scanner re-reads each source file
 * with a small lexer that knows libconfig's comments, strings and number forms, records every
 * "name = INTEGER" it sees with its file and line, and matches them to the parsed tree in
 * source order.  The literal's text of an overflowing one is hooked onto its setting.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

struct PvIntLit {
	char *file;
	unsigned line;
	char *name;
	char *text;
	bool overflow;
	bool used;
};

static bool literal_overflows(const char *t, size_t n)
{
	char buf[64];
	if (n && (t[n - 1] == 'L' || t[n - 1] == 'l'))
		return false; /* int64: the type check rejects it */
	if (memchr(t, '.', n))
		return false; /* float */
	bool hex = n > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X');
	if (!hex && (memchr(t, 'e', n) || memchr(t, 'E', n)))
		return false; /* float */
	if (n >= sizeof buf)
		return true; /* 63 digits are too many for an int */
	memcpy(buf, t, n);
	buf[n] = '\0';
	char *end;
	errno = 0;
	if (hex) {
		unsigned long long v = strtoull(buf + 2, &end, 16);
		return errno == ERANGE || v > INT_MAX;
	}
	long long v = strtoll(buf, &end, 10);
	if (*end != '\0')
		return false; /* not an integer: libconfig has reported it */
	return errno == ERANGE || v < INT_MIN || v > INT_MAX;
}

static void add_lit(PvIntScan *s, const char *file, unsigned line, const char *name, size_t nlen,
                    const char *t, size_t tlen)
{
	if (s->nlits == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 32;
		s->lits = pv_xrealloc(s->lits, s->cap * sizeof *s->lits);
	}
	struct PvIntLit *l = &s->lits[s->nlits++];
	l->file = pv_xstrdup(file);
	l->line = line;
	l->name = pv_xmalloc(nlen + 1);
	memcpy(l->name, name, nlen);
	l->name[nlen] = '\0';
	l->text = pv_xmalloc(tlen + 1);
	memcpy(l->text, t, tlen);
	l->text[tlen] = '\0';
	l->overflow = literal_overflows(t, tlen);
	l->used = false;
}

static bool is_name_start(char c)
{
	return isalpha((unsigned char)c) || c == '*';
}

static bool is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '*';
}

static void scan_text(PvIntScan *s, const char *file, const char *p)
{
	unsigned line = 1, name_line = 0;
	const char *name = NULL;
	size_t name_len = 0;
	enum { NONE, NAME, ASSIGN } state = NONE;

	while (*p) {
		char c = *p;
		if (c == '\n') {
			line++;
			p++;
		} else if (isspace((unsigned char)c)) {
			p++;
		} else if (c == '#' || (c == '/' && p[1] == '/')) {
			while (*p && *p != '\n')
				p++;
		} else if (c == '/' && p[1] == '*') {
			p += 2;
			while (*p && !(p[0] == '*' && p[1] == '/')) {
				if (*p == '\n')
					line++;
				p++;
			}
			if (*p)
				p += 2;
		} else if (c == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				if (*p == '\n')
					line++;
				p++;
			}
			if (*p)
				p++;
			state = NONE;
		} else if (is_name_start(c)) {
			name = p;
			while (is_name_char(*p))
				p++;
			name_len = (size_t)(p - name);
			name_line = line;
			state = NAME;
		} else if ((c == '=' || c == ':') && state == NAME) {
			state = ASSIGN;
			p++;
		} else if (isdigit((unsigned char)c) || c == '-' || c == '+' || c == '.') {
			const char *t = p++;
			while (isalnum((unsigned char)*p) || *p == '.' ||
			       ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E')))
				p++;
			if (state == ASSIGN)
				add_lit(s, file, name_line, name, name_len, t, (size_t)(p - t));
			state = NONE;
		} else {
			state = NONE;
			p++;
		}
	}
}

static void ensure_scanned(PvIntScan *s, const char *file, char *(*read)(void *, const char *),
                           void *arg)
{
	for (size_t i = 0; i < s->nscanned; i++)
		if (strcmp(s->scanned[i], file) == 0)
			return;
	s->scanned = pv_xrealloc(s->scanned, (s->nscanned + 1) * sizeof *s->scanned);
	s->scanned[s->nscanned++] = pv_xstrdup(file);
	char *text = read(arg, file);
	if (text)
		scan_text(s, file, text);
	free(text);
}

static void mark(PvIntScan *s, config_setting_t *st, char *(*read)(void *, const char *), void *arg)
{
	if (config_setting_type(st) == CONFIG_TYPE_INT && config_setting_name(st)) {
		const char *file =
		    config_setting_source_file(st) ? config_setting_source_file(st) : "";
		ensure_scanned(s, file, read, arg);
		for (size_t i = 0; i < s->nlits; i++) {
			struct PvIntLit *l = &s->lits[i];
			if (l->used || l->line != config_setting_source_line(st) ||
			    strcmp(l->name, config_setting_name(st)) != 0 ||
			    strcmp(l->file, file) != 0)
				continue;
			l->used = true;
			if (l->overflow)
				config_setting_set_hook(st, l->text);
			break;
		}
	}
	if (config_setting_is_aggregate(st)) {
		int n = config_setting_length(st);
		for (int i = 0; i < n; i++)
			mark(s, config_setting_get_elem(st, (unsigned)i), read, arg);
	}
}

void pv_int_scan(PvIntScan *s, config_setting_t *root, char *(*read)(void *arg, const char *file),
                 void *arg)
{
	mark(s, root, read, arg);
}

const char *pv_int_scan_overflow(const config_setting_t *setting)
{
	return config_setting_get_hook(setting);
}

void pv_int_scan_free(PvIntScan *s)
{
	for (size_t i = 0; i < s->nlits; i++) {
		free(s->lits[i].file);
		free(s->lits[i].name);
		free(s->lits[i].text);
	}
	free(s->lits);
	for (size_t i = 0; i < s->nscanned; i++)
		free(s->scanned[i]);
	free(s->scanned);
	memset(s, 0, sizeof *s);
}
