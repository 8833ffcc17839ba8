#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"
#include "diag.h"
#include "duration.h"
#include "channel.h"
#include "schedule.h"
#include "xalloc.h"

static const char *const catch_up_names[] = {"none", "last", "all"};

int
pgjq_catch_up_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(s, catch_up_names[i]) == 0)
			return i;
	return -1;
}

const char *
pgjq_catch_up_name(enum pgjq_catch_up c)
{
	return catch_up_names[c];
}

int
pgjq_schedule_slots(const char *cron, int64_t every_us, const char *tz, struct pgjq_slots *sl,
    char *why, size_t size)
{
	memset(sl, 0, sizeof *sl);
	if (!pgjq_tz_known(tz)) {
		snprintf(why, size, "time zone '%s' is not in this host's tz database", tz);
		return -1;
	}
	snprintf(sl->tz, sizeof sl->tz, "%s", tz);
	if (cron == NULL) {
		sl->every_us = every_us;
		if (every_us <= 0) {
			snprintf(why, size, "no cron expression and no interval");
			return -1;
		}
		return 0;
	}
	return pgjq_cron_parse(cron, &sl->cron, why, size);
}

int
pgjq_schedule_plan(const struct pgjq_slots *sl, enum pgjq_catch_up cu, int64_t due_us,
    int64_t now_us, int64_t *slots, int64_t *next)
{
	int64_t t, latest;
	int n = 0;

	/* due_us is the first slot at or after next_at, whatever set it (add, or an UPDATE by hand). */
	if ((due_us = t = pgjq_slots_next(sl, due_us - 1)) < 0)
		return -1;
	if (t > now_us) {
		*next = t;
		return 0;
	}
	if (cu == PGJQ_CATCH_UP_ALL) {
		while (t <= now_us && n < PGJQ_SCHEDULE_BURST) {
			slots[n++] = t;
			t = pgjq_slots_next(sl, t);
			if (t < 0)
				break;
		}
		*next = t;
		return t < 0 ? (n > 0 ? n : -1) : n;
	}
	/* The latest slot due; the ones before it are folded into it, or dropped. */
	if (sl->every_us > 0) {
		latest = now_us - ((now_us % sl->every_us) + sl->every_us) % sl->every_us;
		if (latest < due_us)
			latest = due_us;
	} else {
		/* Far behind (a worker down for years): look back a year and a bit, no further. */
		int64_t from = now_us - INT64_C(400) * 86400 * 1000000;

		latest = due_us;
		t = due_us > from ? due_us : pgjq_slots_next(sl, from);
		while (t >= 0 && t <= now_us) {
			latest = t;
			t = pgjq_slots_next(sl, t);
		}
	}
	*next = pgjq_slots_next(sl, now_us);
	if (cu == PGJQ_CATCH_UP_LAST || now_us - latest <= PGJQ_SCHEDULE_LATE_US)
		slots[n++] = latest;
	return *next < 0 && n == 0 ? -1 : n;
}

/* ------------------------------------------------------ jq-schedule */

static void
write_out(struct pgjq_buf *b)
{
	if ((b->len > 0 && fwrite(b->data, 1, b->len, stdout) != b->len) || fflush(stdout) != 0)
		pgjq_die(PGJQ_EX_IOERR, "cannot write to stdout");
	pgjq_buf_free(b);
}

static void
put_json(struct pgjq_buf *b, json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (text == NULL)
		pgjq_die(PGJQ_EX_SOFTWARE, "out of memory");
	pgjq_buf_printf(b, "%s\n", text);
	free(text);
	json_decref(o);
}

/* The database's clock, in microseconds: slots are reckoned by it, whatever this host's says. */
static int64_t
db_now(PGconn *conn)
{
	PGresult *res = pgjq_exec_or_die(conn,
	    "SELECT (extract(epoch FROM pg_catalog.now()) * 1000000)::bigint", 0, NULL);
	int64_t t = strtoll(PQgetvalue(res, 0, 0), NULL, 10);

	PQclear(res);
	return t;
}

static const char add_sql[] =
	"WITH u AS ("
	"  INSERT INTO {S}.schedules AS s (name, queue, cron, every, tz, catch_up, payload, priority,"
	"                                  max_attempts, timeout, next_at)"
	"  VALUES ($1, $2, $3, $4::interval, $5, $6, $7::jsonb, $8::integer, $9::integer,"
	"          $10::interval, pg_catalog.to_timestamp($11::double precision))"
	"  ON CONFLICT (name) DO UPDATE"
	"     SET queue = excluded.queue, cron = excluded.cron, every = excluded.every,"
	"         tz = excluded.tz, catch_up = excluded.catch_up, payload = excluded.payload,"
	"         priority = excluded.priority, max_attempts = excluded.max_attempts,"
	"         timeout = excluded.timeout, next_at = excluded.next_at,"
	"         updated_at = pg_catalog.now()"
	"  RETURNING s.queue, s.xmax::text <> '0' AS replaced)"
	"SELECT u.replaced, pg_catalog.pg_notify($12, u.queue) FROM u";

int
pgjq_schedule_add(PGconn *conn, const char *schema, const struct pgjq_schedule_add *a, bool json)
{
	struct pgjq_slots sl;
	char why[256], every[64], pri[16], att[16], timeout[64], next_secs[64], when[64];
	char *chan = pgjq_channel_name(schema, PGJQ_CHANNEL_SCHEDULE);
	const char *params[12];
	int64_t next;
	bool replaced;
	PGresult *res;
	struct pgjq_buf out = {0};

	if (pgjq_schedule_slots(a->cron, a->every_us, a->tz, &sl, why, sizeof why) != 0)
		pgjq_die(PGJQ_EX_USAGE, "%s: %s", a->cron != NULL ? "--cron" : "--tz", why);
	next = pgjq_slots_next(&sl, db_now(conn));
	if (next < 0)
		pgjq_die(PGJQ_EX_USAGE, "--cron: '%s' never fires (no such day in ten years)", a->cron);
	pgjq_format_interval(a->every_us, every, sizeof every);
	snprintf(pri, sizeof pri, "%d", a->priority);
	snprintf(att, sizeof att, "%d", a->max_attempts);
	pgjq_format_interval(a->timeout_us, timeout, sizeof timeout);
	snprintf(next_secs, sizeof next_secs, "%lld.%06lld", (long long)(next / 1000000),
	    (long long)(next % 1000000));
	params[0] = a->name;
	params[1] = a->queue;
	params[2] = a->cron;
	params[3] = a->cron == NULL ? every : NULL;
	params[4] = a->tz;
	params[5] = pgjq_catch_up_name(a->catch_up);
	params[6] = a->payload;
	params[7] = pri;
	params[8] = att;
	params[9] = a->timeout_us > 0 ? timeout : NULL;
	params[10] = next_secs;
	params[11] = chan;
	res = pgjq_exec_or_die(conn, pgjq_sql(add_sql), 12, params);
	replaced = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	free(chan);
	pgjq_slots_format(next, a->tz, when, sizeof when);
	if (replaced)
		pgjq_warn("schedule '%s' replaced; its next slot is %s", a->name, when);
	if (json) {
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(a->name));
		json_object_set_new(o, "replaced", json_boolean(replaced));
		json_object_set_new(o, "next", json_string(when));
		put_json(&out, o);
	} else {
		pgjq_buf_printf(&out, "%s\n", a->name);
	}
	write_out(&out);
	return PGJQ_EX_OK;
}

static const char list_sql[] =
	"SELECT s.name, s.queue, s.cron, (extract(epoch FROM s.every) * 1000000)::bigint, s.tz,"
	"       s.catch_up, s.paused, (extract(epoch FROM s.next_at) * 1000000)::bigint,"
	"       (extract(epoch FROM s.last_slot) * 1000000)::bigint, s.last_job,"
	"       (SELECT a.state FROM {S}.all_jobs a WHERE a.id = s.last_job),"
	"       (extract(epoch FROM {S}.schedule_last_success(s.name)) * 1000000)::bigint"
	"  FROM {S}.schedules s"
	" WHERE $1::text[] IS NULL OR s.queue = ANY ($1::text[])"
	" ORDER BY s.name";

enum { L_NAME, L_QUEUE, L_CRON, L_EVERY, L_TZ, L_CATCH_UP, L_PAUSED, L_NEXT, L_LAST, L_JOB,
	L_STATE, L_SUCCESS };

/* A time column in the schedule's zone, or NULL. */
static const char *
time_col(const PGresult *res, int row, int col, const char *tz, char *buf, size_t size)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	pgjq_slots_format(strtoll(PQgetvalue(res, row, col), NULL, 10), tz, buf, size);
	return buf;
}

static json_t *
json_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

int
pgjq_schedule_list(PGconn *conn, const char *queues, bool json)
{
	const char *params[1] = {queues};
	PGresult *res = pgjq_exec_or_die(conn, pgjq_sql(list_sql), 1, params);
	struct pgjq_buf out = {0};

	if (!json && PQntuples(res) > 0)
		pgjq_buf_printf(&out, "%-16s %-12s %-16s %-16s %-25s %-25s %-8s %s\n", "NAME", "QUEUE",
		    "WHEN", "ZONE", "NEXT", "LAST", "JOB", "STATE");
	for (int i = 0; i < PQntuples(res); i++) {
		const char *tz = PQgetvalue(res, i, L_TZ);
		char next[64], last[64], success[64], every[64], when[300];
		const char *n = time_col(res, i, L_NEXT, tz, next, sizeof next);
		const char *l = time_col(res, i, L_LAST, tz, last, sizeof last);
		const char *ok = time_col(res, i, L_SUCCESS, tz, success, sizeof success);
		bool paused = strcmp(PQgetvalue(res, i, L_PAUSED), "t") == 0;
		const char *cron = PQgetisnull(res, i, L_CRON) ? NULL : PQgetvalue(res, i, L_CRON);
		const char *state = PQgetisnull(res, i, L_STATE) ? NULL : PQgetvalue(res, i, L_STATE);

		every[0] = '\0';
		if (cron == NULL)
			pgjq_format_duration(strtoll(PQgetvalue(res, i, L_EVERY), NULL, 10), every,
			    sizeof every);
		if (json) {
			json_t *o = json_object();

			json_object_set_new(o, "name", json_string(PQgetvalue(res, i, L_NAME)));
			json_object_set_new(o, "queue", json_string(PQgetvalue(res, i, L_QUEUE)));
			json_object_set_new(o, "cron", json_or_null(cron));
			json_object_set_new(o, "every", json_or_null(cron == NULL ? every : NULL));
			json_object_set_new(o, "tz", json_string(tz));
			json_object_set_new(o, "catch_up", json_string(PQgetvalue(res, i, L_CATCH_UP)));
			json_object_set_new(o, "paused", json_boolean(paused));
			json_object_set_new(o, "next", json_or_null(n));
			json_object_set_new(o, "last_slot", json_or_null(l));
			json_object_set_new(o, "last_job", PQgetisnull(res, i, L_JOB) ? json_null() :
			    json_integer(strtoll(PQgetvalue(res, i, L_JOB), NULL, 10)));
			json_object_set_new(o, "last_state", json_or_null(state));
			json_object_set_new(o, "last_success", json_or_null(ok));
			put_json(&out, o);
		} else {
			snprintf(when, sizeof when, "%s%s", cron != NULL ? cron : "every ",
			    cron != NULL ? "" : every);
			pgjq_buf_printf(&out, "%-16s %-12s %-16s %-16s %-25s %-25s %-8s %s\n",
			    PQgetvalue(res, i, L_NAME), PQgetvalue(res, i, L_QUEUE), when, tz,
			    paused ? "paused" : n, l != NULL ? l : "-",
			    PQgetisnull(res, i, L_JOB) ? "-" : PQgetvalue(res, i, L_JOB),
			    state != NULL ? state : "-");
		}
	}
	PQclear(res);
	write_out(&out);
	return PGJQ_EX_OK;
}

static const struct {
	const char *what, *sql;
} steer_sql[] = {
	{"rm", "WITH u AS (DELETE FROM {S}.schedules s WHERE s.name = $1 RETURNING s.queue)"
	       " SELECT NULL::bigint, pg_catalog.pg_notify($2, u.queue) FROM u"},
	{"pause", "WITH u AS (UPDATE {S}.schedules s SET paused = true, updated_at = pg_catalog.now()"
	          "            WHERE s.name = $1 RETURNING s.queue)"
	          " SELECT NULL::bigint, pg_catalog.pg_notify($2, u.queue) FROM u"},
	{"resume", "WITH u AS (UPDATE {S}.schedules s SET paused = false, updated_at = pg_catalog.now()"
	           "            WHERE s.name = $1 RETURNING s.queue)"
	           " SELECT NULL::bigint, pg_catalog.pg_notify($2, u.queue) FROM u"},
	/* Workers hear of it: they take the jobs they read last for all the schedule's there are. */
	{"run", "SELECT j.id, pg_catalog.pg_notify($2, s.queue)"
	        "  FROM (SELECT {S}.schedule_run($1) AS id) j, {S}.schedules s"
	        " WHERE j.id IS NOT NULL AND s.name = $1"},
};

int
pgjq_schedule_steer(PGconn *conn, const char *schema, const char *what, char *const *names,
    int n, bool json)
{
	const char *sql = NULL;
	char *chan = pgjq_channel_name(schema, PGJQ_CHANNEL_SCHEDULE);
	struct pgjq_buf out = {0};
	int status = PGJQ_EX_OK;

	for (size_t i = 0; i < sizeof steer_sql / sizeof steer_sql[0]; i++)
		if (strcmp(what, steer_sql[i].what) == 0)
			sql = steer_sql[i].sql;
	if (sql == NULL)
		pgjq_die(PGJQ_EX_SOFTWARE, "no such command: %s", what);
	for (int i = 0; i < n; i++) {
		const char *params[2] = {names[i], chan};
		/* Each string constant is its own cache entry in pgjq_sql. */
		PGresult *res = pgjq_exec_or_die(conn, pgjq_sql(sql), 2, params);
		bool found = PQntuples(res) > 0;

		if (!found) {
			pgjq_warn("schedule '%s': no such schedule", names[i]);
			status = PGJQ_EX_NOJOB;
		}
		if (json) {
			json_t *o = json_object();

			json_object_set_new(o, "name", json_string(names[i]));
			json_object_set_new(o, "found", json_boolean(found));
			if (found && !PQgetisnull(res, 0, 0))
				json_object_set_new(o, "job",
				    json_integer(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
			put_json(&out, o);
		} else if (found) {
			pgjq_buf_printf(&out, "%s\n", PQgetisnull(res, 0, 0) ? names[i] :
			    PQgetvalue(res, 0, 0));
		}
		PQclear(res);
	}
	free(chan);
	write_out(&out);
	return status;
}

int
pgjq_schedule_next(const struct pgjq_slots *sl, int n, int64_t from_us, bool json)
{
	struct pgjq_buf out = {0};
	struct timespec ts;
	int64_t t = from_us;
	char when[64];

	if (t < 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		t = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	}
	for (int i = 0; i < n; i++) {
		if ((t = pgjq_slots_next(sl, t)) < 0) {
			write_out(&out);
			pgjq_warn("no %sslot within ten years", i > 0 ? "further " : "");
			return i > 0 ? PGJQ_EX_OK : PGJQ_EX_NO;
		}
		pgjq_slots_format(t, sl->tz, when, sizeof when);
		if (json) {
			json_t *o = json_object();

			json_object_set_new(o, "slot", json_string(when));
			json_object_set_new(o, "epoch", json_integer(t / 1000000));
			put_json(&out, o);
		} else {
			pgjq_buf_printf(&out, "%s\n", when);
		}
	}
	write_out(&out);
	return PGJQ_EX_OK;
}
