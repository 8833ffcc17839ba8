/*
 * worker_event: the line a job event gets in jq-worker's log.  Every part
 * of the worker has things to say about jobs (started, failed, timed out,
 * lost), people read them and programs parse them with --json: one
 * function says them all, so the format is one, and --quiet drops the
 * routine ones in one place.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "diag.h"
#include "worker_int.h"

/* One line per job event on stderr: for people, or JSON with --json. */
void
wk_event(struct worker *w, const char *what, const struct slot *s, int64_t id,
    const char *fmt, ...)
{
	char detail[2048] = "";
	va_list ap;

	/* --quiet: routine events are no news, and at 30,000 jobs a second they are a flood. */
	if (w->o->quiet && (strcmp(what, "started") == 0 || strcmp(what, "completed") == 0 ||
	    strcmp(what, "released") == 0))
		return;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof detail, fmt, ap);
		va_end(ap);
	}
	if (w->o->json) {
		json_t *o = json_pack("{s:s, s:I}", "event", what, "id", (json_int_t)id);
		char *line;

		if (s != NULL) {
			json_object_set_new(o, "queue", json_string(s->queue));
			json_object_set_new(o, "attempt", json_integer(s->attempt));
			json_object_set_new(o, "max_attempts", json_integer(s->max_attempts));
		}
		if (*detail)
			json_object_set_new(o, "detail", json_string(detail));
		line = json_dumps(o, JSON_COMPACT);
		pgjq_diag_line(line);
		free(line);
		json_decref(o);
	} else {
		pgjq_warn("job %" PRId64 "%s%s%s %s%s%s", id, s ? " (" : "", s ? s->queue : "",
		    s ? ")" : "", what, *detail ? ": " : "", detail);
	}
}
