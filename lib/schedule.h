/*
 * schedule: recurring jobs as the database keeps them (sql/012), for
 * jq-schedule and for the workers that fire them.  What a schedule is,
 * which of its slots are due and how they are fired, and the channel on
 * which workers hear that schedules changed.
 */
#ifndef PGJQ_SCHEDULE_H
#define PGJQ_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "cron.h"

/* What to do with slots missed while no worker ran. */
enum pgjq_catch_up { PGJQ_CATCH_UP_NONE, PGJQ_CATCH_UP_LAST, PGJQ_CATCH_UP_ALL };

/* With --catch-up none, a slot seen later than this is a missed one. */
#define PGJQ_SCHEDULE_LATE_US (INT64_C(60) * 1000000)
/* With --catch-up all, at most this many slots are fired at once (the rest next). */
#define PGJQ_SCHEDULE_BURST 100

/* "none", "last", "all"; -1 if s is none of them. */
int pgjq_catch_up_parse(const char *s);
const char *pgjq_catch_up_name(enum pgjq_catch_up c);


/*
 * Which due slots to fire now: the schedule's next unfired slot is due_us
 * (at most now_us); slots (room for PGJQ_SCHEDULE_BURST) gets the ones
 * to fire, in order, and *next the next unfired slot afterwards.
 * Returns how many; -1 if the schedule has no slot after now.
 */
int pgjq_schedule_plan(const struct pgjq_slots *sl, enum pgjq_catch_up cu, int64_t due_us,
    int64_t now_us, int64_t *slots, int64_t *next);

/* A schedule as jq-schedule add makes it. */
struct pgjq_schedule_add {
	const char *name, *queue;
	const char *cron;        /* or NULL, then: */
	int64_t every_us;
	const char *tz;
	enum pgjq_catch_up catch_up;
	const char *payload;     /* JSON text */
	int priority, max_attempts;
	int64_t timeout_us;      /* 0: none */
};

/* jq-schedule's commands; each returns the exit status. */
int pgjq_schedule_add(PGconn *conn, const char *schema, const struct pgjq_schedule_add *a,
    bool json);
int pgjq_schedule_list(PGconn *conn, const char *queues, bool json);
/* rm, pause, resume or run, of each name. */
int pgjq_schedule_steer(PGconn *conn, const char *schema, const char *what,
    char *const *names, int n, bool json);
/* jq-schedule next: the next n slots after from_us (-1: now), touching nothing. */
int pgjq_schedule_next(const struct pgjq_slots *sl, int n, int64_t from_us, bool json);

/*
 * A schedule's slots from its row's text: cron (or NULL), every in
 * microseconds, zone.  -1 with why if the row cannot be understood (a
 * zone this host does not know).
 */
int pgjq_schedule_slots(const char *cron, int64_t every_us, const char *tz,
    struct pgjq_slots *sl, char *why, size_t size);

#endif
