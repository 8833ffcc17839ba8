#include "config.h"

#include <errno.h>
#include <inttypes.h>
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
pgjq_state_known(const char *name)
{
	return pgjq_state_parse(name) >= 0 || strcmp(name, "claimed") == 0;
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

static size_t utf8_len(const unsigned char *p, size_t n);

bool
pgjq_utf8_valid(const char *p, size_t len)
{
	for (size_t i = 0, n; i < len; i += n)
		if ((n = utf8_len((const unsigned char *)p + i, len - i)) == 0)
			return false;
	return true;
}

bool
pgjq_key_valid(const char *key, size_t len)
{
	/* The server would refuse bad UTF-8 too, but as bad data, blaming the payload. */
	return len > 0 && len <= PGJQ_KEY_MAX && pgjq_utf8_valid(key, len);
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

char *
pgjq_id_array(const int64_t *ids, size_t n)
{
	struct pgjq_buf b = {0};

	pgjq_buf_putc(&b, '{');
	for (size_t i = 0; i < n; i++)
		pgjq_buf_printf(&b, "%s%" PRId64, i > 0 ? "," : "", ids[i]);
	pgjq_buf_putc(&b, '}');
	return b.data;
}

char *
pgjq_queue_array(const char *const *queues, size_t n)
{
	struct pgjq_buf b = {0};

	if (n == 0)
		return NULL;
	/* PGJQ_QUEUE_RULE's characters need no escaping inside the quotes. */
	pgjq_buf_putc(&b, '{');
	for (size_t i = 0; i < n; i++)
		pgjq_buf_printf(&b, "%s\"%s\"", i > 0 ? "," : "", queues[i]);
	pgjq_buf_putc(&b, '}');
	return b.data;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if none. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c >= 0x01 && c <= 0x7F)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;  /* no overlong forms */
		if (c == 0xED)
			hi = 0x9F;  /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;  /* nothing past U+10FFFF */
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return len;
}

char *
pgjq_text_clean(const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;
	struct pgjq_buf b = {0};

	pgjq_buf_reserve(&b, len);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_len(u + i, len - i);

		if (n == 0) {
			pgjq_buf_append(&b, "\xEF\xBF\xBD", 3);
			i++;
		} else {
			pgjq_buf_append(&b, p + i, n);
			i += n;
		}
	}
	b.data[b.len] = '\0';
	return b.data;
}

bool
pgjq_progress_parse(const char *line, int *pct, char **message)
{
	char *end;
	long v = strtol(line, &end, 10);

	if (end == line || v < 0 || v > 100 || (*end != '\0' && *end != ' '))
		return false;
	while (*end == ' ')
		end++;
	*pct = (int)v;
	*message = *end ? pgjq_text_clean(end, strlen(end)) : NULL;
	return true;
}
