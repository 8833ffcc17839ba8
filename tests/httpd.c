/*
 * httpd: a tiny HTTP/1.1 server for the tests and benchmarks of jq-worker's
 * HTTP handler, on 127.0.0.1 only.  It forks a process per connection and
 * keeps connections alive.  What it answers depends on the path:
 *
 *   /ok      200 with the request body as the response (JSON echo)
 *   /text    200 with a plain-text body
 *   /fail    500
 *   /bad     400
 *   /busy    429 with "Retry-After: 1"
 *   /flaky   503 the first time a job id is seen, 200 after (ids in a file)
 *   /slow    answers after 10 seconds
 *   /auth    200 with the request's Authorization header as a JSON string
 *   /schedule  200 with the Jq-Schedule and Jq-Scheduled-For headers as a JSON string
 *
 * Usage: httpd PORTFILE [STATEDIR]   (writes the port it listens on to PORTFILE)
 * It exits when its parent dies or on SIGTERM.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *statedir = ".";

static void
reply(FILE *out, int status, const char *reason, const char *extra, const char *body, size_t len)
{
	fprintf(out, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: application/json\r\n%s\r\n",
	    status, reason, len, extra);
	fwrite(body, 1, len, out);
	fflush(out);
}

/* True the first time a job id is seen by /flaky. */
static int
first_time(const char *job)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/flaky-%s", statedir, job);
	if (access(path, F_OK) == 0)
		return 0;
	if ((f = fopen(path, "w")) != NULL)
		fclose(f);
	return 1;
}

static void
serve(int fd)
{
	FILE *in = fdopen(fd, "r"), *out = fdopen(dup(fd), "w");
	char line[8192], method[16], path[1024], job[64], auth[1024], sched[128], sfor[64];

	while (fgets(line, sizeof line, in) != NULL) {
		size_t len = 0;
		char *body;

		if (sscanf(line, "%15s %1023s", method, path) != 2)
			return;
		job[0] = auth[0] = sched[0] = sfor[0] = '\0';
		while (fgets(line, sizeof line, in) != NULL && strcmp(line, "\r\n") != 0) {
			if (strncasecmp(line, "Content-Length:", 15) == 0)
				len = strtoul(line + 15, NULL, 10);
			if (strncasecmp(line, "Jq-Job-Id:", 10) == 0)
				sscanf(line + 10, " %63[0-9]", job);
			if (strncasecmp(line, "Jq-Schedule:", 12) == 0)
				sscanf(line + 12, " %127[A-Za-z0-9_.:-]", sched);
			if (strncasecmp(line, "Jq-Scheduled-For:", 17) == 0)
				sscanf(line + 17, " %63[0-9TZ:-]", sfor);
			if (strncasecmp(line, "Authorization:", 14) == 0)
				sscanf(line + 14, " %1023[^\r\n\"\\]", auth);
		}
		body = malloc(len + 1);
		if (body == NULL || fread(body, 1, len, in) != len)
			return;
		body[len] = '\0';
		if (strcmp(path, "/ok") == 0)
			reply(out, 200, "OK", "", body, len);
		else if (strcmp(path, "/text") == 0)
			reply(out, 200, "OK", "", "all good\n", 9);
		else if (strcmp(path, "/fail") == 0)
			reply(out, 500, "Internal Server Error", "", "the server broke\n", 17);
		else if (strcmp(path, "/bad") == 0)
			reply(out, 400, "Bad Request", "", "no such thing\n", 14);
		else if (strcmp(path, "/busy") == 0)
			reply(out, 429, "Too Many Requests", "Retry-After: 1\r\n", "slow down\n", 10);
		else if (strcmp(path, "/flaky") == 0 && first_time(job))
			reply(out, 503, "Service Unavailable", "Retry-After: 0\r\n", "try again\n", 10);
		else if (strcmp(path, "/flaky") == 0)
			reply(out, 200, "OK", "", "\"second time\"", 13);
		else if (strcmp(path, "/auth") == 0) {
			/* Quotes and backslashes were left out above: a JSON string as it is. */
			char json[1100];
			int n = snprintf(json, sizeof json, "\"%s\"", auth);

			reply(out, 200, "OK", "", json, (size_t)n);
		} else if (strcmp(path, "/schedule") == 0) {
			char json[256];
			int n = snprintf(json, sizeof json, "\"%s %s\"", sched, sfor);

			reply(out, 200, "OK", "", json, (size_t)n);
		} else if (strcmp(path, "/slow") == 0) {
			sleep(10);
			reply(out, 200, "OK", "", "\"late\"", 6);
		} else
			reply(out, 404, "Not Found", "", "", 0);
		free(body);
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof addr;
	int s, one = 1;
	FILE *f;

	if (argc < 2) {
		fprintf(stderr, "usage: httpd PORTFILE [STATEDIR]\n");
		return 64;
	}
	if (argc > 2)
		statedir = argv[2];
	signal(SIGCHLD, SIG_IGN);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 128) < 0 ||
	    getsockname(s, (struct sockaddr *)&addr, &alen) < 0) {
		perror("httpd");
		return 1;
	}
	if ((f = fopen(argv[1], "w")) == NULL) {
		perror(argv[1]);
		return 1;
	}
	fprintf(f, "%d\n", ntohs(addr.sin_port));
	fclose(f);
	for (;;) {
		int c = accept(s, NULL, NULL);

		if (c < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (fork() == 0) {
			close(s);
			serve(c);
			_exit(0);
		}
		close(c);
		if (getppid() == 1)
			return 0;
	}
}
