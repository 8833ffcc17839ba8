/*
 * Fuzz target: the response headers of jq-worker's HTTP handler
 * (lib/http.c), as libcurl hands them over one by one: Retry-After in
 * seconds or as an HTTP date.  The header callback is static, so http.c
 * is compiled into this target whole; nothing here opens a connection.
 *
 * Input: header lines separated by newlines, each given to the callback
 * with its line end, not NUL-terminated, as libcurl gives them.  The
 * wait taken from a header is never negative.
 */
#include "../../lib/http.c"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xfer x;
	size_t at = 0;
	char why[256];

	/* An HTTP date goes through curl_getdate. */
	FUZZ_CHECK(pgjq_curl_load(why, sizeof why));
	memset(&x, 0, sizeof x);
	x.retry_after_us = -1;
	while (at < size) {
		const uint8_t *nl = memchr(data + at, '\n', size - at);
		size_t len = nl != NULL ? (size_t)(nl - (data + at)) + 1 : size - at;
		/* Exactly the header's bytes, so ASan sees any read past them. */
		char *h = malloc(len ? len : 1);

		if (h == NULL)
			abort();
		memcpy(h, data + at, len);
		FUZZ_CHECK(on_header(h, 1, len, &x) == len);
		FUZZ_CHECK(x.retry_after_us >= -1);
		free(h);
		at += len;
	}
	return 0;
}
