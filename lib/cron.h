/*
 * cron: when a schedule's slots fall.  Parses five-field cron expressions
 * (and @hourly..@yearly) and --every intervals, and finds the next slot
 * after a given instant in an IANA zone, through daylight-saving changes.
 *
 * Zones come from the system's tz database through the C library
 * (localtime_r with TZ set); nothing here knows a zone's rules.  A slot is
 * a wall-clock time in the zone, fired at its first occurrence: in a
 * repeated hour it fires once, and a wall time skipped by a change fires
 * once, at the change (cronie's rules for fixed-time jobs).
 */
#ifndef PGJQ_CRON_H
#define PGJQ_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A parsed cron expression: a bit per allowed value of each field. */
struct pgjq_cron {
	uint64_t minute;        /* bits 0-59 */
	uint32_t hour;          /* bits 0-23 */
	uint32_t dom;           /* bits 1-31 */
	uint16_t month;         /* bits 1-12 */
	uint8_t dow;            /* bits 0-6, Sunday 0 */
	bool dom_star, dow_star; /* the field began with '*': Vixie cron's day rule */
};

/* What a schedule fires on: a cron expression in a zone, or an interval. */
struct pgjq_slots {
	struct pgjq_cron cron;
	int64_t every_us;       /* > 0: every so long from the epoch, and cron is unused */
	char tz[128];           /* IANA zone name */
};

/*
 * Parses a cron expression.  Returns 0, or -1 with why (size bytes) saying
 * where and what, e.g. "field 3 (day of month): 32 is not in 1-31".
 */
int pgjq_cron_parse(const char *expr, struct pgjq_cron *c, char *why, size_t size);

/* Whether the system's tz database knows zone (an IANA name such as "Europe/Berlin"). */
bool pgjq_tz_known(const char *zone);

/*
 * The first slot strictly after the instant after_us (microseconds since
 * the epoch), in microseconds; -1 if none within ten years.
 */
int64_t pgjq_slots_next(const struct pgjq_slots *s, int64_t after_us);

/* Writes instant us as ISO 8601 local time in zone with its offset, e.g. "2027-03-28T03:00:00+02:00". */
void pgjq_slots_format(int64_t us, const char *zone, char *buf, size_t size);

#endif
