/*
 * sigpipe: caught signals become bytes on a pipe, so that an event loop
 * waits for them in the same poll(2) as for everything else and handles
 * them outside the handler, where anything may be done.  One per process:
 * jq-worker's loop, and jq-status -f and jq-stats --watch through tty.h.
 */
#ifndef PGJQ_SIGPIPE_H
#define PGJQ_SIGPIPE_H

#include <signal.h>
#include <stddef.h>

/*
 * Catches sigs and returns the read end of the pipe (non-blocking) for
 * poll(2).  Handlers restart interrupted system calls.  Called again, it
 * catches more signals and returns the same descriptor.
 */
int pgjq_sigpipe_catch(const int *sigs, size_t n);

/* The next signal caught, or 0 if none is waiting. */
int pgjq_sigpipe_next(void);

/*
 * Set by the handler when a stop signal (any caught but SIGCHLD and
 * SIGWINCH) comes after another: "stop now".  A caller that must not
 * wait through that clears it, then gives it to pgjq_exec_within().
 */
extern volatile sig_atomic_t pgjq_sigpipe_urgent;

#endif
