/*
 * enqueue: puts a stream of payloads into the jobs table, fast and
 * all-or-nothing.
 *
 * Plain jobs go in with COPY, their ids taken from the sequence in one
 * round trip beforehand so they can be printed in input order.  Jobs with
 * a uniqueness key, dependencies or a time of their own go through
 * enqueue_job() one by one, because each needs decisions only the
 * database can make under concurrency.  Ids are printed only once their
 * transaction has committed.
 */
#ifndef PGJQ_ENQUEUE_H
#define PGJQ_ENQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "xalloc.h"

/* Settings for every job of a run; an envelope may override them per job. */
struct pgjq_enqueue_opts {
	const char *queue;
	int priority;
	bool has_delay;
	int64_t delay_us;
	const char *at;        /* timestamptz text, or NULL */
	int max_attempts;
	bool has_timeout;
	int64_t timeout_us;
	const char *key;       /* or NULL */
	const char *group;     /* or NULL */
	const int64_t *after;  /* dependencies */
	size_t n_after;
	bool envelope;         /* each value is {"payload": ..., "queue": ...} */
	long batch;            /* commit every this many values; 0: all at once */
	bool json;             /* print JSON objects rather than bare ids */
};

struct pgjq_enqueuer;

/* Where values come from, for error messages: "stdin:17" or "arg 2". */
enum pgjq_source {
	PGJQ_SOURCE_STDIN,
	PGJQ_SOURCE_ARGS,
};

/*
 * Starts a run on conn.  Returns NULL after printing why if a run-wide
 * setting is bad (*status is then the exit status).
 */
struct pgjq_enqueuer *pgjq_enqueuer_new(PGconn *conn,
    const struct pgjq_enqueue_opts *opts, enum pgjq_source source, FILE *out,
    int *status);

/*
 * Adds one value (its JSON text, and its line or argument number).
 * Returns 0, or an exit status after printing why; after a failure the
 * enqueuer only accepts pgjq_enqueuer_free().
 */
int pgjq_enqueuer_add(struct pgjq_enqueuer *e, const char *text, size_t len, long line);

/* The input paused: with --batch, commit what is pending so it can run. */
int pgjq_enqueuer_idle(struct pgjq_enqueuer *e);

/* Reports a failure found outside the enqueuer (bad input) with the right context. */
int pgjq_enqueuer_fail(struct pgjq_enqueuer *e, int status, long line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Commits what is left and prints the remaining ids.  Returns an exit status. */
int pgjq_enqueuer_finish(struct pgjq_enqueuer *e);

/*
 * Ends the run for a signal: a batch already committing is waited for
 * and its ids printed; what was sent and not committed is left to roll
 * back when the connection closes.  Says on stderr how many values were
 * enqueued and the first that was not.  Returns 128 + sig.
 */
int pgjq_enqueuer_interrupt(struct pgjq_enqueuer *e, int sig);

void pgjq_enqueuer_free(struct pgjq_enqueuer *e);

/* Appends s (len bytes) to b escaped for COPY's text format: no raw tab, newline, CR. */
void pgjq_copy_escape(struct pgjq_buf *b, const char *s, size_t len);

/* Values sent per COPY when not batching: big enough to amortise round trips. */
#define PGJQ_ENQUEUE_CHUNK 5000

#endif
