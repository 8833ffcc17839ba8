/*
 * handler: runs one job's exec handler as a child process and collects
 * what it says.
 *
 * The child gets the payload on stdin, a progress pipe on fd 3 and its
 * own process group, so a time limit or a cancel can stop it and
 * everything it started.  The parent side never blocks: the worker's
 * event loop polls the fds this module exposes and calls back in when
 * they are ready.
 */
#ifndef PGJQ_HANDLER_H
#define PGJQ_HANDLER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "xalloc.h"

/* Most of a handler's stdout kept as the result, and of stderr as the error. */
#define PGJQ_RESULT_MAX (1024 * 1024)
#define PGJQ_ERROR_TAIL 2048

/* The last PGJQ_ERROR_TAIL bytes of a stream: a handler's stderr, kept as the error. */
struct pgjq_tail {
	char ring[PGJQ_ERROR_TAIL];
	size_t total;             /* bytes ever added; 0 empties it */
};

void pgjq_tail_add(struct pgjq_tail *t, const char *p, size_t n);

/* The tail as a string in buf: NUL bytes as spaces, trailing newlines dropped. */
void pgjq_tail_copy(const struct pgjq_tail *t, char *buf, size_t size);

struct pgjq_handler_env {
	int64_t job_id;           /* 0: no job (a --pipe handler): no per-job variables */
	const char *queue;
	int attempt;
	int max_attempts;
	const char *database_url; /* NULL: not set for the handler */
	const char *schema;       /* JQ_SCHEMA, so follow-up jobs land beside this one */
	const char *schedule;     /* JQ_SCHEDULE: the schedule that fired the job, or NULL */
	const char *scheduled_for; /* JQ_SCHEDULED_FOR: its slot */
};

struct pgjq_handler {
	pid_t pid;              /* 0 once reaped */
	int status;             /* wait status, valid once pid is 0 */
	int in_fd, out_fd, err_fd, progress_fd; /* -1 when closed */
	const char *payload;    /* not owned; written to in_fd */
	size_t payload_len, payload_off;
	struct pgjq_buf out;    /* stdout, up to PGJQ_RESULT_MAX */
	bool out_truncated;
	struct pgjq_tail err_tail; /* stderr's last bytes */
	struct pgjq_buf err_line;      /* stderr line being assembled, for the log */
	struct pgjq_buf progress_line; /* fd 3 line being assembled */
	int exec_errno;         /* why it could not be started; set by the caller */
};

/*
 * Starts argv (found in PATH) in a process group of its own, with fds[i]
 * on descriptor i (nfds at most 4; a fourth is the progress fd) and no
 * other descriptor open, and env's variables set.  Returns the pid once
 * the program runs, or -1 with errno set if it could not be started,
 * exec's failure (ENOENT, EACCES, ...) included.  The caller closes its
 * copies of fds.
 */
pid_t pgjq_spawn(char *const argv[], const struct pgjq_handler_env *env, const int *fds, int nfds);

/*
 * Starts argv for a job.  Returns 0, or -1 with errno set if it could
 * not be started (see pgjq_spawn).
 */
int pgjq_handler_start(struct pgjq_handler *h, char *const argv[],
    const struct pgjq_handler_env *env, const char *payload, size_t len);

/* Adds the handler's open fds to pfd (at most 4); returns how many. */
int pgjq_handler_pollfds(const struct pgjq_handler *h, struct pollfd *pfd);

/* A callback for each complete line: stderr (is_progress false) or fd 3. */
typedef void pgjq_handler_line_fn(void *ctx, bool is_progress, const char *line);

/* Does the I/O that pfd reports ready. */
void pgjq_handler_io(struct pgjq_handler *h, const struct pollfd *pfd, int n,
    pgjq_handler_line_fn *on_line, void *ctx);

/* True when the process has been reaped and its output pipes are at EOF. */
bool pgjq_handler_done(const struct pgjq_handler *h);

/* Stops reading what is left (the handler left children holding its pipes). */
void pgjq_handler_close_pipes(struct pgjq_handler *h);

/* Sends sig to the handler's whole process group. */
void pgjq_handler_kill(const struct pgjq_handler *h, int sig);

/* Copies the last bytes of stderr into buf, as text. */
void pgjq_handler_error_tail(const struct pgjq_handler *h, char *buf, size_t size);

void pgjq_handler_free(struct pgjq_handler *h);

#endif
