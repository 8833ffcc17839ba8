/*
 * Fuzz target: the envelope of jq-enqueue --envelope, one JSON object
 * read into a job over the run's defaults (read_envelope() in
 * lib/enqueue.c).  That function is static and needs no database, so
 * enqueue.c is compiled into this target whole; its database side is
 * never called.  Also takes each value through the COPY text escaping
 * the fast path uses.
 *
 * Invariants for an accepted envelope: the payload is the text of a
 * JSON value within the input, the queue and key obey their rules, the
 * numbers are in range, and delay and at are not both set.
 */
#include "../../lib/enqueue.c"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t after[] = {3, 4};
	struct pgjq_enqueue_opts opts = {
		.queue = PGJQ_DEFAULT_QUEUE,
		.max_attempts = PGJQ_DEFAULT_MAX_ATTEMPTS,
		.after = after,
		.n_after = 2,
		.envelope = true,
	};
	struct pgjq_enqueuer *e = pgjq_xcalloc(1, sizeof *e);
	const char *text = (const char *)data;
	struct job j = {0};
	int status;

	e->opts = opts;
	e->source = PGJQ_SOURCE_STDIN;
	e->after_text = pgjq_id_array(opts.after, opts.n_after);
	j.queue = opts.queue;
	j.max_attempts = opts.max_attempts;
	j.after_text = pgjq_xstrdup(e->after_text);

	status = read_envelope(e, text, size, 1, &j);
	if (status == 0) {
		char why[256];
		long errline;
		json_t *payload;
		struct pgjq_buf b = {0};

		FUZZ_CHECK(!e->failed);
		FUZZ_CHECK(j.payload >= text && j.payload + j.payload_len <= text + size);
		payload = pgjq_json_parse(j.payload, j.payload_len, JSON_DECODE_INT_AS_REAL, 1,
		    why, sizeof why, &errline);
		FUZZ_CHECK(payload != NULL);
		json_decref(payload);
		FUZZ_CHECK(pgjq_queue_valid(j.queue, strlen(j.queue)));
		FUZZ_CHECK(j.key == NULL || pgjq_key_valid(j.key, strlen(j.key)));
		FUZZ_CHECK(j.max_attempts >= 1);
		FUZZ_CHECK(j.when_us >= 0 && j.when_us <= PGJQ_DURATION_MAX_US);
		FUZZ_CHECK(!j.has_timeout || (j.timeout_us > 0 && j.timeout_us <= PGJQ_DURATION_MAX_US));
		FUZZ_CHECK(!(j.timing == TIME_DELAY && j.at != NULL));
		FUZZ_CHECK(j.after_text == NULL || (j.after_text[0] == '{' &&
		    j.after_text[strlen(j.after_text) - 1] == '}'));
		/* The COPY row: no raw tab, newline or carriage return survives. */
		copy_escape(&b, j.payload, j.payload_len);
		FUZZ_CHECK(b.len >= j.payload_len);
		for (size_t i = 0; i < b.len; i++)
			FUZZ_CHECK(b.data[i] != '\t' && b.data[i] != '\n' && b.data[i] != '\r');
		pgjq_buf_free(&b);
	} else {
		FUZZ_CHECK(status == PGJQ_EX_DATAERR);
		FUZZ_CHECK(e->failed);
	}
	job_release(&j);
	free(e->after_text);
	free(e);
	return 0;
}
