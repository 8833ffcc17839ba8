#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "conninfo.h"
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

/* By name, so a newer libpq's secret is not shown just because this code predates it. */
bool
pgjq_conninfo_secret_keyword(const char *key, size_t len)
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

bool
pgjq_conninfo_is_string(const char *s)
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
	return pgjq_conninfo_secret_keyword(dec, n);
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
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static char *
skip_space(char *p)
{
	while (is_space(*p))
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
		while (*p != '\0' && *p != '=' && !is_space(*p))
			p++;
		secret = pgjq_conninfo_secret_keyword(key, (size_t)(p - key));
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
		while (*p != '\0' && !is_space(*p))
			p += p[0] == '\\' && p[1] != '\0' ? 2 : 1;
		if (!secret)
			continue;
		/*
		 * "password=two words" is a mistake libpq reports by quoting
		 * "words": every word up to the next keyword= is wiped too.
		 */
		for (;;) {
			char *next = skip_space(p), *word = next;

			while (*next != '\0' && *next != '=' && !is_space(*next))
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

	if (conninfo == NULL || !pgjq_conninfo_is_string(conninfo))
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
	if (!pgjq_conninfo_is_string(conninfo))
		return pgjq_xstrdup(conninfo);
	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL) {
		PQfreemem(err);
		return NULL;
	}
	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL && pgjq_conninfo_secret_keyword(o->keyword, strlen(o->keyword)))
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
		if (o->val == NULL || pgjq_conninfo_secret_keyword(o->keyword, strlen(o->keyword)))
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
char *
pgjq_conninfo_error(const char *conninfo)
{
	PQconninfoOption *opts;
	char *err = NULL, *copy, *msg;

	if (conninfo == NULL || !pgjq_conninfo_is_string(conninfo))
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
