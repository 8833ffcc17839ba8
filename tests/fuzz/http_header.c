/*
 * Fuzz target: the response headers of jq-worker's HTTP handler
 * (lib/http.c), as libcurl hands them over one by one: Retry-After in
 * seconds or as an HTTP date (pgjq_http_retry_after); nothing here opens
 * a connection.
 *
 * Input: header lines separated by newlines, each given to the callback
 * with its line end, not NUL-terminated, as libcurl gives them.  The
 * wait taken from a header is never negative.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "curl_dl.h"
#include "duration.h"
#include "http.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t at = 0;
	char why[256];

	/* An HTTP date goes through curl_getdate. */
	FUZZ_CHECK(pgjq_curl_load(why, sizeof why));
	while (at < size) {
		const uint8_t *nl = memchr(data + at, '\n', size - at);
		size_t len = nl != NULL ? (size_t)(nl - (data + at)) + 1 : size - at;
		/* Exactly the header's bytes, so ASan sees any read past them. */
		char *h = malloc(len ? len : 1);
		int64_t wait_us = -1;

		if (h == NULL)
			abort();
		memcpy(h, data + at, len);
		if (pgjq_http_retry_after(h, len, &wait_us))
			FUZZ_CHECK(wait_us >= 0 && wait_us <= PGJQ_DURATION_MAX_US);
		else
			FUZZ_CHECK(wait_us == -1);
		free(h);
		at += len;
	}
	return 0;
}
