/*
 * Fuzz target: the envelope of jq-enqueue --envelope, one JSON object
 * read into a job over the run's defaults (lib/envelope.c), which needs
 * no database.  Also takes each value through the COPY text escaping the
 * fast path uses (pgjq_copy_escape in lib/enqueue.c).
 *
 * Invariants for an accepted envelope: the payload is the text of a
 * JSON value within the input, the queue and key obey their rules, the
 * numbers are in range, and delay and at are not both set.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "diag.h"
#include "duration.h"
#include "enqueue.h"
#include "envelope.h"
#include "job.h"
#include "jsonstream.h"
#include "xalloc.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t after[] = {3, 4};
	const char *text = (const char *)data;
	struct pgjq_jobspec j = {0};
	struct pgjq_envelope_error err;
	int status;

	j.queue = PGJQ_DEFAULT_QUEUE;
	j.max_attempts = PGJQ_DEFAULT_MAX_ATTEMPTS;
	j.after_text = pgjq_id_array(after, 2);

	status = pgjq_envelope_read(text, size, 1, &j, &err);
	if (status == 0) {
		char why[256];
		long errline;
		json_t *payload;
		struct pgjq_buf b = {0};

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
		FUZZ_CHECK(!(j.timing == PGJQ_TIME_DELAY && j.at != NULL));
		FUZZ_CHECK(j.after_text == NULL || (j.after_text[0] == '{' &&
		    j.after_text[strlen(j.after_text) - 1] == '}'));
		/* The COPY row: no raw tab, newline or carriage return survives. */
		pgjq_copy_escape(&b, j.payload, j.payload_len);
		FUZZ_CHECK(b.len >= j.payload_len);
		for (size_t i = 0; i < b.len; i++)
			FUZZ_CHECK(b.data[i] != '\t' && b.data[i] != '\n' && b.data[i] != '\r');
		pgjq_buf_free(&b);
	} else {
		FUZZ_CHECK(status == PGJQ_EX_DATAERR);
		FUZZ_CHECK(err.msg[0] != '\0' && err.line >= 1);
	}
	pgjq_jobspec_release(&j);
	return 0;
}
