/*
 * worker_ahead: the local queue, jobs claimed ahead of free slots.  A
 * slot that frees takes its next job from here at once, without waiting
 * for a turn of the database; the turn tops the queue up meanwhile.  Its
 * jobs are ours only while their leases last, and the database does not
 * count them as started: so none starts once the worker is cut off or
 * stopping, and they go back, attempts untouched, when it stops or
 * reconnects.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "worker_int.h"
#include "xalloc.h"

/* The local queue's entry for job id, or NULL. */
static struct ahead *
ahead_of(struct worker *w, int64_t id)
{
	for (size_t i = 0; i < w->nahead; i++)
		if (w->ahead[i].id == id)
			return &w->ahead[i];
	return NULL;
}

/* Takes entry a out of the local queue; its payload is the caller's now. */
static void
ahead_remove(struct worker *w, struct ahead *a)
{
	size_t i = (size_t)(a - w->ahead);

	memmove(a, a + 1, (w->nahead - i - 1) * sizeof *a);
	w->nahead--;
}

/*
 * A claimed job was cancelled: cancel_job() finished it at once, so it
 * only leaves the local queue.  (Were the notice forged, the job would
 * go back to the queue at the next renew_leases, as a stray claim: it is
 * no longer among ours.)  One the database counts as running is
 * cancelled once it starts, as any running job.
 */
void
wk_ahead_cancelled(struct worker *w, int64_t id)
{
	struct ahead *a = ahead_of(w, id);

	if (a == NULL)
		return;
	if (a->db_running) {
		w->next_renew = 0;
		return;
	}
	wk_event(w, "cancelled", NULL, id, "before it started");
	free(a->payload);
	ahead_remove(w, a);
}

/* How many jobs the local queue should hold: two turns' worth of what the slots took in the last. */
int
wk_ahead_target(const struct worker *w)
{
	long target = w->demand * 2;

	if (w->o->prefetch <= 0)
		return 0;
	if (target < w->o->concurrency)
		target = w->o->concurrency;
	return target > w->o->prefetch ? w->o->prefetch : (int)target;
}

/* Orders the local queue: jobs the database counts as running first, then by priority, then by age. */
static int
ahead_cmp(const void *pa, const void *pb)
{
	const struct ahead *a = pa, *b = pb;

	if (a->db_running != b->db_running)
		return a->db_running ? -1 : 1;
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* Puts the local queue in order, after a claim added to it. */
void
wk_ahead_sort(struct worker *w)
{
	qsort(w->ahead, w->nahead, sizeof *w->ahead, ahead_cmp);
}

/* A job of the local queue goes back unstarted (the caller takes it out of the queue). */
static void
release_one(struct worker *w, struct ahead *a)
{
	struct outcome *o = wk_outcome_new(w);

	o->kind = OUT_RELEASED;
	o->id = a->id;
	o->attempt = a->attempt;
	o->max_attempts = a->max_attempts;
	free(a->payload);
	a->payload = NULL;
}

/* Stopping, or reconnected: the local queue goes back at once, attempts untouched. */
void
wk_ahead_release_all(struct worker *w)
{
	if (w->nahead == 0)
		return;
	pgjq_warn("putting back %zu claimed job%s that had not started", w->nahead,
	    w->nahead == 1 ? "" : "s");
	for (size_t i = 0; i < w->nahead; i++)
		release_one(w, &w->ahead[i]);
	w->nahead = 0;
}

/*
 * Its queue was paused: the local queue's jobs of it go back unstarted,
 * so none starts after the pause (claims stop in the database).  One
 * the database counts as running goes back too: its attempt is taken
 * back with it.
 */
void
wk_ahead_paused(struct worker *w, const char *queue)
{
	size_t kept = 0, back = 0;

	for (size_t i = 0; i < w->nahead; i++) {
		if (strcmp(w->ahead[i].queue, queue) == 0) {
			release_one(w, &w->ahead[i]);
			back++;
		} else {
			w->ahead[kept++] = w->ahead[i];
		}
	}
	w->nahead = kept;
	if (back > 0)
		pgjq_warn("queue %s paused: putting back %zu claimed job%s that had not started", queue,
		    back, back == 1 ? "" : "s");
}

/* Adds job a (whose payload it takes) to the local queue; wk_ahead_sort puts it in its place. */
void
wk_ahead_put(struct worker *w, struct ahead *a)
{
	w->ahead = pgjq_xgrow(w->ahead, &w->ahead_cap, w->nahead + 1, sizeof *w->ahead);
	w->ahead[w->nahead++] = *a;
	a->payload = NULL;
}

/* Hands the local queue's best jobs to the free slots, then to quick --pipe handlers' stdin. */
void
wk_ahead_feed_slots(struct worker *w, int64_t now)
{
	size_t taken = 0, known = 0;

	/* Cut off, a job of the local queue may be another's by now: none starts. */
	if (w->stopping != WK_RUNNING || w->conn == NULL)
		return;
	/* Its handler is told of its schedule: the first whose is not known yet waits, and those after it. */
	while (known < w->nahead && wk_schedule_known(w, w->ahead[known].id, w->ahead[known].queue))
		known++;
	for (int i = 0; i < w->o->concurrency && taken < known; i++) {
		struct ahead *a = &w->ahead[taken];

		if (!wk_slot_ready(w, i, now))
			continue;
		taken++;
		/*
		 * Unrenewed for a whole lease (the database silent, not yet
		 * given up on), it may be another worker's now: not to start.
		 */
		if (a->lease_end <= now) {
			release_one(w, a);
			i--;
			continue;
		}
		wk_slot_start(w, &w->slots[i], a, now);
		w->started++;
	}
	for (int i = 0; w->pipes != NULL && i < w->o->concurrency && taken < known; i++) {
		int room = wk_pipe_room(w, i);

		while (room > 0 && taken < known) {
			struct ahead *a = &w->ahead[taken++];

			if (a->lease_end <= now) {
				release_one(w, a);
				continue;
			}
			wk_pipe_queue_job(w, i, a);
			w->started++;
			room--;
		}
	}
	if (taken == 0)
		return;
	memmove(w->ahead, w->ahead + taken, (w->nahead - taken) * sizeof *w->ahead);
	w->nahead -= taken;
}
