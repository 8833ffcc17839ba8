/* Unit tests for lib/duration.c: every form the contract and pgjq(7) promise. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "duration.h"
#include "tap.h"

static int64_t
parse(const char *s)
{
	const char *why;
	int64_t us = -1;

	if (pgjq_parse_duration(s, &us, &why) != 0)
		return -1;
	return us;
}

static const char *
reject(const char *s)
{
	const char *why = NULL;
	int64_t us;

	if (pgjq_parse_duration(s, &us, &why) == 0)
		return NULL;
	return why;
}

int
main(void)
{
	char buf[64];

	plan(27);
	is_int(parse("250ms"), 250000, "250ms");
	is_int(parse("30s"), 30000000, "30s");
	is_int(parse("5m"), 300000000, "5m");
	is_int(parse("2h"), 7200000000LL, "2h");
	is_int(parse("1d"), 86400000000LL, "1d");
	is_int(parse("45"), 45000000, "a bare number is seconds");
	is_int(parse("1.5s"), 1500000, "a fraction");
	is_int(parse("0.25"), 250000, "a bare fraction is seconds");
	is_int(parse("1h30m"), 5400000000LL, "units run together");
	is_int(parse("1m30s250ms"), 90250000, "three units");
	is_int(parse("0"), 0, "zero");
	is_int(parse("10us"), 10, "microseconds");
	is_int(parse(".5s"), 500000, "a leading point");

	ok(reject("") != NULL, "empty is rejected");
	ok(reject("-5s") != NULL && strcmp(reject("-5s"), "negative") == 0, "negative is rejected as such");
	ok(reject("5x") != NULL, "unknown unit");
	ok(reject("s") != NULL, "unit without number");
	ok(reject("5 s") != NULL, "space inside");
	ok(reject("1h30") != NULL, "a bare number only alone");
	ok(reject("5sec") != NULL, "long unit names are not units");
	ok(reject("99999999999999999999d") != NULL, "overflow is caught");
	ok(reject("40000d") != NULL && strcmp(reject("40000d"), "too long") == 0, "beyond the maximum");
	ok(reject(".s") != NULL, "a point alone is no number");

	pgjq_format_interval(1500000, buf, sizeof buf);
	is_str(buf, "1500000 microseconds", "interval literal");
	pgjq_format_duration(250000, buf, sizeof buf);
	is_str(buf, "250ms", "human ms");
	pgjq_format_duration(3723000000LL, buf, sizeof buf);
	is_str(buf, "1h02m", "human hours");
	pgjq_format_duration(3200000, buf, sizeof buf);
	is_str(buf, "3.2s", "human seconds");
	return done_testing();
}
