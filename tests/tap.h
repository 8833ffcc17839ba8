/*
 * tests/tap.h: a tiny TAP producer for the C unit tests, header only.
 *
 *	plan(n);                          "1..n" up front (optional)
 *	ok(cond, fmt, ...);               passes iff cond is true
 *	is_int(got, expected, fmt, ...);  compared as long long
 *	is_str(got, expected, fmt, ...);  strcmp, NULL-safe (NULL equals only NULL)
 *	diag(fmt, ...);                   a "# " line
 *	return done_testing();            prints the plan if plan() was not
 *	                                  called; 0 iff every test passed and
 *	                                  the plan was kept
 *
 * Each assertion returns 1 if it passed, 0 if not.  Failures print the
 * file and line and, for is_*, what was got and expected.  Everything goes
 * to stdout, flushed at once, so it lands in the test's .log in order.
 */
#ifndef PGJQ_TAP_H
#define PGJQ_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define TAP_PRINTF_(f, a) __attribute__((format(printf, f, a)))
#else
#define TAP_PRINTF_(f, a)
#endif

static int tap_run_;      /* tests run */
static int tap_failed_;   /* tests failed */
static int tap_planned_;  /* plan(n), or 0 */

/* "static inline": a test that does not use one of these gets no
 * unused-function warning, so -Wall -Wextra -Werror stays quiet. */

static inline void
plan(int n)
{
	tap_planned_ = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void TAP_PRINTF_(1, 2)
diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* Prints "ok N - desc" or "not ok N - desc" plus where it failed. */
static inline int TAP_PRINTF_(4, 0)
tap_result_(int pass, const char *file, int line, const char *fmt, va_list ap)
{
	tap_run_++;
	if (!pass)
		tap_failed_++;
	printf("%sok %d - ", pass ? "" : "not ", tap_run_);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	if (!pass)
		printf("#   Failed test at %s line %d.\n", file, line);
	fflush(stdout);
	return pass;
}

static inline int TAP_PRINTF_(4, 5)
tap_ok_(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pass = tap_result_(pass, file, line, fmt, ap);
	va_end(ap);
	return pass;
}

static inline int TAP_PRINTF_(5, 6)
tap_is_int_(long long got, long long expected, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int pass;

	va_start(ap, fmt);
	pass = tap_result_(got == expected, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		printf("#          got: %lld\n", got);
		printf("#     expected: %lld\n", expected);
		fflush(stdout);
	}
	return pass;
}

static inline int TAP_PRINTF_(5, 6)
tap_is_str_(const char *got, const char *expected, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int pass;

	if (got == NULL || expected == NULL)
		pass = got == expected;
	else
		pass = strcmp(got, expected) == 0;
	va_start(ap, fmt);
	pass = tap_result_(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		if (got)
			printf("#          got: \"%s\"\n", got);
		else
			printf("#          got: NULL\n");
		if (expected)
			printf("#     expected: \"%s\"\n", expected);
		else
			printf("#     expected: NULL\n");
		fflush(stdout);
	}
	return pass;
}

static inline int
done_testing(void)
{
	if (tap_planned_ <= 0 && tap_run_ > 0) {
		printf("1..%d\n", tap_run_);
		tap_planned_ = tap_run_;
	}
	if (tap_planned_ != tap_run_)
		printf("# planned %d tests but ran %d\n", tap_planned_, tap_run_);
	if (tap_failed_)
		printf("# failed %d of %d tests\n", tap_failed_, tap_run_);
	fflush(stdout);
	return tap_failed_ == 0 && tap_planned_ == tap_run_ ? 0 : 1;
}

/* fmt is the first of the variadic arguments, so ok(c, "plain") works. */
#define ok(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, expected, ...) \
	tap_is_int_((long long)(got), (long long)(expected), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, expected, ...) \
	tap_is_str_((got), (expected), __FILE__, __LINE__, __VA_ARGS__)

#endif /* PGJQ_TAP_H */
