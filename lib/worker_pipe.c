/*
 * worker_pipe: with --pipe, each slot's long-lived handler.  The process
 * outlives the jobs it takes, so its life is kept here, apart from theirs:
 * started when its slot gets a job and has none, restarted ever more
 * slowly when it keeps dying before its first answer, told there is no
 * more work with EOF, and stopped at the end.  lib/pipe.c speaks the
 * protocol; this is what the worker makes of what it hears.
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

#include "diag.h"
#include "duration.h"
#include "handler.h"
#include "job.h"
#include "joblog.h"
#include "listen.h"
#include "pipe.h"
#include "worker_int.h"
#include "xalloc.h"

/*
 * A handler whose jobs take less than this is sent more behind the one
 * it works on, so that it reads the next when it answers, with no round
 * trip through the worker in between (the round trips, two context
 * switches a job, were most of a fast worker's time); as many as it does
 * in about PIPE_QUEUE_US.  A slow one gets one at a time: a job waiting
 * in its stdin could have run on another slot.
 */
#define PIPE_FAST_US INT64_C(1000)
#define PIPE_QUEUE_US INT64_C(2000)
/* The wait before restarting a --pipe handler that keeps dying before its first answer. */
#define RESTART_MIN_US INT64_C(100000)
#define RESTART_MAX_US INT64_C(10000000)

struct piped *
wk_pipe_of(struct worker *w, const struct slot *s)
{
	return &w->pipes[s - w->slots];
}

/*
 * Stops a --pipe handler: SIGTERM to its group, SIGKILL --kill-after
 * later.  Whatever it writes on stdout from now on is not believed, so
 * an answer it sends while dying changes nothing.  Unless it is to blame
 * (it broke the protocol), its death does not count as dying young.
 */
void
wk_pipe_stop(struct worker *w, struct piped *pp, int64_t now, bool blame)
{
	if (!blame)
		pp->stopped = true;
	if (pp->kill_at != 0) {
		pp->p.stdout_ignored = true;
		return;
	}
	pgjq_pipe_kill(&pp->p, SIGTERM);
	if (pp->p.pid != 0)
		pp->kill_at = now + w->o->kill_after_us;
}

/* Starts a slot's --pipe handler; false (errno set) if there is no process. */
static bool
start_pipe(struct worker *w, struct piped *pp)
{
	/* No job's variables: it will see many jobs. */
	struct pgjq_handler_env env = {.database_url = w->o->conninfo, .schema = w->o->schema};

	if (pgjq_pipe_start(&pp->p, w->o->argv, &env) < 0)
		return false;
	pp->pid = pp->p.pid;
	pp->exited = pp->kill_at = 0;
	pp->stopped = pp->death_said = false;
	return true;
}

/* Gives the slot's job to its --pipe handler, started first if it has none. */
void
wk_pipe_start_job(struct worker *w, struct slot *s, int64_t now)
{
	struct piped *pp = wk_pipe_of(w, s);
	const char *sched, *slot;

	s->piped = true;
	s->h.in_fd = s->h.out_fd = s->h.err_fd = s->h.progress_fd = -1;
	/* A new handler starts with nothing sent ahead: what the last one had goes back. */
	if (pp->p.pid == 0)
		wk_pipe_unqueue(w, pp);
	if (pp->p.pid == 0 && !start_pipe(w, pp)) {
		/* No process at all (fork failed): the attempt fails, the job is retried. */
		pp->p.exec_errno = errno;
		pp->pid = 0;
		pp->exited = now;
		return;
	}
	/* In its stdin already, unless that handler is gone and this is another (a resend). */
	if (s->sent_ahead && pp->p.job == s->id)
		return;
	sched = wk_schedule_of(w, s->id, &slot);
	pgjq_pipe_send_scheduled(&pp->p, s->id, s->queue, s->attempt, s->max_attempts, sched, slot,
	    s->payload, strlen(s->payload));
}

int
wk_pipe_room(struct worker *w, int i)
{
	struct piped *pp = &w->pipes[i];
	const struct slot *s = &w->slots[i];
	int64_t depth;

	if (!s->busy || s->lost || s->timed_out || s->cancelled || s->released || s->protocol_error != NULL ||
	    pp->avg_us == 0 || pp->avg_us >= PIPE_FAST_US)
		return 0;
	depth = 1 + PIPE_QUEUE_US / (pp->avg_us > 0 ? pp->avg_us : 1);
	if (depth > PGJQ_PIPE_DEPTH_MAX)
		depth = PGJQ_PIPE_DEPTH_MAX;
	if (!pgjq_pipe_can_queue(&pp->p, (int)depth))
		return 0;
	return (int)depth - 1 - pp->p.nqueued;
}

void
wk_pipe_queue_job(struct worker *w, int i, struct ahead *a)
{
	struct piped *pp = &w->pipes[i];

	const char *slot, *sched = wk_schedule_of(w, a->id, &slot);

	pgjq_pipe_send_scheduled(&pp->p, a->id, a->queue, a->attempt, a->max_attempts, sched, slot,
	    a->payload, strlen(a->payload));
	a->sent = true;
	pp->queued[pp->nqueued++] = *a;
	a->payload = NULL;
}

void
wk_pipe_unqueue(struct worker *w, struct piped *pp)
{
	int64_t ids[PGJQ_PIPE_DEPTH_MAX];

	pgjq_pipe_unqueue(&pp->p, ids, PGJQ_PIPE_DEPTH_MAX);
	if (pp->nqueued == 0)
		return;
	/* Never begun, as far as anyone can tell: back to the local queue, which may start them elsewhere. */
	for (int i = 0; i < pp->nqueued; i++) {
		pp->queued[i].sent = false;
		wk_ahead_put(w, &pp->queued[i]);
	}
	pp->nqueued = 0;
	wk_ahead_sort(w);
}

/* The job the handler takes next, sent behind the one just answered, goes into the slot. */
static void
start_queued(struct worker *w, struct slot *s, int64_t now)
{
	struct piped *pp = wk_pipe_of(w, s);
	struct ahead a;

	/*
	 * A handler already gone (reaped while its last answers were still
	 * being read) gets nothing more: the rest of its answers are read as
	 * answers about jobs sent ahead, and what it never answered goes back
	 * to the local queue when it is cleared away.  Starting the job now
	 * would start a new handler and drop the old one's unread answers.
	 */
	if (pp->nqueued == 0 || s->busy || pp->p.pid == 0)
		return;
	a = pp->queued[0];
	memmove(pp->queued, pp->queued + 1, (size_t)(pp->nqueued - 1) * sizeof *pp->queued);
	pp->nqueued--;
	wk_slot_start(w, s, &a, now);
	w->started++;
}

/* An answer about a job waiting behind the slot's: a handler that works on several at once. */
static void
answered_queued(struct worker *w, struct piped *pp, const struct pgjq_pipe_msg *m, int64_t now)
{
	struct slot tmp;
	int at = -1;

	for (int i = 0; i < pp->nqueued && at < 0; i++)
		if (pp->queued[i].id == m->id)
			at = i;
	if (at < 0)
		return;
	memset(&tmp, 0, sizeof tmp);
	tmp.id = pp->queued[at].id;
	tmp.queue = pp->queued[at].queue;
	tmp.attempt = pp->queued[at].attempt;
	tmp.max_attempts = pp->queued[at].max_attempts;
	tmp.started = now;
	free(pp->queued[at].payload);
	memmove(pp->queued + at, pp->queued + at + 1, (size_t)(pp->nqueued - at - 1) * sizeof *pp->queued);
	pp->nqueued--;
	if (m->kind == PGJQ_PIPE_COMPLETED) {
		char *result = pgjq_xmalloc(m->len + 1);

		memcpy(result, m->text, m->len);
		result[m->len] = '\0';
		wk_outcome_add(w, &tmp, OUT_COMPLETED, false, result, NULL, now);
	} else if (m->kind == PGJQ_PIPE_SNOOZE) {
		tmp.snooze = true;
		tmp.snooze_us = m->delay_us;
		wk_outcome_add(w, &tmp, OUT_SNOOZED, false, NULL, NULL, now);
	} else {
		wk_outcome_add(w, &tmp, OUT_FAILED, !m->retry, NULL,
		    pgjq_xstrdup(m->text != NULL && *m->text ? m->text : "failed"), now);
	}
}

/* The slot's --pipe handler is gone without answering for the job: why. */
void
wk_pipe_finish_job(struct worker *w, struct slot *s, int64_t now)
{
	struct piped *pp = wk_pipe_of(w, s);
	int st = pp->p.status;
	char raw[PGJQ_ERROR_TAIL + 1], why[256], limit[32], *tail, *error;

	pp->death_said = true;
	/* A cancel wins over putting the job back: released, it would run again. */
	if (s->released && !s->cancelled) {
		wk_outcome_add(w, s, OUT_RELEASED, false, NULL, NULL, now);
		return;
	}
	if (s->protocol_error != NULL) {
		/* Its stderr is in the log already; the error says what was wrong. */
		wk_outcome_add(w, s, OUT_FAILED, false, NULL, s->protocol_error, now);
		s->protocol_error = NULL;
		return;
	}
	if (pp->p.exec_errno != 0) {
		snprintf(why, sizeof why, "cannot run %s: %s", w->o->argv[0], strerror(pp->p.exec_errno));
		wk_outcome_add(w, s, OUT_FAILED, false, NULL, pgjq_xstrdup(why), now);
		return;
	}
	if (s->cancelled) {
		snprintf(why, sizeof why, "cancelled");
	} else if (s->timed_out) {
		pgjq_format_duration(s->limit_us, limit, sizeof limit);
		snprintf(why, sizeof why, "timed out after %s", limit);
	} else if (WIFSIGNALED(st)) {
		snprintf(why, sizeof why, "the handler was killed by signal %d (%s) before answering",
		    WTERMSIG(st), strsignal(WTERMSIG(st)));
	} else {
		snprintf(why, sizeof why, "the handler exited with status %d before answering",
		    WEXITSTATUS(st));
	}
	pgjq_pipe_error_tail(&pp->p, raw, sizeof raw);
	tail = pgjq_text_clean(raw, strlen(raw));
	error = *tail ? pgjq_xasprintf("%s: %s", why, tail) : pgjq_xstrdup(why);
	free(tail);
	wk_outcome_add(w, s, OUT_FAILED, false, NULL, error, now);
}

/* What a --pipe handler's callbacks need. */
struct pipe_call {
	struct worker *w;
	int slot;
	int64_t now;
};

/* An answer: the job's outcome, and the handler, still alive, is free for the next. */
static void
pipe_answered(struct worker *w, struct slot *s, const struct pgjq_pipe_msg *m, int64_t now)
{
	struct piped *pp = wk_pipe_of(w, s);
	char *result, *error, raw[PGJQ_ERROR_TAIL + 1];

	pp->restart_delay = 0;
	pp->avg_us = pp->avg_us == 0 ? now - s->started + 1 : (pp->avg_us * 7 + (now - s->started)) / 8 + 1;
	if (m->kind == PGJQ_PIPE_COMPLETED) {
		result = pgjq_xmalloc(m->len + 1);
		memcpy(result, m->text, m->len);
		result[m->len] = '\0';
		wk_outcome_add(w, s, OUT_COMPLETED, false, result, NULL, now);
	} else if (m->kind == PGJQ_PIPE_SNOOZE) {
		s->snooze = true;
		s->snooze_us = m->delay_us;
		wk_outcome_add(w, s, OUT_SNOOZED, false, NULL, NULL, now);
	} else {
		if (m->text != NULL && *m->text) {
			/* Kept as long as an exec handler's stderr tail; jansson made it UTF-8 already. */
			size_t len = strlen(m->text);

			error = len <= PGJQ_ERROR_TAIL ? pgjq_xstrdup(m->text) :
			    pgjq_text_clean(m->text, PGJQ_ERROR_TAIL);
		} else {
			char *tail;

			pgjq_pipe_error_tail(&pp->p, raw, sizeof raw);
			tail = pgjq_text_clean(raw, strlen(raw));
			error = *tail ? pgjq_xasprintf("failed: %s", tail) : pgjq_xstrdup("failed");
			free(tail);
		}
		wk_outcome_add(w, s, OUT_FAILED, !m->retry, NULL, error, now);
	}
	wk_slot_vacate(w, s);
	start_queued(w, s, now);
}

static void
on_pipe_msg(void *ctx, const struct pgjq_pipe_msg *m)
{
	struct pipe_call *c = ctx;
	struct worker *w = c->w;
	struct slot *s = &w->slots[c->slot];
	struct piped *pp = &w->pipes[c->slot];

	switch (m->kind) {
	case PGJQ_PIPE_COMPLETED:
	case PGJQ_PIPE_FAILED:
	case PGJQ_PIPE_SNOOZE:
		if (s->busy && m->id == s->id)
			pipe_answered(w, s, m, c->now);
		else
			answered_queued(w, pp, m, c->now);
		break;
	case PGJQ_PIPE_PROGRESS:
		if (!s->busy || m->id != s->id)
			break; /* about a job waiting behind: it is not running as far as anyone knows */
		{
			char *line = m->text != NULL && *m->text ? pgjq_xasprintf("%d %s", m->progress, m->text) :
			    pgjq_xasprintf("%d", m->progress);

			wk_log_line(w, s, PGJQ_LOG_PROGRESS, line);
			free(line);
		}
		free(s->message);
		s->message = m->text != NULL && *m->text ? pgjq_xstrdup(m->text) : NULL;
		s->progress = m->progress;
		s->progress_dirty = true;
		s->progress_seq++;
		break;
	case PGJQ_PIPE_BAD_PROGRESS:
		if (!s->bad_progress_said)
			pgjq_warn("job %" PRId64 ": ignoring a progress line: %s", s->id, m->text);
		s->bad_progress_said = true;
		break;
	case PGJQ_PIPE_BAD:
		if (s->busy) {
			pgjq_warn("slot %d (pid %ld): job %" PRId64 ": bad line from the handler: %s; stopping it",
			    c->slot + 1, (long)pp->pid, s->id, m->text);
			free(s->protocol_error);
			s->protocol_error = pgjq_xasprintf("bad line from the handler: %s", m->text);
		} else {
			pgjq_warn("slot %d (pid %ld): bad line from the handler between jobs: %s; stopping it",
			    c->slot + 1, (long)pp->pid, m->text);
		}
		wk_pipe_stop(w, pp, c->now, true);
		break;
	}
}

/* Stderr passes through, each line named by its job, or its slot between jobs. */
static void
on_pipe_err(void *ctx, const char *line)
{
	struct pipe_call *c = ctx;
	struct slot *s = &c->w->slots[c->slot];

	if (s->busy) {
		wk_log_line(c->w, s, PGJQ_LOG_STDERR, line);
		pgjq_warn("job %" PRId64 ": %s", s->id, line);
	} else
		pgjq_warn("slot %d (pid %ld): %s", c->slot + 1, (long)c->w->pipes[c->slot].pid, line);
}

/*
 * A --pipe handler exited of its own accord, with status 0 and not a word
 * since its job was sent: it most likely quit between jobs just as the
 * job came, and never read it.  That job goes to a new handler, once.
 */
bool
wk_pipe_resend(struct worker *w, struct slot *s, int64_t now)
{
	struct piped *pp = wk_pipe_of(w, s);
	int st = pp->p.status;

	if (s->resent || s->timed_out || s->cancelled || s->released || s->protocol_error != NULL ||
	    pp->stopped || pp->p.wrote_since_send || pp->p.exec_errno != 0 ||
	    !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return false;
	if (w->stopping != WK_RUNNING) {
		/* No new handlers now: back to the queue with it, its attempt not counted. */
		s->released = true;
		return false;
	}
	s->resent = true;
	pgjq_pipe_reset(&pp->p);
	pp->exited = 0;
	wk_pipe_start_job(w, s, now);
	return true;
}

/* Whether slot i's --pipe handler may take a job: it is ready, or there is none and one may start. */
bool
wk_pipe_ready(struct worker *w, int i, int64_t now)
{
	struct piped *pp = &w->pipes[i];

	if (w->closing_at != 0 || pp->exited != 0)
		return false;
	/* Gone, but its last answers not all read: not before they are. */
	if (pp->p.pid == 0)
		return pgjq_pipe_gone(&pp->p) && now >= pp->restart_at;
	return pgjq_pipe_ready(&pp->p);
}

/* A --pipe handler is gone and its slot idle: say what needs saying, and clear the way for the next. */
static void
clear_dead_pipe(struct worker *w, int i, int64_t now)
{
	struct piped *pp = &w->pipes[i];
	int st = pp->p.status;
	bool clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	char when[32];

	if (pp->kill_at == 0 && !pp->stopped && !pp->death_said && !clean) {
		if (WIFSIGNALED(st))
			pgjq_warn("slot %d (pid %ld): the handler was killed by signal %d (%s) between jobs",
			    i + 1, (long)pp->pid, WTERMSIG(st), strsignal(WTERMSIG(st)));
		else
			pgjq_warn("slot %d (pid %ld): the handler exited with status %d between jobs",
			    i + 1, (long)pp->pid, WEXITSTATUS(st));
	}
	/*
	 * One that never answered a job and was not stopped by us died young:
	 * it may fail at start-up every time, so the next waits, longer and
	 * longer, and fewer attempts are spent on it.
	 */
	if (pp->p.answered == 0 && !pp->stopped && w->closing_at == 0) {
		if (pp->restart_delay > 0) {
			pgjq_format_duration(pp->restart_delay, when, sizeof when);
			pgjq_warn("slot %d: the handler keeps dying before it answers a job; starting "
			    "the next in %s", i + 1, when);
			pp->restart_at = now + pp->restart_delay;
		}
		pp->restart_delay = pp->restart_delay == 0 ? RESTART_MIN_US :
		    pp->restart_delay * 2 > RESTART_MAX_US ? RESTART_MAX_US : pp->restart_delay * 2;
	} else if (pp->p.answered > 0) {
		pp->restart_delay = 0;
	}
	wk_pipe_unqueue(w, pp);
	pgjq_pipe_reset(&pp->p);
	pp->exited = pp->kill_at = 0;
	pp->stopped = pp->death_said = false;
	w->wake = true;
}

/*
 * The --pipe handlers' lives apart from any one job: SIGKILL for those
 * that outstay a stop, clearing away the dead, and once no more jobs will
 * come, EOF on stdin for the idle, then SIGTERM when the grace period
 * (or a second signal) says so.
 */
void
wk_pipes_tend(struct worker *w, int64_t now)
{
	int64_t deadline;

	if (w->closing_at == 0 && (w->stopping != WK_RUNNING || wk_work_done(w)))
		w->closing_at = now;
	deadline = w->stopping != WK_RUNNING ? w->grace_end : w->closing_at + w->o->grace_us;
	for (int i = 0; i < w->o->concurrency; i++) {
		struct piped *pp = &w->pipes[i];

		if (pp->p.pid != 0 && pp->kill_at != 0 && now >= pp->kill_at) {
			pgjq_pipe_kill(&pp->p, SIGKILL);
			pp->kill_at = INT64_MAX;
		}
		/* A grandchild that left the group may hold the pipes: stop waiting for it. */
		if (pp->exited != 0 && !pgjq_pipe_gone(&pp->p) && now - pp->exited >= WK_LEFTOVER_US)
			pgjq_pipe_close(&pp->p);
		if (w->slots[i].busy)
			continue;
		if (pp->exited != 0 && pgjq_pipe_gone(&pp->p)) {
			clear_dead_pipe(w, i, now);
			continue;
		}
		if (pp->p.pid == 0)
			continue;
		if (w->closing_at == 0) {
			/* Alive but unable to take a job (it closed its stdin): it would hold the slot for ever. */
			if (!pgjq_pipe_ready(&pp->p) && pp->kill_at == 0)
				wk_pipe_stop(w, pp, now, true);
			continue;
		}
		pgjq_pipe_close_stdin(&pp->p);
		if (w->stopping == WK_STOP_NOW && pp->kill_at != INT64_MAX) {
			pgjq_pipe_kill(&pp->p, SIGKILL);
			pp->kill_at = INT64_MAX;
		} else if (now >= deadline) {
			wk_pipe_stop(w, pp, now, false);
		}
	}
}

bool
wk_pipes_alive(const struct worker *w)
{
	if (w->pipes == NULL)
		return false;
	for (int i = 0; i < w->o->concurrency; i++)
		if (w->pipes[i].p.pid != 0 || !pgjq_pipe_gone(&w->pipes[i].p))
			return true;
	return false;
}

/* Adds the handlers' fds that need watching to pfd; returns how many. */
int
wk_pipes_pollfds(struct worker *w, struct pollfd *pfd)
{
	int n = 0;

	for (int i = 0; w->pipes != NULL && i < w->o->concurrency; i++) {
		w->pipes[i].pfd_at = n;
		w->pipes[i].npfd = pgjq_pipe_pollfds(&w->pipes[i].p, pfd + n);
		n += w->pipes[i].npfd;
	}
	return n;
}

/* Does the I/O that poll reported on the fds wk_pipes_pollfds added to pfd. */
void
wk_pipes_io(struct worker *w, const struct pollfd *pfd)
{
	struct pipe_call c = {w, 0, 0};

	if (w->pipes == NULL)
		return;
	c.now = pgjq_now_us();
	for (c.slot = 0; c.slot < w->o->concurrency; c.slot++) {
		struct piped *pp = &w->pipes[c.slot];

		if (pp->npfd > 0)
			pgjq_pipe_io(&pp->p, pfd + pp->pfd_at, pp->npfd, on_pipe_msg, on_pipe_err, &c);
	}
}
