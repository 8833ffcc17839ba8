#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "diag.h"
#include "schema.h"
#include "sigpipe.h"
#include "steer.h"

static void
run(PGconn *conn, const char *sql)
{
	PQclear(pgjq_exec_or_die(conn, sql, 0, NULL));
}

int
pgjq_steer_run(const char *conninfo, const char *schema, const struct pgjq_steer *s)
{
	PGconn *conn = pgjq_connect(conninfo, schema);
	struct pgjq_buf out = {0};
	PGresult *locked, *res;
	const char *params[2];
	char *sql;
	int status = 0;

	run(conn, "BEGIN");
	locked = pgjq_exec_or_die(conn, pgjq_sql(s->lock_sql), s->nlock, s->lock_params);
	params[0] = s->ids != NULL ? s->ids : PQgetvalue(locked, 0, 0);
	params[1] = PQgetvalue(locked, 0, 0);
	sql = pgjq_xasprintf(
	    "SELECT u.id, %s.%s(u.id), u.id = ANY ($2::bigint[]) "
	    "  FROM pg_catalog.unnest($1::bigint[]) WITH ORDINALITY AS u(id, n) ORDER BY u.n",
	    pgjq_sql_schema_ident(), s->function);
	res = pgjq_exec_or_die(conn, sql, 2, params);
	free(sql);
	for (int i = 0; i < PQntuples(res); i++) {
		struct pgjq_steer_row r;
		int st;

		r.id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		r.outcome = PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1);
		r.eligible = strcmp(PQgetvalue(res, i, 2), "t") == 0;
		st = s->judge(s->ctx, &r, &out);
		/* No such job (66) outweighs a job that could not move (1). */
		if (st == PGJQ_EX_NOJOB || (st != 0 && status == 0))
			status = st;
	}
	PQclear(res);
	PQclear(locked);
	run(conn, s->dry_run ? "ROLLBACK" : "COMMIT");
	PQfinish(conn);
	if ((out.len > 0 && fwrite(out.data, 1, out.len, stdout) != out.len) || fflush(stdout) != 0)
		pgjq_die(PGJQ_EX_SOFTWARE, "cannot write the job ids");
	pgjq_buf_free(&out);
	return status;
}

static void
write_out(struct pgjq_buf *out)
{
	if ((out->len > 0 && fwrite(out->data, 1, out->len, stdout) != out->len) || fflush(stdout) != 0)
		pgjq_die(PGJQ_EX_IOERR, "cannot write the job ids; the jobs printed so far were moved, "
		    "and so were those of the last batch");
	pgjq_buf_reset(out);
}

/* A job that reached a final state by itself between the pick and the move. */
static bool
finished_meanwhile(const char *outcome)
{
	return outcome == NULL || strcmp(outcome, "completed") == 0 || strcmp(outcome, "failed") == 0;
}

int
pgjq_steer_batches(const char *conninfo, const char *schema, const char *const *queues,
    size_t nqueues, const struct pgjq_steer_phase *phases, size_t nphases,
    pgjq_steer_fn *judge, void *ctx, const char *done)
{
	static const int stops[] = {SIGINT, SIGTERM};
	PGconn *conn = pgjq_connect(conninfo, schema);
	struct pgjq_buf out = {0};
	int status = 0, sig;
	long moved = 0;

	/* A stop signal ends the run between batches: the one in flight commits and is printed. */
	pgjq_sigpipe_catch(stops, sizeof stops / sizeof stops[0]);

	for (size_t p = 0; p < nphases; p++) {
		for (size_t q = 0; q < nqueues; q++) {
			char after[32] = "0", batch[16];
			const char *params[] = {queues[q], after, batch};
			int n;

			snprintf(batch, sizeof batch, "%d", phases[p].batch);
			do {
				/* One statement: its own transaction, committed when it returns. */
				PGresult *res = pgjq_exec_or_die(conn, pgjq_sql(phases[p].sql), 3, params);

				n = PQntuples(res);
				for (int i = 0; i < n; i++) {
					struct pgjq_steer_row r;
					int st;

					r.id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
					r.outcome = PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1);
					r.eligible = true;
					snprintf(after, sizeof after, "%" PRId64, r.id);
					if (finished_meanwhile(r.outcome))
						continue;
					st = judge(ctx, &r, &out);
					if (st != 0 && status == 0)
						status = st;
					moved += st == 0;
				}
				PQclear(res);
				write_out(&out);
				if ((sig = pgjq_sigpipe_next()) != 0) {
					pgjq_warn("interrupted by %s: %ld jobs %s, their ids printed; the others "
					    "were left as they were", sig == SIGINT ? "SIGINT" : "SIGTERM", moved, done);
					PQfinish(conn);
					pgjq_buf_free(&out);
					return 128 + sig;
				}
			} while (n > 0);
		}
	}
	PQfinish(conn);
	pgjq_buf_free(&out);
	return status;
}
