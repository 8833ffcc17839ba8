#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonstream.h"
#include "xalloc.h"

struct pgjq_jsonstream {
	int fd;
	size_t max_value;
	char *buf;
	size_t cap;
	size_t len;      /* bytes in buf */
	size_t pos;      /* first byte not yet returned */
	long line;       /* line number at pos */
	bool eof;
	bool stopped;    /* a read was interrupted with *stop set */
	const volatile sig_atomic_t *stop;
	long errline;
	char err[256];
};

void
pgjq_jsonstream_stop_on(struct pgjq_jsonstream *js, const volatile sig_atomic_t *stop)
{
	js->stop = stop;
}

struct pgjq_jsonstream *
pgjq_jsonstream_open(int fd, size_t max_value)
{
	struct pgjq_jsonstream *js = pgjq_xcalloc(1, sizeof *js);

	js->fd = fd;
	js->max_value = max_value;
	js->cap = 64 * 1024;
	js->buf = pgjq_xmalloc(js->cap);
	js->line = 1;
	return js;
}

void
pgjq_jsonstream_close(struct pgjq_jsonstream *js)
{
	if (js == NULL)
		return;
	free(js->buf);
	free(js);
}

const char *
pgjq_jsonstream_error(const struct pgjq_jsonstream *js)
{
	return js->err;
}

long
pgjq_jsonstream_errline(const struct pgjq_jsonstream *js)
{
	return js->errline;
}

static enum pgjq_jsonstream_status
fail(struct pgjq_jsonstream *js, long line, const char *msg)
{
	js->errline = line;
	snprintf(js->err, sizeof js->err, "%s", msg);
	return PGJQ_JS_ERROR;
}

/*
 * Reads more input, keeping bytes from keep on (moved to the front).
 * Returns the number of bytes the buffer moved by through *shift, 1 if
 * bytes arrived, 0 at end of input, -1 on a read error.
 */
static int
refill(struct pgjq_jsonstream *js, size_t keep, size_t *shift)
{
	ssize_t n;

	if (keep > 0) {
		memmove(js->buf, js->buf + keep, js->len - keep);
		js->len -= keep;
		js->pos -= keep;
	}
	*shift = keep;
	if (js->len + 1 >= js->cap)
		js->buf = pgjq_xgrow(js->buf, &js->cap, js->cap * 2, 1);
	do
		n = read(js->fd, js->buf + js->len, js->cap - js->len - 1);
	while (n < 0 && errno == EINTR && !(js->stop != NULL && *js->stop));
	if (n < 0 && errno == EINTR) {
		js->stopped = true;
		snprintf(js->err, sizeof js->err, "interrupted");
		js->errline = js->line;
		return -1;
	}
	if (n < 0) {
		snprintf(js->err, sizeof js->err, "read error: %s", strerror(errno));
		js->errline = js->line;
		return -1;
	}
	if (n == 0) {
		js->eof = true;
		return 0;
	}
	js->len += (size_t)n;
	return 1;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool
ends_scalar(char c)
{
	return is_space(c) || c == '{' || c == '}' || c == '[' || c == ']' ||
	    c == ',' || c == ':' || c == '"' || c == '\0';
}

static void
skip_buffered_space(struct pgjq_jsonstream *js)
{
	while (js->pos < js->len && is_space(js->buf[js->pos])) {
		if (js->buf[js->pos] == '\n')
			js->line++;
		js->pos++;
	}
}

/* Skips white space before a value, reading as needed; false on a read error. */
static bool
skip_space(struct pgjq_jsonstream *js)
{
	for (;;) {
		size_t shift;

		skip_buffered_space(js);
		if (js->pos < js->len || js->eof)
			return true;
		if (refill(js, js->pos, &shift) < 0)
			return false;
	}
}

enum pgjq_jsonstream_status
pgjq_jsonstream_next(struct pgjq_jsonstream *js, struct pgjq_jsontext *out)
{
	size_t start, i;
	long line, newlines = 0;
	int depth = 0;
	bool in_string = false, escaped = false, scalar;
	char first;

	if (!skip_space(js))
		return js->stopped ? PGJQ_JS_STOPPED : PGJQ_JS_ERROR;
	if (js->pos >= js->len)
		return PGJQ_JS_EOF;

	start = js->pos;
	line = js->line;
	first = js->buf[start];
	scalar = first != '{' && first != '[' && first != '"';
	i = start;
	for (;;) {
		size_t shift;
		int r;

		for (; i < js->len; i++) {
			char c = js->buf[i];

			if (c == '\0')
				return fail(js, line + newlines, "NUL byte in input");
			if (scalar) {
				if (ends_scalar(c)) {
					/* A lone '}' or ',' is its own (bad) token. */
					if (i == start)
						i++;
					goto done;
				}
				continue;
			}
			if (c == '\n')
				newlines++;
			if (in_string) {
				if (escaped)
					escaped = false;
				else if (c == '\\')
					escaped = true;
				else if (c == '"') {
					in_string = false;
					if (depth == 0) {
						i++;
						goto done;
					}
				}
			} else if (c == '"') {
				in_string = true;
			} else if (c == '{' || c == '[') {
				depth++;
			} else if (c == '}' || c == ']') {
				if (--depth == 0) {
					i++;
					goto done;
				}
			}
		}
		if (i - start > js->max_value) {
			snprintf(js->err, sizeof js->err,
			    "value too large (more than %zu bytes)", js->max_value);
			js->errline = line;
			return PGJQ_JS_ERROR;
		}
		r = refill(js, start, &shift);
		if (r < 0)
			return js->stopped ? PGJQ_JS_STOPPED : PGJQ_JS_ERROR;
		i -= shift;
		start -= shift;
		if (r == 0) {
			if (scalar)
				goto done;
			return fail(js, line,
			    "truncated input: value not closed at end of input");
		}
	}
done:
	if (i - start > js->max_value) {
		snprintf(js->err, sizeof js->err,
		    "value too large (%zu bytes, the limit is %zu)", i - start,
		    js->max_value);
		js->errline = line;
		return PGJQ_JS_ERROR;
	}
	out->text = js->buf + start;
	out->len = i - start;
	out->line = line;
	js->pos = i;
	js->line = line + newlines;
	return PGJQ_JS_VALUE;
}

bool
pgjq_jsonstream_ready(struct pgjq_jsonstream *js)
{
	struct pollfd pfd = {.fd = js->fd, .events = POLLIN};

	skip_buffered_space(js);
	if (js->pos < js->len || js->eof)
		return true;
	return poll(&pfd, 1, 0) != 0;
}

json_t *
pgjq_json_parse(const char *text, size_t len, size_t flags, long first_line,
    char *why, size_t whysize, long *errline)
{
	json_error_t jerr;
	json_t *v;

	v = json_loadb(text, len, flags | JSON_DECODE_ANY, &jerr);
	if (v == NULL) {
		/* jansson's own words name its flag; the user needs the reason. */
		if (json_error_code(&jerr) == json_error_null_character)
			snprintf(why, whysize, "\\u0000 in a string, which PostgreSQL's jsonb cannot store");
		else
			snprintf(why, whysize, "%s", jerr.text);
		*errline = first_line + (jerr.line > 0 ? jerr.line - 1 : 0);
	}
	return v;
}

/* Returns the end of the JSON value starting at p (valid JSON assumed). */
static const char *
skip_value(const char *p, const char *end)
{
	int depth = 0;
	bool in_string = false, escaped = false;

	if (*p != '{' && *p != '[' && *p != '"') {
		while (p < end && !ends_scalar(*p))
			p++;
		return p;
	}
	for (; p < end; p++) {
		char c = *p;

		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"') {
				in_string = false;
				if (depth == 0)
					return p + 1;
			}
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if ((c == '}' || c == ']') && --depth == 0) {
			return p + 1;
		}
	}
	return end;
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && is_space(*p))
		p++;
	return p;
}

/* Compares a key's raw text (between its quotes) with name, decoding escapes if it has any. */
static bool
key_equals(const char *key, const char *keyend, const char *name, size_t namelen)
{
	json_t *decoded;
	bool same;

	if (memchr(key, '\\', (size_t)(keyend - key)) == NULL)
		return (size_t)(keyend - key) == namelen && memcmp(key, name, namelen) == 0;
	decoded = json_loadb(key - 1, (size_t)(keyend - key) + 2, JSON_DECODE_ANY, NULL);
	same = json_is_string(decoded) && json_string_length(decoded) == namelen &&
	    memcmp(json_string_value(decoded), name, namelen) == 0;
	json_decref(decoded);
	return same;
}

bool
pgjq_json_member_text(const char *text, size_t len, const char *name,
    const char **vtext, size_t *vlen)
{
	const char *p = text, *end = text + len;
	size_t namelen = strlen(name);

	p = skip_ws(p, end);
	if (p == end || *p != '{')
		return false;
	p++;
	for (;;) {
		const char *key, *keyend, *value;

		p = skip_ws(p, end);
		if (p == end || *p != '"')
			return false;
		key = p + 1;
		keyend = skip_value(p, end) - 1;
		p = skip_ws(keyend + 1, end);
		if (p == end || *p != ':')
			return false;
		value = skip_ws(p + 1, end);
		p = skip_value(value, end);
		if (key_equals(key, keyend, name, namelen)) {
			*vtext = value;
			*vlen = (size_t)(p - value);
			return true;
		}
		p = skip_ws(p, end);
		if (p == end || *p != ',')
			return false;
		p++;
	}
}
