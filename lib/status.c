#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "status.h"
#include "tty.h"

#define SELECT_JOB \
	"SELECT a.id, a.queue, a.state, a.priority, a.attempts, a.max_attempts, a.progress, " \
	"       a.message, a.error, a.result::text, a.payload::text, a.key, " \
	"       coalesce((SELECT w.name FROM {S}.workers w WHERE w.id = a.worker), " \
	"                a.worker::text || ' (no longer registered)'), " \
	"       a.after::text, a.cancel, extract(epoch FROM a.run_at), " \
	"       extract(epoch FROM a.created_at), extract(epoch FROM a.started_at), " \
	"       extract(epoch FROM a.finished_at), extract(epoch FROM pg_catalog.now()), " \
	"       (SELECT pg_catalog.row_to_json(x) FROM (SELECT a.id, a.queue, a.state, a.priority, " \
	"           a.attempts, a.max_attempts, a.progress, a.message, a.error, a.result, " \
	"           a.payload, a.key, a.after, a.worker, " \
	"           (SELECT w.name FROM {S}.workers w WHERE w.id = a.worker) AS worker_name, " \
	"           a.cancel, a.run_at, a.created_at, " \
	"           a.started_at, a.finished_at) x)::text " \
	"  FROM {S}.all_jobs a "

const char pgjq_status_by_id_sql[] = SELECT_JOB
	"WHERE a.id = ANY ($1::bigint[]) ORDER BY pg_catalog.array_position($1::bigint[], a.id)";
/*
 * $1: the queues (text[]), NULL for every queue.  Newest first: ids grow
 * with creation.  list_job_ids() picks them through index ranges, so the
 * listing costs the same with a million jobs as with ten.
 */
const char pgjq_status_list_sql[] = SELECT_JOB
	"WHERE a.id = ANY (ARRAY(SELECT {S}.list_job_ids($1::text[], $2::text, $3::bigint))) "
	"ORDER BY a.id DESC";
const char pgjq_status_running_sql[] = SELECT_JOB
	"WHERE ($1::text[] IS NULL OR a.queue = ANY ($1::text[])) AND a.state = 'running' "
	"ORDER BY a.started_at, a.id";

static const char *
text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static double
epoch(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtod(PQgetvalue(res, row, col), NULL);
}

void
pgjq_jobrow_get(const PGresult *res, int row, struct pgjq_jobrow *j)
{
	j->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	j->queue = PQgetvalue(res, row, 1);
	j->state = PQgetvalue(res, row, 2);
	j->priority = atoi(PQgetvalue(res, row, 3));
	j->attempts = atoi(PQgetvalue(res, row, 4));
	j->max_attempts = atoi(PQgetvalue(res, row, 5));
	j->progress = PQgetisnull(res, row, 6) ? -1 : atoi(PQgetvalue(res, row, 6));
	j->message = text(res, row, 7);
	j->error = text(res, row, 8);
	j->result = text(res, row, 9);
	j->payload = text(res, row, 10);
	j->key = text(res, row, 11);
	j->worker = text(res, row, 12);
	j->after = text(res, row, 13);
	j->cancel = strcmp(PQgetvalue(res, row, 14), "t") == 0;
	j->run_at = epoch(res, row, 15);
	j->created_at = epoch(res, row, 16);
	j->started_at = epoch(res, row, 17);
	j->finished_at = epoch(res, row, 18);
	j->now = epoch(res, row, 19);
	j->json = PQgetvalue(res, row, 20);
}

bool
pgjq_state_final(const char *state)
{
	return strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0 ||
	    strcmp(state, "cancelled") == 0;
}

void
pgjq_status_age(double seconds, char *buf, unsigned long size)
{
	pgjq_format_duration(seconds > 0 ? (int64_t)(seconds * 1e6) : 0, buf, size);
}

/* One "  label   value" line, the value cut to what is left of width. */
static void
line(struct pgjq_buf *b, const char *label, const char *value, int width)
{
	pgjq_buf_printf(b, "  %-9s ", label);
	pgjq_tty_put(b, value, width - 12, true);
	pgjq_buf_putc(b, '\n');
}

/* A time, and how it relates to now (or to another time). */
static void
time_line(struct pgjq_buf *b, const char *label, double t, const char *how,
    double len, int width)
{
	time_t secs = (time_t)t;
	struct tm tm;
	char when[32], age[32], value[96];

	localtime_r(&secs, &tm);
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
	pgjq_status_age(len, age, sizeof age);
	snprintf(value, sizeof value, "%s  (%s%s%s%s)", when, how, *how ? " " : "", age,
	    strcmp(how, "in") == 0 || strcmp(how, "ran") == 0 || strcmp(how, "running") == 0 ? "" : " ago");
	line(b, label, value, width);
}

void
pgjq_status_show(struct pgjq_buf *b, const struct pgjq_jobrow *j, int width)
{
	char head[256], pct[16];
	struct pgjq_buf v = {0};
	const char *p;

	snprintf(head, sizeof head, "job %lld  queue %s  %s%s  attempt %d of %d",
	    (long long)j->id, j->queue, j->state,
	    j->cancel && !pgjq_state_final(j->state) ? " (cancelling)" : "",
	    j->attempts, j->max_attempts);
	pgjq_tty_put(b, head, width, true);
	pgjq_buf_putc(b, '\n');
	if (j->progress >= 0 || j->message != NULL) {
		if (j->progress >= 0)
			snprintf(pct, sizeof pct, "%d%%", j->progress);
		else
			snprintf(pct, sizeof pct, "-");
		pgjq_buf_printf(&v, "%s%s%s", pct, j->message ? " " : "", j->message ? j->message : "");
		line(b, "progress", v.data, width);
	}
	time_line(b, "created", j->created_at, "", j->now - j->created_at, width);
	if (strcmp(j->state, "scheduled") == 0 && j->run_at > j->now)
		time_line(b, "run at", j->run_at, "in", j->run_at - j->now, width);
	if (j->started_at > 0 && j->finished_at == 0)
		time_line(b, "started", j->started_at, "running", j->now - j->started_at, width);
	else if (j->started_at > 0)
		time_line(b, "started", j->started_at, "", j->now - j->started_at, width);
	if (j->finished_at > 0)
		time_line(b, "finished", j->finished_at, j->started_at > 0 ? "ran" : "",
		    j->started_at > 0 ? j->finished_at - j->started_at : j->now - j->finished_at, width);
	if (j->priority != 0) {
		snprintf(pct, sizeof pct, "%d", j->priority);
		line(b, "priority", pct, width);
	}
	if (j->key != NULL)
		line(b, "key", j->key, width);
	if (j->after != NULL)
		line(b, "after", j->after, width);
	if (j->worker != NULL && !pgjq_state_final(j->state))
		line(b, "worker", j->worker, width);
	if (j->payload != NULL)
		line(b, "payload", j->payload, width);
	if (j->result != NULL)
		line(b, "result", j->result, width);
	if (j->error != NULL) {
		/* Every line of the error (a handler's stderr), indented under the first. */
		const char *label = "error";

		for (p = j->error; *p != '\0'; label = "") {
			size_t n = strcspn(p, "\n");

			pgjq_buf_reset(&v);
			pgjq_buf_append(&v, p, n);
			line(b, label, v.data, width);
			p += n;
			if (*p == '\n')
				p++;
		}
	}
	pgjq_buf_free(&v);
}

void
pgjq_status_table(struct pgjq_buf *b, const PGresult *res, int width)
{
	int n = PQntuples(res), idw = 2;

	for (int i = 0; i < n; i++) {
		int w = (int)strlen(PQgetvalue(res, i, 0));

		if (w > idw)
			idw = w;
	}
	/* ID STATE TRIES PROG AGE RAN INFO: the info column gets what is left. */
	pgjq_buf_printf(b, "%*s  %-9s  %5s  %4s  %7s  %7s  INFO\n", idw, "ID", "STATE",
	    "TRIES", "PROG", "AGE", "RAN");
	for (int i = 0; i < n; i++) {
		struct pgjq_jobrow j;
		char tries[32], pct[16], age[32], ran[32];
		const char *info;

		pgjq_jobrow_get(res, i, &j);
		snprintf(tries, sizeof tries, "%d/%d", j.attempts, j.max_attempts);
		if (j.progress >= 0)
			snprintf(pct, sizeof pct, "%d%%", j.progress);
		else
			snprintf(pct, sizeof pct, "-");
		pgjq_status_age(j.now - j.created_at, age, sizeof age);
		if (j.started_at > 0)
			pgjq_status_age((j.finished_at > 0 ? j.finished_at : j.now) - j.started_at,
			    ran, sizeof ran);
		else
			snprintf(ran, sizeof ran, "-");
		info = strcmp(j.state, "failed") == 0 || strcmp(j.state, "cancelled") == 0 ?
		    j.error : j.message;
		if (info == NULL && strcmp(j.state, "scheduled") == 0 && j.after != NULL)
			info = "waiting for dependencies";
		pgjq_buf_printf(b, "%*lld  %-9s  %5s  %4s  %7s  %7s  ", idw, (long long)j.id, j.state,
		    tries, pct, age, ran);
		pgjq_tty_put(b, info != NULL ? info : "", width - 1 - (idw + 44), true);
		/* No trailing blanks when there is no info. */
		while (b->len > 0 && b->data[b->len - 1] == ' ')
			b->data[--b->len] = '\0';
		pgjq_buf_putc(b, '\n');
	}
}
