#include "common/redact.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"

static int is_uri(const char *s)
{
	return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

static int is_secret_key(const char *k, size_t n)
{
	return (n == 8 && strncasecmp(k, "password", 8) == 0) ||
	       (n == 11 && strncasecmp(k, "sslpassword", 11) == 0);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into out (size >= n + 1). */
static void pct_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (s[i] == '%' && i + 2 < n + 1 && (h = hexval(s[i + 1])) >= 0 &&
		    (l = hexval(s[i + 2])) >= 0) {
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else
			out[o++] = s[i];
	}
	out[o] = '\0';
}

static char *redact_uri(const char *s)
{
	PvBuf b = {0};
	const char *p = strstr(s, "://") + 3;
	pv_buf_append(&b, s, (size_t)(p - s));
	/* libpq ends the authority at '/' only (a '?' may sit inside a password): the userinfo
	 * is everything before the last '@' there */
	const char *end = p + strcspn(p, "/");
	const char *at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		if (colon) {
			pv_buf_append(&b, p, (size_t)(colon - p + 1));
			pv_buf_puts(&b, PV_REDACTED);
			p = at;
		}
	}
	const char *q = strchr(p, '?');
	if (!q) {
		pv_buf_puts(&b, p);
		return pv_buf_steal(&b);
	}
	pv_buf_append(&b, p, (size_t)(q - p + 1));
	q++;
	while (*q) {
		size_t n = strcspn(q, "&");
		const char *eq = memchr(q, '=', n);
		if (eq) {
			size_t kn = (size_t)(eq - q);
			char key[64];
			if (kn < sizeof key) {
				pct_decode(q, kn, key);
				if (is_secret_key(key, strlen(key))) {
					pv_buf_append(&b, q, kn + 1);
					pv_buf_puts(&b, PV_REDACTED);
					goto next;
				}
			}
		}
		pv_buf_append(&b, q, n);
	next:
		q += n;
		if (*q == '&') {
			pv_buf_putc(&b, '&');
			q++;
		}
	}
	return pv_buf_steal(&b);
}

/* The value of a key=value pair, unquoted and unescaped, as libpq reads it. */
static char *unquote(const char *v, size_t n)
{
	PvBuf b = {0};
	size_t i = 0;
	int quoted = n > 0 && v[0] == '\'';
	if (quoted)
		i = 1;
	for (; i < n; i++) {
		if (quoted && v[i] == '\'')
			break;
		if (v[i] == '\\' && i + 1 < n)
			i++;
		pv_buf_putc(&b, v[i]);
	}
	return pv_buf_steal(&b);
}

char *pv_redact_conninfo(const char *s)
{
	if (!s)
		return pv_xstrdup("");
	if (is_uri(s))
		return redact_uri(s);
	PvBuf b = {0};
	const char *p = s;
	while (*p) {
		/* copy whitespace */
		while (*p && isspace((unsigned char)*p))
			pv_buf_putc(&b, *p++);
		if (!*p)
			break;
		const char *k = p;
		while (*p && *p != '=' && !isspace((unsigned char)*p))
			p++;
		size_t klen = (size_t)(p - k);
		pv_buf_append(&b, k, klen);
		while (*p && isspace((unsigned char)*p))
			pv_buf_putc(&b, *p++);
		if (*p != '=')
			continue; /* malformed: keep as is */
		pv_buf_putc(&b, *p++);
		while (*p && isspace((unsigned char)*p))
			pv_buf_putc(&b, *p++);
		const char *v = p;
		if (*p == '\'') {
			p++;
			while (*p && *p != '\'') {
				if (*p == '\\' && p[1])
					p++;
				p++;
			}
			if (*p == '\'')
				p++;
		} else {
			while (*p && !isspace((unsigned char)*p)) {
				if (*p == '\\' && p[1])
					p++;
				p++;
			}
		}
		size_t vlen = (size_t)(p - v);
		if (is_secret_key(k, klen)) {
			pv_buf_puts(&b, PV_REDACTED);
		} else if (klen == 6 && strncasecmp(k, "dbname", 6) == 0) {
			/* libpq expands a dbname that is itself a connection string */
			char *inner = unquote(v, vlen);
			if (strchr(inner, '=') || is_uri(inner)) {
				char *red = pv_redact_conninfo(inner);
				pv_buf_putc(&b, '\'');
				for (const char *c = red; *c; c++) {
					if (*c == '\'' || *c == '\\')
						pv_buf_putc(&b, '\\');
					pv_buf_putc(&b, *c);
				}
				pv_buf_putc(&b, '\'');
				pv_buf_free(&(PvBuf){.data = red});
			} else
				pv_buf_append(&b, v, vlen);
			pv_buf_free(&(PvBuf){.data = inner});
		} else
			pv_buf_append(&b, v, vlen);
	}
	return pv_buf_steal(&b);
}
