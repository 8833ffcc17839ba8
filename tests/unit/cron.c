/*
 * Unit tests for lib/cron.c: the cron grammar, its errors, and next slots
 * through daylight-saving changes.  The expected DST times were worked out
 * by hand from the zones' 2027 rules and cronie's behaviour for fixed-time
 * jobs (a skipped time runs at the change, a repeated one once): see the
 * comment at each case.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "tap.h"

static char why[256];

static const char *
reject(const char *expr)
{
	struct pgjq_cron c;

	why[0] = '\0';
	if (pgjq_cron_parse(expr, &c, why, sizeof why) == 0)
		return "(accepted)";
	return why;
}

/* UTC "YYYY-MM-DD HH:MM" as microseconds. */
static int64_t
utc(const char *s)
{
	struct tm tm = {0};

	sscanf(s, "%d-%d-%d %d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000000;
}

/* The next slot of expr in zone after UTC time from, as "YYYY-MM-DD HH:MM" UTC. */
static const char *
next(const char *expr, const char *zone, const char *from)
{
	static char out[64];
	struct pgjq_slots s = {0};
	int64_t t;
	time_t tt;
	struct tm tm;

	if (pgjq_cron_parse(expr, &s.cron, why, sizeof why) != 0)
		return why;
	snprintf(s.tz, sizeof s.tz, "%s", zone);
	t = pgjq_slots_next(&s, utc(from));
	if (t < 0)
		return "none";
	tt = (time_t)(t / 1000000);
	gmtime_r(&tt, &tm);
	strftime(out, sizeof out, "%Y-%m-%d %H:%M", &tm);
	return out;
}

int
main(void)
{
	struct pgjq_cron c;
	struct pgjq_slots ev = {.every_us = 1000000};
	char buf[64];

	plan(53);

	/* Grammar. */
	ok(pgjq_cron_parse("*/15 9-17 * * MON-fri", &c, why, sizeof why) == 0, "steps, ranges, names");
	is_int((long long)c.minute, (1LL << 0) | (1LL << 15) | (1LL << 30) | (1LL << 45), "*/15");
	is_int(c.hour, 0x3fe00, "9-17");
	is_int(c.dow, 0x3e, "MON-fri");
	ok(pgjq_cron_parse("0 0 1,15 jan,JUL 7", &c, why, sizeof why) == 0 && c.dow == 1 &&
	    c.month == ((1 << 1) | (1 << 7)) && c.dom == ((1u << 1) | (1u << 15)),
	    "lists, month names, 7 is Sunday");
	ok(pgjq_cron_parse("5/20 * * * *", &c, why, sizeof why) == 0 &&
	    c.minute == ((1ULL << 5) | (1ULL << 25) | (1ULL << 45)), "N/S runs from N to the end");
	ok(pgjq_cron_parse("10-40/10 * * * *", &c, why, sizeof why) == 0 &&
	    c.minute == ((1ULL << 10) | (1ULL << 20) | (1ULL << 30) | (1ULL << 40)), "range with step");
	ok(pgjq_cron_parse("  0\t12 * * *  ", &c, why, sizeof why) == 0, "blanks around and between");
	ok(pgjq_cron_parse("@daily", &c, why, sizeof why) == 0 && c.minute == 1 && c.hour == 1 &&
	    c.dom_star && c.dow_star, "@daily");
	ok(pgjq_cron_parse("@Yearly", &c, why, sizeof why) == 0 && c.month == 2 && c.dom == 2,
	    "@yearly, any case");
	ok(pgjq_cron_parse("@weekly", &c, why, sizeof why) == 0 && c.dow == 1, "@weekly");
	ok(pgjq_cron_parse("@hourly", &c, why, sizeof why) == 0 && c.hour == 0xffffff, "@hourly");
	ok(pgjq_cron_parse("@monthly", &c, why, sizeof why) == 0 && c.dom == 2, "@monthly");

	/* Errors name the field and the value. */
	is_str(reject("0 0 32 * *"), "field 3 (day of month): 32 is not in 1-31", "day of month range");
	is_str(reject("60 * * * *"), "field 1 (minute): 60 is not in 0-59", "minute range");
	is_str(reject("0 24 * * *"), "field 2 (hour): 24 is not in 0-23", "hour range");
	is_str(reject("0 0 * 13 *"), "field 4 (month): 13 is not in 1-12", "month range");
	is_str(reject("0 0 * * 8"), "field 5 (day of week): 8 is not in 0-7", "weekday range");
	is_str(reject("0 0 * foo *"), "field 4 (month): 'foo' is not a number or a month name (jan-dec)",
	    "month name");
	is_str(reject("0 0 * * funday"),
	    "field 5 (day of week): 'funday' is not a number or a weekday name (sun-sat)", "weekday name");
	is_str(reject("x * * * *"), "field 1 (minute): 'x' is not a number", "not a number");
	is_str(reject("5-2 * * * *"), "field 1 (minute): range 5-2 goes backwards", "backwards range");
	is_str(reject("*/0 * * * *"), "field 1 (minute): step '0' is not in 1-59", "step 0");
	is_str(reject("* */x * * *"), "field 2 (hour): step 'x' is not in 1-23", "bad step");
	is_str(reject("1,,2 * * * *"), "field 1 (minute): an empty list item", "empty list item");
	is_str(reject("* * * *"), "expected 5 fields (minute hour day-of-month month day-of-week), got 4",
	    "four fields");
	is_str(reject("* * * * * *"),
	    "expected 5 fields (minute hour day-of-month month day-of-week), got 6", "six fields");
	is_str(reject("@reboot"), "'@reboot' is not one of @hourly, @daily, @weekly, @monthly, @yearly",
	    "@reboot");
	is_str(reject(""), "expected 5 fields (minute hour day-of-month month day-of-week), got 0",
	    "empty");

	/* Next slots in UTC, and the day rule. */
	is_str(next("*/15 * * * *", "UTC", "2027-01-01 10:07"), "2027-01-01 10:15", "next quarter");
	is_str(next("0 0 * * *", "UTC", "2027-01-01 00:00"), "2027-01-02 00:00", "strictly after");
	/* 2027-01-01 is a Friday: "13th or Friday" fires on it; "*\/1 day and Friday" too. */
	is_str(next("0 0 13 * 5", "UTC", "2026-12-31 12:00"), "2027-01-01 00:00", "day rule: OR");
	is_str(next("0 0 13 * 5", "UTC", "2027-01-09 12:00"), "2027-01-13 00:00",
	    "day rule: the 13th, a Wednesday");
	is_str(next("0 0 */2 * 1", "UTC", "2027-01-01 00:00"), "2027-01-11 00:00",
	    "day rule: a '*' field makes it AND (odd days that are Mondays)");
	is_str(next("0 12 29 2 *", "UTC", "2027-01-01 00:00"), "2028-02-29 12:00", "leap day");
	is_str(next("0 0 30 2 *", "UTC", "2027-01-01 00:00"), "none", "February 30th never comes");
	is_str(next("@yearly", "UTC", "2027-06-01 00:00"), "2028-01-01 00:00", "@yearly");

	/*
	 * Europe/Berlin 2027: CET→CEST on 28 March at 01:00 UTC (02:00→03:00),
	 * CEST→CET on 31 October at 01:00 UTC (03:00→02:00).
	 */
	is_str(next("30 2 * * *", "Europe/Berlin", "2027-03-27 00:00"), "2027-03-27 01:30",
	    "Berlin: 02:30 CET the day before");
	is_str(next("30 2 * * *", "Europe/Berlin", "2027-03-27 01:30"), "2027-03-28 01:00",
	    "Berlin: 02:30 does not exist on 28 March: once, at the change (03:00 CEST)");
	is_str(next("30 2 * * *", "Europe/Berlin", "2027-03-28 01:00"), "2027-03-29 00:30",
	    "Berlin: 02:30 CEST the day after");
	is_str(next("*/15 2 * * *", "Europe/Berlin", "2027-03-27 23:00"), "2027-03-28 01:00",
	    "Berlin: four skipped slots fire once at the change...");
	is_str(next("*/15 2 * * *", "Europe/Berlin", "2027-03-28 01:00"), "2027-03-29 00:00",
	    "... and only once");
	is_str(next("30 2 * * *", "Europe/Berlin", "2027-10-30 00:30"), "2027-10-31 00:30",
	    "Berlin: 02:30 on 31 October is its first occurrence, CEST");
	is_str(next("30 2 * * *", "Europe/Berlin", "2027-10-31 00:30"), "2027-11-01 01:30",
	    "Berlin: not again in the repeated hour; next 02:30 CET");
	is_str(next("*/30 * * * *", "Europe/Berlin", "2027-10-31 00:30"), "2027-10-31 02:00",
	    "Berlin: */30 skips the second 02:00 and 02:30");

	/*
	 * America/New_York 2027: EST→EDT on 14 March at 07:00 UTC (02:00→03:00),
	 * EDT→EST on 7 November at 06:00 UTC (02:00→01:00).
	 */
	is_str(next("30 2 * * *", "America/New_York", "2027-03-13 00:00"), "2027-03-13 07:30",
	    "New York: 02:30 EST the day before");
	is_str(next("30 2 * * *", "America/New_York", "2027-03-13 07:30"), "2027-03-14 07:00",
	    "New York: skipped 02:30 fires at the change (03:00 EDT)");
	is_str(next("30 2 * * *", "America/New_York", "2027-03-14 07:00"), "2027-03-15 06:30",
	    "New York: 02:30 EDT the day after");
	is_str(next("30 1 * * *", "America/New_York", "2027-11-06 06:00"), "2027-11-07 05:30",
	    "New York: 01:30 on 7 November at its first occurrence, EDT");
	is_str(next("30 1 * * *", "America/New_York", "2027-11-07 05:30"), "2027-11-08 06:30",
	    "New York: not again at 01:30 EST; next day 01:30 EST");

	/* Intervals count from the epoch; zones. */
	is_int(pgjq_slots_next(&ev, 1500000), 2000000, "--every 1s: the next whole second");
	pgjq_slots_format(utc("2027-03-28 01:00"), "Europe/Berlin", buf, sizeof buf);
	is_str(buf, "2027-03-28T03:00:00+02:00", "format in a zone");
	ok(pgjq_tz_known("Europe/Berlin") && pgjq_tz_known("UTC") && !pgjq_tz_known("Mars/Olympus") &&
	    !pgjq_tz_known("../etc/passwd") && !pgjq_tz_known(""), "zones known and not");
	return done_testing();
}
