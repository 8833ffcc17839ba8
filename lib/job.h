/*
 * job: the job model shared by every tool: states, limits, defaults, and
 * the rules for queue names, keys and ids.
 */
#ifndef PGJQ_JOB_H
#define PGJQ_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest payload, as JSON text.  Queues carry references to work, not the work. */
#define PGJQ_PAYLOAD_MAX (1024 * 1024)
#define PGJQ_QUEUE_MAX 64
#define PGJQ_KEY_MAX 512
#define PGJQ_DEFAULT_QUEUE "default"
#define PGJQ_DEFAULT_MAX_ATTEMPTS 3

enum pgjq_state {
	PGJQ_SCHEDULED,
	PGJQ_QUEUED,
	PGJQ_RUNNING,
	PGJQ_COMPLETED,
	PGJQ_FAILED,
	PGJQ_CANCELLED,
	PGJQ_NSTATES
};

const char *pgjq_state_name(enum pgjq_state s);
/* Returns -1 for an unknown name. */
int pgjq_state_parse(const char *name);

/*
 * Whether name is a state a job can be in: one of enum pgjq_state, or
 * 'claimed' (in a worker's local queue), which has no place there
 * because every figure counts it as queued.
 */
bool pgjq_state_known(const char *name);

/* The rule, for error messages. */
#define PGJQ_QUEUE_RULE "1 to 64 characters from A-Z a-z 0-9 _ . - :"

bool pgjq_queue_valid(const char *name, size_t len);
/* 1 to PGJQ_KEY_MAX bytes of UTF-8 text without NUL. */
bool pgjq_key_valid(const char *key, size_t len);

/* Whether len bytes are valid UTF-8 with no NUL byte, as the database takes text. */
bool pgjq_utf8_valid(const char *p, size_t len);

/* A job id: a positive decimal integer. */
bool pgjq_id_parse(const char *s, int64_t *id);

/* Appends the comma-separated ids in s to *ids; false on a bad one. */
bool pgjq_id_list_parse(const char *s, int64_t **ids, size_t *n, size_t *cap);

/* The ids as a PostgreSQL array literal, "{1,2,3}", for a bigint[] parameter. */
char *pgjq_id_array(const int64_t *ids, size_t n);

/*
 * Valid queue names as a PostgreSQL array literal for a text[] parameter,
 * each quoted ("NULL" is a name, not a null); NULL when n is 0: "every
 * queue" to the statements that take one.
 */
char *pgjq_queue_array(const char *const *queues, size_t n);

/*
 * A copy of len bytes as valid UTF-8 text for the database: NUL bytes and
 * invalid sequences become U+FFFD.  The caller frees it.
 */
char *pgjq_text_clean(const char *p, size_t len);

/*
 * One line an exec handler wrote on its progress fd, "PCT [MESSAGE]", PCT
 * 0 to 100: false, setting nothing, if it is not one.  *message is the
 * message cleaned as by pgjq_text_clean(), NULL if there is none; the
 * caller frees it.  Apart from the worker so that it can be fuzzed.
 */
bool pgjq_progress_parse(const char *line, int *pct, char **message);

#endif
