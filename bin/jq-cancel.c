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

static const char options_help[] =
	    "      --json               a JSON object per job\n";

static void
usage(FILE *f)
{
	fprintf(f, "usage: jq-cancel [-hV] [-d conninfo] [--json] [--schema name] id ...\n");
}

static const struct option longopts[] = {
	PGJQ_COMMON_LONGOPTS,
	{NULL, 0, NULL, 0},
};

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
	const char *params[1];
	int64_t *ids;
	size_t n;
	char *array;
	int opt, status;

	pgjq_common_init(&common, argv[0], usage);
	common.options = options_help;
	while ((opt = getopt_long(argc, argv, "d:hV", longopts, NULL)) != -1) {
		if (opt == 'q')
			pgjq_usage_error(&common, "-q: give the ids of the jobs to cancel");
		if (pgjq_common_option(&common, opt, optarg))
			continue;
		common.usage(stderr);
		return PGJQ_EX_USAGE;
	}
	argc -= optind;
	argv += optind;
	ids = pgjq_opt_ids(&common, argc, argv, &n);
	if (n == 0)
		pgjq_usage_error(&common, "no job ids given");

	params[0] = s.ids = array = pgjq_id_array(ids, n);
	s.lock_params = params;
	s.ctx = &common.json;
	status = pgjq_steer_run(pgjq_conninfo(common.conninfo), common.schema, &s);
	free(array);
	free(ids);
	return status;
}
