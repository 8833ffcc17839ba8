/*
 * channel: the names of the NOTIFY channels of a schema, "<schema><suffix>",
 * from one table of suffixes.
 *
 * PostgreSQL cuts an identifier at 63 bytes: LISTEN on a longer name
 * silently listens on its first 63, and pg_notify() refuses one.  So the
 * longest schema name a tool accepts (PGJQ_SCHEMA_NAME_MAX) is derived from
 * the longest suffix here, and never from less than PGJQ_CHANNEL_SUFFIX_ROOM:
 * a channel added later must not shrink the limit under schemas already in
 * use.  The SQL functions of sql/ spell the same suffixes
 * (current_schema() || '_new' ...); sql/schema.sql shows them all.
 */
#ifndef PGJQ_CHANNEL_H
#define PGJQ_CHANNEL_H

/* X(name, suffix): every channel a pgjq schema speaks on. */
#define PGJQ_CHANNEL_TABLE(X) \
	X(PGJQ_CHANNEL_NEW, "_new")           /* jobs became ready; payload the queue */ \
	X(PGJQ_CHANNEL_CANCEL, "_cancel")     /* "ID WORKER": stop a running job */ \
	X(PGJQ_CHANNEL_PROGRESS, "_progress") /* "ID PCT [MESSAGE]" of a running job */ \
	X(PGJQ_CHANNEL_DONE, "_done")         /* "ID STATE": a job finished */ \
	X(PGJQ_CHANNEL_LOG, "_log")           /* "ID": lines of the job's log were kept */ \
	X(PGJQ_CHANNEL_SCHEDULE, "_schedule") /* schedules were added or changed */

enum pgjq_channel {
#define PGJQ_CHANNEL_ENUM(name, suffix) name,
	PGJQ_CHANNEL_TABLE(PGJQ_CHANNEL_ENUM)
#undef PGJQ_CHANNEL_ENUM
	PGJQ_NCHANNELS
};

/* PostgreSQL's NAMEDATALEN - 1: the longest identifier, in bytes. */
#define PGJQ_IDENT_MAX 63

/* Bytes kept for a suffix, whether or not the table has one that long yet. */
#define PGJQ_CHANNEL_SUFFIX_ROOM 10

/* sizeof this union is that of the longest suffix, with its NUL. */
union pgjq_channel_suffixes {
#define PGJQ_CHANNEL_SIZE(name, suffix) char name[sizeof suffix];
	PGJQ_CHANNEL_TABLE(PGJQ_CHANNEL_SIZE)
#undef PGJQ_CHANNEL_SIZE
};
#define PGJQ_CHANNEL_SUFFIX_MAX \
	(sizeof(union pgjq_channel_suffixes) - 1 > PGJQ_CHANNEL_SUFFIX_ROOM ? \
	 sizeof(union pgjq_channel_suffixes) - 1 : PGJQ_CHANNEL_SUFFIX_ROOM)

/* The longest schema name whose every channel's name fits an identifier. */
#define PGJQ_SCHEMA_NAME_MAX ((int)(PGJQ_IDENT_MAX - PGJQ_CHANNEL_SUFFIX_MAX))

/* A new string: the channel's name in the schema, unquoted. */
char *pgjq_channel_name(const char *schema, enum pgjq_channel c);

#endif
