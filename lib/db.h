/*
 * db: connecting to PostgreSQL and running statements, with failures
 * turned into the exit statuses of pgjq(7).
 *
 * The connection string (conninfo.h) goes to libpq as it is, so every
 * libpq feature works unchanged.  Every connection names itself after the
 * tool in pg_stat_activity.  Connecting with the schema brought up to
 * date is schema.h's pgjq_connect(), above this module.
 *
 * A connection keeps no session state (no search_path, no prepared
 * statement, no session lock): through a pooler in transaction mode the
 * next statement may run on a server connection another client used.  So
 * every statement names our objects with their schema, written {S} in the
 * SQL text and expanded by pgjq_sql() to the schema's quoted identifier.
 */
#ifndef PGJQ_DB_H
#define PGJQ_DB_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "conninfo.h"

/*
 * A connection as libpq makes it from conninfo, with pgjq's defaults (a
 * connect timeout, the tool's name, UTF8), and no schema yet; NULL, after
 * saying why unless quiet, if it fails.
 */
PGconn *pgjq_db_open(const char *conninfo, bool quiet);

/*
 * The answer of a statement sent with the asynchronous API, once all of it
 * has come (PQisBusy false): as PQexec, its last result unless an earlier
 * one was an error; NULL if there was none (the connection broke).
 */
PGresult *pgjq_answer(PGconn *conn);

/* Another connection to the very server that beside is connected to; NULL if it fails. */
PGconn *pgjq_db_open_beside(const char *conninfo, PGconn *beside);

/*
 * Makes schema the one {S} stands for, quoted as an identifier by libpq
 * for conn's encoding.  A process uses one schema: pgjq_connect() sets it,
 * and a second, different one is an internal error.
 */
void pgjq_sql_schema(PGconn *conn, const char *schema);

/* The schema's quoted name, as {S} expands; NULL before pgjq_sql_schema(). */
const char *pgjq_sql_schema_ident(void);

/*
 * The SQL text tmpl with each {S} replaced by the schema's quoted name.
 * tmpl must be a constant (a literal, a static array): the expansion is
 * kept for the life of the process, found again by its address.
 */
const char *pgjq_sql(const char *tmpl);

/*
 * Whether notifications reach conn, which LISTENs on channel and has
 * nothing under way.  Only a NOTIFY sent from another connection tells:
 * through a pooler in transaction mode one of conn's own might run on the
 * very server connection that LISTENs, and arrive, although nothing sent
 * by others later would.  So one is sent from a short connection of its
 * own, and waited for PGJQ_PROBE_WAIT_US at most.  True when it cannot
 * tell (the database away: the caller finds that out by itself).
 * Other notifications that arrive meanwhile are dropped.
 */
#define PGJQ_PROBE_WAIT_US INT64_C(1000000)
bool pgjq_notifications_arrive(PGconn *conn, const char *conninfo, const char *channel);

/*
 * Runs one statement with text parameters.  The result is returned
 * whatever its status; pgjq_ok() tells success.  All user values reach
 * the server as parameters, never pasted into the SQL.
 */
PGresult *pgjq_exec(PGconn *conn, const char *sql, int nparams,
    const char *const *params);
bool pgjq_ok(const PGresult *res);

/*
 * pgjq_exec for a caller that must not wait for ever: NULL, with errno
 * ETIMEDOUT, if no answer came within timeout_us (a link that went down
 * without a word, say), or EINTR if *give_up became true meanwhile (a
 * signal that cannot wait).  After NULL the connection is in the middle
 * of a statement: the caller drops it.
 */
PGresult *pgjq_exec_within(PGconn *conn, const char *sql, int nparams,
    const char *const *params, int64_t timeout_us, const volatile sig_atomic_t *give_up);

/* Like pgjq_exec(), but dies if the statement fails. */
PGresult *pgjq_exec_or_die(PGconn *conn, const char *sql, int nparams,
    const char *const *params);

/* The exit status a failed statement deserves (75 for a lost connection...). */
int pgjq_failure_status(PGconn *conn, const PGresult *res);

/* The server's one-line message for a failed result, or libpq's. */
const char *pgjq_failure_message(PGconn *conn, const PGresult *res);

/* The SQLSTATE of a failed result, "" if none. */
const char *pgjq_sqlstate(const PGresult *res);

/* Prints "prog: context: message" and exits with pgjq_failure_status(). */
__attribute__((noreturn))
void pgjq_die_result(PGconn *conn, PGresult *res, const char *context);

#endif
