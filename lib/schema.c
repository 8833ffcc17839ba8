#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "diag.h"
#include "job.h"
#include "schema.h"

/* First key of the advisory lock that serialises migrations ("pjq"). */
#define MIGRATION_LOCK_CLASS "7367281"

static bool may_create;

void
pgjq_schema_allow_create(void)
{
	may_create = true;
}

/* PostgreSQL keeps the pg_ prefix for itself; information_schema is the standard's. */
static bool
is_system_schema(const char *schema)
{
	return strncmp(schema, "pg_", 3) == 0 || strcmp(schema, "information_schema") == 0;
}

static int
latest_version(void)
{
	int v = 0;

	for (const struct pgjq_migration *m = pgjq_migrations; m->version; m++)
		v = m->version;
	return v;
}

static int
fail(PGconn *conn, PGresult *res, const char *schema, const char *what)
{
	int status = pgjq_failure_status(conn, res);

	pgjq_warn("schema %s: %s: %s", schema, what, pgjq_failure_message(conn, res));
	PQclear(res);
	return status;
}

/* The schema's version, 0 if it has no tables yet, -1 on error (res kept in *err). */
static int
current_version(PGconn *conn, const char *schema, PGresult **err)
{
	const char *params[] = {schema};
	PGresult *res;
	int version;

	res = pgjq_exec(conn,
	    "SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_version', $1::text)) IS NOT NULL",
	    1, params);
	if (!pgjq_ok(res)) {
		*err = res;
		return -1;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		PQclear(res);
		return 0;
	}
	PQclear(res);
	res = pgjq_exec(conn, pgjq_sql("SELECT coalesce(max(version), 0) FROM {S}.schema_version"),
	    0, NULL);
	if (!pgjq_ok(res)) {
		*err = res;
		return -1;
	}
	version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return version;
}

/* Sets search_path to pattern, whose %I is the schema, for this transaction only. */
static int
set_search_path(PGconn *conn, const char *schema, const char *pattern)
{
	const char *params[] = {schema, pattern};
	PGresult *res;

	res = pgjq_exec(conn,
	    "SELECT pg_catalog.set_config('search_path', pg_catalog.format($2, $1::text), true)",
	    2, params);
	if (!pgjq_ok(res))
		return fail(conn, res, schema, "cannot set search_path");
	PQclear(res);
	return 0;
}

/*
 * Whether this role may bring the schema to the latest version: 0, or 69
 * after saying so.  A role of roles.sql may use a current schema but not
 * upgrade it, and "must be owner of table workers" from half-way through
 * a migration would not tell its user what to do.
 */
static int
may_upgrade(PGconn *conn, const char *schema, int version)
{
	const char *params[] = {schema};
	PGresult *res;
	bool may;

	res = pgjq_exec(conn,
	    "SELECT pg_catalog.has_schema_privilege(n.oid, 'CREATE') "
	    "       AND (c.oid IS NULL OR pg_catalog.pg_has_role(c.relowner, 'USAGE')) "
	    "  FROM pg_catalog.pg_namespace n "
	    "  LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = 'schema_version' "
	    " WHERE n.nspname = $1",
	    1, params);
	if (!pgjq_ok(res))
		return fail(conn, res, schema, "cannot check the privilege to upgrade it");
	may = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (may)
		return 0;
	if (version == 0)
		pgjq_warn("schema %s has no pgjq tables, and role %s may not create them there "
		    "(no CREATE privilege on it): ask its owner to apply pgjq.sql",
		    schema, PQuser(conn));
	else
		pgjq_warn("schema %s is at version %d and this pgjq needs version %d, but role %s "
		    "may not upgrade it (it does not own it): run any pgjq tool once as its owner, "
		    "then apply roles.sql again", schema, version, latest_version(), PQuser(conn));
	return PGJQ_EX_UNAVAILABLE;
}

static int
migrate(PGconn *conn, const char *schema)
{
	const char *params[] = {schema};
	PGresult *res;
	int version, status;

	res = pgjq_exec(conn, "BEGIN", 0, NULL);
	if (!pgjq_ok(res))
		return fail(conn, res, schema, "cannot start the upgrade");
	PQclear(res);

	res = pgjq_exec(conn,
	    "SELECT pg_catalog.pg_advisory_xact_lock(" MIGRATION_LOCK_CLASS ", pg_catalog.hashtext($1))",
	    1, params);
	if (!pgjq_ok(res))
		return fail(conn, res, schema, "cannot lock for the upgrade");
	PQclear(res);

	/* Only ask for CREATE on the database when the schema is really missing. */
	res = pgjq_exec(conn,
	    "SELECT pg_catalog.format('CREATE SCHEMA %I', $1::text) "
	    "WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
	    1, params);
	if (!pgjq_ok(res))
		return fail(conn, res, schema, "cannot look up the schema");
	if (PQntuples(res) == 1) {
		PGresult *create = pgjq_exec(conn, PQgetvalue(res, 0, 0), 0, NULL);

		PQclear(res);
		if (!pgjq_ok(create))
			return fail(conn, create, schema,
			    "does not exist and cannot be created (ask the DBA to apply pgjq.sql)");
		PQclear(create);
	} else {
		PQclear(res);
	}

	/*
	 * Objects are created in the first schema on the path, so ours goes
	 * first while migrating; functions keep this path (SET search_path
	 * FROM CURRENT).  The schema is the owner's alone to write, so its
	 * objects coming before pg_catalog's there is safe.
	 */
	if ((status = set_search_path(conn, schema, "%I, pg_catalog, pg_temp")) != 0)
		return status;

	/* Another tool may have upgraded while we waited for the lock. */
	version = current_version(conn, schema, &res);
	if (version < 0)
		return fail(conn, res, schema, "cannot read the schema version");
	if (version < latest_version() && (status = may_upgrade(conn, schema, version)) != 0)
		return status;

	for (const struct pgjq_migration *m = pgjq_migrations; m->version; m++) {
		char vbuf[16];
		const char *vparams[] = {vbuf};

		if (m->version <= version)
			continue;
		/* PQexec, not PQexecParams: a migration is many statements and takes no values. */
		res = PQexec(conn, m->sql);
		if (!pgjq_ok(res)) {
			char what[128];

			snprintf(what, sizeof what, "cannot apply %s", m->name);
			return fail(conn, res, schema, what);
		}
		PQclear(res);
		snprintf(vbuf, sizeof vbuf, "%d", m->version);
		res = pgjq_exec(conn, pgjq_sql("INSERT INTO {S}.schema_version (version) VALUES ($1)"),
		    1, vparams);
		if (!pgjq_ok(res))
			return fail(conn, res, schema, "cannot record the version");
		PQclear(res);
	}

	res = pgjq_exec(conn, "COMMIT", 0, NULL);
	if (!pgjq_ok(res))
		return fail(conn, res, schema, "cannot commit the upgrade");
	PQclear(res);
	return 0;
}

int
pgjq_schema_ensure(PGconn *conn, const char *schema)
{
	PGresult *res;
	int version;

	if (*schema == '\0' || strlen(schema) > (size_t)PGJQ_SCHEMA_NAME_MAX ||
	    !pgjq_utf8_valid(schema, strlen(schema))) {
		pgjq_warn("schema name must be 1 to %d bytes of UTF-8 text", PGJQ_SCHEMA_NAME_MAX);
		return PGJQ_EX_USAGE;
	}
	if (is_system_schema(schema)) {
		pgjq_warn("schema %s is a system schema: pgjq's tables do not go there", schema);
		return PGJQ_EX_USAGE;
	}
	/*
	 * No search_path for the session: behind a pooler in transaction mode
	 * it would reach other clients, and theirs us.  Statements name the
	 * schema instead ({S}); only a migration sets a path, for its own
	 * transaction, where its functions take it (SET search_path FROM
	 * CURRENT).
	 */
	pgjq_sql_schema(conn, schema);

	version = current_version(conn, schema, &res);
	if (version < 0 && strcmp(pgjq_sqlstate(res), "42501") == 0) {
		char what[256];

		snprintf(what, sizeof what,
		    "role %s may not use it (it needs a role of roles.sql: see SECURITY in pgjq(7))",
		    PQuser(conn));
		return fail(conn, res, schema, what);
	}
	if (version < 0)
		return fail(conn, res, schema, "cannot read the schema version");
	if (version > latest_version()) {
		pgjq_warn("schema %s is at version %d, newer than this pgjq knows (%d): upgrade pgjq",
		    schema, version, latest_version());
		return PGJQ_EX_UNAVAILABLE;
	}
	if (version == latest_version())
		return 0;
	if (version == 0 && !may_create) {
		/* A tool that only reads or steers: a misspelt --schema is an error, not a new schema. */
		pgjq_warn("schema %s has no pgjq tables (is the name right? jq-enqueue and jq-worker "
		    "create them)", schema);
		return PGJQ_EX_UNAVAILABLE;
	}
	return migrate(conn, schema);
}

PGconn *
pgjq_connect_try(const char *conninfo, const char *schema, bool quiet, int *status)
{
	PGconn *conn = pgjq_db_open(conninfo, quiet);

	if (conn == NULL) {
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
