#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"
#include "db.h"
#include "diag.h"
#include "xalloc.h"

static PGconn *
db_open(const char *conninfo, bool quiet, PGconn *beside)
{
	/*
	 * expand_dbname lets "dbname" carry a whole URI or conninfo string;
	 * a keyword after it overrides what it says (client_encoding: pgjq
	 * speaks UTF8), one before it only fills a gap (connect_timeout),
	 * and a user's own application_name wins over the fallback.  Beside another
	 * connection, its server's address comes last, and overrides a list
	 * of hosts: a second connection that found another server than the
	 * first (a standby since promoted, say) would split the worker's
	 * work between two databases.
	 */
	const char *keys[8] = {"connect_timeout", "dbname", "fallback_application_name", "client_encoding"};
	const char *values[8] = {"10", conninfo, pgjq_progname(), "UTF8"};
	int first = 0, n = 4;
	PGconn *conn;

	if (beside != NULL) {
		const char *addr = PQhostaddr(beside);

		keys[n] = "host";
		values[n++] = PQhost(beside);
		keys[n] = "port";
		values[n++] = PQport(beside);
		if (addr != NULL && *addr != '\0') {
			keys[n] = "hostaddr";
			values[n++] = addr;
		}
	}
	keys[n] = values[n] = NULL;

	/*
	 * A host that does not answer at all (its link down) would hold us
	 * for the kernel's own timeout, minutes, deaf to signals.  A timeout
	 * in conninfo, after this one, wins; so does PGCONNECT_TIMEOUT.
	 */
	if (getenv("PGCONNECT_TIMEOUT") != NULL)
		first = 1;
	conn = PQconnectdbParams(keys + first, values + first, 1);
	if (conn == NULL)
		pgjq_die(PGJQ_EX_SOFTWARE, "out of memory");
	if (PQstatus(conn) != CONNECTION_OK) {
		/*
		 * libpq never shows the password when a connection fails, but it
		 * quotes a malformed connection string, password and all.
		 */
		if (!quiet) {
			char *bad = pgjq_conninfo_error(conninfo);

			pgjq_warn("cannot connect to the database: %s", bad != NULL ? bad : PQerrorMessage(conn));
			free(bad);
		}
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

PGconn *
pgjq_db_open(const char *conninfo, bool quiet)
{
	return db_open(conninfo, quiet, NULL);
}

PGconn *
pgjq_db_open_beside(const char *conninfo, PGconn *beside)
{
	return db_open(conninfo, true, beside);
}

bool
pgjq_notifications_arrive(PGconn *conn, const char *conninfo, const char *channel)
{
	static unsigned count;
	char token[64];
	const char *params[] = {channel, token};
	int64_t deadline;
	PGconn *other;
	PGresult *res;
	bool sent;

	snprintf(token, sizeof token, "pgjq-probe %ld.%u", (long)getpid(), ++count);
	if ((other = pgjq_db_open_beside(conninfo, conn)) == NULL)
		return true; /* cannot tell: the caller finds a lost database by itself */
	res = pgjq_exec(other, "SELECT pg_catalog.pg_notify($1, $2)", 2, params);
	sent = pgjq_ok(res);
	PQclear(res);
	PQfinish(other);
	if (!sent)
		return true;
	/*
	 * Nothing is sent meanwhile: a pooler in transaction mode hands on
	 * a notification, if at all, with the answer to the next statement,
	 * and only one that comes to an idle connection shows that they
	 * arrive.  Directly, it is on its way as the NOTIFY commits.
	 */
	deadline = pgjq_now_us() + PGJQ_PROBE_WAIT_US;
	for (;;) {
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
		int64_t left = deadline - pgjq_now_us();
		PGnotify *n;

		if (!PQconsumeInput(conn))
			return true;
		while ((n = PQnotifies(conn)) != NULL) {
			bool it = strcmp(n->relname, channel) == 0 && strcmp(n->extra, token) == 0;

			/* Others are dropped: the callers read what they watch after this anyway. */
			PQfreemem(n);
			if (it)
				return true;
		}
		if (left <= 0)
			return false;
		if (poll(&pfd, 1, (int)(left / 1000) + 1) < 0 && errno != EINTR)
			return true;
	}
}

/* The schema {S} stands for, as given and as quoted. */
static char *sql_schema, *sql_ident;

/* Expansions of constant SQL texts, found by the text's address. */
static struct sql_cached {
	const char *tmpl;
	char *sql;
} *sql_cache;
static size_t sql_ncached, sql_cache_cap;

void
pgjq_sql_schema(PGconn *conn, const char *schema)
{
	char *ident;

	if (sql_schema != NULL) {
		/* The cached texts name the first schema: a second would be misplaced. */
		if (strcmp(sql_schema, schema) != 0)
			pgjq_die(PGJQ_EX_SOFTWARE, "schema %s after schema %s in one process", schema,
			    sql_schema);
		return;
	}
	ident = PQescapeIdentifier(conn, schema, strlen(schema));
	if (ident == NULL)
		pgjq_die(PGJQ_EX_SOFTWARE, "cannot quote schema name: %s", PQerrorMessage(conn));
	sql_ident = pgjq_xstrdup(ident);
	PQfreemem(ident);
	sql_schema = pgjq_xstrdup(schema);
}

const char *
pgjq_sql_schema_ident(void)
{
	return sql_ident;
}

static char *
sql_expand(const char *tmpl)
{
	struct pgjq_buf b = {0};
	const char *p = tmpl, *m;

	if (sql_ident == NULL)
		pgjq_die(PGJQ_EX_SOFTWARE, "SQL before the schema is known");
	pgjq_buf_reserve(&b, strlen(tmpl) + 1);
	while ((m = strstr(p, "{S}")) != NULL) {
		pgjq_buf_append(&b, p, (size_t)(m - p));
		pgjq_buf_printf(&b, "%s", sql_ident);
		p = m + 3;
	}
	pgjq_buf_printf(&b, "%s", p);
	return b.data;
}

const char *
pgjq_sql(const char *tmpl)
{
	for (size_t i = 0; i < sql_ncached; i++)
		if (sql_cache[i].tmpl == tmpl)
			return sql_cache[i].sql;
	sql_cache = pgjq_xgrow(sql_cache, &sql_cache_cap, sql_ncached + 1, sizeof *sql_cache);
	sql_cache[sql_ncached].tmpl = tmpl;
	sql_cache[sql_ncached].sql = sql_expand(tmpl);
	return sql_cache[sql_ncached++].sql;
}

PGresult *
pgjq_exec(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
}

PGresult *
pgjq_exec_within(PGconn *conn, const char *sql, int nparams, const char *const *params,
    int64_t timeout_us, const volatile sig_atomic_t *give_up)
{
	int64_t deadline = pgjq_now_us() + timeout_us;
	PGresult *kept;

	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
		return PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
	while (PQisBusy(conn)) {
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
		int64_t left = deadline - pgjq_now_us();

		if (left <= 0 || (give_up != NULL && *give_up)) {
			errno = left <= 0 ? ETIMEDOUT : EINTR;
			return NULL;
		}
		/* A signal ends the poll early (EINTR): give_up is looked at again. */
		if (poll(&pfd, 1, left > 1000000 ? 1000 : (int)(left / 1000) + 1) < 0 && errno != EINTR)
			break;
		if (pfd.revents != 0 && !PQconsumeInput(conn))
			break; /* PQgetResult reports the failure */
	}
	kept = pgjq_answer(conn);
	return kept != NULL ? kept : PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
}

PGresult *
pgjq_answer(PGconn *conn)
{
	PGresult *res, *kept = NULL;

	/* As PQexec: the last result, unless an earlier one was an error. */
	while ((res = PQgetResult(conn)) != NULL) {
		if (kept != NULL && !pgjq_ok(kept)) {
			PQclear(res);
			continue;
		}
		PQclear(kept);
		kept = res;
	}
	return kept;
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
