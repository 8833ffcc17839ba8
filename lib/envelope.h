/*
 * envelope: one job as jq-enqueue reads it, and the reading of an
 * envelope (--envelope): a JSON object whose "payload" is the job and whose
 * other fields override the run's options for it.
 *
 * No database here: only the server can read an "at" time, and whether
 * a job goes in by COPY or enqueue_job() is enqueue.c's business.  Its own
 * module so the parser can be fuzzed alone (tests/fuzz/envelope.c).
 */
#ifndef PGJQ_ENVELOPE_H
#define PGJQ_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum pgjq_timing {
	PGJQ_TIME_NOW,    /* run_at defaults to the transaction's now() */
	PGJQ_TIME_DELAY,  /* now() + delay_us */
	PGJQ_TIME_AT,     /* at_us, microseconds since the epoch */
};

/* Everything one value asks for, before it is routed to COPY or enqueue_job(). */
struct pgjq_jobspec {
	const char *payload;    /* the payload's text, within the value read */
	size_t payload_len;
	const char *queue;
	char *queue_owned;
	int priority;
	enum pgjq_timing timing;
	int64_t when_us;
	const char *at;         /* a time only the server can read */
	int max_attempts;
	bool has_timeout;
	int64_t timeout_us;
	const char *key;
	const char *group;      /* at most the queue's group limit of a group run at once */
	char *after_text;       /* owned: an id array literal, or NULL */
	json_t *envelope;       /* keeps the envelope's strings alive */
};

/* Frees what j owns; its fields are not to be used after. */
void pgjq_jobspec_release(struct pgjq_jobspec *j);

/* Why an envelope was refused, and the input line where. */
struct pgjq_envelope_error {
	long line;
	char msg[2048];
};

/*
 * Reads the envelope text (len bytes, from input line line) into j, over
 * the run's defaults already there.  0, or an exit status (65 for bad
 * data) with *err filled in.  j's strings point into text and into
 * j->envelope: keep text until pgjq_jobspec_release(j).
 */
int pgjq_envelope_read(const char *text, size_t len, long line, struct pgjq_jobspec *j,
    struct pgjq_envelope_error *err);

#endif
