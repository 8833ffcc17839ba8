/* jq-stats: queue depth, age, throughput, run times, failure rate, workers. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "diag.h"
#include "stats.h"

enum {
	OPT_PROMETHEUS = PGJQ_OPT_TOOL,
	OPT_WATCH,
};

/* Refreshing faster than this would only load the database. */
#define WATCH_MIN_US 100000

static const char options_help[] =
	    "  -q, --queue queue        this queue only\n"
	    "      --json               JSON objects, one per line\n"
	    "      --prometheus         Prometheus' text format\n"
	    "      --watch seconds      again every so many seconds\n";

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: jq-stats [-hV] [-d conninfo] [-q queue] [--json | --prometheus] [--schema name]\n"
	    "                [--watch seconds]\n");
}

static const struct option longopts[] = {
	PGJQ_COMMON_LONGOPTS,
	{"prometheus", no_argument, NULL, OPT_PROMETHEUS},
	{"watch", required_argument, NULL, OPT_WATCH},
	{NULL, 0, NULL, 0},
};

int
main(int argc, char **argv)
{
	struct pgjq_common common;
	struct pgjq_stats_opts o = {0};
	bool prometheus = false;
	int opt, status;

	pgjq_common_init(&common, argv[0], usage);
	common.options = options_help;
	while ((opt = getopt_long(argc, argv, "d:hq:V", longopts, NULL)) != -1) {
		if (pgjq_common_option(&common, opt, optarg))
			continue;
		switch (opt) {
		case OPT_PROMETHEUS:
			prometheus = true;
			break;
		case OPT_WATCH:
			o.watch_us = pgjq_opt_duration(&common, "--watch", optarg);
			if (o.watch_us < WATCH_MIN_US)
				pgjq_usage_error(&common, "--watch: '%s' is too short: at least 100ms", optarg);
			break;
		default:
			common.usage(stderr);
			return PGJQ_EX_USAGE;
		}
	}
	if (optind < argc)
		pgjq_usage_error(&common, "unexpected argument '%s'", argv[optind]);
	if (prometheus && common.json)
		pgjq_usage_error(&common, "--json and --prometheus exclude each other");
	if (prometheus && o.watch_us > 0)
		pgjq_usage_error(&common, "--prometheus is one reading for a scraper, not for --watch");

	o.conninfo = pgjq_conninfo(common.conninfo);
	o.schema = common.schema;
	o.queues = common.queues;
	o.nqueues = common.nqueues;
	o.format = prometheus ? PGJQ_STATS_PROMETHEUS : common.json ? PGJQ_STATS_JSON : PGJQ_STATS_TABLE;
	status = pgjq_stats(&o);
	return status;
}
