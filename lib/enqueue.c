#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "db.h"
#include "diag.h"
#include "duration.h"
#include "enqueue.h"
#include "envelope.h"
#include "job.h"
#include "jsonstream.h"
#include "xalloc.h"

/* The parameters of enqueue_job(), in order. */
enum { P_PAYLOAD, P_QUEUE, P_PRIORITY, P_DELAY, P_AT, P_MAX_ATTEMPTS, P_TIMEOUT, P_KEY, P_AFTER, P_GROUP,
	NPARAMS };

/* A value read but not yet sent. */
struct pending {
	long line;
	char *queue;            /* owned; NULL means opts->queue */
	enum pgjq_timing timing;
	int64_t when_us;        /* the delay or the time, per timing */
	size_t off, len;        /* fast path: its COPY columns in rowtext */
	char **params;          /* slow path: enqueue_job()'s arguments, owned */
};

/* A value sent in the open transaction, printed once it commits. */
struct sent {
	int64_t id;
	long line;
	char *queue;            /* owned; NULL means opts->queue */
	enum pgjq_state state;
	bool is_new;
};

struct pgjq_enqueuer {
	PGconn *conn;
	struct pgjq_enqueue_opts opts;
	enum pgjq_source source;
	FILE *out;
	int64_t at_us;          /* opts.at, resolved by the server */
	char *after_text;       /* opts.after as an array literal, or NULL */
	long chunk;             /* values per round of COPY */

	struct pending *pending;
	size_t npending, pending_cap;
	struct pgjq_buf rowtext;  /* COPY columns of the pending fast rows */

	struct sent *sent;
	size_t nsent, sent_cap;
	bool in_txn;
	bool copy_commits;      /* no BEGIN: the pending COPY is the transaction */
	bool have_now;
	int64_t now_us;         /* now() of the open transaction */
	char *seq;              /* the job id sequence's qualified name */
	long committed;         /* values committed so far */
	long last_line;         /* of the last value added */
	bool copy_pending;      /* a COPY was ended but its result not yet read */
	size_t copy_first;      /* its first row's index in sent */
	size_t copy_rows;
	bool failed;
	struct pgjq_buf copybuf;
};

static const char copy_plain[] =
    "COPY {S}.jobs (id, queue, priority, max_attempts, timeout, payload) FROM STDIN";
static const char copy_timed[] =
    "COPY {S}.jobs (id, state, run_at, queue, priority, max_attempts, timeout, payload) FROM STDIN";
static const char enqueue_sql[] =
    "SELECT id, state, is_new FROM {S}.enqueue_job($1::jsonb, $2, $3::integer, $4::interval, "
    "$5::timestamptz, $6::integer, $7::interval, $8, $9::bigint[])";
/* With a group: a function of its own, so that producers need no new right for the rest. */
static const char enqueue_grouped_sql[] =
    "SELECT id, state, is_new FROM {S}.enqueue_grouped($1::jsonb, $2, $3::integer, $4::interval, "
    "$5::timestamptz, $6::integer, $7::interval, $8, $9::bigint[], $10)";

static void
place(const struct pgjq_enqueuer *e, long line, char *buf, size_t size)
{
	if (e->source == PGJQ_SOURCE_ARGS)
		snprintf(buf, size, "arg %ld", line);
	else
		snprintf(buf, size, "stdin:%ld", line);
}

/* The first value whose fate is still open: not committed, so not enqueued. */
static long
first_uncommitted_line(const struct pgjq_enqueuer *e, long failing_line)
{
	if (e->nsent > 0)
		return e->sent[0].line;
	if (e->npending > 0)
		return e->pending[0].line;
	return failing_line;
}

static bool print_sent(struct pgjq_enqueuer *e);
static int write_failed(struct pgjq_enqueuer *e, long printed, long upto);

/* The server may have committed before the connection broke: say so. */
static int
lost_while_committing(struct pgjq_enqueuer *e, PGresult *res)
{
	char where[64];

	place(e, first_uncommitted_line(e, 0), where, sizeof where);
	pgjq_warn("%s: lost the connection while committing: the values from here on "
	    "may or may not have been enqueued: %s", where, pgjq_failure_message(e->conn, res));
	PQclear(res);
	e->failed = true;
	return PGJQ_EX_TEMPFAIL;
}

/*
 * A batch whose COPY commits on its own and whose answer is still on its
 * way: read it, so that a failure reported now counts (and prints) that
 * batch if it is in.  False if the connection broke before the answer:
 * whether it is in cannot be known, and that has been said.
 */
static bool
settle_own_copy(struct pgjq_enqueuer *e)
{
	PGresult *res;
	bool in;

	if (!e->copy_commits || !e->copy_pending)
		return true;
	e->copy_pending = e->copy_commits = false;
	res = PQgetResult(e->conn);
	in = pgjq_ok(res);
	if (!in && PQstatus(e->conn) == CONNECTION_BAD) {
		lost_while_committing(e, res);
		return false;
	}
	if (!in) {
		char where[64];

		place(e, first_uncommitted_line(e, 0), where, sizeof where);
		pgjq_warn("%s: and the batch from here on was refused: %s", where,
		    pgjq_failure_message(e->conn, res));
	}
	PQclear(res);
	while ((res = PQgetResult(e->conn)) != NULL)
		PQclear(res);
	if (in) {
		long n = (long)e->nsent, upto = n > 0 ? e->sent[n - 1].line : e->last_line;

		e->committed += n;
		if (!print_sent(e))
			write_failed(e, n, upto);
	}
	return true;
}

static int
vfail(struct pgjq_enqueuer *e, int status, long line, const char *fmt, va_list ap)
{
	char where[64], msg[2048];

	vsnprintf(msg, sizeof msg, fmt, ap);
	if (line > 0) {
		place(e, line, where, sizeof where);
		pgjq_warn("%s: %s", where, msg);
	} else {
		pgjq_warn("%s", msg);
	}
	if (!settle_own_copy(e))
		return status;
	if (e->committed > 0) {
		place(e, first_uncommitted_line(e, line), where, sizeof where);
		pgjq_warn("%s: %ld values before this line were enqueued; nothing from here on was",
		    where, e->committed);
	} else if (!e->failed) {
		pgjq_warn("nothing was enqueued");
	}
	e->failed = true;
	return status;
}

int
pgjq_enqueuer_fail(struct pgjq_enqueuer *e, int status, long line, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vfail(e, status, line, fmt, ap);
	va_end(ap);
	return r;
}

static int
db_fail(struct pgjq_enqueuer *e, PGresult *res, long line, const char *what)
{
	int status = pgjq_failure_status(e->conn, res);
	char msg[1024];

	snprintf(msg, sizeof msg, "%s", pgjq_failure_message(e->conn, res));
	PQclear(res);
	if (status == PGJQ_EX_TEMPFAIL && PQstatus(e->conn) == CONNECTION_BAD)
		return pgjq_enqueuer_fail(e, status, line, "%s: lost the connection to the database: %s",
		    what, msg);
	return pgjq_enqueuer_fail(e, status, line, "%s: %s", what, msg);
}

struct pgjq_enqueuer *
pgjq_enqueuer_new(PGconn *conn, const struct pgjq_enqueue_opts *opts,
    enum pgjq_source source, FILE *out, int *status)
{
	struct pgjq_enqueuer *e = pgjq_xcalloc(1, sizeof *e);

	e->conn = conn;
	e->seq = pgjq_xasprintf("%s.job_id_seq", pgjq_sql_schema_ident());
	e->opts = *opts;
	e->source = source;
	e->out = out;
	e->chunk = opts->batch > 0 ? opts->batch : PGJQ_ENQUEUE_CHUNK;
	if (e->chunk > PGJQ_ENQUEUE_CHUNK)
		e->chunk = PGJQ_ENQUEUE_CHUNK;
	if (opts->n_after > 0)
		e->after_text = pgjq_id_array(opts->after, opts->n_after);
	if (opts->at != NULL) {
		/* The server reads the time, so anything timestamptz accepts works. */
		const char *params[] = {opts->at};
		PGresult *res = pgjq_exec(conn,
		    "SELECT (extract(epoch FROM $1::timestamptz) * 1000000)::int8", 1, params);

		if (!pgjq_ok(res)) {
			pgjq_warn("--at: invalid time '%s': %s", opts->at,
			    pgjq_failure_message(conn, res));
			*status = PQstatus(conn) == CONNECTION_BAD ? PGJQ_EX_TEMPFAIL : PGJQ_EX_USAGE;
			PQclear(res);
			pgjq_enqueuer_free(e);
			return NULL;
		}
		e->at_us = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	return e;
}

void
pgjq_copy_escape(struct pgjq_buf *b, const char *s, size_t len)
{
	size_t start = 0;

	pgjq_buf_reserve(b, len);
	for (size_t i = 0; i < len; i++) {
		const char *esc;

		switch (s[i]) {
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default: continue;
		}
		pgjq_buf_append(b, s + start, i - start);
		pgjq_buf_append(b, esc, 2);
		start = i + 1;
	}
	pgjq_buf_append(b, s + start, len - start);
}

static char *
dupn(const char *s, size_t n)
{
	char *p = pgjq_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static int flush(struct pgjq_enqueuer *e, bool last);
static int commit(struct pgjq_enqueuer *e);

int
pgjq_enqueuer_add(struct pgjq_enqueuer *e, const char *text, size_t len, long line)
{
	struct pgjq_jobspec j = {0};
	struct pending *p;
	int status;

	if (e->failed)
		return PGJQ_EX_SOFTWARE;

	e->last_line = line;
	j.queue = e->opts.queue;
	j.priority = e->opts.priority;
	j.max_attempts = e->opts.max_attempts;
	j.has_timeout = e->opts.has_timeout;
	j.timeout_us = e->opts.timeout_us;
	j.key = e->opts.key;
	j.group = e->opts.group;
	j.after_text = e->after_text ? pgjq_xstrdup(e->after_text) : NULL;
	if (e->opts.has_delay) {
		j.timing = PGJQ_TIME_DELAY;
		j.when_us = e->opts.delay_us;
	} else if (e->opts.at != NULL) {
		j.timing = PGJQ_TIME_AT;
		j.when_us = e->at_us;
	}

	if (e->opts.envelope) {
		struct pgjq_envelope_error err;

		status = pgjq_envelope_read(text, len, line, &j, &err);
		if (status != 0) {
			pgjq_jobspec_release(&j);
			return pgjq_enqueuer_fail(e, status, err.line, "%s", err.msg);
		}
		/* An envelope's own time overrides the run's delay or time. */
		if (j.at != NULL)
			j.timing = PGJQ_TIME_NOW;
	} else {
		char why[256];
		long errline;
		json_t *v;

		/* Only a check: the text itself is what gets stored. */
		v = pgjq_json_parse(text, len, JSON_DECODE_INT_AS_REAL, line, why, sizeof why, &errline);
		if (v == NULL) {
			pgjq_jobspec_release(&j);
			return pgjq_enqueuer_fail(e, PGJQ_EX_DATAERR, errline, "invalid JSON: %s", why);
		}
		json_decref(v);
		j.payload = text;
		j.payload_len = len;
	}
	if (j.payload_len > PGJQ_PAYLOAD_MAX) {
		pgjq_jobspec_release(&j);
		return pgjq_enqueuer_fail(e, PGJQ_EX_DATAERR, line,
		    "payload too large (%zu bytes, the limit is %d)", j.payload_len, PGJQ_PAYLOAD_MAX);
	}

	e->pending = pgjq_xgrow(e->pending, &e->pending_cap, e->npending + 1, sizeof *e->pending);
	p = &e->pending[e->npending++];
	memset(p, 0, sizeof *p);
	p->line = line;
	p->queue = j.queue != e->opts.queue ? pgjq_xstrdup(j.queue) : NULL;
	p->timing = j.timing;
	p->when_us = j.when_us;

	if (j.key != NULL || j.after_text != NULL || j.at != NULL || j.group != NULL) {
		/* Slow path: the database decides uniqueness, dependencies and times. */
		char num[32], interval[64];

		p->params = pgjq_xcalloc(NPARAMS, sizeof *p->params);
		p->params[P_PAYLOAD] = dupn(j.payload, j.payload_len);
		p->params[P_QUEUE] = pgjq_xstrdup(j.queue);
		snprintf(num, sizeof num, "%d", j.priority);
		p->params[P_PRIORITY] = pgjq_xstrdup(num);
		if (j.timing == PGJQ_TIME_DELAY) {
			pgjq_format_interval(j.when_us, interval, sizeof interval);
			p->params[P_DELAY] = pgjq_xstrdup(interval);
		}
		if (j.at != NULL)
			p->params[P_AT] = pgjq_xstrdup(j.at);
		else if (j.timing == PGJQ_TIME_AT)
			p->params[P_AT] = pgjq_xstrdup(e->opts.at);
		snprintf(num, sizeof num, "%d", j.max_attempts);
		p->params[P_MAX_ATTEMPTS] = pgjq_xstrdup(num);
		if (j.has_timeout) {
			pgjq_format_interval(j.timeout_us, interval, sizeof interval);
			p->params[P_TIMEOUT] = pgjq_xstrdup(interval);
		}
		if (j.key != NULL)
			p->params[P_KEY] = pgjq_xstrdup(j.key);
		if (j.after_text != NULL)
			p->params[P_AFTER] = pgjq_xstrdup(j.after_text);
		if (j.group != NULL)
			p->params[P_GROUP] = pgjq_xstrdup(j.group);
	} else {
		/* Fast path: the columns after id (and state, run_at) for COPY. */
		char interval[64];

		p->off = e->rowtext.len;
		pgjq_buf_printf(&e->rowtext, "%s\t%d\t%d\t", j.queue, j.priority, j.max_attempts);
		if (j.has_timeout) {
			pgjq_format_interval(j.timeout_us, interval, sizeof interval);
			pgjq_buf_printf(&e->rowtext, "%s\t", interval);
		} else {
			pgjq_buf_append(&e->rowtext, "\\N\t", 3);
		}
		pgjq_copy_escape(&e->rowtext, j.payload, j.payload_len);
		pgjq_buf_putc(&e->rowtext, '\n');
		p->len = e->rowtext.len - p->off;
	}
	pgjq_jobspec_release(&j);

	if ((long)e->npending >= e->chunk) {
		if ((status = flush(e, e->opts.batch > 0)) != 0)
			return status;
		if (e->opts.batch > 0 && !e->copy_commits && (status = commit(e)) != 0)
			return status;
	}
	return 0;
}

static int
simple(struct pgjq_enqueuer *e, const char *sql, long line, const char *what)
{
	PGresult *res = pgjq_exec(e->conn, sql, 0, NULL);

	if (!pgjq_ok(res))
		return db_fail(e, res, line, what);
	PQclear(res);
	return 0;
}

static void
format_timestamp(int64_t us, char *buf, size_t size)
{
	int64_t secs = us / 1000000, frac = us % 1000000;
	time_t t;
	struct tm tm;

	if (frac < 0) {
		frac += 1000000;
		secs--;
	}
	t = (time_t)secs;
	gmtime_r(&t, &tm);
	snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d.%06" PRId64 "+00",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static int
send_copy(struct pgjq_enqueuer *e, bool final)
{
	if (e->copybuf.len == 0 || (!final && e->copybuf.len < 256 * 1024))
		return 0;
	if (PQputCopyData(e->conn, e->copybuf.data, (int)e->copybuf.len) != 1)
		return -1;
	pgjq_buf_reset(&e->copybuf);
	return 0;
}

/* Sends the pending fast rows with COPY; ids are taken first to keep input order. */
static int
copy_fast_rows(struct pgjq_enqueuer *e, size_t nfast, bool timed)
{
	char count[32], when[64];
	const char *params[] = {count, e->seq};
	PGresult *res;
	size_t row = 0;
	int64_t cached_at = INT64_MIN;

	snprintf(count, sizeof count, "%zu", nfast);
	/* The sequence is named as a value: it is a regclass there, not SQL text. */
	res = pgjq_exec(e->conn,
	    "SELECT pg_catalog.nextval($2::regclass) FROM pg_catalog.generate_series(1, $1::int)",
	    2, params);
	if (!pgjq_ok(res))
		return db_fail(e, res, e->pending[0].line, "cannot allocate job ids");
	for (size_t i = 0; i < e->npending; i++) {
		struct pending *p = &e->pending[i];
		struct sent *s;

		if (p->params != NULL)
			continue;
		e->sent = pgjq_xgrow(e->sent, &e->sent_cap, e->nsent + 1, sizeof *e->sent);
		s = &e->sent[e->nsent++];
		s->id = strtoll(PQgetvalue(res, (int)row++, 0), NULL, 10);
		s->line = p->line;
		s->queue = p->queue;
		p->queue = NULL;
		s->state = PGJQ_QUEUED;
		s->is_new = true;
	}
	PQclear(res);

	res = pgjq_exec(e->conn, pgjq_sql(timed ? copy_timed : copy_plain), 0, NULL);
	if (PQresultStatus(res) != PGRES_COPY_IN)
		return db_fail(e, res, e->pending[0].line, "cannot start COPY");
	PQclear(res);

	row = e->nsent - nfast;
	for (size_t i = 0; i < e->npending; i++) {
		struct pending *p = &e->pending[i];
		struct sent *s;

		if (p->params != NULL)
			continue;
		s = &e->sent[row++];
		pgjq_buf_printf(&e->copybuf, "%" PRId64 "\t", s->id);
		if (timed) {
			int64_t at = p->timing == PGJQ_TIME_AT ? p->when_us :
			    e->now_us + (p->timing == PGJQ_TIME_DELAY ? p->when_us : 0);

			/* Most runs share one time: format it once. */
			if (at != cached_at) {
				format_timestamp(at, when, sizeof when);
				cached_at = at;
			}
			s->state = at > e->now_us ? PGJQ_SCHEDULED : PGJQ_QUEUED;
			pgjq_buf_printf(&e->copybuf, "%s\t%s\t", pgjq_state_name(s->state), when);
		}
		pgjq_buf_append(&e->copybuf, e->rowtext.data + p->off, p->len);
		if (send_copy(e, false) != 0)
			break;
	}
	if (send_copy(e, true) != 0 || PQputCopyEnd(e->conn, NULL) != 1) {
		res = PQgetResult(e->conn);
		return db_fail(e, res, e->pending[0].line, "COPY failed");
	}
	/*
	 * The server is still inserting; its answer is read by collect_copy()
	 * once the next values have been parsed, so both sides work at once.
	 */
	e->copy_pending = true;
	e->copy_first = e->nsent - nfast;
	e->copy_rows = nfast;
	return 0;
}

/* Reads the outcome of the COPY sent last, if it is still outstanding. */
static int
collect_copy(struct pgjq_enqueuer *e)
{
	PGresult *res;

	if (!e->copy_pending)
		return 0;
	e->copy_pending = false;
	res = PQgetResult(e->conn);
	if (!pgjq_ok(res) && e->copy_commits && PQstatus(e->conn) == CONNECTION_BAD)
		return lost_while_committing(e, res);
	if (!pgjq_ok(res)) {
		/* COPY's context says "line N": the Nth row of that COPY. */
		const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
		const char *at = ctx ? strstr(ctx, "line ") : NULL;
		long copy_line = at ? strtol(at + 5, NULL, 10) : 0;
		long line = e->sent[e->copy_first].line;

		if (copy_line > 0 && (size_t)copy_line <= e->copy_rows)
			line = e->sent[e->copy_first + (size_t)copy_line - 1].line;
		while (PQgetResult(e->conn) != NULL)
			;
		return db_fail(e, res, line, "cannot enqueue");
	}
	PQclear(res);
	while ((res = PQgetResult(e->conn)) != NULL)
		PQclear(res);
	return 0;
}

static int
call_slow_rows(struct pgjq_enqueuer *e)
{
	for (size_t i = 0; i < e->npending; i++) {
		struct pending *p = &e->pending[i];
		struct sent *s;
		PGresult *res;

		if (p->params == NULL)
			continue;
		/*
		 * Unnamed, not prepared once by name: a named statement lives
		 * in one server session, which a pooler in transaction mode
		 * does not keep for us.
		 */
		res = p->params[P_GROUP] != NULL ?
		    pgjq_exec(e->conn, pgjq_sql(enqueue_grouped_sql), NPARAMS, (const char *const *)p->params) :
		    pgjq_exec(e->conn, pgjq_sql(enqueue_sql), NPARAMS - 1, (const char *const *)p->params);
		if (!pgjq_ok(res))
			return db_fail(e, res, p->line, "cannot enqueue");
		e->sent = pgjq_xgrow(e->sent, &e->sent_cap, e->nsent + 1, sizeof *e->sent);
		s = &e->sent[e->nsent++];
		s->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		/* A job in a worker's local queue ('claimed') is, to its producer, still queued. */
		s->state = strcmp(PQgetvalue(res, 0, 1), "claimed") == 0 ? PGJQ_QUEUED :
		    (enum pgjq_state)pgjq_state_parse(PQgetvalue(res, 0, 1));
		s->is_new = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
		s->line = p->line;
		s->queue = p->queue;
		p->queue = NULL;
		PQclear(res);
	}
	return 0;
}

static void
clear_pending(struct pgjq_enqueuer *e)
{
	for (size_t i = 0; i < e->npending; i++) {
		struct pending *p = &e->pending[i];

		free(p->queue);
		if (p->params != NULL) {
			for (int k = 0; k < NPARAMS; k++)
				free(p->params[k]);
			free(p->params);
		}
	}
	e->npending = 0;
	pgjq_buf_reset(&e->rowtext);
}

static int
sent_order(const void *a, const void *b)
{
	const struct sent *x = a, *y = b;

	return (x->line > y->line) - (x->line < y->line);
}

/*
 * Sends the pending values in the open transaction (opening it if needed).
 * last: the batch ends with them.  A batch that is one COPY of plain rows
 * needs no BEGIN and COMMIT, as the COPY is atomic on its own; and its
 * answer need not be awaited at once: it is read (and the batch's ids
 * printed) when the next batch is sent, or when the input pauses, so that
 * parsing the next batch and inserting this one overlap.
 */
static int
flush(struct pgjq_enqueuer *e, bool last)
{
	size_t nfast = 0, first_sent;
	bool timed = false;
	int status;

	/* The batch before, if it committed on its own, is settled first. */
	if ((status = e->copy_commits ? commit(e) : collect_copy(e)) != 0)
		return status;
	if (e->npending == 0)
		return 0;
	first_sent = e->nsent;
	for (size_t i = 0; i < e->npending; i++) {
		if (e->pending[i].params == NULL) {
			nfast++;
			timed |= e->pending[i].timing != PGJQ_TIME_NOW;
		}
	}
	if (!e->in_txn) {
		/*
		 * Not for a whole run: its ids are printed before its COMMIT, so
		 * that a failed write can still take every value back.
		 */
		if (last && e->opts.batch > 0 && nfast == e->npending && !timed) {
			e->copy_commits = true;
		} else {
			if ((status = simple(e, "BEGIN", e->pending[0].line, "cannot begin")) != 0)
				return status;
			e->in_txn = true;
		}
		e->have_now = false;
	}
	if (timed && !e->have_now) {
		PGresult *res = pgjq_exec(e->conn,
		    "SELECT (extract(epoch FROM pg_catalog.now()) * 1000000)::int8", 0, NULL);

		if (!pgjq_ok(res))
			return db_fail(e, res, e->pending[0].line, "cannot read the time");
		e->now_us = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		e->have_now = true;
		PQclear(res);
	}
	if (nfast > 0 && (status = copy_fast_rows(e, nfast, timed)) != 0)
		return status;
	/* Slow rows need the connection, and are sorted in with the fast ones below. */
	if (nfast < e->npending && (status = collect_copy(e)) != 0)
		return status;
	if ((status = call_slow_rows(e)) != 0)
		return status;
	/* Fast rows were recorded before slow ones; print in input order. */
	if (nfast > 0 && nfast < e->npending)
		qsort(e->sent + first_sent, e->nsent - first_sent, sizeof *e->sent, sent_order);
	clear_pending(e);
	return 0;
}

/* Prints the ids of the values sent; false if they could not all be written. */
static bool
print_sent(struct pgjq_enqueuer *e)
{
	for (size_t i = 0; i < e->nsent; i++) {
		struct sent *s = &e->sent[i];

		if (e->opts.json) {
			char where[64];
			json_t *o;

			place(e, s->line, where, sizeof where);
			o = json_pack("{s:I, s:s, s:s, s:b, s:s}",
			    "id", (json_int_t)s->id,
			    "queue", s->queue ? s->queue : e->opts.queue,
			    "state", pgjq_state_name(s->state),
			    "new", s->is_new,
			    "source", where);
			json_dumpf(o, e->out, JSON_COMPACT);
			fputc('\n', e->out);
			json_decref(o);
		} else {
			fprintf(e->out, "%" PRId64 "\n", s->id);
		}
		free(s->queue);
	}
	e->nsent = 0;
	return fflush(e->out) == 0 && !ferror(e->out);
}

/*
 * Says that stdout failed, and what that left.  A whole run is taken
 * back.  With --batch, every batch up to the value on line upto is in,
 * and the ids of the last (printed values) may not have been written.
 */
static int
write_failed(struct pgjq_enqueuer *e, long printed, long upto)
{
	int err = errno;

	if (e->failed)
		return PGJQ_EX_IOERR;
	e->failed = true;
	if (e->opts.batch == 0) {
		pgjq_warn("cannot write the job ids: %s: nothing was enqueued", strerror(err));
	} else {
		char where[64];

		place(e, upto, where, sizeof where);
		pgjq_warn("cannot write the job ids: %s: %ld values were enqueued, up to %s; "
		    "the ids of the last %ld of them may be missing from the output; "
		    "nothing after that line was", strerror(err), e->committed, where, printed);
	}
	return PGJQ_EX_IOERR;
}

/* The ids of the jobs the open transaction makes (not those a key found). */
static int64_t *
new_ids(const struct pgjq_enqueuer *e, size_t *n)
{
	int64_t *ids = pgjq_xcalloc(e->nsent + 1, sizeof *ids);

	*n = 0;
	for (size_t i = 0; i < e->nsent; i++)
		if (e->sent[i].is_new)
			ids[(*n)++] = e->sent[i].id;
	return ids;
}

/*
 * A whole run's ids are out, and the connection broke during its COMMIT:
 * whether it committed is asked on a new connection (the server may be
 * restarting: for some seconds), so that what is said of the printed ids
 * is true.  0 if the run is in.
 */
static int
settle_printed_run(struct pgjq_enqueuer *e, PGresult *res, const int64_t *ids, size_t n)
{
	PQconninfoOption *opts = PQconninfo(e->conn);
	const char **keys, **values;
	char *why = pgjq_xstrdup(pgjq_failure_message(e->conn, res));
	PGconn *conn = NULL;
	long found = -1;
	size_t k = 0, nopts = 0;

	PQclear(res);
	if (n == 0) {
		free(why);
		PQconninfoFree(opts);
		return 0; /* every id printed was a job already there */
	}
	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
		nopts++;
	keys = pgjq_xcalloc(nopts + 1, sizeof *keys);
	values = pgjq_xcalloc(nopts + 1, sizeof *values);
	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
		if (o->val != NULL && *o->val != '\0') {
			keys[k] = o->keyword;
			values[k++] = o->val;
		}
	}
	for (int attempt = 0; attempt < 40 && found < 0; attempt++) {
		struct timespec pause = {0, 250 * 1000 * 1000};

		conn = PQconnectdbParams(keys, values, 0);
		if (PQstatus(conn) == CONNECTION_OK) {
			char *array = pgjq_id_array(ids, n);
			const char *params[] = {array};
			PGresult *r = pgjq_exec(conn,
			    pgjq_sql("SELECT count(*) FROM {S}.all_jobs WHERE id = ANY ($1::bigint[])"),
			    1, params);

			if (pgjq_ok(r))
				found = strtol(PQgetvalue(r, 0, 0), NULL, 10);
			PQclear(r);
			free(array);
		}
		PQfinish(conn);
		if (found < 0)
			nanosleep(&pause, NULL);
	}
	free(keys);
	free(values);
	PQconninfoFree(opts);
	if (found == (long)n) {
		pgjq_warn("lost the connection while committing (%s), but the jobs are in: "
		    "every id printed is a job", why);
		free(why);
		return 0;
	}
	e->failed = true;
	if (found == 0)
		pgjq_warn("lost the connection while committing (%s), and the jobs are not in: "
		    "the %zu ids printed above were NOT enqueued", why, n);
	else
		pgjq_warn("lost the connection while committing (%s), and could not find out "
		    "whether the jobs are in: the ids printed may not be jobs (jq-status %" PRId64
		    " tells)", why, ids[0]);
	free(why);
	return PGJQ_EX_TEMPFAIL;
}

/*
 * Commits a whole run (no --batch).  Its ids are printed first: if they
 * cannot be written, closing the connection takes every value back.  If
 * the connection breaks during the COMMIT, whether the run is in is asked
 * on a new one, so that what is said of the printed ids is true.
 */
static int
commit_printed(struct pgjq_enqueuer *e)
{
	long n = (long)e->nsent;
	size_t nfresh;
	int64_t *fresh = new_ids(e, &nfresh);  /* print_sent forgets them */
	PGresult *res;
	int status = 0;

	if (!print_sent(e)) {
		status = write_failed(e, 0, 0);
	} else if (!pgjq_ok(res = pgjq_exec(e->conn, "COMMIT", 0, NULL))) {
		if (PQstatus(e->conn) == CONNECTION_BAD) {
			status = settle_printed_run(e, res, fresh, nfresh);
		} else {
			pgjq_warn("the ids printed were not enqueued");
			status = db_fail(e, res, first_uncommitted_line(e, 0), "cannot commit");
		}
	} else {
		PQclear(res);
	}
	free(fresh);
	if (status == 0) {
		e->in_txn = false;
		e->committed += n;
	}
	return status;
}

static int
commit(struct pgjq_enqueuer *e)
{
	long n = (long)e->nsent;
	PGresult *res;
	int status;

	if (e->copy_commits) {
		if ((status = collect_copy(e)) != 0)
			return status;
		e->copy_commits = false;
	} else {
		if (!e->in_txn)
			return 0;
		if ((status = collect_copy(e)) != 0)
			return status;
		if (e->opts.batch == 0)
			return commit_printed(e);
		res = pgjq_exec(e->conn, "COMMIT", 0, NULL);
		if (!pgjq_ok(res)) {
			if (PQstatus(e->conn) == CONNECTION_BAD)
				return lost_while_committing(e, res);
			return db_fail(e, res, first_uncommitted_line(e, 0), "cannot commit");
		}
		PQclear(res);
		e->in_txn = false;
	}
	e->committed += n;
	if (e->nsent > 0) {
		long upto = e->sent[e->nsent - 1].line;

		if (!print_sent(e))
			return write_failed(e, n, upto);
	}
	return 0;
}

int
pgjq_enqueuer_idle(struct pgjq_enqueuer *e)
{
	int status;

	if (e->failed || e->opts.batch == 0)
		return 0;
	if ((status = flush(e, true)) != 0)
		return status;
	return commit(e);
}

int
pgjq_enqueuer_finish(struct pgjq_enqueuer *e)
{
	int status;

	if (e->failed)
		return PGJQ_EX_SOFTWARE;
	if ((status = flush(e, true)) != 0)
		return status;
	return commit(e);
}

int
pgjq_enqueuer_interrupt(struct pgjq_enqueuer *e, int sig)
{
	int status = 128 + sig;
	const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
	char where[64];
	long first;

	if (e->failed)
		return status;
	/* A batch already committing on its own is in: its ids are printed. */
	if (!settle_own_copy(e))
		return status;
	e->failed = true;
	first = first_uncommitted_line(e, 0);
	if (first > 0) {
		/* Sent in a transaction not committed: closing the connection takes it back. */
		place(e, first, where, sizeof where);
		if (e->committed > 0)
			pgjq_warn("interrupted by %s: %ld values were enqueued; %s and what follows were not",
			    name, e->committed, where);
		else
			pgjq_warn("interrupted by %s: nothing was enqueued", name);
	} else if (e->last_line > 0) {
		place(e, e->last_line, where, sizeof where);
		pgjq_warn("interrupted by %s: %ld values were enqueued, up to %s; nothing after it was",
		    name, e->committed, where);
	} else {
		pgjq_warn("interrupted by %s: nothing was enqueued", name);
	}
	return status;
}

void
pgjq_enqueuer_free(struct pgjq_enqueuer *e)
{
	if (e == NULL)
		return;
	clear_pending(e);
	for (size_t i = 0; i < e->nsent; i++)
		free(e->sent[i].queue);
	free(e->pending);
	free(e->sent);
	free(e->after_text);
	free(e->seq);
	pgjq_buf_free(&e->rowtext);
	pgjq_buf_free(&e->copybuf);
	free(e);
}
