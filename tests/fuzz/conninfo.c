/*
 * Fuzz target: wiping the secrets out of connection strings (lib/conninfo.c),
 * which runs on every -d a tool is given, before libpq sees it.  Nothing
 * here connects.
 *
 * Invariants: hiding keeps the length and only ever writes 'x', again
 * when hiding twice; whenever libpq reads a secret out of the
 * string, it does not read the same secret out of the hidden string; and
 * the public copy, if libpq can read it, holds no secret at all.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "conninfo.h"
#include "xalloc.h"

#include "fuzz.h"

/* The value libpq reads for keyword in s, or NULL; the caller frees it. */
static char *
setting(const char *s, const char *keyword)
{
	PQconninfoOption *opts = PQconninfoParse(s, NULL), *o;
	char *v = NULL;

	if (opts == NULL)
		return NULL;
	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL && strcmp(o->keyword, keyword) == 0)
			v = pgjq_xstrdup(o->val);
	PQconninfoFree(opts);
	return v;
}

static bool
all_x(const char *s)
{
	return strspn(s, "x") == strlen(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), *hidden = pgjq_xstrdup(s), *twice, *pub;
	size_t len = strlen(s);
	bool found = pgjq_conninfo_hide(hidden);
	PQconninfoOption *opts;

	FUZZ_CHECK(strlen(hidden) == len);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(hidden[i] == s[i] || hidden[i] == 'x');
	FUZZ_CHECK(found || strcmp(hidden, s) == 0);
	/*
	 * Hiding again may wipe more (a wiped '/' can turn text into user
	 * information: crashes/conninfo/hide-twice-wipes-more), never less.
	 */
	twice = pgjq_xstrdup(hidden);
	pgjq_conninfo_hide(twice);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(twice[i] == hidden[i] || twice[i] == 'x');
	free(twice);

	opts = pgjq_conninfo_is_string(s) ? PQconninfoParse(s, NULL) : NULL;
	if (opts != NULL) {
		for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
			char *after;

			if (o->val == NULL || !pgjq_conninfo_secret_keyword(o->keyword, strlen(o->keyword)) || all_x(o->val))
				continue;
			after = setting(hidden, o->keyword);
			if (after != NULL && strcmp(after, o->val) == 0) {
				fprintf(stderr, "%s survives hiding: '%s'\n", o->keyword, hidden);
				FUZZ_CHECK(!"a secret survives pgjq_conninfo_hide");
			}
			free(after);
		}
		PQconninfoFree(opts);
	}

	pub = pgjq_conninfo_public(s);
	if (pub != NULL && pgjq_conninfo_is_string(pub) && (opts = PQconninfoParse(pub, NULL)) != NULL) {
		for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
			FUZZ_CHECK(o->val == NULL || !pgjq_conninfo_secret_keyword(o->keyword, strlen(o->keyword)) ||
			    !pgjq_conninfo_is_string(s));
		PQconninfoFree(opts);
	}
	free(pub);
	free(hidden);
	free(s);
	return 0;
}
