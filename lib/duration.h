/*
 * duration: the one way every tool reads and writes lengths of time.
 *
 * Input is "250ms", "30s", "5m", "2h", "1d", a fraction such as "1.5s",
 * units run together such as "1h30m", or a bare number of seconds.
 */
#ifndef PGJQ_DURATION_H
#define PGJQ_DURATION_H

#include <stdint.h>

/* Longest duration accepted: about 100 years, far from int64 overflow. */
#define PGJQ_DURATION_MAX_US (INT64_C(100) * 366 * 86400 * 1000000)

/*
 * Parses s into microseconds.  Returns 0, or -1 with *why set to a static
 * message fit to follow "invalid duration 'X': ".
 */
int pgjq_parse_duration(const char *s, int64_t *usec, const char **why);

/* Writes usec as a PostgreSQL interval literal into buf (at least 32 bytes). */
void pgjq_format_interval(int64_t usec, char *buf, unsigned long size);

/* Writes usec for people, e.g. "1h02m", "3.2s", "250ms", into buf. */
void pgjq_format_duration(int64_t usec, char *buf, unsigned long size);

#endif
