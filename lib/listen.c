#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "diag.h"
#include "listen.h"
#include "schema.h"
#include "xalloc.h"

/* Reconnection delays: the first, and the most it grows to. */
#define RETRY_MIN_US INT64_C(100000)
#define RETRY_MAX_US INT64_C(2000000)

struct pgjq_listener {
	const char *conninfo;   /* NULL: libpq's defaults */
	const char *schema;
	char **channels;        /* their names in the schema */
	size_t nchannels;
	PGconn *conn;           /* NULL while down */
	PGnotify *pending;      /* taken from libpq, not yet handed out */
	int64_t retry_at;       /* next reconnection attempt, while down */
	int64_t retry_delay;
	bool polling;          /* notifications do not arrive: read again every so often */
	bool said_polling;
};

/* How often a listener that notifications do not reach reads again. */
#define POLL_UNNOTIFIED_US INT64_C(1000000)

static void
lost(struct pgjq_listener *l, const char *why)
{
	int len = (int)strcspn(why, "\n");

	pgjq_warn("lost the database (%.*s); reconnecting", len, why);
	if (l->pending != NULL)
		PQfreemem(l->pending);
	l->pending = NULL;
	PQfinish(l->conn);
	l->conn = NULL;
	l->retry_delay = RETRY_MIN_US;
	l->retry_at = pgjq_now_us() + l->retry_delay;
}

PGresult *
pgjq_listen_exec(struct pgjq_listener *l, const char *sql, int nparams,
    const char *const *params)
{
	PGresult *res;

	if (l->conn == NULL)
		return NULL;
	res = pgjq_exec(l->conn, sql, nparams, params);
	if (pgjq_ok(res))
		return res;
	if (PQstatus(l->conn) == CONNECTION_BAD ||
	    pgjq_failure_status(l->conn, res) == PGJQ_EX_TEMPFAIL) {
		lost(l, pgjq_failure_message(l->conn, res));
		PQclear(res);
		return NULL;
	}
	pgjq_die_result(l->conn, res, NULL);
}

/* Connects and LISTENs; false (quietly when retrying) if not now. */
static bool
connect_listen(struct pgjq_listener *l, bool first)
{
	int status;

	l->conn = pgjq_connect_try(l->conninfo, l->schema, !first, &status);
	if (l->conn == NULL) {
		if (first)
			exit(status);
		return false;
	}
	for (size_t i = 0; i < l->nchannels; i++) {
		char *ident = PQescapeIdentifier(l->conn, l->channels[i], strlen(l->channels[i]));
		char *sql = pgjq_xasprintf("LISTEN %s", ident != NULL ? ident : "\"\"");
		PGresult *res;

		PQfreemem(ident);
		res = first ? pgjq_exec_or_die(l->conn, sql, 0, NULL) : pgjq_exec(l->conn, sql, 0, NULL);
		free(sql);
		if (!pgjq_ok(res)) {
			PQclear(res);
			return false;
		}
		PQclear(res);
	}
	if (l->nchannels > 0) {
		l->polling = !pgjq_notifications_arrive(l->conn, l->conninfo, l->channels[0]);
		if (l->polling && !l->said_polling)
			pgjq_warn("notifications do not arrive on this connection (a pooler in "
			    "transaction mode?): polling every %llds", (long long)(POLL_UNNOTIFIED_US / 1000000));
		l->said_polling |= l->polling;
	}
	return true;
}

struct pgjq_listener *
pgjq_listen_open(const char *conninfo, const char *schema, const enum pgjq_channel *chans, size_t n)
{
	struct pgjq_listener *l = pgjq_xcalloc(1, sizeof *l);

	l->conninfo = conninfo;
	l->schema = schema;
	l->channels = pgjq_xcalloc(n, sizeof *l->channels);
	l->nchannels = n;
	for (size_t i = 0; i < n; i++)
		l->channels[i] = pgjq_channel_name(schema, chans[i]);
	connect_listen(l, true);
	return l;
}

void
pgjq_listen_close(struct pgjq_listener *l)
{
	if (l == NULL)
		return;
	if (l->pending != NULL)
		PQfreemem(l->pending);
	PQfinish(l->conn);
	for (size_t i = 0; i < l->nchannels; i++)
		free(l->channels[i]);
	free(l->channels);
	free(l);
}

bool
pgjq_listen_down(const struct pgjq_listener *l)
{
	return l->conn == NULL;
}

/* Tries to reconnect once; true if connected again. */
static bool
reconnect(struct pgjq_listener *l)
{
	if (connect_listen(l, false)) {
		pgjq_warn("reconnected to the database");
		return true;
	}
	PQfinish(l->conn);
	l->conn = NULL;
	l->retry_delay = l->retry_delay * 2 > RETRY_MAX_US ? RETRY_MAX_US : l->retry_delay * 2;
	l->retry_at = pgjq_now_us() + l->retry_delay;
	return false;
}

enum pgjq_listen_event
pgjq_listen_wait(struct pgjq_listener *l, int64_t timeout_us, int extra_fd)
{
	int64_t deadline = timeout_us < 0 ? -1 : pgjq_now_us() + timeout_us;

	if (l->polling && (deadline < 0 || deadline > pgjq_now_us() + POLL_UNNOTIFIED_US))
		deadline = pgjq_now_us() + POLL_UNNOTIFIED_US;
	for (;;) {
		struct pollfd pfd[2];
		int64_t now = pgjq_now_us(), until = deadline;
		int nfd = 0, ms, r;

		if (l->conn == NULL && now >= l->retry_at && reconnect(l))
			return PGJQ_LISTEN_RECONNECTED;
		if (l->conn != NULL) {
			if (l->pending == NULL)
				l->pending = PQnotifies(l->conn);
			if (l->pending != NULL)
				return PGJQ_LISTEN_NOTIFY;
			pfd[nfd].fd = PQsocket(l->conn);
			pfd[nfd++].events = POLLIN;
		} else if (until < 0 || l->retry_at < until) {
			until = l->retry_at;
		}
		if (extra_fd >= 0) {
			pfd[nfd].fd = extra_fd;
			pfd[nfd++].events = POLLIN;
		}
		if (deadline >= 0 && now >= deadline)
			return PGJQ_LISTEN_TIMEOUT;
		ms = until < 0 ? -1 : (int)((until - now + 999) / 1000);
		r = poll(pfd, (nfds_t)nfd, ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			pgjq_die(PGJQ_EX_SOFTWARE, "poll: %s", strerror(errno));
		}
		if (extra_fd >= 0 && (pfd[nfd - 1].revents & (POLLIN | POLLHUP)))
			return PGJQ_LISTEN_FD;
		if (l->conn != NULL && pfd[0].revents != 0 &&
		    (!PQconsumeInput(l->conn) || PQstatus(l->conn) == CONNECTION_BAD))
			lost(l, PQerrorMessage(l->conn));
	}
}

PGnotify *
pgjq_listen_next(struct pgjq_listener *l, size_t *which)
{
	PGnotify *n;

	for (;;) {
		n = l->pending;
		l->pending = NULL;
		if (n == NULL && l->conn != NULL)
			n = PQnotifies(l->conn);
		if (n == NULL)
			return NULL;
		for (size_t i = 0; i < l->nchannels; i++) {
			if (strcmp(n->relname, l->channels[i]) == 0) {
				*which = i;
				return n;
			}
		}
		PQfreemem(n);
	}
}
