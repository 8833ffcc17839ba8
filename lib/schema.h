/*
 * schema: creates and upgrades the tables in the tool's schema, and hands
 * the tools connections to a schema that is up to date.  Above db.c,
 * which knows nothing of it.
 *
 * Migrations are the files sql/NNN-*.sql, compiled in.  The first tool to
 * connect to a database applies what is missing, in one transaction under
 * an advisory lock, so any number of tools may start at once.
 */
#ifndef PGJQ_SCHEMA_H
#define PGJQ_SCHEMA_H

#include <stdbool.h>

#include <libpq-fe.h>

struct pgjq_migration {
	int version;
	const char *name;
	const char *sql;
};

/* Terminated by an entry with version 0. */
extern const struct pgjq_migration pgjq_migrations[];

/* PGJQ_SCHEMA_NAME_MAX, the longest schema name, comes from its channels. */
#include "channel.h"

/*
 * Lets pgjq_schema_ensure create the schema and its tables when they are
 * missing: for the tools that put jobs in or take them out (jq-enqueue,
 * jq-worker).  The others only read or steer, and a schema name they are
 * given that has no tables is a mistake to report.
 */
void pgjq_schema_allow_create(void);

/*
 * Makes the schema the one pgjq_sql()'s {S} names, and brings it up to
 * date.  Returns 0, or an exit status after printing why.
 */
int pgjq_schema_ensure(PGconn *conn, const char *schema);

/*
 * Connects, and creates or upgrades the schema if needed.  Dies with 69
 * if the database cannot be used.
 */
PGconn *pgjq_connect(const char *conninfo, const char *schema);

/*
 * Like pgjq_connect(), but returns NULL (and the exit status) instead of
 * exiting; quiet: do not report an unreachable server (a retry loop).
 */
PGconn *pgjq_connect_try(const char *conninfo, const char *schema, bool quiet, int *status);

#endif
