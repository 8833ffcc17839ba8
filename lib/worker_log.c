/*
 * worker_log: the job logs, from a handler's line to the database.  Each
 * line a handler writes on stderr, each progress line, and an HTTP
 * server's error answer, is kept with its job, attempt, time and stream,
 * and goes to append_logs() pipelined in front of the next turn(), in
 * the same round trip and the same transaction: an attempt's lines are
 * never committed after its outcome, and a handler that writes nothing
 * costs nothing.  Lines are kept as the array literals they will be sent
 * as, so a line costs one copy and no allocation of its own.  Each
 * attempt's share is capped (--log-max), which bounds what the worker
 * holds whatever its handlers write, and whether or not the database is
 * there to take it.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diag.h"
#include "job.h"
#include "joblog.h"
#include "listen.h"
#include "worker_int.h"
#include "xalloc.h"

/*
 * The least a line counts against --log-max, its newline included: a
 * flood of empty lines would otherwise make a million rows of one
 * attempt.
 */
#define LINE_MIN_COST 16

/* Appends one element to an array literal (the first opens it), quoted. */
static void
lit_put(struct pgjq_buf *b, const char *v, size_t len)
{
	pgjq_buf_putc(b, b->len > 0 ? ',' : '{');
	pgjq_buf_reserve(b, len + 2);
	pgjq_buf_putc(b, '"');
	for (size_t i = 0; i < len; i++) {
		if (v[i] == '"' || v[i] == '\\')
			pgjq_buf_putc(b, '\\');
		pgjq_buf_putc(b, v[i]);
	}
	pgjq_buf_putc(b, '"');
}

static void
put(struct wk_logbatch *lb, int64_t id, int attempt, const char *stream, const char *text)
{
	char num[32], at[96];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(at, sizeof at, "%04d-%02d-%02d %02d:%02d:%02d.%06ld+00", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000) % 1000000);
	snprintf(num, sizeof num, "%" PRId64, id);
	lit_put(&lb->a[WK_LOG_IDS], num, strlen(num));
	snprintf(num, sizeof num, "%d", attempt);
	lit_put(&lb->a[WK_LOG_ATTEMPTS], num, strlen(num));
	lit_put(&lb->a[WK_LOG_ATS], at, strlen(at));
	lit_put(&lb->a[WK_LOG_STREAMS], stream, strlen(stream));
	lit_put(&lb->a[WK_LOG_LINES], text, strlen(text));
	lb->n++;
}

void
wk_log_line(struct worker *w, struct slot *s, const char *stream, const char *line)
{
	size_t len = strlen(line), cost = len + 1 < LINE_MIN_COST ? LINE_MIN_COST : len + 1;
	char *clean;

	if (!s->busy || s->lost || s->log_cut || w->o->log_max == 0)
		return;
	if (w->log.pending.n == 0)
		w->log.first_at = pgjq_now_us();
	if (s->log_bytes + cost > w->o->log_max) {
		char *cut = pgjq_xasprintf("log cut: this attempt passed --log-max (%zu bytes); "
		    "the rest of what it writes is not kept", w->o->log_max);

		s->log_cut = true;
		put(&w->log.pending, s->id, s->attempt, PGJQ_LOG_WORKER, cut);
		free(cut);
		return;
	}
	s->log_bytes += cost;
	/* Any bytes at all: the database takes only valid UTF-8 without NUL. */
	clean = pgjq_text_clean(line, len);
	put(&w->log.pending, s->id, s->attempt, stream, clean);
	free(clean);
}

bool
wk_log_due(const struct worker *w, int64_t now)
{
	return w->log.pending.n > 0 && now - w->log.first_at >= WK_PROGRESS_EVERY_US;
}

int64_t
wk_log_due_at(const struct worker *w)
{
	return w->log.pending.n > 0 ? w->log.first_at + WK_PROGRESS_EVERY_US : 0;
}

static void
batch_free(struct wk_logbatch *lb)
{
	for (int i = 0; i < WK_LOG_NARRAYS; i++)
		pgjq_buf_free(&lb->a[i]);
	lb->n = 0;
}

size_t
wk_log_take(struct worker *w, const char **params)
{
	struct wk_logs *l = &w->log;

	batch_free(&l->sending);
	l->sending = l->pending;
	memset(&l->pending, 0, sizeof l->pending);
	for (int i = 0; i < WK_LOG_NARRAYS; i++) {
		struct pgjq_buf *b = &l->sending.a[i];

		if (b->len == 0)
			pgjq_buf_putc(b, '{');
		pgjq_buf_putc(b, '}');
		params[i] = b->data;
	}
	return l->sending.n;
}

void
wk_log_sent(struct worker *w)
{
	batch_free(&w->log.sending);
}

void
wk_log_refused(struct worker *w, const char *why)
{
	pgjq_warn("cannot record %zu log line%s: %s; they are dropped", w->log.sending.n,
	    w->log.sending.n == 1 ? "" : "s", why);
	batch_free(&w->log.sending);
}

/*
 * The turn that carried them may not have committed: the lines go again
 * with the next, in front of those written since.  (Had it committed,
 * they are in the log twice: better than not at all.)
 */
void
wk_log_requeue(struct worker *w)
{
	struct wk_logs *l = &w->log;

	if (l->sending.n == 0)
		return;
	for (int i = 0; i < WK_LOG_NARRAYS; i++) {
		struct pgjq_buf *b = &l->sending.a[i], *p = &l->pending.a[i];

		b->len--; /* its closing brace */
		if (p->len > 0) {
			pgjq_buf_putc(b, ',');
			pgjq_buf_append(b, p->data + 1, p->len - 1);
		}
		pgjq_buf_free(p);
		*p = *b;
		memset(b, 0, sizeof *b);
	}
	if (l->pending.n == 0)
		l->first_at = pgjq_now_us();
	l->pending.n += l->sending.n;
	l->sending.n = 0;
}

void
wk_log_free(struct worker *w)
{
	batch_free(&w->log.pending);
	batch_free(&w->log.sending);
}
