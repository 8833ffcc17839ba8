#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "curl_dl.h"
#include "diag.h"
#include "duration.h"
#include "handler.h"
#include "http.h"

struct sock {
	curl_socket_t fd;
	short events;
};

/* One request in flight. */
struct xfer {
	CURL *easy;
	void *owner;
	struct curl_slist *headers;
	struct pgjq_buf body;
	bool truncated;
	int64_t retry_after_us;
	char error[CURL_ERROR_SIZE];
	struct xfer *next;
};

struct pgjq_http {
	CURLM *multi;
	char *url;
	struct sock *socks;
	size_t nsocks, sock_cap;
	int64_t due;              /* libcurl's timer, monotonic microseconds; 0: none */
	struct xfer *xfers;
	char *secret[2];          /* the URL's password as written and decoded, or NULLs */
};

/*
 * Where the password of the URL's user:password@ is, as libcurl reads the
 * URL: false if it has none.  The authority ends at the path, query or
 * fragment; its user information is taken to end at its last '@' (libcurl
 * stops at the first), so that whatever could be a password is covered.
 */
static bool
password_span(const char *url, size_t *off, size_t *len)
{
	const char *p = strstr(url, "://"), *end, *at = NULL, *colon;

	/* Without a scheme it is no URL for us, but the error about it shows it. */
	p = p != NULL ? p + 3 : url;
	end = p + strcspn(p, "/?#");
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at == NULL || (colon = memchr(p, ':', (size_t)(at - p))) == NULL || colon + 1 == at)
		return false;
	*off = (size_t)(colon + 1 - url);
	*len = (size_t)(at - colon - 1);
	return true;
}

bool
pgjq_http_url_hide(char *url)
{
	size_t off, len;

	if (!password_span(url, &off, &len))
		return false;
	memset(url + off, 'x', len);
	return true;
}

/* Overwrites every copy of secret in text with 'x'. */
static void
scrub(char *text, const char *secret)
{
	size_t n = secret != NULL ? strlen(secret) : 0;

	if (n == 0)
		return;
	for (char *p = strstr(text, secret); p != NULL; p = strstr(p + n, secret))
		memset(p, 'x', n);
}

static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct pgjq_http *h = userp;
	size_t i;

	(void)easy;
	(void)socketp;
	for (i = 0; i < h->nsocks && h->socks[i].fd != fd; i++)
		;
	if (what == CURL_POLL_REMOVE) {
		if (i < h->nsocks)
			h->socks[i] = h->socks[--h->nsocks];
		return 0;
	}
	if (i == h->nsocks) {
		h->socks = pgjq_xgrow(h->socks, &h->sock_cap, h->nsocks + 1, sizeof *h->socks);
		h->nsocks++;
	}
	h->socks[i].fd = fd;
	h->socks[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) |
	    ((what & CURL_POLL_OUT) ? POLLOUT : 0));
	return 0;
}

static int
on_timer(CURLM *multi, long ms, void *userp)
{
	struct pgjq_http *h = userp;

	(void)multi;
	h->due = ms < 0 ? 0 : pgjq_now_us() + (int64_t)ms * 1000;
	return 0;
}

static size_t
on_body(char *p, size_t size, size_t n, void *userp)
{
	struct xfer *x = userp;
	size_t len = size * n, room = PGJQ_RESULT_MAX - x->body.len;

	if (len > room)
		x->truncated = true;
	pgjq_buf_append(&x->body, p, len < room ? len : room);
	return len;
}

bool
pgjq_http_retry_after(const char *p, size_t len, int64_t *wait_us)
{
	static const char name[] = "retry-after:";
	bool found = false;

	if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
		char value[128];
		size_t vlen = len - (sizeof name - 1);
		char *v = value, *end;
		long secs;

		if (vlen >= sizeof value)
			vlen = sizeof value - 1;
		memcpy(value, p + sizeof name - 1, vlen);
		value[vlen] = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		secs = strtol(v, &end, 10);
		if (end != v && secs >= 0) {
			/* No wait is longer than any duration can be (and no overflow). */
			if (secs > PGJQ_DURATION_MAX_US / 1000000)
				secs = (long)(PGJQ_DURATION_MAX_US / 1000000);
			*wait_us = (int64_t)secs * 1000000;
			found = true;
		} else {
			time_t when = pgjq_curl.getdate(v, NULL);

			if (when > 0) {
				time_t now = time(NULL);
				int64_t wait = when > now ? (int64_t)(when - now) : 0;

				if (wait > PGJQ_DURATION_MAX_US / 1000000)
					wait = PGJQ_DURATION_MAX_US / 1000000;
				*wait_us = wait * 1000000;
				found = true;
			}
		}
	}
	return found;
}

static size_t
on_header(char *p, size_t size, size_t n, void *userp)
{
	struct xfer *x = userp;
	size_t len = size * n;
	int64_t wait_us;

	if (pgjq_http_retry_after(p, len, &wait_us))
		x->retry_after_us = wait_us;
	return len;
}

struct pgjq_http *
pgjq_http_new(const char *url)
{
	struct pgjq_http *h;
	size_t off, len;
	char why[256];

	if (!pgjq_curl_load(why, sizeof why))
		pgjq_die(PGJQ_EX_UNAVAILABLE, "an HTTP handler needs libcurl: %s", why);
	h = pgjq_xcalloc(1, sizeof *h);
	if (pgjq_curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		pgjq_die(PGJQ_EX_SOFTWARE, "cannot initialise libcurl");
	h->multi = pgjq_curl.multi_init();
	if (h->multi == NULL)
		pgjq_die(PGJQ_EX_SOFTWARE, "cannot initialise libcurl");
	h->url = pgjq_xstrdup(url);
	/* libcurl's errors end up in logs and in jobs everyone may read: kept from them. */
	if (password_span(url, &off, &len)) {
		int n;
		char *dec = pgjq_curl.easy_unescape(NULL, url + off, (int)len, &n);

		h->secret[0] = pgjq_xasprintf("%.*s", (int)len, url + off);
		if (dec != NULL) {
			h->secret[1] = pgjq_xasprintf("%.*s", n, dec);
			pgjq_curl.free(dec);
		}
	}
	pgjq_curl.multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	pgjq_curl.multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	pgjq_curl.multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	pgjq_curl.multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

static void
xfer_free(struct pgjq_http *h, struct xfer *x)
{
	struct xfer **pp;

	for (pp = &h->xfers; *pp != NULL && *pp != x; pp = &(*pp)->next)
		;
	if (*pp == x)
		*pp = x->next;
	pgjq_curl.multi_remove_handle(h->multi, x->easy);
	pgjq_curl.easy_cleanup(x->easy);
	pgjq_curl.slist_free_all(x->headers);
	pgjq_buf_free(&x->body);
	free(x);
}

void
pgjq_http_free(struct pgjq_http *h)
{
	if (h == NULL)
		return;
	while (h->xfers != NULL)
		xfer_free(h, h->xfers);
	pgjq_curl.multi_cleanup(h->multi);
	pgjq_curl.global_cleanup();
	free(h->socks);
	free(h->url);
	free(h->secret[0]);
	free(h->secret[1]);
	free(h);
}

static struct curl_slist *
header(struct curl_slist *list, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static struct curl_slist *
header(struct curl_slist *list, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	return pgjq_curl.slist_append(list, line);
}

void
pgjq_http_start(struct pgjq_http *h, const struct pgjq_http_job *job, void *owner)
{
	struct xfer *x = pgjq_xcalloc(1, sizeof *x);

	x->owner = owner;
	x->retry_after_us = -1;
	x->easy = pgjq_curl.easy_init();
	if (x->easy == NULL)
		pgjq_die(PGJQ_EX_SOFTWARE, "cannot initialise libcurl");
	x->headers = header(x->headers, "Content-Type: application/json");
	x->headers = header(x->headers, "Jq-Job-Id: %" PRId64, job->id);
	x->headers = header(x->headers, "Jq-Queue: %s", job->queue);
	x->headers = header(x->headers, "Jq-Attempt: %d", job->attempt);
	x->headers = header(x->headers, "Jq-Max-Attempts: %d", job->max_attempts);
	if (job->schedule != NULL && job->scheduled_for != NULL) {
		x->headers = header(x->headers, "Jq-Schedule: %s", job->schedule);
		x->headers = header(x->headers, "Jq-Scheduled-For: %s", job->scheduled_for);
	}
	/* No "Expect: 100-continue" round trip for large payloads. */
	x->headers = header(x->headers, "Expect:");
	pgjq_curl.easy_setopt(x->easy, CURLOPT_URL, h->url);
	pgjq_curl.easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
	pgjq_curl.easy_setopt(x->easy, CURLOPT_POSTFIELDS, job->payload);
	pgjq_curl.easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(job->payload));
	pgjq_curl.easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
	pgjq_curl.easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	pgjq_curl.easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
	pgjq_curl.easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	pgjq_curl.easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->error);
	pgjq_curl.easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	pgjq_curl.easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	pgjq_curl.easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	pgjq_curl.easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	pgjq_curl.easy_setopt(x->easy, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	if (job->timeout_us > 0)
		pgjq_curl.easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)(job->timeout_us / 1000));
	x->next = h->xfers;
	h->xfers = x;
	pgjq_curl.multi_add_handle(h->multi, x->easy);
}

void
pgjq_http_abort(struct pgjq_http *h, void *owner)
{
	for (struct xfer *x = h->xfers; x != NULL; x = x->next) {
		if (x->owner == owner) {
			xfer_free(h, x);
			return;
		}
	}
}

int
pgjq_http_pollfds(const struct pgjq_http *h, struct pollfd *pfd, int max)
{
	int n = 0;

	for (size_t i = 0; i < h->nsocks && n < max; i++)
		pfd[n++] = (struct pollfd){.fd = h->socks[i].fd, .events = h->socks[i].events};
	return n;
}

void
pgjq_http_io(struct pgjq_http *h, const struct pollfd *pfd, int n, int64_t now_us)
{
	int running;

	for (int i = 0; i < n; i++) {
		int ev = 0;

		if (pfd[i].revents == 0)
			continue;
		if (pfd[i].revents & (POLLIN | POLLHUP))
			ev |= CURL_CSELECT_IN;
		if (pfd[i].revents & POLLOUT)
			ev |= CURL_CSELECT_OUT;
		if (pfd[i].revents & (POLLERR | POLLNVAL))
			ev |= CURL_CSELECT_ERR;
		pgjq_curl.multi_socket_action(h->multi, pfd[i].fd, ev, &running);
	}
	if (h->due != 0 && now_us >= h->due) {
		h->due = 0;
		pgjq_curl.multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
}

int64_t
pgjq_http_due(const struct pgjq_http *h)
{
	return h->due;
}

bool
pgjq_http_next_done(struct pgjq_http *h, struct pgjq_http_result *r)
{
	CURLMsg *m;
	int left;

	while ((m = pgjq_curl.multi_info_read(h->multi, &left)) != NULL) {
		struct xfer *x;

		if (m->msg != CURLMSG_DONE)
			continue;
		pgjq_curl.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		memset(r, 0, sizeof *r);
		r->owner = x->owner;
		r->curl_code = (int)m->data.result;
		pgjq_curl.easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r->status);
		snprintf(r->error, sizeof r->error, "%s",
		    *x->error ? x->error : pgjq_curl.easy_strerror(m->data.result));
		scrub(r->error, h->secret[0]);
		scrub(r->error, h->secret[1]);
		r->body = x->body;
		x->body = (struct pgjq_buf){0};
		r->truncated = x->truncated;
		r->retry_after_us = x->retry_after_us;
		xfer_free(h, x);
		return true;
	}
	return false;
}
