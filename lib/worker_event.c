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

/*
 * A handler's stderr in an error spans lines (a traceback, say): in the
 * plain log they are written \n, so that each event stays one line for
 * grep and syslog.  Other control characters but tabs become '?'.
 */
#define DETAIL_MAX 2048

static void
one_line(char *text, size_t size)
{
	char out[DETAIL_MAX];
	size_t o = 0;

	for (const char *p = text; *p != '\0' && o + 3 < sizeof out; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\n' || c == '\r') {
			out[o++] = '\\';
			out[o++] = c == '\n' ? 'n' : 'r';
		} else {
			out[o++] = c < 0x20 && c != '\t' ? '?' : (char)c;
		}
	}
	out[o] = '\0';
	snprintf(text, size, "%s", out);
}

/* One line per job event on stderr: for people, or JSON with --json. */
void
wk_event(struct worker *w, const char *what, const struct slot *s, int64_t id,
    const char *fmt, ...)
{
	char detail[DETAIL_MAX] = "";
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
		one_line(detail, sizeof detail);
		pgjq_warn("job %" PRId64 "%s%s%s %s%s%s", id, s ? " (" : "", s ? s->queue : "",
		    s ? ")" : "", what, *detail ? ": " : "", detail);
	}
}
