#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "duration.h"
#include "job.h"
#include "pipe.h"

/* Buffers that grew past this for one big line are given back after it. */
#define KEEP_BUF (64 * 1024)
/* Stderr lines are passed on in pieces of at most this. */
#define ERR_LINE_MAX 4096

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void
done_with(struct pgjq_buf *b)
{
	if (b->cap > KEEP_BUF)
		pgjq_buf_free(b);
	else
		pgjq_buf_reset(b);
}

void
pgjq_pipe_init(struct pgjq_pipe *p)
{
	memset(p, 0, sizeof *p);
	p->in_fd = p->out_fd = p->err_fd = -1;
}

void
pgjq_pipe_reset(struct pgjq_pipe *p)
{
	pgjq_pipe_close(p);
	p->pid = 0;
	p->status = 0;
	p->exec_errno = 0;
	p->job = 0;
	p->nqueued = 0;
	p->answered = 0;
	p->wrote_since_send = false;
	p->stdout_ignored = false;
	p->overlong = false;
	p->in_off = 0;
	p->err_tail.total = 0;
	done_with(&p->in);
	done_with(&p->line);
	done_with(&p->err_line);
}

int
pgjq_pipe_start(struct pgjq_pipe *p, char *const argv[], const struct pgjq_handler_env *env)
{
	int fds[6] = {-1, -1, -1, -1, -1, -1}, e;

	pgjq_pipe_reset(p);
	for (int i = 0; i < 3; i++)
		if (pipe(fds + 2 * i) < 0)
			goto fail;
	{
		/* The child's ends: stdin's read end, stdout's and stderr's write ends. */
		int ends[3] = {fds[0], fds[3], fds[5]};

		p->pid = pgjq_spawn(argv, env, ends, 3);
	}
	if (p->pid < 0) {
		p->pid = 0;
		goto fail;
	}
	close(fds[0]);
	close(fds[3]);
	close(fds[5]);
	p->in_fd = fds[1];
	p->out_fd = fds[2];
	p->err_fd = fds[4];
	for (int i = 0; i < 3; i++) {
		int fd = i == 0 ? p->in_fd : i == 1 ? p->out_fd : p->err_fd;

		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	return 0;
fail:
	e = errno;
	for (int i = 0; i < 6; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	errno = e;
	return -1;
}

bool
pgjq_pipe_ready(const struct pgjq_pipe *p)
{
	return p->pid != 0 && p->in_fd >= 0 && p->job == 0 && !p->stdout_ignored && p->exec_errno == 0;
}

bool
pgjq_pipe_can_queue(const struct pgjq_pipe *p, int depth)
{
	if (depth > PGJQ_PIPE_DEPTH_MAX)
		depth = PGJQ_PIPE_DEPTH_MAX;
	return p->pid != 0 && p->in_fd >= 0 && p->job != 0 && !p->stdout_ignored && p->exec_errno == 0 &&
	    1 + p->nqueued < depth;
}

int
pgjq_pipe_unqueue(struct pgjq_pipe *p, int64_t *ids, int n)
{
	int k = p->nqueued < n ? p->nqueued : n;

	memcpy(ids, p->queued, (size_t)k * sizeof *ids);
	p->nqueued = 0;
	return k;
}

static void
flush_in(struct pgjq_pipe *p)
{
	while (p->in_fd >= 0 && p->in_off < p->in.len) {
		ssize_t n = write(p->in_fd, p->in.data + p->in_off, p->in.len - p->in_off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			/* EPIPE: it closed stdin or died; how it ends tells the job's fate. */
			close_fd(&p->in_fd);
			break;
		}
		p->in_off += (size_t)n;
	}
	p->in_off = 0;
	done_with(&p->in);
}

void
pgjq_pipe_send(struct pgjq_pipe *p, int64_t id, const char *queue, int attempt,
    int max_attempts, const char *payload, size_t len)
{
	pgjq_pipe_send_scheduled(p, id, queue, attempt, max_attempts, NULL, NULL, payload, len);
}

void
pgjq_pipe_send_scheduled(struct pgjq_pipe *p, int64_t id, const char *queue, int attempt,
    int max_attempts, const char *schedule, const char *scheduled_for, const char *payload,
    size_t len)
{
	char head[64 + PGJQ_QUEUE_MAX * 2 + 128];
	int n;

	/*
	 * Written by hand, not by jansson: the payload goes on as PostgreSQL
	 * printed it, numbers exact (jansson would round the big ones) and
	 * without being parsed once more per job.  jsonb's text never holds
	 * a newline, and a queue name needs no escaping (job.h), so this is
	 * one line of JSON.  "id" comes first and "payload" last, as the
	 * manual promises, for handlers that pick the id out with a pattern.
	 */
	if (schedule != NULL && scheduled_for != NULL)
		n = snprintf(head, sizeof head, "{\"id\":%" PRId64 ",\"queue\":\"%s\",\"attempt\":%d,"
		    "\"max_attempts\":%d,\"schedule\":\"%.64s\",\"scheduled_for\":\"%.40s\",\"payload\":",
		    id, queue, attempt, max_attempts, schedule, scheduled_for);
	else
		n = snprintf(head, sizeof head, "{\"id\":%" PRId64 ",\"queue\":\"%s\",\"attempt\":%d,"
		    "\"max_attempts\":%d,\"payload\":", id, queue, attempt, max_attempts);
	if (p->job != 0 && p->nqueued < PGJQ_PIPE_DEPTH_MAX - 1) {
		p->queued[p->nqueued++] = id;
	} else {
		p->job = id;
		p->err_tail.total = 0;
		p->wrote_since_send = false;
	}
	if (p->in_fd < 0)
		return; /* it cannot read; its exit will fail the job */
	pgjq_buf_reserve(&p->in, (size_t)n + len + 2);
	pgjq_buf_append(&p->in, head, (size_t)n);
	pgjq_buf_append(&p->in, payload, len);
	pgjq_buf_append(&p->in, "}\n", 2);
	flush_in(p);
}

int
pgjq_pipe_pollfds(const struct pgjq_pipe *p, struct pollfd *pfd)
{
	int n = 0;

	if (p->in_fd >= 0 && p->in_off < p->in.len)
		pfd[n++] = (struct pollfd){.fd = p->in_fd, .events = POLLOUT};
	if (p->out_fd >= 0)
		pfd[n++] = (struct pollfd){.fd = p->out_fd, .events = POLLIN};
	if (p->err_fd >= 0)
		pfd[n++] = (struct pollfd){.fd = p->err_fd, .events = POLLIN};
	return n;
}

/* ------------------------------------------------------------ answers */

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t
skip_space(const char *s, size_t i, size_t len)
{
	while (i < len && is_space(s[i]))
		i++;
	return i;
}

/* s[i] opens a string: the index just past its closing quote. */
static size_t
skip_string(const char *s, size_t i, size_t len)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return len;
}

/* s[i] starts a value of valid JSON: the index just past it. */
static size_t
skip_value(const char *s, size_t i, size_t len)
{
	int depth = 0;

	while (i < len) {
		char c = s[i];

		if (c == '"') {
			i = skip_string(s, i, len);
			if (depth == 0)
				return i;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return i;  /* a number or literal ends with its object */
			if (--depth == 0)
				return i + 1;
		} else if (depth == 0 && (c == ',' || is_space(c))) {
			return i;
		}
		i++;
	}
	return i;
}

/*
 * Where the value of the top-level member key lies in s, an object that
 * jansson has already found valid.  The result is stored as the handler
 * wrote it, as with an exec handler's stdout: jansson would round big
 * numbers.  False when the key is not there as written (it might be
 * spelt with escapes); the caller then falls back on jansson.
 */
static bool
member_span(const char *s, size_t len, const char *key, size_t *from, size_t *to)
{
	size_t klen = strlen(key), i = skip_space(s, 0, len);

	if (i >= len || s[i] != '{')
		return false;
	for (i++;;) {
		size_t k0, k1;

		i = skip_space(s, i, len);
		if (i >= len || s[i] != '"')
			return false;
		k0 = i + 1;
		i = skip_string(s, i, len);
		k1 = i - 1;
		i = skip_space(s, i, len);
		if (i >= len || s[i] != ':')
			return false;
		*from = i = skip_space(s, i + 1, len);
		*to = i = skip_value(s, i, len);
		if (k1 - k0 == klen && memcmp(s + k0, key, klen) == 0)
			return true;
		i = skip_space(s, i, len);
		if (i >= len || s[i] != ',')
			return false;
		i++;
	}
}

static void
say(struct pgjq_pipe *p, enum pgjq_pipe_kind kind, const char *line, size_t len,
    pgjq_pipe_msg_fn *on_msg, void *ctx, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/*
 * Reports a line that is wrong, what is wrong with it, and its start (the
 * handler's own words help most).  After a protocol error the handler's
 * answers could belong to any job: it is not listened to again.
 */
static void
say(struct pgjq_pipe *p, enum pgjq_pipe_kind kind, const char *line, size_t len,
    pgjq_pipe_msg_fn *on_msg, void *ctx, const char *fmt, ...)
{
	struct pgjq_pipe_msg m = {.kind = kind, .id = p->job};
	char why[512];
	char *start = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (line != NULL && n >= 0 && (size_t)n < sizeof why - 8) {
		size_t show = len > 80 ? 80 : len;

		start = pgjq_text_clean(line, show);
		snprintf(why + n, sizeof why - (size_t)n, ": '%s%s'", start, show < len ? "..." : "");
		free(start);
	}
	if (kind == PGJQ_PIPE_BAD)
		p->stdout_ignored = true;
	m.text = why;
	on_msg(ctx, &m);
}

/* Where job id waits behind the oldest, or -1. */
static int
queued_at(const struct pgjq_pipe *p, int64_t id)
{
	for (int i = 0; i < p->nqueued; i++)
		if (p->queued[i] == id)
			return i;
	return -1;
}

/*
 * Job id is answered.  If it was the oldest, the next becomes the one
 * the handler works on, and what the handler writes from now on (its
 * stderr's tail, whether it spoke) is about that one.
 */
static void
answered(struct pgjq_pipe *p, int64_t id)
{
	int at = queued_at(p, id);

	p->answered++;
	if (at >= 0) {
		/* Answered out of order: a handler that works on several at once. */
		memmove(p->queued + at, p->queued + at + 1, (size_t)(p->nqueued - at - 1) * sizeof *p->queued);
		p->nqueued--;
		return;
	}
	p->job = 0;
	if (p->nqueued > 0) {
		p->job = p->queued[0];
		memmove(p->queued, p->queued + 1, (size_t)(p->nqueued - 1) * sizeof *p->queued);
		p->nqueued--;
		p->err_tail.total = 0;
		p->wrote_since_send = false;
	}
}

/* One line of stdout: an answer or a progress report about a job in flight. */
static void
take_line(struct pgjq_pipe *p, const char *s, size_t len, pgjq_pipe_msg_fn *on_msg, void *ctx)
{
	struct pgjq_pipe_msg m = {.id = p->job};
	json_error_t e;
	json_t *o, *v, *status;
	char *dumped = NULL;
	double id;

	if (p->stdout_ignored || skip_space(s, 0, len) == len)
		return; /* a blank line says nothing, and breaks nothing either */
	o = json_loadb(s, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &e);
	if (o == NULL) {
		say(p, PGJQ_PIPE_BAD, s, len, on_msg, ctx, "not JSON (%s)", e.text);
		return;
	}
	if (!json_is_object(o)) {
		say(p, PGJQ_PIPE_BAD, s, len, on_msg, ctx, "not a JSON object");
		goto out;
	}
	/* Integers were read as reals (for big ones in results): exact up to 2^53, beyond any id. */
	v = json_object_get(o, "id");
	id = json_is_number(v) ? json_number_value(v) : -1;
	/* In range before the cast: a double past int64_t's range does not convert. */
	if (id < 1 || id > 9007199254740992.0 || id != (double)(int64_t)id) {
		say(p, PGJQ_PIPE_BAD, s, len, on_msg, ctx, "no job id in \"id\"");
		goto out;
	}
	if (p->job == 0) {
		say(p, PGJQ_PIPE_BAD, s, len, on_msg, ctx, "it is about job %" PRId64 ", but no job is in flight",
		    (int64_t)id);
		goto out;
	}
	if ((int64_t)id != p->job && queued_at(p, (int64_t)id) < 0) {
		say(p, PGJQ_PIPE_BAD, s, len, on_msg, ctx, "it is about job %" PRId64 ", but job %" PRId64
		    " is in flight", (int64_t)id, p->job);
		goto out;
	}
	m.id = (int64_t)id;

	status = json_object_get(o, "status");
	if (status == NULL) {
		v = json_object_get(o, "progress");
		if (v == NULL) {
			say(p, PGJQ_PIPE_BAD, s, len, on_msg, ctx, "neither \"status\" nor \"progress\"");
			goto out;
		}
		if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 100) {
			say(p, PGJQ_PIPE_BAD_PROGRESS, s, len, on_msg, ctx, "\"progress\" is not a number from 0 to 100");
			goto out;
		}
		m.kind = PGJQ_PIPE_PROGRESS;
		m.progress = (int)json_number_value(v);
		v = json_object_get(o, "message");
		if (v != NULL && !json_is_null(v) && !json_is_string(v)) {
			say(p, PGJQ_PIPE_BAD_PROGRESS, s, len, on_msg, ctx, "\"message\" is not a string");
			goto out;
		}
		m.text = json_is_string(v) ? json_string_value(v) : NULL;
		on_msg(ctx, &m);
		goto out;
	}

	if (json_is_string(status) && strcmp(json_string_value(status), "completed") == 0) {
		size_t from, to;

		m.kind = PGJQ_PIPE_COMPLETED;
		v = json_object_get(o, "result");
		if (v == NULL) {
			m.text = "null";
			m.len = 4;
		} else if (member_span(s, len, "result", &from, &to)) {
			m.text = s + from;
			m.len = to - from;
		} else {
			dumped = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(17));
			m.text = dumped;
			m.len = strlen(dumped);
		}
	} else if (json_is_string(status) && strcmp(json_string_value(status), "failed") == 0) {
		m.kind = PGJQ_PIPE_FAILED;
		v = json_object_get(o, "error");
		if (v != NULL && !json_is_null(v) && !json_is_string(v)) {
			say(p, PGJQ_PIPE_BAD, s, len, on_msg, ctx, "\"error\" is not a string");
			goto out;
		}
		m.text = json_is_string(v) ? json_string_value(v) : NULL;
		v = json_object_get(o, "retry");
		if (v != NULL && !json_is_boolean(v)) {
			say(p, PGJQ_PIPE_BAD, s, len, on_msg, ctx, "\"retry\" is not true or false");
			goto out;
		}
		m.retry = v == NULL || json_is_true(v);
	} else if (json_is_string(status) && strcmp(json_string_value(status), "snooze") == 0) {
		const char *why;

		m.kind = PGJQ_PIPE_SNOOZE;
		v = json_object_get(o, "delay");
		if (json_is_number(v) && json_number_value(v) >= 0 &&
		    json_number_value(v) * 1e6 < (double)PGJQ_DURATION_MAX_US) {
			m.delay_us = (int64_t)(json_number_value(v) * 1e6);
		} else if (!json_is_string(v) || pgjq_parse_duration(json_string_value(v), &m.delay_us, &why) != 0) {
			say(p, PGJQ_PIPE_BAD, s, len, on_msg, ctx,
			    "\"delay\" is not a duration (such as \"30s\") nor a number of seconds");
			goto out;
		}
	} else {
		say(p, PGJQ_PIPE_BAD, s, len, on_msg, ctx,
		    "\"status\" is neither \"completed\" nor \"failed\" (nor \"snooze\")");
		goto out;
	}
	answered(p, m.id);
	on_msg(ctx, &m);
out:
	free(dumped);
	json_decref(o);
}

/* Splits stdout into lines; most come whole in one read and are parsed where they lie. */
static void
feed_out(struct pgjq_pipe *p, const char *s, size_t n, pgjq_pipe_msg_fn *on_msg, void *ctx)
{
	while (n > 0) {
		const char *nl = memchr(s, '\n', n);
		size_t k = nl != NULL ? (size_t)(nl - s) : n;

		if (!p->overlong && p->line.len + k > PGJQ_PIPE_LINE_MAX) {
			p->overlong = true;
			done_with(&p->line);
		}
		if (nl == NULL) {
			if (!p->overlong)
				pgjq_buf_append(&p->line, s, k);
			return;
		}
		if (p->overlong) {
			say(p, PGJQ_PIPE_BAD, NULL, 0, on_msg, ctx, "a line longer than %d bytes",
			    PGJQ_PIPE_LINE_MAX);
			p->overlong = false;
		} else if (p->line.len == 0) {
			take_line(p, s, k, on_msg, ctx);
		} else {
			pgjq_buf_append(&p->line, s, k);
			take_line(p, p->line.data, p->line.len, on_msg, ctx);
			done_with(&p->line);
		}
		s += k + 1;
		n -= k + 1;
	}
}

static void
read_out(struct pgjq_pipe *p, pgjq_pipe_msg_fn *on_msg, void *ctx)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(p->out_fd, buf, sizeof buf);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* EOF: a last line without a newline still counts. */
			if (p->line.len > 0 || p->overlong)
				feed_out(p, "\n", 1, on_msg, ctx);
			close_fd(&p->out_fd);
			return;
		}
		p->wrote_since_send = true;
		feed_out(p, buf, (size_t)n, on_msg, ctx);
		/* A short read emptied the pipe: spare the read that would say EAGAIN. */
		if ((size_t)n < sizeof buf)
			return;
	}
}

static void
read_err(struct pgjq_pipe *p, pgjq_pipe_err_fn *on_err, void *ctx)
{
	char buf[16384];

	/* A bounded share per turn of the loop: a flood on stderr must not stall the other slots. */
	for (int reads = 0; reads < 16; reads++) {
		ssize_t n = read(p->err_fd, buf, sizeof buf);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			if (p->err_line.len > 0)
				on_err(ctx, p->err_line.data);
			done_with(&p->err_line);
			close_fd(&p->err_fd);
			return;
		}
		p->wrote_since_send = true;
		pgjq_tail_add(&p->err_tail, buf, (size_t)n);
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' || p->err_line.len >= ERR_LINE_MAX) {
				on_err(ctx, p->err_line.data != NULL ? p->err_line.data : "");
				pgjq_buf_reset(&p->err_line);
				if (buf[i] == '\n')
					continue;
			}
			pgjq_buf_putc(&p->err_line, buf[i]);
		}
		if ((size_t)n < sizeof buf)
			return;
	}
}

void
pgjq_pipe_io(struct pgjq_pipe *p, const struct pollfd *pfd, int n,
    pgjq_pipe_msg_fn *on_msg, pgjq_pipe_err_fn *on_err, void *ctx)
{
	short in = 0, out = 0, err = 0;

	for (int i = 0; i < n; i++) {
		if (pfd[i].fd < 0)
			continue;
		if (pfd[i].fd == p->in_fd)
			in = pfd[i].revents;
		else if (pfd[i].fd == p->out_fd)
			out = pfd[i].revents;
		else if (pfd[i].fd == p->err_fd)
			err = pfd[i].revents;
	}
	/* Stderr first: what a handler says about a job should come before its answer ends it. */
	if (err != 0 && p->err_fd >= 0)
		read_err(p, on_err, ctx);
	if (in != 0 && p->in_fd >= 0)
		flush_in(p);
	if (out != 0 && p->out_fd >= 0)
		read_out(p, on_msg, ctx);
}

void
pgjq_pipe_close_stdin(struct pgjq_pipe *p)
{
	close_fd(&p->in_fd);
	p->in_off = 0;
	done_with(&p->in);
}

void
pgjq_pipe_kill(struct pgjq_pipe *p, int sig)
{
	p->stdout_ignored = true;
	if (p->pid > 0)
		kill(-p->pid, sig);
}

void
pgjq_pipe_reaped(struct pgjq_pipe *p, int status)
{
	p->pid = 0;
	p->status = status;
	/* Nobody reads stdin now; a job still in its buffer is lost with it. */
	pgjq_pipe_close_stdin(p);
}

bool
pgjq_pipe_gone(const struct pgjq_pipe *p)
{
	return p->pid == 0 && p->out_fd < 0 && p->err_fd < 0;
}

void
pgjq_pipe_close(struct pgjq_pipe *p)
{
	close_fd(&p->in_fd);
	close_fd(&p->out_fd);
	close_fd(&p->err_fd);
}

void
pgjq_pipe_error_tail(const struct pgjq_pipe *p, char *buf, size_t size)
{
	pgjq_tail_copy(&p->err_tail, buf, size);
}

void
pgjq_pipe_free(struct pgjq_pipe *p)
{
	pgjq_pipe_close(p);
	pgjq_buf_free(&p->in);
	pgjq_buf_free(&p->line);
	pgjq_buf_free(&p->err_line);
}
