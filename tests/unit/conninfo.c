/*
 * Unit tests for the secret-keeping parts of lib/conninfo.c: wiping passwords
 * from connection strings, and the password-free copy a handler gets;
 * and from --http URLs (lib/http.c).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "conninfo.h"
#include "http.h"
#include "tap.h"

/* hide() on a copy, as the tools do with argv. */
static char *
hidden(const char *s, int *found)
{
	char *copy = strdup(s);

	*found = pgjq_conninfo_hide(copy);
	return copy;
}

static void
hides(const char *in, const char *want, const char *desc)
{
	int found;
	char *got = hidden(in, &found);

	is_str(got, want, "hide: %s", desc);
	ok(found == (strcmp(in, want) != 0), "hide: %s: says whether it found one", desc);
	free(got);
}

static void
public(const char *in, const char *want, const char *desc)
{
	char *got = pgjq_conninfo_public(in);

	is_str(got, want, "public: %s", desc);
	free(got);
}

static void
http_hides(const char *in, const char *want, const char *desc)
{
	char *got = strdup(in);
	bool found = pgjq_http_url_hide(got);

	is_str(got, want, "http hide: %s", desc);
	ok(found == (strcmp(in, want) != 0), "http hide: %s: says whether it found one", desc);
	free(got);
}

int
main(void)
{
	hides("host=db user=ann password=s3cret dbname=app",
	    "host=db user=ann password=xxxxxx dbname=app", "keyword form");
	hides("password = 's3 cr\\'et' host=db", "password = 'xxxxxxxxx' host=db",
	    "quoted, with spaces and an escaped quote");
	hides("host=db password=two words port=5432", "host=db password=xxxxxxxxx port=5432",
	    "an unquoted password with a space: both words");
	hides("sslpassword=k3y host=db", "sslpassword=xxx host=db", "sslpassword");
	hides("oauth_client_secret=abc", "oauth_client_secret=xxx", "any keyword naming a secret");
	hides("host=db user=ann", "host=db user=ann", "nothing to hide");
	hides("postgresql://ann:s3cret@db:5432/app?sslmode=require",
	    "postgresql://ann:xxxxxx@db:5432/app?sslmode=require", "URI user:password@");
	hides("postgres://ann:p%zz@db/app", "postgres://ann:xxxx@db/app", "a malformed one too");
	hides("postgresql://ann@db/app?password=s3cret&port=5432",
	    "postgresql://ann@db/app?password=xxxxxx&port=5432", "URI ?password=");
	hides("postgresql:///app?pass%77ord=s3cret", "postgresql:///app?pass%77ord=xxxxxx",
	    "a percent-encoded key");
	hides("postgresql://db:5432/app", "postgresql://db:5432/app", "a port is no password");
	hides("postgresql://ann@db/a:b", "postgresql://ann@db/a:b", "a colon after the host");
	hides("app", "app", "a bare database name");
	ok(!pgjq_conninfo_hide(NULL), "hide: NULL");

	public(NULL, NULL, "NULL");
	public("app", "app", "a bare name is kept");
	public("host=db dbname=app", "host=db dbname=app", "no password: kept as written");
	public("postgresql://ann@db/app", "postgresql://ann@db/app", "a URI without one: as written");
	public("host=db password=s3cret dbname='my app'", "dbname='my app' host='db'",
	    "keyword form without the password");
	public("host=/tmp/s user='o\\'b' password=x", "user='o\\'b' host='/tmp/s'",
	    "values are quoted again");
	public("postgresql://ann:s3cret@db:5433/app?sslmode=require",
	    "postgresql://?user=ann&dbname=app&host=db&port=5433&sslmode=require",
	    "a URI stays a URI, every setting a parameter");
	public("postgresql://ann:s3cret@h1:1,h2:2/app",
	    "postgresql://?user=ann&dbname=app&host=h1%2Ch2&port=1%2C2", "several hosts");
	public("postgresql:///app?host=/tmp/x&password=s3cret",
	    "postgresql://?dbname=app&host=%2Ftmp%2Fx", "?password= and a socket directory");
	public("host=db sslpassword=k", "host='db'", "sslpassword goes too");
	public("host=db password=", "host='db'", "an empty password goes too");
	public("host=db port", NULL, "an unparsable string gives nothing");

	/* --http's URL, wiped from argv as -d's is. */
	http_hides("https://ann:s3cret@api.example/jobs?x=1", "https://ann:xxxxxx@api.example/jobs?x=1",
	    "user:password@");
	http_hides("http://ann:p%40ss%3Aw@h:8080/", "http://ann:xxxxxxxxxx@h:8080/", "percent-encoded, with a port");
	http_hides("http://ann:p@ss@h/", "http://ann:xxxx@h/", "an unencoded '@' in it");
	http_hides("http://ann@h/a:b@c", "http://ann@h/a:b@c", "no password; '@' in the path");
	http_hides("http://h:8080/x", "http://h:8080/x", "a port is no password");
	http_hides("http://ann:@h/", "http://ann:@h/", "an empty one");
	http_hides("ftp://ann:s3cret@h/", "ftp://ann:xxxxxx@h/", "any scheme: the usage error shows it");
	http_hides("ann:s3cret@h/", "ann:xxxxxx@h/", "no scheme: refused, but shown wiped");
	return done_testing();
}
