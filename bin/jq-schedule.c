/* jq-schedule: recurring jobs, fired once per slot by the workers of their queue. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "cron.h"
#include "db.h"
#include "diag.h"
#include "job.h"
#include "schedule.h"
#include "schema.h"

enum {
	OPT_CATCH_UP = PGJQ_OPT_TOOL,
	OPT_CRON,
	OPT_EVERY,
	OPT_FROM,
	OPT_MAX_ATTEMPTS,
	OPT_TIMEOUT,
	OPT_TZ,
};

static const char options_help[] =
	    "  -q, --queue queue        add: the queue its jobs go to; list: only these queues\n"
	    "      --cron expr          five cron fields, or @hourly, @daily, @weekly, @monthly, @yearly\n"
	    "      --every duration     every so long instead (30s, 5m, 2h, 1d)\n"
	    "      --tz zone            the IANA zone the cron fields are in (default UTC)\n"
	    "      --catch-up what      slots missed while no worker ran: none, last, all (default last)\n"
	    "  -p, --priority n         its jobs' priority: lower runs first (default 0)\n"
	    "      --max-attempts n     its jobs' attempts before they fail for good (default 3)\n"
	    "      --timeout duration   time limit of each attempt of its jobs\n"
	    "  -n, --count n            next: how many slots to print (default 5)\n"
	    "      --from time          next: the slots after this UTC time, not now\n"
	    "      --json               a JSON object per line\n";

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: jq-schedule [-hV] [-d conninfo] [--json] [--schema name] command ...\n"
	    "       jq-schedule add name -q queue (--cron expr | --every duration) [--tz zone]\n"
	    "                   [--catch-up none|last|all] [-p priority] [--max-attempts n]\n"
	    "                   [--timeout duration] [payload]\n"
	    "       jq-schedule list [-q queue ...]\n"
	    "       jq-schedule rm | pause | resume | run name ...\n"
	    "       jq-schedule next expr [--tz zone] [-n count] [--from time]\n");
}

static const struct option longopts[] = {
	PGJQ_COMMON_LONGOPTS,
	{"catch-up", required_argument, NULL, OPT_CATCH_UP},
	{"count", required_argument, NULL, 'n'},
	{"cron", required_argument, NULL, OPT_CRON},
	{"every", required_argument, NULL, OPT_EVERY},
	{"from", required_argument, NULL, OPT_FROM},
	{"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
	{"priority", required_argument, NULL, 'p'},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"tz", required_argument, NULL, OPT_TZ},
	{NULL, 0, NULL, 0},
};

/* A schedule's name follows the rule of queue names: it goes into job keys and labels. */
static void
check_name(const struct pgjq_common *c, const char *name)
{
	if (!pgjq_queue_valid(name, strlen(name)))
		pgjq_usage_error(c, "invalid schedule name '%s': use " PGJQ_QUEUE_RULE, name);
}

/* "2027-03-28T01:00Z", seconds and the Z optional, a space for the T: UTC, in microseconds. */
static int64_t
parse_utc(const char *s)
{
	struct tm tm = {0};
	int sec = 0, used = 0;
	char t, z = 'Z', extra;

	if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &t,
	    &tm.tm_hour, &tm.tm_min, &used) != 6 || (t != 'T' && t != ' '))
		return -1;
	s += used;
	if (*s == ':' && sscanf(s, ":%2d%n", &sec, &used) == 1)
		s += used;
	if (*s != '\0' && (sscanf(s, "%c%c", &z, &extra) != 1 || z != 'Z'))
		return -1;
	if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || sec > 59)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	tm.tm_sec = sec;
	return (int64_t)timegm(&tm) * 1000000;
}

int
main(int argc, char **argv)
{
	struct pgjq_common common;
	struct pgjq_schedule_add a = {.tz = "UTC", .catch_up = PGJQ_CATCH_UP_LAST,
	    .max_attempts = PGJQ_DEFAULT_MAX_ATTEMPTS, .payload = "{}"};
	bool every_given = false, tz_given = false, job_opts = false, count_given = false;
	long count = 5;
	int64_t from = -1;
	const char *cmd;
	PGconn *conn;
	int opt, status, cu;

	pgjq_common_init(&common, argv[0], usage);
	common.options = options_help;
	while ((opt = getopt_long(argc, argv, "d:hn:p:q:V", longopts, NULL)) != -1) {
		if (pgjq_common_option(&common, opt, optarg))
			continue;
		switch (opt) {
		case 'n':
			count = pgjq_opt_long(&common, "--count", optarg, 1, 100000);
			count_given = true;
			break;
		case 'p':
			a.priority = (int)pgjq_opt_long(&common, "--priority", optarg,
			    -2147483647L - 1, 2147483647L);
			job_opts = true;
			break;
		case OPT_CATCH_UP:
			if ((cu = pgjq_catch_up_parse(optarg)) < 0)
				pgjq_usage_error(&common, "--catch-up: expected none, last or all, got '%s'",
				    optarg);
			a.catch_up = (enum pgjq_catch_up)cu;
			job_opts = true;
			break;
		case OPT_CRON:
			a.cron = optarg;
			break;
		case OPT_EVERY:
			a.every_us = pgjq_opt_duration(&common, "--every", optarg);
			if (a.every_us < 1000000)
				pgjq_usage_error(&common, "--every: at least 1s, got '%s'", optarg);
			every_given = true;
			break;
		case OPT_FROM:
			if ((from = parse_utc(optarg)) < 0)
				pgjq_usage_error(&common, "--from: expected YYYY-MM-DDTHH:MM[:SS]Z (UTC), got '%s'",
				    optarg);
			count_given = true;
			break;
		case OPT_MAX_ATTEMPTS:
			a.max_attempts = (int)pgjq_opt_long(&common, "--max-attempts", optarg, 1,
			    2147483647L);
			job_opts = true;
			break;
		case OPT_TIMEOUT:
			a.timeout_us = pgjq_opt_duration(&common, "--timeout", optarg);
			if (a.timeout_us == 0)
				pgjq_usage_error(&common, "--timeout: must be more than zero");
			job_opts = true;
			break;
		case OPT_TZ:
			if (!pgjq_tz_known(optarg))
				pgjq_usage_error(&common, "--tz: '%s' is not a time zone in this host's tz "
				    "database (an IANA name such as Europe/Berlin)", optarg);
			a.tz = optarg;
			tz_given = true;
			break;
		default:
			common.usage(stderr);
			return PGJQ_EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		pgjq_usage_error(&common, "no command: add, list, rm, pause, resume, run or next");
	cmd = argv[0];
	argc--;
	argv++;

	if (strcmp(cmd, "next") == 0) {
		struct pgjq_slots sl;
		char why[256];

		if (argc != 1)
			pgjq_usage_error(&common, "next: expected one cron expression (quote it)");
		if (every_given || a.cron != NULL || job_opts || common.queue_given)
			pgjq_usage_error(&common, "next: takes only --tz, -n and --from");
		if (pgjq_schedule_slots(argv[0], 0, a.tz, &sl, why, sizeof why) != 0)
			pgjq_usage_error(&common, "next: %s", why);
		return pgjq_schedule_next(&sl, (int)count, from, common.json);
	}
	if (count_given || (strcmp(cmd, "add") != 0 && (tz_given || job_opts || every_given ||
	    a.cron != NULL)))
		pgjq_usage_error(&common, "%s: these options are for add%s", cmd,
		    count_given ? " (and -n, --from for next)" : "");

	if (strcmp(cmd, "add") == 0) {
		char why[256];
		json_error_t jerr;
		json_t *payload;

		if (argc < 1 || argc > 2)
			pgjq_usage_error(&common, "add: expected a name and at most one payload");
		check_name(&common, argv[0]);
		a.name = argv[0];
		if (!common.queue_given || common.nqueues > 1)
			pgjq_usage_error(&common, "add: give the schedule's queue with one -q");
		a.queue = common.queue;
		if ((a.cron != NULL) == every_given)
			pgjq_usage_error(&common, "add: give one of --cron and --every");
		if (a.cron != NULL) {
			struct pgjq_cron c;

			if (pgjq_cron_parse(a.cron, &c, why, sizeof why) != 0)
				pgjq_usage_error(&common, "--cron: %s", why);
		} else if (tz_given) {
			pgjq_usage_error(&common, "--tz: intervals count from the epoch; a zone is for --cron");
		}
		if (argc == 2) {
			payload = json_loads(argv[1], JSON_DECODE_ANY, &jerr);
			if (payload == NULL)
				pgjq_die(PGJQ_EX_DATAERR, "payload: invalid JSON: %s", jerr.text);
			json_decref(payload);
			a.payload = argv[1];
		}
		pgjq_schema_allow_create();
		conn = pgjq_connect(pgjq_conninfo(common.conninfo), common.schema);
		status = pgjq_schedule_add(conn, common.schema, &a, common.json);
	} else if (strcmp(cmd, "list") == 0) {
		char *queues = common.nqueues > 0 ? pgjq_queue_array(common.queues, common.nqueues) :
		    NULL;

		if (argc != 0)
			pgjq_usage_error(&common, "list: takes no arguments (-q picks queues)");
		conn = pgjq_connect(pgjq_conninfo(common.conninfo), common.schema);
		status = pgjq_schedule_list(conn, queues, common.json);
		free(queues);
	} else if (strcmp(cmd, "rm") == 0 || strcmp(cmd, "pause") == 0 ||
	    strcmp(cmd, "resume") == 0 || strcmp(cmd, "run") == 0) {
		if (argc == 0)
			pgjq_usage_error(&common, "%s: give the names of schedules", cmd);
		if (common.queue_given)
			pgjq_usage_error(&common, "%s: -q is for add and list", cmd);
		for (int i = 0; i < argc; i++)
			check_name(&common, argv[i]);
		conn = pgjq_connect(pgjq_conninfo(common.conninfo), common.schema);
		status = pgjq_schedule_steer(conn, common.schema, cmd, argv, argc, common.json);
	} else {
		pgjq_usage_error(&common, "'%s' is not a command: add, list, rm, pause, resume, run or "
		    "next", cmd);
	}
	PQfinish(conn);
	return status;
}
