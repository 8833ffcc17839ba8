/*
 * Fuzz target: durations (lib/duration.c), as every option and envelope
 * field gives them.  A success is 0 to PGJQ_DURATION_MAX_US, and what it
 * is written as for people and for PostgreSQL reads back.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "duration.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	const char *why = NULL;
	int64_t us = -1, again = -1;
	char buf[64], interval[64];

	if (pgjq_parse_duration(s, &us, &why) == 0) {
		FUZZ_CHECK(us >= 0 && us <= PGJQ_DURATION_MAX_US);
		/* Text with a NUL in it parses as its first part only. */
		pgjq_format_interval(us, interval, sizeof interval);
		FUZZ_CHECK(strtoll(interval, NULL, 10) == us);
		pgjq_format_duration(us, buf, sizeof buf);
		FUZZ_CHECK(strlen(buf) > 0 && strlen(buf) < sizeof buf - 1);
		/* The people's form is rounded down, never up, and parses. */
		FUZZ_CHECK(pgjq_parse_duration(buf, &again, &why) == 0);
		FUZZ_CHECK(again >= 0 && again <= us);
	} else {
		FUZZ_CHECK(why != NULL && *why != '\0');
	}
	free(s);
	return 0;
}
