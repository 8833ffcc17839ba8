/* jq-enqueue: read JSON payloads, insert them as jobs, print their ids. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "db.h"
#include "diag.h"
#include "enqueue.h"
#include "job.h"
#include "jsonstream.h"
#include "schema.h"

enum {
	OPT_AFTER = PGJQ_OPT_TOOL,
	OPT_AT,
	OPT_BATCH,
	OPT_DELAY,
	OPT_KEY,
	OPT_GROUP,
	OPT_MAX_ATTEMPTS,
	OPT_TIMEOUT,
};

static const char options_help[] =
	    "  -q, --queue queue        the queue (default: default)\n"
	    "  -p, --priority n         lower runs first (default 0)\n"
	    "  -e, --envelope           each value is {\"payload\": ..., \"queue\": ..., ...}\n"
	    "      --after id[,id...]   run only once these jobs have completed\n"
	    "      --at time            run at this time (anything timestamptz accepts)\n"
	    "      --delay duration     run after this long (250ms, 30s, 5m, 2h, 1d)\n"
	    "      --batch n            commit every n values, not all at once\n"
	    "      --group key          at most the queue's group limit of this group's jobs run at once\n"
	    "      --key key            enqueue nothing while a job with this key is unfinished\n"
	    "      --max-attempts n     attempts before the job fails for good (default 3)\n"
	    "      --timeout duration   time limit of each attempt\n"
	    "      --json               print a JSON object per job, not its id\n";

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: jq-enqueue [-ehV] [-d conninfo] [-p priority] [-q queue] [--after id[,id...]]\n"
	    "                  [--at time | --delay duration] [--batch n] [--group key] [--json]\n"
	    "                  [--key key] [--max-attempts n] [--schema name] [--timeout duration]\n"
	    "                  [payload ...]\n");
}

static const struct option longopts[] = {
	PGJQ_COMMON_LONGOPTS,
	{"after", required_argument, NULL, OPT_AFTER},
	{"at", required_argument, NULL, OPT_AT},
	{"batch", required_argument, NULL, OPT_BATCH},
	{"delay", required_argument, NULL, OPT_DELAY},
	{"envelope", no_argument, NULL, 'e'},
	{"key", required_argument, NULL, OPT_KEY},
	{"group", required_argument, NULL, OPT_GROUP},
	{"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
	{"priority", required_argument, NULL, 'p'},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{NULL, 0, NULL, 0},
};

/* SIGINT or SIGTERM, once one came: the run ends, saying what it did. */
static volatile sig_atomic_t stop_signal;

static void
on_stop(int sig)
{
	stop_signal = sig;
}

/* No SA_RESTART: a wait for input on stdin ends at the signal. */
static void
catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A reader that went away is a write error to report, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
}

static int
enqueue_args(struct pgjq_enqueuer *e, int argc, char **argv)
{
	int status;

	for (int i = 0; i < argc; i++) {
		if (stop_signal)
			return pgjq_enqueuer_interrupt(e, stop_signal);
		if ((status = pgjq_enqueuer_add(e, argv[i], strlen(argv[i]), i + 1)) != 0)
			return status;
	}
	if (stop_signal)
		return pgjq_enqueuer_interrupt(e, stop_signal);
	return pgjq_enqueuer_finish(e);
}

static int
enqueue_stdin(struct pgjq_enqueuer *e, bool envelope, bool batching)
{
	/* An envelope may carry more than its payload: allow some room. */
	size_t max = PGJQ_PAYLOAD_MAX + (envelope ? 64 * 1024 : 0);
	struct pgjq_jsonstream *js = pgjq_jsonstream_open(STDIN_FILENO, max);
	struct pgjq_jsontext v;
	enum pgjq_jsonstream_status r;
	int status = 0;

	pgjq_jsonstream_stop_on(js, &stop_signal);
	for (;;) {
		if (stop_signal) {
			status = pgjq_enqueuer_interrupt(e, stop_signal);
			break;
		}
		/* Before waiting on a quiet pipe, let the values already read run. */
		if (batching && !pgjq_jsonstream_ready(js) &&
		    (status = pgjq_enqueuer_idle(e)) != 0)
			break;
		r = pgjq_jsonstream_next(js, &v);
		if (r == PGJQ_JS_STOPPED)
			continue;
		if (r == PGJQ_JS_EOF) {
			status = pgjq_enqueuer_finish(e);
			break;
		}
		if (r == PGJQ_JS_ERROR) {
			status = pgjq_enqueuer_fail(e, PGJQ_EX_DATAERR, pgjq_jsonstream_errline(js),
			    "%s", pgjq_jsonstream_error(js));
			break;
		}
		if ((status = pgjq_enqueuer_add(e, v.text, v.len, v.line)) != 0)
			break;
	}
	pgjq_jsonstream_close(js);
	return status;
}

int
main(int argc, char **argv)
{
	struct pgjq_common common;
	struct pgjq_enqueue_opts opts = {
		.max_attempts = PGJQ_DEFAULT_MAX_ATTEMPTS,
	};
	int64_t *after = NULL;
	size_t n_after = 0, after_cap = 0;
	struct pgjq_enqueuer *e;
	PGconn *conn;
	int opt, status;

	pgjq_common_init(&common, argv[0], usage);
	common.options = options_help;
	while ((opt = getopt_long(argc, argv, "d:ehp:q:V", longopts, NULL)) != -1) {
		/* Silently keeping the last -q would put jobs where nobody looks. */
		if (opt == 'q' && common.queue_given)
			pgjq_usage_error(&common, "-q: one queue per run (an envelope's \"queue\" picks "
			    "another for its job)");
		if (pgjq_common_option(&common, opt, optarg))
			continue;
		switch (opt) {
		case 'e':
			opts.envelope = true;
			break;
		case 'p':
			opts.priority = (int)pgjq_opt_long(&common, "--priority", optarg,
			    -2147483647L - 1, 2147483647L);
			break;
		case OPT_AFTER:
			if (!pgjq_id_list_parse(optarg, &after, &n_after, &after_cap))
				pgjq_usage_error(&common, "--after: expected job ids separated by commas, got '%s'",
				    optarg);
			break;
		case OPT_AT:
			opts.at = optarg;
			break;
		case OPT_BATCH:
			opts.batch = pgjq_opt_long(&common, "--batch", optarg, 1, 1000000000L);
			break;
		case OPT_DELAY:
			opts.delay_us = pgjq_opt_duration(&common, "--delay", optarg);
			opts.has_delay = true;
			break;
		case OPT_GROUP:
			if (!pgjq_key_valid(optarg, strlen(optarg)))
				pgjq_usage_error(&common, "--group: expected 1 to %d bytes of UTF-8 text", PGJQ_KEY_MAX);
			opts.group = optarg;
			break;
		case OPT_KEY:
			if (!pgjq_key_valid(optarg, strlen(optarg)))
				pgjq_usage_error(&common, "--key: expected 1 to %d bytes of UTF-8 text", PGJQ_KEY_MAX);
			opts.key = optarg;
			break;
		case OPT_MAX_ATTEMPTS:
			opts.max_attempts = (int)pgjq_opt_long(&common, "--max-attempts", optarg,
			    1, 2147483647L);
			break;
		case OPT_TIMEOUT:
			opts.timeout_us = pgjq_opt_duration(&common, "--timeout", optarg);
			if (opts.timeout_us == 0)
				pgjq_usage_error(&common, "--timeout: must be more than zero");
			opts.has_timeout = true;
			break;
		default:
			common.usage(stderr);
			return PGJQ_EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (opts.has_delay && opts.at != NULL)
		pgjq_usage_error(&common, "--delay and --at exclude each other");

	opts.queue = common.queue;
	opts.json = common.json;
	opts.after = after;
	opts.n_after = n_after;

	catch_stop_signals();
	pgjq_schema_allow_create();
	conn = pgjq_connect(pgjq_conninfo(common.conninfo), common.schema);
	e = pgjq_enqueuer_new(conn, &opts, argc > 0 ? PGJQ_SOURCE_ARGS : PGJQ_SOURCE_STDIN,
	    stdout, &status);
	if (e != NULL) {
		if (argc > 0)
			status = enqueue_args(e, argc, argv);
		else
			status = enqueue_stdin(e, opts.envelope, opts.batch > 0);
		pgjq_enqueuer_free(e);
	}
	PQfinish(conn);
	free(after);
	if (status == 0 && (fflush(stdout) != 0 || ferror(stdout)))
		pgjq_die(PGJQ_EX_IOERR, "cannot write the job ids: %s", strerror(errno));
	return status;
}
