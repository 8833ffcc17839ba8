/*
 * conninfo: connection strings, and keeping their secrets out of sight.
 *
 * A tool's connection string comes from -d, else JQ_DATABASE_URL, else
 * libpq's own defaults (PGHOST, PGSERVICE, ~/.pgpass ...).  A password in
 * it must not reach ps(1), an error message or a handler's environment:
 * these functions find secrets by libpq's rules (keyword=value strings and
 * URIs alike) without connecting.
 */
#ifndef PGJQ_CONNINFO_H
#define PGJQ_CONNINFO_H

#include <stdbool.h>
#include <stddef.h>

/* The connection string a tool was given, or NULL for libpq's defaults. */
const char *pgjq_conninfo(const char *option);

/*
 * Overwrites with 'x', in place and keeping the length, every password
 * (and other secret) in a connection string or URI, as far as it can be
 * told from the text; returns true if there was one.  For wiping -d from
 * argv, which ps(1) shows to every user, and for quoting a string.
 */
bool pgjq_conninfo_hide(char *conninfo);

/*
 * A new copy of conninfo without its secrets, in the same form (URI or
 * keyword=value), for handing to a handler: it finds the password the way
 * libpq does without one (PGPASSFILE, ~/.pgpass).  NULL if conninfo is
 * NULL or cannot be parsed.
 */
char *pgjq_conninfo_public(const char *conninfo);

/*
 * Whether the keyword (len bytes, not NUL-terminated) names a secret:
 * password, sslpassword, and any later one with "password" or "secret" in
 * its name (libpq 18's oauth_client_secret).
 */
bool pgjq_conninfo_secret_keyword(const char *keyword, size_t len);

/* libpq's test: a URI or keyword=value string; anything else is a bare database name. */
bool pgjq_conninfo_is_string(const char *s);

/*
 * libpq's explanation of why conninfo does not parse, made from a copy
 * with its secrets wiped (libpq quotes the part it choked on); a new
 * string, or NULL if it parses.
 */
char *pgjq_conninfo_error(const char *conninfo);

#endif
