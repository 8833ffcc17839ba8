/* jq-retry: put failed or cancelled jobs back in their queue; or, with --now, run scheduled ones now. */
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
	OPT_FAILED = PGJQ_OPT_TOOL,
	OPT_NOW,
};

static const char options_help[] =
	    "  -q, --queue queue        with --failed: this queue's failed jobs; repeat for more\n"
	    "      --failed             retry the failed jobs (of -q's queue)\n"
	    "      --now                queue the scheduled jobs named now, instead of after their delay\n"
	    "  -n, --dry-run            say what would be retried, change nothing\n"
	    "      --json               a JSON object per job\n";

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: jq-retry [-hnV] [-d conninfo] [-q queue]... [--failed] [--json] [--schema name]\n"
	    "                [id ...]\n"
	    "       jq-retry [-hnV] [-d conninfo] [--json] [--schema name] --now id ...\n");
}

static const struct option longopts[] = {
	PGJQ_COMMON_LONGOPTS,
	{"dry-run", no_argument, NULL, 'n'},
	{"failed", no_argument, NULL, OPT_FAILED},
	{"now", no_argument, NULL, OPT_NOW},
	{NULL, 0, NULL, 0},
};

/* Locks the named jobs that may be retried. */
static const char lock_ids_sql[] =
	"SELECT coalesce(pg_catalog.array_agg(l.id ORDER BY l.id), '{}')::text FROM ("
	"  SELECT h.id FROM {S}.history h"
	"   WHERE h.id = ANY ($1::bigint[]) AND h.state IN ('failed', 'cancelled')"
	"   ORDER BY h.id FOR UPDATE) l";
/* Locks the named jobs that --now may queue: scheduled, waiting for nothing. */
static const char lock_now_sql[] =
	"SELECT coalesce(pg_catalog.array_agg(l.id ORDER BY l.id), '{}')::text FROM ("
	"  SELECT j.id FROM {S}.jobs j"
	"   WHERE j.id = ANY ($1::bigint[]) AND j.state = 'scheduled' AND j.waiting = 0"
	"   ORDER BY j.id FOR UPDATE) l";
/* A queue's failed jobs, a batch at a time, each batch committed. */
static const struct pgjq_steer_phase retry_failed[] = {
	{"SELECT b.id, b.outcome FROM {S}.retry_batch($1::text, $2::bigint, $3::integer) b", 1000},
};
/* --dry-run: the same jobs, moved nowhere. */
static const struct pgjq_steer_phase list_failed[] = {
	{"SELECT h.id, 'queued' FROM {S}.history h"
	 " WHERE h.queue = $1::text AND h.state = 'failed' AND h.id > $2::bigint"
	 " ORDER BY h.id LIMIT $3::integer", 10000},
};

struct judge_ctx {
	bool json;
	bool dry_run;
	bool now;
};

static int
judge(void *ctx, const struct pgjq_steer_row *r, struct pgjq_buf *out)
{
	const struct judge_ctx *c = ctx;
	bool retried = r->eligible && r->outcome != NULL && strcmp(r->outcome, "queued") == 0;
	int status = 0;

	if (retried) {
		if (!c->json)
			pgjq_buf_printf(out, "%" PRId64 "\n", r->id);
	} else if (r->outcome == NULL) {
		pgjq_warn("job %" PRId64 ": no such job", r->id);
		status = PGJQ_EX_NOJOB;
	} else if (c->now) {
		pgjq_warn("job %" PRId64 " is %s%s, not scheduled; not queued now", r->id, r->outcome,
		    strcmp(r->outcome, "scheduled") == 0 ? " waiting for its dependencies" : "");
		status = PGJQ_EX_NO;
	} else if (strcmp(r->outcome, "key-taken") == 0) {
		pgjq_warn("job %" PRId64 ": a live job in its queue holds its key; not retried", r->id);
		status = PGJQ_EX_NO;
	} else {
		pgjq_warn("job %" PRId64 " is %s, not failed or cancelled; not retried", r->id,
		    r->outcome);
		status = PGJQ_EX_NO;
	}
	if (c->json)
		pgjq_buf_printf(out, "{\"id\":%" PRId64 ",\"retried\":%s,\"state\":%s%s%s,\"dry_run\":%s}\n",
		    r->id, retried ? "true" : "false", r->outcome ? "\"" : "",
		    r->outcome ? r->outcome : "null", r->outcome ? "\"" : "",
		    c->dry_run ? "true" : "false");
	return status;
}

int
main(int argc, char **argv)
{
	struct pgjq_common common;
	struct judge_ctx ctx = {0};
	struct pgjq_steer s = {.function = "retry_job", .judge = judge, .ctx = &ctx};
	bool failed = false;
	int64_t *ids;
	size_t n;
	char *array;
	const char *params[1];
	int opt, status;

	pgjq_common_init(&common, argv[0], usage);
	common.options = options_help;
	while ((opt = getopt_long(argc, argv, "d:hnq:V", longopts, NULL)) != -1) {
		if (pgjq_common_option(&common, opt, optarg))
			continue;
		switch (opt) {
		case 'n':
			ctx.dry_run = true;
			break;
		case OPT_FAILED:
			failed = true;
			break;
		case OPT_NOW:
			ctx.now = true;
			break;
		default:
			common.usage(stderr);
			return PGJQ_EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	ids = pgjq_opt_ids(&common, argc, argv, &n);
	if (ctx.now && (failed || n == 0 || common.queue_given))
		pgjq_usage_error(&common, "--now takes job ids, and neither -q nor --failed");
	if (failed == (n > 0))
		pgjq_usage_error(&common, "give either job ids or --failed");
	if (n > 0 && common.queue_given)
		pgjq_usage_error(&common, "-q goes with --failed, not with job ids");

	ctx.json = common.json;
	s.dry_run = ctx.dry_run;
	if (failed) {
		/* Without -q, the default queue: a retry of every queue's failures is asked by name. */
		status = pgjq_steer_batches(pgjq_conninfo(common.conninfo), common.schema,
		    common.nqueues > 0 ? common.queues : &common.queue,
		    common.nqueues > 0 ? common.nqueues : 1, ctx.dry_run ? list_failed : retry_failed, 1,
		    judge, &ctx, ctx.dry_run ? "listed" : "retried");
		free(ids);
		return status;
	}
	params[0] = array = pgjq_id_array(ids, n);
	s.lock_sql = ctx.now ? lock_now_sql : lock_ids_sql;
	if (ctx.now)
		s.function = "run_now";
	s.ids = array;
	s.lock_params = params;
	s.nlock = 1;
	status = pgjq_steer_run(pgjq_conninfo(common.conninfo), common.schema, &s);
	free(array);
	free(ids);
	return status;
}
