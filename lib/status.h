/*
 * status: reading jobs and showing them, for jq-status and its kin.
 *
 * Jobs are read from the view all_jobs with one select list, so a row
 * always has the same columns wherever it comes from, and each row also
 * carries the whole job as a JSON object built by the server: payloads
 * and results pass through byte for byte, never through doubles.
 * Human output fits the width it is given (80 columns off a terminal).
 */
#ifndef PGJQ_STATUS_H
#define PGJQ_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "xalloc.h"

/* Jobs by id ($1, a bigint[] literal), in the order of the array. */
extern const char pgjq_status_by_id_sql[];
/* A queue's jobs ($1), optionally of one state ($2, or NULL), newest first, at most $3. */
extern const char pgjq_status_list_sql[];
/* A queue's running jobs ($1), oldest start first. */
extern const char pgjq_status_running_sql[];

/* One row of those statements; strings point into the PGresult, NULL for SQL NULL. */
struct pgjq_jobrow {
	int64_t id;
	const char *queue;
	const char *state;
	int priority;
	int attempts;
	int max_attempts;
	int progress;           /* 0-100, or -1: none reported */
	const char *message;    /* progress message */
	const char *error;
	const char *result;     /* JSON text */
	const char *payload;    /* JSON text */
	const char *key;
	const char *worker;        /* its worker's name (host:pid) while it holds the job */
	const char *after;      /* "{1,2}" */
	bool cancel;            /* cancelling asked while it runs */
	double run_at, created_at, started_at, finished_at; /* Unix time; 0: none */
	double now;             /* the server's clock when the row was read */
	const char *json;       /* the whole job, one JSON object */
};

void pgjq_jobrow_get(const PGresult *res, int row, struct pgjq_jobrow *j);

/* True for completed, failed and cancelled. */
bool pgjq_state_final(const char *state);

/* The job as a block of "label  value" lines, none wider than width. */
void pgjq_status_show(struct pgjq_buf *b, const struct pgjq_jobrow *j, int width);

/* A table of the rows of res, a header first, each line at most width wide. */
void pgjq_status_table(struct pgjq_buf *b, const PGresult *res, int width);

/* Writes "s ago"-style lengths of time (seconds) for people, e.g. "3m12s". */
void pgjq_status_age(double seconds, char *buf, unsigned long size);

#endif
