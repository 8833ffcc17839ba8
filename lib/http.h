/*
 * http: jq-worker's HTTP handler.  Each job is a POST of its payload to
 * one URL, many at once over kept-alive connections (libcurl's multi
 * interface), driven by the worker's own poll loop: this module hands out
 * the sockets and the timer libcurl asks for, and takes back what poll saw.
 */
#ifndef PGJQ_HTTP_H
#define PGJQ_HTTP_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "xalloc.h"

struct pgjq_http;

/* What one finished request came to. */
struct pgjq_http_result {
	void *owner;              /* as given to pgjq_http_start() */
	long status;              /* HTTP status; 0 if there was no response */
	int curl_code;            /* CURLE_OK, or why the request failed */
	char error[256];          /* libcurl's words for curl_code */
	struct pgjq_buf body;     /* the response, up to PGJQ_RESULT_MAX; the caller frees it */
	bool truncated;
	int64_t retry_after_us;   /* from a Retry-After header; -1 if none */
};

/*
 * Overwrites with 'x', in place and keeping the length, the password of
 * a URL's user:password@; true if there was one.  For wiping --http's URL
 * from argv, which ps(1) shows to every user.
 */
bool pgjq_http_url_hide(char *url);

/* url is copied; its password never shows in a result's error. */
struct pgjq_http *pgjq_http_new(const char *url);
void pgjq_http_free(struct pgjq_http *h);

struct pgjq_http_job {
	int64_t id;
	const char *queue;
	int attempt, max_attempts;
	const char *payload;      /* must live until the request ends */
	int64_t timeout_us;       /* 0: none */
	const char *schedule;     /* the schedule that fired it, or NULL */
	const char *scheduled_for; /* and its slot */
};

/* Starts a request for a job; owner identifies it again when it ends. */
void pgjq_http_start(struct pgjq_http *h, const struct pgjq_http_job *job, void *owner);

/* Abandons the request of owner (cancel, shutdown); it never reports. */
void pgjq_http_abort(struct pgjq_http *h, void *owner);

/* The sockets to poll; returns how many were written to pfd (at most max). */
int pgjq_http_pollfds(const struct pgjq_http *h, struct pollfd *pfd, int max);

/* Lets libcurl work on what poll reported, and on its timer if it is due. */
void pgjq_http_io(struct pgjq_http *h, const struct pollfd *pfd, int n, int64_t now_us);

/* When libcurl wants to be called again at the latest; 0: no wish. */
int64_t pgjq_http_due(const struct pgjq_http *h);

/* Takes one finished request; false if there is none. */
bool pgjq_http_next_done(struct pgjq_http *h, struct pgjq_http_result *r);

/*
 * Whether the response header line p (len bytes with its line end, not
 * NUL-terminated, as libcurl hands it over) is a Retry-After this can
 * read, in seconds or as an HTTP date (RFC 9110; the date through
 * libcurl, which must be loaded); if so, *wait_us is the wait, never
 * negative nor longer than a duration can be.
 */
bool pgjq_http_retry_after(const char *p, size_t len, int64_t *wait_us);

#endif
