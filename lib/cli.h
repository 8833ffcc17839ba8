/*
 * cli: the options every tool shares (-d, --schema, -q, --json, -h, -V)
 * and what they default to, so each tool's main() only adds its own.
 */
#ifndef PGJQ_CLI_H
#define PGJQ_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Long-only options get codes above any character. */
enum {
	PGJQ_OPT_SCHEMA = 0x100,
	PGJQ_OPT_JSON,
	PGJQ_OPT_TOOL /* first code free for a tool's own long-only options */
};

#define PGJQ_COMMON_LONGOPTS \
	{"db", required_argument, NULL, 'd'}, \
	{"help", no_argument, NULL, 'h'}, \
	{"json", no_argument, NULL, PGJQ_OPT_JSON}, \
	{"queue", required_argument, NULL, 'q'}, \
	{"schema", required_argument, NULL, PGJQ_OPT_SCHEMA}, \
	{"version", no_argument, NULL, 'V'}

struct pgjq_common {
	const char *conninfo; /* -d, else JQ_DATABASE_URL, else NULL: libpq defaults */
	const char *schema;   /* --schema, else JQ_SCHEMA, else "jq" */
	const char *queue;    /* the last -q, else "default" */
	bool queue_given;
	const char **queues;  /* every -q, each once, in order */
	size_t nqueues, queues_cap;
	bool json;
	void (*usage)(FILE *);
	const char *options;  /* -h: the tool's own options, a line each; NULL: none */
};

void pgjq_common_init(struct pgjq_common *c, const char *argv0, void (*usage)(FILE *));

/*
 * Handles one of the common options; returns false if opt is not one.
 * -h and -V print and exit 0; '?' (getopt's bad option) exits 64.
 */
bool pgjq_common_option(struct pgjq_common *c, int opt, const char *arg);

__attribute__((format(printf, 2, 3), noreturn))
void pgjq_usage_error(const struct pgjq_common *c, const char *fmt, ...);

/* Parses a count option ("--batch 100"): an integer in [min, max], else usage error. */
long pgjq_opt_long(const struct pgjq_common *c, const char *option, const char *arg,
    long min, long max);

/* Parses a duration option, else usage error. */
long long pgjq_opt_duration(const struct pgjq_common *c, const char *option, const char *arg);

/*
 * Parses job id arguments (each an id or ids separated by commas) into a
 * new array without repeats, in order; a bad one is a usage error.
 */
int64_t *pgjq_opt_ids(const struct pgjq_common *c, int argc, char **argv, size_t *n);

#endif
