#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "diag.h"
#include "schema.h"
#include "xalloc.h"

const char *
pgjq_conninfo(const char *option)
{
	const char *env;

	if (option != NULL)
		return option;
	env = getenv("JQ_DATABASE_URL");
	return env != NULL && *env != '\0' ? env : NULL;
}

/*
 * libpq's keywords that hold secrets: password, sslpassword, and by name
 * any later one (libpq 18's oauth_client_secret), so a newer libpq's
 * secret is not shown just because this code predates it.
 */
static bool
secret_keyword(const char *key, size_t len)
{
	static const char *const words[] = {"password", "secret"};

	for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
		size_t n = strlen(words[w]);

		for (size_t i = 0; i + n <= len; i++)
			if (strncasecmp(key + i, words[w], n) == 0)
				return true;
	}
	return false;
}

static size_t
uri_prefix(const char *s)
{
	if (strncmp(s, "postgresql://", 13) == 0)
		return 13;
	if (strncmp(s, "postgres://", 11) == 0)
		return 11;
	return 0;
}

/* libpq's test: anything else is a bare database name. */
static bool
is_conninfo(const char *s)
{
	return uri_prefix(s) > 0 || strchr(s, '=') != NULL;
}

static void
wipe(char *p, const char *end, bool *found)
{
	if (p < end)
		*found = true;
	for (; p < end; p++)
		*p = 'x';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A URI's key, percent-decoded as libpq decodes it, is a secret one. */
static bool
secret_uri_key(const char *key, size_t len)
{
	char dec[64];
	size_t n = 0;

	for (size_t i = 0; i < len && n < sizeof dec; i++) {
		int hi, lo;

		if (key[i] == '%' && i + 2 < len && (hi = hexval(key[i + 1])) >= 0 &&
		    (lo = hexval(key[i + 2])) >= 0) {
			dec[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			dec[n++] = key[i];
		}
	}
	return secret_keyword(dec, n);
}

/* A URI, from after "scheme://": the password of user:password@ and ?password=. */
static void
hide_uri(char *s, bool *found)
{
	char *p = s, *q;

	/* As libpq reads it: user information ends at the first '@' before any '/'. */
	while (*p != '\0' && *p != '@' && *p != '/')
		p++;
	if (*p == '@' && (q = memchr(s, ':', (size_t)(p - s))) != NULL)
		wipe(q + 1, p, found);
	/* Without user information the host starts the string, and '?' may end it. */
	if (*p != '@')
		p = s;
	for (q = strchr(p, '?'); q != NULL; ) {
		char *key = q + 1, *end = key + strcspn(key, "&"), *eq;

		eq = memchr(key, '=', (size_t)(end - key));
		if (eq != NULL && secret_uri_key(key, (size_t)(eq - key)))
			wipe(eq + 1, end, found);
		q = *end != '\0' ? end : NULL;
	}
}

static bool
space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static char *
skip_space(char *p)
{
	while (space(*p))
		p++;
	return p;
}

/* keyword = value pairs; values may be quoted, with backslash escapes. */
static void
hide_keywords(char *s, bool *found)
{
	char *p = s;

	for (;;) {
		char *key, *val;
		bool secret;

		p = skip_space(p);
		if (*p == '\0')
			return;
		key = p;
		while (*p != '\0' && *p != '=' && !space(*p))
			p++;
		secret = secret_keyword(key, (size_t)(p - key));
		p = skip_space(p);
		if (*p != '=')
			return; /* malformed; libpq's complaint names only this word */
		p = skip_space(p + 1);
		val = p;
		if (*p == '\'') {
			for (p++; *p != '\0' && *p != '\''; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (secret)
				wipe(val + 1, p, found);
			if (*p == '\'')
				p++;
			continue;
		}
		/* Unquoted, a backslash escapes the next byte too, white space included. */
		while (*p != '\0' && !space(*p))
			p += p[0] == '\\' && p[1] != '\0' ? 2 : 1;
		if (!secret)
			continue;
		/*
		 * "password=two words" is a mistake libpq reports by quoting
		 * "words": every word up to the next keyword= is wiped too.
		 */
		for (;;) {
			char *next = skip_space(p), *word = next;

			while (*next != '\0' && *next != '=' && !space(*next))
				next++;
			if (next == word || *skip_space(next) == '=')
				break;
			p = next;
		}
		wipe(val, p, found);
	}
}

bool
pgjq_conninfo_hide(char *conninfo)
{
	bool found = false;
	size_t prefix;

	if (conninfo == NULL || !is_conninfo(conninfo))
		return false;
	if ((prefix = uri_prefix(conninfo)) > 0)
		hide_uri(conninfo + prefix, &found);
	else
		hide_keywords(conninfo, &found);
	return found;
}

static void
put_uri_escaped(struct pgjq_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			pgjq_buf_putc(b, (char)c);
		else
			pgjq_buf_printf(b, "%%%02X", c);
	}
}

char *
pgjq_conninfo_public(const char *conninfo)
{
	PQconninfoOption *opts, *o;
	struct pgjq_buf b = {0};
	char *err = NULL;
	bool uri, first = true, secret = false;

	if (conninfo == NULL)
		return NULL;
	if (!is_conninfo(conninfo))
		return pgjq_xstrdup(conninfo);
	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL) {
		PQfreemem(err);
		return NULL;
	}
	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL && secret_keyword(o->keyword, strlen(o->keyword)))
			secret = true;
	if (!secret) {
		/* As written: a handler may hand it to a driver that only reads URIs. */
		PQconninfoFree(opts);
		return pgjq_xstrdup(conninfo);
	}
	/* The same form it came in; a URI takes every setting as a parameter. */
	uri = uri_prefix(conninfo) > 0;
	pgjq_buf_printf(&b, "%s", uri ? "postgresql://" : "");
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || secret_keyword(o->keyword, strlen(o->keyword)))
			continue;
		if (uri) {
			pgjq_buf_printf(&b, "%c%s=", first ? '?' : '&', o->keyword);
			put_uri_escaped(&b, o->val);
			first = false;
			continue;
		}
		pgjq_buf_printf(&b, "%s%s='", first ? "" : " ", o->keyword);
		first = false;
		for (const char *v = o->val; *v != '\0'; v++) {
			if (*v == '\'' || *v == '\\')
				pgjq_buf_putc(&b, '\\');
			pgjq_buf_putc(&b, *v);
		}
		pgjq_buf_putc(&b, '\'');
	}
	PQconninfoFree(opts);
	if (b.data == NULL)
		pgjq_buf_putc(&b, '\0');
	return b.data;
}

/*
 * libpq's explanation of a connection string it cannot parse quotes the
 * string, or the part it choked on, and that may hold the password: the
 * explanation comes from parsing a copy with the secrets wiped.  Returns
 * NULL if the string parses (the failure was elsewhere).
 */
static char *
conninfo_error(const char *conninfo)
{
	PQconninfoOption *opts;
	char *err = NULL, *copy, *msg;

	if (conninfo == NULL || !is_conninfo(conninfo))
		return NULL;
	opts = PQconninfoParse(conninfo, &err);
	if (opts != NULL) {
		PQconninfoFree(opts);
		return NULL;
	}
	PQfreemem(err);
	err = NULL;
	copy = pgjq_xstrdup(conninfo);
	pgjq_conninfo_hide(copy);
	opts = PQconninfoParse(copy, &err);
	free(copy);
	if (opts != NULL) {
		/* Only the secret itself was malformed. */
		PQconninfoFree(opts);
		return pgjq_xstrdup("invalid connection string: a password in it is malformed "
		    "(libpq's explanation would show it)");
	}
	msg = pgjq_xstrdup(err != NULL ? err : "invalid connection string");
	PQfreemem(err);
	return msg;
}

/* A connection as libpq makes it, with our defaults; NULL (after saying why unless quiet) if not. */
static PGconn *
connect_plain(const char *conninfo, bool quiet)
{
	/*
	 * expand_dbname lets "dbname" carry a whole URI or conninfo string;
	 * later keywords only fill what it leaves out, so a user's own
	 * application_name or client_encoding still wins.
	 */
	const char *keys[] = {"connect_timeout", "dbname", "fallback_application_name",
	    "client_encoding", NULL};
	const char *values[] = {"10", conninfo, pgjq_progname(), "UTF8", NULL};
	int first = 0;
	PGconn *conn;

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
			char *bad = conninfo_error(conninfo);

			pgjq_warn("cannot connect to the database: %s", bad != NULL ? bad : PQerrorMessage(conn));
			free(bad);
		}
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

PGconn *
pgjq_connect_try(const char *conninfo, const char *schema, bool quiet, int *status)
{
	PGconn *conn = connect_plain(conninfo, quiet);

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

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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
	if ((other = connect_plain(conninfo, true)) == NULL)
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
	deadline = mono_us() + PGJQ_PROBE_WAIT_US;
	for (;;) {
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
		int64_t left = deadline - mono_us();
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

PGconn *
pgjq_connect(const char *conninfo, const char *schema)
{
	int status;
	PGconn *conn = pgjq_connect_try(conninfo, schema, false, &status);

	if (conn == NULL)
		exit(status);
	return conn;
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
	int64_t deadline = mono_us() + timeout_us;
	PGresult *res, *kept = NULL;

	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
		return PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
	while (PQisBusy(conn)) {
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
		int64_t left = deadline - mono_us();

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
	/* As PQexec: the last result, unless an earlier one was an error. */
	while ((res = PQgetResult(conn)) != NULL) {
		if (kept != NULL && !pgjq_ok(kept)) {
			PQclear(res);
			continue;
		}
		PQclear(kept);
		kept = res;
	}
	return kept != NULL ? kept : PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
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
