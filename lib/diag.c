#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

static const char *progname = PACKAGE;

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

static void
vreport(const char *fmt, va_list ap)
{
	/* One fprintf-sized write per line, so lines from parallel tools don't interleave. */
	char line[4096];
	int n;

	n = snprintf(line, sizeof line, "%s: ", progname);
	if (n < 0 || (size_t)n >= sizeof line)
		n = 0;
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	/* Drop trailing newlines that libpq puts on its messages. */
	for (size_t len = strlen(line); len > 0 && line[len - 1] == '\n'; len--)
		line[len - 1] = '\0';
	fflush(stdout);
	fprintf(stderr, "%s\n", line);
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
