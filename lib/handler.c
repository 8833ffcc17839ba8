/* For posix_spawn_file_actions_addclosefrom_np, a GNU extension. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conninfo.h"
#include "handler.h"

extern char **environ;

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

/*
 * The handler's environment: the worker's own, less any JQ_ variable the
 * contract sets, plus those.  Built before the child exists, so the child
 * runs no allocator (it may share our memory, and must not take a lock
 * another thread of a library holds).
 */
struct envp {
	char **vars;
	char *own[9];  /* the JQ_ strings, owned */
	int nown;
};

static void
envp_add(struct envp *e, size_t *n, char *var)
{
	e->own[e->nown++] = var;
	e->vars[(*n)++] = var;
}

static bool
contract_var(const char *var)
{
	static const char *const names[] = {
		"JQ_JOB_ID=", "JQ_QUEUE=", "JQ_ATTEMPT=", "JQ_MAX_ATTEMPTS=",
		"JQ_PROGRESS_FD=", "JQ_DATABASE_URL=", "JQ_SCHEMA=", "JQ_SCHEDULE=",
		"JQ_SCHEDULED_FOR=",
	};

	if (strncmp(var, "JQ_", 3) != 0)
		return false;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strncmp(var, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

static void
envp_build(struct envp *e, const struct pgjq_handler_env *env, bool progress_fd,
    const char *database_url)
{
	size_t n = 0, count = 0;

	while (environ[count] != NULL)
		count++;
	e->nown = 0;
	e->vars = pgjq_xcalloc(count + 10, sizeof *e->vars);
	for (size_t i = 0; i < count; i++)
		if (!contract_var(environ[i]))
			e->vars[n++] = environ[i];
	if (env->job_id != 0) {
		envp_add(e, &n, pgjq_xasprintf("JQ_JOB_ID=%" PRId64, env->job_id));
		envp_add(e, &n, pgjq_xasprintf("JQ_QUEUE=%s", env->queue));
		envp_add(e, &n, pgjq_xasprintf("JQ_ATTEMPT=%d", env->attempt));
		envp_add(e, &n, pgjq_xasprintf("JQ_MAX_ATTEMPTS=%d", env->max_attempts));
		if (env->schedule != NULL && env->scheduled_for != NULL) {
			envp_add(e, &n, pgjq_xasprintf("JQ_SCHEDULE=%s", env->schedule));
			envp_add(e, &n, pgjq_xasprintf("JQ_SCHEDULED_FOR=%s", env->scheduled_for));
		}
	}
	if (progress_fd)
		envp_add(e, &n, pgjq_xstrdup("JQ_PROGRESS_FD=3"));
	/* A string that cannot be cleaned is not passed at all (see pgjq_spawn). */
	if (database_url != NULL)
		envp_add(e, &n, pgjq_xasprintf("JQ_DATABASE_URL=%s", database_url));
	if (env->schema != NULL)
		envp_add(e, &n, pgjq_xasprintf("JQ_SCHEMA=%s", env->schema));
	e->vars[n] = NULL;
}

static void
envp_free(struct envp *e)
{
	for (int i = 0; i < e->nown; i++)
		free(e->own[i]);
	free(e->vars);
}

#ifdef HAVE_POSIX_SPAWN_FILE_ACTIONS_ADDCLOSEFROM_NP
/*
 * posix_spawn, not fork: glibc's creates the child without copying the
 * worker's page tables (35 libraries through libpq and libcurl), which
 * was most of the cost of an exec handler, and reports a failed exec as
 * its return value.
 */
static int
start_child(pid_t *pid, char *const argv[], const int *src, int nfds, char *const envp[])
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	int e;

	if ((e = posix_spawn_file_actions_init(&actions)) != 0)
		return e;
	if ((e = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&actions);
		return e;
	}
	for (int i = 0; i < nfds && e == 0; i++)
		e = posix_spawn_file_actions_adddup2(&actions, src[i], i);
	if (e == 0)
		e = posix_spawn_file_actions_addclosefrom_np(&actions, nfds);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGCHLD);
	if (e == 0)
		e = posix_spawnattr_setflags(&attr,
		    POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (e == 0)
		e = posix_spawnattr_setpgroup(&attr, 0);
	if (e == 0)
		e = posix_spawnattr_setsigmask(&attr, &none);
	if (e == 0)
		e = posix_spawnattr_setsigdefault(&attr, &dfl);
	if (e == 0)
		e = posix_spawnp(pid, argv[0], &actions, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&actions);
	return e;
}
#else
/* Where posix_spawn cannot close the other descriptors: fork and exec. */
static int
start_child(pid_t *pid, char *const argv[], const int *src, int nfds, char *const envp[])
{
	long max = sysconf(_SC_OPEN_MAX);
	int report[2], e = 0;
	ssize_t n;

	if (max < 0 || max > 65536)
		max = 65536;
	if (pipe(report) < 0)
		return errno;
	fcntl(report[1], F_SETFD, FD_CLOEXEC);
	fflush(NULL);
	*pid = fork();
	if (*pid < 0) {
		e = errno;
		close(report[0]);
		close(report[1]);
		return e;
	}
	if (*pid == 0) {
		/* Only async-signal-safe calls from here. */
		sigset_t none;

		setpgid(0, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		report[1] = fcntl(report[1], F_DUPFD_CLOEXEC, nfds);
		for (int i = 0; i < nfds; i++)
			if (dup2(src[i], i) < 0)
				_exit(127);
		for (int fd = nfds; fd < max; fd++)
			if (fd != report[1])
				close(fd);
		environ = (char **)envp;
		execvp(argv[0], argv);
		e = errno;
		if (write(report[1], &e, sizeof e) != (ssize_t)sizeof e)
			_exit(127);
		_exit(127);
	}
	/* Also here: the child's own setpgid may not have run yet when we signal. */
	setpgid(*pid, *pid);
	close(report[1]);
	/* EOF means exec succeeded; an int means it failed with that errno. */
	do
		n = read(report[0], &e, sizeof e);
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n != (ssize_t)sizeof e)
		return 0;
	while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
		;
	return e;
}
#endif

pid_t
pgjq_spawn(char *const argv[], const struct pgjq_handler_env *env, const int *fds, int nfds)
{
	int src[4], moved[4], e = 0;
	char *url = NULL;
	struct envp envp;
	pid_t pid = -1;

	/*
	 * The handler gets the connection without its password, so that one
	 * which logs its environment or passes it on does not spread it; its
	 * own libpq finds the password as the worker's could have, in
	 * PGPASSFILE or ~/.pgpass.  A string that cannot be cleaned is not
	 * passed at all, nor the worker's own JQ_DATABASE_URL.
	 */
	if (env->database_url != NULL)
		url = pgjq_conninfo_public(env->database_url);
	/*
	 * A pipe end on a descriptor below nfds (the worker started with
	 * stdin closed, say) would be overwritten by the dup2 that places
	 * another: lift such ends first.
	 */
	for (int i = 0; i < nfds; i++) {
		moved[i] = -1;
		src[i] = fds[i];
		if (fds[i] < nfds && (src[i] = moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, nfds)) < 0)
			e = errno;
	}
	if (e == 0) {
		envp_build(&envp, env, nfds > 3, url);
		e = start_child(&pid, argv, src, nfds, envp.vars);
		envp_free(&envp);
	}
	for (int i = 0; i < nfds; i++)
		if (moved[i] >= 0)
			close(moved[i]);
	free(url);
	if (e != 0) {
		errno = e;
		return -1;
	}
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

		h->pid = pgjq_spawn(argv, env, ends, 4);
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

/* How many reads of a pipe one call of pgjq_handler_io may do. */
#define PGJQ_READS_PER_POLL 4

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

	/*
	 * A few reads a turn of the loop, not until the pipe is empty: a
	 * handler that writes as fast as it is read must not keep the loop,
	 * and the other slots, waiting.  poll says again what is left.
	 */
	for (int reads = 0; reads < PGJQ_READS_PER_POLL; reads++) {
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
