#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "db.h"
#include "diag.h"
#include "duration.h"
#include "job.h"
#include "queue.h"
#include "schema.h"
#include "xalloc.h"

/* The column order is what print_row() takes apart. */
static const char list_sql[] =
	"SELECT queue, paused, max_running, rate_n, rate_window, scheduled, queued, running, "
	"       completed, failed, cancelled, workers, group_limit "
	"  FROM {S}.queue_list($1::text[])";
enum { L_QUEUE, L_PAUSED, L_MAX, L_RATE_N, L_RATE_WINDOW, L_SCHEDULED, L_QUEUED, L_RUNNING,
	L_COMPLETED, L_FAILED, L_CANCELLED, L_WORKERS, L_GROUP_LIMIT };

static const char known_sql[] = "SELECT {S}.queue_known($1)";
static const char pause_sql[] = "SELECT {S}.pause_queue($1, $2::boolean)";
static const char limit_sql[] = "SELECT {S}.limit_queue($1, $2::integer)";
static const char group_limit_sql[] = "SELECT {S}.group_limit_queue($1, $2::integer)";
static const char rate_sql[] = "SELECT {S}.rate_queue($1, $2::integer, $3::interval)";
static const char purge_before_sql[] = "SELECT now() - $1::interval";
static const char purge_count_sql[] = "SELECT {S}.purge_count($1, $2::text[], $3::timestamptz)";
static const char purge_batch_sql[] =
	"SELECT {S}.purge_batch($1, $2::text[], $3::timestamptz, $4::integer)";
/* Rows a purge deletes per transaction: short locks, and room for vacuum between. */
#define PURGE_BATCH 5000
/* Looks again for rows a batch skipped because they were held: this often, this many times. */
#define PURGE_RETRY_US 100000
#define PURGE_RETRIES 50
/* What pause --wait waits for: claimed jobs too, which their workers put back when told. */
static const char held_sql[] =
	"SELECT count(*) FROM {S}.jobs WHERE queue = ANY ($1::text[]) AND state IN ('running', 'claimed')";

int
pgjq_rate_parse(const char *s, long *n, int64_t *window_us, const char **why)
{
	const char *slash = strchr(s, '/');
	char *end;
	long v;

	if (slash == NULL) {
		*why = "expected N/DURATION, such as 20/1s";
		return -1;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || end != slash || errno != 0 || v < 1 || v > 1000000) {
		*why = "N must be an integer from 1 to 1000000";
		return -1;
	}
	if (pgjq_parse_duration(slash + 1, window_us, why) != 0)
		return -1;
	if (*window_us <= 0) {
		*why = "the duration must be longer than 0";
		return -1;
	}
	*n = v;
	return 0;
}

static const char *
cell(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/*
 * A rate for people and for JSON alike, as it was given when the window
 * is a whole number of some unit: "20/1s", "100/5m", else "3/1.5s".
 */
static void
rate_text(const PGresult *res, int row, char *buf, size_t size)
{
	static const struct { int64_t us; const char *unit; } units[] = {
		{INT64_C(86400000000), "d"}, {INT64_C(3600000000), "h"}, {INT64_C(60000000), "m"},
		{INT64_C(1000000), "s"}, {INT64_C(1000), "ms"},
	};
	int64_t us;
	char d[32];

	if (cell(res, row, L_RATE_N) == NULL) {
		snprintf(buf, size, "-");
		return;
	}
	us = (int64_t)(strtod(cell(res, row, L_RATE_WINDOW), NULL) * 1e6 + 0.5);
	pgjq_format_duration(us, d, sizeof d);
	for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
		if (us > 0 && us % units[i].us == 0) {
			snprintf(d, sizeof d, "%lld%s", (long long)(us / units[i].us), units[i].unit);
			break;
		}
	}
	snprintf(buf, size, "%s/%s", cell(res, row, L_RATE_N), d);
}

static json_t *
json_count(const PGresult *res, int row, int col)
{
	return json_integer(strtoll(PQgetvalue(res, row, col), NULL, 10));
}

static void
print_json(const PGresult *res, int row)
{
	json_t *o = json_object();
	char rate[64];
	char *text;

	rate_text(res, row, rate, sizeof rate);
	json_object_set_new(o, "queue", json_string(cell(res, row, L_QUEUE)));
	json_object_set_new(o, "state", json_string(strcmp(cell(res, row, L_PAUSED), "t") == 0 ?
	    "paused" : "active"));
	json_object_set_new(o, "limit", cell(res, row, L_MAX) == NULL ? json_null() :
	    json_count(res, row, L_MAX));
	json_object_set_new(o, "rate", cell(res, row, L_RATE_N) == NULL ? json_null() :
	    json_string(rate));
	json_object_set_new(o, "group_limit", json_count(res, row, L_GROUP_LIMIT));
	json_object_set_new(o, "scheduled", json_count(res, row, L_SCHEDULED));
	json_object_set_new(o, "queued", json_count(res, row, L_QUEUED));
	json_object_set_new(o, "running", json_count(res, row, L_RUNNING));
	json_object_set_new(o, "completed", json_count(res, row, L_COMPLETED));
	json_object_set_new(o, "failed", json_count(res, row, L_FAILED));
	json_object_set_new(o, "cancelled", json_count(res, row, L_CANCELLED));
	json_object_set_new(o, "workers", json_count(res, row, L_WORKERS));
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (text == NULL)
		pgjq_die(PGJQ_EX_SOFTWARE, "out of memory");
	puts(text);
	free(text);
}

static void
print_table(const PGresult *res)
{
	int width = 5;

	for (int i = 0; i < PQntuples(res); i++) {
		int len = (int)strlen(cell(res, i, L_QUEUE));

		if (len > width)
			width = len;
	}
	printf("%-*s  %-6s  %5s  %10s  %9s  %7s  %7s  %9s  %7s\n", width, "QUEUE", "STATE", "LIMIT",
	    "RATE", "SCHEDULED", "QUEUED", "RUNNING", "FAILED", "WORKERS");
	for (int i = 0; i < PQntuples(res); i++) {
		char rate[64];

		rate_text(res, i, rate, sizeof rate);
		printf("%-*s  %-6s  %5s  %10s  %9s  %7s  %7s  %9s  %7s\n", width, cell(res, i, L_QUEUE),
		    strcmp(cell(res, i, L_PAUSED), "t") == 0 ? "paused" : "active",
		    cell(res, i, L_MAX) != NULL ? cell(res, i, L_MAX) : "-", rate,
		    cell(res, i, L_SCHEDULED), cell(res, i, L_QUEUED), cell(res, i, L_RUNNING),
		    cell(res, i, L_FAILED), cell(res, i, L_WORKERS));
	}
}

/* Lists the queues on conn; the rows go out only when whole. */
static int
list_on(PGconn *conn, const struct pgjq_queue_conn *c, const char *const *queues, size_t n)
{
	char *array = n > 0 ? pgjq_queue_array(queues, n) : NULL;
	const char *params[1] = {array};
	PGresult *res = pgjq_exec_or_die(conn, pgjq_sql(list_sql), 1, params);

	if (c->json) {
		for (int i = 0; i < PQntuples(res); i++)
			print_json(res, i);
	} else if (PQntuples(res) > 0) {
		print_table(res);
	}
	PQclear(res);
	free(array);
	if (fflush(stdout) != 0 || ferror(stdout))
		pgjq_die(PGJQ_EX_IOERR, "cannot write the list of queues: %s", strerror(errno));
	return PGJQ_EX_OK;
}

int
pgjq_queue_list(const struct pgjq_queue_conn *c, const char *const *queues, size_t n)
{
	PGconn *conn = pgjq_connect(c->conninfo, c->schema);
	int status = list_on(conn, c, queues, n);

	PQfinish(conn);
	return status;
}

static void
run(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PQclear(pgjq_exec_or_die(conn, sql, nparams, params));
}

/* Polls until none of the queues' jobs is held by a worker (their workers put claimed ones back). */
static void
wait_unheld(PGconn *conn, const char *const *queues, size_t n)
{
	char *array = pgjq_queue_array(queues, n);
	const char *params[1] = {array};
	struct timespec nap = {0, 100 * 1000 * 1000};

	for (;;) {
		PGresult *res = pgjq_exec_or_die(conn, pgjq_sql(held_sql), 1, params);
		bool none = strcmp(PQgetvalue(res, 0, 0), "0") == 0;

		PQclear(res);
		if (none)
			break;
		nanosleep(&nap, NULL);
	}
	free(array);
}

int
pgjq_queue_apply(const struct pgjq_queue_conn *c, const char *const *queues, size_t n,
    const struct pgjq_queue_set *set)
{
	PGconn *conn = pgjq_connect(c->conninfo, c->schema);
	char num[32], n_text[32], window[64];
	int status = PGJQ_EX_OK;

	run(conn, "BEGIN", 0, NULL);
	for (size_t i = 0; i < n; i++) {
		const char *params[1] = {queues[i]};
		PGresult *res = pgjq_exec_or_die(conn, pgjq_sql(known_sql), 1, params);
		bool known = strcmp(PQgetvalue(res, 0, 0), "t") == 0;

		PQclear(res);
		if (!known) {
			pgjq_warn("no queue '%s': no job, worker or setting names it; nothing changed",
			    queues[i]);
			PQfinish(conn);
			return PGJQ_EX_USAGE;
		}
	}
	snprintf(num, sizeof num, "%ld", set->max);
	snprintf(n_text, sizeof n_text, "%ld", set->n);
	pgjq_format_interval(set->window_us, window, sizeof window);
	for (size_t i = 0; i < n; i++) {
		const char *params[3] = {queues[i], NULL, NULL};

		switch (set->change) {
		case PGJQ_QUEUE_PAUSE:
		case PGJQ_QUEUE_RESUME:
			params[1] = set->change == PGJQ_QUEUE_PAUSE ? "t" : "f";
			run(conn, pgjq_sql(pause_sql), 2, params);
			break;
		case PGJQ_QUEUE_LIMIT:
			params[1] = set->max > 0 ? num : NULL;
			run(conn, pgjq_sql(limit_sql), 2, params);
			break;
		case PGJQ_QUEUE_GROUP_LIMIT:
			params[1] = set->max > 0 ? num : NULL;
			run(conn, pgjq_sql(group_limit_sql), 2, params);
			break;
		case PGJQ_QUEUE_RATE:
			params[1] = set->n > 0 ? n_text : NULL;
			params[2] = set->n > 0 ? window : NULL;
			run(conn, pgjq_sql(rate_sql), 3, params);
			break;
		}
	}
	run(conn, "COMMIT", 0, NULL);
	if (set->change == PGJQ_QUEUE_PAUSE && set->wait)
		wait_unheld(conn, queues, n);
	if (c->json)
		status = list_on(conn, c, queues, n);
	PQfinish(conn);
	return status;
}

/* Whether the queue is known; dies with a usage error, nothing changed, if not. */
static void
must_know(PGconn *conn, const char *queue)
{
	const char *params[1] = {queue};
	PGresult *res = pgjq_exec_or_die(conn, pgjq_sql(known_sql), 1, params);
	bool known = strcmp(PQgetvalue(res, 0, 0), "t") == 0;

	PQclear(res);
	if (!known) {
		pgjq_warn("no queue '%s': no job, worker or setting names it; nothing changed", queue);
		PQfinish(conn);
		exit(PGJQ_EX_USAGE);
	}
}

/* Asks on the terminal whether to delete count jobs; true for yes. */
static bool
confirm(const char *queue, const char *count)
{
	char line[64];

	fprintf(stderr, "%s: delete %s job%s of queue %s? [y/N] ", pgjq_progname(), count,
	    strcmp(count, "1") == 0 ? "" : "s", queue);
	fflush(stderr);
	if (fgets(line, sizeof line, stdin) == NULL)
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

/* Whether rows a purge would take are left (held by another transaction when it looked). */
static bool
rows_left(PGconn *conn, const char *queue, const char *array, const char *before)
{
	const char *params[3] = {queue, array, before};
	PGresult *res = pgjq_exec_or_die(conn, pgjq_sql(purge_count_sql), 3, params);
	bool left = strcmp(PQgetvalue(res, 0, 0), "0") != 0;

	PQclear(res);
	return left;
}

int
pgjq_queue_purge(const struct pgjq_queue_conn *c, const char *queue, const char *const *states,
    size_t nstates, int64_t older_us, bool yes)
{
	static const char *const backlog[] = {"scheduled", "queued"};
	PGconn *conn = pgjq_connect(c->conninfo, c->schema);
	char *array = nstates > 0 ? pgjq_queue_array(states, nstates) : pgjq_queue_array(backlog, 2);
	char *before = NULL, limit[16];
	long long total = 0, got;
	int tries = 0;

	must_know(conn, queue);
	if (older_us >= 0) {
		char older[64];
		const char *params[1] = {older};
		PGresult *res;

		pgjq_format_interval(older_us, older, sizeof older);
		res = pgjq_exec_or_die(conn, pgjq_sql(purge_before_sql), 1, params);
		before = pgjq_xstrdup(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	if (!yes && isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
		const char *params[3] = {queue, array, before};
		PGresult *res = pgjq_exec_or_die(conn, pgjq_sql(purge_count_sql), 3, params);
		bool go = strcmp(PQgetvalue(res, 0, 0), "0") == 0 || confirm(queue, PQgetvalue(res, 0, 0));

		PQclear(res);
		if (!go) {
			pgjq_warn("nothing purged");
			PQfinish(conn);
			free(array);
			free(before);
			return PGJQ_EX_NO;
		}
	}
	snprintf(limit, sizeof limit, "%d", PURGE_BATCH);
	/*
	 * A batch skips the rows another transaction holds (a worker's claim
	 * under way, say), so a short batch is not the end: the purge goes
	 * on while batches find rows, then looks again, a little later, for
	 * rows that were held, for PURGE_RETRIES tries.  A row held longer
	 * than that is left, and not counted.
	 */
	do {
		const char *params[4] = {queue, array, before, limit};
		PGresult *res = pgjq_exec(conn, pgjq_sql(purge_batch_sql), 4, params);

		if (!pgjq_ok(res)) {
			pgjq_warn("%lld job%s of queue %s purged before the failure", total,
			    total == 1 ? "" : "s", queue);
			pgjq_die_result(conn, res, "cannot purge");
		}
		got = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		total += got;
		PQclear(res);
		if (got == 0 && tries < PURGE_RETRIES && rows_left(conn, queue, array, before)) {
			tries++;
			usleep(PURGE_RETRY_US);
			got = -1;
		}
	} while (got != 0);
	PQfinish(conn);
	free(array);
	free(before);
	if (c->json)
		printf("{\"queue\":\"%s\",\"purged\":%lld}\n", queue, total);
	else
		printf("%lld\n", total);
	if (fflush(stdout) != 0 || ferror(stdout))
		pgjq_die(PGJQ_EX_IOERR, "%lld jobs of queue %s purged, but cannot say so: %s", total, queue,
		    strerror(errno));
	return PGJQ_EX_OK;
}
