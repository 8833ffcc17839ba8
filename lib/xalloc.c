#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "xalloc.h"

static void
oom(size_t size)
{
	pgjq_die(PGJQ_EX_SOFTWARE, "out of memory (allocating %zu bytes)", size);
}

void *
pgjq_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL)
		oom(size);
	return p;
}

void *
pgjq_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		oom(n * size);
	return p;
}

void *
pgjq_xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);

	if (q == NULL)
		oom(size);
	return q;
}

void *
pgjq_xgrow(void *p, size_t *n, size_t need, size_t size)
{
	size_t cap = *n ? *n : 16;

	if (need <= *n)
		return p;
	while (cap < need) {
		if (cap > ((size_t)-1 / 2) / size)
			oom((size_t)-1);
		cap *= 2;
	}
	*n = cap;
	return pgjq_xrealloc(p, cap * size);
}

char *
pgjq_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(pgjq_xmalloc(n), s, n);
}

char *
pgjq_xasprintf(const char *fmt, ...)
{
	struct pgjq_buf b = {0};
	va_list ap;

	va_start(ap, fmt);
	pgjq_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return b.data;
}

void
pgjq_buf_reserve(struct pgjq_buf *b, size_t more)
{
	size_t need = b->len + more + 1;

	if (need <= b->cap)
		return;
	b->data = pgjq_xgrow(b->data, &b->cap, need, 1);
}

void
pgjq_buf_append(struct pgjq_buf *b, const void *p, size_t n)
{
	pgjq_buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
pgjq_buf_putc(struct pgjq_buf *b, char c)
{
	pgjq_buf_reserve(b, 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}

void
pgjq_buf_vprintf(struct pgjq_buf *b, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	if (n < 0)
		pgjq_die(PGJQ_EX_SOFTWARE, "bad format string");
	pgjq_buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
	va_end(again);
	b->len += (size_t)n;
}

void
pgjq_buf_printf(struct pgjq_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pgjq_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
pgjq_buf_reset(struct pgjq_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
pgjq_buf_free(struct pgjq_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
