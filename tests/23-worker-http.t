#!/bin/sh
# jq-worker --http: POST each payload; 2xx completes with the body as the
# result, 5xx/429/network errors retry (honouring Retry-After), other 4xx
# fail at once; time limits and many requests at once over kept-alive
# connections.  The server is tests/httpd, on 127.0.0.1.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

"$top_builddir/tests/httpd" "$T/port" "$T" &
srv=$!
at_exit "pkill -P $srv 2>/dev/null; kill $srv 2>/dev/null"   # and the connections it forked
wait_for "the test server listens" 10 test -s "$T/port"
url="http://127.0.0.1:$(cat "$T/port")"

job() { sql "select $2 from all_jobs where id = $1"; }
work() { jq-worker --drain --backoff 50ms "$@"; }

ok1=$(jq-enqueue -q ok '{"n":1,"big":123456789012345678901234567890}')
ok2=$(jq-enqueue -q ok '[1,2,3]')
exits 0 "a draining HTTP worker runs the jobs" work -q ok --http "$url/ok"
is "$(job "$ok1" "state || ' ' || (result->>'big')")" "completed 123456789012345678901234567890" \
	"2xx completes; the JSON body is the result, numbers exact"
is "$(job "$ok2" "result::text")" "[1, 2, 3]" "any JSON value is a result"

t=$(jq-enqueue -q text '{}')
exits 0 "a text reply" work -q text --http "$url/text"
is "$(job "$t" "result::text")" '"all good"' "a body that is not JSON is stored as a string"

f=$(jq-enqueue -q fail '{}')
exits 0 "a 500 reply" work -q fail --http "$url/fail"
is "$(job "$f" "state || ' ' || attempts || ': ' || error")" "failed 3: HTTP 500: the server broke" \
	"5xx is retried until the attempts run out, the body in the error"

b=$(jq-enqueue -q bad '{}')
exits 0 "a 400 reply" work -q bad --http "$url/bad"
is "$(job "$b" "state || ' ' || attempts || ': ' || error")" "failed 1: HTTP 400: no such thing" \
	"other 4xx fail at once"

fl=$(jq-enqueue -q flaky '{}')
exits 0 "a 503 then a 200" work -q flaky --http "$url/flaky"
is "$(job "$fl" "state || ' ' || attempts || ' ' || result::text")" 'completed 1 "second time"' \
	"a retried request can succeed; a 503 with Retry-After is a snooze, its attempt not counted"

bz=$(jq-enqueue -q busy --max-attempts 2 '{}')
exits 0 "a 429 with Retry-After: 1" jq-worker --drain --backoff 1h --max-snoozes 0 -q busy --http "$url/busy"
is "$(job "$bz" "state || ' ' || attempts")" "failed 2" "429 is retried (past --max-snoozes, as attempts)"
ok "after the server's Retry-After, not the 1h backoff" \
	test "$(job "$bz" "extract(epoch from finished_at - started_at) < 60")" = t

sl=$(jq-enqueue -q slow --timeout 300ms --max-attempts 1 '{}')
exits 0 "a reply slower than the time limit" work -q slow --http "$url/slow"
is "$(job "$sl" "state || ': ' || error")" "failed: timed out after 300ms" "the request times out"

nx=$(jq-enqueue -q down --max-attempts 2 '{}')
exits 0 "a server that is not there" work -q down --http "http://127.0.0.1:1/none"
like "$(job "$nx" "state || ' ' || attempts || ': ' || error")" "^failed 2: request failed: " \
	"network errors are retried, then fail"

exits 64 "--http needs an http(s) URL" jq-worker --http "ftp://example.com/x"
exits 64 "--http and a command exclude each other" jq-worker --http "$url/ok" -- true

# Many at once: 300 jobs through 16 slots.
i=0; while [ $i -lt 300 ]; do echo "{\"i\":$i}"; i=$((i + 1)); done | jq-enqueue -q many > /dev/null
exits 0 "300 jobs through 16 concurrent requests" work -q many -c 16 --http "$url/ok"
is "$(sql "select count(*) from history where queue = 'many' and state = 'completed' and (result->>'i') is not null")" 300 \
	"all 300 completed with their own payload echoed"
# libcurl (and the TLS libraries it brings) is loaded by an HTTP worker
# only: an exec worker never maps it.
maps_libcurl() { grep -c 'libcurl' "/proc/$1/maps"; }
jq-worker -q idle-http --http "$url/ok" 2> /dev/null &
hw=$!
jq-worker -q idle-exec -- true 2> /dev/null &
ew=$!
at_exit "kill $hw $ew 2>/dev/null"
wait_for "both workers register" 10 has_worker idle-http 1
wait_for "both workers register" 10 has_worker idle-exec 1
ok "an --http worker has loaded libcurl" test "$(maps_libcurl $hw)" -gt 0
is "$(maps_libcurl $ew)" 0 "an exec worker has not"
kill $hw $ew

done_testing
