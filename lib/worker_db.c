/*
 * worker_db: the worker's one connection, and what losing it means.
 *
 * Running jobs must go on while the database is away (a restart, a
 * failover, a cut link), so a lost connection is not an error here: it is
 * dropped, and found again with a growing delay, LISTENing again each
 * time.  Every statement waits for its answer a lease at most, because a
 * database silent for that long has let our jobs go anyway.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db.h"
#include "diag.h"
#include "duration.h"
#include "listen.h"
#include "schema.h"
#include "sigpipe.h"
#include "worker_int.h"
#include "xalloc.h"

/* The wait before reconnecting: the first, and the most it grows to. */
#define RECONNECT_MIN_US INT64_C(100000)
#define RECONNECT_MAX_US INT64_C(5000000)
/*
 * The longest wait for the answer to a statement: the lease, but never
 * less than this, so that a busy server is not taken for a lost one.
 */
#define STATEMENT_WAIT_MIN_US INT64_C(10000000)
/* ... and once told to stop at once, this. */
#define STOP_WAIT_US INT64_C(2000000)

/* How long a statement's answer, or a turn's, may take before the database is taken for lost. */
int64_t
wk_db_wait_us(const struct worker *w)
{
	if (w->stopping == WK_STOP_NOW)
		return STOP_WAIT_US;
	return w->o->lease_us > STATEMENT_WAIT_MIN_US ? w->o->lease_us : STATEMENT_WAIT_MIN_US;
}

void
wk_db_lost(struct worker *w, const char *why)
{
	/* libpq's messages run over several lines; the first says it. */
	int len = (int)strcspn(why, "\n");

	if (!w->said_down)
		pgjq_warn("lost the database (%.*s); running jobs go on; reconnecting", len, why);
	w->said_down = true;
	PQfinish(w->conn);
	w->conn = NULL;
	/* The claimer goes too: it must find the server the turns find, which may be another now. */
	if (w->claim_conn != NULL)
		wk_claim_drop(w);
	/*
	 * The turn under way may or may not have committed: its outcomes are
	 * kept and sent again (a second send is told as the first), its
	 * running reports too; jobs it may have claimed are put back by the
	 * next renew_leases, as strays.
	 */
	w->turn.busy = false;
	wk_turn_forget(w);
	wk_log_requeue(w);
	w->turn.retry_at = w->turn.retry_delay = 0;
	w->turn.refused = 0;
	for (int i = 0; i < w->o->concurrency; i++)
		w->slots[i].progress_in_turn = false;
	w->reconnect_delay = RECONNECT_MIN_US;
	w->reconnect_at = pgjq_now_us() + w->reconnect_delay;
}

/*
 * Runs a statement; NULL if it failed.  A lost connection is handled here
 * (the caller just stops); other errors are reported with context.
 */
PGresult *
wk_db_exec(struct worker *w, const char *context, const char *sql, int n, const char *const *params)
{
	PGresult *res;

	if (w->conn == NULL)
		return NULL;
	/* The events so far reach the log before a wait that may be long. */
	pgjq_diag_flush();
	/*
	 * A database silent for a whole lease (a link down, a server that
	 * froze) has let our jobs go anyway: drop the connection and find
	 * it again, rather than wait for the kernel to give up on it.
	 */
	/*
	 * A second stop signal while the statement waits cannot be seen by
	 * the loop, which waits on it: pgjq_sigpipe_urgent tells.  (Cleared
	 * first: a signal the loop has seen is in w->stopping.)
	 */
	pgjq_sigpipe_urgent = 0;
	res = pgjq_exec_within(w->conn, sql, n, params, wk_db_wait_us(w), &pgjq_sigpipe_urgent);
	if (res == NULL) {
		wk_db_lost(w, errno == ETIMEDOUT ? "no answer within the lease" : "stopping at once");
		return NULL;
	}
	if (pgjq_ok(res))
		return res;
	if (PQstatus(w->conn) == CONNECTION_BAD) {
		wk_db_lost(w, pgjq_failure_message(w->conn, res));
	} else {
		pgjq_warn("%s: %s", context, pgjq_failure_message(w->conn, res));
		/* Server going down, or a transient error: reconnect rather than spin. */
		if (pgjq_failure_status(w->conn, res) == PGJQ_EX_TEMPFAIL)
			wk_db_lost(w, pgjq_failure_message(w->conn, res));
	}
	PQclear(res);
	return NULL;
}

static bool
listen_on(struct worker *w, const char *channel)
{
	char *ident = PQescapeIdentifier(w->conn, channel, strlen(channel));
	char *sql = pgjq_xasprintf("LISTEN %s", ident);
	PGresult *res = wk_db_exec(w, "cannot listen", sql, 0, NULL);

	PQfreemem(ident);
	free(sql);
	if (res == NULL)
		return false;
	PQclear(res);
	return true;
}

/* (Re)connects: LISTEN, and register the first time.  False if not (yet). */
bool
wk_db_connect(struct worker *w, bool first)
{
	int status;

	w->conn = pgjq_connect_try(w->o->conninfo, w->o->schema, !first, &status);
	if (w->conn == NULL)
		return false;
	PQsetnonblocking(w->conn, 0);
	if (!w->o->poll_only && (!listen_on(w, w->chan_new) || !listen_on(w, w->chan_cancel) ||
	    !listen_on(w, w->chan_schedule)))
		return false;
	if (!w->o->poll_only) {
		char every[32];

		w->polling = !pgjq_notifications_arrive(w->conn, w->o->conninfo, w->chan_new);
		pgjq_format_duration(w->o->poll_us, every, sizeof every);
		if (w->polling && !w->said_deaf)
			pgjq_warn("notifications do not arrive on this connection (a pooler in "
			    "transaction mode?): polling every %s", every);
		w->said_deaf |= w->polling;
	}
	if (first) {
		char host[256] = "?", name[300], conc[16], lease[64];
		const char *params[4] = {name, w->queues, conc, lease};
		PGresult *res;

		gethostname(host, sizeof host - 1);
		snprintf(name, sizeof name, "%s:%ld", host, (long)getpid());
		snprintf(conc, sizeof conc, "%d", w->o->concurrency);
		pgjq_format_interval(w->o->lease_us, lease, sizeof lease);
		res = wk_db_exec(w, "cannot register",
		    pgjq_sql("SELECT {S}.register_worker($1, $2::text[], $3::integer, $4::interval)"),
		    4, params);
		if (res == NULL)
			return false;
		w->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	if (w->said_down)
		pgjq_warn("reconnected to the database");
	w->said_down = false;
	/*
	 * The local queue's leases may have run out meanwhile, its jobs gone
	 * to other workers: it goes back (what is still ours is released,
	 * attempts untouched), and the next turn claims afresh.
	 */
	wk_ahead_release_all(w);
	/* Anything may have happened meanwhile: renew, reap and look for work now. */
	w->wake = true;
	w->turned = false;
	w->next_renew = w->next_reap = 0;
	wk_schedule_changed(w);
	return true;
}

void
wk_db_reconnect(struct worker *w, int64_t now)
{
	/* Told to stop at once: what is not recorded waits for its lease to run out. */
	if (w->conn != NULL || w->stopping == WK_STOP_NOW || now < w->reconnect_at)
		return;
	if (wk_db_connect(w, false))
		return;
	if (w->conn != NULL) {
		PQfinish(w->conn);
		w->conn = NULL;
	}
	w->reconnect_delay = w->reconnect_delay * 2 > RECONNECT_MAX_US ?
	    RECONNECT_MAX_US : w->reconnect_delay * 2;
	w->reconnect_at = now + w->reconnect_delay;
}

/* Reads the NOTIFYs that arrived: new work, or a cancel for one of ours. */
void
wk_db_read_notifies(struct worker *w)
{
	PGnotify *n;

	if (w->conn == NULL)
		return;
	if (!PQconsumeInput(w->conn)) {
		wk_db_lost(w, PQerrorMessage(w->conn));
		return;
	}
	while ((n = PQnotifies(w->conn)) != NULL) {
		if (strcmp(n->relname, w->chan_new) == 0) {
			for (size_t i = 0; i < w->o->nqueues; i++)
				if (strcmp(n->extra, w->o->queues[i]) == 0)
					w->wake = true;
		} else if (strcmp(n->relname, w->chan_schedule) == 0) {
			/* Anyone may send it: it only makes us read the schedules again. */
			for (size_t i = 0; i < w->o->nqueues; i++)
				if (strcmp(n->extra, w->o->queues[i]) == 0)
					wk_schedule_changed(w);
		} else if (strcmp(n->relname, w->chan_cancel) == 0 &&
		    strncmp(n->extra, "pause ", 6) == 0) {
			/*
			 * jq-queue paused a queue.  Forged, it costs the jobs of
			 * our local queue a trip back to the table, nothing more.
			 */
			wk_ahead_paused(w, n->extra + 6);
		} else if (strcmp(n->relname, w->chan_cancel) == 0) {
			long long id = 0, worker = 0;

			/*
			 * Anyone who may connect may NOTIFY: the notice only makes
			 * us renew our leases now, and renew_leases says which of
			 * our jobs really are to be cancelled.
			 */
			if (sscanf(n->extra, "%lld %lld", &id, &worker) != 2 || worker != w->id)
				;
			else if (wk_slot_of(w, id) != NULL)
				w->next_renew = 0;
			else
				wk_ahead_cancelled(w, id);
		}
		PQfreemem(n);
	}
}

/* The worker's row goes, and with it any claim of ours the database still holds. */
void
wk_db_unregister(struct worker *w)
{
	char worker_id[32];
	const char *params[] = {worker_id};
	PGresult *res;

	if (w->conn == NULL || w->id == 0)
		return;
	snprintf(worker_id, sizeof worker_id, "%" PRId64, w->id);
	res = wk_db_exec(w, "cannot unregister",
	    pgjq_sql("SELECT {S}.unregister_worker($1)"), 1, params);
	if (res != NULL)
		PQclear(res);
}
