#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "diag.h"
#include "duration.h"
#include "envelope.h"
#include "job.h"
#include "jsonstream.h"
#include "xalloc.h"

void
pgjq_jobspec_release(struct pgjq_jobspec *j)
{
	free(j->queue_owned);
	free(j->after_text);
	json_decref(j->envelope);
}

static bool
integral(const json_t *v, double min, double max, long long *out)
{
	double d;

	if (!json_is_number(v))
		return false;
	d = json_number_value(v);
	if (d != floor(d) || d < min || d > max)
		return false;
	*out = (long long)d;
	return true;
}

static bool
duration_field(const json_t *v, int64_t *us, const char **why)
{
	if (json_is_string(v))
		return pgjq_parse_duration(json_string_value(v), us, why) == 0;
	if (json_is_number(v)) {
		double d = json_number_value(v);

		if (d < 0 || !isfinite(d) || d * 1e6 > (double)PGJQ_DURATION_MAX_US) {
			*why = d < 0 ? "negative" : "too long";
			return false;
		}
		*us = (int64_t)llround(d * 1e6);
		return true;
	}
	*why = "expected a duration string or a number of seconds";
	return false;
}

static int
failed(struct pgjq_envelope_error *err, int status, long line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
failed(struct pgjq_envelope_error *err, int status, long line, const char *fmt, ...)
{
	va_list ap;

	err->line = line;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return status;
}

int
pgjq_envelope_read(const char *text, size_t len, long line, struct pgjq_jobspec *j,
    struct pgjq_envelope_error *err)
{
	char why[256];
	long errline;
	const char *k;
	json_t *v;
	bool has_payload = false;

	/*
	 * Integers as reals: an envelope's numbers are only checked here; the
	 * payload's own text goes to the database untouched, so a 20-digit id
	 * in a payload survives.
	 */
	j->envelope = pgjq_json_parse(text, len, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES,
	    line, why, sizeof why, &errline);
	if (j->envelope == NULL)
		return failed(err, PGJQ_EX_DATAERR, errline, "invalid JSON: %s", why);
	if (!json_is_object(j->envelope))
		return failed(err, PGJQ_EX_DATAERR, line,
		    "envelope must be a JSON object with a \"payload\" field");

	json_object_foreach(j->envelope, k, v) {
		long long n;
		const char *dwhy;

		if (json_is_null(v) && strcmp(k, "payload") != 0)
			continue; /* null: use the option's value */
		if (strcmp(k, "payload") == 0) {
			has_payload = true;
			/* The payload's own text, so numbers keep every digit. */
			if (!pgjq_json_member_text(text, len, "payload", &j->payload, &j->payload_len))
				return failed(err, PGJQ_EX_SOFTWARE, line,
				    "internal error: cannot find the payload's text");
		} else if (strcmp(k, "queue") == 0) {
			if (!json_is_string(v) || !pgjq_queue_valid(json_string_value(v), json_string_length(v)))
				return failed(err, PGJQ_EX_DATAERR, line,
				    "envelope field \"queue\": expected a queue name (" PGJQ_QUEUE_RULE ")");
			j->queue = json_string_value(v);
		} else if (strcmp(k, "priority") == 0) {
			if (!integral(v, INT32_MIN, INT32_MAX, &n))
				return failed(err, PGJQ_EX_DATAERR, line,
				    "envelope field \"priority\": expected a 32-bit integer");
			j->priority = (int)n;
		} else if (strcmp(k, "delay") == 0) {
			if (!duration_field(v, &j->when_us, &dwhy))
				return failed(err, PGJQ_EX_DATAERR, line,
				    "envelope field \"delay\": invalid duration: %s", dwhy);
			j->timing = PGJQ_TIME_DELAY;
			j->at = NULL;
		} else if (strcmp(k, "at") == 0) {
			if (!json_is_string(v))
				return failed(err, PGJQ_EX_DATAERR, line,
				    "envelope field \"at\": expected a time string");
			j->at = json_string_value(v);
		} else if (strcmp(k, "max_attempts") == 0) {
			if (!integral(v, 1, INT32_MAX, &n))
				return failed(err, PGJQ_EX_DATAERR, line,
				    "envelope field \"max_attempts\": expected an integer of at least 1");
			j->max_attempts = (int)n;
		} else if (strcmp(k, "timeout") == 0) {
			if (!duration_field(v, &j->timeout_us, &dwhy) || j->timeout_us == 0)
				return failed(err, PGJQ_EX_DATAERR, line,
				    "envelope field \"timeout\": invalid duration: %s",
				    j->timeout_us == 0 ? "must be more than zero" : dwhy);
			j->has_timeout = true;
		} else if (strcmp(k, "key") == 0) {
			if (!json_is_string(v) || !pgjq_key_valid(json_string_value(v), json_string_length(v)))
				return failed(err, PGJQ_EX_DATAERR, line,
				    "envelope field \"key\": expected a string of 1 to %d bytes", PGJQ_KEY_MAX);
			j->key = json_string_value(v);
		} else if (strcmp(k, "group") == 0) {
			if (!json_is_string(v) || !pgjq_key_valid(json_string_value(v), json_string_length(v)))
				return failed(err, PGJQ_EX_DATAERR, line,
				    "envelope field \"group\": expected a string of 1 to %d bytes", PGJQ_KEY_MAX);
			j->group = json_string_value(v);
		} else if (strcmp(k, "after") == 0) {
			int64_t *ids = NULL;
			size_t nids = 0, cap = 0, i;
			json_t *id;
			bool ok = true;

			if (json_is_array(v)) {
				json_array_foreach(v, i, id) {
					if (!integral(id, 1, 9007199254740992.0, &n)) {
						ok = false;
						break;
					}
					ids = pgjq_xgrow(ids, &cap, nids + 1, sizeof *ids);
					ids[nids++] = n;
				}
			} else if (integral(v, 1, 9007199254740992.0, &n)) {
				ids = pgjq_xgrow(ids, &cap, 1, sizeof *ids);
				ids[nids++] = n;
			} else {
				ok = false;
			}
			if (!ok) {
				free(ids);
				return failed(err, PGJQ_EX_DATAERR, line,
				    "envelope field \"after\": expected a job id or an array of job ids");
			}
			free(j->after_text);
			j->after_text = nids > 0 ? pgjq_id_array(ids, nids) : NULL;
			free(ids);
		} else {
			return failed(err, PGJQ_EX_DATAERR, line,
			    "unknown envelope field \"%s\" (payload, queue, priority, delay, at, "
			    "max_attempts, timeout, key, group, after)", k);
		}
	}
	if (!has_payload)
		return failed(err, PGJQ_EX_DATAERR, line, "envelope has no \"payload\" field");
	if (j->timing == PGJQ_TIME_DELAY && j->at != NULL)
		return failed(err, PGJQ_EX_DATAERR, line,
		    "envelope fields \"delay\" and \"at\" exclude each other");
	return 0;
}
