/*
 * worker: jq-worker's event loop.  Claims jobs, runs a handler for each
 * in one of N slots, renews their leases, records outcomes, and survives
 * a lost database, dead handlers and signals without losing a job.
 *
 * One thread and one poll(2) drive everything: the database socket (for
 * NOTIFY wake-ups), every handler's pipes, a self-pipe for signals, and
 * the timers (leases, polls, time limits), so nothing busy-waits.
 */
#ifndef PGJQ_WORKER_H
#define PGJQ_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgjq_worker_opts {
	const char *conninfo;        /* NULL: libpq's defaults */
	const char *schema;
	const char *const *queues;
	size_t nqueues;
	int concurrency;
	int64_t lease_us;            /* how long a claim holds without renewal */
	int64_t grace_us;            /* how long running jobs may finish after SIGTERM */
	int64_t poll_us;             /* fallback (or, with poll_only, only) check for work */
	int64_t timeout_us;          /* run time limit for jobs without their own; 0: none */
	int64_t kill_after_us;       /* SIGTERM to SIGKILL */
	int64_t backoff_us;          /* first retry's delay; doubles each attempt */
	int64_t backoff_max_us;
	int64_t keep_completed_us;   /* how long finished jobs stay in history */
	int64_t keep_failed_us;      /* the same for failed and cancelled ones */
	int64_t keep_logs_us;        /* job logs go this long after they were written; 0: with their jobs */
	size_t log_max;              /* bytes of log kept per attempt; 0: no logs */
	bool poll_only;              /* never LISTEN: for poolers in transaction mode */
	bool drain;                  /* exit once nothing is ready or running */
	long max_jobs;               /* exit after this many jobs; 0: no limit */
	int prefetch;                /* at most this many claimed ahead of free slots; 0: none */
	int max_snoozes;             /* a job's snoozes beyond this count as attempts */
	bool json;                   /* job events as JSON lines */
	bool quiet;                  /* no routine events (started, completed, released) */
	char *const *argv;           /* the handler command, or NULL with http_url */
	bool pipe;                   /* argv runs once per slot and takes job after job on stdin */
	const char *http_url;        /* POST each job here instead */
};

/*
 * A local queue of about two turns' worth of jobs keeps the slots fed
 * while a turn is under way; this caps it.
 */
#define PGJQ_PREFETCH_DEFAULT 1000

/* How often a job may say "not now" before its snoozes count as attempts. */
#define PGJQ_MAX_SNOOZES_DEFAULT 10

/* Runs until stopped; returns the exit status. */
int pgjq_worker_run(const struct pgjq_worker_opts *opts);

/* The delay before attempt+1, jitter included (exposed for tests). */
int64_t pgjq_backoff_us(const struct pgjq_worker_opts *opts, int attempt, unsigned rnd);

#endif
