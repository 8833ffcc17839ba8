/*
 * worker_int: what the modules of jq-worker's event loop share, and
 * nothing outside the worker sees.
 *
 * One thread drives everything, so the modules share one struct worker
 * rather than pass messages: each keeps to its own part of it (the
 * connection, the slots, the --pipe handlers, the local queue, the
 * outcomes, the turn) and calls the others through the wk_ functions
 * below, named apart from the public pgjq_ ones.  Not installed, and not
 * for bin/: worker.h is the tools' view of the worker.
 */
#ifndef PGJQ_WORKER_INT_H
#define PGJQ_WORKER_INT_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "clock.h"
#include "handler.h"
#include "http.h"
#include "job.h"
#include "pipe.h"
#include "worker.h"

/* How often progress of one job reaches the database, at most. */
#define WK_PROGRESS_EVERY_US INT64_C(100000)
/* How long a handler's leftovers may hold its pipes after it exited. */
#define WK_LEFTOVER_US INT64_C(1000000)

/* One of the N places a job runs in; all zero when free. */
struct slot {
	bool busy;                /* it holds a job */
	int64_t id;               /* the job's */
	const char *queue;        /* the worker's own name of it (wk_queue_name()) */
	int attempt, max_attempts;
	char *payload;            /* JSON text, for the handler */
	struct pgjq_handler h;    /* the exec handler's process and pipes (fds -1 for the others) */
	int64_t started;          /* monotonic microseconds */
	int64_t deadline;         /* run time limit; 0: none */
	int64_t kill_at;          /* SIGKILL then; 0: not yet asked to stop */
	int64_t exited;           /* when the process was reaped; 0: running */
	int64_t limit_us;         /* its run time limit, the job's own or the worker's; 0: none */
	bool timed_out, cancelled, released; /* why it was stopped (released: to be put back) */
	bool progress_dirty;      /* progress or message not yet in the database */
	int progress;             /* its last progress, 0-100, and message (NULL: none) */
	char *message;
	int64_t progress_sent;    /* when its progress last reached the database */
	unsigned progress_seq;    /* bumped by each report, so an answer knows whether it had the last */
	unsigned progress_seq_sent; /* progress_seq as the last turn was sent */
	bool progress_in_turn;    /* the turn under way carries this job's progress */
	bool bad_progress_said;   /* a bad progress line was warned about: once is enough */
	bool snooze;              /* the handler said "not now" (fd 3, --pipe, HTTP 429/503 with Retry-After) */
	int64_t snooze_us;        /* ... and for how long */
	bool db_running;          /* the database has it running (claimed straight so, or a turn said so) */
	bool lost;                /* the database says it is not ours: its outcome would change nothing */
	bool http;                /* an HTTP request, not a process */
	bool piped;               /* sent to the slot's --pipe handler, not a process of its own */
	char *protocol_error;     /* --pipe: the protocol error that stopped the handler, for the job's error */
	bool resent;              /* --pipe: sent again, to a new handler: the first quit without reading it */
	bool sent_ahead;          /* --pipe: it was in its handler's stdin already, sent behind the last job */
	struct pgjq_http_result reply; /* --http: the server's answer, once done */
	size_t log_bytes;         /* what its attempt's log holds, against --log-max */
	bool log_cut;             /* it passed --log-max: the cut is said, the rest not kept */
};

/* What became of a job: done, failed (perhaps to be retried), or put back unfinished. */
enum outcome_kind { OUT_COMPLETED, OUT_FAILED, OUT_RELEASED, OUT_SNOOZED };

/* What a finished handler left to record; kept while the database is away. */
struct outcome {
	enum outcome_kind kind;
	int attempt, max_attempts;
	bool permanent;           /* failed: no retry can help */
	bool has_progress;        /* the job's last progress, not yet recorded, goes with it */
	int progress;
	int64_t id;               /* the job's */
	int64_t retry_after_us;   /* the server's Retry-After; -1: use the backoff */
	int64_t delay_us;         /* failed: when to retry, drawn once so a retried recording says the same;
	                           * snoozed: when to run again */
	char *result;             /* JSON text (completed) */
	char *error;              /* why the attempt failed */
	int64_t took_us;          /* its handler's run time */
	int64_t started;          /* monotonic: when its handler got it; 0 never (released from the local queue) */
	char *message;            /* (NULL: none) */
};

/*
 * A job claimed ahead of a free slot: the worker's local queue.  The
 * database has it 'claimed' (attempt not counted, not started), unless
 * told: claimed straight into 'running' for a slot that was free.
 */
struct ahead {
	int64_t id;               /* the job's, as claimed */
	const char *queue;        /* the worker's own name of it (wk_queue_name()) */
	int attempt, max_attempts, priority;
	int64_t limit_us;         /* its own run time limit; -1: none, the worker's applies */
	char *payload;            /* JSON text; the slot's once it starts */
	bool db_running;          /* the database has it running already */
	bool sent;                /* --pipe: in a handler's stdin already */
	int64_t lease_end;        /* monotonic, from the claim's or the renewal's sending: ours until then */
};

/*
 * With --pipe: a slot's long-lived handler.  It outlives the slot's jobs,
 * so it is kept apart from them; a new one is started when the slot gets
 * a job and has none.
 */
struct piped {
	struct pgjq_pipe p;       /* the process, and the protocol spoken with it */
	int64_t exited;           /* when the process was reaped; 0: running, or none */
	int64_t kill_at;          /* SIGKILL then; 0: not asked to stop, INT64_MAX: sent */
	int64_t restart_at;       /* no new process before then: the last ones died young */
	int64_t restart_delay;    /* the wait after the last young death; 0: none */
	pid_t pid;                /* the last process's, for messages once it is reaped */
	bool stopped;             /* we stopped it (time limit, cancel, shutdown): its death is not its fault */
	bool death_said;          /* its death was a job's error: nothing more to say */
	int pfd_at, npfd;         /* where its fds are among the handlers' in this turn's poll set */
	/*
	 * Jobs sent behind the slot's, waiting in the handler's stdin, in
	 * order: the next starts the moment the slot's is answered.  Only a
	 * handler whose jobs are quick gets them (avg_us).
	 */
	struct ahead queued[PGJQ_PIPE_DEPTH_MAX - 1];
	int nqueued;
	int64_t avg_us;           /* how long its jobs took, smoothed; 0: none answered yet */
};


/* The statement of a turn under way (libpq's asynchronous API: the loop goes on meanwhile). */
struct turn {
	bool busy;                /* sent, and not yet answered */
	int64_t sent;             /* monotonic */
	size_t nout;              /* it records w->out[0 .. nout) */
	int64_t *running;         /* then reports of these running jobs, in order */
	size_t nrunning, running_cap;
	int run, ahead;           /* the jobs it claims: to start now, and for the local queue */
	/*
	 * A turn refused with the connection fine (an error that is not
	 * the server going away) is not sent again at once: that would
	 * spin, and its claims, rolled back, would keep locking the queued
	 * jobs that other workers then skip.  The next waits until
	 * retry_at, after a wait that doubles (retry_delay) while turns are
	 * refused; refused counts them, for the line that says it is over.
	 */
	int64_t retry_at, retry_delay;
	long refused;
	bool logs;                /* append_logs() pipelined in front of turn() */
	bool logs_only;           /* ... or alone, with nothing else to say */
	int stage;                /* with logs: which statement's results come next (0, 1), 2: the sync */
	PGresult *logs_res;       /* with logs: append_logs()'s answer, once read */
	PGresult *turn_res;       /* with logs: turn()'s, once read */
};

/* The arrays of append_logs(), in order. */
enum { WK_LOG_IDS, WK_LOG_ATTEMPTS, WK_LOG_ATS, WK_LOG_STREAMS, WK_LOG_LINES, WK_LOG_NARRAYS };

/* Log lines as append_logs()'s array literals, not yet closed. */
struct wk_logbatch {
	struct pgjq_buf a[WK_LOG_NARRAYS];
	size_t n;                 /* lines */
};

/* The job logs on their way to the database. */
struct wk_logs {
	struct wk_logbatch pending; /* written since the last turn was sent */
	struct wk_logbatch sending; /* in the turn under way */
	int64_t first_at;         /* monotonic: when the oldest pending line came */
};

/* How far the worker has gone in stopping. */
enum wk_stopping {
	WK_RUNNING,               /* claiming and running jobs */
	WK_FINISHING,             /* a stop signal: no more claims; running jobs may finish within grace */
	WK_STOP_NOW,              /* a second signal: handlers killed now, no reconnect, short waits */
};

/* jq-worker, all of it: one per run, passed to everything. */
struct worker {
	const struct pgjq_worker_opts *o;
	PGconn *conn;             /* NULL while the database is lost */
	int64_t id;               /* our row in workers */
	char *queues;             /* the queues as an array literal */
	char **stray_queues;      /* names claims gave that are none of o->queues (wk_queue_name()) */
	size_t nstray_queues;
	char *chan_new, *chan_cancel, *chan_progress; /* channels: new work, cancels, progress */
	char *chan_log;           /* ... and new log lines */
	char *chan_schedule;      /* schedules added or changed */
	struct wk_sched *sched;   /* worker_schedule.c's */
	int64_t reconnect_at, reconnect_delay; /* the next try, and the wait before it, growing */
	bool said_down;           /* the loss is in the log already */
	bool polling;             /* it did not come: the poll and the renewals find new work and cancels */
	bool said_deaf;

	struct slot *slots;       /* o->concurrency of them */
	int busy;                 /* the slots that hold a job */
	struct outcome *out;      /* outcomes not yet recorded, oldest first */
	size_t nout, out_cap;
	struct pgjq_http *http;   /* with --http */
	struct piped *pipes;      /* with --pipe: slot i's handler is pipes[i] */
	int64_t closing_at;       /* --pipe: when idle handlers were told no more jobs come; 0: not yet */

	struct ahead *ahead;      /* the local queue, best first */
	size_t nahead, ahead_cap;
	long started;             /* jobs handed to handlers since the last turn's answer */
	long demand;              /* ... and from the one before to it: what to claim ahead */
	struct turn turn;
	/*
	 * The claimer: a second connection that only claims, while the turns
	 * of the first record what happened.  A server spends about as long
	 * on either, and one connection is one server process: with both,
	 * two cores work for the worker.  NULL while it is lost (the turns
	 * claim then, as they do alone).
	 */
	PGconn *claim_conn;
	struct turn claim;        /* its claim under way (only busy, sent, run and ahead are used) */
	int64_t claim_retry_at;   /* when to try to connect it again */
	bool claim_said;          /* that it cannot connect is in the log already */
	struct wk_logs log;
	bool turned;              /* a turn has been answered since (re)connecting */

	bool wake;                /* there may be ready jobs: claim when a slot is free */
	bool empty;               /* the last claim found nothing */
	int64_t next_poll;        /* claim then even without a notice */
	int64_t next_due;         /* the next scheduled job is due then; 0: none known */
	int64_t next_renew, next_reap, next_prune; /* the upkeep's timers */
	long claimed;             /* jobs claimed since the start, for --max-jobs */
	enum wk_stopping stopping;
	int64_t grace_end;        /* when the jobs still running after a stop signal are stopped */
};

/* worker.c: the loop */

/* No job runs and none will be claimed: time to go, once the --pipe handlers have gone. */
bool wk_work_done(struct worker *w);

/*
 * The worker's own copy of a queue's name, which lives as long as the
 * worker: a slot, an outcome and a job of the local queue point to it
 * rather than each carrying 65 bytes (a turn holds a thousand of them).
 */
const char *wk_queue_name(struct worker *w, const char *name);

/* worker_db.c: the connection */

/* How long a statement's answer, or a turn's, may take before the database is taken for lost. */
int64_t wk_db_wait_us(const struct worker *w);

/* The connection is lost (why: libpq's message): drop it, and reconnect later. */
void wk_db_lost(struct worker *w, const char *why);

/*
 * Runs a statement; NULL if it failed.  A lost connection is handled here
 * (the caller just stops); other errors are reported with context.
 */
PGresult *wk_db_exec(struct worker *w, const char *context, const char *sql, int n,
    const char *const *params);

/* (Re)connects: LISTEN, and register the first time.  False if not (yet). */
bool wk_db_connect(struct worker *w, bool first);

/* Reconnects, if the connection is lost and the time has come to try again. */
void wk_db_reconnect(struct worker *w, int64_t now);

/* Reads the NOTIFYs that arrived: new work, or a cancel for one of ours. */
void wk_db_read_notifies(struct worker *w);

/* The worker's row goes, and with it any claim of ours the database still holds. */
void wk_db_unregister(struct worker *w);

/* worker_upkeep.c: leases, reaping, retention */

/* Renewal, reaping and retention, each when its time has come, between turns. */
void wk_upkeep(struct worker *w, int64_t now);

/* worker_turn.c: a turn, the one statement that records, reports and claims */

/* Sends a turn, if there is anything to say or to claim. */
void wk_turn_send(struct worker *w, int64_t now);

/* Reads the turn's answer, if it has come (wk_db_read_notifies has consumed the input). */
void wk_turn_read(struct worker *w, int64_t now);

/* Connects the claimer, if it is missing and its time has come. */
void wk_claim_connect(struct worker *w, int64_t now);

/* The claimer's poll(2) entry (0 or 1 of them). */
int wk_claim_pollfds(const struct worker *w, struct pollfd *pfd);

/* Drops the claimer (its claim under way, if any, comes back as strays: see renew_leases). */
void wk_claim_drop(struct worker *w);

/*
 * How many jobs a claim could take now: run for the free slots that the
 * local queue cannot fill, ahead to top the local queue up.
 */
void wk_turn_claim_room(struct worker *w, int64_t now, int *run, int *ahead);

/* The turn under way is lost with the connection: what it kept of its answers goes. */
void wk_turn_forget(struct worker *w);

/* Whether the turn under way waited too long for its answer; *at (unless NULL): when it will have. */
bool wk_turn_overdue(const struct worker *w, int64_t now, int64_t *at);

/* worker_ahead.c: the local queue */

/* How many jobs the local queue should hold: two turns' worth of what the slots took in the last. */
int wk_ahead_target(const struct worker *w);

/* Puts the local queue in order, after a claim added to it. */
void wk_ahead_sort(struct worker *w);

/* Adds job a (whose payload it takes) to the local queue, to be sorted. */
void wk_ahead_put(struct worker *w, struct ahead *a);

/* Hands the local queue's best jobs to the free slots. */
void wk_ahead_feed_slots(struct worker *w, int64_t now);

/* A notice says job id was cancelled: if it is in the local queue and not yet running, it leaves. */
void wk_ahead_cancelled(struct worker *w, int64_t id);

/* A queue was paused: its jobs in the local queue go back unstarted. */
void wk_ahead_paused(struct worker *w, const char *queue);

/* Stopping, or reconnected: the local queue goes back at once, attempts untouched. */
void wk_ahead_release_all(struct worker *w);

/* worker_slot.c: a job in a slot, from its start to its outcome */

/* The slot that runs job id, or NULL. */
struct slot *wk_slot_of(struct worker *w, int64_t id);

/* Whether slot i may take a job now. */
bool wk_slot_ready(struct worker *w, int i, int64_t now);

/* How many slots may take a job now. */
int wk_slots_ready(struct worker *w, int64_t now);

/* Gives a job of the local queue (which hands over its payload) to slot s. */
void wk_slot_start(struct worker *w, struct slot *s, struct ahead *a, int64_t now);

/* Whether the next turn sends the running job's progress: it changed, and long enough ago. */
bool wk_slot_progress_due(const struct slot *s, int64_t now);

/* Adds the busy slots' handler fds to pfd; returns how many. */
int wk_slots_pollfds(struct worker *w, struct pollfd *pfd);

/* Does the handlers' I/O that poll reported in pfd[0 .. n). */
void wk_slots_io(struct worker *w, const struct pollfd *pfd, int n);

/* Does the HTTP I/O that poll reported in pfd[0 .. n); a finished request's reply goes to its slot. */
void wk_http_io(struct worker *w, const struct pollfd *pfd, int n);

/* Asked to cancel the slot's job: its handler is stopped, or its request abandoned. */
void wk_slot_cancel(struct worker *w, struct slot *s, int64_t now);

/* The database no longer has the slot's job as ours: stop its handler, record nothing. */
void wk_slot_abandon(struct worker *w, struct slot *s, int64_t now);

/* After the grace period: stop what still runs and put it back. */
void wk_slots_end_grace(struct worker *w, int64_t now);

/* Reaps the children that exited: the slots' handlers and the --pipe ones. */
void wk_reap_children(struct worker *w, int64_t now);

/* Time limits, kills overdue, and the outcome of each job whose handler is gone. */
void wk_slots_check(struct worker *w, int64_t now);

/* The slot's job has its outcome: the slot is free for another. */
void wk_slot_vacate(struct worker *w, struct slot *s);

/* worker_pipe.c: --pipe handlers, one per slot */

/* The handler of slot s. */
struct piped *wk_pipe_of(struct worker *w, const struct slot *s);

/*
 * Stops a handler: SIGTERM, and SIGKILL --kill-after later; its answers
 * are not believed from now on.  blame: its own fault (it broke the
 * protocol), which counts as dying young.
 */
void wk_pipe_stop(struct worker *w, struct piped *pp, int64_t now, bool blame);

/* Whether slot i's handler may take a job: it is ready, or there is none and one may start. */
bool wk_pipe_ready(struct worker *w, int i, int64_t now);

/* How many more jobs slot i's handler may be sent behind the one it works on. */
int wk_pipe_room(struct worker *w, int i);

/* Sends job a (whose payload it takes) to slot i's handler, behind the one it works on. */
void wk_pipe_queue_job(struct worker *w, int i, struct ahead *a);

/* The jobs sent behind the slot's to a handler that will not answer them go back to the local queue. */
void wk_pipe_unqueue(struct worker *w, struct piped *pp);

/* Gives the slot's job to its handler, started first if it has none. */
void wk_pipe_start_job(struct worker *w, struct slot *s, int64_t now);

/* The handler is gone without answering for the slot's job: the job's outcome says why. */
void wk_pipe_finish_job(struct worker *w, struct slot *s, int64_t now);

/*
 * The handler quit cleanly just as the slot's job came, most likely
 * without reading it: the job goes to a new handler, once.  False if not.
 */
bool wk_pipe_resend(struct worker *w, struct slot *s, int64_t now);

/*
 * The handlers' lives apart from any one job: kills overdue, the dead
 * cleared away, and once no more jobs come, the idle told to go.
 */
void wk_pipes_tend(struct worker *w, int64_t now);

/* True while any handler runs or has output left to read. */
bool wk_pipes_alive(const struct worker *w);

/* Adds the handlers' fds that need watching to pfd; returns how many. */
int wk_pipes_pollfds(struct worker *w, struct pollfd *pfd);

/* Does the I/O that poll reported on the fds wk_pipes_pollfds added to pfd. */
void wk_pipes_io(struct worker *w, const struct pollfd *pfd);

/* worker_outcome.c: outcomes, kept until recorded */

/* A new outcome, zeroed, at the end of w->out. */
struct outcome *wk_outcome_new(struct worker *w);

/* The slot's job has its outcome (result and error are the outcome's now), unless it is lost to us. */
void wk_outcome_add(struct worker *w, struct slot *s, enum outcome_kind kind, bool permanent,
    char *result, char *error, int64_t now);

/* Says what recording an outcome did: state is the job's new state; NULL, the lease was lost. */
void wk_outcome_say(struct worker *w, const struct outcome *o, const char *state);

/* Forgets the first n outcomes: they are recorded (or refused for good). */
void wk_outcomes_drop(struct worker *w, size_t n);

/* worker_log.c: job logs */

/* A line of the slot's job's log, from stream (see joblog.h), within --log-max. */
void wk_log_line(struct worker *w, struct slot *s, const char *stream, const char *line);

/* Whether the lines written have waited long enough to go even with nothing else to send. */
bool wk_log_due(const struct worker *w, int64_t now);

/* When wk_log_due will be true; 0: nothing waits. */
int64_t wk_log_due_at(const struct worker *w);

/* The lines written go with the turn being sent: params[0..5) are append_logs()'s arrays; returns how many. */
size_t wk_log_take(struct worker *w, const char **params);

/* The turn that carried them committed. */
void wk_log_sent(struct worker *w);

/* The database refused them (why): they are dropped, with a warning. */
void wk_log_refused(struct worker *w, const char *why);

/* The connection was lost with them under way: they go again with the next turn. */
void wk_log_requeue(struct worker *w);

void wk_log_free(struct worker *w);
/* worker_schedule.c: recurring jobs */

void wk_schedule_init(struct worker *w);
void wk_schedule_free(struct worker *w);

/* A notice says schedules changed: read them again. */
void wk_schedule_changed(struct worker *w);

/* When the schedules need the loop next (monotonic); 0: not while stopping. */
int64_t wk_schedule_due(const struct worker *w);

/* Fires the due slots of our queues' schedules, between turns, when their time has come. */
void wk_schedule_tick(struct worker *w, int64_t now);

/* Finds out which schedule and slot the jobs just claimed are for, before they start. */
void wk_schedule_resolve(struct worker *w);

/*
 * Whether the job of the local queue id, of queue, may start as far as
 * schedules go: its queue has none, or whether it is a schedule's job has
 * been found out (wk_schedule_resolve).  A claim's answer can come on the
 * claimer while a turn is under way, and the lookup must wait for it.
 */
bool wk_schedule_known(const struct worker *w, int64_t id, const char *queue);

/* The schedule job id is for (and *slot, its slot in UTC), or NULL. */
const char *wk_schedule_of(const struct worker *w, int64_t id, const char **slot);

/* worker_event.c: job event lines */

/* One line per job event on stderr (s: the slot that runs it, or NULL); fmt: the detail, or NULL. */
void wk_event(struct worker *w, const char *what, const struct slot *s, int64_t id,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
