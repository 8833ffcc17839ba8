/* jq-queue: list queues, pause and resume them, set their fleet-wide limits, purge them. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "diag.h"
#include "job.h"
#include "queue.h"

enum {
	OPT_WAIT = PGJQ_OPT_TOOL,
	OPT_STATE,
	OPT_OLDER_THAN,
	OPT_YES,
};

static const char options_help[] =
	    "  -q, --queue queue        list only this queue; repeat for more\n"
	    "      --json               a JSON object per queue\n"
	    "      --older-than duration  purge: only jobs created (finished) that long ago\n"
	    "      --state state        purge: jobs in this state (default scheduled, queued); repeat\n"
	    "      --wait               pause: return once none of the queues' jobs is running\n"
	    "      --yes                purge: do not ask, even on a terminal\n";

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: jq-queue [-hV] [-d conninfo] [-q queue]... [--json] [--schema name]\n"
	    "       jq-queue [options] pause [--wait] queue ...\n"
	    "       jq-queue [options] resume queue ...\n"
	    "       jq-queue [options] limit queue n|none\n"
	    "       jq-queue [options] rate queue n/duration|none\n"
	    "       jq-queue [options] group-limit queue n\n"
	    "       jq-queue [options] purge [--yes] [--state state]... [--older-than duration] queue\n");
}

static const struct option longopts[] = {
	PGJQ_COMMON_LONGOPTS,
	{"wait", no_argument, NULL, OPT_WAIT},
	{"state", required_argument, NULL, OPT_STATE},
	{"older-than", required_argument, NULL, OPT_OLDER_THAN},
	{"yes", no_argument, NULL, OPT_YES},
	{NULL, 0, NULL, 0},
};

static void
check_names(const struct pgjq_common *c, int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (!pgjq_queue_valid(argv[i], strlen(argv[i])))
			pgjq_usage_error(c, "invalid queue name '%s': use " PGJQ_QUEUE_RULE, argv[i]);
}

int
main(int argc, char **argv)
{
	struct pgjq_common common;
	struct pgjq_queue_conn conn;
	struct pgjq_queue_set set = {0};
	const char *cmd;
	const char *states[5];
	size_t nstates = 0;
	int64_t older_us = -1;
	bool yes = false, purge_opts = false;
	int opt;

	pgjq_common_init(&common, argv[0], usage);
	common.options = options_help;
	while ((opt = getopt_long(argc, argv, "d:hq:V", longopts, NULL)) != -1) {
		if (pgjq_common_option(&common, opt, optarg))
			continue;
		switch (opt) {
		case OPT_WAIT:
			set.wait = true;
			break;
		case OPT_STATE:
			if (strcmp(optarg, "scheduled") != 0 && strcmp(optarg, "queued") != 0 &&
			    strcmp(optarg, "completed") != 0 && strcmp(optarg, "failed") != 0 &&
			    strcmp(optarg, "cancelled") != 0)
				pgjq_usage_error(&common, "--state: '%s' cannot be purged: use scheduled, "
				    "queued, completed, failed or cancelled (running jobs never are)", optarg);
			for (size_t i = 0; i <= nstates; i++) {
				if (i == nstates) {
					states[nstates++] = optarg;
					break;
				}
				if (strcmp(states[i], optarg) == 0)
					break;
			}
			purge_opts = true;
			break;
		case OPT_OLDER_THAN:
			older_us = pgjq_opt_duration(&common, "--older-than", optarg);
			purge_opts = true;
			break;
		case OPT_YES:
			yes = purge_opts = true;
			break;
		default:
			common.usage(stderr);
			return PGJQ_EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	conn.conninfo = pgjq_conninfo(common.conninfo);
	conn.schema = common.schema;
	conn.json = common.json;

	cmd = argc > 0 ? argv[0] : "list";
	if (argc > 0) {
		argc--;
		argv++;
	}
	if (set.wait && strcmp(cmd, "pause") != 0)
		pgjq_usage_error(&common, "--wait goes with pause");
	if (purge_opts && strcmp(cmd, "purge") != 0)
		pgjq_usage_error(&common, "--state, --older-than and --yes go with purge");
	if (strcmp(cmd, "list") == 0) {
		if (argc > 0)
			pgjq_usage_error(&common, "list takes no arguments; name queues with -q");
		return pgjq_queue_list(&conn, common.queues, common.nqueues);
	}
	if (common.queue_given)
		pgjq_usage_error(&common, "-q goes with a listing; %s names its queues as arguments", cmd);
	if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0) {
		if (argc == 0)
			pgjq_usage_error(&common, "%s: name the queues", cmd);
		check_names(&common, argc, argv);
		set.change = strcmp(cmd, "pause") == 0 ? PGJQ_QUEUE_PAUSE : PGJQ_QUEUE_RESUME;
	} else if (strcmp(cmd, "limit") == 0) {
		if (argc != 2)
			pgjq_usage_error(&common, "limit: expected a queue and a number (or none)");
		check_names(&common, 1, argv);
		set.change = PGJQ_QUEUE_LIMIT;
		set.max = strcmp(argv[1], "none") == 0 ? 0 :
		    pgjq_opt_long(&common, "limit", argv[1], 1, 1000000);
		argc = 1;
	} else if (strcmp(cmd, "group-limit") == 0) {
		if (argc != 2)
			pgjq_usage_error(&common, "group-limit: expected a queue and a number");
		check_names(&common, 1, argv);
		set.change = PGJQ_QUEUE_GROUP_LIMIT;
		set.max = pgjq_opt_long(&common, "group-limit", argv[1], 1, 1000000);
		argc = 1;
	} else if (strcmp(cmd, "rate") == 0) {
		const char *why;

		if (argc != 2)
			pgjq_usage_error(&common, "rate: expected a queue and N/DURATION (or none)");
		check_names(&common, 1, argv);
		set.change = PGJQ_QUEUE_RATE;
		if (strcmp(argv[1], "none") != 0 &&
		    pgjq_rate_parse(argv[1], &set.n, &set.window_us, &why) != 0)
			pgjq_usage_error(&common, "rate: invalid rate '%s': %s", argv[1], why);
		argc = 1;
	} else if (strcmp(cmd, "purge") == 0) {
		if (argc != 1)
			pgjq_usage_error(&common, "purge: name one queue");
		check_names(&common, 1, argv);
		return pgjq_queue_purge(&conn, argv[0], states, nstates, older_us, yes);
	} else {
		pgjq_usage_error(&common, "unknown command '%s'", cmd);
	}
	return pgjq_queue_apply(&conn, (const char *const *)argv, (size_t)argc, &set);
}
