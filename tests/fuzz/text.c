/*
 * Fuzz target: the text rules of lib/job.c: UTF-8 checking, cleaning
 * arbitrary bytes (a handler's output) into text the database takes, and
 * queue names, keys and state names.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "job.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	bool valid = pgjq_utf8_valid(p, size);
	char *clean = pgjq_text_clean(p, size), *name;
	size_t len = strlen(clean);
	int st;

	/* Always text; unchanged if it was text already; at most 3 bytes for each byte. */
	FUZZ_CHECK(pgjq_utf8_valid(clean, len));
	FUZZ_CHECK(len >= size && len <= 3 * size);
	if (valid)
		FUZZ_CHECK(len == size && memcmp(clean, p, size) == 0);
	else
		FUZZ_CHECK(strstr(clean, "\xEF\xBF\xBD") != NULL);
	/* Cleaning is idempotent. */
	{
		char *twice = pgjq_text_clean(clean, len);

		FUZZ_CHECK(strcmp(twice, clean) == 0);
		free(twice);
	}
	free(clean);

	if (pgjq_queue_valid(p, size)) {
		FUZZ_CHECK(size >= 1 && size <= PGJQ_QUEUE_MAX);
		FUZZ_CHECK(valid);
	}
	if (pgjq_key_valid(p, size))
		FUZZ_CHECK(valid && size >= 1 && size <= PGJQ_KEY_MAX);

	name = fuzz_cstr(data, size);
	st = pgjq_state_parse(name);
	FUZZ_CHECK(st >= -1 && st < PGJQ_NSTATES);
	if (st >= 0)
		FUZZ_CHECK(strcmp(pgjq_state_name((enum pgjq_state)st), name) == 0);
	free(name);
	return 0;
}
