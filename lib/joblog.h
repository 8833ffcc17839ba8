/*
 * joblog: job logs, what the worker writes and jq-status --log reads.
 *
 * Each line of an attempt is a row of the logs table, with the time the
 * worker read it and its stream.  The worker tells the channel
 * PGJQ_CHANNEL_LOG (lib/channel.h) a job's id whenever lines of it are
 * committed; a follower LISTENs there, and reads the rows past the last
 * it showed.
 */
#ifndef PGJQ_JOBLOG_H
#define PGJQ_JOBLOG_H

#include <stdbool.h>
#include <stdint.h>

/* The streams a line comes from. */
#define PGJQ_LOG_STDERR "stderr"     /* the handler's stderr */
#define PGJQ_LOG_PROGRESS "progress" /* a progress line (fd 3, or --pipe's progress answers) */
#define PGJQ_LOG_HTTP "http"         /* --http: the status line and the error body */
#define PGJQ_LOG_WORKER "worker"     /* the worker's own word: the cut at --log-max */

/* The default of jq-worker --log-max. */
#define PGJQ_LOG_MAX_DEFAULT (1024 * 1024)

struct pgjq_log_opts {
	const char *conninfo;   /* NULL: libpq's defaults */
	const char *schema;
	int64_t id;             /* the job */
	int attempt;            /* only this attempt's lines; 0: every attempt */
	bool follow;            /* follow it live until the job ends */
	bool json;              /* one JSON object per line, not "time attempt stream line" */
};

/*
 * Prints the job's log; following, until the job has finished.  Returns
 * 0, or with follow --wait's status: 0 if it completed, 1 if not; 66 if
 * there is no such job.
 */
int pgjq_log_show(const struct pgjq_log_opts *o);

#endif
