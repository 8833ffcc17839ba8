/*
 * A --pipe test handler that answers as fast as it can, reading in
 * bulk, to see what the worker sends a quick handler.  Each answer is
 * "completed" with the job's id as its result.  For each read it appends
 * to $LOG how many whole job lines it had; with QUIT_AFTER=N it exits 0
 * after N answers, whatever is still in its stdin; with REVERSE=1 it
 * answers the lines of each read last first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char in[1 << 20];

int
main(void)
{
	const char *log = getenv("LOG");
	long quit_after = getenv("QUIT_AFTER") ? atol(getenv("QUIT_AFTER")) : 0, answered = 0;
	int reverse = getenv("REVERSE") != NULL;
	size_t len = 0;
	ssize_t n;

	while ((n = read(0, in + len, sizeof in - len)) > 0) {
		long long ids[4096];
		int nids = 0;
		char *p = in, *end = in + len + (size_t)n, *nl;
		FILE *f;

		while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL && nids < 4096) {
			ids[nids++] = strtoll(p + 6, NULL, 10); /* {"id":N,... */
			p = nl + 1;
		}
		if (log != NULL && (f = fopen(log, "a")) != NULL) {
			fprintf(f, "%d\n", nids);
			fclose(f);
		}
		for (int i = 0; i < nids; i++) {
			long long id = ids[reverse ? nids - 1 - i : i];

			printf("{\"id\":%lld,\"status\":\"completed\",\"result\":%lld}\n", id, id);
			if (quit_after > 0 && ++answered >= quit_after) {
				fflush(stdout);
				return 0;
			}
		}
		fflush(stdout);
		len = (size_t)(end - p);
		memmove(in, p, len);
	}
	return 0;
}
