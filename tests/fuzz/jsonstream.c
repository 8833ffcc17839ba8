/*
 * Fuzz target: the stdin JSON stream of jq-enqueue (lib/jsonstream.c).
 *
 * The first byte picks the longest value allowed; the rest is the input.
 * Each value given back must be the next bytes of the input after white
 * space, on the line counted from the input itself; an error's line must
 * lie in the input.  Each value then goes through pgjq_json_parse(): a
 * failure names a line within the value, a success dumps to JSON that
 * parses again, and an object's members found by pgjq_json_member_text()
 * are the text of JSON values.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "jsonstream.h"

static FILE *tmp;

static long
count_lines(const uint8_t *p, size_t n)
{
	long lines = 0;

	for (size_t i = 0; i < n; i++)
		lines += p[i] == '\n';
	return lines;
}

static void
check_value(const struct pgjq_jsontext *v)
{
	char why[256];
	long errline = 0, last = v->line + count_lines((const uint8_t *)v->text, v->len);
	json_t *j = pgjq_json_parse(v->text, v->len, JSON_REJECT_DUPLICATES, v->line,
	    why, sizeof why, &errline);

	if (j == NULL) {
		FUZZ_CHECK(errline >= v->line && errline <= last);
		FUZZ_CHECK(why[0] != '\0');
		return;
	}
	{
		char *dumped = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
		json_t *again;

		FUZZ_CHECK(dumped != NULL);
		again = pgjq_json_parse(dumped, strlen(dumped), 0, 1, why, sizeof why, &errline);
		FUZZ_CHECK(again != NULL);
		json_decref(again);
		free(dumped);
	}
	if (json_is_object(j)) {
		const char *key;
		json_t *member;

		json_object_foreach(j, key, member) {
			const char *vt;
			size_t vl;
			json_t *m;

			/* A key spelt with escapes may not be found as written; never mind. */
			if (!pgjq_json_member_text(v->text, v->len, key, &vt, &vl))
				continue;
			FUZZ_CHECK(vt >= v->text && vt + vl <= v->text + v->len);
			m = pgjq_json_parse(vt, vl, 0, 1, why, sizeof why, &errline);
			FUZZ_CHECK(m != NULL);
			json_decref(m);
		}
	}
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgjq_jsonstream *js;
	struct pgjq_jsontext v;
	enum pgjq_jsonstream_status st;
	size_t max, at = 0;
	long line = 1, lines;
	int fd;

	if (size < 1)
		return 0;
	/* Small limits hit the size checks; a high bit means the usual megabyte. */
	max = data[0] & 0x80 ? 1024 * 1024 : data[0];
	data++;
	size--;
	lines = 1 + count_lines(data, size);

	if (tmp == NULL && (tmp = tmpfile()) == NULL)
		abort();
	fd = fileno(tmp);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size ||
	    lseek(fd, 0, SEEK_SET) != 0)
		abort();

	js = pgjq_jsonstream_open(fd, max);
	while ((st = pgjq_jsonstream_next(js, &v)) == PGJQ_JS_VALUE) {
		while (at < size && (data[at] == ' ' || data[at] == '\t' || data[at] == '\r' ||
		    data[at] == '\n'))
			line += data[at++] == '\n';
		FUZZ_CHECK(v.len > 0 && v.len <= max);
		FUZZ_CHECK(at + v.len <= size && memcmp(v.text, data + at, v.len) == 0);
		FUZZ_CHECK(v.line == line);
		line += count_lines(data + at, v.len);
		at += v.len;
		check_value(&v);
	}
	if (st == PGJQ_JS_EOF) {
		/* Only white space was left. */
		for (; at < size; at++)
			FUZZ_CHECK(data[at] == ' ' || data[at] == '\t' || data[at] == '\r' ||
			    data[at] == '\n');
	} else {
		FUZZ_CHECK(st == PGJQ_JS_ERROR);
		FUZZ_CHECK(pgjq_jsonstream_error(js)[0] != '\0');
		FUZZ_CHECK(pgjq_jsonstream_errline(js) >= line && pgjq_jsonstream_errline(js) <= lines);
	}
	/* After the end it stays at the end. */
	if (st == PGJQ_JS_EOF)
		FUZZ_CHECK(pgjq_jsonstream_next(js, &v) == PGJQ_JS_EOF);
	pgjq_jsonstream_close(js);
	return 0;
}
