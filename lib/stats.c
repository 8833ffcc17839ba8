#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "clock.h"
#include "db.h"
#include "diag.h"
#include "duration.h"
#include "job.h"
#include "listen.h"
#include "schema.h"
#include "stats.h"
#include "tty.h"

const int pgjq_stats_windows[PGJQ_STATS_NWINDOWS] = {1, 5, 15};
const double pgjq_stats_quantiles[PGJQ_STATS_NQUANTILES] = {0.5, 0.95, 0.99};
const char *const pgjq_stats_tables[2] = {"jobs", "history"};

/* The column order is what pgjq_stats_read() takes apart. */
const char pgjq_stats_schedules_sql[] =
	"SELECT s.name, coalesce(extract(epoch FROM {S}.schedule_last_success(s.name)), 0)::float8"
	"  FROM {S}.schedules s WHERE $1::text[] IS NULL OR s.queue = ANY ($1::text[]) ORDER BY s.name";

const char pgjq_stats_queues_sql[] =
	"SELECT queue, scheduled, queued, running, completed, failed, cancelled, oldest_queued, "
	"       completed_1m, completed_5m, completed_15m, failed_1m, failed_5m, failed_15m, "
	"       run_p50, run_p95, run_p99, workers, slots "
	"  FROM {S}.stats_queues($1::text[])";
const char pgjq_stats_flow_sql[] =
	"SELECT name, paused, coalesce(max_running, 0) FROM {S}.queues";
const char pgjq_stats_database_sql[] =
	"SELECT pg_catalog.to_json(at) #>> '{}', extract(epoch FROM at), workers, slots, "
	"       jobs_live_tuples, jobs_dead_tuples, history_live_tuples, history_dead_tuples "
	"  FROM {S}.stats_database($1::text[])";

/* And the histogram's bounds, with no queue, so that every bucket is told from the first scrape. */
const char pgjq_stats_counters_sql[] =
	"SELECT queue, name, le, n FROM {S}.counters($1::text[]) "
	"UNION ALL SELECT NULL, 'run_bucket', b, 0 FROM pg_catalog.unnest({S}.run_buckets()) b";

/* The columns of stats_queues(), in order: a state's count, then each window's, then each quantile's. */
enum {
	QCOL_QUEUE,
	QCOL_JOBS,                                          /* PGJQ_NSTATES of them */
	QCOL_OLDEST_QUEUED = QCOL_JOBS + PGJQ_NSTATES,
	QCOL_COMPLETED,                                     /* PGJQ_STATS_NWINDOWS of them */
	QCOL_FAILED = QCOL_COMPLETED + PGJQ_STATS_NWINDOWS, /* and these */
	QCOL_RUN = QCOL_FAILED + PGJQ_STATS_NWINDOWS,       /* PGJQ_STATS_NQUANTILES of them */
	QCOL_WORKERS = QCOL_RUN + PGJQ_STATS_NQUANTILES,
	QCOL_SLOTS,
};

/* The columns of the database's row: then a live and a dead count for each table. */
enum { DCOL_AT, DCOL_EPOCH, DCOL_WORKERS, DCOL_SLOTS, DCOL_TUPLES };

/* The columns of the queues' settings, of schedules and of counters. */
enum { FCOL_QUEUE, FCOL_PAUSED, FCOL_LIMIT };
enum { SCOL_NAME, SCOL_LAST_SUCCESS };
enum { CCOL_QUEUE, CCOL_NAME, CCOL_LE, CCOL_N };

static int64_t
get_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static double
get_double(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NAN : strtod(PQgetvalue(res, row, col), NULL);
}

void
pgjq_stats_read(struct pgjq_stats *s, const PGresult *queues, const PGresult *database)
{
	memset(s, 0, sizeof *s);
	s->nqueues = (size_t)PQntuples(queues);
	s->queues = pgjq_xcalloc(s->nqueues, sizeof *s->queues);
	for (int i = 0; i < PQntuples(queues); i++) {
		struct pgjq_queue_stats *q = &s->queues[i];

		q->queue = pgjq_xstrdup(PQgetvalue(queues, i, QCOL_QUEUE));
		for (int st = 0; st < PGJQ_NSTATES; st++)
			q->jobs[st] = get_int(queues, i, QCOL_JOBS + st);
		q->oldest_queued = get_double(queues, i, QCOL_OLDEST_QUEUED);
		for (int w = 0; w < PGJQ_STATS_NWINDOWS; w++) {
			q->completed[w] = get_int(queues, i, QCOL_COMPLETED + w);
			q->failed[w] = get_int(queues, i, QCOL_FAILED + w);
		}
		for (int k = 0; k < PGJQ_STATS_NQUANTILES; k++)
			q->run[k] = get_double(queues, i, QCOL_RUN + k);
		q->workers = get_int(queues, i, QCOL_WORKERS);
		q->slots = get_int(queues, i, QCOL_SLOTS);
	}
	if (PQntuples(database) == 1) {
		snprintf(s->at, sizeof s->at, "%s", PQgetvalue(database, 0, DCOL_AT));
		s->at_epoch = get_double(database, 0, DCOL_EPOCH);
		s->workers = get_int(database, 0, DCOL_WORKERS);
		s->slots = get_int(database, 0, DCOL_SLOTS);
		for (int t = 0; t < 2; t++) {
			s->live_tuples[t] = get_int(database, 0, DCOL_TUPLES + 2 * t);
			s->dead_tuples[t] = get_int(database, 0, DCOL_TUPLES + 2 * t + 1);
		}
	}
}

void
pgjq_stats_read_flow(struct pgjq_stats *s, const PGresult *flow)
{
	for (int i = 0; i < PQntuples(flow); i++)
		for (size_t k = 0; k < s->nqueues; k++)
			if (strcmp(s->queues[k].queue, PQgetvalue(flow, i, FCOL_QUEUE)) == 0) {
				s->queues[k].paused = strcmp(PQgetvalue(flow, i, FCOL_PAUSED), "t") == 0;
				s->queues[k].limit = get_int(flow, i, FCOL_LIMIT);
			}
}

void
pgjq_stats_read_counters(struct pgjq_stats *s, const PGresult *res)
{
	s->ncounters = (size_t)PQntuples(res);
	s->counters = pgjq_xcalloc(s->ncounters, sizeof *s->counters);
	for (int i = 0; i < PQntuples(res); i++) {
		struct pgjq_counter *c = &s->counters[i];

		c->queue = PQgetisnull(res, i, CCOL_QUEUE) ? NULL : pgjq_xstrdup(PQgetvalue(res, i, CCOL_QUEUE));
		c->name = pgjq_xstrdup(PQgetvalue(res, i, CCOL_NAME));
		c->le = get_double(res, i, CCOL_LE);
		c->n = get_double(res, i, CCOL_N);
	}
}

void
pgjq_stats_free(struct pgjq_stats *s)
{
	for (size_t i = 0; i < s->nqueues; i++)
		free(s->queues[i].queue);
	free(s->queues);
	for (size_t i = 0; i < s->nschedules; i++)
		free(s->schedules[i].name);
	free(s->schedules);
	for (size_t i = 0; i < s->ncounters; i++) {
		free(s->counters[i].queue);
		free(s->counters[i].name);
	}
	free(s->counters);
	memset(s, 0, sizeof *s);
}

void
pgjq_stats_read_schedules(struct pgjq_stats *s, const PGresult *schedules)
{
	s->nschedules = (size_t)PQntuples(schedules);
	s->schedules = pgjq_xcalloc(s->nschedules + 1, sizeof *s->schedules);
	for (size_t i = 0; i < s->nschedules; i++) {
		s->schedules[i].name = pgjq_xstrdup(PQgetvalue(schedules, (int)i, SCOL_NAME));
		s->schedules[i].last_success = get_double(schedules, (int)i, SCOL_LAST_SUCCESS);
	}
}

double
pgjq_stats_failure_rate(const struct pgjq_queue_stats *q)
{
	int64_t done = q->completed[PGJQ_STATS_NWINDOWS - 1], failed = q->failed[PGJQ_STATS_NWINDOWS - 1];

	return done + failed > 0 ? (double)failed / (double)(done + failed) : NAN;
}

/* ------------------------------------------------------------ the table */

#define CELL 32
#define MAXCOLS 10

typedef void fill_fn(const struct pgjq_queue_stats *q, char cells[][CELL]);

static void
seconds_cell(double secs, char *cell)
{
	if (isnan(secs))
		snprintf(cell, CELL, "-");
	else
		pgjq_format_duration(secs > 0 ? (int64_t)(secs * 1e6 + 0.5) : 0, cell, CELL);
}

static const char *const jobs_heads[] = {
	"SCHEDULED", "QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "OLDEST",
	"WORKERS", "SLOTS",
};

static void
fill_jobs(const struct pgjq_queue_stats *q, char c[][CELL])
{
	for (int st = 0; st < PGJQ_NSTATES; st++)
		snprintf(c[st], CELL, "%" PRId64, q->jobs[st]);
	seconds_cell(q->oldest_queued, c[6]);
	snprintf(c[7], CELL, "%" PRId64, q->workers);
	snprintf(c[8], CELL, "%" PRId64, q->slots);
}

static const char *const recent_groups[] = {
	"COMPLETED/MIN", "COMPLETED/MIN", "COMPLETED/MIN", "FAILED/MIN", "FAILED/MIN", "FAILED/MIN",
	NULL, "RUN TIME", "RUN TIME", "RUN TIME",
};
static const char *const recent_heads[] = {
	"1m", "5m", "15m", "1m", "5m", "15m", "FAILURES", "P50", "P95", "P99",
};

static void
fill_recent(const struct pgjq_queue_stats *q, char c[][CELL])
{
	double rate = pgjq_stats_failure_rate(q);

	for (int w = 0; w < PGJQ_STATS_NWINDOWS; w++) {
		snprintf(c[w], CELL, "%.1f", (double)q->completed[w] / pgjq_stats_windows[w]);
		snprintf(c[3 + w], CELL, "%.1f", (double)q->failed[w] / pgjq_stats_windows[w]);
	}
	if (isnan(rate))
		snprintf(c[6], CELL, "-");
	else
		snprintf(c[6], CELL, "%.1f%%", rate * 100);
	for (int k = 0; k < PGJQ_STATS_NQUANTILES; k++)
		seconds_cell(q->run[k], c[7 + k]);
}

static void
rstrip(struct pgjq_buf *b)
{
	while (b->len > 0 && b->data[b->len - 1] == ' ')
		b->data[--b->len] = '\0';
}

/*
 * A table of one line per queue: the queue's name on the left, then the
 * cells fill() makes, right-aligned under heads.  groups (or NULL) puts a
 * line above, each label ending over the last column of its run.
 */
static void
put_table(struct pgjq_buf *b, const struct pgjq_stats *s, const char *const *groups,
    const char *const *heads, int ncols, fill_fn *fill)
{
	char (*cells)[MAXCOLS][CELL] = pgjq_xcalloc(s->nqueues, sizeof *cells);
	struct pgjq_buf *names = pgjq_xcalloc(s->nqueues, sizeof *names);
	int *namew = pgjq_xcalloc(s->nqueues, sizeof *namew);
	int w[MAXCOLS], qw = (int)strlen("QUEUE");

	for (int c = 0; c < ncols; c++)
		w[c] = (int)strlen(heads[c]) > 5 ? (int)strlen(heads[c]) : 5;
	for (size_t i = 0; i < s->nqueues; i++) {
		/* A worker's row may name any text as a queue: shown safe. */
		namew[i] = pgjq_tty_put(&names[i], s->queues[i].queue, PGJQ_QUEUE_MAX, false);
		if (namew[i] > qw)
			qw = namew[i];
		fill(&s->queues[i], cells[i]);
		for (int c = 0; c < ncols; c++)
			if ((int)strlen(cells[i][c]) > w[c])
				w[c] = (int)strlen(cells[i][c]);
	}
	if (groups != NULL) {
		/* Widen a run's last column if its label would not fit over it. */
		for (int c = 0, first = 0; c < ncols; c++) {
			int span = 0;

			if (c + 1 < ncols && groups[c] != NULL && groups[c + 1] == groups[c])
				continue;
			for (int k = first; k <= c; k++)
				span += w[k] + (k > first ? 2 : 0);
			if (groups[c] != NULL && (int)strlen(groups[c]) > span)
				w[c] += (int)strlen(groups[c]) - span;
			first = c + 1;
		}
		pgjq_tty_pad(b, qw);
		for (int c = 0, first = 0; c < ncols; c++) {
			int span = 0;

			if (c + 1 < ncols && groups[c] != NULL && groups[c + 1] == groups[c])
				continue;
			for (int k = first; k <= c; k++)
				span += w[k] + 2;
			if (groups[c] != NULL) {
				pgjq_tty_pad(b, span - (int)strlen(groups[c]));
				pgjq_buf_printf(b, "%s", groups[c]);
			} else {
				pgjq_tty_pad(b, span);
			}
			first = c + 1;
		}
		rstrip(b);
		pgjq_buf_putc(b, '\n');
	}
	pgjq_buf_printf(b, "%-*s", qw, "QUEUE");
	for (int c = 0; c < ncols; c++)
		pgjq_buf_printf(b, "  %*s", w[c], heads[c]);
	pgjq_buf_putc(b, '\n');
	for (size_t i = 0; i < s->nqueues; i++) {
		pgjq_buf_printf(b, "%s", names[i].data != NULL ? names[i].data : "");
		pgjq_tty_pad(b, qw - namew[i]);
		for (int c = 0; c < ncols; c++)
			pgjq_buf_printf(b, "  %*s", w[c], cells[i][c]);
		pgjq_buf_putc(b, '\n');
		pgjq_buf_free(&names[i]);
	}
	free(names);
	free(namew);
	free(cells);
}

void
pgjq_stats_table(struct pgjq_buf *b, const struct pgjq_stats *s)
{
	put_table(b, s, NULL, jobs_heads, (int)(sizeof jobs_heads / sizeof jobs_heads[0]), fill_jobs);
	pgjq_buf_putc(b, '\n');
	put_table(b, s, recent_groups, recent_heads,
	    (int)(sizeof recent_heads / sizeof recent_heads[0]), fill_recent);
	pgjq_buf_putc(b, '\n');
	pgjq_buf_printf(b, "live workers: %" PRId64 ", with %" PRId64 " slots\n", s->workers, s->slots);
	pgjq_buf_printf(b, "tables: jobs %" PRId64 " live rows, %" PRId64 " dead; "
	    "history %" PRId64 " live rows, %" PRId64 " dead\n",
	    s->live_tuples[0], s->dead_tuples[0], s->live_tuples[1], s->dead_tuples[1]);
	for (size_t i = 0; i < s->nschedules; i++) {
		double ago = s->at_epoch - s->schedules[i].last_success;
		char when[32];

		pgjq_format_duration((int64_t)(ago * 1e6), when, sizeof when);
		pgjq_buf_printf(b, "schedule %s: last success %s%s\n", s->schedules[i].name,
		    s->schedules[i].last_success > 0 ? when : "never",
		    s->schedules[i].last_success > 0 ? " ago" : "");
	}
}

/* ------------------------------------------------------------------ JSON */

/* v rounded to 1/scale, or null for "none". */
static json_t *
json_figure(double v, double scale)
{
	return isnan(v) ? json_null() : json_real(round(v * scale) / scale);
}

static void
put_json(struct pgjq_buf *b, json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));

	if (text == NULL)
		pgjq_die(PGJQ_EX_SOFTWARE, "cannot write the figures as JSON");
	pgjq_buf_printf(b, "%s\n", text);
	free(text);
	json_decref(o);
}

void
pgjq_stats_json(struct pgjq_buf *b, const struct pgjq_stats *s)
{
	json_t *o, *tables;

	for (size_t i = 0; i < s->nqueues; i++) {
		const struct pgjq_queue_stats *q = &s->queues[i];
		json_t *jobs = json_object(), *done = json_object(), *failed = json_object();
		json_t *run = json_object();

		o = json_object();
		json_object_set_new(o, "type", json_string("queue"));
		json_object_set_new(o, "at", json_string(s->at));
		/* The database's text is UTF-8 (client_encoding), as json_string needs. */
		json_object_set_new(o, "queue", json_string(q->queue));
		for (int st = 0; st < PGJQ_NSTATES; st++)
			json_object_set_new(jobs, pgjq_state_name(st), json_integer(q->jobs[st]));
		json_object_set_new(o, "jobs", jobs);
		json_object_set_new(o, "oldest_queued_seconds", json_figure(q->oldest_queued, 1e3));
		for (int w = 0; w < PGJQ_STATS_NWINDOWS; w++) {
			char key[16];

			snprintf(key, sizeof key, "%dm", pgjq_stats_windows[w]);
			json_object_set_new(done, key,
			    json_figure((double)q->completed[w] / pgjq_stats_windows[w], 1e3));
			json_object_set_new(failed, key,
			    json_figure((double)q->failed[w] / pgjq_stats_windows[w], 1e3));
		}
		json_object_set_new(o, "completed_per_minute", done);
		json_object_set_new(o, "failed_per_minute", failed);
		json_object_set_new(o, "failure_rate", json_figure(pgjq_stats_failure_rate(q), 1e4));
		for (int k = 0; k < PGJQ_STATS_NQUANTILES; k++) {
			char key[16];

			snprintf(key, sizeof key, "p%g", pgjq_stats_quantiles[k] * 100);
			json_object_set_new(run, key, json_figure(q->run[k], 1e6));
		}
		json_object_set_new(o, "run_seconds", run);
		json_object_set_new(o, "workers", json_integer(q->workers));
		json_object_set_new(o, "slots", json_integer(q->slots));
		json_object_set_new(o, "paused", json_boolean(q->paused));
		json_object_set_new(o, "limit", q->limit > 0 ? json_integer(q->limit) : json_null());
		put_json(b, o);
	}
	o = json_object();
	tables = json_object();
	json_object_set_new(o, "type", json_string("database"));
	json_object_set_new(o, "at", json_string(s->at));
	json_object_set_new(o, "workers", json_integer(s->workers));
	json_object_set_new(o, "slots", json_integer(s->slots));
	for (int t = 0; t < 2; t++) {
		json_t *tab = json_object();

		json_object_set_new(tab, "live_tuples", json_integer(s->live_tuples[t]));
		json_object_set_new(tab, "dead_tuples", json_integer(s->dead_tuples[t]));
		json_object_set_new(tables, pgjq_stats_tables[t], tab);
	}
	json_object_set_new(o, "tables", tables);
	put_json(b, o);
	for (size_t i = 0; i < s->nschedules; i++) {
		o = json_object();
		json_object_set_new(o, "type", json_string("schedule"));
		json_object_set_new(o, "at", json_string(s->at));
		json_object_set_new(o, "schedule", json_string(s->schedules[i].name));
		json_object_set_new(o, "last_success_epoch", s->schedules[i].last_success > 0 ?
		    json_real(s->schedules[i].last_success) : json_null());
		put_json(b, o);
	}
}

/* ------------------------------------------------------------ Prometheus */

void
pgjq_stats_prom_label(struct pgjq_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			pgjq_buf_append(b, "\\\\", 2);
		else if (*s == '"')
			pgjq_buf_append(b, "\\\"", 2);
		else if (*s == '\n')
			pgjq_buf_append(b, "\\n", 2);
		else
			pgjq_buf_putc(b, *s);
	}
}

/* The HELP texts are ours and hold no backslash or newline to escape. */
static void
prom_head(struct pgjq_buf *b, const char *name, const char *type, const char *help)
{
	pgjq_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * The same for a family in seconds.  "# UNIT" is OpenMetrics'; the text
 * format 0.0.4 reads it as a comment.
 */
static void
prom_head_seconds(struct pgjq_buf *b, const char *name, const char *type, const char *help)
{
	prom_head(b, name, type, help);
	pgjq_buf_printf(b, "# UNIT %s seconds\n", name);
}

/* "name{queue="q"": the caller closes the braces. */
static void
prom_label(struct pgjq_buf *b, const char *name, const char *queue)
{
	pgjq_buf_printf(b, "%s{queue=\"", name);
	pgjq_stats_prom_label(b, queue);
	pgjq_buf_putc(b, '"');
}

static void
prom_queue(struct pgjq_buf *b, const char *name, const struct pgjq_queue_stats *q)
{
	prom_label(b, name, q->queue);
}

static void
prom_value(struct pgjq_buf *b, double v)
{
	pgjq_buf_printf(b, " %.15g\n", v);
}

/*
 * The queues the counters are told for: those shown, then those that
 * only the counters know (every job of theirs pruned), so that a counter
 * never vanishes while its queue is idle.  Returns how many; *names is
 * the caller's to free (the strings are s's).
 */
static size_t
counter_queues(const struct pgjq_stats *s, const char ***names)
{
	const char **v = pgjq_xcalloc(s->nqueues + s->ncounters + 1, sizeof *v);
	size_t n = 0;

	for (size_t i = 0; i < s->nqueues; i++)
		v[n++] = s->queues[i].queue;
	for (size_t i = 0; i < s->ncounters; i++) {
		size_t k = 0;

		if (s->counters[i].queue == NULL)
			continue;
		while (k < n && strcmp(v[k], s->counters[i].queue) != 0)
			k++;
		if (k == n)
			v[n++] = s->counters[i].queue;
	}
	*names = v;
	return n;
}

/* A counter's value: 0 where nothing was ever counted. */
static double
counter(const struct pgjq_stats *s, const char *queue, const char *name, double le)
{
	for (size_t i = 0; i < s->ncounters; i++) {
		const struct pgjq_counter *c = &s->counters[i];

		if (c->queue != NULL && strcmp(c->queue, queue) == 0 && strcmp(c->name, name) == 0 &&
		    (isnan(le) ? isnan(c->le) : c->le == le))
			return c->n;
	}
	return 0;
}

/* The counters, by family: counters() names them in its second column. */
static const struct {
	const char *family, *name, *help;
} prom_counters[] = {
	{"pgjq_jobs_enqueued_total", "enqueued", "Jobs enqueued into the queue."},
	{"pgjq_jobs_retried_total", "retried", "Finished jobs put back in the queue by jq-retry."},
	{"pgjq_jobs_completed_total", "completed", "Jobs of the queue completed."},
	{"pgjq_jobs_failed_total", "failed", "Jobs of the queue failed for good (attempts used up, or exit 65)."},
	{"pgjq_jobs_cancelled_total", "cancelled", "Jobs of the queue cancelled."},
};

static void
prom_totals(struct pgjq_buf *b, const struct pgjq_stats *s, const char **names, size_t n)
{
	for (size_t f = 0; f < sizeof prom_counters / sizeof prom_counters[0]; f++) {
		prom_head(b, prom_counters[f].family, "counter", prom_counters[f].help);
		for (size_t i = 0; i < n; i++) {
			prom_label(b, prom_counters[f].family, names[i]);
			pgjq_buf_putc(b, '}');
			prom_value(b, counter(s, names[i], prom_counters[f].name, NAN));
		}
	}
}

/* The buckets' bounds, as run_buckets() in the schema has them. */
static size_t
bucket_bounds(const struct pgjq_stats *s, double *le, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->ncounters; i++) {
		size_t k = 0;

		if (strcmp(s->counters[i].name, "run_bucket") != 0)
			continue;
		while (k < n && le[k] != s->counters[i].le)
			k++;
		if (k == n && n < max)
			le[n++] = s->counters[i].le;
	}
	/* Few: an insertion sort. */
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && le[k - 1] > le[k]; k--) {
			double t = le[k];

			le[k] = le[k - 1];
			le[k - 1] = t;
		}
	return n;
}

static void
prom_histogram(struct pgjq_buf *b, const struct pgjq_stats *s, const char **names, size_t n)
{
	double le[32];
	size_t nle = bucket_bounds(s, le, sizeof le / sizeof le[0]);

	prom_head_seconds(b, "pgjq_job_run_seconds", "histogram",
	    "Run time of the last attempt of completed jobs.");
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < nle; k++) {
			prom_label(b, "pgjq_job_run_seconds_bucket", names[i]);
			pgjq_buf_printf(b, ",le=\"%g\"}", le[k]);
			prom_value(b, counter(s, names[i], "run_bucket", le[k]));
		}
		prom_label(b, "pgjq_job_run_seconds_bucket", names[i]);
		pgjq_buf_printf(b, ",le=\"+Inf\"}");
		prom_value(b, counter(s, names[i], "run_count", NAN));
		prom_label(b, "pgjq_job_run_seconds_sum", names[i]);
		pgjq_buf_putc(b, '}');
		prom_value(b, counter(s, names[i], "run_seconds", NAN));
		prom_label(b, "pgjq_job_run_seconds_count", names[i]);
		pgjq_buf_putc(b, '}');
		prom_value(b, counter(s, names[i], "run_count", NAN));
	}
}

void
pgjq_stats_prometheus(struct pgjq_buf *b, const struct pgjq_stats *s)
{
	const char **names;
	size_t nnames = counter_queues(s, &names);

	prom_head(b, "pgjq_jobs", "gauge",
	    "Jobs of the queue by state; finished ones as long as history keeps them.");
	for (size_t i = 0; i < s->nqueues; i++)
		for (int st = 0; st < PGJQ_NSTATES; st++) {
			prom_queue(b, "pgjq_jobs", &s->queues[i]);
			pgjq_buf_printf(b, ",state=\"%s\"} %" PRId64 "\n", pgjq_state_name(st),
			    s->queues[i].jobs[st]);
		}
	prom_totals(b, s, names, nnames);
	prom_head_seconds(b, "pgjq_oldest_queued_seconds", "gauge",
	    "How long the oldest queued job has been ready to run; 0 if none is queued.");
	for (size_t i = 0; i < s->nqueues; i++) {
		prom_queue(b, "pgjq_oldest_queued_seconds", &s->queues[i]);
		pgjq_buf_putc(b, '}');
		prom_value(b, isnan(s->queues[i].oldest_queued) ? 0 : s->queues[i].oldest_queued);
	}
	prom_head(b, "pgjq_finished_jobs", "gauge",
	    "Jobs completed or failed in the last window (1m, 5m, 15m), for a glance; "
	    "rate() and increase() take the _total counters.");
	for (size_t i = 0; i < s->nqueues; i++)
		for (int f = 0; f < 2; f++)
			for (int w = 0; w < PGJQ_STATS_NWINDOWS; w++) {
				prom_queue(b, "pgjq_finished_jobs", &s->queues[i]);
				pgjq_buf_printf(b, ",state=\"%s\",window=\"%dm\"} %" PRId64 "\n",
				    f == 0 ? "completed" : "failed", pgjq_stats_windows[w],
				    f == 0 ? s->queues[i].completed[w] : s->queues[i].failed[w]);
			}
	/* No NaN series: a queue with nothing to tell by has no sample. */
	prom_head(b, "pgjq_failure_ratio", "gauge",
	    "Failed jobs over completed and failed ones, last 15 minutes; absent if none finished.");
	for (size_t i = 0; i < s->nqueues; i++) {
		double r = pgjq_stats_failure_rate(&s->queues[i]);

		if (isnan(r))
			continue;
		prom_queue(b, "pgjq_failure_ratio", &s->queues[i]);
		pgjq_buf_putc(b, '}');
		prom_value(b, r);
	}
	prom_head_seconds(b, "pgjq_run_seconds", "summary",
	    "Run time of completed jobs: quantiles of the last 15 minutes (absent if none), "
	    "sum and count since the schema was made.");
	for (size_t i = 0; i < nnames; i++) {
		const struct pgjq_queue_stats *q = i < s->nqueues ? &s->queues[i] : NULL;

		for (int k = 0; q != NULL && k < PGJQ_STATS_NQUANTILES; k++) {
			if (isnan(q->run[k]))
				continue;
			prom_queue(b, "pgjq_run_seconds", q);
			pgjq_buf_printf(b, ",quantile=\"%g\"}", pgjq_stats_quantiles[k]);
			prom_value(b, q->run[k]);
		}
		prom_label(b, "pgjq_run_seconds_sum", names[i]);
		pgjq_buf_putc(b, '}');
		prom_value(b, counter(s, names[i], "run_seconds", NAN));
		prom_label(b, "pgjq_run_seconds_count", names[i]);
		pgjq_buf_putc(b, '}');
		prom_value(b, counter(s, names[i], "run_count", NAN));
	}
	prom_histogram(b, s, names, nnames);
	prom_head(b, "pgjq_queue_workers", "gauge", "Live workers that serve the queue.");
	for (size_t i = 0; i < s->nqueues; i++) {
		prom_queue(b, "pgjq_queue_workers", &s->queues[i]);
		pgjq_buf_printf(b, "} %" PRId64 "\n", s->queues[i].workers);
	}
	prom_head(b, "pgjq_queue_worker_slots", "gauge",
	    "Jobs the live workers that serve the queue may run at once.");
	for (size_t i = 0; i < s->nqueues; i++) {
		prom_queue(b, "pgjq_queue_worker_slots", &s->queues[i]);
		pgjq_buf_printf(b, "} %" PRId64 "\n", s->queues[i].slots);
	}
	prom_head(b, "pgjq_queue_paused", "gauge", "1 if the queue is paused (jq-queue pause), else 0.");
	for (size_t i = 0; i < s->nqueues; i++) {
		prom_queue(b, "pgjq_queue_paused", &s->queues[i]);
		pgjq_buf_printf(b, "} %d\n", s->queues[i].paused);
	}
	prom_head(b, "pgjq_queue_limit", "gauge", "At most this many of the queue's jobs run at once (jq-queue limit).");
	for (size_t i = 0; i < s->nqueues; i++)
		if (s->queues[i].limit > 0) {
			prom_queue(b, "pgjq_queue_limit", &s->queues[i]);
			pgjq_buf_printf(b, "} %" PRId64 "\n", s->queues[i].limit);
		}
	prom_head(b, "pgjq_workers", "gauge", "Live workers, each counted once.");
	pgjq_buf_printf(b, "pgjq_workers %" PRId64 "\n", s->workers);
	prom_head(b, "pgjq_worker_slots", "gauge", "Jobs the live workers may run at once.");
	pgjq_buf_printf(b, "pgjq_worker_slots %" PRId64 "\n", s->slots);
	prom_head(b, "pgjq_table_live_tuples", "gauge",
	    "Live rows of the table, by the statistics collector (n_live_tup).");
	for (int t = 0; t < 2; t++)
		pgjq_buf_printf(b, "pgjq_table_live_tuples{table=\"%s\"} %" PRId64 "\n",
		    pgjq_stats_tables[t], s->live_tuples[t]);
	prom_head(b, "pgjq_table_dead_tuples", "gauge",
	    "Dead rows of the table that vacuum has yet to remove (n_dead_tup).");
	for (int t = 0; t < 2; t++)
		pgjq_buf_printf(b, "pgjq_table_dead_tuples{table=\"%s\"} %" PRId64 "\n",
		    pgjq_stats_tables[t], s->dead_tuples[t]);
	prom_head(b, "pgjq_schedule_last_success_timestamp_seconds", "gauge",
	    "When a job of the schedule last completed, Unix time; 0 if none ever did.");
	for (size_t i = 0; i < s->nschedules; i++) {
		pgjq_buf_printf(b, "pgjq_schedule_last_success_timestamp_seconds{schedule=\"");
		pgjq_stats_prom_label(b, s->schedules[i].name);
		pgjq_buf_printf(b, "\"} %.6f\n", s->schedules[i].last_success);
	}
	free(names);
}

/* ------------------------------------------------------------- the loop */

/*
 * Reads the figures, through conn (dying on any failure) or, when
 * watching, through l; false if l lost the database, with s unchanged.
 */
static bool
fetch(PGconn *conn, struct pgjq_listener *l, const char *queues, struct pgjq_stats *s)
{
	const char *params[] = {queues};
	PGresult *qres, *dres, *sres, *fres;

	if (l != NULL) {
		if ((qres = pgjq_listen_exec(l, pgjq_sql(pgjq_stats_queues_sql), 1, params)) == NULL)
			return false;
		if ((dres = pgjq_listen_exec(l, pgjq_sql(pgjq_stats_database_sql), 1, params)) == NULL) {
			PQclear(qres);
			return false;
		}
		if ((sres = pgjq_listen_exec(l, pgjq_sql(pgjq_stats_schedules_sql), 1, params)) == NULL) {
			PQclear(qres);
			PQclear(dres);
			return false;
		}
		if ((fres = pgjq_listen_exec(l, pgjq_sql(pgjq_stats_flow_sql), 0, NULL)) == NULL) {
			PQclear(qres);
			PQclear(dres);
			PQclear(sres);
			PQclear(qres);
			PQclear(dres);
			return false;
		}
	} else {
		qres = pgjq_exec_or_die(conn, pgjq_sql(pgjq_stats_queues_sql), 1, params);
		dres = pgjq_exec_or_die(conn, pgjq_sql(pgjq_stats_database_sql), 1, params);
		sres = pgjq_exec_or_die(conn, pgjq_sql(pgjq_stats_schedules_sql), 1, params);
		fres = pgjq_exec_or_die(conn, pgjq_sql(pgjq_stats_flow_sql), 0, NULL);
	}
	pgjq_stats_free(s);
	pgjq_stats_read(s, qres, dres);
	pgjq_stats_read_schedules(s, sres);
	pgjq_stats_read_flow(s, fres);
	PQclear(sres);
	PQclear(qres);
	PQclear(dres);
	PQclear(fres);
	return true;
}

static void
render(struct pgjq_buf *b, const struct pgjq_stats *s, enum pgjq_stats_format format)
{
	switch (format) {
	case PGJQ_STATS_TABLE:
		pgjq_stats_table(b, s);
		break;
	case PGJQ_STATS_JSON:
		pgjq_stats_json(b, s);
		break;
	case PGJQ_STATS_PROMETHEUS:
		pgjq_stats_prometheus(b, s);
		break;
	}
}

static void
write_stdout(struct pgjq_buf *b)
{
	if ((b->len > 0 && fwrite(b->data, 1, b->len, stdout) != b->len) || fflush(stdout) != 0)
		pgjq_die(PGJQ_EX_IOERR, "cannot write the output");
	pgjq_buf_reset(b);
}

/* The first line of a --watch table: how often, as of when, and trouble. */
static void
watch_head(struct pgjq_buf *b, const struct pgjq_stats *s, int64_t every_us, bool down)
{
	char every[32], when[32] = "";

	if (every_us % 1000000 == 0 && every_us < 60000000)
		snprintf(every, sizeof every, "%ds", (int)(every_us / 1000000));
	else
		pgjq_format_duration(every_us, every, sizeof every);
	if (s->at[0] != '\0') {
		time_t t = (time_t)s->at_epoch;
		struct tm tm;

		localtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
	}
	pgjq_buf_printf(b, "every %s: %s%s\n\n", every, when,
	    down ? "  (database lost: reconnecting)" : "");
}

/*
 * Redraws the terminal from the top, each line cut to the screen;
 * clear: wipe it first (after a resize, the terminal may have rewrapped
 * what was there).
 */
static void
draw(const struct pgjq_buf *text, int cols, int rows, bool clear)
{
	struct pgjq_buf out = {0};
	const char *p = text->data != NULL ? text->data : "";

	if (clear)
		pgjq_buf_append(&out, "\033[2J", 4);
	pgjq_buf_append(&out, "\033[H", 3);
	for (int row = 0; *p != '\0' && row < rows; row++) {
		if (row > 0)
			pgjq_buf_append(&out, "\r\n", 2);
		/* One column short of the edge: a full line would wrap on some terminals. */
		pgjq_tty_put(&out, p, cols - 1, true);
		pgjq_buf_append(&out, "\033[K", 3);
		p += strcspn(p, "\n");
		if (*p == '\n')
			p++;
	}
	pgjq_buf_append(&out, "\033[J", 3);
	pgjq_tty_flush(STDOUT_FILENO, &out);
	pgjq_buf_free(&out);
}

/* For atexit: a tool dying in the middle of --watch gives the screen back. */
static void
leave_screen(void)
{
	pgjq_tty_leave(STDOUT_FILENO);
}

static int
watch(const struct pgjq_stats_opts *o, const char *queues)
{
	struct pgjq_listener *l = pgjq_listen_open(o->conninfo, o->schema, NULL, 0);
	bool screen = o->format == PGJQ_STATS_TABLE && isatty(STDOUT_FILENO);
	int sigfd = pgjq_tty_catch_signals(), cols = 80, rows = 24, sig = 0;
	struct pgjq_stats s = {0};
	struct pgjq_buf text = {0};
	bool shown = false;

	if (screen) {
		pgjq_tty_size(STDOUT_FILENO, &cols, &rows);
		atexit(leave_screen);
		pgjq_tty_enter(STDOUT_FILENO);
	}
	while (sig == 0) {
		/* Ticks count from the start of each reading, so they do not drift by its length. */
		int64_t next = pgjq_now_us() + o->watch_us;
		bool fresh = fetch(NULL, l, queues, &s);

		pgjq_buf_reset(&text);
		if (screen) {
			watch_head(&text, &s, o->watch_us, pgjq_listen_down(l));
			render(&text, &s, o->format);
			draw(&text, cols, rows, false);
		} else if (fresh) {
			/* Off a terminal every reading is printed in full; the lost database is on stderr. */
			if (o->format == PGJQ_STATS_TABLE) {
				if (shown)
					pgjq_buf_putc(&text, '\n');
				watch_head(&text, &s, o->watch_us, false);
			}
			render(&text, &s, o->format);
			write_stdout(&text);
			shown = true;
		}
		while (sig == 0) {
			int64_t now = pgjq_now_us();
			enum pgjq_listen_event ev = pgjq_listen_wait(l, next > now ? next - now : 0, sigfd);

			if (ev == PGJQ_LISTEN_TIMEOUT || ev == PGJQ_LISTEN_RECONNECTED)
				break;
			if (ev != PGJQ_LISTEN_FD)
				continue;
			sig = pgjq_tty_signal();
			if (sig == SIGWINCH) {
				sig = 0;
				if (screen) {
					pgjq_tty_size(STDOUT_FILENO, &cols, &rows);
					draw(&text, cols, rows, true);
				}
			}
		}
	}
	if (screen)
		pgjq_tty_leave(STDOUT_FILENO);
	pgjq_buf_free(&text);
	pgjq_stats_free(&s);
	pgjq_listen_close(l);
	return PGJQ_EX_OK;
}

int
pgjq_stats(const struct pgjq_stats_opts *o)
{
	char *queues = pgjq_queue_array(o->queues, o->nqueues);
	int status = PGJQ_EX_OK;

	if (o->watch_us > 0) {
		status = watch(o, queues);
	} else {
		PGconn *conn = pgjq_connect(o->conninfo, o->schema);
		struct pgjq_stats s = {0};
		struct pgjq_buf text = {0};

		fetch(conn, NULL, queues, &s);
		if (o->format == PGJQ_STATS_PROMETHEUS) {
			const char *params[] = {queues};
			PGresult *res = pgjq_exec_or_die(conn, pgjq_sql(pgjq_stats_counters_sql), 1, params);

			pgjq_stats_read_counters(&s, res);
			PQclear(res);
		}
		render(&text, &s, o->format);
		write_stdout(&text);
		pgjq_buf_free(&text);
		pgjq_stats_free(&s);
		PQfinish(conn);
	}
	free(queues);
	return status;
}
