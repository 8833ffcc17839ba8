/*
 * Fuzz target: cron expressions (lib/cron.c), as jq-schedule add and next
 * take them.  A rejection says why; an accepted expression has a value in
 * every field, and its next slots (in a zone with DST changes) only move
 * forward.
 */
#include "config.h"

#include <string.h>

#include "cron.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	struct pgjq_slots sl = {0};
	char why[256] = "";

	if (pgjq_cron_parse(s, &sl.cron, why, sizeof why) == 0) {
		int64_t t = INT64_C(1806000000) * 1000000, prev = t;

		FUZZ_CHECK(sl.cron.minute != 0 && sl.cron.hour != 0 && sl.cron.dom != 0 &&
		    sl.cron.month != 0 && sl.cron.dow != 0);
		FUZZ_CHECK((sl.cron.minute >> 60) == 0 && (sl.cron.hour >> 24) == 0 &&
		    (sl.cron.dom & 1) == 0 && (sl.cron.month & 0xe001) == 0 && (sl.cron.dow >> 7) == 0);
		strcpy(sl.tz, "Europe/Berlin");
		/* A few slots only: an expression may fire once in years (or never). */
		for (int i = 0; i < 3 && (t = pgjq_slots_next(&sl, prev)) >= 0; i++) {
			FUZZ_CHECK(t > prev);
			prev = t;
		}
	} else {
		FUZZ_CHECK(why[0] != '\0');
	}
	free(s);
	return 0;
}
