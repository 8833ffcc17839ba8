#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"

#ifndef PIPE_BUF
#define PIPE_BUF 512 /* POSIX's least */
#endif

static const char *progname = PACKAGE;

/*
 * With pgjq_diag_buffer(): whole lines wait here for pgjq_diag_flush().
 * stdio's own full buffer would do the batching but not the cutting: a
 * line that does not fit is split across two writes, and another process
 * writing to the same log can land between them.  A block never longer
 * than PIPE_BUF also reaches a pipe in one piece, whoever else writes to it.
 */
static char block[PIPE_BUF];
static size_t used;
static bool buffered;
static pid_t owner;

void
pgjq_set_progname(const char *argv0)
{
	const char *slash;

	if (argv0 == NULL || *argv0 == '\0')
		return;
	slash = strrchr(argv0, '/');
	progname = slash ? slash + 1 : argv0;
	/* libtool wrappers run the real binary as "lt-NAME". */
	if (strncmp(progname, "lt-", 3) == 0)
		progname += 3;
}

const char *
pgjq_progname(void)
{
	return progname;
}

void
pgjq_diag_flush(void)
{
	int saved = errno;
	size_t done = 0;

	if (used == 0)
		return;
	fflush(stdout);
	while (done < used) {
		ssize_t n = write(STDERR_FILENO, block + done, used - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* stderr closed or stuck: there is nowhere else to say it */
		done += (size_t)n;
	}
	used = 0;
	errno = saved;
}

static void
flush_at_exit(void)
{
	/* A forked child that exits must not write its parent's lines a second time. */
	if (getpid() != owner)
		return;
	pgjq_diag_flush();
	/* Whatever a later exit handler says goes straight out: no flush comes after this one. */
	buffered = false;
}

void
pgjq_diag_buffer(void)
{
	if (buffered)
		return;
	owner = getpid();
	/* Every exit goes through here, pgjq_die's and the plain exit()s alike. */
	atexit(flush_at_exit);
	buffered = true;
}

void
pgjq_diag_line(const char *line)
{
	size_t n = strlen(line);

	if (buffered && n < sizeof block) {
		if (used + n + 1 > sizeof block)
			pgjq_diag_flush();
		memcpy(block + used, line, n);
		block[used + n] = '\n';
		used += n + 1;
		return;
	}
	/* Unbuffered, or too long for a block: after the lines waiting, in a write of its own. */
	pgjq_diag_flush();
	/* One fprintf-sized write per line, so lines from parallel tools don't interleave. */
	fflush(stdout);
	fprintf(stderr, "%s\n", line);
}

static void
vreport(const char *fmt, va_list ap)
{
	char line[4096];
	int n;

	n = snprintf(line, sizeof line, "%s: ", progname);
	if (n < 0 || (size_t)n >= sizeof line)
		n = 0;
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	/* Drop trailing newlines that libpq puts on its messages. */
	for (size_t len = strlen(line); len > 0 && line[len - 1] == '\n'; len--)
		line[len - 1] = '\0';
	pgjq_diag_line(line);
}

void
pgjq_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
}

void
pgjq_die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
	exit(status);
}
