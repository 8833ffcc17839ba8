#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "diag.h"
#include "schema.h"
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
