/*
 * Fuzz target: job ids and comma-separated id lists (lib/job.c), as
 * jq-status, jq-retry, jq-cancel and --after take them.  Every id taken
 * is positive, the list is as long as the ids in it, and the array
 * literal made of it lists them again.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "fuzz.h"
#include "job.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	int64_t *ids = NULL, id = 0;
	size_t n = 0, cap = 0, commas = 0;
	bool ok;

	if (pgjq_id_parse(s, &id))
		FUZZ_CHECK(id > 0);
	/* Appends after what is there already, as repeated options do. */
	FUZZ_CHECK(pgjq_id_list_parse("7", &ids, &n, &cap) && n == 1 && ids[0] == 7);
	ok = pgjq_id_list_parse(s, &ids, &n, &cap);
	FUZZ_CHECK(n >= 1 && n <= cap && ids[0] == 7);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(ids[i] > 0);
	for (const char *p = s; *p; p++)
		commas += *p == ',';
	if (ok) {
		char *lit = pgjq_id_array(ids + 1, n - 1), *p = lit + 1, *end;

		FUZZ_CHECK(n - 1 == commas + 1);
		FUZZ_CHECK(lit[0] == '{' && lit[strlen(lit) - 1] == '}');
		for (size_t i = 1; i < n; i++) {
			FUZZ_CHECK(strtoll(p, &end, 10) == ids[i]);
			FUZZ_CHECK(*end == (i + 1 < n ? ',' : '}'));
			p = end + 1;
		}
		free(lit);
	} else {
		FUZZ_CHECK(n - 1 <= commas);
	}
	free(ids);
	free(s);
	return 0;
}
