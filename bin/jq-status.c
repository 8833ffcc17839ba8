/* jq-status: show, list, wait for and follow jobs. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "db.h"
#include "diag.h"
#include "follow.h"
#include "job.h"
#include "joblog.h"
#include "schema.h"
#include "status.h"
#include "tty.h"

enum {
	OPT_ATTEMPT = PGJQ_OPT_TOOL,
	OPT_LIMIT,
	OPT_LOG,
	OPT_STATE,
};

#define DEFAULT_LIMIT 20

static const char options_help[] =
	    "  -q, --queue queue        list this queue's jobs; repeat for more (default: every queue)\n"
	    "      --state state        list the jobs in this state\n"
	    "      --limit n            list at most n jobs\n"
	    "  -w, --wait               wait until the jobs are finished; exit 1 if one failed\n"
	    "  -f, --follow             live progress of the jobs until they finish\n"
	    "      --log                the job's log, every attempt; with -f, followed live\n"
	    "      --attempt n          with --log: only this attempt's lines\n"
	    "      --json               a JSON object per job\n";

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: jq-status [-fhVw] [-d conninfo] [-q queue]... [--json] [--limit n] [--schema name]\n"
	    "                 [--state state] [id ...]\n"
	    "       jq-status --log [-f] [--attempt n] [-d conninfo] [--json] [--schema name] id\n");
}

static const struct option longopts[] = {
	PGJQ_COMMON_LONGOPTS,
	{"attempt", required_argument, NULL, OPT_ATTEMPT},
	{"follow", no_argument, NULL, 'f'},
	{"limit", required_argument, NULL, OPT_LIMIT},
	{"log", no_argument, NULL, OPT_LOG},
	{"state", required_argument, NULL, OPT_STATE},
	{"wait", no_argument, NULL, 'w'},
	{NULL, 0, NULL, 0},
};

static void
write_out(struct pgjq_buf *b)
{
	if ((b->len > 0 && fwrite(b->data, 1, b->len, stdout) != b->len) || fflush(stdout) != 0)
		pgjq_die(PGJQ_EX_SOFTWARE, "cannot write the output");
	pgjq_buf_reset(b);
}

/* Shows the jobs; 66 if one of them does not exist. */
static int
show(PGconn *conn, const int64_t *ids, size_t n, bool json)
{
	char *array = pgjq_id_array(ids, n);
	const char *params[] = {array};
	PGresult *res = pgjq_exec_or_die(conn, pgjq_sql(pgjq_status_by_id_sql), 1, params);
	struct pgjq_buf out = {0};
	int width = pgjq_tty_width(STDOUT_FILENO), status = 0, row = 0;

	for (size_t i = 0; i < n; i++) {
		struct pgjq_jobrow j;

		/* Rows come in the order of the ids; a missing one is skipped. */
		if (row >= PQntuples(res) || strtoll(PQgetvalue(res, row, 0), NULL, 10) != ids[i]) {
			pgjq_warn("job %lld: no such job", (long long)ids[i]);
			status = PGJQ_EX_NOJOB;
			continue;
		}
		pgjq_jobrow_get(res, row++, &j);
		if (json) {
			pgjq_buf_printf(&out, "%s\n", j.json);
		} else {
			if (row > 1)
				pgjq_buf_putc(&out, '\n');
			pgjq_status_show(&out, &j, width);
		}
		write_out(&out);
	}
	pgjq_buf_free(&out);
	PQclear(res);
	free(array);
	return status;
}

/* "queue a", "queues a, b", or "every queue", for the screen of --follow. */
static char *
queue_names(const struct pgjq_common *c)
{
	struct pgjq_buf b = {0};

	if (c->nqueues == 0)
		return pgjq_xstrdup("every queue");
	pgjq_buf_printf(&b, "queue%s ", c->nqueues > 1 ? "s" : "");
	for (size_t i = 0; i < c->nqueues; i++)
		pgjq_buf_printf(&b, "%s%s", i ? ", " : "", c->queues[i]);
	return b.data;
}

static int
list(PGconn *conn, const char *queues, const char *state, long limit, bool json)
{
	char lim[32];
	const char *params[] = {queues, state, lim};
	PGresult *res;
	struct pgjq_buf out = {0};

	snprintf(lim, sizeof lim, "%ld", limit);
	res = pgjq_exec_or_die(conn, pgjq_sql(pgjq_status_list_sql), 3, params);
	if (json) {
		for (int i = 0; i < PQntuples(res); i++) {
			struct pgjq_jobrow j;

			pgjq_jobrow_get(res, i, &j);
			pgjq_buf_printf(&out, "%s\n", j.json);
		}
	} else if (PQntuples(res) > 0) {
		pgjq_status_table(&out, res, pgjq_tty_width(STDOUT_FILENO));
	}
	write_out(&out);
	pgjq_buf_free(&out);
	PQclear(res);
	return 0;
}

int
main(int argc, char **argv)
{
	struct pgjq_common common;
	struct pgjq_follow_opts fo = {0};
	bool follow = false, wait = false, limit_given = false, log = false;
	int attempt = 0;
	const char *state = NULL;
	long limit = DEFAULT_LIMIT;
	int64_t *ids;
	char *queues, *names;
	size_t n;
	int opt, status;

	pgjq_common_init(&common, argv[0], usage);
	common.options = options_help;
	while ((opt = getopt_long(argc, argv, "d:fhq:Vw", longopts, NULL)) != -1) {
		if (pgjq_common_option(&common, opt, optarg))
			continue;
		switch (opt) {
		case 'f':
			follow = true;
			break;
		case 'w':
			wait = true;
			break;
		case OPT_ATTEMPT:
			attempt = (int)pgjq_opt_long(&common, "--attempt", optarg, 1, 2147483647L);
			break;
		case OPT_LOG:
			log = true;
			break;
		case OPT_LIMIT:
			limit = pgjq_opt_long(&common, "--limit", optarg, 1, 1000000000L);
			limit_given = true;
			break;
		case OPT_STATE:
			if (!pgjq_state_known(optarg))
				pgjq_usage_error(&common, "--state: unknown state '%s'", optarg);
			state = optarg;
			break;
		default:
			common.usage(stderr);
			return PGJQ_EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	ids = pgjq_opt_ids(&common, argc, argv, &n);
	if (attempt > 0 && !log)
		pgjq_usage_error(&common, "--attempt is for --log");
	if (log) {
		struct pgjq_log_opts lo = {
			.conninfo = pgjq_conninfo(common.conninfo), .schema = common.schema,
			.attempt = attempt, .follow = follow, .json = common.json,
		};

		if (n != 1 || state != NULL || limit_given || common.queue_given || wait)
			pgjq_usage_error(&common, "--log takes one job id, and -f, --attempt or --json only");
		lo.id = ids[0];
		free(ids);
		return pgjq_log_show(&lo);
	}
	if (n > 0 && (state != NULL || limit_given || common.queue_given))
		pgjq_usage_error(&common, "-q, --state and --limit are for a listing, not with job ids");
	if (wait && !follow && n == 0)
		pgjq_usage_error(&common, "--wait needs job ids");
	if (follow && (state != NULL || limit_given))
		pgjq_usage_error(&common, "--follow takes job ids or -q, not --state or --limit");

	fo.conninfo = pgjq_conninfo(common.conninfo);
	fo.schema = common.schema;
	fo.ids = ids;
	fo.nids = n;
	/* Without -q, NULL: every queue. */
	queues = pgjq_queue_array(common.queues, common.nqueues);
	fo.queues = queues;
	fo.queue_names = names = queue_names(&common);
	if (follow) {
		fo.output = !common.json && isatty(STDOUT_FILENO) ? PGJQ_FOLLOW_SCREEN : PGJQ_FOLLOW_EVENTS;
		status = pgjq_follow(&fo);
	} else if (wait) {
		fo.output = common.json ? PGJQ_FOLLOW_JOBS : PGJQ_FOLLOW_QUIET;
		status = pgjq_follow(&fo);
	} else {
		PGconn *conn = pgjq_connect(fo.conninfo, fo.schema);

		status = n > 0 ? show(conn, ids, n, common.json) :
		    list(conn, queues, state, limit, common.json);
		PQfinish(conn);
	}
	free(ids);
	free(queues);
	free(names);
	return status;
}
