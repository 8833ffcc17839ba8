/*
 * worker: jq-worker's event loop itself, a short list of phases, and the
 * timers that say how long it may sleep between them.  The loop is only
 * mechanism: what each phase means lives with its module (worker_int.h
 * lists them), so how jobs run or how the database is spoken to can
 * change without touching the order of things here.  Signals come in
 * through a self-pipe, so that one poll(2) waits for everything.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "channel.h"
#include "diag.h"
#include "duration.h"
#include "http.h"
#include "job.h"
#include "joblog.h"
#include "listen.h"
#include "pipe.h"
#include "schedule.h"
#include "sigpipe.h"
#include "worker.h"
#include "worker_int.h"
#include "xalloc.h"

/* The self-pipe's read end (sigpipe.h). */
static int signal_fd = -1;

/* ----------------------------------------------------------- signals */

static void
setup_signals(void)
{
	/* SIGHUP: a closed terminal is a request to stop, not a reason to abandon the handlers. */
	static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};

	signal_fd = pgjq_sigpipe_catch(sigs, sizeof sigs / sizeof sigs[0]);
	signal(SIGPIPE, SIG_IGN);
}

/* What the signals that came say: SIGCHLD reaps, a stop signal stops. */
static void
on_signals(struct worker *w, int64_t now)
{
	int sig;

	while ((sig = pgjq_sigpipe_next()) != 0) {
		if (sig == SIGCHLD) {
			wk_reap_children(w, now);
			continue;
		}
		if (w->stopping == WK_RUNNING) {
			char grace[32];

			pgjq_format_duration(w->o->grace_us, grace, sizeof grace);
			pgjq_warn("%s: no more claims; %d running job%s may finish within %s "
			    "(a second signal stops them now)", strsignal(sig), w->busy,
			    w->busy == 1 ? "" : "s", grace);
			w->stopping = WK_FINISHING;
			w->grace_end = now + w->o->grace_us;
		} else if (w->stopping == WK_FINISHING) {
			pgjq_warn("%s again: stopping the running jobs now", strsignal(sig));
			w->stopping = WK_STOP_NOW;
			w->grace_end = now;
		}
	}
}

/* Stopping: the local queue goes back, and once the grace is over, what still runs is stopped. */
static void
on_stopping(struct worker *w, int64_t now)
{
	if (now >= w->grace_end)
		wk_slots_end_grace(w, now);
	wk_ahead_release_all(w);
}

/* -------------------------------------------------------------- loop */

/* No job runs and none will be claimed: time to go, once the --pipe handlers have gone. */
bool
wk_work_done(struct worker *w)
{
	if (w->busy > 0 || w->nahead > 0 || w->turn.busy || w->claim.busy)
		return false;
	/* Log lines left over go first (they wait 100 ms at most), while they can. */
	if (w->log.pending.n > 0 && w->conn != NULL)
		return false;
	if (w->nout > 0)
		return w->stopping == WK_STOP_NOW && w->conn == NULL; /* nothing more we can do */
	if (w->stopping != WK_RUNNING)
		return true;
	/* A backlog of old jobs is worth finishing: cron-run workers may be the only ones. */
	if (w->conn != NULL && w->next_prune != 0 && w->next_prune <= pgjq_now_us())
		return false;
	if (w->o->max_jobs > 0 && w->claimed >= w->o->max_jobs)
		return true;
	/* Draining, a retry due within a poll period still counts as work. */
	return w->o->drain && w->empty && !w->wake && w->conn != NULL &&
	    (w->next_due == 0 || w->next_due > pgjq_now_us() + w->o->poll_us);
}

static bool
finished(struct worker *w)
{
	/* Once it has begun, the handlers' wind-down is seen through. */
	if (w->closing_at != 0)
		return w->busy == 0 && w->nahead == 0 && !w->turn.busy && !w->claim.busy && !wk_pipes_alive(w) &&
		    (w->nout == 0 || (w->stopping == WK_STOP_NOW && w->conn == NULL));
	return wk_work_done(w) && !wk_pipes_alive(w);
}

/* When the loop must run again at the latest: the soonest of every timer. */
static int64_t
next_wakeup(struct worker *w, int64_t now)
{
	int64_t t = now + 60 * INT64_C(1000000);
	/* A turn may go now: none under way, no refused one to wait out. */
	bool turn_open = !w->turn.busy && now >= w->turn.retry_at;

#define SOONER(x) do { if ((x) != 0 && (x) < t) t = (x); } while (0)
	if (w->conn == NULL) {
		SOONER(w->reconnect_at);
	} else {
		SOONER(w->next_renew);
		SOONER(w->next_reap);
		if (!w->turn.busy)
			SOONER(wk_schedule_due(w));
		if (w->stopping == WK_RUNNING)
			SOONER(w->next_prune);
		int run, ahead;

		wk_turn_claim_room(w, now, &run, &ahead);
		if (w->turn.busy) {
			int64_t at;

			wk_turn_overdue(w, now, &at);
			SOONER(at);
		} else if (!turn_open) {
			SOONER(w->turn.retry_at);
		} else if (w->nout > 0) {
			t = now;
		} else {
			/* Lines written wait a little for company, not for ever. */
			SOONER(wk_log_due_at(w));
			if (w->stopping == WK_RUNNING && run + ahead > 0 && w->claim_conn == NULL) {
				SOONER(w->next_poll);
				SOONER(w->next_due);
				if (w->wake)
					t = now;
			}
		}
		if (w->claim.busy) {
			SOONER(w->claim.sent + wk_db_wait_us(w));
		} else if (w->claim_conn != NULL && w->stopping == WK_RUNNING && run + ahead > 0) {
			SOONER(w->next_poll);
			SOONER(w->next_due);
			if (w->wake)
				t = now;
		} else if (w->claim_conn == NULL && w->stopping == WK_RUNNING) {
			SOONER(w->claim_retry_at);
		}
	}
	/*
	 * (Once past, wk_slots_end_grace has done its work: no reason to spin
	 * until the handlers are gone.)
	 */
	if (w->stopping == WK_FINISHING && w->grace_end > now)
		SOONER(w->grace_end);
	if (w->http != NULL)
		SOONER(pgjq_http_due(w->http));
	for (int i = 0; i < w->o->concurrency; i++) {
		struct slot *s = &w->slots[i];

		if (!s->busy)
			continue;
		if (s->exited == 0) {
			SOONER(s->deadline);
			if (s->kill_at != INT64_MAX)
				SOONER(s->kill_at);
			if (s->progress_dirty && turn_open)
				SOONER(s->progress_sent + WK_PROGRESS_EVERY_US);
			if (!s->db_running && !s->lost && turn_open && w->conn != NULL)
				t = now;
		} else {
			SOONER(s->exited + WK_LEFTOVER_US);
		}
	}
	/* The work is done, the handlers not yet told: tell them now. */
	if (w->pipes != NULL && w->closing_at == 0 && wk_work_done(w))
		t = now;
	for (int i = 0; w->pipes != NULL && i < w->o->concurrency; i++) {
		struct piped *pp = &w->pipes[i];

		if (pp->p.pid != 0 && pp->kill_at != INT64_MAX)
			SOONER(pp->kill_at);
		if (pp->exited != 0 && !pgjq_pipe_gone(&pp->p))
			SOONER(pp->exited + WK_LEFTOVER_US);
		if (pp->restart_at > now)
			SOONER(pp->restart_at);
		/* Idle, and told that no more jobs come: SIGTERM when the wind-down runs out. */
		if (pp->p.pid != 0 && pp->kill_at == 0 && w->closing_at != 0 && w->stopping == WK_RUNNING)
			SOONER(w->closing_at + w->o->grace_us);
	}
#undef SOONER
	return t < now ? now : t;
}

/*
 * Sleeps in poll(2) until an fd is ready or the next timer is due, then
 * does the I/O that is ready.
 */
static void
poll_io(struct worker *w, struct pollfd *pfd)
{
	int64_t wake_at;
	int n = 0, timeout, http_first = 0, pipes_first;

	pfd[n++] = (struct pollfd){.fd = signal_fd, .events = POLLIN};
	if (w->conn != NULL)
		pfd[n++] = (struct pollfd){.fd = PQsocket(w->conn), .events = POLLIN};
	n += wk_claim_pollfds(w, pfd + n);
	n += wk_slots_pollfds(w, pfd + n);
	pipes_first = n;
	n += wk_pipes_pollfds(w, pfd + n);
	if (w->http != NULL) {
		http_first = n;
		n += pgjq_http_pollfds(w->http, pfd + n, w->o->concurrency * 2 + 16);
	}
	wake_at = next_wakeup(w, pgjq_now_us());
	timeout = (int)((wake_at - pgjq_now_us() + 999) / 1000);
	/* The turn's lines in a few writes, not one each; and none waits while we sleep. */
	pgjq_diag_flush();
	if (poll(pfd, (nfds_t)n, timeout < 0 ? 0 : timeout) < 0 && errno != EINTR)
		pgjq_die(PGJQ_EX_SOFTWARE, "poll: %s", strerror(errno));
	if (w->http != NULL)
		wk_http_io(w, pfd + http_first, n - http_first);
	wk_pipes_io(w, pfd + pipes_first);
	wk_slots_io(w, pfd, n);
}

static void
worker_init(struct worker *w, const struct pgjq_worker_opts *o)
{
	w->o = o;
	w->slots = pgjq_xcalloc((size_t)o->concurrency, sizeof *w->slots);
	w->queues = pgjq_queue_array(o->queues, o->nqueues);
	w->chan_new = pgjq_channel_name(o->schema, PGJQ_CHANNEL_NEW);
	w->chan_cancel = pgjq_channel_name(o->schema, PGJQ_CHANNEL_CANCEL);
	w->chan_progress = pgjq_channel_name(o->schema, PGJQ_CHANNEL_PROGRESS);
	w->chan_log = pgjq_channel_name(o->schema, PGJQ_CHANNEL_LOG);
	w->chan_schedule = pgjq_channel_name(o->schema, PGJQ_CHANNEL_SCHEDULE);
	wk_schedule_init(w);
	srand((unsigned)getpid() ^ (unsigned)pgjq_now_us());
	if (o->http_url != NULL)
		w->http = pgjq_http_new(o->http_url);
	if (o->pipe) {
		w->pipes = pgjq_xcalloc((size_t)o->concurrency, sizeof *w->pipes);
		for (int i = 0; i < o->concurrency; i++)
			pgjq_pipe_init(&w->pipes[i].p);
	}
}

const char *
wk_queue_name(struct worker *w, const char *name)
{
	for (size_t i = 0; i < w->o->nqueues; i++)
		if (strcmp(w->o->queues[i], name) == 0)
			return w->o->queues[i];
	/* A claim takes only the worker's queues; this is for a schema that changed under it. */
	for (size_t i = 0; i < w->nstray_queues; i++)
		if (strcmp(w->stray_queues[i], name) == 0)
			return w->stray_queues[i];
	w->stray_queues = pgjq_xrealloc(w->stray_queues, (w->nstray_queues + 1) * sizeof *w->stray_queues);
	return w->stray_queues[w->nstray_queues++] = pgjq_xstrdup(name);
}

static void
worker_free(struct worker *w)
{
	wk_outcomes_drop(w, w->nout);
	free(w->out);
	for (size_t i = 0; i < w->nahead; i++)
		free(w->ahead[i].payload);
	free(w->ahead);
	free(w->turn.running);
	for (int i = 0; w->pipes != NULL && i < w->o->concurrency; i++) {
		/* finished() waited for every handler to go; this only makes sure. */
		pgjq_pipe_kill(&w->pipes[i].p, SIGKILL);
		pgjq_pipe_free(&w->pipes[i].p);
		for (int k = 0; k < w->pipes[i].nqueued; k++)
			free(w->pipes[i].queued[k].payload);
	}
	free(w->pipes);
	free(w->slots);
	free(w->queues);
	for (size_t i = 0; i < w->nstray_queues; i++)
		free(w->stray_queues[i]);
	free(w->stray_queues);
	free(w->chan_new);
	free(w->chan_cancel);
	free(w->chan_progress);
	free(w->chan_log);
	wk_log_free(w);
	wk_turn_forget(w);
	free(w->chan_schedule);
	wk_schedule_free(w);
	pgjq_http_free(w->http);
	PQfinish(w->claim_conn);
	PQfinish(w->conn);
}

int
pgjq_worker_run(const struct pgjq_worker_opts *o)
{
	struct worker w = {0};
	struct pollfd *pfd;
	int status = PGJQ_EX_OK;

	worker_init(&w, o);
	/* Per slot: four pipes, or about two sockets when speaking HTTP. */
	pfd = pgjq_xcalloc((size_t)o->concurrency * 4 + 3 + 16, sizeof *pfd);
	setup_signals();

	if (!wk_db_connect(&w, true)) {
		status = PGJQ_EX_UNAVAILABLE;
		goto out;
	}
	w.wake = true;

	while (!finished(&w)) {
		int64_t now = pgjq_now_us();

		on_signals(&w, now);
		if (w.stopping != WK_RUNNING)
			on_stopping(&w, now);
		/* What the database said: */
		wk_db_reconnect(&w, now);
		wk_claim_connect(&w, now);
		wk_db_read_notifies(&w);
		wk_turn_read(&w, now);
		wk_schedule_resolve(&w);
		/* the handlers, and jobs for the free slots: */
		wk_slots_check(&w, now);
		if (w.pipes != NULL)
			wk_pipes_tend(&w, now);
		wk_ahead_feed_slots(&w, now);
		/* what to tell the database: */
		wk_upkeep(&w, now);
		wk_schedule_tick(&w, now);
		wk_turn_send(&w, pgjq_now_us());
		if (finished(&w))
			break;
		poll_io(&w, pfd);
	}
	if (w.nout > 0)
		pgjq_warn("%zu outcome%s could not be recorded; their leases will expire and the jobs "
		    "will run again", w.nout, w.nout == 1 ? "" : "s");
	wk_db_unregister(&w);
out:
	worker_free(&w);
	free(pfd);
	return status;
}
