/*
 * worker_upkeep: the statements that keep the queue sound besides the
 * work itself.  Renewing our leases is what keeps our jobs ours (and says
 * which of them are to be cancelled); reaping puts back the jobs of
 * workers that died; retention keeps the history from growing for ever.
 * Any worker may do the last two, so nothing depends on one of them.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "db.h"
#include "duration.h"
#include "job.h"
#include "worker_int.h"
#include "xalloc.h"

/* Retention runs this often, in batches this big (a few ms each). */
#define PRUNE_EVERY_US INT64_C(60000000)
#define PRUNE_BATCH 1000

/* The jobs this worker holds: running, or finished and not yet recorded. */
static char *
ids_literal(const struct worker *w)
{
	int64_t *ids = pgjq_xcalloc((size_t)w->o->concurrency * PGJQ_PIPE_DEPTH_MAX + w->nout + w->nahead + 1,
	    sizeof *ids);
	size_t n = 0;
	char *literal;

	for (int i = 0; i < w->o->concurrency; i++)
		if (w->slots[i].busy)
			ids[n++] = w->slots[i].id;
	/* Finished but not yet recorded: still ours, not to be put back. */
	for (size_t i = 0; i < w->nout; i++)
		ids[n++] = w->out[i].id;
	for (size_t i = 0; i < w->nahead; i++)
		ids[n++] = w->ahead[i].id;
	/* Sent behind a --pipe handler's job, waiting in its stdin. */
	for (int i = 0; w->pipes != NULL && i < w->o->concurrency; i++)
		for (int k = 0; k < w->pipes[i].nqueued; k++)
			ids[n++] = w->pipes[i].queued[k].id;
	literal = pgjq_id_array(ids, n);
	free(ids);
	return literal;
}

static void
renew_leases(struct worker *w, int64_t now)
{
	char lease[64], worker_id[32];
	char *ids;
	const char *params[3];
	PGresult *res;

	pgjq_format_interval(w->o->lease_us, lease, sizeof lease);
	snprintf(worker_id, sizeof worker_id, "%" PRId64, w->id);
	ids = ids_literal(w);
	params[0] = worker_id;
	params[1] = ids;
	params[2] = lease;
	res = wk_db_exec(w, "cannot renew leases",
	    pgjq_sql("SELECT {S}.renew_leases($1, $2::bigint[], $3::interval)"), 3, params);
	free(ids);
	w->next_renew = now + w->o->lease_us / 3;
	/* Deaf to cancel notices: a renewal is what finds them. */
	if (w->polling && w->o->poll_us < w->o->lease_us / 3)
		w->next_renew = now + w->o->poll_us;
	if (res == NULL)
		return;
	for (size_t i = 0; i < w->nahead; i++)
		w->ahead[i].lease_end = now + w->o->lease_us;
	for (int i = 0; w->pipes != NULL && i < w->o->concurrency; i++)
		for (int k = 0; k < w->pipes[i].nqueued; k++)
			w->pipes[i].queued[k].lease_end = now + w->o->lease_us;
	for (int i = 0; i < PQntuples(res); i++) {
		struct slot *s;

		if (PQgetisnull(res, i, 0))
			continue;
		s = wk_slot_of(w, strtoll(PQgetvalue(res, i, 0), NULL, 10));
		if (s != NULL)
			wk_slot_cancel(w, s, now);
	}
	PQclear(res);
}

static void
reap_expired(struct worker *w, int64_t now)
{
	PGresult *res = wk_db_exec(w, "cannot look for lost jobs",
	    pgjq_sql("SELECT {S}.reap_expired()"), 0, NULL);

	w->next_reap = now + w->o->lease_us / 2;
	if (res == NULL)
		return;
	if (atoi(PQgetvalue(res, 0, 0)) > 0)
		w->wake = true;
	PQclear(res);
}

/*
 * --keep-logs: log lines go sooner than their jobs (which take theirs
 * along when they go, by a trigger), in batches like the jobs.
 */
static void
prune_logs(struct worker *w, int64_t now)
{
	char keep[64], batch[16];
	const char *params[] = {keep, batch};
	PGresult *res;

	pgjq_format_interval(w->o->keep_logs_us, keep, sizeof keep);
	snprintf(batch, sizeof batch, "%d", PRUNE_BATCH * 10);
	res = wk_db_exec(w, "cannot remove old log lines",
	    pgjq_sql("SELECT {S}.prune_logs($1::interval, $2::integer)"), 2, params);
	if (res == NULL)
		return;
	if (atoi(PQgetvalue(res, 0, 0)) == PRUNE_BATCH * 10)
		w->next_prune = now;
	PQclear(res);
}

/*
 * Retention: removes finished jobs past their keep time, one batch per
 * turn of the loop so the handlers' pipes are never kept waiting long.
 * One worker at a time does it (an advisory lock); the others look again
 * later.
 */
static void
prune_history(struct worker *w, int64_t now)
{
	char keep_completed[64], keep_failed[64], batch[16];
	const char *params[] = {keep_completed, keep_failed, batch};
	PGresult *res;

	pgjq_format_interval(w->o->keep_completed_us, keep_completed, sizeof keep_completed);
	pgjq_format_interval(w->o->keep_failed_us, keep_failed, sizeof keep_failed);
	snprintf(batch, sizeof batch, "%d", PRUNE_BATCH);
	res = wk_db_exec(w, "cannot remove old jobs",
	    pgjq_sql("SELECT {S}.prune_history($1::interval, $2::interval, $3::integer)"), 3, params);
	w->next_prune = now + PRUNE_EVERY_US;
	if (res == NULL)
		return;
	if (atoi(PQgetvalue(res, 0, 0)) == PRUNE_BATCH)
		w->next_prune = now; /* more where that came from */
	PQclear(res);
	if (w->o->keep_logs_us > 0)
		prune_logs(w, now);
}

/* Renewal, reaping and retention, each when its time has come. */
void
wk_upkeep(struct worker *w, int64_t now)
{
	/*
	 * The housekeeping statements wait for their answers, so they go
	 * between turns; after a reconnect only once a turn has recorded
	 * the outcomes kept meanwhile, before reap_expired may take their
	 * jobs over.
	 */
	if (w->conn == NULL || w->turn.busy || (!w->turned && w->nout != 0))
		return;
	/* (Not while a claim is under way: see claim_send.) */
	if (w->conn != NULL && now >= w->next_renew && w->id != 0 && !w->claim.busy)
		renew_leases(w, now);
	if (w->conn != NULL && now >= w->next_reap)
		reap_expired(w, now);
	if (w->conn != NULL && now >= w->next_prune && w->stopping == WK_RUNNING)
		prune_history(w, now);
}
