/*
 * bench/lat.c: a handler that measures latency, for bench/worker.  It
 * reads the wall clock first thing and appends that time minus the
 * payload's "t" (microseconds since the epoch, taken when the job was
 * enqueued) to the file FILE, one number per line.
 *
 *   lat FILE           exec handler: one job, the payload on stdin
 *   lat --pipe FILE    --pipe handler: a job per line, each answered
 *
 * C, so that its own start-up (unlike sh and date(1)) is a small part of
 * what is measured.  Standard C and POSIX only; no JSON library: it finds
 * "t" and "id" by their keys, which is enough for the payloads bench/worker
 * writes.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The integer after "KEY": in s, or -1. */
static long long
field(const char *s, const char *key)
{
	const char *p = strstr(s, key);

	if (p == NULL)
		return -1;
	p += strlen(key);
	while (*p == ' ' || *p == ':')
		p++;
	return strtoll(p, NULL, 10);
}

static void
note(const char *file, long long at, const char *payload)
{
	FILE *f = fopen(file, "a");

	if (f == NULL) {
		perror(file);
		exit(1);
	}
	fprintf(f, "%lld\n", at - field(payload, "\"t\""));
	fclose(f);
}

int
main(int argc, char **argv)
{
	long long at = now_us();
	char *line = NULL;
	size_t cap = 0;

	if (argc == 3 && strcmp(argv[1], "--pipe") == 0) {
		while (getline(&line, &cap, stdin) > 0) {
			at = now_us();
			note(argv[2], at, strstr(line, "\"payload\"") ? strstr(line, "\"payload\"") : line);
			printf("{\"id\":%lld,\"status\":\"completed\"}\n", field(line, "\"id\""));
			fflush(stdout);
		}
		free(line);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: lat [--pipe] FILE\n");
		return 64;
	}
	if (getline(&line, &cap, stdin) < 0)
		return 1;
	note(argv[1], at, line);
	free(line);
	return 0;
}
