#!/bin/sh
# jq-enqueue's main job: values in, one id out per value, in input order,
# payloads stored exactly.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

jobs() { sql "select $1 from jobs order by id"; }

# NDJSON, whitespace-separated and pretty-printed values in one stream.
printf '{"n":1}\n{"n":2} {"n":3}\n{\n  "n": 4,\n  "deep": {"a": [1, 2]}\n}\n5\n"six"\n' > "$T/in"
exits 0 "a mixed stream is enqueued" jq-enqueue < "$T/in"
is "$(wc -l < "$T/out" | tr -d ' ')" 6 "one id per value"
is "$(cat "$T/err")" "" "nothing on stderr"
is "$(cat "$T/out" | tr '\n' ' ')" "$(jobs id | tr '\n' ' ')" "the ids are the jobs' ids, in order"
is "$(jobs "payload::text" | tr '\n' '|')" '{"n": 1}|{"n": 2}|{"n": 3}|{"n": 4, "deep": {"a": [1, 2]}}|5|"six"|' \
	"payloads are stored as given, in input order"
is "$(sql "select distinct queue || '/' || state || '/' || priority || '/' || max_attempts from jobs")" "default/queued/0/3" \
	"defaults: queue default, queued, priority 0, 3 attempts"

# Input order holds across COPY rounds: 12001 values.
sql "truncate jobs" >/dev/null
i=0; while [ $i -lt 12001 ]; do echo "{\"i\":$i}"; i=$((i + 1)); done > "$T/many"
exits 0 "12001 values are enqueued" jq-enqueue < "$T/many"
is "$(wc -l < "$T/out" | tr -d ' ')" 12001 "12001 ids"
ids=$(tr '\n' ',' < "$T/out" | sed 's/,$//')
is "$(sql "select count(*) from unnest('{$ids}'::bigint[]) with ordinality o(id, n) join jobs j on j.id = o.id and (j.payload->>'i')::int = o.n - 1")" \
	12001 "the nth id printed is the job of the nth value"

# Arguments are payloads; stdin is then not read.
sql "truncate jobs" >/dev/null
exits 0 "payloads as arguments" jq-enqueue '{"a":1}' '[1,2]' '"str"' 42 < "$T/in"
is "$(wc -l < "$T/out" | tr -d ' ')" 4 "one id per argument, stdin ignored"
is "$(jobs "payload::text" | tr '\n' '|')" '{"a": 1}|[1, 2]|"str"|42|' "argument payloads in order"
exits 65 "a bare word argument is invalid JSON" jq-enqueue hello
like "$(cat "$T/err")" "^jq-enqueue: arg 1: invalid JSON" "the argument is named"

# Exact payloads: big integers, precise decimals, Unicode, escapes.
sql "truncate jobs" >/dev/null
{ printf '%s\n' '{"big":123456789012345678901234567890,"dec":0.1,"u":"h\u00e9llo \u2603","e":"tab\tnl\nq\"bs\\"}' '"caf\u00e9"'
  printf '"na\303\257ve"\n'; } > "$T/exact"
exits 0 "exact payloads are accepted" jq-enqueue < "$T/exact"
is "$(jobs "payload->>'big'" | head -1)" "123456789012345678901234567890" "an integer beyond 64 bits survives"
is "$(jobs "payload->>'dec'" | head -1)" "0.1" "0.1 stays 0.1"
is "$(jobs "payload->>'u'" | head -1)" "héllo ☃" "Unicode escapes decode"
is "$(jobs "payload->>'e'" | head -2 | od -c | head -1)" "$(printf 'tab\tnl\nq"bs\\\n' | od -c | head -1)" "escaped control characters survive COPY"
is "$(jobs "payload #>> '{}'" | tail -1)" "naïve" "raw UTF-8 is stored as it is"

# --json: one object per value.
sql "truncate jobs" >/dev/null
printf '1\n2\n' | jq-enqueue --json -q thumbs > "$T/json"
is "$(sed -n 1p "$T/json" | sed 's/"id":[0-9]*/"id":N/')" '{"id":N,"queue":"thumbs","state":"queued","new":true,"source":"stdin:1"}' \
	"--json prints one object per value"
is "$(wc -l < "$T/json" | tr -d ' ')" 2 "two objects for two values"

# No input: nothing to do, nothing printed, success.
exits 0 "empty input is fine" jq-enqueue < /dev/null
is "$(cat "$T/out")" "" "and prints nothing"
exits 0 "white space only is fine" sh -c 'printf "  \n\n\t" | jq-enqueue'

# Pipes: a value is enqueued as soon as it is complete.
exits 0 "a value without a trailing newline" sh -c 'printf "{\"last\":true}" | jq-enqueue'
is "$(sql "select count(*) from jobs where payload ? 'last'")" 1 "is enqueued"
done_testing
