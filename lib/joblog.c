/*
 * joblog: jq-status --log, a job's log printed, or followed live until
 * the job ends.  Following LISTENs before it reads anything, then reads
 * the job's state and only after it the lines: a job seen finished has
 * all its lines committed (they go with its outcome), so reading once
 * more after that misses none.  A notice on the log channel says lines
 * of a job were committed; one on the done channel that it finished; a
 * reconnection, or the listener's polling where notices do not arrive
 * (a pooler in transaction mode), reads both again.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "channel.h"
#include "db.h"
#include "diag.h"
#include "job.h"
#include "joblog.h"
#include "listen.h"
#include "status.h"
#include "xalloc.h"

/* Lines read at once, so a long log is printed as it is read (the LIMIT below). */
#define LOG_BATCH 5000

static const char state_sql[] =
    "SELECT state FROM {S}.jobs WHERE id = $1 UNION ALL SELECT state FROM {S}.history WHERE id = $1";

static const char lines_sql[] =
    "SELECT l.id, pg_catalog.to_char(l.at, 'YYYY-MM-DD HH24:MI:SS.MS'), "
    "pg_catalog.to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
    "l.attempt, l.stream, l.line "
    "FROM {S}.logs l WHERE l.job_id = $1 AND l.id > $2 AND ($3::integer IS NULL OR l.attempt = $3) "
    "ORDER BY l.id LIMIT 5000";

enum { L_ID, L_TIME, L_UTC, L_ATTEMPT, L_STREAM, L_LINE };

struct logview {
	const struct pgjq_log_opts *o;
	struct pgjq_listener *l;
	char id[32], attempt[16];
	int64_t last;             /* the last line printed */
	struct pgjq_buf out;
};

static void
flush_out(struct logview *v)
{
	if ((v->out.len > 0 && fwrite(v->out.data, 1, v->out.len, stdout) != v->out.len) ||
	    fflush(stdout) != 0)
		pgjq_die(PGJQ_EX_IOERR, "cannot write the output");
	pgjq_buf_reset(&v->out);
}

static void
print_line(struct logview *v, PGresult *res, int row)
{
	if (v->o->json) {
		json_t *j = json_pack("{s:I, s:s, s:i, s:s, s:s}",
		    "id", (json_int_t)v->o->id,
		    "time", PQgetvalue(res, row, L_UTC),
		    "attempt", atoi(PQgetvalue(res, row, L_ATTEMPT)),
		    "stream", PQgetvalue(res, row, L_STREAM),
		    "line", PQgetvalue(res, row, L_LINE));
		char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

		if (text == NULL)
			pgjq_die(PGJQ_EX_SOFTWARE, "job %" PRId64 ": cannot encode a log line", v->o->id);
		pgjq_buf_printf(&v->out, "%s\n", text);
		free(text);
		json_decref(j);
		return;
	}
	pgjq_buf_printf(&v->out, "%s %s %s %s\n", PQgetvalue(res, row, L_TIME),
	    PQgetvalue(res, row, L_ATTEMPT), PQgetvalue(res, row, L_STREAM),
	    PQgetvalue(res, row, L_LINE));
}

/* Prints the lines past the last printed; false if the database was lost meanwhile. */
static bool
read_lines(struct logview *v)
{
	for (;;) {
		char last[32];
		const char *params[] = {v->id, last, v->o->attempt > 0 ? v->attempt : NULL};
		PGresult *res;
		int rows;

		snprintf(last, sizeof last, "%" PRId64, v->last);
		res = pgjq_listen_exec(v->l, pgjq_sql(lines_sql), 3, params);
		if (res == NULL)
			return false;
		rows = PQntuples(res);
		for (int i = 0; i < rows; i++)
			print_line(v, res, i);
		if (rows > 0)
			v->last = strtoll(PQgetvalue(res, rows - 1, L_ID), NULL, 10);
		PQclear(res);
		flush_out(v);
		if (rows < LOG_BATCH)
			return true;
	}
}

/* The job's state (free it), or NULL: none; *lost: the database was lost meanwhile. */
static char *
read_state(struct logview *v, bool *lost)
{
	const char *params[] = {v->id};
	PGresult *res = pgjq_listen_exec(v->l, pgjq_sql(state_sql), 1, params);
	char *state = NULL;

	*lost = res == NULL;
	if (res != NULL && PQntuples(res) > 0)
		state = pgjq_xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return state;
}

int
pgjq_log_show(const struct pgjq_log_opts *o)
{
	static const enum pgjq_channel channels[] = {PGJQ_CHANNEL_DONE, PGJQ_CHANNEL_LOG};
	struct logview v = {.o = o};
	char *state = NULL;
	bool fresh = true, lost;
	int status = 0;

	snprintf(v.id, sizeof v.id, "%" PRId64, o->id);
	snprintf(v.attempt, sizeof v.attempt, "%d", o->attempt);
	/* LISTEN first, then read: nothing committed in between goes unseen. */
	v.l = pgjq_listen_open(o->conninfo, o->schema, channels, o->follow ? 2 : 0);
	for (;;) {
		enum pgjq_listen_event ev;
		PGnotify *n;
		size_t which;

		if (fresh) {
			free(state);
			state = read_state(&v, &lost);
			if (!lost && state == NULL) {
				pgjq_warn("job %" PRId64 ": no such job", o->id);
				status = PGJQ_EX_NOJOB;
				break;
			}
			if (!lost && read_lines(&v) && (!o->follow || pgjq_state_final(state)))
				break;
			fresh = lost;
		}
		ev = pgjq_listen_wait(v.l, -1, -1);
		if (ev != PGJQ_LISTEN_NOTIFY) {
			/* Reconnected, or polling where notices do not come: read it all again. */
			fresh = true;
			continue;
		}
		while ((n = pgjq_listen_next(v.l, &which)) != NULL) {
			int64_t id = strtoll(n->extra, NULL, 10);

			if (id == o->id)
				fresh = true;
			PQfreemem(n);
		}
	}
	if (status == 0 && o->follow && strcmp(state, "completed") != 0)
		status = PGJQ_EX_NO;
	free(state);
	pgjq_buf_free(&v.out);
	pgjq_listen_close(v.l);
	return status;
}
