#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "clock.h"
#include "db.h"
#include "diag.h"
#include "follow.h"
#include "job.h"
#include "listen.h"
#include "status.h"
#include "tty.h"
#include "xalloc.h"

/* How often following reads its jobs again, and redraws. */
#define TICK_US INT64_C(1000000)
/* How long a finished job stays on the screen when following a queue. */
#define LINGER_US INT64_C(3000000)

enum { CH_DONE, CH_PROGRESS };

struct fjob {
	int64_t id;
	char *queue;
	char *state;
	char *message;          /* progress message, or NULL */
	char *error;
	char *json;             /* the job as read, one JSON object */
	int attempts, max_attempts;
	int progress;           /* -1: none */
	double started, finished; /* server's Unix time; 0: none */
	bool seen;              /* read from the database at least once */
	bool final;
	bool stale;             /* to be read again now */
	bool listed;            /* queue mode: in the last list of running jobs */
	int64_t drop_at;        /* queue mode: when it leaves the screen; 0: not yet */
};

struct follow {
	const struct pgjq_follow_opts *o;
	struct pgjq_listener *l;
	struct fjob *jobs;
	size_t n, cap;
	double server_now;      /* the server's clock at the last read ... */
	int64_t read_at;        /* ... and ours then */
	bool queue_mode;
	bool relist;            /* queue mode: read the running jobs again now */
	int cols, rows;         /* the screen */
	struct pgjq_buf out;
};

static void
set_str(char **dst, const char *src)
{
	if (*dst != NULL && src != NULL && strcmp(*dst, src) == 0)
		return;
	free(*dst);
	*dst = src != NULL ? pgjq_xstrdup(src) : NULL;
}

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static struct fjob *
find(struct follow *f, int64_t id)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->jobs[i].id == id)
			return &f->jobs[i];
	return NULL;
}

static struct fjob *
add(struct follow *f, int64_t id)
{
	struct fjob *j;

	f->jobs = pgjq_xgrow(f->jobs, &f->cap, f->n + 1, sizeof *f->jobs);
	j = &f->jobs[f->n++];
	memset(j, 0, sizeof *j);
	j->id = id;
	j->progress = -1;
	return j;
}

static void
drop(struct follow *f, size_t i)
{
	free(f->jobs[i].queue);
	free(f->jobs[i].state);
	free(f->jobs[i].message);
	free(f->jobs[i].error);
	free(f->jobs[i].json);
	memmove(&f->jobs[i], &f->jobs[i + 1], (f->n - i - 1) * sizeof *f->jobs);
	f->n--;
}

/* Seconds the job has run, by the server's clock; -1 if it has not started. */
static double
elapsed(const struct follow *f, const struct fjob *j)
{
	if (j->started <= 0)
		return -1;
	if (j->finished > 0)
		return j->finished - j->started;
	return f->server_now + (double)(pgjq_now_us() - f->read_at) / 1e6 - j->started;
}

static void
emit_event(struct follow *f, const struct fjob *j, const char *event)
{
	json_t *o = json_object();
	double secs = elapsed(f, j);
	char *text;

	json_object_set_new(o, "event", json_string(event));
	json_object_set_new(o, "id", json_integer(j->id));
	json_object_set_new(o, "queue", json_string(j->queue ? j->queue : ""));
	json_object_set_new(o, "state", json_string(j->state ? j->state : ""));
	json_object_set_new(o, "attempts", json_integer(j->attempts));
	json_object_set_new(o, "max_attempts", json_integer(j->max_attempts));
	json_object_set_new(o, "progress", j->progress >= 0 ? json_integer(j->progress) : json_null());
	json_object_set_new(o, "message", j->message ? json_string(j->message) : json_null());
	json_object_set_new(o, "elapsed",
	    secs >= 0 ? json_real((double)(int64_t)(secs * 10 + 0.5) / 10) : json_null());
	if (j->final)
		json_object_set_new(o, "error", j->error ? json_string(j->error) : json_null());
	text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (text == NULL)
		pgjq_die(PGJQ_EX_SOFTWARE, "cannot write an event as JSON");
	fputs(text, stdout);
	putchar('\n');
	fflush(stdout);
	free(text);
	json_decref(o);
}

/* Tells what a job did, in the way the output asks for. */
static void
report(struct follow *f, const struct fjob *j, const char *event)
{
	switch (f->o->output) {
	case PGJQ_FOLLOW_QUIET:
		if (j->final && strcmp(j->state, "completed") != 0)
			pgjq_warn("job %" PRId64 " %s%s%.*s", j->id, j->state,
			    j->error ? ": " : "", j->error ? (int)strcspn(j->error, "\n") : 0,
			    j->error ? j->error : "");
		break;
	case PGJQ_FOLLOW_JOBS:
		if (j->final) {
			puts(j->json);
			fflush(stdout);
		}
		break;
	case PGJQ_FOLLOW_EVENTS:
		emit_event(f, j, event);
		break;
	case PGJQ_FOLLOW_SCREEN:
		break;
	}
}

/* Takes in a row read from the database; announce: report what changed. */
static void
update(struct follow *f, const struct pgjq_jobrow *r, bool announce)
{
	struct fjob *j = find(f, r->id);
	const char *event = NULL;

	if (j == NULL)
		j = add(f, r->id);
	if (j->final)
		return;
	if (!j->seen)
		event = pgjq_state_final(r->state) ? "done" : "job";
	else if (pgjq_state_final(r->state))
		event = "done";
	else if (strcmp(j->state, r->state) != 0)
		event = "state";
	else if (j->progress != r->progress || !same_str(j->message, r->message))
		event = "progress";
	set_str(&j->queue, r->queue);
	set_str(&j->state, r->state);
	set_str(&j->message, r->message);
	set_str(&j->error, r->error);
	set_str(&j->json, r->json);
	j->attempts = r->attempts;
	j->max_attempts = r->max_attempts;
	j->progress = r->progress;
	j->started = r->started_at;
	j->finished = r->finished_at;
	j->seen = true;
	j->stale = false;
	j->final = pgjq_state_final(r->state);
	f->server_now = r->now;
	f->read_at = pgjq_now_us();
	if (announce && event != NULL)
		report(f, j, event);
}

/* Reads the jobs by id: every unfinished one (all), or the stale ones. */
static void
read_ids(struct follow *f, bool all, bool announce)
{
	struct pgjq_buf ids = {0};
	const char *params[1];
	PGresult *res;

	pgjq_buf_putc(&ids, '{');
	for (size_t i = 0; i < f->n; i++)
		if (!f->jobs[i].final && (all || f->jobs[i].stale))
			pgjq_buf_printf(&ids, "%s%" PRId64, ids.len > 1 ? "," : "", f->jobs[i].id);
	pgjq_buf_putc(&ids, '}');
	if (ids.len > 2) {
		params[0] = ids.data;
		res = pgjq_listen_exec(f->l, pgjq_sql(pgjq_status_by_id_sql), 1, params);
		if (res != NULL) {
			for (int i = 0; i < PQntuples(res); i++) {
				struct pgjq_jobrow r;

				pgjq_jobrow_get(res, i, &r);
				update(f, &r, announce);
			}
			PQclear(res);
			/* What was asked for and not found is gone (pruned): stop asking. */
			for (size_t i = 0; i < f->n; i++)
				if (f->jobs[i].stale && f->jobs[i].seen)
					f->jobs[i].stale = false;
		}
	}
	pgjq_buf_free(&ids);
}

/* Queue mode: reads the running jobs, and what became of those that left. */
static void
read_queue(struct follow *f)
{
	const char *params[1] = {f->o->queues};
	PGresult *res = pgjq_listen_exec(f->l, pgjq_sql(pgjq_status_running_sql), 1, params);
	int64_t now = pgjq_now_us();

	if (res == NULL)
		return;
	f->relist = false;
	for (size_t i = 0; i < f->n; i++)
		f->jobs[i].listed = false;
	for (int i = 0; i < PQntuples(res); i++) {
		struct pgjq_jobrow r;

		pgjq_jobrow_get(res, i, &r);
		update(f, &r, true);
		find(f, r.id)->listed = true;
	}
	PQclear(res);
	for (size_t i = 0; i < f->n; i++)
		if (!f->jobs[i].listed && !f->jobs[i].final)
			f->jobs[i].stale = true;
	read_ids(f, false, true);
	for (size_t i = 0; i < f->n;) {
		struct fjob *j = &f->jobs[i];

		if (j->final && j->drop_at == 0)
			j->drop_at = now + LINGER_US;
		/* Back to waiting (a retry, a lost lease), pruned, or done a while ago. */
		if ((!j->listed && !j->final) || (j->drop_at != 0 && now >= j->drop_at))
			drop(f, i);
		else
			i++;
	}
}

static void
on_notify(struct follow *f, size_t which, const char *payload)
{
	char *end;
	int64_t id = strtoll(payload, &end, 10);
	struct fjob *j = find(f, id);

	if (which == CH_DONE) {
		if (j != NULL && !j->final)
			j->stale = true;
		return;
	}
	/* "ID PCT[ MESSAGE]" */
	if (j == NULL) {
		if (f->queue_mode)
			f->relist = true;
		return;
	}
	if (j->final || *end != ' ')
		return;
	{
		long pct = strtol(end + 1, &end, 10);
		const char *msg = *end == ' ' ? end + 1 : NULL;

		if (pct < 0 || pct > 100)
			return;
		if (strcmp(j->state, "running") != 0) {
			/* It started since it was read: read it all. */
			j->stale = true;
			return;
		}
		if (j->progress == pct && same_str(j->message, msg))
			return;
		j->progress = (int)pct;
		set_str(&j->message, msg);
		report(f, j, "progress");
	}
}

/* ------------------------------------------------------------ the screen */

/* One job's line: id, bar, percent, message, elapsed time, state. */
static void
job_line(struct follow *f, struct pgjq_buf *b, const struct fjob *j, int idw, int width)
{
	int barw = width >= 69 ? 20 : width >= 39 ? 10 : 0;
	int fixed = idw + 1 + (barw > 0 ? barw + 3 : 0) + 5 + 1 + 8 + 1 + 9;
	int msgw = width - fixed, pct = j->progress, used;
	double secs = elapsed(f, j);
	char age[32];

	if (strcmp(j->state, "completed") == 0)
		pct = 100;
	pgjq_buf_printf(b, "%*" PRId64 " ", idw, j->id);
	if (barw > 0) {
		int fill = pct > 0 ? pct * barw / 100 : 0;

		pgjq_buf_putc(b, '[');
		for (int i = 0; i < barw; i++)
			pgjq_buf_putc(b, i < fill ? '#' : '.');
		pgjq_buf_append(b, "] ", 2);
	}
	if (pct >= 0)
		pgjq_buf_printf(b, "%3d%% ", pct);
	else
		pgjq_buf_append(b, "   - ", 5);
	used = pgjq_tty_put(b, j->final && j->error && strcmp(j->state, "completed") != 0 ?
	    j->error : j->message ? j->message : "", msgw, true);
	pgjq_tty_pad(b, msgw - used);
	if (secs >= 0)
		pgjq_status_age(secs, age, sizeof age);
	else
		snprintf(age, sizeof age, "-");
	pgjq_buf_printf(b, " %7s %-9s", age, j->state ? j->state : "?");
	while (b->len > 0 && b->data[b->len - 1] == ' ')
		b->data[--b->len] = '\0';
}

static int
id_width(const struct follow *f)
{
	int w = 1;

	for (size_t i = 0; i < f->n; i++) {
		char s[32];
		int n = snprintf(s, sizeof s, "%" PRId64, f->jobs[i].id);

		if (n > w)
			w = n;
	}
	return w;
}

/* Running jobs first, then the most recently finished, then the waiting ones. */
static int
screen_rank(const struct fjob *j)
{
	if (j->state != NULL && strcmp(j->state, "running") == 0)
		return 0;
	return j->final ? 1 : 2;
}

static int
screen_order(const void *a, const void *b)
{
	const struct fjob *x = *(const struct fjob *const *)a, *y = *(const struct fjob *const *)b;
	int rx = screen_rank(x), ry = screen_rank(y);

	if (rx != ry)
		return rx - ry;
	if (rx == 1 && x->finished != y->finished)
		return x->finished > y->finished ? -1 : 1;
	if (x->id != y->id)
		return (x->id < y->id) == (rx != 1) ? -1 : 1;
	return 0;
}

/*
 * When the jobs outnumber the terminal's lines, what matters is what runs
 * now and what just ended: in id order the running ones fall off the
 * bottom as soon as the first jobs finish.
 */
static void
draw(struct follow *f)
{
	struct pgjq_buf line = {0};
	int width = f->cols - 1, idw = id_width(f), room = f->rows - 1, shown = 0;
	size_t running = 0, done = 0;
	const struct fjob **order = pgjq_xcalloc(f->n + 1, sizeof *order);

	for (size_t i = 0; i < f->n; i++) {
		running += f->jobs[i].state && strcmp(f->jobs[i].state, "running") == 0;
		done += f->jobs[i].final;
	}
	if (f->queue_mode)
		pgjq_buf_printf(&line, "%s: %zu running", f->o->queue_names, running);
	else
		pgjq_buf_printf(&line, "%zu jobs: %zu running, %zu finished", f->n, running, done);
	if (pgjq_listen_down(f->l))
		pgjq_buf_printf(&line, "  (database lost: reconnecting)");
	pgjq_buf_append(&f->out, "\033[H", 3);
	pgjq_tty_put(&f->out, line.data, width, true);
	pgjq_buf_append(&f->out, "\033[K", 3);
	for (size_t i = 0; i < f->n; i++)
		order[i] = &f->jobs[i];
	qsort(order, f->n, sizeof *order, screen_order);
	for (size_t i = 0; i < f->n; i++) {
		pgjq_buf_append(&f->out, "\r\n", 2);
		if (shown == room - 1 && f->n - i > 1) {
			pgjq_buf_reset(&line);
			pgjq_buf_printf(&line, "... and %zu more", f->n - i);
			pgjq_tty_put(&f->out, line.data, width, true);
			pgjq_buf_append(&f->out, "\033[K", 3);
			break;
		}
		pgjq_buf_reset(&line);
		job_line(f, &line, order[i], idw, width);
		pgjq_tty_put(&f->out, line.data, width, true);
		pgjq_buf_append(&f->out, "\033[K", 3);
		shown++;
	}
	pgjq_buf_append(&f->out, "\033[J", 3);
	pgjq_tty_flush(STDOUT_FILENO, &f->out);
	pgjq_buf_free(&line);
	free(order);
}

/* The final lines, printed on the ordinary screen once the jobs are done. */
static void
draw_final(struct follow *f)
{
	struct pgjq_buf line = {0};
	int idw = id_width(f);

	for (size_t i = 0; i < f->n; i++) {
		pgjq_buf_reset(&line);
		job_line(f, &line, &f->jobs[i], idw, f->cols - 1);
		pgjq_tty_put(&f->out, line.data, f->cols - 1, true);
		pgjq_buf_putc(&f->out, '\n');
	}
	pgjq_tty_flush(STDOUT_FILENO, &f->out);
	pgjq_buf_free(&line);
}

static void
on_signal(struct follow *f, int sig)
{
	if (sig == SIGWINCH) {
		pgjq_tty_size(STDOUT_FILENO, &f->cols, &f->rows);
		pgjq_buf_append(&f->out, "\033[2J", 4);
		return;
	}
	if (sig != 0) {
		pgjq_tty_leave(STDOUT_FILENO);
		pgjq_tty_die_by(sig);
	}
}

/* ---------------------------------------------------------------- the loop */

static bool
all_final(const struct follow *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (!f->jobs[i].final)
			return false;
	return true;
}

static void
refresh(struct follow *f, bool all)
{
	if (f->queue_mode)
		read_queue(f);
	else
		read_ids(f, all, true);
}

int
pgjq_follow(const struct pgjq_follow_opts *o)
{
	static const enum pgjq_channel channels[] = {PGJQ_CHANNEL_DONE, PGJQ_CHANNEL_PROGRESS};
	struct follow f = {.o = o, .queue_mode = o->nids == 0};
	bool screen = o->output == PGJQ_FOLLOW_SCREEN;
	bool ticking = screen || o->output == PGJQ_FOLLOW_EVENTS;
	int sigfd = -1, status = 0;
	int64_t next_tick;

	/* LISTEN first, then read: a job finishing in between is seen either way. */
	f.l = pgjq_listen_open(o->conninfo, o->schema, channels, 2);
	for (size_t i = 0; i < o->nids; i++)
		if (find(&f, o->ids[i]) == NULL)
			add(&f, o->ids[i]);
	if (!f.queue_mode) {
		while (f.n > 0 && !f.jobs[0].seen) {
			read_ids(&f, true, false);
			if (!pgjq_listen_down(f.l))
				break;
			pgjq_listen_wait(f.l, -1, -1);
		}
		for (size_t i = 0; i < f.n; i++) {
			if (!f.jobs[i].seen) {
				pgjq_warn("job %" PRId64 ": no such job", f.jobs[i].id);
				status = PGJQ_EX_NOJOB;
			}
		}
		if (status != 0)
			goto out;
		for (size_t i = 0; i < f.n; i++)
			report(&f, &f.jobs[i], f.jobs[i].final ? "done" : "job");
	}
	if (screen) {
		sigfd = pgjq_tty_catch_signals();
		pgjq_tty_size(STDOUT_FILENO, &f.cols, &f.rows);
		pgjq_tty_enter(STDOUT_FILENO);
	}
	if (f.queue_mode)
		read_queue(&f);
	next_tick = pgjq_now_us() + TICK_US;
	while (f.queue_mode || !all_final(&f)) {
		enum pgjq_listen_event ev;
		int64_t wait = -1;
		PGnotify *n;
		size_t which;

		if (screen)
			draw(&f);
		if (ticking)
			wait = next_tick > pgjq_now_us() ? next_tick - pgjq_now_us() : 0;
		ev = pgjq_listen_wait(f.l, wait, sigfd);
		switch (ev) {
		case PGJQ_LISTEN_NOTIFY:
			while ((n = pgjq_listen_next(f.l, &which)) != NULL) {
				on_notify(&f, which, n->extra);
				PQfreemem(n);
			}
			break;
		case PGJQ_LISTEN_RECONNECTED:
			refresh(&f, true);
			break;
		case PGJQ_LISTEN_TIMEOUT:
			refresh(&f, true);
			next_tick = pgjq_now_us() + TICK_US;
			break;
		case PGJQ_LISTEN_FD:
			on_signal(&f, pgjq_tty_signal());
			break;
		}
		if (f.relist)
			read_queue(&f);
		else
			read_ids(&f, false, true);
	}
	if (screen) {
		pgjq_tty_leave(STDOUT_FILENO);
		draw_final(&f);
	}
	for (size_t i = 0; i < f.n; i++)
		if (strcmp(f.jobs[i].state, "completed") != 0)
			status = PGJQ_EX_NO;
out:
	while (f.n > 0)
		drop(&f, f.n - 1);
	free(f.jobs);
	pgjq_buf_free(&f.out);
	pgjq_listen_close(f.l);
	return status;
}
