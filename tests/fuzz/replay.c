/*
 * tests/fuzz/replay.c: runs a fuzz target's LLVMFuzzerTestOneInput over
 * saved inputs with the ordinary compiler, so that `make check` replays
 * the seed corpus and every crash ever found, under whatever sanitizers
 * the build has.  Prints TAP: one test per file.
 *
 *	replay-TARGET [DIR|FILE...]
 *
 * Without arguments it reads $top_srcdir/tests/fuzz/corpus/TARGET and
 * $top_srcdir/tests/fuzz/crashes/TARGET (the latter may be missing),
 * TARGET being its own name after "replay-".  A broken invariant aborts,
 * which the TAP driver reports as a failure with the file last named.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int ntests;
static int nfailed;

static int
read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return -1;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	*data = buf;
	*size = len;
	return 0;
}

static void
run_file(const char *path)
{
	uint8_t *data;
	size_t size;

	/* Said first, so that the log names the input if it crashes. */
	printf("# %s\n", path);
	fflush(stdout);
	if (read_file(path, &data, &size) < 0) {
		printf("not ok %d - %s: %s\n", ++ntests, path, strerror(errno));
		nfailed++;
		return;
	}
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	printf("ok %d - %s\n", ++ntests, path);
	fflush(stdout);
}

static int
visible(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Runs every file of a directory, in name order; false if it cannot be read. */
static int
run_path(const char *path, int must_exist)
{
	struct dirent **names;
	struct stat st;
	int n;

	if (stat(path, &st) < 0) {
		if (must_exist) {
			printf("not ok %d - %s: %s\n", ++ntests, path, strerror(errno));
			nfailed++;
		}
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		run_file(path);
		return 0;
	}
	n = scandir(path, &names, visible, alphasort);
	if (n < 0) {
		printf("not ok %d - %s: %s\n", ++ntests, path, strerror(errno));
		nfailed++;
		return 0;
	}
	for (int i = 0; i < n; i++) {
		size_t len = strlen(path) + strlen(names[i]->d_name) + 2;
		char *file = malloc(len);

		if (file == NULL)
			abort();
		snprintf(file, len, "%s/%s", path, names[i]->d_name);
		if (stat(file, &st) == 0 && S_ISREG(st.st_mode))
			run_file(file);
		free(file);
		free(names[i]);
	}
	free(names);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			run_path(argv[i], 1);
	} else {
		const char *top = getenv("top_srcdir");
		const char *name = strrchr(argv[0], '/');
		char dir[4096];

		name = name ? name + 1 : argv[0];
		if (strncmp(name, "lt-", 3) == 0)
			name += 3;
		if (strncmp(name, "replay-", 7) != 0) {
			fprintf(stderr, "%s: give directories, or run as replay-TARGET\n", argv[0]);
			return 2;
		}
		name += 7;
		if (top == NULL)
			top = ".";
		snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", top, name);
		run_path(dir, 1);
		snprintf(dir, sizeof dir, "%s/tests/fuzz/crashes/%s", top, name);
		run_path(dir, 0);
	}
	printf("1..%d\n", ntests);
	return nfailed > 0 || ntests == 0;
}
