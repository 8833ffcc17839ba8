/*
 * tty: the terminal, for tools that draw on it: its size, a full-screen
 * mode that leaves the user's screen as it was, text cut to a width and
 * made safe to print, and the signals that concern a screen (resize,
 * Ctrl-C) turned into a file descriptor for poll(2).
 */
#ifndef PGJQ_TTY_H
#define PGJQ_TTY_H

#include <stdbool.h>

#include "xalloc.h"

/* Columns and rows of the terminal on fd; false if fd is not a terminal. */
bool pgjq_tty_size(int fd, int *cols, int *rows);

/* The width human output should fit: the terminal's, else $COLUMNS, else 80. */
int pgjq_tty_width(int fd);

/*
 * Appends at most width columns of the UTF-8 text s (up to its first
 * newline when one_line) to b, each control character or invalid byte
 * shown as '?'; cut text ends in "...".  Returns the columns used.  A
 * character is taken to be one column wide.
 */
int pgjq_tty_put(struct pgjq_buf *b, const char *s, int width, bool one_line);

/* Appends n spaces. */
void pgjq_tty_pad(struct pgjq_buf *b, int n);

/*
 * Signals for an interactive screen: SIGWINCH, SIGINT, SIGTERM and SIGHUP
 * are caught and written to a pipe, whose read end is returned for
 * poll(2).  pgjq_tty_signal() then returns the next one caught, or 0.
 */
int pgjq_tty_catch_signals(void);
int pgjq_tty_signal(void);

/* Ends the process as the signal would have, after the caller has cleaned up. */
__attribute__((noreturn))
void pgjq_tty_die_by(int sig);

/*
 * Full-screen mode on the terminal on fd: the alternate screen, cursor
 * hidden.  pgjq_tty_leave() restores both; it is safe to call twice.
 */
void pgjq_tty_enter(int fd);
void pgjq_tty_leave(int fd);

/* Writes all of b to fd (retrying short writes) and resets b. */
void pgjq_tty_flush(int fd, struct pgjq_buf *b);

#endif
