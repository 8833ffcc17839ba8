/*
 * xalloc: allocation that cannot fail, and a growable byte buffer.
 *
 * Running out of memory in a command-line tool has no useful recovery, so
 * these die with status 70 instead of making every caller check for NULL.
 */
#ifndef PGJQ_XALLOC_H
#define PGJQ_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *pgjq_xmalloc(size_t size);
void *pgjq_xcalloc(size_t n, size_t size);
void *pgjq_xrealloc(void *p, size_t size);
/* Grows an array of n elements of size bytes to hold at least need. */
void *pgjq_xgrow(void *p, size_t *n, size_t need, size_t size);
char *pgjq_xstrdup(const char *s);
__attribute__((format(printf, 1, 2)))
char *pgjq_xasprintf(const char *fmt, ...);

/* A byte buffer owned by whoever holds the struct; data is NUL-terminated. */
struct pgjq_buf {
	char *data;
	size_t len;
	size_t cap;
};

void pgjq_buf_reserve(struct pgjq_buf *b, size_t more);
void pgjq_buf_append(struct pgjq_buf *b, const void *p, size_t n);
void pgjq_buf_putc(struct pgjq_buf *b, char c);
__attribute__((format(printf, 2, 0)))
void pgjq_buf_vprintf(struct pgjq_buf *b, const char *fmt, va_list ap);
__attribute__((format(printf, 2, 3)))
void pgjq_buf_printf(struct pgjq_buf *b, const char *fmt, ...);
void pgjq_buf_reset(struct pgjq_buf *b);
void pgjq_buf_free(struct pgjq_buf *b);

#endif
