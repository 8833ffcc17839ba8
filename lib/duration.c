#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"

struct unit {
	const char *name;
	int64_t usec;
};

/* Longer names first so "ms" is not read as "m" followed by junk. */
static const struct unit units[] = {
	{"ms", INT64_C(1000)},
	{"us", INT64_C(1)},
	{"s", INT64_C(1000000)},
	{"m", INT64_C(60000000)},
	{"h", INT64_C(3600000000)},
	{"d", INT64_C(86400000000)},
};

static const struct unit *
match_unit(const char *p, size_t *len)
{
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		size_t n = strlen(units[i].name);

		if (strncmp(p, units[i].name, n) == 0 &&
		    !isalpha((unsigned char)p[n])) {
			*len = n;
			return &units[i];
		}
	}
	return NULL;
}

int
pgjq_parse_duration(const char *s, int64_t *usec, const char **why)
{
	const char *p = s;
	int64_t total = 0;
	int parts = 0;

	if (*p == '\0') {
		*why = "empty";
		return -1;
	}
	while (*p) {
		int64_t whole = 0, frac = 0, frac_scale = 1;
		const struct unit *u;
		size_t ulen = 0;
		int digits = 0;

		if (!isdigit((unsigned char)*p) && *p != '.') {
			*why = *p == '-' ? "negative" : "expected a number";
			return -1;
		}
		for (; isdigit((unsigned char)*p); p++, digits++) {
			if (whole > PGJQ_DURATION_MAX_US) {
				*why = "too long";
				return -1;
			}
			whole = whole * 10 + (*p - '0');
		}
		if (*p == '.') {
			p++;
			for (; isdigit((unsigned char)*p); p++, digits++) {
				/* Digits past microsecond precision add nothing. */
				if (frac_scale < INT64_C(1000000000000)) {
					frac = frac * 10 + (*p - '0');
					frac_scale *= 10;
				}
			}
		}
		if (digits == 0) {
			*why = "expected a number";
			return -1;
		}
		if (*p == '\0' && parts == 0) {
			u = &units[2]; /* a bare number is seconds */
		} else if ((u = match_unit(p, &ulen)) == NULL) {
			*why = "unknown unit (use ms, s, m, h or d)";
			return -1;
		}
		p += ulen;
		if (whole > PGJQ_DURATION_MAX_US / u->usec) {
			*why = "too long";
			return -1;
		}
		/*
		 * The fraction, in microseconds: frac * usec / frac_scale without
		 * overflow.  Every unit is a multiple of 10^k, frac_scale a power
		 * of 10: cancelling the common tens leaves factors small enough.
		 */
		{
			int64_t unit = u->usec;

			while (frac_scale > 1 && unit % 10 == 0) {
				unit /= 10;
				frac_scale /= 10;
			}
			total += whole * u->usec + frac * unit / frac_scale;
		}
		if (total > PGJQ_DURATION_MAX_US) {
			*why = "too long";
			return -1;
		}
		parts++;
	}
	*usec = total;
	return 0;
}

void
pgjq_format_interval(int64_t usec, char *buf, unsigned long size)
{
	snprintf(buf, size, "%" PRId64 " microseconds", usec);
}

void
pgjq_format_duration(int64_t usec, char *buf, unsigned long size)
{
	int64_t s = usec / 1000000;

	if (usec < 1000)
		snprintf(buf, size, "%" PRId64 "us", usec);
	else if (usec < 1000000)
		snprintf(buf, size, "%" PRId64 "ms", usec / 1000);
	else if (s < 60)
		snprintf(buf, size, "%" PRId64 ".%" PRId64 "s", s, usec / 100000 % 10);
	else if (s < 3600)
		snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(buf, size, "%" PRId64 "d%02" PRId64 "h", s / 86400, s / 3600 % 24);
}
