/*
 * Fuzz target: an exec handler's progress lines (lib/job.c), "PCT
 * [MESSAGE]" on fd 3, as the worker gets them: one line, NUL-terminated,
 * any bytes.  A success is 0 to 100 with a message that is text the
 * database takes, and what it is written as again reads back the same.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "job.h"
#include "xalloc.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = fuzz_cstr(data, size);
	char *message = (char *)line, *again_message = NULL, buf[16];
	int pct = -1, again = -1;

	if (!pgjq_progress_parse(line, &pct, &message)) {
		/* A refusal leaves the caller's values alone: the worker keeps the last ones. */
		FUZZ_CHECK(pct == -1 && message == line);
		free(line);
		return 0;
	}
	FUZZ_CHECK(pct >= 0 && pct <= 100);
	if (message != NULL) {
		size_t len = strlen(message);

		FUZZ_CHECK(len > 0 && message[0] != ' ');
		FUZZ_CHECK(pgjq_utf8_valid(message, len));
		FUZZ_CHECK(len <= 3 * strlen(line));
	}
	/* As a well-behaved handler would write it: the same progress. */
	snprintf(buf, sizeof buf, "%d", pct);
	{
		struct pgjq_buf b = {0};

		pgjq_buf_printf(&b, "%s%s%s", buf, message ? " " : "", message ? message : "");
		FUZZ_CHECK(pgjq_progress_parse(b.data, &again, &again_message));
		FUZZ_CHECK(again == pct);
		FUZZ_CHECK((message == NULL) == (again_message == NULL));
		if (message != NULL)
			FUZZ_CHECK(strcmp(message, again_message) == 0);
		pgjq_buf_free(&b);
	}
	free(again_message);
	free(message);
	free(line);
	return 0;
}
