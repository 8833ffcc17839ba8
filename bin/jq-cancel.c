/* jq-cancel: cancel queued, scheduled or running jobs. */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "diag.h"
#include "job.h"
#include "steer.h"

enum {
	OPT_STATE = PGJQ_OPT_TOOL,
};

static const char options_help[] =
	    "  -q, --queue queue        cancel this queue's live jobs, not named ones; repeat for more\n"
	    "      --state state        with -q: only its scheduled, queued or running jobs\n"
	    "      --json               a JSON object per job\n";

static void
usage(FILE *f)
{
	fprintf(f, "usage: jq-cancel [-hV] [-d conninfo] [--json] [--schema name] id ...\n"
	    "       jq-cancel [-hV] [-d conninfo] -q queue ... [--json] [--schema name] [--state state]\n");
}

static const struct option longopts[] = {
	PGJQ_COMMON_LONGOPTS,
	{"state", required_argument, NULL, OPT_STATE},
	{NULL, 0, NULL, 0},
};

/*
 * A queue's jobs by state, each batch committed.  Scheduled and queued
 * ones go a thousand at a time; claimed and running ones one at a time
 * through cancel_job(), which tells their worker, so that no batch holds
 * a job a worker is about to report.  Claimed jobs are queued ones a
 * worker has taken ahead: they go with the queued.
 */
static const struct pgjq_steer_phase cancel_scheduled =
	{"SELECT b, 'cancelled' FROM {S}.cancel_batch($1::text, 'scheduled', $2::bigint, $3::integer) b", 1000};
static const struct pgjq_steer_phase cancel_queued =
	{"SELECT b, 'cancelled' FROM {S}.cancel_batch($1::text, 'queued', $2::bigint, $3::integer) b", 1000};
static const struct pgjq_steer_phase cancel_claimed =
	{"SELECT x.id, {S}.cancel_job(x.id) FROM (SELECT j.id FROM {S}.jobs j"
	 " WHERE j.queue = $1::text AND j.state = 'claimed' AND j.id > $2::bigint"
	 " ORDER BY j.id LIMIT $3::integer) x", 1};
static const struct pgjq_steer_phase cancel_running =
	{"SELECT x.id, {S}.cancel_job(x.id) FROM (SELECT j.id FROM {S}.jobs j"
	 " WHERE j.queue = $1::text AND j.state = 'running' AND j.id > $2::bigint"
	 " ORDER BY j.id LIMIT $3::integer) x", 1};

/* Locks the named jobs that are live, so none finishes meanwhile. */
static const char lock_sql[] =
	"SELECT coalesce(pg_catalog.array_agg(l.id ORDER BY l.id), '{}')::text FROM ("
	"  SELECT j.id FROM {S}.jobs j WHERE j.id = ANY ($1::bigint[])"
	"   ORDER BY j.id FOR UPDATE) l";

static int
judge(void *ctx, const struct pgjq_steer_row *r, struct pgjq_buf *out)
{
	const bool *json = ctx;
	bool changed = r->eligible && r->outcome != NULL;
	int status = 0;

	if (r->outcome == NULL) {
		pgjq_warn("job %" PRId64 ": no such job", r->id);
		status = PGJQ_EX_NOJOB;
	} else if (!changed) {
		pgjq_warn("job %" PRId64 " is already %s; nothing changed", r->id, r->outcome);
		status = PGJQ_EX_NO;
	} else if (strcmp(r->outcome, "running") == 0) {
		pgjq_warn("job %" PRId64 " is running; its worker will stop it", r->id);
	}
	if (*json)
		pgjq_buf_printf(out, "{\"id\":%" PRId64 ",\"cancelled\":%s,\"state\":%s%s%s}\n",
		    r->id, changed ? "true" : "false", r->outcome ? "\"" : "",
		    r->outcome ? r->outcome : "null", r->outcome ? "\"" : "");
	else if (changed)
		pgjq_buf_printf(out, "%" PRId64 "\n", r->id);
	return status;
}

int
main(int argc, char **argv)
{
	struct pgjq_common common;
	struct pgjq_steer s = {.function = "cancel_job", .lock_sql = lock_sql, .nlock = 1,
	    .judge = judge};
	struct pgjq_steer_phase phases[4];
	size_t nphases = 0;
	const char *params[1], *state = NULL;
	int64_t *ids;
	size_t n;
	char *array;
	int opt, status;

	pgjq_common_init(&common, argv[0], usage);
	common.options = options_help;
	while ((opt = getopt_long(argc, argv, "d:hq:V", longopts, NULL)) != -1) {
		if (pgjq_common_option(&common, opt, optarg))
			continue;
		if (opt == OPT_STATE) {
			if (strcmp(optarg, "scheduled") != 0 && strcmp(optarg, "queued") != 0 &&
			    strcmp(optarg, "running") != 0)
				pgjq_usage_error(&common, "--state: '%s' is not scheduled, queued or running", optarg);
			state = optarg;
			continue;
		}
		common.usage(stderr);
		return PGJQ_EX_USAGE;
	}
	argc -= optind;
	argv += optind;
	ids = pgjq_opt_ids(&common, argc, argv, &n);
	if (n > 0 && (common.queue_given || state != NULL))
		pgjq_usage_error(&common, "-q and --state cancel a queue's jobs, not with job ids");
	if (state != NULL && !common.queue_given)
		pgjq_usage_error(&common, "--state needs -q");
	if (n == 0 && !common.queue_given)
		pgjq_usage_error(&common, "no job ids given, nor -q");

	if (common.queue_given) {
		if (state == NULL || strcmp(state, "scheduled") == 0)
			phases[nphases++] = cancel_scheduled;
		if (state == NULL || strcmp(state, "queued") == 0) {
			phases[nphases++] = cancel_queued;
			phases[nphases++] = cancel_claimed;
		}
		if (state == NULL || strcmp(state, "running") == 0)
			phases[nphases++] = cancel_running;
		status = pgjq_steer_batches(pgjq_conninfo(common.conninfo), common.schema,
		    common.queues, common.nqueues, phases, nphases, judge, &common.json, "cancelled");
		free(ids);
		return status;
	}

	params[0] = s.ids = array = pgjq_id_array(ids, n);
	s.lock_params = params;
	s.ctx = &common.json;
	status = pgjq_steer_run(pgjq_conninfo(common.conninfo), common.schema, &s);
	free(array);
	free(ids);
	return status;
}
