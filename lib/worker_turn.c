/*
 * worker_turn: the worker's business with the database, one statement a
 * turn.  A turn is one call of turn(), and so one commit: every outcome
 * ready, the starts and progress of running jobs, and a claim.  It is
 * sent with libpq's asynchronous API, and the loop goes on while it is
 * under way: handlers finish, slots take the next job from the local
 * queue, outcomes pile up for the next turn.  So a slot that frees never
 * waits for the database, and the batches grow by themselves with the
 * commit's duration, with no waiting on purpose.
 *
 * The claims go on a connection of their own, the claimer's, when it is
 * up: a turn then records, a claim claims, and the server works on both
 * at once.  The claimer's claim is turn() with nothing to report.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"
#include "diag.h"
#include "duration.h"
#include "worker_int.h"
#include "xalloc.h"

static void claim_send(struct worker *w, int64_t now);
static void claim_read(struct worker *w, int64_t now);

/* The first wait after a refused turn (see refused_wait). */
#define REFUSED_WAIT_MIN_US INT64_C(100000)

/* The parameters of turn(), in order. */
enum turn_param {
	P_WORKER, P_IDS, P_ATTEMPTS, P_KINDS, P_RAN, P_RESULTS, P_ERRORS, P_PERMANENT, P_BACKOFFS,
	P_PROGRESS, P_MESSAGES, P_CHANNEL, P_QUEUES, P_RUN, P_AHEAD, P_LEASE, P_MAX_SNOOZES, P_COUNT
};

/* The columns of turn()'s rows. */
enum turn_col {
	TURN_ID, TURN_QUEUE, TURN_PAYLOAD, TURN_ATTEMPT, TURN_MAX_ATTEMPTS, TURN_TIMEOUT,
	TURN_PRIORITY, TURN_STATE,
};

static const char turn_sql[] =
    "SELECT id, queue, payload, attempt, max_attempts, extract(epoch FROM timeout), priority, state "
    "FROM {S}.turn($1, $2::bigint[], $3::integer[], $4::text[], $5::interval[], $6::jsonb[], $7::text[], "
    "$8::boolean[], $9::interval[], $10::smallint[], $11::text[], $12, $13::text[], $14, $15, "
    "$16::interval, $17::integer)";

/* The lines written since the last turn, sent in front of it (see worker_log.c). */
static const char logs_sql[] =
    "SELECT {S}.append_logs($1::bigint[], $2::integer[], $3::timestamptz[], $4::text[], $5::text[], $6)";

/* One call's parameters: the report arrays are built as array literals. */
struct turn_args {
	struct pgjq_buf a[P_COUNT];
	char worker_id[32], run[16], ahead[16], lease[64], max_snoozes[16];
	const char *params[P_COUNT];
};

/* Appends one element to an array literal: quoted, so any text is safe; NULL for NULL. */
static void
array_put(struct pgjq_buf *b, const char *v)
{
	pgjq_buf_putc(b, b->len > 0 ? ',' : '{');
	if (v == NULL) {
		pgjq_buf_printf(b, "NULL");
		return;
	}
	pgjq_buf_putc(b, '"');
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			pgjq_buf_putc(b, '\\');
		pgjq_buf_putc(b, *v);
	}
	pgjq_buf_putc(b, '"');
}

/* One report: a job's start (ran_us ago; -1: never), progress, or outcome. */
static void
put_report(struct turn_args *t, int64_t id, int attempt, const char *kind, int64_t ran_us,
    const char *result, const char *error, bool permanent, int64_t backoff_us,
    bool has_progress, int progress, const char *message)
{
	char num[64];

	snprintf(num, sizeof num, "%" PRId64, id);
	array_put(&t->a[P_IDS], num);
	snprintf(num, sizeof num, "%d", attempt);
	array_put(&t->a[P_ATTEMPTS], num);
	array_put(&t->a[P_KINDS], kind);
	pgjq_format_interval(ran_us, num, sizeof num);
	array_put(&t->a[P_RAN], ran_us >= 0 ? num : NULL);
	array_put(&t->a[P_RESULTS], result);
	array_put(&t->a[P_ERRORS], error);
	array_put(&t->a[P_PERMANENT], permanent ? "t" : "f");
	pgjq_format_interval(backoff_us, num, sizeof num);
	array_put(&t->a[P_BACKOFFS], num);
	snprintf(num, sizeof num, "%d", progress);
	array_put(&t->a[P_PROGRESS], has_progress ? num : NULL);
	array_put(&t->a[P_MESSAGES], has_progress ? message : NULL);
}

static void
put_outcome(struct turn_args *t, const struct outcome *o, int64_t now)
{
	put_report(t, o->id, o->attempt, o->kind == OUT_COMPLETED ? "completed" :
	    o->kind == OUT_FAILED ? "failed" : o->kind == OUT_SNOOZED ? "snoozed" : "released",
	    o->started != 0 ? now - o->started : -1,
	    o->kind == OUT_COMPLETED ? o->result : NULL, o->kind == OUT_FAILED ? o->error : NULL,
	    o->permanent, o->kind == OUT_FAILED || o->kind == OUT_SNOOZED ? o->delay_us : 0,
	    o->has_progress, o->progress, o->message);
}

/* Completes the parameters, with a claim of run jobs to start now and ahead for the local queue. */
static void
turn_args_finish(struct worker *w, struct turn_args *t, int run, int ahead)
{
	for (int i = P_IDS; i <= P_MESSAGES; i++) {
		if (t->a[i].len == 0)
			pgjq_buf_putc(&t->a[i], '{');
		pgjq_buf_putc(&t->a[i], '}');
		t->params[i] = t->a[i].data;
	}
	snprintf(t->worker_id, sizeof t->worker_id, "%" PRId64, w->id);
	snprintf(t->run, sizeof t->run, "%d", run);
	snprintf(t->ahead, sizeof t->ahead, "%d", ahead);
	pgjq_format_interval(w->o->lease_us, t->lease, sizeof t->lease);
	t->params[P_WORKER] = t->worker_id;
	t->params[P_CHANNEL] = w->chan_progress;
	t->params[P_QUEUES] = w->queues;
	t->params[P_RUN] = t->run;
	t->params[P_AHEAD] = t->ahead;
	t->params[P_LEASE] = t->lease;
	snprintf(t->max_snoozes, sizeof t->max_snoozes, "%d", w->o->max_snoozes);
	t->params[P_MAX_SNOOZES] = t->max_snoozes;
}

static void
turn_args_free(struct turn_args *t)
{
	for (int i = 0; i < P_COUNT; i++)
		pgjq_buf_free(&t->a[i]);
}

/*
 * How many jobs a claim could take now: run for the free slots that the
 * local queue cannot fill, ahead to top the local queue up, within
 * --max-jobs.  (Topped up every turn: the next claim comes a whole turn
 * later, and the slots must not run dry meanwhile.)
 */
void
wk_turn_claim_room(struct worker *w, int64_t now, int *run, int *ahead)
{
	int free = wk_slots_ready(w, now) - (int)w->nahead, target = wk_ahead_target(w);

	*run = free > 0 ? free : 0;
	*ahead = target > (int)w->nahead ? target - (int)w->nahead : 0;
	if (w->o->max_jobs > 0) {
		long left = w->o->max_jobs - w->claimed;

		if (left < *run)
			*run = left > 0 ? (int)left : 0;
		if (left - *run < *ahead)
			*ahead = (int)(left - *run);
	}
}

/* As wk_turn_claim_room, but 0 unless there may be work: a notice, a free slot, a poll or a job due. */
static void
claim_want(struct worker *w, int64_t now, int *run, int *ahead)
{
	*run = *ahead = 0;
	if (w->stopping != WK_RUNNING || w->conn == NULL)
		return;
	if (!w->wake && now < w->next_poll && (w->next_due == 0 || now < w->next_due))
		return;
	wk_turn_claim_room(w, now, run, ahead);
}

/*
 * Whether a running job's start or progress is for the next turn to tell.
 * A start is told at once, not saved up for company: until the database
 * has it running, a worker that dies gives the job back with its attempt
 * not counted, and a job that kills its worker would never run out of
 * attempts.
 */
static bool
report_due(const struct slot *s, int64_t now)
{
	return s->busy && !s->lost && (!s->db_running || wk_slot_progress_due(s, now));
}

/*
 * The log lines go in front of the turn, pipelined: one round trip, and
 * one implicit transaction up to the sync, so the lines commit with the
 * outcomes or not at all.  Plain extended-protocol messages with unnamed
 * statements, which a pooler in transaction mode passes as they are.
 * With nothing else to say (t NULL), the lines go alone.
 */
static bool
send_piped(struct worker *w, const struct turn_args *t)
{
	const char *lp[WK_LOG_NARRAYS + 1];

	wk_log_take(w, lp);
	lp[WK_LOG_NARRAYS] = w->chan_log;
	return PQenterPipelineMode(w->conn) &&
	    PQsendQueryParams(w->conn, pgjq_sql(logs_sql), WK_LOG_NARRAYS + 1, NULL, lp, NULL, NULL, 0) &&
	    (t == NULL ||
	     PQsendQueryParams(w->conn, pgjq_sql(turn_sql), P_COUNT, NULL, t->params, NULL, NULL, 0)) &&
	    PQpipelineSync(w->conn);
}

/* Sends a turn, if there is anything to say or to claim. */
void
wk_turn_send(struct worker *w, int64_t now)
{
	struct turn *tn = &w->turn;
	struct turn_args t;
	int run, ahead;

	claim_send(w, now);
	if (w->conn == NULL || tn->busy || now < tn->retry_at)
		return;
	claim_want(w, now, &run, &ahead);
	if (w->claim_conn != NULL)
		run = ahead = 0; /* the claimer's */
	tn->nrunning = 0;
	for (int i = 0; i < w->o->concurrency; i++)
		tn->nrunning += report_due(&w->slots[i], now);
	if (w->nout == 0 && tn->nrunning == 0 && run + ahead == 0 && !wk_log_due(w, now))
		return;

	memset(&t, 0, sizeof t);
	for (size_t i = 0; i < w->nout; i++)
		put_outcome(&t, &w->out[i], now);
	tn->running = pgjq_xgrow(tn->running, &tn->running_cap, tn->nrunning, sizeof *tn->running);
	tn->nrunning = 0;
	for (int i = 0; i < w->o->concurrency; i++) {
		struct slot *s = &w->slots[i];
		bool progress;

		if (!report_due(s, now))
			continue;
		progress = wk_slot_progress_due(s, now);
		put_report(&t, s->id, s->attempt, "running", now - s->started, NULL, NULL, false, 0,
		    progress, s->progress, s->message);
		s->progress_in_turn = progress;
		s->progress_seq_sent = s->progress_seq;
		tn->running[tn->nrunning++] = s->id;
	}
	turn_args_finish(w, &t, run, ahead);
	tn->logs = w->log.pending.n > 0;
	tn->logs_only = tn->logs && w->nout == 0 && tn->nrunning == 0 && run + ahead == 0;
	tn->stage = 0;
	if (tn->logs ? !send_piped(w, tn->logs_only ? NULL : &t) :
	    !PQsendQueryParams(w->conn, pgjq_sql(turn_sql), P_COUNT, NULL, t.params, NULL, NULL, 0)) {
		turn_args_free(&t);
		wk_db_lost(w, PQerrorMessage(w->conn));
		return;
	}
	turn_args_free(&t);
	/* Consumed; a slot that frees while the turn is under way says so again. */
	if (run + ahead > 0)
		w->wake = false;
	tn->busy = true;
	tn->sent = now;
	tn->nout = w->nout;
	tn->run = run;
	tn->ahead = ahead;
}

/* A claimed job, row of turn()'s answer, joins the local queue. */
static void
ahead_add(struct worker *w, const struct turn *tn, PGresult *res, int row)
{
	struct ahead *a;

	w->ahead = pgjq_xgrow(w->ahead, &w->ahead_cap, w->nahead + 1, sizeof *w->ahead);
	a = &w->ahead[w->nahead++];
	a->id = strtoll(PQgetvalue(res, row, TURN_ID), NULL, 10);
	a->queue = wk_queue_name(w, PQgetvalue(res, row, TURN_QUEUE));
	a->payload = pgjq_xstrdup(PQgetvalue(res, row, TURN_PAYLOAD));
	a->attempt = atoi(PQgetvalue(res, row, TURN_ATTEMPT));
	a->max_attempts = atoi(PQgetvalue(res, row, TURN_MAX_ATTEMPTS));
	a->priority = atoi(PQgetvalue(res, row, TURN_PRIORITY));
	/* (seconds, from the claim) */
	a->limit_us = PQgetisnull(res, row, TURN_TIMEOUT) ? -1 :
	    (int64_t)(strtod(PQgetvalue(res, row, TURN_TIMEOUT), NULL) * 1e6);
	a->sent = false;
	a->db_running = strcmp(PQgetvalue(res, row, TURN_STATE), "running") == 0;
	a->lease_end = tn->sent + w->o->lease_us; /* (from the claim's sending: ours until then at least) */
}

static const char *
state_at(PGresult *res, int row)
{
	return PQgetisnull(res, row, TURN_STATE) ? NULL : PQgetvalue(res, row, TURN_STATE);
}

/* What a turn's answer says: how its reports went, what it claimed, when work is due next. */
static void
turn_done(struct worker *w, struct turn *tn, PGresult *res, int64_t now)
{
	int rows = PQntuples(res), row = 0, got = 0;
	bool ahead_added = false;

	for (size_t i = 0; i < tn->nout && row < rows; i++, row++) {
		const char *state = state_at(res, row);

		wk_outcome_say(w, &w->out[i], state);
		/*
		 * A retry or a snooze is a job due later, which only a claim's
		 * answer tells of: the claimer's last one came before it.
		 */
		if (w->claim_conn != NULL && state != NULL &&
		    (strcmp(state, "scheduled") == 0 || strcmp(state, "snoozed") == 0))
			w->wake = true;
	}
	wk_outcomes_drop(w, tn->nout);
	for (size_t i = 0; i < tn->nrunning && row < rows; i++, row++) {
		struct slot *s = wk_slot_of(w, tn->running[i]);

		if (s == NULL)
			continue; /* finished meanwhile: its outcome says the rest */
		if (s->progress_in_turn) {
			s->progress_in_turn = false;
			s->progress_sent = now;
			if (s->progress_seq == s->progress_seq_sent)
				s->progress_dirty = false;
		}
		if (state_at(res, row) != NULL)
			s->db_running = true;
		else
			wk_slot_abandon(w, s, now);
	}
	if (tn->run + tn->ahead > 0) {
		w->demand = w->started;
		w->started = 0;
	}
	for (; row < rows; row++) {
		if (strcmp(PQgetvalue(res, row, TURN_STATE), "due") == 0) {
			/* Sleep until the next scheduled job is due, if that is sooner than the poll. */
			w->next_due = 0;
			if (!PQgetisnull(res, row, TURN_TIMEOUT)) {
				double secs = strtod(PQgetvalue(res, row, TURN_TIMEOUT), NULL);

				w->next_due = now + (secs > 0 ? (int64_t)(secs * 1e6) + 1000 : 0);
				if (w->next_due <= now)
					w->wake = true;
			}
			continue;
		}
		ahead_add(w, tn, res, row);
		ahead_added = true;
		got++;
	}
	if (ahead_added)
		wk_ahead_sort(w);
	w->turned = true;
	if (tn->run + tn->ahead == 0)
		return;
	w->claimed += got;
	w->next_poll = now + w->o->poll_us;
	w->empty = got == 0;
	if (got == tn->run + tn->ahead)
		w->wake = true; /* a full batch: there may be more */
}

/*
 * A turn refused with the connection fine: one outcome the database will
 * not take (say, a result jsonb rejects) must not hold back the others.
 * Each goes on its own, synchronously (this is rare); the claim and the
 * running reports go with the next turn.
 */
static void
record_singly(struct worker *w, int64_t now)
{
	size_t done = 0;

	while (done < w->turn.nout && w->conn != NULL) {
		struct turn_args t;
		PGresult *res;

		memset(&t, 0, sizeof t);
		put_outcome(&t, &w->out[done], now);
		turn_args_finish(w, &t, 0, 0);
		res = wk_db_exec(w, "cannot record an outcome", pgjq_sql(turn_sql), P_COUNT, t.params);
		turn_args_free(&t);
		if (res == NULL && w->conn == NULL)
			break; /* kept for after the reconnect */
		if (res != NULL) {
			wk_outcome_say(w, &w->out[done], state_at(res, 0));
			PQclear(res);
		}
		done++;
	}
	wk_outcomes_drop(w, done);
}

/*
 * After a refused turn: the next one waits 100 ms, then twice as long
 * each time, up to a quarter of the lease (so that starts are still told
 * well within it) or the poll interval, whichever is shorter.
 */
static void
refused_wait(struct worker *w, int64_t now)
{
	int64_t cap = w->o->lease_us / 4, *d = &w->turn.retry_delay;

	if (cap > w->o->poll_us)
		cap = w->o->poll_us;
	if (cap < REFUSED_WAIT_MIN_US)
		cap = REFUSED_WAIT_MIN_US;
	*d = *d == 0 ? REFUSED_WAIT_MIN_US : *d * 2;
	if (*d > cap)
		*d = cap;
	w->turn.retry_at = now + *d;
}

/* The longest wait for a turn's answer before the database is taken for lost. */
bool
wk_turn_overdue(const struct worker *w, int64_t now, int64_t *at)
{
	int64_t since = w->turn.sent, wait = wk_db_wait_us(w);

	if (w->stopping == WK_STOP_NOW)
		since = since > w->grace_end ? since : w->grace_end;
	if (at != NULL)
		*at = since + wait;
	return now >= since + wait;
}

/* How long a silent database is waited for, the same for a turn with logs or without. */
static bool
still_busy(struct worker *w, int64_t now)
{
	if (!PQisBusy(w->conn))
		return false;
	/*
	 * A database silent for a whole lease (a link down, a server
	 * that froze) has let our jobs go anyway: drop the connection
	 * and find it again, rather than wait for the kernel to give up.
	 */
	if (wk_turn_overdue(w, now, NULL))
		wk_db_lost(w, w->stopping == WK_STOP_NOW ? "stopping at once" :
		    "no answer within the lease");
	return true;
}

/*
 * Reads the answers of a pipelined turn as they come: append_logs()'s,
 * turn()'s, then the sync.  True once all have come (the pipeline is
 * left); false while some are missing, or if the connection was lost.
 */
static bool
read_piped(struct worker *w, int64_t now)
{
	struct turn *tn = &w->turn;

	/* stage: 0 append_logs(), 1 turn() (skipped with the lines alone), 2 the sync, 3 done. */
	while (tn->stage < 3) {
		PGresult *res;

		if (still_busy(w, now))
			return false;
		res = PQgetResult(w->conn);
		if (res == NULL) {
			/* Each statement's results end with a NULL; a NULL past them is a broken line. */
			if (tn->stage < 2) {
				tn->stage += tn->logs_only ? 2 : 1;
				continue;
			}
			wk_db_lost(w, PQerrorMessage(w->conn));
			return false;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			tn->stage = 3;
			PQclear(res);
		} else if (tn->stage == 0 && tn->logs_res == NULL) {
			tn->logs_res = res;
		} else if (tn->stage == 1 && (tn->turn_res == NULL || pgjq_ok(tn->turn_res))) {
			PQclear(tn->turn_res);
			tn->turn_res = res;
		} else {
			PQclear(res);
		}
	}
	if (!PQexitPipelineMode(w->conn)) {
		wk_db_lost(w, PQerrorMessage(w->conn));
		return false;
	}
	return true;
}

/*
 * The log lines' fate, told by append_logs()'s answer lr.  False if the
 * turn is over without its answer being of use: the connection lost, or
 * the lines refused (turn() was not run then: its reports go again).
 */
static bool
logs_done(struct worker *w, PGresult *lr)
{
	if (lr != NULL && pgjq_ok(lr)) {
		wk_log_sent(w);
		return true;
	}
	if (lr == NULL || PQstatus(w->conn) == CONNECTION_BAD ||
	    pgjq_failure_status(w->conn, lr) == PGJQ_EX_TEMPFAIL) {
		wk_db_lost(w, lr != NULL ? pgjq_failure_message(w->conn, lr) : PQerrorMessage(w->conn));
		return false;
	}
	wk_log_refused(w, pgjq_failure_message(w->conn, lr));
	w->turn.busy = false;
	for (int i = 0; i < w->o->concurrency; i++)
		w->slots[i].progress_in_turn = false;
	w->wake = true;
	return false;
}

/* A turn is over, or lost: the answers kept from its pipeline go. */
void
wk_turn_forget(struct worker *w)
{
	PQclear(w->turn.logs_res);
	PQclear(w->turn.turn_res);
	w->turn.logs_res = w->turn.turn_res = NULL;
	w->turn.logs = w->turn.logs_only = false;
	w->turn.stage = 0;
}

/* A turn or a claim was taken: what the turns said of refusals is over. */
static void
turns_taken(struct worker *w)
{
	if (w->turn.refused > 0)
		pgjq_warn("turns are taken again, after %ld refused", w->turn.refused);
	w->turn.refused = 0;
	w->turn.retry_at = w->turn.retry_delay = 0;
}

/* Reads the turn's answer, if it has come (wk_db_read_notifies has consumed the input). */
void
wk_turn_read(struct worker *w, int64_t now)
{
	PGresult *kept = NULL;

	claim_read(w, now);
	if (!w->turn.busy || w->conn == NULL)
		return;
	if (w->turn.logs) {
		PGresult *lr;
		bool go_on, only;

		if (!read_piped(w, now))
			return;
		lr = w->turn.logs_res;
		kept = w->turn.turn_res;
		only = w->turn.logs_only;
		w->turn.logs_res = w->turn.turn_res = NULL;
		wk_turn_forget(w);
		go_on = logs_done(w, lr);
		PQclear(lr);
		if (!go_on || only) {
			if (go_on)
				w->turn.busy = false;
			PQclear(kept);
			return;
		}
		goto answered;
	}
	if (still_busy(w, now))
		return;
	kept = pgjq_answer(w->conn);
answered:
	w->turn.busy = false;
	if (kept != NULL && pgjq_ok(kept)) {
		turns_taken(w);
		turn_done(w, &w->turn, kept, now);
		PQclear(kept);
		return;
	}
	for (int i = 0; i < w->o->concurrency; i++)
		w->slots[i].progress_in_turn = false;
	if (kept == NULL || PQstatus(w->conn) == CONNECTION_BAD ||
	    pgjq_failure_status(w->conn, kept) == PGJQ_EX_TEMPFAIL) {
		wk_db_lost(w, kept != NULL ? pgjq_failure_message(w->conn, kept) : PQerrorMessage(w->conn));
	} else {
		refused_wait(w, now);
		/* Said once a streak, not at every try. */
		if (w->turn.refused++ == 0 || w->turn.nout > 0)
			pgjq_warn("%s: %s", w->turn.nout > 0 ? "cannot record outcomes" : "cannot claim jobs",
			    pgjq_failure_message(w->conn, kept));
		record_singly(w, now);
	}
	PQclear(kept);
}

/* ------------------------------------------------------------ claimer */

/* The wait before connecting the claimer again, after it failed or was lost. */
#define CLAIMER_RETRY_US INT64_C(5000000)

void
wk_claim_drop(struct worker *w)
{
	PQfinish(w->claim_conn);
	w->claim_conn = NULL;
	w->claim.busy = false;
	w->claim_retry_at = pgjq_now_us() + CLAIMER_RETRY_US;
	/* What it would have claimed, the turns claim now. */
	w->wake = true;
}

void
wk_claim_connect(struct worker *w, int64_t now)
{
	if (w->claim_conn != NULL || w->conn == NULL || w->stopping != WK_RUNNING ||
	    now < w->claim_retry_at || w->id == 0)
		return;
	w->claim_conn = pgjq_db_open_beside(w->o->conninfo, w->conn);
	if (w->claim_conn == NULL) {
		/* The turns claim meanwhile: nothing is lost, only speed. */
		if (!w->claim_said)
			pgjq_warn("cannot open a second connection, for claims; the turns claim");
		w->claim_said = true;
		w->claim_retry_at = now + CLAIMER_RETRY_US;
		return;
	}
	PQsetnonblocking(w->claim_conn, 0);
	w->claim_said = false;
}

int
wk_claim_pollfds(const struct worker *w, struct pollfd *pfd)
{
	if (w->claim_conn == NULL || !w->claim.busy)
		return 0;
	pfd[0] = (struct pollfd){.fd = PQsocket(w->claim_conn), .events = POLLIN};
	return 1;
}

/*
 * Sends a claim, if one is wanted and none is under way.  None while
 * the leases are due for renewal: renew_leases() puts back the jobs
 * this worker holds and does not know of, and a claim that has
 * committed and not yet been answered would be among them.
 */
static void
claim_send(struct worker *w, int64_t now)
{
	struct turn *tn = &w->claim;
	struct turn_args t;
	int run, ahead;

	if (w->claim_conn == NULL || tn->busy || now >= w->next_renew)
		return;
	claim_want(w, now, &run, &ahead);
	if (run + ahead == 0)
		return;
	memset(&t, 0, sizeof t);
	turn_args_finish(w, &t, run, ahead);
	if (!PQsendQueryParams(w->claim_conn, pgjq_sql(turn_sql), P_COUNT, NULL, t.params, NULL, NULL, 0)) {
		turn_args_free(&t);
		wk_claim_drop(w);
		return;
	}
	turn_args_free(&t);
	w->wake = false;
	tn->busy = true;
	tn->sent = now;
	tn->nout = tn->nrunning = 0;
	tn->run = run;
	tn->ahead = ahead;
}

/*
 * Reads the claim's answer, if it has come.  A claim refused, or a
 * claimer lost or silent for a lease, drops the claimer: the turns
 * claim instead (and say why, if it is the database's fault), and the
 * claimer is tried again a little later.
 */
static void
claim_read(struct worker *w, int64_t now)
{
	PGresult *kept;

	if (w->claim_conn == NULL || !w->claim.busy)
		return;
	if (!PQconsumeInput(w->claim_conn)) {
		wk_claim_drop(w);
		return;
	}
	if (PQisBusy(w->claim_conn)) {
		if (now >= w->claim.sent + wk_db_wait_us(w))
			wk_claim_drop(w);
		return;
	}
	kept = pgjq_answer(w->claim_conn);
	w->claim.busy = false;
	if (kept != NULL && pgjq_ok(kept)) {
		turns_taken(w); /* the same turn(), taken */
		turn_done(w, &w->claim, kept, now);
	} else {
		/* Refused: the turns claim now, and say why if they are refused too. */
		wk_claim_drop(w);
	}
	PQclear(kept);
}
