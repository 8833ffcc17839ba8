/*
 * worker_slot: a job from the moment a slot takes it to its outcome.
 * Whatever runs it (a process of its own, a --pipe handler, an HTTP
 * request), the job meets the same rules here: its time limit, a cancel,
 * the end of the grace period, a handler's leftovers that hold its pipes;
 * and what the handler's end means for the job is decided in one place.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <curl/curl.h>
#include <jansson.h>

#include "diag.h"
#include "duration.h"
#include "handler.h"
#include "http.h"
#include "job.h"
#include "joblog.h"
#include "listen.h"
#include "pipe.h"
#include "worker_int.h"
#include "xalloc.h"

struct slot *
wk_slot_of(struct worker *w, int64_t id)
{
	for (int i = 0; i < w->o->concurrency; i++)
		if (w->slots[i].busy && w->slots[i].id == id)
			return &w->slots[i];
	return NULL;
}

/* Whether slot i may take a job now. */
bool
wk_slot_ready(struct worker *w, int i, int64_t now)
{
	if (w->slots[i].busy)
		return false;
	return w->pipes == NULL || wk_pipe_ready(w, i, now);
}

/* How many slots may take a job now. */
int
wk_slots_ready(struct worker *w, int64_t now)
{
	int n = 0;

	if (w->pipes == NULL)
		return w->o->concurrency - w->busy;
	for (int i = 0; i < w->o->concurrency; i++)
		n += wk_slot_ready(w, i, now);
	return n;
}

/* Gives a job of the local queue (which hands over its payload) to slot s. */
void
wk_slot_start(struct worker *w, struct slot *s, struct ahead *a, int64_t now)
{
	struct pgjq_handler_env env;

	memset(s, 0, sizeof *s);
	s->busy = true;
	s->id = a->id;
	s->queue = a->queue;
	s->payload = a->payload;
	s->attempt = a->attempt;
	s->max_attempts = a->max_attempts;
	s->db_running = a->db_running;
	s->sent_ahead = a->sent;
	/* Its attempt, run time and limit count from now, not from the claim. */
	s->started = now;
	/* The job's own limit wins over the worker's. */
	s->limit_us = a->limit_us >= 0 ? a->limit_us : w->o->timeout_us;
	if (s->limit_us > 0)
		s->deadline = now + s->limit_us;
	w->busy++;

	env.job_id = s->id;
	env.queue = s->queue;
	env.attempt = s->attempt;
	env.max_attempts = s->max_attempts;
	env.database_url = w->o->conninfo;
	env.schema = w->o->schema;
	env.schedule = wk_schedule_of(w, s->id, &env.scheduled_for);
	wk_event(w, "started", s, s->id, "attempt %d/%d", s->attempt, s->max_attempts);
	if (w->http != NULL) {
		struct pgjq_http_job job = {
			.id = s->id, .queue = s->queue, .attempt = s->attempt,
			.max_attempts = s->max_attempts, .payload = s->payload,
			.timeout_us = s->limit_us, .schedule = env.schedule,
			.scheduled_for = env.scheduled_for,
		};

		/* libcurl enforces the time limit itself. */
		s->http = true;
		s->deadline = 0;
		s->h.in_fd = s->h.out_fd = s->h.err_fd = s->h.progress_fd = -1;
		pgjq_http_start(w->http, &job, s);
		return;
	}
	if (w->pipes != NULL) {
		wk_pipe_start_job(w, s, now);
		return;
	}
	if (pgjq_handler_start(&s->h, w->o->argv, &env, s->payload, strlen(s->payload)) < 0) {
		/* No process at all (fork failed): the attempt fails, the job is retried. */
		s->h.pid = 0;
		s->exited = now;
		s->h.exec_errno = errno;
		pgjq_handler_close_pipes(&s->h);
	}
}

/* Whose line it is, for on_line. */
struct line_call {
	struct worker *w;
	struct slot *s;
};

static void
on_line(void *ctx, bool is_progress, const char *line)
{
	struct line_call *c = ctx;
	struct slot *s = c->s;
	char *message;
	int pct;

	wk_log_line(c->w, s, is_progress ? PGJQ_LOG_PROGRESS : PGJQ_LOG_STDERR, line);
	if (!is_progress) {
		/* stderr passes through, each line named by its job. */
		pgjq_warn("job %" PRId64 ": %s", s->id, line);
		return;
	}
	if (strncmp(line, "snooze", 6) == 0 && (line[6] == ' ' || line[6] == '\t')) {
		const char *why, *d = line + 7;
		int64_t us;

		/* "Not now": the job runs again after the delay, this attempt not counted. */
		d += strspn(d, " \t");
		if (pgjq_parse_duration(d, &us, &why) != 0) {
			pgjq_warn("job %" PRId64 ": ignoring \"snooze %.40s\": %s", s->id, d, why);
			return;
		}
		s->snooze = true;
		s->snooze_us = us;
		return;
	}
	if (!pgjq_progress_parse(line, &pct, &message)) {
		if (!s->bad_progress_said)
			pgjq_warn("job %" PRId64 ": ignoring a progress line that is not \"PCT [MESSAGE]\": %.80s",
			    s->id, line);
		s->bad_progress_said = true;
		return;
	}
	free(s->message);
	s->message = message;
	s->progress = pct;
	s->progress_dirty = true;
	s->progress_seq++;
}

/* A running job's progress is sent with the next turn's statement, at most this often. */
bool
wk_slot_progress_due(const struct slot *s, int64_t now)
{
	return s->busy && s->progress_dirty && now - s->progress_sent >= WK_PROGRESS_EVERY_US;
}

/* Adds the busy slots' handler fds to pfd; returns how many. */
int
wk_slots_pollfds(struct worker *w, struct pollfd *pfd)
{
	int n = 0;

	for (int i = 0; i < w->o->concurrency; i++)
		if (w->slots[i].busy)
			n += pgjq_handler_pollfds(&w->slots[i].h, pfd + n);
	return n;
}

/* Does the handlers' I/O that poll reported in pfd[0 .. n). */
void
wk_slots_io(struct worker *w, const struct pollfd *pfd, int n)
{
	for (int i = 0; i < w->o->concurrency; i++) {
		struct slot *s = &w->slots[i];
		struct line_call c = {w, s};
		struct pollfd sp[4];
		int k;

		if (!s->busy)
			continue;
		/* Match this slot's fds against what poll reported. */
		k = pgjq_handler_pollfds(&s->h, sp);
		for (int j = 0; j < k; j++)
			for (int m = 0; m < n; m++)
				if (pfd[m].fd == sp[j].fd)
					sp[j].revents = pfd[m].revents;
		pgjq_handler_io(&s->h, sp, k, on_line, &c);
	}
}

/* Does the HTTP I/O that poll reported in pfd[0 .. n); a finished request's reply goes to its slot. */
void
wk_http_io(struct worker *w, const struct pollfd *pfd, int n)
{
	struct pgjq_http_result r;

	pgjq_http_io(w->http, pfd, n, pgjq_now_us());
	while (pgjq_http_next_done(w->http, &r)) {
		struct slot *s = r.owner;

		s->reply = r;
		s->exited = pgjq_now_us();
	}
}

static void
stop_handler(struct worker *w, struct slot *s, int64_t now)
{
	if (s->piped) {
		wk_pipe_stop(w, wk_pipe_of(w, s), now, false);
		return;
	}
	if (s->kill_at != 0 || s->exited != 0)
		return;
	pgjq_handler_kill(&s->h, SIGTERM);
	s->kill_at = now + w->o->kill_after_us;
}

void
wk_slot_cancel(struct worker *w, struct slot *s, int64_t now)
{
	if (s->cancelled)
		return;
	s->cancelled = true;
	if (s->http) {
		wk_event(w, "cancelling", s, s->id, "asked to cancel; abandoning the request");
		pgjq_http_abort(w->http, s);
		s->exited = now;
		return;
	}
	/*
	 * A --pipe handler is stopped too, not told: one busy with the job
	 * may not be reading its stdin, and SIGTERM reaches it at once.
	 */
	wk_event(w, "cancelling", s, s->id, s->piped ? "asked to cancel; sending SIGTERM to its handler" :
	    "asked to cancel; sending SIGTERM");
	stop_handler(w, s, now);
}

/* The database no longer has the slot's job as ours: stop its handler, record nothing. */
void
wk_slot_abandon(struct worker *w, struct slot *s, int64_t now)
{
	if (s->lost)
		return;
	s->lost = true;
	wk_event(w, "lost", s, s->id, "cancelled, or taken over, before its start was recorded; "
	    "stopping its handler");
	if (s->http) {
		pgjq_http_abort(w->http, s);
		s->exited = now;
	} else {
		stop_handler(w, s, now);
	}
}

/* After the grace period: stop what still runs and put it back. */
void
wk_slots_end_grace(struct worker *w, int64_t now)
{
	for (int i = 0; i < w->o->concurrency; i++) {
		struct slot *s = &w->slots[i];

		/* One whose handler is already gone has its outcome: keep it. */
		if (!s->busy || s->released || s->exited != 0)
			continue;
		s->released = true;
		if (s->http) {
			pgjq_http_abort(w->http, s);
			s->exited = now;
		} else if (s->piped && w->stopping == WK_STOP_NOW) {
			pgjq_pipe_kill(&wk_pipe_of(w, s)->p, SIGKILL);
			wk_pipe_of(w, s)->kill_at = INT64_MAX;
			wk_pipe_of(w, s)->stopped = true;
		} else if (w->stopping == WK_STOP_NOW) {
			pgjq_handler_kill(&s->h, SIGKILL);
			s->kill_at = INT64_MAX;
		} else {
			stop_handler(w, s, now);
		}
	}
}

void
wk_reap_children(struct worker *w, int64_t now)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; w->pipes != NULL && i < w->o->concurrency; i++) {
			if (w->pipes[i].p.pid != pid)
				continue;
			pgjq_pipe_reaped(&w->pipes[i].p, status);
			w->pipes[i].exited = now;
			kill(-pid, SIGKILL);
		}
		for (int i = 0; i < w->o->concurrency; i++) {
			struct slot *s = &w->slots[i];

			if (!s->busy || s->h.pid != pid)
				continue;
			s->h.pid = 0;
			s->h.status = status;
			s->exited = now;
			/* Whatever it started and left behind goes with it. */
			kill(-pid, SIGKILL);
		}
	}
}

/*
 * A handler's or server's output as the job's result.  JSON is passed on
 * as written (PostgreSQL reads numbers exactly; jansson only checks it);
 * anything else becomes a JSON string, made valid UTF-8 first.
 */
static char *
result_json(const struct pgjq_buf *out, bool truncated)
{
	json_t *v;
	char *text, *clean;
	size_t len = out->len;

	if (len > 0 && !truncated) {
		v = json_loadb(out->data, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
		if (v != NULL) {
			json_decref(v);
			text = pgjq_xmalloc(len + 1);
			memcpy(text, out->data, len);
			text[len] = '\0';
			return text;
		}
	}
	while (len > 0 && out->data[len - 1] == '\n')
		len--;
	if (len == 0)
		return pgjq_xstrdup("null");
	clean = pgjq_text_clean(out->data, len);
	v = json_string(clean);
	text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	json_decref(v);
	free(clean);
	return text;
}

/* An HTTP answer other than 2xx goes to the job's log: its status line and its body, line by line. */
static void
log_http(struct worker *w, struct slot *s)
{
	struct pgjq_http_result *r = &s->reply;
	char *text, *line, *next;

	if (s->cancelled || s->released)
		return;
	if (r->curl_code != 0) {
		text = pgjq_xasprintf("request failed: %s", r->error);
		wk_log_line(w, s, PGJQ_LOG_HTTP, text);
		free(text);
		return;
	}
	if (r->status >= 200 && r->status < 300)
		return;
	text = pgjq_xasprintf("HTTP %ld", r->status);
	wk_log_line(w, s, PGJQ_LOG_HTTP, text);
	free(text);
	text = pgjq_text_clean(r->body.data ? r->body.data : "", r->body.len);
	for (line = text; *line != '\0' && !s->log_cut; line = next) {
		size_t len = strcspn(line, "\n");

		next = line + len + (line[len] == '\n');
		line[len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[len - 1] = '\0';
		wk_log_line(w, s, PGJQ_LOG_HTTP, line);
	}
	free(text);
}

/* What an HTTP reply means for the job. */
static void
finish_http(struct worker *w, struct slot *s, int64_t now)
{
	struct pgjq_http_result *r = &s->reply;
	char limit[32], *body;
	long st = r->status;

	body = pgjq_text_clean(r->body.data ? r->body.data : "",
	    r->body.len < PGJQ_ERROR_TAIL ? r->body.len : PGJQ_ERROR_TAIL);
	log_http(w, s);
	body[strcspn(body, "\r\n")] = '\0';
	/* A cancel wins over putting the job back: released, it would run again. */
	if (s->cancelled) {
		wk_outcome_add(w, s, OUT_FAILED, false, NULL, pgjq_xstrdup("cancelled"), now);
	} else if (s->released) {
		wk_outcome_add(w, s, OUT_RELEASED, false, NULL, NULL, now);
	} else if (r->curl_code == CURLE_OPERATION_TIMEDOUT) {
		pgjq_format_duration(s->limit_us, limit, sizeof limit);
		wk_outcome_add(w, s, OUT_FAILED, false, NULL, pgjq_xasprintf("timed out after %s", limit), now);
	} else if (r->curl_code != 0) {
		/* No answer at all: network trouble is worth another try. */
		wk_outcome_add(w, s, OUT_FAILED, false, NULL, pgjq_xasprintf("request failed: %s", r->error), now);
	} else if ((st == 429 || st == 503) && r->retry_after_us >= 0) {
		/* Busy, and it says when to come back: a snooze, not a failure. */
		s->snooze = true;
		s->snooze_us = r->retry_after_us;
		wk_outcome_add(w, s, OUT_SNOOZED, false, NULL, NULL, now);
	} else if (st >= 200 && st < 300) {
		if (r->truncated)
			pgjq_warn("job %" PRId64 ": the reply passed %d bytes; the result keeps the first %d, as a string",
			    s->id, PGJQ_RESULT_MAX, PGJQ_RESULT_MAX);
		wk_outcome_add(w, s, OUT_COMPLETED, false, result_json(&r->body, r->truncated), NULL, now);
	} else {
		/* 429 and 5xx may pass; any other answer will not change on a retry. */
		bool retry = st == 429 || st >= 500;

		wk_outcome_add(w, s, OUT_FAILED, !retry, NULL,
		    *body ? pgjq_xasprintf("HTTP %ld: %s", st, body) : pgjq_xasprintf("HTTP %ld", st), now);
	}
	free(body);
	pgjq_buf_free(&r->body);
}

/* The slot's job has its outcome: the slot is free for another. */
void
wk_slot_vacate(struct worker *w, struct slot *s)
{
	pgjq_handler_free(&s->h);
	free(s->payload);
	free(s->message);
	free(s->protocol_error);
	memset(s, 0, sizeof *s);
	w->busy--;
	/* A free slot: look for more work. */
	w->wake = true;
}

/* The handler is gone and its output read: turn what it did into an outcome. */
static void
finish_slot(struct worker *w, struct slot *s, int64_t now)
{
	int st = s->h.status;
	char raw[PGJQ_ERROR_TAIL + 1], why[256], *tail;
	bool permanent = false;

	pgjq_handler_error_tail(&s->h, raw, sizeof raw);
	/* The tail may start inside a character, or not be text at all. */
	tail = pgjq_text_clean(raw, strlen(raw));
	if (s->http) {
		finish_http(w, s, now);
	} else if (s->piped) {
		wk_pipe_finish_job(w, s, now);
	} else if (s->released && !s->cancelled) {
		wk_outcome_add(w, s, OUT_RELEASED, false, NULL, NULL, now);
	} else if (s->h.exec_errno != 0) {
		snprintf(why, sizeof why, "cannot run %s: %s", w->o->argv[0], strerror(s->h.exec_errno));
		wk_outcome_add(w, s, OUT_FAILED, false, NULL, pgjq_xstrdup(why), now);
	} else if (s->snooze && !s->timed_out && !s->cancelled) {
		/* It said "snooze" on fd 3: that is its answer, whatever its exit status. */
		wk_outcome_add(w, s, OUT_SNOOZED, false, NULL, NULL, now);
	} else if (!s->timed_out && !s->cancelled && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		if (s->h.out_truncated)
			pgjq_warn("job %" PRId64 ": its output passed %d bytes; the result keeps the first %d, as a string",
			    s->id, PGJQ_RESULT_MAX, PGJQ_RESULT_MAX);
		wk_outcome_add(w, s, OUT_COMPLETED, false, result_json(&s->h.out, s->h.out_truncated), NULL, now);
	} else {
		char limit[32];

		if (s->cancelled)
			snprintf(why, sizeof why, "cancelled");
		else if (s->timed_out) {
			pgjq_format_duration(s->limit_us, limit, sizeof limit);
			snprintf(why, sizeof why, "timed out after %s", limit);
		} else if (WIFSIGNALED(st))
			snprintf(why, sizeof why, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
		else if (WEXITSTATUS(st) == PGJQ_EX_DATAERR) {
			snprintf(why, sizeof why, "exit status 65: bad payload");
			permanent = true;
		} else
			snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(st));
		wk_outcome_add(w, s, OUT_FAILED, permanent,
		    NULL, *tail ? pgjq_xasprintf("%s: %s", why, tail) : pgjq_xstrdup(why), now);
	}
	free(tail);
	wk_slot_vacate(w, s);
}

void
wk_slots_check(struct worker *w, int64_t now)
{
	for (int i = 0; i < w->o->concurrency; i++) {
		struct slot *s = &w->slots[i];

		if (!s->busy)
			continue;
		if (s->piped) {
			struct piped *pp = wk_pipe_of(w, s);

			if (pgjq_pipe_gone(&pp->p)) {
				wk_pipe_unqueue(w, pp);
				if (!wk_pipe_resend(w, s, now))
					finish_slot(w, s, now);
				continue;
			}
			if (s->deadline != 0 && now >= s->deadline && !s->timed_out) {
				s->timed_out = true;
				wk_event(w, "timed out", s, s->id, "sending SIGTERM to its handler");
				wk_pipe_stop(w, pp, now, false);
			}
			continue;
		}
		if (s->exited == 0) {
			if (s->deadline != 0 && now >= s->deadline && !s->timed_out) {
				s->timed_out = true;
				wk_event(w, "timed out", s, s->id, "sending SIGTERM");
				stop_handler(w, s, now);
			}
			if (s->kill_at != 0 && now >= s->kill_at) {
				pgjq_handler_kill(&s->h, SIGKILL);
				s->kill_at = INT64_MAX;
			}
			continue;
		}
		/* A grandchild that left the group may hold the pipes: stop waiting for it. */
		if (!pgjq_handler_done(&s->h) && now - s->exited >= WK_LEFTOVER_US)
			pgjq_handler_close_pipes(&s->h);
		if (pgjq_handler_done(&s->h))
			finish_slot(w, s, now);
	}
}
