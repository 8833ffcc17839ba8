/* Unit tests for lib/job.c: names, ids and states. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "tap.h"

static int
queue_ok(const char *q)
{
	return pgjq_queue_valid(q, strlen(q));
}

int
main(void)
{
	int64_t id = 0, *ids = NULL;
	size_t n = 0, cap = 0;
	char long_name[66];

	char *t, *msg = NULL;
	int pct = 0;

	plan(41);
	ok(queue_ok("default"), "plain name");
	ok(queue_ok("thumbs.v2:eu-west_1"), "all allowed punctuation");
	ok(!queue_ok(""), "empty name");
	ok(!queue_ok("a b"), "space");
	ok(!queue_ok("q'; drop table jobs; --"), "SQL metacharacters");
	ok(!queue_ok("caf\xc3\xa9"), "non-ASCII");
	memset(long_name, 'q', 64);
	long_name[64] = '\0';
	ok(queue_ok(long_name), "64 characters");
	long_name[64] = 'q';
	long_name[65] = '\0';
	ok(!queue_ok(long_name), "65 characters");

	ok(pgjq_id_parse("42", &id) && id == 42, "id 42");
	ok(!pgjq_id_parse("0", &id), "id 0");
	ok(!pgjq_id_parse("-1", &id), "negative id");
	ok(!pgjq_id_parse("12abc", &id), "trailing junk");
	ok(!pgjq_id_parse(" 12", &id), "leading space");
	ok(!pgjq_id_parse("99999999999999999999", &id), "overflow");

	ok(pgjq_id_list_parse("1,2,3", &ids, &n, &cap) && n == 3 && ids[2] == 3, "id list");
	ok(pgjq_id_list_parse("7", &ids, &n, &cap) && n == 4 && ids[3] == 7, "lists append");
	ok(!pgjq_id_list_parse("1,x", &ids, &n, &cap), "bad id in a list");
	ok(!pgjq_id_list_parse("", &ids, &n, &cap), "empty list");
	ok(!pgjq_id_list_parse(",", &ids, &n, &cap), "only a comma");
	free(ids);

	is_str(pgjq_state_name(PGJQ_CANCELLED), "cancelled", "state name");
	is_int(pgjq_state_parse("running"), PGJQ_RUNNING, "state parse");
	is_int(pgjq_state_parse("done"), -1, "unknown state");
	t = pgjq_text_clean("caf\xc3\xa9", 5);
	is_str(t, "caf\xc3\xa9", "valid UTF-8 is kept");
	free(t);
	t = pgjq_text_clean("a\xff" "b", 3);
	is_str(t, "a\xef\xbf\xbd" "b", "an invalid byte becomes U+FFFD");
	free(t);
	t = pgjq_text_clean("\xa9tail", 5);
	is_str(t, "\xef\xbf\xbd" "tail", "a cut character at the start is replaced");
	free(t);
	t = pgjq_text_clean("a\0" "b", 3);
	is_str(t, "a\xef\xbf\xbd" "b", "NUL is replaced");
	free(t);
	t = pgjq_text_clean("\xed\xa0\x80", 3);
	is_str(t, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "a surrogate is not UTF-8");
	free(t);

	/* Progress lines, as a handler writes them on fd 3. */
	ok(pgjq_progress_parse("40 resizing  the photo", &pct, &msg) && pct == 40, "progress with a message");
	is_str(msg, "resizing  the photo", "the message, inner spaces kept");
	free(msg);
	ok(pgjq_progress_parse("100", &pct, &msg) && pct == 100 && msg == NULL, "progress without one");
	ok(pgjq_progress_parse("7   ", &pct, &msg) && pct == 7 && msg == NULL, "trailing spaces are no message");
	ok(pgjq_progress_parse("0 \xff", &pct, &msg) && pct == 0, "a message that is not UTF-8");
	is_str(msg, "\xef\xbf\xbd", "is cleaned");
	free(msg);
	pct = -7;
	msg = NULL;
	ok(!pgjq_progress_parse("101", &pct, &msg), "past 100");
	ok(!pgjq_progress_parse("-1", &pct, &msg), "below 0");
	ok(!pgjq_progress_parse("half", &pct, &msg), "no number");
	ok(!pgjq_progress_parse("", &pct, &msg), "an empty line");
	ok(!pgjq_progress_parse("50%", &pct, &msg), "junk after the number");
	ok(!pgjq_progress_parse("50\tdone", &pct, &msg), "a tab is not the separator");
	ok(!pgjq_progress_parse("99999999999999999999999", &pct, &msg), "overflow");
	ok(pct == -7 && msg == NULL, "a refused line sets nothing");
	return done_testing();
}
