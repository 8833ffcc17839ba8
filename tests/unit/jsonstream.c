/* Unit tests for lib/jsonstream.c: cutting a stream into values, with lines. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonstream.h"
#include "tap.h"

/* A stream over the given bytes, through a temporary file. */
static struct pgjq_jsonstream *
stream_of(const char *bytes, size_t len, size_t max)
{
	FILE *f = tmpfile();
	int fd;

	if (f == NULL || fwrite(bytes, 1, len, f) != len || fflush(f) != 0)
		abort();
	fd = dup(fileno(f));
	fclose(f);
	lseek(fd, 0, SEEK_SET);
	return pgjq_jsonstream_open(fd, max);
}

/* Reads every value; writes "line:text|" for each into out, "ERR line: why" at an error. */
static void
collect(const char *bytes, size_t len, char *out, size_t size)
{
	struct pgjq_jsonstream *js = stream_of(bytes, len, 1000);
	struct pgjq_jsontext v;
	enum pgjq_jsonstream_status r;
	size_t used = 0;

	out[0] = '\0';
	while ((r = pgjq_jsonstream_next(js, &v)) == PGJQ_JS_VALUE)
		used += (size_t)snprintf(out + used, size - used, "%ld:%.*s|", v.line, (int)v.len, v.text);
	if (r == PGJQ_JS_ERROR)
		snprintf(out + used, size - used, "ERR %ld: %s", pgjq_jsonstream_errline(js),
		    pgjq_jsonstream_error(js));
	pgjq_jsonstream_close(js);
}

#define COLLECT(lit, out) collect(lit, sizeof(lit) - 1, out, sizeof out)

int
main(void)
{
	char out[4096], why[256];
	const char *vt;
	size_t vl;
	long errline = 0;
	json_t *j;

	plan(22);

	COLLECT("1 2 3", out);
	is_str(out, "1:1|1:2|1:3|", "scalars separated by spaces");
	COLLECT("{\"a\":1}\n{\"b\":2}\n", out);
	is_str(out, "1:{\"a\":1}|2:{\"b\":2}|", "NDJSON");
	COLLECT("{\n  \"a\": [1,\n 2]\n}\n\n\"x\"\n", out);
	is_str(out, "1:{\n  \"a\": [1,\n 2]\n}|6:\"x\"|", "pretty-printed values keep their lines");
	COLLECT("{\"a\":\"}{\\\"]\"}[1]", out);
	is_str(out, "1:{\"a\":\"}{\\\"]\"}|1:[1]|", "brackets and escaped quotes inside strings");
	COLLECT("{}{}", out);
	is_str(out, "1:{}|1:{}|", "values with no space between");
	COLLECT("true\nnull\n-1.5e3\n", out);
	is_str(out, "1:true|2:null|3:-1.5e3|", "literals and numbers on their lines");
	COLLECT("\n\n  \n", out);
	is_str(out, "", "white space only is no value");
	COLLECT("{\"a\":1}\n{\"b\":", out);
	is_str(out, "1:{\"a\":1}|ERR 2: truncated input: value not closed at end of input",
	    "truncated value names its line");
	COLLECT("\"abc", out);
	is_str(out, "ERR 1: truncated input: value not closed at end of input", "truncated string");
	COLLECT("1\n2\n{\"a\":\"x\0y\"}\n", out);
	is_str(out, "1:1|2:2|ERR 3: NUL byte in input", "NUL byte names its line");
	COLLECT("1\n}\n", out);
	is_str(out, "1:1|2:}|", "a stray bracket is a value of its own, for jansson to reject");

	{
		/* A value longer than the limit. */
		char big[2000];

		memset(big, ' ', sizeof big);
		big[0] = '[';
		big[sizeof big - 1] = ']';
		collect(big, sizeof big, out, sizeof out);
		ok(strstr(out, "ERR 1: value too large") != NULL, "value over the limit: %s", out);
	}
	{
		/* Many values across buffer refills: lines stay right. */
		size_t n = 200000, len = 0;
		char *s = malloc(n * 16);
		struct pgjq_jsonstream *js;
		struct pgjq_jsontext v;
		long count = 0, last_line = 0, bad = 0;

		for (size_t i = 0; i < n; i++)
			len += (size_t)sprintf(s + len, "{\"i\":%zu}\n", i);
		js = stream_of(s, len, 1000);
		while (pgjq_jsonstream_next(js, &v) == PGJQ_JS_VALUE) {
			count++;
			if (v.line != count)
				bad++;
			last_line = v.line;
		}
		pgjq_jsonstream_close(js);
		free(s);
		is_int(count, (long long)n, "200000 values across refills");
		is_int(bad, 0, "every value on its own line");
		is_int(last_line, (long long)n, "last line number");
	}

	j = pgjq_json_parse("{\n\"a\": }", 8, 0, 10, why, sizeof why, &errline);
	ok(j == NULL, "invalid JSON is rejected");
	is_int(errline, 11, "error line counts from the value's first line");
	j = pgjq_json_parse("\"\\u0000\"", 8, 0, 1, why, sizeof why, &errline);
	ok(j == NULL, "\\u0000 is rejected (jsonb cannot store it)");
	j = pgjq_json_parse("\"\xff\"", 3, 0, 1, why, sizeof why, &errline);
	ok(j == NULL, "invalid UTF-8 is rejected");

	{
		static const char env[] =
		    "{\"queue\": \"q\", \"payload\" : {\"n\": 12345678901234567890, \"s\": \"a,}\"} , \"priority\": 1}";

		ok(pgjq_json_member_text(env, sizeof env - 1, "payload", &vt, &vl) &&
		    vl == strlen("{\"n\": 12345678901234567890, \"s\": \"a,}\"}") &&
		    memcmp(vt, "{\"n\": 12345678901234567890, \"s\": \"a,}\"}", vl) == 0,
		    "payload text found byte for byte");
		ok(pgjq_json_member_text(env, sizeof env - 1, "priority", &vt, &vl) && vl == 1 && *vt == '1',
		    "scalar member");
		ok(!pgjq_json_member_text(env, sizeof env - 1, "after", &vt, &vl), "absent member");
	}
	return done_testing();
}
