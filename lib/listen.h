/*
 * listen: a database connection that waits for NOTIFY and survives the
 * server going away.
 *
 * The listener LISTENs on the schema's channels it is given (channel.h).
 * When the connection is lost (a restart, a failover, a network cut) it
 * reconnects with a growing delay, LISTENs again, and reports that it did,
 * so the caller re-reads whatever it watches: notifications sent while it
 * was away are lost, the state in the tables is not.  Subscribing before
 * reading is what makes "nothing finishes unseen" hold.
 */
#ifndef PGJQ_LISTEN_H
#define PGJQ_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "channel.h"

struct pgjq_listener;

/*
 * Connects and LISTENs on the schema's n channels chans.
 * Dies with the exit status of pgjq(7) if the first connection fails.
 */
struct pgjq_listener *pgjq_listen_open(const char *conninfo, const char *schema,
    const enum pgjq_channel *chans, size_t n);
void pgjq_listen_close(struct pgjq_listener *l);

/* True while the connection is lost and being re-made. */
bool pgjq_listen_down(const struct pgjq_listener *l);

/*
 * Runs a statement.  If the connection is lost (or the server is shutting
 * down) returns NULL and reconnects later, in pgjq_listen_wait(); dies on
 * any other failure.
 */
PGresult *pgjq_listen_exec(struct pgjq_listener *l, const char *sql, int nparams,
    const char *const *params);

enum pgjq_listen_event {
	PGJQ_LISTEN_TIMEOUT,     /* the time given passed */
	PGJQ_LISTEN_NOTIFY,      /* notifications are ready: pgjq_listen_next() */
	PGJQ_LISTEN_RECONNECTED, /* connected again: re-read everything */
	PGJQ_LISTEN_FD,          /* the extra fd is readable */
};

/*
 * Waits for one of the events; timeout_us < 0 waits for ever, extra_fd
 * < 0 is none.
 */
enum pgjq_listen_event pgjq_listen_wait(struct pgjq_listener *l, int64_t timeout_us,
    int extra_fd);

/*
 * The next notification received, or NULL when there is none; *which is
 * the index of its name.  Free it with PQfreemem().
 */
PGnotify *pgjq_listen_next(struct pgjq_listener *l, size_t *which);

#endif
