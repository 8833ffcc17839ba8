/*
 * jget: picks fields out of JSON lines, for the tests, so they need no
 * jq(1) (not among the packages a fresh machine gets).
 *
 *	jget [-r] PATH...  < lines
 *
 * For each line of standard input, one line of output: with one PATH its
 * value, with several a JSON array of their values.  A PATH is "." (the
 * whole value) or ".a.b.c" (object members).  A missing member is null.
 * -r prints strings without quotes and several values separated by
 * spaces.  A line that is not JSON is an error: exit 65, naming the line.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *
lookup(json_t *v, const char *path)
{
	char *copy, *name, *save = NULL;

	if (strcmp(path, ".") == 0)
		return v;
	copy = strdup(path);
	if (copy == NULL)
		abort();
	for (name = strtok_r(copy, ".", &save); name != NULL && v != NULL;
	    name = strtok_r(NULL, ".", &save))
		v = json_object_get(v, name);
	free(copy);
	return v;
}

/*
 * One value.  An input with an integer too big for jansson is read again
 * with integers as reals; those that are whole print as integers again.
 */
static void
print_value(json_t *v, int raw)
{
	char *text;

	if (v == NULL)
		v = json_null();
	if (raw && json_is_string(v)) {
		fputs(json_string_value(v), stdout);
		return;
	}
	if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
	    fabs(json_real_value(v)) < 1e15) {
		printf("%.0f", json_real_value(v));
		return;
	}
	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
	fputs(text, stdout);
	free(text);
}

int
main(int argc, char **argv)
{
	char *line = NULL;
	size_t cap = 0;
	long lineno = 0;
	int first = 1;
	int raw = 0;

	if (argc > 1 && strcmp(argv[1], "-r") == 0) {
		raw = 1;
		first = 2;
	}
	if (first >= argc) {
		fprintf(stderr, "usage: jget [-r] path...\n");
		return 64;
	}
	while (getline(&line, &cap, stdin) >= 0) {
		json_error_t err;
		json_t *v = json_loads(line, JSON_DECODE_ANY, &err);

		if (v == NULL)
			v = json_loads(line, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &err);
		lineno++;
		if (v == NULL) {
			fprintf(stderr, "jget: stdin:%ld: %s\n", lineno, err.text);
			return 65;
		}
		if (!raw && argc - first > 1)
			putchar('[');
		for (int i = first; i < argc; i++) {
			if (i > first)
				putchar(raw ? ' ' : ',');
			print_value(lookup(v, argv[i]), raw);
		}
		if (!raw && argc - first > 1)
			putchar(']');
		putchar('\n');
		json_decref(v);
	}
	free(line);
	return 0;
}
