#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "diag.h"
#include "schema.h"

const char *
pgjq_conninfo(const char *option)
{
	const char *env;

	if (option != NULL)
		return option;
	env = getenv("JQ_DATABASE_URL");
	return env != NULL && *env != '\0' ? env : NULL;
}

PGconn *
pgjq_connect_try(const char *conninfo, const char *schema, bool quiet, int *status)
{
	/*
	 * expand_dbname lets "dbname" carry a whole URI or conninfo string;
	 * later keywords only fill what it leaves out, so a user's own
	 * application_name or client_encoding still wins.
	 */
	const char *keys[] = {"dbname", "fallback_application_name", "client_encoding", NULL};
	const char *values[] = {conninfo, pgjq_progname(), "UTF8", NULL};
	PGconn *conn;

	conn = PQconnectdbParams(keys, values, 1);
	if (conn == NULL)
		pgjq_die(PGJQ_EX_SOFTWARE, "out of memory");
	if (PQstatus(conn) != CONNECTION_OK) {
		/* libpq's message never contains the password. */
		if (!quiet)
			pgjq_warn("cannot connect to the database: %s", PQerrorMessage(conn));
		PQfinish(conn);
		*status = PGJQ_EX_UNAVAILABLE;
		return NULL;
	}
	*status = pgjq_schema_ensure(conn, schema);
	if (*status != 0) {
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

PGconn *
pgjq_connect(const char *conninfo, const char *schema)
{
	int status;
	PGconn *conn = pgjq_connect_try(conninfo, schema, false, &status);

	if (conn == NULL)
		exit(status);
	return conn;
}

PGresult *
pgjq_exec(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
}

bool
pgjq_ok(const PGresult *res)
{
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_COPY_IN:
	case PGRES_COPY_OUT:
		return true;
	default:
		return false;
	}
}

PGresult *
pgjq_exec_or_die(PGconn *conn, const char *sql, int nparams,
    const char *const *params)
{
	PGresult *res = pgjq_exec(conn, sql, nparams, params);

	if (!pgjq_ok(res))
		pgjq_die_result(conn, res, NULL);
	return res;
}

const char *
pgjq_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s ? s : "";
}

int
pgjq_failure_status(PGconn *conn, const PGresult *res)
{
	const char *state = pgjq_sqlstate(res);

	if (PQstatus(conn) == CONNECTION_BAD)
		return PGJQ_EX_TEMPFAIL;
	if (strcmp(state, "P0002") == 0)        /* no_data_found: no such job */
		return PGJQ_EX_NOJOB;
	if (strncmp(state, "08", 2) == 0 ||     /* connection exception */
	    strncmp(state, "40", 2) == 0 ||     /* serialization failure, deadlock */
	    strncmp(state, "53", 2) == 0 ||     /* insufficient resources */
	    strncmp(state, "57", 2) == 0 ||     /* operator intervention: shutdown, cancel */
	    strcmp(state, "55P03") == 0)        /* lock not available */
		return PGJQ_EX_TEMPFAIL;
	if (strncmp(state, "22", 2) == 0 ||     /* data exception */
	    strncmp(state, "23", 2) == 0)       /* integrity constraint violation */
		return PGJQ_EX_DATAERR;
	if (strncmp(state, "42", 2) == 0 ||     /* privileges, missing objects */
	    strcmp(state, "3F000") == 0 ||      /* no such schema */
	    strncmp(state, "28", 2) == 0)       /* authorization */
		return PGJQ_EX_UNAVAILABLE;
	return PGJQ_EX_SOFTWARE;
}

const char *
pgjq_failure_message(PGconn *conn, const PGresult *res)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (msg != NULL)
		return msg;
	if (res != NULL && *PQresultErrorMessage(res) != '\0')
		return PQresultErrorMessage(res);
	return PQerrorMessage(conn);
}

void
pgjq_die_result(PGconn *conn, PGresult *res, const char *context)
{
	int status = pgjq_failure_status(conn, res);

	if (context != NULL)
		pgjq_warn("%s: %s", context, pgjq_failure_message(conn, res));
	else
		pgjq_warn("%s", pgjq_failure_message(conn, res));
	PQclear(res);
	PQfinish(conn);
	exit(status);
}
