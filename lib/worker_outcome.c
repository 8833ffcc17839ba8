/*
 * worker_outcome: what finished jobs leave to record, kept until the
 * database has taken it.  A handler's work must not be lost because the
 * database is away or slow: the outcome waits here, through reconnects,
 * for the next turn to carry it, and what recording it did is said only
 * once the database has answered.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "worker.h"
#include "worker_int.h"
#include "xalloc.h"

int64_t
pgjq_backoff_us(const struct pgjq_worker_opts *o, int attempt, unsigned rnd)
{
	int64_t d = o->backoff_us;

	for (int i = 1; i < attempt && d < o->backoff_max_us; i++)
		d *= 2;
	if (d > o->backoff_max_us)
		d = o->backoff_max_us;
	/* Equal jitter: half fixed, half random, so retries of a burst spread out. */
	return d / 2 + (d > 1 ? (int64_t)(rnd % (uint64_t)(d / 2 + 1)) : 0);
}

/* A new outcome, zeroed, at the end of the list. */
struct outcome *
wk_outcome_new(struct worker *w)
{
	struct outcome *o;

	w->out = pgjq_xgrow(w->out, &w->out_cap, w->nout + 1, sizeof *w->out);
	o = &w->out[w->nout++];
	memset(o, 0, sizeof *o);
	return o;
}

void
wk_outcome_add(struct worker *w, struct slot *s, enum outcome_kind kind, bool permanent,
    char *result, char *error, int64_t now)
{
	struct outcome *o;

	if (s->lost) {
		/* The database has it as another's, or cancelled before it started: nothing to record. */
		free(result);
		free(error);
		return;
	}
	o = wk_outcome_new(w);
	o->kind = kind;
	o->id = s->id;
	o->attempt = s->attempt;
	o->max_attempts = s->max_attempts;
	o->permanent = permanent;
	o->retry_after_us = s->http ? s->reply.retry_after_us : -1;
	if (kind == OUT_FAILED)
		o->delay_us = o->retry_after_us >= 0 ? o->retry_after_us :
		    pgjq_backoff_us(w->o, o->attempt, (unsigned)rand());
	else if (kind == OUT_SNOOZED)
		o->delay_us = s->snooze_us;
	o->result = result;
	o->error = error;
	o->took_us = now - s->started;
	o->started = s->started;
	if (s->progress_dirty) {
		o->has_progress = true;
		o->progress = s->progress;
		o->message = s->message;
		s->message = NULL;
		s->progress_dirty = false;
	}
}

/*
 * Says what recording an outcome did: state is the job's new state as the
 * recording function returned it, NULL if the worker no longer held the
 * job (its lease was lost), so the outcome changed nothing.
 */
void
wk_outcome_say(struct worker *w, const struct outcome *o, const char *state)
{
	char took[32];

	pgjq_format_duration(o->took_us, took, sizeof took);
	if (o->kind == OUT_COMPLETED) {
		if (state != NULL)
			wk_event(w, "completed", NULL, o->id, "took %s", took);
		else
			wk_event(w, "lease lost", NULL, o->id,
			    "completed in %s, but another worker took the job over: outcome dropped", took);
	} else if (o->kind == OUT_FAILED) {
		if (state == NULL) {
			wk_event(w, "lease lost", NULL, o->id, "failed, but another worker took the job over: %s",
			    o->error);
		} else if (strcmp(state, "scheduled") == 0) {
			char in[32];

			pgjq_format_duration(o->delay_us, in, sizeof in);
			wk_event(w, "failed", NULL, o->id, "attempt %d/%d: %s; retry in %s", o->attempt,
			    o->max_attempts, o->error, in);
		} else if (strcmp(state, "cancelled") == 0) {
			wk_event(w, "cancelled", NULL, o->id, "after %s", took);
		} else {
			wk_event(w, "failed", NULL, o->id, "for good after attempt %d/%d: %s", o->attempt,
			    o->max_attempts, o->error);
		}
	} else if (o->kind == OUT_SNOOZED) {
		char in[32];

		pgjq_format_duration(o->delay_us, in, sizeof in);
		if (state == NULL)
			wk_event(w, "lease lost", NULL, o->id, "snoozed, but another worker took the job over");
		else if (strcmp(state, "snoozed") == 0)
			wk_event(w, "snoozed", NULL, o->id, "attempt %d/%d not counted; again in %s", o->attempt,
			    o->max_attempts, in);
		else if (strcmp(state, "cancelled") == 0)
			wk_event(w, "cancelled", NULL, o->id, "after %s", took);
		else if (strcmp(state, "scheduled") == 0)
			wk_event(w, "snoozed", NULL, o->id, "past --max-snoozes: attempt %d/%d counted; again in %s",
			    o->attempt, o->max_attempts, in);
		else
			wk_event(w, "failed", NULL, o->id, "for good after attempt %d/%d: snoozed past --max-snoozes",
			    o->attempt, o->max_attempts);
	} else if (state == NULL) {
		wk_event(w, "lease lost", NULL, o->id, o->started != 0 ?
		    "stopped unfinished; another worker took the job over" :
		    "claimed, not started; another worker took the job over");
	} else if (strcmp(state, "cancelled") == 0) {
		wk_event(w, "cancelled", NULL, o->id, "stopped unfinished");
	} else if (o->started != 0) {
		/* (Jobs of the local queue, never started, are said in one line.) */
		wk_event(w, "released", NULL, o->id, "put back in the queue unfinished");
	}
}

/* Forgets the first n outcomes: they are recorded (or refused for good). */
void
wk_outcomes_drop(struct worker *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(w->out[i].result);
		free(w->out[i].error);
		free(w->out[i].message);
	}
	if (n == 0)
		return; /* (w->out may still be NULL: not even memmove may see it) */
	memmove(w->out, w->out + n, (w->nout - n) * sizeof *w->out);
	w->nout -= n;
}
