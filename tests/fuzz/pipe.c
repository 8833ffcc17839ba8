/*
 * Fuzz target: the --pipe protocol (lib/pipe.c): what a persistent
 * handler writes on its stdout, and on its stderr, read through real
 * pipes as the worker reads them.
 *
 * Input: byte 0 picks the job in flight (0: none); byte 1 says how many
 * of the following bytes go to stderr; the rest is stdout.  Whatever is
 * written, the pipe only reports messages about the job in flight, with
 * sane fields, at most one answer per job, and nothing after a protocol
 * error.
 */
#include "config.h"

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "job.h"
#include "jsonstream.h"
#include "pipe.h"

struct seen {
	int64_t job;              /* in flight when the input began */
	int answers, bad;
};

static void
on_msg(void *ctx, const struct pgjq_pipe_msg *m)
{
	struct seen *s = ctx;

	FUZZ_CHECK(s->bad == 0);  /* deaf after a protocol error */
	switch (m->kind) {
	case PGJQ_PIPE_COMPLETED: {
		char why[256];
		long errline;
		json_t *v = pgjq_json_parse(m->text, m->len, JSON_DECODE_INT_AS_REAL, 1,
		    why, sizeof why, &errline);

		FUZZ_CHECK(v != NULL);
		json_decref(v);
	}
		/* FALLTHROUGH */
	case PGJQ_PIPE_FAILED:
		FUZZ_CHECK(s->job != 0 && m->id == s->job);
		FUZZ_CHECK(++s->answers == 1);
		break;
	case PGJQ_PIPE_PROGRESS:
		FUZZ_CHECK(s->job != 0 && m->id == s->job && s->answers == 0);
		FUZZ_CHECK(m->progress >= 0 && m->progress <= 100);
		FUZZ_CHECK(m->text == NULL || pgjq_utf8_valid(m->text, strlen(m->text)));
		break;
	case PGJQ_PIPE_BAD_PROGRESS:
	case PGJQ_PIPE_BAD:
		FUZZ_CHECK(m->text != NULL && *m->text != '\0');
		/* The quoted start of the line is cleaned for people. */
		FUZZ_CHECK(pgjq_utf8_valid(m->text, strlen(m->text)));
		if (m->kind == PGJQ_PIPE_BAD)
			s->bad++;
		break;
	default:
		FUZZ_CHECK(!"a kind of message that does not exist");
	}
}

static void
on_err(void *ctx, const char *line)
{
	(void)ctx;
	FUZZ_CHECK(line != NULL);
}

/* Lets the pipe read what is waiting. */
static void
pump(struct pgjq_pipe *p, struct seen *s)
{
	struct pollfd pfd[3];
	int n = pgjq_pipe_pollfds(p, pfd);

	if (n > 0 && poll(pfd, (nfds_t)n, 0) > 0)
		pgjq_pipe_io(p, pfd, n, on_msg, on_err, s);
}

/* Writes len bytes to fd in pieces a pipe holds, letting p read as it goes. */
static void
feed(struct pgjq_pipe *p, struct seen *s, int fd, const uint8_t *b, size_t len)
{
	while (len > 0) {
		size_t k = len < 4096 ? len : 4096;

		if (write(fd, b, k) != (ssize_t)k)
			abort();
		pump(p, s);
		b += k;
		len -= k;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgjq_pipe p;
	struct seen s = {0};
	int out[2], err[2];
	size_t nerr;
	char tail[256];

	if (size < 2)
		return 0;
	pgjq_pipe_init(&p);
	if (pipe(out) < 0 || pipe(err) < 0)
		abort();
	p.pid = 1; /* pretend: nothing here signals or reaps it */
	p.out_fd = out[0];
	p.err_fd = err[0];
	fcntl(p.out_fd, F_SETFL, O_NONBLOCK);
	fcntl(p.err_fd, F_SETFL, O_NONBLOCK);
	p.job = s.job = data[0];
	nerr = data[1] < size - 2 ? data[1] : size - 2;
	data += 2;
	size -= 2;

	feed(&p, &s, err[1], data, nerr);
	feed(&p, &s, out[1], data + nerr, size - nerr);
	close(out[1]);
	close(err[1]);
	for (int i = 0; i < 4 && (p.out_fd >= 0 || p.err_fd >= 0); i++)
		pump(&p, &s);
	FUZZ_CHECK(p.out_fd < 0 && p.err_fd < 0);
	FUZZ_CHECK(s.answers == 0 ? p.job == s.job : p.job == 0);
	pgjq_pipe_error_tail(&p, tail, sizeof tail);
	FUZZ_CHECK(strlen(tail) < sizeof tail);
	p.pid = 0;
	pgjq_pipe_close(&p);
	pgjq_pipe_free(&p);
	return 0;
}
