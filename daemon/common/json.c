#include "common/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void pv_json_init(PvJson *j, PvBuf *out)
{
	memset(j, 0, sizeof *j);
	j->out = out;
}

static void member(PvJson *j, const char *key)
{
	if (j->need_comma[j->depth])
		pv_buf_putc(j->out, ',');
	j->need_comma[j->depth] = true;
	if (key) {
		pv_json_escape(j->out, key);
		pv_buf_putc(j->out, ':');
	}
}

static void open_(PvJson *j, const char *key, char c)
{
	member(j, key);
	pv_buf_putc(j->out, c);
	if (j->depth < PV_JSON_MAX_DEPTH - 1)
		j->depth++;
	j->need_comma[j->depth] = false;
}

static void close_(PvJson *j, char c)
{
	pv_buf_putc(j->out, c);
	if (j->depth > 0)
		j->depth--;
}

void pv_json_obj_open(PvJson *j, const char *key) { open_(j, key, '{'); }
void pv_json_obj_close(PvJson *j) { close_(j, '}'); }
void pv_json_arr_open(PvJson *j, const char *key) { open_(j, key, '['); }
void pv_json_arr_close(PvJson *j) { close_(j, ']'); }

void pv_json_str(PvJson *j, const char *key, const char *val)
{
	member(j, key);
	if (val)
		pv_json_escape(j->out, val);
	else
		pv_buf_puts(j->out, "null");
}

void pv_json_int(PvJson *j, const char *key, int64_t v)
{
	member(j, key);
	pv_buf_printf(j->out, "%" PRId64, v);
}

void pv_json_double(PvJson *j, const char *key, double v)
{
	member(j, key);
	if (isfinite(v))
		pv_buf_printf(j->out, "%.3f", v);
	else
		pv_buf_puts(j->out, "null");
}

void pv_json_bool(PvJson *j, const char *key, bool v)
{
	member(j, key);
	pv_buf_puts(j->out, v ? "true" : "false");
}

void pv_json_null(PvJson *j, const char *key)
{
	member(j, key);
	pv_buf_puts(j->out, "null");
}

void pv_json_raw(PvJson *j, const char *key, const char *json)
{
	member(j, key);
	pv_buf_puts(j->out, json && *json ? json : "null");
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	unsigned min;
	if (c < 0x80)
		return 1;
	if ((c & 0xE0) == 0xC0) {
		n = 2;
		min = 0x80;
		c &= 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3;
		min = 0x800;
		c &= 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4;
		min = 0x10000;
		c &= 0x07;
	} else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	return n;
}

void pv_json_escape(PvBuf *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	pv_buf_putc(out, '"');
	while (*s) {
		unsigned char c = *s;
		switch (c) {
		case '"': pv_buf_puts(out, "\\\""); s++; continue;
		case '\\': pv_buf_puts(out, "\\\\"); s++; continue;
		case '\n': pv_buf_puts(out, "\\n"); s++; continue;
		case '\r': pv_buf_puts(out, "\\r"); s++; continue;
		case '\t': pv_buf_puts(out, "\\t"); s++; continue;
		case '\b': pv_buf_puts(out, "\\b"); s++; continue;
		case '\f': pv_buf_puts(out, "\\f"); s++; continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7F) {
			pv_buf_printf(out, "\\u%04x", c);
			s++;
			continue;
		}
		size_t n = utf8_len(s);
		if (n == 0) {
			pv_buf_puts(out, "\\ufffd");
			s++;
			continue;
		}
		pv_buf_append(out, (const char *)s, n);
		s += n;
	}
	pv_buf_putc(out, '"');
}
