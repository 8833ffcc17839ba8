#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cron.h"
#include "xalloc.h"

/* ------------------------------------------------------------ parsing */

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct field {
	const char *what;
	int lo, hi;
	const char *const *names; /* names[i] is lo + i */
	const char *kind;         /* what a name would be */
} fields[5] = {
	{"minute", 0, 59, NULL, NULL},
	{"hour", 0, 23, NULL, NULL},
	{"day of month", 1, 31, NULL, NULL},
	{"month", 1, 12, month_names, "month"},
	{"day of week", 0, 7, dow_names, "weekday"}, /* 7 is Sunday too */
};

static const struct {
	const char *name, *expr;
} macros[] = {
	{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"}, {"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

/* One value of field f in s[0 .. len): a number or a name.  -1 (why said) if not. */
static int
field_value(const struct field *f, int fi, const char *s, size_t len, char *why, size_t size)
{
	long v = 0;

	if (len > 0 && isalpha((unsigned char)s[0])) {
		for (int i = 0; f->names != NULL && f->names[i] != NULL; i++)
			if (len == 3 && strncasecmp(s, f->names[i], 3) == 0)
				return f->lo + i;
		if (f->names != NULL)
			snprintf(why, size, "field %d (%s): '%.*s' is not a number or a %s name (%s-%s)",
			    fi + 1, f->what, (int)(len > 32 ? 32 : len), s, f->kind,
			    f->names[0], f->names[f == &fields[3] ? 11 : 6]);
		else
			snprintf(why, size, "field %d (%s): '%.*s' is not a number", fi + 1, f->what,
			    (int)(len > 32 ? 32 : len), s);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]) || v > 1000000) {
			snprintf(why, size, "field %d (%s): '%.*s' is not a number", fi + 1, f->what,
			    (int)(len > 32 ? 32 : len), s);
			return -1;
		}
		v = v * 10 + (s[i] - '0');
	}
	if (len == 0) {
		snprintf(why, size, "field %d (%s): a value is missing", fi + 1, f->what);
		return -1;
	}
	if (v < f->lo || v > f->hi) {
		snprintf(why, size, "field %d (%s): %ld is not in %d-%d", fi + 1, f->what, v, f->lo,
		    f->hi);
		return -1;
	}
	return (int)v;
}

/* Field fi's text s[0 .. len) as bits; -1 (why said) if it is not valid. */
static int
parse_field(int fi, const char *s, size_t len, uint64_t *bits, char *why, size_t size)
{
	const struct field *f = &fields[fi];
	const char *end = s + len;

	*bits = 0;
	while (s <= end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *item_end = comma != NULL ? comma : end;
		const char *slash = memchr(s, '/', (size_t)(item_end - s));
		const char *range_end = slash != NULL ? slash : item_end;
		int lo, hi, step = 1;

		if (range_end == s) {
			snprintf(why, size, "field %d (%s): %s", fi + 1, f->what,
			    slash != NULL ? "a step needs a range before it" : "an empty list item");
			return -1;
		}
		if (range_end - s == 1 && *s == '*') {
			lo = f->lo;
			hi = fi == 4 ? 6 : f->hi;
		} else {
			const char *dash = memchr(s + 1, '-', (size_t)(range_end - s - 1));

			if ((lo = field_value(f, fi, s, (size_t)((dash ? dash : range_end) - s), why,
			    size)) < 0)
				return -1;
			if (dash != NULL) {
				if ((hi = field_value(f, fi, dash + 1, (size_t)(range_end - dash - 1), why,
				    size)) < 0)
					return -1;
				if (hi < lo) {
					snprintf(why, size, "field %d (%s): range %.*s goes backwards", fi + 1,
					    f->what, (int)(range_end - s > 32 ? 32 : range_end - s), s);
					return -1;
				}
			} else {
				/* "N/S" is N to the end, every S. */
				hi = slash != NULL ? f->hi : lo;
			}
		}
		if (slash != NULL) {
			const char *st = slash + 1;
			size_t sl = (size_t)(item_end - st);
			long v = 0;

			for (size_t i = 0; i < sl && v >= 0 && v <= 1000; i++)
				v = isdigit((unsigned char)st[i]) ? v * 10 + (st[i] - '0') : -1;
			if (sl == 0 || v < 1 || v > f->hi) {
				snprintf(why, size, "field %d (%s): step '%.*s' is not in 1-%d", fi + 1,
				    f->what, (int)(sl > 32 ? 32 : sl), st, f->hi);
				return -1;
			}
			step = (int)v;
		}
		for (int v = lo; v <= hi; v += step)
			*bits |= UINT64_C(1) << (fi == 4 && v == 7 ? 0 : v);
		if (comma == NULL)
			break;
		s = comma + 1;
	}
	return 0;
}

int
pgjq_cron_parse(const char *expr, struct pgjq_cron *c, char *why, size_t size)
{
	const char *start[6], *p = expr;
	size_t len[6];
	uint64_t bits[5];
	int n = 0;

	memset(c, 0, sizeof *c);
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '@') {
		size_t l = strcspn(p, " \t");

		for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
			if (strlen(macros[i].name) == l && strncasecmp(p, macros[i].name, l) == 0 &&
			    p[l + strspn(p + l, " \t")] == '\0')
				return pgjq_cron_parse(macros[i].expr, c, why, size);
		snprintf(why, size, "'%.*s' is not one of @hourly, @daily, @weekly, @monthly, @yearly",
		    (int)(l > 32 ? 32 : l), p);
		return -1;
	}
	while (*p != '\0') {
		size_t l = strcspn(p, " \t");

		if (n < 6) {
			start[n] = p;
			len[n] = l;
		}
		n++;
		p += l;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	if (n != 5) {
		snprintf(why, size, "expected 5 fields (minute hour day-of-month month day-of-week), "
		    "got %d", n);
		return -1;
	}
	for (int i = 0; i < 5; i++)
		if (parse_field(i, start[i], len[i], &bits[i], why, size) < 0)
			return -1;
	c->minute = bits[0];
	c->hour = (uint32_t)bits[1];
	c->dom = (uint32_t)bits[2];
	c->month = (uint16_t)bits[3];
	c->dow = (uint8_t)bits[4];
	c->dom_star = start[2][0] == '*';
	c->dow_star = start[4][0] == '*';
	return 0;
}

/* ------------------------------------------------------------- zones */

bool
pgjq_tz_known(const char *zone)
{
	const char *dir = getenv("TZDIR");
	char magic[4];
	char *path;
	FILE *f;
	bool ok;

	if (zone == NULL || zone[0] == '\0' || zone[0] == '/' || zone[0] == '.' ||
	    strlen(zone) >= sizeof ((struct pgjq_slots *)0)->tz || strstr(zone, "..") != NULL ||
	    strspn(zone, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") !=
	    strlen(zone))
		return false;
	path = pgjq_xasprintf("%s/%s", dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo",
	    zone);
	f = fopen(path, "rb");
	free(path);
	if (f == NULL)
		return false;
	ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
	fclose(f);
	return ok;
}

/* The zone's rules in force for localtime_r: TZ set, the old value kept to put back. */
static char *
zone_enter(const char *zone)
{
	const char *old = getenv("TZ");
	char *saved = old != NULL ? pgjq_xstrdup(old) : NULL;

	setenv("TZ", zone, 1);
	tzset();
	return saved;
}

static void
zone_leave(char *saved)
{
	if (saved != NULL)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved);
}

/* ------------------------------------------------------------ calendar */

/*
 * Wall-clock times are counted as "naive" seconds: as if the zone's date
 * and time were UTC.  Days from 1970-01-01 of a civil date, and back.
 */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The naive wall-clock time of instant t in the zone in force. */
static int64_t
naive(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL)
		return t;
	return days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
	    tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
}

static bool
day_matches(const struct pgjq_cron *c, int64_t day, int d)
{
	int dow = (int)((day % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
	bool dom_ok = (c->dom >> d) & 1, dow_ok = (c->dow >> dow) & 1;

	/* Vixie cron: either day field starting with '*' makes them both apply; else either does. */
	if (c->dom_star || c->dow_star)
		return dom_ok && dow_ok;
	return dom_ok || dow_ok;
}

/* The first matching naive minute at or after W (minute-aligned), or -1 if none before limit. */
static int64_t
next_wall(const struct pgjq_cron *c, int64_t W, int64_t limit)
{
	while (W < limit) {
		int64_t day = floor_div(W, 86400), y;
		int secs = (int)(W - day * 86400), m, d, h = secs / 3600, mi = secs % 3600 / 60;

		civil_from_days(day, &y, &m, &d);
		if (!((c->month >> m) & 1)) {
			W = days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * 86400;
		} else if (!day_matches(c, day, d)) {
			W = (day + 1) * 86400;
		} else if (!((c->hour >> h) & 1)) {
			W = day * 86400 + (h + 1) * 3600;
		} else if (!((c->minute >> mi) & 1)) {
			W += 60;
		} else {
			return W;
		}
	}
	return -1;
}

/*
 * The instant wall time W first occurs; if it never does (skipped by a
 * change), the instant of the change.  The zone's offsets two days either
 * side give the candidates: no zone changes twice within four days.
 */
static int64_t
first_instant(int64_t W)
{
	int64_t o1 = naive(W - 2 * 86400) - (W - 2 * 86400);
	int64_t o2 = naive(W + 2 * 86400) - (W + 2 * 86400);
	int64_t c1 = W - o1, c2 = W - o2, lo, hi;
	bool ok1 = naive(c1) == W, ok2 = naive(c2) == W;

	if (ok1 && ok2)
		return c1 < c2 ? c1 : c2;
	if (ok1 || ok2)
		return ok1 ? c1 : c2;
	/* In a gap: naive(lo) < W < naive(hi); the change is the first second past W. */
	lo = c1 < c2 ? c1 : c2;
	hi = c1 < c2 ? c2 : c1;
	if (lo == hi)
		return c1;
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;

		if (naive(mid) > W)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

int64_t
pgjq_slots_next(const struct pgjq_slots *s, int64_t after_us)
{
	int64_t after, W, limit, found = -1;
	char *saved;

	if (s->every_us > 0)
		return (floor_div(after_us, s->every_us) + 1) * s->every_us;
	after = floor_div(after_us, 1000000);
	saved = zone_enter(s->tz);
	/* Any wall time more than three hours before now was first seen before it. */
	W = floor_div(naive(after) - 3 * 3600, 60) * 60;
	limit = W + INT64_C(10) * 366 * 86400;
	while ((W = next_wall(&s->cron, W, limit)) >= 0) {
		int64_t t = first_instant(W);

		if (t * 1000000 > after_us) {
			found = t * 1000000;
			break;
		}
		W += 60;
	}
	zone_leave(saved);
	return found;
}

void
pgjq_slots_format(int64_t us, const char *zone, char *buf, size_t size)
{
	char *saved = zone_enter(zone);
	time_t t = (time_t)floor_div(us, 1000000);
	struct tm tm;
	char off[8];
	size_t n;

	if (localtime_r(&t, &tm) == NULL || (n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm)) == 0 ||
	    strftime(off, sizeof off, "%z", &tm) != 5) {
		snprintf(buf, size, "@%lld", (long long)t);
	} else {
		/* +0200 as +02:00, as PostgreSQL and ISO 8601 write it. */
		snprintf(buf + n, size - n, "%.3s:%s", off, off + 3);
	}
	zone_leave(saved);
}
