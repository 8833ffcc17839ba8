/* jq-worker: claim jobs and run a handler command for each. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "db.h"
#include "diag.h"
#include "http.h"
#include "job.h"
#include "joblog.h"
#include "schema.h"
#include "worker.h"
#include "xalloc.h"

enum {
	OPT_BACKOFF = PGJQ_OPT_TOOL,
	OPT_BACKOFF_MAX,
	OPT_DRAIN,
	OPT_GRACE,
	OPT_HTTP,
	OPT_KEEP_COMPLETED,
	OPT_KEEP_FAILED,
	OPT_KEEP_LOGS,
	OPT_KILL_AFTER,
	OPT_LEASE,
	OPT_LOG_MAX,
	OPT_MAX_JOBS,
	OPT_MAX_SNOOZES,
	OPT_PIPE,
	OPT_POLL,
	OPT_POLL_ONLY,
	OPT_PREFETCH,
	OPT_QUIET,
	OPT_TIMEOUT,
};

static const char options_help[] =
	    "  -q, --queue queue        a queue to take jobs from; repeat for more\n"
	    "  -c, --concurrency n      jobs at once (default 1)\n"
	    "      --pipe               one long-lived handler per slot, a job per line\n"
	    "      --http url           POST each payload to url instead of running a command\n"
	    "      --timeout duration   time limit of jobs that have none of their own\n"
	    "      --lease duration     how long a job stays this worker's without renewal\n"
	    "      --grace duration     on SIGTERM, how long running jobs may finish\n"
	    "      --kill-after duration  after SIGTERM to a handler, when to SIGKILL it\n"
	    "      --backoff duration   first retry delay, doubling (with --backoff-max)\n"
	    "      --backoff-max duration  longest retry delay\n"
	    "      --prefetch n         jobs claimed ahead at most (0: none)\n"
	    "      --drain              exit once the queues are empty\n"
	    "      --max-jobs n         exit after n jobs\n"
	    "      --max-snoozes n      snoozes of a job that do not count as attempts (default 10)\n"
	    "      --poll duration      how often to look for jobs without a notification\n"
	    "      --poll-only          never listen for notifications\n"
	    "      --keep-completed duration  how long completed jobs stay in history\n"
	    "      --keep-failed duration     how long failed and cancelled ones stay\n"
	    "      --keep-logs duration       how long job logs stay, if not as long as their jobs\n"
	    "      --log-max size       bytes of log kept per attempt (default 1M; 0: none)\n"
	    "      --quiet              report failures and warnings only\n"
	    "      --json               report job events as JSON lines\n";

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: jq-worker [-hV] [-c n] [-d conninfo] [-q queue]... [--backoff duration]\n"
	    "                 [--backoff-max duration] [--drain] [--grace duration] [--json]\n"
	    "                 [--keep-completed duration] [--keep-failed duration]\n"
	    "                 [--keep-logs duration] [--kill-after duration]\n"
	    "                 [--lease duration] [--log-max size] [--max-jobs n]\n"
	    "                 [--max-snoozes n] [--poll duration] [--poll-only] [--prefetch n]\n"
	    "                 [--quiet] [--schema name] [--timeout duration]\n"
	    "                 --http url | [--pipe] -- command [arg ...]\n");
}

static const struct option longopts[] = {
	PGJQ_COMMON_LONGOPTS,
	{"backoff", required_argument, NULL, OPT_BACKOFF},
	{"backoff-max", required_argument, NULL, OPT_BACKOFF_MAX},
	{"concurrency", required_argument, NULL, 'c'},
	{"drain", no_argument, NULL, OPT_DRAIN},
	{"grace", required_argument, NULL, OPT_GRACE},
	{"http", required_argument, NULL, OPT_HTTP},
	{"keep-completed", required_argument, NULL, OPT_KEEP_COMPLETED},
	{"keep-failed", required_argument, NULL, OPT_KEEP_FAILED},
	{"keep-logs", required_argument, NULL, OPT_KEEP_LOGS},
	{"kill-after", required_argument, NULL, OPT_KILL_AFTER},
	{"lease", required_argument, NULL, OPT_LEASE},
	{"log-max", required_argument, NULL, OPT_LOG_MAX},
	{"max-jobs", required_argument, NULL, OPT_MAX_JOBS},
	{"max-snoozes", required_argument, NULL, OPT_MAX_SNOOZES},
	{"pipe", no_argument, NULL, OPT_PIPE},
	{"poll", required_argument, NULL, OPT_POLL},
	{"poll-only", no_argument, NULL, OPT_POLL_ONLY},
	{"prefetch", required_argument, NULL, OPT_PREFETCH},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{NULL, 0, NULL, 0},
};

/* --log-max: bytes, or with k or M (binary: 1k is 1024). */
static size_t
log_size(const struct pgjq_common *c, const char *arg)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(arg, &end, 10);
	if (end != arg && (*end == 'k' || *end == 'K')) {
		v *= 1024;
		end++;
	} else if (end != arg && (*end == 'm' || *end == 'M')) {
		v *= 1024 * 1024;
		end++;
	}
	if (end == arg || *end != '\0' || errno != 0 || v < 0 || v > 1024LL * 1024 * 1024)
		pgjq_usage_error(c, "--log-max: expected a size in bytes up to 1024M (k, M allowed), got '%s'",
		    arg);
	return (size_t)v;
}

/* Whether execvp would find cmd: a worker that cannot run its handler should say so at once. */
static bool
runnable(const char *cmd)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	bool found = false;

	if (strchr(cmd, '/') != NULL)
		return access(cmd, X_OK) == 0;
	copy = pgjq_xstrdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
		char *full = pgjq_xasprintf("%s/%s", *dir ? dir : ".", cmd);

		found = access(full, X_OK) == 0;
		free(full);
	}
	free(copy);
	return found;
}

int
main(int argc, char **argv)
{
	struct pgjq_common common;
	struct pgjq_worker_opts o = {
		.concurrency = 1,
		.lease_us = 30 * INT64_C(1000000),
		.grace_us = 30 * INT64_C(1000000),
		.poll_us = 5 * INT64_C(1000000),
		.kill_after_us = 5 * INT64_C(1000000),
		.backoff_us = 2 * INT64_C(1000000),
		.backoff_max_us = 600 * INT64_C(1000000),
		.keep_completed_us = 86400 * INT64_C(1000000),
		.keep_failed_us = 7 * 86400 * INT64_C(1000000),
		.log_max = PGJQ_LOG_MAX_DEFAULT,
		.prefetch = PGJQ_PREFETCH_DEFAULT,
		.max_snoozes = PGJQ_MAX_SNOOZES_DEFAULT,
	};
	const char **queues = NULL;
	size_t nqueues = 0, qcap = 0;
	char *http_url = NULL;
	int opt, status;

	pgjq_common_init(&common, argv[0], usage);
	common.options = options_help;
	/* "+": options end at the command, whose own options are its business. */
	while ((opt = getopt_long(argc, argv, "+c:d:hq:V", longopts, NULL)) != -1) {
		if (opt == 'q') {
			if (!pgjq_queue_valid(optarg, strlen(optarg)))
				pgjq_usage_error(&common, "invalid queue name '%s': use " PGJQ_QUEUE_RULE, optarg);
			queues = pgjq_xgrow(queues, &qcap, nqueues + 1, sizeof *queues);
			queues[nqueues++] = optarg;
			continue;
		}
		if (pgjq_common_option(&common, opt, optarg))
			continue;
		switch (opt) {
		case 'c':
			o.concurrency = (int)pgjq_opt_long(&common, "--concurrency", optarg, 1, 1024);
			break;
		case OPT_BACKOFF:
			o.backoff_us = pgjq_opt_duration(&common, "--backoff", optarg);
			break;
		case OPT_BACKOFF_MAX:
			o.backoff_max_us = pgjq_opt_duration(&common, "--backoff-max", optarg);
			break;
		case OPT_DRAIN:
			o.drain = true;
			break;
		case OPT_GRACE:
			o.grace_us = pgjq_opt_duration(&common, "--grace", optarg);
			break;
		case OPT_HTTP:
			/* As -d's: ps(1) shows argv to every user, so its password goes, the copy stays. */
			free(http_url);
			http_url = pgjq_xstrdup(optarg);
			pgjq_http_url_hide(optarg);
			if (strncmp(http_url, "http://", 7) != 0 && strncmp(http_url, "https://", 8) != 0)
				pgjq_usage_error(&common, "--http: expected an http:// or https:// URL, got '%s'", optarg);
			o.http_url = http_url;
			break;
		case OPT_KEEP_COMPLETED:
			o.keep_completed_us = pgjq_opt_duration(&common, "--keep-completed", optarg);
			break;
		case OPT_KEEP_FAILED:
			o.keep_failed_us = pgjq_opt_duration(&common, "--keep-failed", optarg);
			break;
		case OPT_KEEP_LOGS:
			o.keep_logs_us = pgjq_opt_duration(&common, "--keep-logs", optarg);
			break;
		case OPT_LOG_MAX:
			o.log_max = log_size(&common, optarg);
			break;
		case OPT_KILL_AFTER:
			o.kill_after_us = pgjq_opt_duration(&common, "--kill-after", optarg);
			break;
		case OPT_LEASE:
			o.lease_us = pgjq_opt_duration(&common, "--lease", optarg);
			if (o.lease_us < 1000000)
				pgjq_usage_error(&common, "--lease: must be at least 1s");
			break;
		case OPT_MAX_JOBS:
			o.max_jobs = pgjq_opt_long(&common, "--max-jobs", optarg, 1, 2147483647L);
			break;
		case OPT_PIPE:
			o.pipe = true;
			break;
		case OPT_POLL:
			o.poll_us = pgjq_opt_duration(&common, "--poll", optarg);
			if (o.poll_us < 10000)
				pgjq_usage_error(&common, "--poll: must be at least 10ms");
			break;
		case OPT_MAX_SNOOZES:
			o.max_snoozes = (int)pgjq_opt_long(&common, "--max-snoozes", optarg, 0, 1000000);
			break;
		case OPT_PREFETCH:
			o.prefetch = (int)pgjq_opt_long(&common, "--prefetch", optarg, 0, 100000);
			break;
		case OPT_POLL_ONLY:
			o.poll_only = true;
			break;
		case OPT_QUIET:
			o.quiet = true;
			break;
		case OPT_TIMEOUT:
			o.timeout_us = pgjq_opt_duration(&common, "--timeout", optarg);
			break;
		default:
			common.usage(stderr);
			return PGJQ_EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0 && o.http_url == NULL)
		pgjq_usage_error(&common, "no handler: give --http URL or -- COMMAND");
	if (argc > 0 && o.http_url != NULL)
		pgjq_usage_error(&common, "--http and a command exclude each other");
	if (o.pipe && argc == 0)
		pgjq_usage_error(&common, "--pipe needs a command: --pipe -- COMMAND");
	if (o.backoff_max_us < o.backoff_us)
		o.backoff_max_us = o.backoff_us;
	if (argc > 0 && !runnable(argv[0]))
		pgjq_usage_error(&common, "cannot run '%s': not found or not executable", argv[0]);
	if (nqueues == 0) {
		queues = pgjq_xgrow(queues, &qcap, 1, sizeof *queues);
		queues[nqueues++] = PGJQ_DEFAULT_QUEUE;
	}

	o.conninfo = pgjq_conninfo(common.conninfo);
	o.schema = common.schema;
	o.queues = queues;
	o.nqueues = nqueues;
	o.json = common.json;
	o.argv = argc > 0 ? argv : NULL;
	/* A write(2) per job event line is a flood at thousands of jobs a second. */
	pgjq_diag_buffer();
	pgjq_schema_allow_create();
	status = pgjq_worker_run(&o);
	free(queues);
	free(http_url);
	return status;
}
