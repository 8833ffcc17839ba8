/*
 * noop-pipe: the least a jq-worker --pipe handler can do, for
 * bench/worker: answer every job "completed", without a result, and
 * exit when stdin ends.  It relies on the worker writing "id" first in
 * each job's line, as jq-worker(1) promises.
 *
 *	cc -O2 -o noop-pipe bench/noop-pipe.c
 *	jq-worker -q bench -c 8 --pipe -- ./noop-pipe
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
main(void)
{
	/* Big enough for any job's line: payloads are at most 1 MiB. */
	static char buf[2 * 1024 * 1024];
	size_t len = 0;
	ssize_t n;

	while ((n = read(0, buf + len, sizeof buf - len)) > 0) {
		char *p = buf, *end = buf + len + (size_t)n, *nl;

		while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
			char out[64];
			long long id = strtoll(p + sizeof "{\"id\":" - 1, NULL, 10);
			int k = snprintf(out, sizeof out, "{\"id\":%lld,\"status\":\"completed\"}\n", id);

			/* One write per answer, unbuffered: the worker waits for it. */
			if (write(1, out, (size_t)k) != k)
				return 1;
			p = nl + 1;
		}
		len = (size_t)(end - p);
		memmove(buf, p, len);
		if (len == sizeof buf) {
			fputs("noop-pipe: a line longer than its buffer\n", stderr);
			return 1;
		}
	}
	return 0;
}
