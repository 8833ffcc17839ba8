/*
 * diag: how every tool reports trouble, and the exit statuses it ends with.
 *
 * Messages go to stderr as "prog: place: cause", never to stdout, so a
 * tool's output stays clean in a pipe.  The exit statuses are the ones
 * pgjq(7) promises; they never change meaning.
 */
#ifndef PGJQ_DIAG_H
#define PGJQ_DIAG_H

enum pgjq_exit {
	PGJQ_EX_OK = 0,
	PGJQ_EX_NO = 1,           /* the answer is "no": a job failed, a check did not hold */
	PGJQ_EX_USAGE = 64,       /* bad option or argument */
	PGJQ_EX_DATAERR = 65,     /* bad input data */
	PGJQ_EX_NOJOB = 66,       /* no such job */
	PGJQ_EX_UNAVAILABLE = 69, /* database unreachable or unusable */
	PGJQ_EX_SOFTWARE = 70,    /* internal error */
	PGJQ_EX_IOERR = 74,       /* stdout is closed or full */
	PGJQ_EX_TEMPFAIL = 75,    /* try again later */
};

/* Remembers the tool's name (basename of argv[0]) for every message. */
void pgjq_set_progname(const char *argv0);
const char *pgjq_progname(void);

/*
 * From now on, lines wait in a block, written whole lines at a time by
 * pgjq_diag_flush() and at exit, instead of a write(2) each: for a
 * worker telling of thousands of jobs a second.  What goes to stderr by
 * other ways (a usage text) overtakes the waiting lines, so call it once
 * those are behind.
 */
void pgjq_diag_buffer(void);
void pgjq_diag_flush(void);

/* A line as it is (no "prog: " before it), as pgjq_warn writes its own. */
void pgjq_diag_line(const char *line);

__attribute__((format(printf, 1, 2)))
void pgjq_warn(const char *fmt, ...);

__attribute__((format(printf, 2, 3), noreturn))
void pgjq_die(int status, const char *fmt, ...);

#endif
