#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "xalloc.h"

static const char *const state_names[PGJQ_NSTATES] = {
	"scheduled", "queued", "running", "completed", "failed", "cancelled",
};

const char *
pgjq_state_name(enum pgjq_state s)
{
	return (unsigned)s < PGJQ_NSTATES ? state_names[s] : "unknown";
}

int
pgjq_state_parse(const char *name)
{
	for (int i = 0; i < PGJQ_NSTATES; i++)
		if (strcmp(name, state_names[i]) == 0)
			return i;
	return -1;
}

bool
pgjq_queue_valid(const char *name, size_t len)
{
	if (len == 0 || len > PGJQ_QUEUE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' || c == ':'))
			return false;
	}
	return true;
}

bool
pgjq_key_valid(const char *key, size_t len)
{
	return len > 0 && len <= PGJQ_KEY_MAX && memchr(key, '\0', len) == NULL;
}

bool
pgjq_id_parse(const char *s, int64_t *id)
{
	char *end;
	long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return false;
	*id = v;
	return true;
}

bool
pgjq_id_list_parse(const char *s, int64_t **ids, size_t *n, size_t *cap)
{
	char *copy = pgjq_xstrdup(s), *piece = copy;
	bool ok = true;

	/* Every piece between commas must be an id: "1,,2" and "," are mistakes. */
	for (;;) {
		char *comma = strchr(piece, ',');
		int64_t id;

		if (comma != NULL)
			*comma = '\0';
		if (!pgjq_id_parse(piece, &id)) {
			ok = false;
			break;
		}
		*ids = pgjq_xgrow(*ids, cap, *n + 1, sizeof **ids);
		(*ids)[(*n)++] = id;
		if (comma == NULL)
			break;
		piece = comma + 1;
	}
	free(copy);
	return ok;
}
