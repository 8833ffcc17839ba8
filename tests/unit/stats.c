/*
 * Unit tests for lib/stats.c's writers: the table's alignment, the JSON
 * lines, and the Prometheus text with its label escaping, which the
 * database's queue names (a restricted alphabet) never exercise.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "tap.h"

/* The line of text that starts with prefix, or NULL; the caller frees it. */
static char *
line_with(const char *text, const char *prefix)
{
	for (const char *p = text; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, "\n");

		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			char *l = malloc(n + 1);

			memcpy(l, p, n);
			l[n] = '\0';
			return l;
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	return NULL;
}

static int
count_lines(const char *text)
{
	int n = 0;

	for (const char *p = text; *p != '\0'; p++)
		n += *p == '\n';
	return n;
}

static void
is_line(const char *text, const char *prefix, const char *expected, const char *desc)
{
	char *l = line_with(text, prefix);

	is_str(l, expected, "%s", desc);
	free(l);
}

int
main(void)
{
	struct pgjq_queue_stats q[2] = {
		{
			.queue = "mail",
			.jobs = {1, 25000, 2, 1000000, 7, 0},
			.oldest_queued = 75.25,
			.completed = {3, 10, 30},
			.failed = {0, 1, 10},
			.run = {0.5, 2.25, 61},
			.workers = 2,
			.slots = 8,
		},
		{
			.queue = "we\"ird\\q\nx",
			.oldest_queued = NAN,
			.run = {NAN, NAN, NAN},
		},
	};
	struct pgjq_schedule_stats sch[2] = {{.name = "nightly", .last_success = 1795431600.25},
		{.name = "never"}};
	/* Run times of mail: 3 within 1 s, 5 within 5 s; a queue only the counters know. */
	struct pgjq_counter counters[] = {
		{(char *)"gone", (char *)"failed", NAN, 2},
		{(char *)"mail", (char *)"completed", NAN, 5},
		{(char *)"mail", (char *)"run_bucket", 1, 3},
		{(char *)"mail", (char *)"run_bucket", 5, 5},
		{(char *)"mail", (char *)"run_count", NAN, 5},
		{(char *)"mail", (char *)"run_seconds", NAN, 7.5},
		{NULL, (char *)"run_bucket", 5, 0},
		{NULL, (char *)"run_bucket", 1, 0},
	};
	struct pgjq_stats s = {
		.at = "2026-11-23T11:00:00+00:00",
		.schedules = sch,
		.nschedules = 2,
		.queues = q,
		.nqueues = 2,
		.workers = 3,
		.slots = 12,
		.live_tuples = {25010, 1000007},
		.dead_tuples = {12, 0},
		.counters = counters,
		.ncounters = sizeof counters / sizeof counters[0],
	};
	struct pgjq_buf b = {0};

	plan(37);

	pgjq_stats_prom_label(&b, "a\\b\"c\nd");
	is_str(b.data, "a\\\\b\\\"c\\nd", "label values escape backslash, quote and newline");
	pgjq_buf_reset(&b);

	pgjq_stats_prometheus(&b, &s);
	is_line(b.data, "pgjq_jobs{queue=\"mail\",state=\"completed\"}",
	    "pgjq_jobs{queue=\"mail\",state=\"completed\"} 1000000", "a count, in full");
	is_line(b.data, "pgjq_jobs{queue=\"we",
	    "pgjq_jobs{queue=\"we\\\"ird\\\\q\\nx\",state=\"scheduled\"} 0", "an odd name escaped");
	is_line(b.data, "pgjq_schedule_last_success_timestamp_seconds{schedule=\"nightly\"}",
	    "pgjq_schedule_last_success_timestamp_seconds{schedule=\"nightly\"} 1795431600.250000",
	    "a schedule's last success");
	is_line(b.data, "pgjq_schedule_last_success_timestamp_seconds{schedule=\"never\"}",
	    "pgjq_schedule_last_success_timestamp_seconds{schedule=\"never\"} 0.000000",
	    "0 for a schedule that never succeeded");
	is_line(b.data, "pgjq_oldest_queued_seconds{queue=\"mail\"}",
	    "pgjq_oldest_queued_seconds{queue=\"mail\"} 75.25", "the oldest queued job's age");
	is_line(b.data, "pgjq_oldest_queued_seconds{queue=\"we",
	    "pgjq_oldest_queued_seconds{queue=\"we\\\"ird\\\\q\\nx\"} 0", "0 with nothing queued");
	is_line(b.data, "pgjq_finished_jobs{queue=\"mail\",state=\"failed\",window=\"15m\"}",
	    "pgjq_finished_jobs{queue=\"mail\",state=\"failed\",window=\"15m\"} 10", "a window's count");
	is_line(b.data, "pgjq_failure_ratio{queue=\"mail\"}", "pgjq_failure_ratio{queue=\"mail\"} 0.25",
	    "the failure ratio");
	ok(line_with(b.data, "pgjq_failure_ratio{queue=\"we") == NULL, "no failure ratio when nothing finished");
	ok(strstr(b.data, "NaN") == NULL, "no NaN anywhere");
	is_line(b.data, "pgjq_jobs_completed_total{queue=\"mail\"}",
	    "pgjq_jobs_completed_total{queue=\"mail\"} 5", "a counter");
	is_line(b.data, "pgjq_jobs_completed_total{queue=\"we",
	    "pgjq_jobs_completed_total{queue=\"we\\\"ird\\\\q\\nx\"} 0", "0 where nothing was counted");
	is_line(b.data, "pgjq_jobs_failed_total{queue=\"gone\"}",
	    "pgjq_jobs_failed_total{queue=\"gone\"} 2", "a queue only the counters know");
	is_line(b.data, "pgjq_job_run_seconds_bucket{queue=\"mail\",le=\"1\"}",
	    "pgjq_job_run_seconds_bucket{queue=\"mail\",le=\"1\"} 3", "a bucket");
	is_line(b.data, "pgjq_job_run_seconds_bucket{queue=\"mail\",le=\"+Inf\"}",
	    "pgjq_job_run_seconds_bucket{queue=\"mail\",le=\"+Inf\"} 5", "+Inf is the count");
	is_line(b.data, "pgjq_job_run_seconds_bucket{queue=\"gone\",le=\"5\"}",
	    "pgjq_job_run_seconds_bucket{queue=\"gone\",le=\"5\"} 0", "every bound for every queue");
	is_line(b.data, "pgjq_run_seconds_sum{queue=\"mail\"}",
	    "pgjq_run_seconds_sum{queue=\"mail\"} 7.5", "the summary's sum");
	is_line(b.data, "pgjq_run_seconds{queue=\"mail\",quantile=\"0.95\"}",
	    "pgjq_run_seconds{queue=\"mail\",quantile=\"0.95\"} 2.25", "a quantile");
	is_line(b.data, "# TYPE pgjq_run_seconds ", "# TYPE pgjq_run_seconds summary", "run times are a summary");
	is_line(b.data, "pgjq_workers ", "pgjq_workers 3", "live workers, once each");
	is_line(b.data, "pgjq_table_dead_tuples{table=\"jobs\"}", "pgjq_table_dead_tuples{table=\"jobs\"} 12",
	    "dead tuples by table");
	{
		/* Every line: a comment, or a sample of the grammar, no raw newline in a label. */
		int bad = 0, types = 0;

		for (const char *p = b.data; *p != '\0';) {
			size_t n = strcspn(p, "\n");

			if (strncmp(p, "# TYPE ", 7) == 0)
				types++;
			else if (p[0] != '#' && (strncmp(p, "pgjq_", 5) != 0 || memchr(p, ' ', n) == NULL))
				bad++;
			p += n + (p[n] == '\n');
		}
		is_int(bad, 0, "every line is a comment or a sample");
		is_int(types, 20, "one TYPE line per metric");
	}
	pgjq_buf_reset(&b);

	pgjq_stats_json(&b, &s);
	is_int(count_lines(b.data), 5, "JSON: a line per queue, one for the database, one per schedule");
	is_line(b.data, "{\"type\":\"schedule\",\"at\":\"2026-11-23T11:00:00+00:00\",\"schedule\":\"never\"",
	    "{\"type\":\"schedule\",\"at\":\"2026-11-23T11:00:00+00:00\",\"schedule\":\"never\","
	    "\"last_success_epoch\":null}", "a schedule's line");
	{
		char *l = line_with(b.data, "{\"type\":\"queue\",\"at\":\"2026-11-23T11:00:00+00:00\",\"queue\":\"mail\"");

		ok(l != NULL, "a queue's line starts with its type, time and name");
		ok(l != NULL && strstr(l, "\"jobs\":{\"scheduled\":1,\"queued\":25000,\"running\":2,"
		    "\"completed\":1000000,\"failed\":7,\"cancelled\":0}") != NULL, "jobs by state");
		ok(l != NULL && strstr(l, "\"completed_per_minute\":{\"1m\":3.0,\"5m\":2.0,\"15m\":2.0}") != NULL,
		    "completed per minute");
		ok(l != NULL && strstr(l, "\"failed_per_minute\":{\"1m\":0.0,\"5m\":0.2,\"15m\":0.667}") != NULL,
		    "failed per minute, to three places");
		ok(l != NULL && strstr(l, "\"failure_rate\":0.25,\"run_seconds\":{\"p50\":0.5,\"p95\":2.25,"
		    "\"p99\":61.0},\"workers\":2,\"slots\":8,\"paused\":false,\"limit\":null}") != NULL,
		    "failure rate, run times, workers, not paused, no limit");
		free(l);
		l = line_with(b.data, "{\"type\":\"queue\",\"at\":\"2026-11-23T11:00:00+00:00\",\"queue\":\"we");
		ok(l != NULL && strstr(l, "\"oldest_queued_seconds\":null") != NULL &&
		    strstr(l, "\"failure_rate\":null,\"run_seconds\":{\"p50\":null,\"p95\":null,\"p99\":null}") != NULL,
		    "null for what cannot be told");
		free(l);
	}
	is_line(b.data, "{\"type\":\"database\"",
	    "{\"type\":\"database\",\"at\":\"2026-11-23T11:00:00+00:00\",\"workers\":3,\"slots\":12,"
	    "\"tables\":{\"jobs\":{\"live_tuples\":25010,\"dead_tuples\":12},"
	    "\"history\":{\"live_tuples\":1000007,\"dead_tuples\":0}}}", "the database's line");
	pgjq_buf_reset(&b);

	pgjq_stats_table(&b, &s);
	is_line(b.data, "QUEUE ",
	    "QUEUE       SCHEDULED  QUEUED  RUNNING  COMPLETED  FAILED  CANCELLED  OLDEST  WORKERS  SLOTS",
	    "the first table's header");
	is_line(b.data, "mail ",
	    "mail                1   25000        2    1000000       7          0   1m15s        2      8",
	    "a queue's counts, aligned under it");
	is_line(b.data, "we",
	    "we\"ird\\q x          0       0        0          0       0          0       -        0      0",
	    "an odd name shown safe on one line, - for none");
	{
		const char *second = strstr(b.data, "\n\n");

		is_line(second != NULL ? second + 2 : "", "  ",
		    "                  COMPLETED/MIN           FAILED/MIN                       RUN TIME",
		    "the second table's group labels end over their columns");
	}
	pgjq_buf_free(&b);
	return done_testing();
}
