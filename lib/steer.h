/*
 * steer: moving many jobs at once with one of the schema's lifecycle
 * functions (retry_job, cancel_job), all in one transaction.
 *
 * First the jobs that may move are locked, so nothing else moves them
 * meanwhile and what the function returns can be told apart from a job
 * that was already in the state it returns.  Then the function is called
 * for each job, in order; the caller judges each outcome, and its output
 * is written only once the transaction has committed.
 *
 * A whole queue (jq-cancel -q, jq-retry --failed) goes in batches
 * instead, each its own transaction, so that no lock is held for longer
 * than a batch: pgjq_steer_batches() runs each phase's statement for
 * each queue from id 0 on, the next batch after the last id returned,
 * until one returns nothing; each batch's output is written once it has
 * committed.
 */
#ifndef PGJQ_STEER_H
#define PGJQ_STEER_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "xalloc.h"

struct pgjq_steer_row {
	int64_t id;
	const char *outcome;   /* what the function returned; NULL: no such job */
	bool eligible;         /* locked beforehand as one that may move */
};

/*
 * Judges one outcome: appends what to print to out and returns the exit
 * status it deserves (0, 1 or 66).
 */
typedef int pgjq_steer_fn(void *ctx, const struct pgjq_steer_row *r, struct pgjq_buf *out);

struct pgjq_steer {
	const char *function;      /* "retry_job", "run_now" or "cancel_job": ours, never a user's */
	const char *lock_sql;      /* locks the eligible jobs; returns their ids as one bigint[] */
	const char *const *lock_params;
	int nlock;
	const char *ids;           /* the jobs to move, a bigint[] literal; NULL: the eligible ones */
	bool dry_run;              /* roll back at the end */
	pgjq_steer_fn *judge;
	void *ctx;
};

/*
 * Connects (conninfo NULL: libpq's defaults) and runs it; returns the
 * worst status judged, or dies if the database fails.
 */
int pgjq_steer_run(const char *conninfo, const char *schema, const struct pgjq_steer *s);

/*
 * One kind of job to move: sql takes $1 the queue, $2 the id to go on
 * after, $3 the batch size, and returns (id, outcome) in id order; it is a
 * string constant (pgjq_sql() caches it by address).
 */
struct pgjq_steer_phase {
	const char *sql;
	int batch;
};

/*
 * Runs the phases, in order, for each queue; judges each row but those of
 * jobs that finished by themselves meanwhile, and returns the worst
 * status.  SIGINT or SIGTERM ends it after the batch in flight, saying
 * how many jobs were done ("cancelled", "retried"), with 130 or 143.
 */
int pgjq_steer_batches(const char *conninfo, const char *schema, const char *const *queues,
    size_t nqueues, const struct pgjq_steer_phase *phases, size_t nphases,
    pgjq_steer_fn *judge, void *ctx, const char *done);

#endif
