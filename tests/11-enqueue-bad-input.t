#!/bin/sh
# Bad input anywhere: a clear error naming the line, exit 65, and nothing
# enqueued at all.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

count() { sql "select count(*) from jobs"; }

# bad_input DESC LINE PATTERN FILE: enqueueing FILE fails with 65 at LINE,
# the message matches PATTERN, nothing is in the table, nothing on stdout.
bad_input() {
	exits 65 "$1: exit 65" jq-enqueue < "$4"
	like "$(head -1 "$T/err")" "^jq-enqueue: stdin:$2: $3" "$1: the error names line $2"
	is "$(cat "$T/out")" "" "$1: no ids printed"
	is "$(count)" 0 "$1: nothing enqueued"
}

printf '{"a": }\n{"b":2}\n' > "$T/f"
bad_input "bad first line" 1 "invalid JSON: " "$T/f"
printf '{"a":1}\n{"b":2}\n{"c":3\n' > "$T/f"
bad_input "truncated last value" 3 "truncated input" "$T/f"
printf '{"a":1}\n{"b":2}\n[1,2,]\n' > "$T/f"
bad_input "bad last line" 3 "invalid JSON: " "$T/f"
printf '{"a":1}\n{\n  "b": 2,\n  "c": nope\n}\n' > "$T/f"
bad_input "error inside a multi-line value" 4 "invalid JSON: " "$T/f"
printf '{"a":1}\n{"b":"x\000y"}\n' > "$T/f"
bad_input "NUL byte" 2 "NUL byte in input" "$T/f"
printf '{"a":1}\n{"b":"\377\376"}\n' > "$T/f"
bad_input "invalid UTF-8" 2 "invalid JSON: " "$T/f"
printf '{"a":1}\n{"b":"\\u0000"}\n' > "$T/f"
bad_input "\\u0000, which jsonb cannot store" 2 "invalid JSON: " "$T/f"
unlike "$(cat "$T/err")" "JSON_ALLOW_NUL" "the message names no library flag"
like "$(cat "$T/err")" 'u0000 in a string, which PostgreSQL' "but the reason"
printf '1\n2\n3 }\n' > "$T/f"
bad_input "stray bracket" 3 "invalid JSON: " "$T/f"
printf '1\n2\n4true\n' > "$T/f"
bad_input "values run together" 3 "invalid JSON: " "$T/f"

# A payload just over the limit is refused; one at the limit is taken.
# xs N: a JSON string of N x's.  (awk built it one byte at a time, in a minute.)
xs() { printf '"'; head -c "$1" /dev/zero | tr '\0' x; printf '"\n'; }
xs 1048574 > "$T/max"
exits 0 "a payload of exactly 1 MiB is enqueued" jq-enqueue < "$T/max"
sql "truncate jobs" >/dev/null
{ echo '"ok"'; xs 1048575; } > "$T/big"
bad_input "a payload over 1 MiB" 2 "value too large" "$T/big"
{ printf '{"payload":'; cat "$T/max" | tr -d '\n'; printf 'x}\n'; } | sed 's/"x}$/x"}/' > "$T/envbig"
exits 65 "an envelope's payload over 1 MiB is refused" jq-enqueue -e < "$T/envbig"
like "$(cat "$T/err")" "^jq-enqueue: stdin:1: payload too large" "and says so"

# Envelopes: wrong types are bad data, with the field named.
envelope_bad() {
	printf '{"payload":1}\n%s\n' "$2" > "$T/env"
	exits 65 "envelope: $1" jq-enqueue -e < "$T/env"
	like "$(head -1 "$T/err")" "^jq-enqueue: stdin:2: $3" "envelope: $1: line and cause named"
	is "$(count)" 0 "envelope: $1: nothing enqueued"
}
envelope_bad "not an object" '[1]' "envelope must be a JSON object"
envelope_bad "no payload" '{"queue":"q"}' 'envelope has no "payload"'
envelope_bad "unknown field" '{"payload":1,"prio":1}' 'unknown envelope field "prio"'
envelope_bad "queue not a string" '{"payload":1,"queue":5}' 'envelope field "queue"'
envelope_bad "bad queue name" '{"payload":1,"queue":"a;b"}' 'envelope field "queue"'
envelope_bad "priority not an integer" '{"payload":1,"priority":1.5}' 'envelope field "priority"'
envelope_bad "priority a string" '{"payload":1,"priority":"1"}' 'envelope field "priority"'
envelope_bad "bad delay" '{"payload":1,"delay":"soon"}' 'envelope field "delay"'
envelope_bad "negative delay" '{"payload":1,"delay":-1}' 'envelope field "delay"'
envelope_bad "max_attempts 0" '{"payload":1,"max_attempts":0}' 'envelope field "max_attempts"'
envelope_bad "timeout zero" '{"payload":1,"timeout":"0s"}' 'envelope field "timeout"'
envelope_bad "key not a string" '{"payload":1,"key":7}' 'envelope field "key"'
envelope_bad "after not ids" '{"payload":1,"after":["x"]}' 'envelope field "after"'
envelope_bad "duplicate field" '{"payload":1,"payload":2}' 'invalid JSON: duplicate object key'
envelope_bad "delay and at" '{"payload":1,"delay":"1s","at":"tomorrow"}' 'envelope fields "delay" and "at"'

# A bad time is caught by the server, and still nothing is enqueued.
printf '{"payload":1,"key":"k"}\n{"payload":2,"at":"not a time"}\n' > "$T/env"
exits 65 "envelope: a time PostgreSQL cannot read" jq-enqueue -e < "$T/env"
like "$(head -1 "$T/err")" "^jq-enqueue: stdin:2: .*not a time" "names the line and the value"
is "$(count)" 0 "nothing enqueued, not even the keyed job before it"

# Line 1,000,000: a million values read, the last one bad, nothing kept.
awk 'BEGIN { for (i = 1; i < 1000000; i++) printf "{\"i\":%d}\n", i; print "{\"i\":" }' > "$T/million"
exits 65 "a bad value at line 1,000,000" jq-enqueue < "$T/million"
like "$(head -1 "$T/err")" "^jq-enqueue: stdin:1000000: truncated input" "the error names line 1000000"
is "$(count)" 0 "none of the 999,999 good values was enqueued"
is "$(cat "$T/out")" "" "no ids printed"
done_testing
