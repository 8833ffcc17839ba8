/*
 * jsonstream: cuts a byte stream into JSON values, each with the line it
 * starts on.
 *
 * Values may be NDJSON, pretty-printed over many lines, or simply separated
 * by white space.  The stream only finds where each value begins and ends
 * (brackets, strings and escapes); jansson then checks the text, so errors
 * can name the exact line in the whole input, which jansson alone cannot
 * do across values.  Reading uses read(2), never waiting for more than is
 * there, so an endless pipe's values come out as soon as they are complete.
 */
#ifndef PGJQ_JSONSTREAM_H
#define PGJQ_JSONSTREAM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct pgjq_jsonstream;

struct pgjq_jsontext {
	const char *text; /* not NUL-terminated; valid until the next call */
	size_t len;
	long line;        /* line of the value's first byte, from 1 */
};

enum pgjq_jsonstream_status {
	PGJQ_JS_VALUE,
	PGJQ_JS_EOF,
	PGJQ_JS_ERROR,
	PGJQ_JS_STOPPED,  /* a wait for input was interrupted by a signal that set *stop */
};

/* max_value: the longest value accepted, in bytes. */
struct pgjq_jsonstream *pgjq_jsonstream_open(int fd, size_t max_value);
void pgjq_jsonstream_close(struct pgjq_jsonstream *js);

/*
 * A signal that interrupts a wait for input ends it with PGJQ_JS_STOPPED
 * if *stop is then true (the handler sets it; install it without
 * SA_RESTART); other interruptions are waited through.
 */
void pgjq_jsonstream_stop_on(struct pgjq_jsonstream *js, const volatile sig_atomic_t *stop);

/*
 * The next value's text.  On PGJQ_JS_ERROR, pgjq_jsonstream_error() says
 * why and pgjq_jsonstream_errline() where.
 */
enum pgjq_jsonstream_status pgjq_jsonstream_next(struct pgjq_jsonstream *js,
    struct pgjq_jsontext *out);
const char *pgjq_jsonstream_error(const struct pgjq_jsonstream *js);
long pgjq_jsonstream_errline(const struct pgjq_jsonstream *js);

/* True if the next call would not wait for input. */
bool pgjq_jsonstream_ready(struct pgjq_jsonstream *js);

/*
 * Parses one value's text with jansson (flags as json_loadb, plus
 * JSON_DECODE_ANY).  On failure returns NULL, writes the cause to why and
 * the line, counted from first_line, to *errline.
 */
json_t *pgjq_json_parse(const char *text, size_t len, size_t flags,
    long first_line, char *why, size_t whysize, long *errline);

/*
 * Finds the text of member `name` in the JSON object `text` (already
 * known to be valid).  Returns false if there is no such member.  Used to
 * pass a payload through byte for byte, without a round trip through
 * doubles and 64-bit integers.
 */
bool pgjq_json_member_text(const char *text, size_t len, const char *name,
    const char **vtext, size_t *vlen);

#endif
