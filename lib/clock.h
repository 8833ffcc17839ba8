/*
 * clock: the one clock for deadlines and intervals, monotonic, so that a
 * change of the wall clock (NTP, an administrator) neither fires a timer
 * early nor holds it for hours.  Times shown to people or compared with
 * the database's come from the database instead.
 */
#ifndef PGJQ_CLOCK_H
#define PGJQ_CLOCK_H

#include <stdint.h>

/* Microseconds since some fixed point in the past (CLOCK_MONOTONIC). */
int64_t pgjq_now_us(void);

#endif
