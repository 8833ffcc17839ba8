/*
 * Unit tests for lib/pipe.c: the --pipe protocol, line by line, through
 * real pipes but with no process at the other end.
 */
#include "config.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipe.h"
#include "tap.h"

struct got {
	enum pgjq_pipe_kind kind;
	int64_t id;
	char *text;               /* a copy; NULL if the message had none */
	bool retry;
	int progress;
	int64_t delay_us;
};

static struct got msgs[16];
static int nmsgs;
static char errs[4][256];
static int nerrs;
static int out_w, err_w, in_r;  /* our ends of the handler's pipes */

static void
on_msg(void *ctx, const struct pgjq_pipe_msg *m)
{
	struct got *g = &msgs[nmsgs++ % 16];

	(void)ctx;
	g->kind = m->kind;
	g->id = m->id;
	g->text = NULL;
	if (m->text != NULL) {
		size_t len = m->kind == PGJQ_PIPE_COMPLETED ? m->len : strlen(m->text);

		g->text = malloc(len + 1);
		memcpy(g->text, m->text, len);
		g->text[len] = '\0';
	}
	g->retry = m->retry;
	g->progress = m->progress;
	g->delay_us = m->delay_us;
}

static void
on_err(void *ctx, const char *line)
{
	(void)ctx;
	snprintf(errs[nerrs++ % 4], sizeof errs[0], "%s", line);
}

static void
forget(void)
{
	for (int i = 0; i < 16; i++) {
		free(msgs[i].text);
		msgs[i].text = NULL;
	}
	nmsgs = nerrs = 0;
}

/* Lets the pipe read what is waiting on its stdout and stderr. */
static void
pump(struct pgjq_pipe *p)
{
	struct pollfd pfd[3];
	int n = pgjq_pipe_pollfds(p, pfd);

	poll(pfd, (nfds_t)n, 0);
	pgjq_pipe_io(p, pfd, n, on_msg, on_err, NULL);
}

/* Writes s as the handler would, in pieces the pipe can hold, reading as it goes. */
static void
say(struct pgjq_pipe *p, int fd, const char *s, size_t len)
{
	while (len > 0) {
		size_t k = len < 16384 ? len : 16384;

		if (write(fd, s, k) != (ssize_t)k)
			abort();
		pump(p);
		s += k;
		len -= k;
	}
}

/* A fresh job in flight, after whatever the last test did to the pipe. */
static void
expect(struct pgjq_pipe *p, int64_t id)
{
	forget();
	p->stdout_ignored = false;
	p->job = id;
}

static struct got *
one(const char *line, struct pgjq_pipe *p)
{
	say(p, out_w, line, strlen(line));
	return nmsgs == 1 ? &msgs[0] : NULL;
}

static int
bad(struct pgjq_pipe *p, const char *line, const char *why)
{
	struct got *g;

	expect(p, 7);
	g = one(line, p);
	return g != NULL && g->kind == PGJQ_PIPE_BAD && g->text != NULL && strstr(g->text, why) != NULL &&
	    p->stdout_ignored;
}

int
main(void)
{
	struct pgjq_pipe p;
	int in[2], out[2], err[2];
	char line[256], *big;
	ssize_t n;
	struct got *g;

	if (pipe(in) < 0 || pipe(out) < 0 || pipe(err) < 0)
		return 99;
	pgjq_pipe_init(&p);
	p.pid = 1; /* pretend; nothing here signals it */
	p.in_fd = in[1];
	p.out_fd = out[0];
	p.err_fd = err[0];
	fcntl(p.out_fd, F_SETFL, O_NONBLOCK);
	fcntl(p.err_fd, F_SETFL, O_NONBLOCK);
	in_r = in[0];
	out_w = out[1];
	err_w = err[1];

	ok(pgjq_pipe_ready(&p), "a running handler with no job is ready");
	pgjq_pipe_send(&p, 7, "q", 2, 3, "{\"a\": 1}", 8);
	n = read(in_r, line, sizeof line - 1);
	line[n < 0 ? 0 : n] = '\0';
	is_str(line, "{\"id\":7,\"queue\":\"q\",\"attempt\":2,\"max_attempts\":3,\"payload\":{\"a\": 1}}\n",
	    "a job is one line: id first, payload last");
	ok(!pgjq_pipe_ready(&p) && p.job == 7, "and is in flight");

	g = one("{\"id\":7,\"status\":\"completed\",\"result\": {\"b\": 12345678901234567890123, \"x\": 1.10}}\n", &p);
	ok(g != NULL && g->kind == PGJQ_PIPE_COMPLETED && g->id == 7, "completed");
	is_str(g ? g->text : NULL, "{\"b\": 12345678901234567890123, \"x\": 1.10}", "the result as written");
	ok(p.job == 0 && p.answered == 1 && pgjq_pipe_ready(&p), "the job is no longer in flight");

	expect(&p, 8);
	g = one("{\"status\":\"completed\",\"id\":8}\r\n", &p);
	is_str(g ? g->text : NULL, "null", "no result is null; CRLF is fine");
	expect(&p, 8);
	g = one("{\"id\":8,\"status\":\"completed\",\"res\\u0075lt\":[\"x\"]}\n", &p);
	is_str(g ? g->text : NULL, "[\"x\"]", "a key spelt with escapes is still found");

	expect(&p, 9);
	g = one("{\"id\":9,\"status\":\"failed\",\"error\":\"no \\\"disk\\\"\"}\n", &p);
	ok(g && g->kind == PGJQ_PIPE_FAILED && g->retry, "failed; retry by default");
	is_str(g ? g->text : NULL, "no \"disk\"", "with its error");
	expect(&p, 9);
	g = one("{\"id\":9,\"status\":\"failed\",\"retry\":false,\"error\":null}\n", &p);
	ok(g && g->kind == PGJQ_PIPE_FAILED && !g->retry && g->text == NULL, "retry false, no error");
	expect(&p, 9);
	g = one("{\"id\":9,\"status\":\"snooze\",\"delay\":\"30s\"}\n", &p);
	ok(g && g->kind == PGJQ_PIPE_SNOOZE && g->delay_us == INT64_C(30000000), "snooze, a duration");
	ok(p.job == 0, "a snooze answers for the job");
	expect(&p, 9);
	g = one("{\"id\":9,\"status\":\"snooze\",\"delay\":1.5}\n", &p);
	ok(g && g->kind == PGJQ_PIPE_SNOOZE && g->delay_us == INT64_C(1500000), "snooze, seconds");
	ok(bad(&p, "{\"id\":7,\"status\":\"snooze\"}\n", "\"delay\" is not"), "a snooze without a delay");
	ok(bad(&p, "{\"id\":7,\"status\":\"snooze\",\"delay\":\"soon\"}\n", "\"delay\" is not"),
	    "a snooze with a bad delay");
	ok(bad(&p, "{\"id\":7,\"status\":\"snooze\",\"delay\":-1}\n", "\"delay\" is not"),
	    "a snooze with a negative delay");

	expect(&p, 10);
	say(&p, out_w, "\n  \n{\"id\":10,\"progress\":40.7,\"message\":\"resizing\"}\n", 51);
	ok(nmsgs == 1 && msgs[0].kind == PGJQ_PIPE_PROGRESS && msgs[0].progress == 40, "progress; blank lines pass");
	is_str(nmsgs ? msgs[0].text : NULL, "resizing", "its message");
	ok(p.job == 10, "progress leaves the job in flight");
	expect(&p, 10);
	g = one("{\"id\":10,\"progress\":100}\n", &p);
	ok(g && g->kind == PGJQ_PIPE_PROGRESS && g->progress == 100 && g->text == NULL, "progress without a message");
	expect(&p, 10);
	g = one("{\"id\":10,\"progress\":101}\n", &p);
	ok(g && g->kind == PGJQ_PIPE_BAD_PROGRESS && !p.stdout_ignored, "progress over 100 is only a bad progress line");
	expect(&p, 10);
	g = one("{\"id\":10,\"progress\":5,\"message\":5}\n", &p);
	ok(g && g->kind == PGJQ_PIPE_BAD_PROGRESS, "so is a message that is no string");

	expect(&p, 11);
	say(&p, out_w, "{\"id\":11,\"sta", 13);
	ok(nmsgs == 0, "half a line waits");
	say(&p, out_w, "tus\":\"completed\"}\n", 18);
	ok(nmsgs == 1 && msgs[0].kind == PGJQ_PIPE_COMPLETED, "for the rest");

	ok(bad(&p, "hello world\n", "not JSON ("), "not JSON");
	ok(strstr(msgs[0].text, ": 'hello world'") != NULL, "the line is quoted");
	ok(bad(&p, "[7]\n", "not a JSON object"), "not an object");
	ok(bad(&p, "{\"status\":\"completed\"}\n", "no job id"), "no id");
	ok(bad(&p, "{\"id\":\"7\",\"status\":\"completed\"}\n", "no job id"), "an id that is a string");
	ok(bad(&p, "{\"id\":8,\"status\":\"completed\"}\n", "it is about job 8, but job 7 is in flight"), "another job's id");
	ok(bad(&p, "{\"id\":7,\"status\":\"done\"}\n", "\"status\" is neither"), "an unknown status");
	ok(bad(&p, "{\"id\":7,\"status\":1}\n", "\"status\" is neither"), "a status that is no string");
	ok(bad(&p, "{\"id\":7,\"status\":\"failed\",\"error\":1}\n", "\"error\" is not a string"), "an error that is no string");
	ok(bad(&p, "{\"id\":7,\"status\":\"failed\",\"retry\":\"no\"}\n", "\"retry\" is not true or false"),
	    "a retry that is no boolean");
	ok(bad(&p, "{\"id\":7}\n", "neither \"status\" nor \"progress\""), "neither status nor progress");
	ok(bad(&p, "{\"id\":7,\"id\":7,\"status\":\"completed\"}\n", "not JSON"), "a duplicate key");
	ok(msgs[0].id == 7, "a bad line names the job in flight");
	forget();
	say(&p, out_w, "{\"id\":7,\"status\":\"completed\"}\n", 30);
	ok(nmsgs == 0 && p.job == 7, "after a bad line nothing is believed");

	expect(&p, 0);
	p.job = 0;
	g = one("{\"id\":7,\"status\":\"completed\"}\n", &p);
	ok(g && g->kind == PGJQ_PIPE_BAD && strstr(g->text, "no job is in flight") && g->id == 0,
	    "an answer with no job in flight");

	expect(&p, 12);
	big = malloc(PGJQ_PIPE_LINE_MAX + 100);
	memset(big, 'x', PGJQ_PIPE_LINE_MAX + 99);
	big[PGJQ_PIPE_LINE_MAX + 99] = '\n';
	say(&p, out_w, big, PGJQ_PIPE_LINE_MAX + 100);
	free(big);
	ok(nmsgs == 1 && msgs[0].kind == PGJQ_PIPE_BAD && strstr(msgs[0].text, "a line longer than"),
	    "a line too long");
	expect(&p, 12);
	g = one("{\"id\":12,\"status\":\"completed\"}\n", &p);
	ok(g && g->kind == PGJQ_PIPE_COMPLETED, "and the next line is read from its start");

	forget();
	pgjq_pipe_send(&p, 13, "q", 1, 1, "null", 4);
	say(&p, err_w, "first\nsecond", 12);
	ok(nerrs == 1, "stderr goes line by line");
	is_str(errs[0], "first", "its first line");
	close(err_w);
	pump(&p);
	is_str(nerrs == 2 ? errs[1] : NULL, "second", "a last line without a newline counts");
	{
		char tail[64];

		pgjq_pipe_error_tail(&p, tail, sizeof tail);
		is_str(tail, "first\nsecond", "the tail of stderr since the job was sent");
	}
	close(out_w);
	pump(&p);
	p.pid = 0;
	ok(pgjq_pipe_gone(&p), "gone once reaped and both outputs end");
	forget();
	pgjq_pipe_free(&p);
	close(in_r);
	return done_testing();
}
