/*
 * buf: growable NUL-terminated byte buffers, and allocation that never returns NULL.
 *
 * pv_xmalloc and friends abort the process on exhaustion (like PgBouncer's): a daemon that
 * cannot allocate a few bytes cannot act safely anyway.  A PvBuf's data is always
 * NUL-terminated; a zeroed PvBuf is a valid empty buffer.
 */
#ifndef PV_COMMON_BUF_H
#define PV_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "common/error.h"

typedef struct {
	char *data;
	size_t len;
	size_t cap;
} PvBuf;

void *pv_xmalloc(size_t n);
void *pv_xcalloc(size_t n, size_t size);
void *pv_xrealloc(void *p, size_t n);
char *pv_xstrdup(const char *s);
char *pv_xasprintf(const char *fmt, ...) PV_PRINTF(1, 2);

void pv_buf_reset(PvBuf *b);
void pv_buf_free(PvBuf *b);
void pv_buf_append(PvBuf *b, const char *s, size_t n);
void pv_buf_puts(PvBuf *b, const char *s);
void pv_buf_putc(PvBuf *b, char c);
void pv_buf_printf(PvBuf *b, const char *fmt, ...) PV_PRINTF(2, 3);
void pv_buf_vprintf(PvBuf *b, const char *fmt, va_list ap);
/* Returns the data (caller frees) and leaves b empty. */
char *pv_buf_steal(PvBuf *b);

/* strlcpy semantics: always NUL-terminates, returns strlen(src). */
size_t pv_strlcpy(char *dst, const char *src, size_t size);

#endif
