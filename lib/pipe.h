/*
 * pipe: a persistent handler (jq-worker --pipe), one process that takes
 * job after job, and the JSON-lines protocol spoken with it.
 *
 * Each job goes to the handler's stdin as one line; each line on its
 * stdout answers or reports progress on the job in flight.  Lines are
 * checked here, so the worker only ever sees well-formed messages about
 * the job it sent, or a protocol error saying what was wrong.  As with
 * handler.c nothing blocks: the worker polls the fds this module exposes
 * and calls back in when they are ready.  Starting, stopping and reaping
 * the process, and what to do when it dies, are the worker's business.
 */
#ifndef PGJQ_PIPE_H
#define PGJQ_PIPE_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "handler.h"
#include "xalloc.h"

/* The longest line read from a handler: a result as long as an exec handler's, and its envelope. */
#define PGJQ_PIPE_LINE_MAX (PGJQ_RESULT_MAX + 64 * 1024)
/* The most jobs sent to one handler and not yet answered. */
#define PGJQ_PIPE_DEPTH_MAX 32

enum pgjq_pipe_kind {
	PGJQ_PIPE_COMPLETED,      /* the job in flight is completed */
	PGJQ_PIPE_FAILED,         /* its attempt failed */
	PGJQ_PIPE_SNOOZE,         /* "not now": run it again after delay_us, this attempt not counted */
	PGJQ_PIPE_PROGRESS,       /* how far it has got */
	PGJQ_PIPE_BAD_PROGRESS,   /* a progress line about it that makes no sense: worth a warning only */
	PGJQ_PIPE_BAD,            /* a line that breaks the protocol: nothing it says can be trusted now */
};

/* One line from the handler; the pointers are valid during the callback only. */
struct pgjq_pipe_msg {
	enum pgjq_pipe_kind kind;
	int64_t id;               /* the job it is about (for BAD, the oldest in flight; 0: none) */
	const char *text;         /* COMPLETED: the result, len bytes of JSON text;
	                           * FAILED: the error, NULL if the handler gave none;
	                           * PROGRESS: the message, NULL if none;
	                           * BAD, BAD_PROGRESS: what is wrong, for people */
	size_t len;
	bool retry;               /* FAILED: whether another attempt may succeed */
	int progress;             /* PROGRESS: 0-100 */
	int64_t delay_us;         /* SNOOZE: how long */
};

typedef void pgjq_pipe_msg_fn(void *ctx, const struct pgjq_pipe_msg *m);
/* A line the handler wrote on stderr. */
typedef void pgjq_pipe_err_fn(void *ctx, const char *line);

struct pgjq_pipe {
	pid_t pid;                /* 0: no process (none yet, or reaped) */
	int status;               /* wait status, once reaped */
	int exec_errno;           /* why it could not be started; set by the caller */
	int in_fd, out_fd, err_fd; /* -1 when closed */
	int64_t job;              /* the oldest job sent and not yet answered; 0: none */
	int64_t queued[PGJQ_PIPE_DEPTH_MAX - 1]; /* sent after it, oldest first */
	int nqueued;
	long answered;            /* jobs this process has answered */
	bool wrote_since_send;    /* it wrote something since the job in flight was sent, or the last answered */
	bool stdout_ignored;      /* stdout is read but no longer believed: it broke the protocol, or is being stopped */
	struct pgjq_buf in;       /* bytes for stdin, written from in_off on */
	size_t in_off;
	struct pgjq_buf line;     /* stdout line being assembled */
	bool overlong;            /* dropping the rest of a line past PGJQ_PIPE_LINE_MAX */
	struct pgjq_buf err_line; /* stderr line being assembled */
	struct pgjq_tail err_tail; /* stderr's last bytes since the job was sent */
};

/* A pipe with no process; pgjq_pipe_free releases it. */
void pgjq_pipe_init(struct pgjq_pipe *p);

/*
 * Starts argv with env (whose job_id is 0: there is no one job).
 * Returns 0, or -1 with errno set if it could not be started, exec's
 * failure included.
 */
int pgjq_pipe_start(struct pgjq_pipe *p, char *const argv[], const struct pgjq_handler_env *env);

/* True if the process runs, listens, and has no job in flight. */
bool pgjq_pipe_ready(const struct pgjq_pipe *p);

/*
 * True if the process runs and listens, has a job in flight, and fewer
 * than depth: another may be sent behind it.  A handler that reads its
 * jobs one by one then finds the next in its stdin when it answers, with
 * no round trip through the worker in between.
 */
bool pgjq_pipe_can_queue(const struct pgjq_pipe *p, int depth);

/*
 * Sends a job, which is then in flight until answered: the oldest
 * unanswered is the one the handler is taken to work on (job), the
 * others wait in its stdin (queued).  The payload is JSON text without a
 * newline.
 */
void pgjq_pipe_send(struct pgjq_pipe *p, int64_t id, const char *queue, int attempt,
    int max_attempts, const char *payload, size_t len);

/*
 * pgjq_pipe_send for a job a schedule fired: the line also has
 * "schedule" and "scheduled_for" (names and times need no escaping).
 */
void pgjq_pipe_send_scheduled(struct pgjq_pipe *p, int64_t id, const char *queue, int attempt,
    int max_attempts, const char *schedule, const char *scheduled_for, const char *payload,
    size_t len);

/* Adds the pipe's fds that need watching to pfd (at most 3); returns how many. */
int pgjq_pipe_pollfds(const struct pgjq_pipe *p, struct pollfd *pfd);

/* Does the I/O that pfd reports ready, calling back for each line read. */
void pgjq_pipe_io(struct pgjq_pipe *p, const struct pollfd *pfd, int n,
    pgjq_pipe_msg_fn *on_msg, pgjq_pipe_err_fn *on_err, void *ctx);

/* No more jobs: the handler sees EOF on stdin, and should exit. */
void pgjq_pipe_close_stdin(struct pgjq_pipe *p);

/* Sends sig to the handler's process group; from now on its stdout is not believed. */
void pgjq_pipe_kill(struct pgjq_pipe *p, int sig);

/* The process was reaped with this wait status. */
void pgjq_pipe_reaped(struct pgjq_pipe *p, int status);

/* True when the process has been reaped and its output read to the end. */
bool pgjq_pipe_gone(const struct pgjq_pipe *p);

/* Stops reading what is left (children of the handler hold its pipes open). */
void pgjq_pipe_close(struct pgjq_pipe *p);

/* Copies what the handler wrote on stderr since the job in flight was sent, its end, as text. */
void pgjq_pipe_error_tail(const struct pgjq_pipe *p, char *buf, size_t size);

/*
 * Takes the queued jobs (not the oldest) out of a handler that will not
 * answer them (it is gone, or being stopped): into ids, at most n; returns
 * how many.
 */
int pgjq_pipe_unqueue(struct pgjq_pipe *p, int64_t *ids, int n);

/* Forgets a gone process, so that another may start; the buffers are kept for it. */
void pgjq_pipe_reset(struct pgjq_pipe *p);

void pgjq_pipe_free(struct pgjq_pipe *p);

#endif
