#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(void)
{
	fputs("pgvigil: out of memory\n", stderr);
	abort();
}

void *pv_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *pv_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *pv_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom();
	return q;
}

char *pv_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = pv_xmalloc(n);
	memcpy(d, s, n);
	return d;
}

char *pv_xasprintf(const char *fmt, ...)
{
	PvBuf b = {0};
	va_list ap;
	va_start(ap, fmt);
	pv_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return pv_buf_steal(&b);
}

static void reserve(PvBuf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = pv_xrealloc(b->data, cap);
	b->cap = cap;
}

void pv_buf_reset(PvBuf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void pv_buf_free(PvBuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void pv_buf_append(PvBuf *b, const char *s, size_t n)
{
	reserve(b, n);
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void pv_buf_puts(PvBuf *b, const char *s)
{
	pv_buf_append(b, s, strlen(s));
}

void pv_buf_putc(PvBuf *b, char c)
{
	pv_buf_append(b, &c, 1);
}

void pv_buf_vprintf(PvBuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void pv_buf_printf(PvBuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pv_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

char *pv_buf_steal(PvBuf *b)
{
	char *d = b->data ? b->data : pv_xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return d;
}

size_t pv_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);
	if (size) {
		size_t c = n < size - 1 ? n : size - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}
