/*
 * queue: jq-queue's work, steering whole queues kept in the database's
 * queues table (schema version 11): list them, pause and resume them,
 * set their fleet-wide limits, purge their jobs.  The workers obey at
 * their next claim.
 *
 * Every change names queues that must be known (jobs, finished jobs,
 * settings or a live worker serving it): a misspelt name is a usage
 * error, with nothing changed, rather than a setting no worker reads.
 */
#ifndef PGJQ_QUEUE_H
#define PGJQ_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgjq_queue_conn {
	const char *conninfo;   /* NULL: libpq's defaults */
	const char *schema;
	bool json;              /* a JSON object per line on stdout */
};

/* What a change sets; the kinds share one path (lock, check, set, commit). */
enum pgjq_queue_change {
	PGJQ_QUEUE_PAUSE,
	PGJQ_QUEUE_RESUME,
	PGJQ_QUEUE_LIMIT,       /* max: at most that many held at once; 0 lifts it */
	PGJQ_QUEUE_RATE,        /* n per window_us; n 0 lifts it */
	PGJQ_QUEUE_GROUP_LIMIT, /* max of a group's jobs held at once; 0: back to 1 */
};

struct pgjq_queue_set {
	enum pgjq_queue_change change;
	long max;
	long n;
	int64_t window_us;
	bool wait;              /* pause: return once none of the queues' jobs is held */
};

/* Prints each queue (n 0: every known one) with its settings and counts; returns the exit status. */
int pgjq_queue_list(const struct pgjq_queue_conn *c, const char *const *queues, size_t n);

/* Applies the change to every named queue, in one transaction; returns the exit status. */
int pgjq_queue_apply(const struct pgjq_queue_conn *c, const char *const *queues, size_t n,
    const struct pgjq_queue_set *set);

/*
 * Deletes the queue's jobs in the states named (NULL-free list; n 0:
 * scheduled and queued), older than older_us (-1: any age), in batches of
 * their own transactions; never a running or claimed job.  On a terminal
 * it asks first unless yes.  Prints the count; returns the exit status.
 */
int pgjq_queue_purge(const struct pgjq_queue_conn *c, const char *queue, const char *const *states,
    size_t nstates, int64_t older_us, bool yes);

/*
 * Parses a rate "N/DURATION" (N from 1 to 1000000, the duration above 0):
 * 0, or -1 with *why set to a static message fit to follow "invalid rate 'X': ".
 */
int pgjq_rate_parse(const char *s, long *n, int64_t *window_us, const char **why);

#endif
