#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"
#include "handler.h"

static void
set_nonblock_cloexec(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void
child(char *const argv[], const struct pgjq_handler_env *env, const int *fds, int nfds,
    int report)
{
	char buf[32];
	sigset_t none;
	int e;

	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);

	/*
	 * Lift every pipe end above 100 first, so placing one on 0-3 can
	 * never close another that happened to sit there.
	 */
	{
		int high[4];

		report = fcntl(report, F_DUPFD_CLOEXEC, 100);
		for (int i = 0; i < nfds; i++)
			if ((high[i] = fcntl(fds[i], F_DUPFD, 100)) < 0)
				_exit(127);
		for (int i = 0; i < nfds; i++)
			if (dup2(high[i], i) < 0)
				_exit(127);
		for (int fd = nfds; fd < 1024; fd++)
			if (fd != report)
				close(fd);
	}

	if (env->job_id != 0) {
		snprintf(buf, sizeof buf, "%" PRId64, env->job_id);
		setenv("JQ_JOB_ID", buf, 1);
		setenv("JQ_QUEUE", env->queue, 1);
		snprintf(buf, sizeof buf, "%d", env->attempt);
		setenv("JQ_ATTEMPT", buf, 1);
		snprintf(buf, sizeof buf, "%d", env->max_attempts);
		setenv("JQ_MAX_ATTEMPTS", buf, 1);
	}
	if (nfds > 3)
		setenv("JQ_PROGRESS_FD", "3", 1);
	if (env->database_url != NULL)
		setenv("JQ_DATABASE_URL", env->database_url, 1);
	if (env->schema != NULL)
		setenv("JQ_SCHEMA", env->schema, 1);

	execvp(argv[0], argv);
	e = errno;
	if (write(report, &e, sizeof e) != (ssize_t)sizeof e)
		_exit(127);
	_exit(127);
}

pid_t
pgjq_spawn(char *const argv[], const struct pgjq_handler_env *env, const int *fds, int nfds,
    int *exec_errno)
{
	struct pgjq_handler_env safe = *env;
	char *url = NULL;
	int report[2], e = 0;
	ssize_t n;
	pid_t pid;

	*exec_errno = 0;
	if (pipe(report) < 0)
		return -1;
	/*
	 * The handler gets the connection without its password, so that one
	 * which logs its environment or passes it on does not spread it; its
	 * own libpq finds the password as the worker's could have, in
	 * PGPASSFILE or ~/.pgpass.  A string that cannot be cleaned is not
	 * passed at all, nor the worker's own JQ_DATABASE_URL ("" is unset).
	 */
	if (env->database_url != NULL) {
		url = pgjq_conninfo_public(env->database_url);
		safe.database_url = url != NULL ? url : "";
	}
	fcntl(report[1], F_SETFD, FD_CLOEXEC);
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		child(argv, &safe, fds, nfds, report[1]);
	free(url);
	if (pid < 0) {
		e = errno;
		close(report[0]);
		close(report[1]);
		errno = e;
		return -1;
	}

	/* Also set here: the child's own setpgid may not have run yet when we signal. */
	setpgid(pid, pid);
	close(report[1]);
	/* EOF means exec succeeded; an int means it failed with that errno. */
	do
		n = read(report[0], &e, sizeof e);
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n == (ssize_t)sizeof e)
		*exec_errno = e;
	return pid;
}

int
pgjq_handler_start(struct pgjq_handler *h, char *const argv[],
    const struct pgjq_handler_env *env, const char *payload, size_t len)
{
	int in[2], out[2], err[2], progress[2];
	int e = 0;

	memset(h, 0, sizeof *h);
	h->in_fd = h->out_fd = h->err_fd = h->progress_fd = -1;
	if (pipe(in) < 0)
		return -1;
	if (pipe(out) < 0 || pipe(err) < 0 || pipe(progress) < 0) {
		e = errno;
		close(in[0]);
		close(in[1]);
		errno = e;
		return -1;
	}
	{
		int ends[4] = {in[0], out[1], err[1], progress[1]};

		h->pid = pgjq_spawn(argv, env, ends, 4, &h->exec_errno);
	}
	if (h->pid < 0) {
		e = errno;
		for (int i = 0; i < 2; i++) {
			close(in[i]);
			close(out[i]);
			close(err[i]);
			close(progress[i]);
		}
		errno = e;
		return -1;
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	close(progress[1]);
	h->in_fd = in[1];
	h->out_fd = out[0];
	h->err_fd = err[0];
	h->progress_fd = progress[0];
	set_nonblock_cloexec(h->in_fd);
	set_nonblock_cloexec(h->out_fd);
	set_nonblock_cloexec(h->err_fd);
	set_nonblock_cloexec(h->progress_fd);
	h->payload = payload;
	h->payload_len = len;
	if (h->exec_errno != 0)
		close_fd(&h->in_fd);
	return 0;
}

int
pgjq_handler_pollfds(const struct pgjq_handler *h, struct pollfd *pfd)
{
	int n = 0;

	if (h->in_fd >= 0)
		pfd[n++] = (struct pollfd){.fd = h->in_fd, .events = POLLOUT};
	if (h->out_fd >= 0)
		pfd[n++] = (struct pollfd){.fd = h->out_fd, .events = POLLIN};
	if (h->err_fd >= 0)
		pfd[n++] = (struct pollfd){.fd = h->err_fd, .events = POLLIN};
	if (h->progress_fd >= 0)
		pfd[n++] = (struct pollfd){.fd = h->progress_fd, .events = POLLIN};
	return n;
}

static void
write_payload(struct pgjq_handler *h)
{
	while (h->payload_off < h->payload_len) {
		ssize_t n = write(h->in_fd, h->payload + h->payload_off, h->payload_len - h->payload_off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			break; /* EPIPE: the handler does not read its payload, which is its business */
		}
		h->payload_off += (size_t)n;
	}
	close_fd(&h->in_fd);
}

/* Splits bytes into lines for on_line; a line longer than 4 KiB is cut there. */
static void
feed_lines(struct pgjq_buf *line, const char *p, size_t n, bool is_progress,
    pgjq_handler_line_fn *on_line, void *ctx)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' || line->len >= 4096) {
			on_line(ctx, is_progress, line->data ? line->data : "");
			pgjq_buf_reset(line);
			if (p[i] == '\n')
				continue;
		}
		pgjq_buf_putc(line, p[i]);
	}
}

static void
read_fd(struct pgjq_handler *h, int *fd, pgjq_handler_line_fn *on_line, void *ctx)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(*fd, buf, sizeof buf);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* EOF: a last line without a newline still counts. */
			if (*fd == h->err_fd && h->err_line.len > 0)
				feed_lines(&h->err_line, "\n", 1, false, on_line, ctx);
			if (*fd == h->progress_fd && h->progress_line.len > 0)
				feed_lines(&h->progress_line, "\n", 1, true, on_line, ctx);
			close_fd(fd);
			return;
		}
		if (*fd == h->out_fd) {
			size_t room = PGJQ_RESULT_MAX - h->out.len;

			if ((size_t)n > room)
				h->out_truncated = true;
			pgjq_buf_append(&h->out, buf, (size_t)n < room ? (size_t)n : room);
		} else if (*fd == h->err_fd) {
			pgjq_tail_add(&h->err_tail, buf, (size_t)n);
			feed_lines(&h->err_line, buf, (size_t)n, false, on_line, ctx);
		} else {
			feed_lines(&h->progress_line, buf, (size_t)n, true, on_line, ctx);
		}
	}
}

void
pgjq_handler_io(struct pgjq_handler *h, const struct pollfd *pfd, int n,
    pgjq_handler_line_fn *on_line, void *ctx)
{
	for (int i = 0; i < n; i++) {
		if (pfd[i].revents == 0)
			continue;
		if (pfd[i].fd == h->in_fd)
			write_payload(h);
		else if (pfd[i].fd == h->out_fd)
			read_fd(h, &h->out_fd, on_line, ctx);
		else if (pfd[i].fd == h->err_fd)
			read_fd(h, &h->err_fd, on_line, ctx);
		else if (pfd[i].fd == h->progress_fd)
			read_fd(h, &h->progress_fd, on_line, ctx);
	}
}

bool
pgjq_handler_done(const struct pgjq_handler *h)
{
	return h->pid == 0 && h->out_fd < 0 && h->err_fd < 0 && h->progress_fd < 0;
}

void
pgjq_handler_close_pipes(struct pgjq_handler *h)
{
	close_fd(&h->in_fd);
	close_fd(&h->out_fd);
	close_fd(&h->err_fd);
	close_fd(&h->progress_fd);
}

void
pgjq_handler_kill(const struct pgjq_handler *h, int sig)
{
	if (h->pid > 0)
		kill(-h->pid, sig);
}

void
pgjq_tail_add(struct pgjq_tail *t, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		t->ring[t->total++ % PGJQ_ERROR_TAIL] = p[i];
}

void
pgjq_tail_copy(const struct pgjq_tail *t, char *buf, size_t size)
{
	size_t n = t->total < PGJQ_ERROR_TAIL ? t->total : PGJQ_ERROR_TAIL;
	size_t start = t->total - n, j = 0;

	if (size == 0)
		return;
	for (size_t i = 0; i < n && j + 1 < size; i++) {
		char c = t->ring[(start + i) % PGJQ_ERROR_TAIL];

		buf[j++] = c == '\0' ? ' ' : c;
	}
	/* Trailing newlines say nothing. */
	while (j > 0 && (buf[j - 1] == '\n' || buf[j - 1] == '\r'))
		j--;
	buf[j] = '\0';
}

void
pgjq_handler_error_tail(const struct pgjq_handler *h, char *buf, size_t size)
{
	pgjq_tail_copy(&h->err_tail, buf, size);
}

void
pgjq_handler_free(struct pgjq_handler *h)
{
	pgjq_handler_close_pipes(h);
	pgjq_buf_free(&h->out);
	pgjq_buf_free(&h->err_line);
	pgjq_buf_free(&h->progress_line);
}
