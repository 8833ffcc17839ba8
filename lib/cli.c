#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "conninfo.h"
#include "db.h"
#include "diag.h"
#include "duration.h"
#include "job.h"
#include "xalloc.h"

/* -d's argument, copied before argv loses its password. */
static char *db_copy;
/* The -q list: lives as long as the process, as argv does. */
static const char **queues_kept;

static void
free_queues(void)
{
	free(queues_kept);
}

/*
 * Opens /dev/null on each of fds 0-2 that is closed, so that no
 * connection or pipe opened later takes its number: ids written to a
 * "stdout" that is really the database socket would corrupt the session.
 * Returns whether stdout was closed.
 */
static bool
fill_closed_std_fds(void)
{
	bool stdout_closed = false;

	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		/* The lowest free number is fd itself: those below it are open by now. */
		if (open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
			_exit(PGJQ_EX_SOFTWARE);
		if (fd == 1)
			stdout_closed = true;
	}
	return stdout_closed;
}

void
pgjq_common_init(struct pgjq_common *c, const char *argv0, void (*usage)(FILE *))
{
	const char *schema;

	pgjq_set_progname(argv0);
	if (fill_closed_std_fds())
		pgjq_die(PGJQ_EX_IOERR, "stdout is closed: nowhere to write (use >/dev/null to discard)");
	schema = getenv("JQ_SCHEMA");
	memset(c, 0, sizeof *c);
	c->schema = schema != NULL && *schema != '\0' ? schema : "jq";
	c->queue = PGJQ_DEFAULT_QUEUE;
	c->usage = usage;
}

void
pgjq_usage_error(const struct pgjq_common *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pgjq_warn("%s", msg);
	c->usage(stderr);
	exit(PGJQ_EX_USAGE);
}

bool
pgjq_common_option(struct pgjq_common *c, int opt, const char *arg)
{
	switch (opt) {
	case 'd':
		/*
		 * ps(1) shows every user our argv: the password is wiped there,
		 * as soon as we can, and kept in a copy that lives as long as
		 * the process.
		 */
		free(db_copy);
		c->conninfo = db_copy = pgjq_xstrdup(arg);
		pgjq_conninfo_hide((char *)arg);
		return true;
	case 'h':
		/* The synopsis, then every option in a few words; the manual says the rest. */
		c->usage(stdout);
		printf("\n%s"
		    "  -d, --db conninfo        the database (else JQ_DATABASE_URL, else libpq's defaults)\n"
		    "      --schema name        where the tables are (else JQ_SCHEMA, else jq)\n"
		    "  -h, --help               this help\n"
		    "  -V, --version            the version\n"
		    "\nSee the manual page, %s(1).\n",
		    c->options != NULL ? c->options : "", pgjq_progname());
		exit(PGJQ_EX_OK);
	case 'q':
		if (!pgjq_queue_valid(arg, strlen(arg)))
			pgjq_usage_error(c, "invalid queue name '%s': use " PGJQ_QUEUE_RULE, arg);
		c->queue = arg;
		c->queue_given = true;
		/* Given again, -q adds a queue: each kept once, in order. */
		for (size_t i = 0; i < c->nqueues; i++)
			if (strcmp(c->queues[i], arg) == 0)
				return true;
		if (queues_kept == NULL)
			atexit(free_queues);
		c->queues = queues_kept = pgjq_xgrow(c->queues, &c->queues_cap, c->nqueues + 1,
		    sizeof *c->queues);
		c->queues[c->nqueues++] = arg;
		return true;
	case 'V':
		printf("%s (%s) %s\n", pgjq_progname(), PACKAGE_NAME, PACKAGE_VERSION);
		exit(PGJQ_EX_OK);
	case PGJQ_OPT_JSON:
		c->json = true;
		return true;
	case PGJQ_OPT_SCHEMA:
		c->schema = arg;
		return true;
	case '?':
		/* getopt has already named the bad option. */
		c->usage(stderr);
		exit(PGJQ_EX_USAGE);
	default:
		return false;
	}
}

long
pgjq_opt_long(const struct pgjq_common *c, const char *option, const char *arg,
    long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < min || v > max)
		pgjq_usage_error(c, "%s: expected an integer from %ld to %ld, got '%s'",
		    option, min, max, arg);
	return v;
}

long long
pgjq_opt_duration(const struct pgjq_common *c, const char *option, const char *arg)
{
	const char *why;
	int64_t us;

	if (pgjq_parse_duration(arg, &us, &why) != 0)
		pgjq_usage_error(c, "%s: invalid duration '%s': %s", option, arg, why);
	return us;
}

int64_t *
pgjq_opt_ids(const struct pgjq_common *c, int argc, char **argv, size_t *n)
{
	int64_t *ids = NULL;
	size_t cap = 0, kept = 0;

	*n = 0;
	for (int i = 0; i < argc; i++)
		if (!pgjq_id_list_parse(argv[i], &ids, n, &cap))
			pgjq_usage_error(c, "invalid job id '%s'", argv[i]);
	for (size_t i = 0; i < *n; i++) {
		size_t k = 0;

		while (k < kept && ids[k] != ids[i])
			k++;
		if (k == kept)
			ids[kept++] = ids[i];
	}
	*n = kept;
	return ids;
}
