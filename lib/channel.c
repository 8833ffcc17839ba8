#include "config.h"

#include <assert.h>

#include "channel.h"
#include "xalloc.h"

static const char *const suffixes[] = {
#define PGJQ_CHANNEL_STRING(name, suffix) [name] = suffix,
	PGJQ_CHANNEL_TABLE(PGJQ_CHANNEL_STRING)
#undef PGJQ_CHANNEL_STRING
};

static_assert(sizeof suffixes / sizeof suffixes[0] == PGJQ_NCHANNELS, "a suffix for every channel");
static_assert(PGJQ_SCHEMA_NAME_MAX > 0, "a schema name still fits");

char *
pgjq_channel_name(const char *schema, enum pgjq_channel c)
{
	return pgjq_xasprintf("%s%s", schema, suffixes[c]);
}
