/*
 * stats: the figures of jq-stats: read from the schema's functions
 * stats_queues(), stats_database() (sql/005-stats.sql) and, for
 * Prometheus, counters() (sql/014-counters.sql), and written
 * as a table for people, JSON lines, or Prometheus text, once or over
 * and over (--watch) through restarts of the server.
 */
#ifndef PGJQ_STATS_H
#define PGJQ_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "job.h"
#include "xalloc.h"

/* The windows of the recent figures, in minutes. */
#define PGJQ_STATS_NWINDOWS 3
extern const int pgjq_stats_windows[PGJQ_STATS_NWINDOWS];

/* The run time percentiles, as fractions. */
#define PGJQ_STATS_NQUANTILES 3
extern const double pgjq_stats_quantiles[PGJQ_STATS_NQUANTILES];

/* One queue's figures.  A NaN means "none": there was no job to tell by. */
struct pgjq_queue_stats {
	char *queue;                                /* owned */
	int64_t jobs[PGJQ_NSTATES];                 /* by enum pgjq_state */
	double oldest_queued;                       /* seconds the oldest queued job has been ready */
	int64_t completed[PGJQ_STATS_NWINDOWS];     /* jobs completed in each window */
	int64_t failed[PGJQ_STATS_NWINDOWS];        /* jobs failed in each window */
	double run[PGJQ_STATS_NQUANTILES];          /* run time percentiles, seconds, last 15 min */
	int64_t workers;                            /* live workers serving the queue */
	int64_t slots;                              /* jobs they may run at once */
	bool paused;                                /* jq-queue pause */
	int64_t limit;                              /* jq-queue limit; 0: none */
};

/*
 * One counter of counters() (sql/014-counters.sql): totals since the
 * schema was made, per queue, that only grow.  le is the bound of a
 * 'run_bucket' row, NaN for the others.
 */
struct pgjq_counter {
	char *queue;                  /* owned; NULL: a bound of the histogram, no count */
	char *name;                   /* owned: 'enqueued', 'completed', 'run_seconds'... */
	double le;
	double n;
};

/* One reading of the whole schema. */
struct pgjq_stats {
	char at[64];                  /* the server's clock, ISO 8601 */
	double at_epoch;              /* the same, Unix time */
	struct pgjq_queue_stats *queues;
	size_t nqueues;
	int64_t workers, slots;       /* live workers of the queues shown, each once */
	int64_t live_tuples[2];       /* jobs, history: from the statistics collector */
	int64_t dead_tuples[2];
	struct pgjq_schedule_stats {  /* the schedules of the queues shown, by name */
		char *name;               /* owned */
		double last_success;      /* Unix time its job last completed; 0: never */
	} *schedules;
	size_t nschedules;
	struct pgjq_counter *counters; /* read for --prometheus only */
	size_t ncounters;
};

/* The tables of the tuple counts, in that order. */
extern const char *const pgjq_stats_tables[2];

/* The statements: $1 is a text[] of queue names, or NULL for every queue. */
extern const char pgjq_stats_queues_sql[];
extern const char pgjq_stats_database_sql[];
extern const char pgjq_stats_schedules_sql[];
/* Each queue's settings (jq-queue): name, paused, limit. */
extern const char pgjq_stats_flow_sql[];

/* Fills s from the results of the two statements; the caller frees it. */
void pgjq_stats_read(struct pgjq_stats *s, const PGresult *queues, const PGresult *database);
void pgjq_stats_free(struct pgjq_stats *s);
/* Fills s's schedules from the result of pgjq_stats_schedules_sql. */
void pgjq_stats_read_schedules(struct pgjq_stats *s, const PGresult *schedules);

/* Adds the queues' settings, rows of pgjq_stats_flow_sql, to the queues of s. */
void pgjq_stats_read_flow(struct pgjq_stats *s, const PGresult *flow);

/* The counters: $1 as above; rows in the order pgjq_stats_read_counters() takes. */
extern const char pgjq_stats_counters_sql[];
void pgjq_stats_read_counters(struct pgjq_stats *s, const PGresult *res);

/* Failed over completed and failed jobs in the last window; NaN if none finished. */
double pgjq_stats_failure_rate(const struct pgjq_queue_stats *q);

/* The figures as two aligned tables and two summary lines, for people. */
void pgjq_stats_table(struct pgjq_buf *b, const struct pgjq_stats *s);

/* One JSON object per queue, then one for the schema, a line each. */
void pgjq_stats_json(struct pgjq_buf *b, const struct pgjq_stats *s);

/* The Prometheus text exposition format, version 0.0.4. */
void pgjq_stats_prometheus(struct pgjq_buf *b, const struct pgjq_stats *s);

/* Appends s as a Prometheus label value: \, " and newline escaped. */
void pgjq_stats_prom_label(struct pgjq_buf *b, const char *s);

enum pgjq_stats_format { PGJQ_STATS_TABLE, PGJQ_STATS_JSON, PGJQ_STATS_PROMETHEUS };

struct pgjq_stats_opts {
	const char *conninfo;         /* NULL: libpq's defaults */
	const char *schema;
	const char *const *queues;    /* the queues to show; none: every queue */
	size_t nqueues;
	enum pgjq_stats_format format;
	int64_t watch_us;             /* > 0: read again every so often, until a signal */
};

/*
 * Reads and prints the figures, once or, with watch_us, until SIGINT,
 * SIGTERM or SIGHUP.  Returns the exit status (0); dies with 69 if the
 * database cannot be used at the start.
 */
int pgjq_stats(const struct pgjq_stats_opts *o);

#endif
