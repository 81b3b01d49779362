#include "common/redact.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"

static int is_uri(const char *s)
{
	return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

static char *redact_uri(const char *s)
{
	PvBuf b = {0};
	const char *p = strstr(s, "://") + 3;
	pv_buf_append(&b, s, (size_t)(p - s));
	/* userinfo: up to the first '@' before any '/' or '?' */
	const char *end = p + strcspn(p, "/?");
	const char *at = memchr(p, '@', (size_t)(end - p));
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
		if (n >= 9 && strncasecmp(q, "password=", 9) == 0) {
			pv_buf_puts(&b, "password=" PV_REDACTED);
		} else {
			pv_buf_append(&b, q, n);
		}
		q += n;
		if (*q == '&') {
			pv_buf_putc(&b, '&');
			q++;
		}
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
		int secret = klen == 8 && strncasecmp(k, "password", 8) == 0;
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
		if (secret)
			pv_buf_puts(&b, PV_REDACTED);
		else
			pv_buf_append(&b, v, (size_t)(p - v));
	}
	return pv_buf_steal(&b);
}
