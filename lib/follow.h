/*
 * follow: waiting for jobs to finish and following them live, for
 * jq-status --wait and --follow.
 *
 * Both are woken by NOTIFY: "<schema>_done" says a job finished,
 * "<schema>_progress" carries a running job's progress.  They LISTEN
 * before they read the jobs, so a job that finishes in between is seen
 * either way, and they read the jobs again after a reconnection, so a
 * final state reached while the server was away is not missed.  Following
 * also reads the jobs it shows once a second, since a job starting to run
 * sends no notification; waiting reads nothing unless woken.
 */
#ifndef PGJQ_FOLLOW_H
#define PGJQ_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

enum pgjq_follow_output {
	PGJQ_FOLLOW_QUIET,   /* nothing on stdout; jobs that did not complete named on stderr */
	PGJQ_FOLLOW_JOBS,    /* each job's JSON object once it has finished */
	PGJQ_FOLLOW_EVENTS,  /* one JSON event per line, flushed at once */
	PGJQ_FOLLOW_SCREEN,  /* progress bars redrawn in place on the terminal */
};

struct pgjq_follow_opts {
	const char *conninfo;   /* NULL: libpq's defaults */
	const char *schema;
	const int64_t *ids;     /* the jobs; none: the queues' running jobs, until a signal */
	size_t nids;
	const char *queues;     /* without ids: the queues as a text[], NULL for every queue */
	const char *queue_names; /* how the screen names them */
	enum pgjq_follow_output output;
};

/*
 * Runs until every job has finished.  Returns 0 if all completed, 1 if
 * any failed or was cancelled, 66 if an id names no job.
 */
int pgjq_follow(const struct pgjq_follow_opts *o);

#endif
