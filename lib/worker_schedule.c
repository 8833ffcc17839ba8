/*
 * worker_schedule: the worker's part in recurring jobs (schedule.h).  It
 * knows when the next slot of its queues' schedules is due and fires the
 * due ones between turns, so a turn costs nothing more while none is due;
 * a notice on the schedules' channel, a reconnect, or a minute gone by
 * makes it read them again.  It also knows, for the jobs it claims, which
 * schedule and slot each is for, so that their handlers can be told:
 * reading the schedules also reads their unfinished jobs, and as long as
 * no slot has come since, a job not among them is no schedule's.  Only a
 * job claimed around a slot's time is looked up.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"
#include "diag.h"
#include "job.h"
#include "listen.h"
#include "schedule.h"
#include "worker_int.h"
#include "xalloc.h"

/* Read the schedules this often even without a notice: one lost cannot hide a change for long. */
#define RECHECK_US (INT64_C(60) * 1000000)
/* Our idea of when a slot is due may be this far off another worker's (clocks, round trips). */
#define SLOT_MARGIN_US (INT64_C(1000000))

/* A claimed job, and the schedule and slot it is for (NULL: none). */
struct sched_job {
	int64_t id;
	char *name, *slot;
};

struct wk_sched {
	int64_t due;              /* monotonic: the next slot of our queues' schedules; 0: none */
	int64_t recheck;          /* read them again then, whatever */
	bool reload;              /* a notice came, or we reconnected: read them now */
	char **queues;            /* our queues that have schedules */
	size_t nqueues;
	struct sched_job *jobs;   /* what the jobs we hold are for */
	size_t njobs, jobs_cap;
	struct sched_job *pending; /* the unfinished jobs of our queues' schedules, as last read */
	size_t npending;
	int64_t read_at;          /* when they were read: no slot came between then and due */
};

void
wk_schedule_init(struct worker *w)
{
	w->sched = pgjq_xcalloc(1, sizeof *w->sched);
	w->sched->reload = true;
}

static void
forget_queues(struct wk_sched *sc)
{
	for (size_t i = 0; i < sc->nqueues; i++)
		free(sc->queues[i]);
	free(sc->queues);
	sc->queues = NULL;
	sc->nqueues = 0;
}

static void
forget_pending(struct wk_sched *sc)
{
	for (size_t i = 0; i < sc->npending; i++) {
		free(sc->pending[i].name);
		free(sc->pending[i].slot);
	}
	free(sc->pending);
	sc->pending = NULL;
	sc->npending = 0;
}

void
wk_schedule_free(struct worker *w)
{
	if (w->sched == NULL)
		return;
	forget_queues(w->sched);
	forget_pending(w->sched);
	for (size_t i = 0; i < w->sched->njobs; i++) {
		free(w->sched->jobs[i].name);
		free(w->sched->jobs[i].slot);
	}
	free(w->sched->jobs);
	free(w->sched);
	w->sched = NULL;
}

void
wk_schedule_changed(struct worker *w)
{
	w->sched->reload = true;
}

int64_t
wk_schedule_due(const struct worker *w)
{
	const struct wk_sched *sc = w->sched;

	if (w->stopping != WK_RUNNING)
		return 0;
	if (sc->reload)
		return 1; /* long due */
	if (sc->due != 0 && sc->due < sc->recheck)
		return sc->due;
	return sc->recheck;
}

/* ------------------------------------------------------------ firing */

static const char load_sql[] =
	"SELECT s.name, s.queue, s.cron, (extract(epoch FROM s.every) * 1000000)::bigint, s.tz,"
	"       s.catch_up,"
	/* A paused queue's schedules wait as paused ones do; its resume tells us. */
	"       s.paused OR EXISTS (SELECT 1 FROM {S}.queues q WHERE q.name = s.queue AND q.paused),"
	"       (extract(epoch FROM s.next_at) * 1000000)::bigint,"
	"       (extract(epoch FROM pg_catalog.now()) * 1000000)::bigint"
	"  FROM {S}.schedules s WHERE s.queue = ANY ($1::text[])";

enum { S_NAME, S_QUEUE, S_CRON, S_EVERY, S_TZ, S_CATCH_UP, S_PAUSED, S_NEXT, S_NOW };

static const char pending_sql[] =
	"SELECT j.job, j.name, pg_catalog.to_char(j.slot AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	"  FROM {S}.schedule_jobs j JOIN {S}.jobs x ON x.id = j.job"
	" WHERE x.queue = ANY ($1::text[])";

/* Reads the unfinished jobs of our queues' schedules; false if it could not. */
static bool
read_pending(struct worker *w)
{
	struct wk_sched *sc = w->sched;
	const char *params[1] = {w->queues};
	PGresult *res = wk_db_exec(w, "cannot read the schedules' jobs", pgjq_sql(pending_sql), 1,
	    params);

	forget_pending(sc);
	if (res == NULL)
		return false;
	sc->npending = (size_t)PQntuples(res);
	sc->pending = pgjq_xcalloc(sc->npending + 1, sizeof *sc->pending);
	for (size_t i = 0; i < sc->npending; i++) {
		sc->pending[i].id = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
		sc->pending[i].name = pgjq_xstrdup(PQgetvalue(res, (int)i, 1));
		sc->pending[i].slot = pgjq_xstrdup(PQgetvalue(res, (int)i, 2));
	}
	PQclear(res);
	return true;
}

/* Times go both ways as microseconds since the epoch: exact, whatever the session's settings. */
static const char fire_sql[] =
	"SELECT f.job, pg_catalog.to_char(f.slot AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	"  FROM {S}.schedule_fire($1,"
	"         TIMESTAMPTZ 'epoch' + $2::bigint * INTERVAL '1 microsecond',"
	"         ARRAY(SELECT TIMESTAMPTZ 'epoch' + u.us * INTERVAL '1 microsecond'"
	"                 FROM pg_catalog.unnest($3::bigint[]) WITH ORDINALITY AS u(us, n) ORDER BY u.n),"
	"         TIMESTAMPTZ 'epoch' + $4::bigint * INTERVAL '1 microsecond') f";

/*
 * Fires the due slots of the schedule in row i of res: 1 if done (or
 * another worker was first), 0 if this worker cannot (said; it tries again
 * at the next recheck), -1 if the statement failed.
 */
static int
fire(struct worker *w, PGresult *res, int i, int64_t db_now)
{
	const char *name = PQgetvalue(res, i, S_NAME);
	struct pgjq_slots sl;
	int64_t slots[PGJQ_SCHEDULE_BURST], due = strtoll(PQgetvalue(res, i, S_NEXT), NULL, 10), next;
	char why[256], due_s[32], next_s[32];
	struct pgjq_buf arr = {0};
	const char *params[4];
	PGresult *f;
	int n;

	if (pgjq_schedule_slots(PQgetisnull(res, i, S_CRON) ? NULL : PQgetvalue(res, i, S_CRON),
	    strtoll(PQgetvalue(res, i, S_EVERY), NULL, 10), PQgetvalue(res, i, S_TZ), &sl, why,
	    sizeof why) != 0) {
		pgjq_warn("schedule '%s': cannot fire it here: %s", name, why);
		return 0;
	}
	n = pgjq_schedule_plan(&sl, (enum pgjq_catch_up)pgjq_catch_up_parse(
	    PQgetvalue(res, i, S_CATCH_UP)), due, db_now, slots, &next);
	if (n < 0) {
		/* Its last slot came: it fires once more, and then next_at stays put for ever after. */
		pgjq_warn("schedule '%s': no slot within ten years", name);
		return 0;
	}
	pgjq_buf_putc(&arr, '{');
	for (int k = 0; k < n; k++)
		pgjq_buf_printf(&arr, "%s%" PRId64, k > 0 ? "," : "", slots[k]);
	pgjq_buf_append(&arr, "}", 2);
	snprintf(due_s, sizeof due_s, "%" PRId64, due);
	snprintf(next_s, sizeof next_s, "%" PRId64, next);
	params[0] = name;
	params[1] = due_s;
	params[2] = arr.data;
	params[3] = next_s;
	f = wk_db_exec(w, "cannot fire a schedule", pgjq_sql(fire_sql), 4, params);
	pgjq_buf_free(&arr);
	if (f == NULL)
		return -1;
	for (int k = 0; k < PQntuples(f); k++)
		wk_event(w, "scheduled", NULL, strtoll(PQgetvalue(f, k, 0), NULL, 10),
		    "schedule %s, slot %s", name, PQgetvalue(f, k, 1));
	PQclear(f);
	return 1;
}

/*
 * Reads our queues' schedules, fires the due ones; false if it has to be
 * done again.  cannot collects "\tNAME\t" of the due ones this worker
 * cannot fire, left to the next recheck rather than tried again at once.
 */
static bool
load_and_fire(struct worker *w, int64_t now, bool may_fire, struct pgjq_buf *cannot)
{
	struct wk_sched *sc = w->sched;
	const char *params[1] = {w->queues};
	PGresult *res = wk_db_exec(w, "cannot read the schedules", pgjq_sql(load_sql), 1, params);
	int64_t db_now, soonest = 0;
	bool fired = false;

	if (res == NULL)
		return true; /* the connection's loss, or the error, is said: try at the next recheck */
	forget_queues(sc);
	sc->queues = pgjq_xcalloc((size_t)PQntuples(res) + 1, sizeof *sc->queues);
	for (int i = 0; i < PQntuples(res); i++) {
		const char *q = PQgetvalue(res, i, S_QUEUE);
		int64_t next = strtoll(PQgetvalue(res, i, S_NEXT), NULL, 10);
		bool known = false;

		for (size_t k = 0; k < sc->nqueues; k++)
			known |= strcmp(sc->queues[k], q) == 0;
		if (!known)
			sc->queues[sc->nqueues++] = pgjq_xstrdup(q);
		if (strcmp(PQgetvalue(res, i, S_PAUSED), "t") == 0)
			continue;
		db_now = strtoll(PQgetvalue(res, i, S_NOW), NULL, 10);
		if (next <= db_now && may_fire) {
			int done = fire(w, res, i, db_now);

			if (done < 0)
				break;
			if (done == 0)
				pgjq_buf_printf(cannot, "\t%s\t", PQgetvalue(res, i, S_NAME));
			fired |= done > 0;
			continue;
		}
		if (next <= db_now && cannot->len > 0) {
			char *tab = pgjq_xasprintf("\t%s\t", PQgetvalue(res, i, S_NAME));
			bool skip = strstr(cannot->data, tab) != NULL;

			free(tab);
			if (skip)
				continue;
		}
		if (soonest == 0 || next - db_now < soonest)
			soonest = next - db_now > 0 ? next - db_now : 1;
	}
	PQclear(res);
	sc->due = soonest != 0 ? now + soonest : 0;
	/* Read after the schedules, so that nothing fired before their next_at is missed. */
	sc->read_at = 0;
	if (!fired && sc->nqueues > 0 && read_pending(w))
		sc->read_at = now;
	return !fired;
}

void
wk_schedule_tick(struct worker *w, int64_t now)
{
	struct wk_sched *sc = w->sched;
	int64_t due = wk_schedule_due(w);
	struct pgjq_buf cannot = {0};

	if (w->conn == NULL || w->turn.busy || w->id == 0 || due == 0 || now < due)
		return;
	sc->reload = false;
	sc->recheck = now + (w->polling && w->o->poll_us < RECHECK_US ? w->o->poll_us : RECHECK_US);
	/* What was fired is read back once, to learn the next slots (ours or another worker's). */
	if (!load_and_fire(w, now, true, &cannot) && w->conn != NULL)
		load_and_fire(w, now, false, &cannot);
	pgjq_buf_free(&cannot);
}

/* --------------------------------------------- the jobs' schedules */

static bool
held(const struct worker *w, int64_t id)
{
	for (size_t i = 0; i < w->nahead; i++)
		if (w->ahead[i].id == id)
			return true;
	for (int i = 0; i < w->o->concurrency; i++)
		if (w->slots[i].busy && w->slots[i].id == id)
			return true;
	for (int i = 0; w->pipes != NULL && i < w->o->concurrency; i++)
		for (int k = 0; k < w->pipes[i].nqueued; k++)
			if (w->pipes[i].queued[k].id == id)
				return true;
	return false;
}

static struct sched_job *
find(const struct wk_sched *sc, int64_t id)
{
	for (size_t i = 0; i < sc->njobs; i++)
		if (sc->jobs[i].id == id)
			return &sc->jobs[i];
	return NULL;
}

static const struct sched_job *
find_pending(const struct wk_sched *sc, int64_t id)
{
	for (size_t i = 0; i < sc->npending; i++)
		if (sc->pending[i].id == id)
			return &sc->pending[i];
	return NULL;
}

/*
 * Whether the jobs read last are all the schedules' jobs there are: read
 * since the last notice, and no slot due since (with a margin for another
 * worker's clock).  A schedule run by hand sends a notice too.
 */
static bool
pending_complete(const struct wk_sched *sc, int64_t now)
{
	return sc->read_at != 0 && !sc->reload && (sc->due == 0 || now < sc->due - SLOT_MARGIN_US);
}

static bool
queue_has_schedules(const struct wk_sched *sc, const char *queue)
{
	for (size_t i = 0; i < sc->nqueues; i++)
		if (strcmp(sc->queues[i], queue) == 0)
			return true;
	return false;
}

void
wk_schedule_resolve(struct worker *w)
{
	struct wk_sched *sc = w->sched;
	int64_t *ids;
	size_t n = 0, kept = 0;
	char *array;
	const char *params[1];
	PGresult *res;

	int64_t now = pgjq_now_us();
	bool complete = pending_complete(sc, now);
	size_t need = 0;

	if (sc->nqueues == 0 || w->conn == NULL || w->turn.busy)
		return;
	ids = pgjq_xcalloc(w->nahead + 1, sizeof *ids);
	for (size_t i = 0; i < w->nahead; i++)
		if (find(sc, w->ahead[i].id) == NULL && queue_has_schedules(sc, w->ahead[i].queue))
			ids[n++] = w->ahead[i].id;
	if (n == 0) {
		free(ids);
		return;
	}
	/* What we no longer hold is forgotten first: the list stays as short as the local queue. */
	for (size_t i = 0; i < sc->njobs; i++) {
		if (held(w, sc->jobs[i].id)) {
			sc->jobs[kept++] = sc->jobs[i];
		} else {
			free(sc->jobs[i].name);
			free(sc->jobs[i].slot);
		}
	}
	sc->njobs = kept;
	sc->jobs = pgjq_xgrow(sc->jobs, &sc->jobs_cap, sc->njobs + n, sizeof *sc->jobs);
	for (size_t i = 0; i < n; i++) {
		const struct sched_job *p = find_pending(sc, ids[i]);

		sc->jobs[sc->njobs++] = (struct sched_job){.id = ids[i],
		    .name = p != NULL ? pgjq_xstrdup(p->name) : NULL,
		    .slot = p != NULL ? pgjq_xstrdup(p->slot) : NULL};
		/* Not among the schedules' jobs, and none can have been fired since: no lookup. */
		if (p == NULL && !complete)
			ids[need++] = ids[i];
	}
	if (need == 0) {
		free(ids);
		return;
	}
	n = need;
	array = pgjq_id_array(ids, n);
	params[0] = array;
	res = wk_db_exec(w, "cannot read the jobs' schedules",
	    pgjq_sql("SELECT j.id, j.key FROM {S}.jobs j"
	             " WHERE j.id = ANY ($1::bigint[]) AND j.key LIKE 'schedule/%/%'"), 1, params);
	free(array);
	free(ids);
	if (res == NULL)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		struct sched_job *j = find(sc, strtoll(PQgetvalue(res, i, 0), NULL, 10));
		const char *key = PQgetvalue(res, i, 1) + strlen("schedule/");
		const char *slash = strrchr(key, '/');

		if (j == NULL || slash == NULL || j->name != NULL)
			continue;
		j->name = pgjq_xasprintf("%.*s", (int)(slash - key), key);
		j->slot = pgjq_xstrdup(slash + 1);
	}
	PQclear(res);
}

bool
wk_schedule_known(const struct worker *w, int64_t id, const char *queue)
{
	return !queue_has_schedules(w->sched, queue) || find(w->sched, id) != NULL;
}

const char *
wk_schedule_of(const struct worker *w, int64_t id, const char **slot)
{
	const struct sched_job *j = find(w->sched, id);

	*slot = j != NULL ? j->slot : NULL;
	return j != NULL ? j->name : NULL;
}
