#!/bin/sh
# Every option of jq-enqueue, and envelopes overriding them per value.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

job() { sql "select $2 from all_jobs where id = $1"; }

id=$(jq-enqueue -q mail -p -5 --max-attempts 7 --timeout 90s '{"to":"ann"}')
is "$(job "$id" "queue || ' ' || priority || ' ' || max_attempts || ' ' || timeout")" "mail -5 7 00:01:30" \
	"-q, -p, --max-attempts and --timeout are stored"

id=$(jq-enqueue --delay 1h '{}')
is "$(job "$id" state)" scheduled "--delay makes the job scheduled"
is "$(job "$id" "run_at - created_at")" "01:00:00" "run_at is one hour after it was enqueued"

id=$(jq-enqueue --at '2031-02-03 04:05:06+00' '{}')
is "$(job "$id" "state || ' ' || (run_at at time zone 'UTC')")" "scheduled 2031-02-03 04:05:06" "--at sets the time"
id=$(jq-enqueue --at '2001-01-01 00:00+00' '{}')
is "$(job "$id" state)" queued "--at in the past is ready at once"
exits 64 "--at with a time PostgreSQL cannot read is a usage error" jq-enqueue --at 'half past never' '{}'
like "$(cat "$T/err")" "^jq-enqueue: --at: invalid time 'half past never'" "and names it"

# Keys: while a job with the key is unfinished, the key returns it.
a=$(jq-enqueue --key nightly '{"run":1}')
b=$(jq-enqueue --key nightly '{"run":2}')
is "$b" "$a" "the same key in the same queue gives the existing id"
jq-enqueue --json --key nightly '{"run":3}' > "$T/j"
like "$(cat "$T/j")" "\"id\":$a,.*\"new\":false" "--json says the job is not new"
c=$(jq-enqueue -q other --key nightly '{}')
isnt "$c" "$a" "the same key in another queue is another job"
is "$(sql "select count(*) from jobs where key = 'nightly' and queue = 'default'")" 1 "one job holds the key"
is "$(job "$a" "payload->>'run'")" 1 "the first payload is kept"
two=$(printf '{"n":1}\n{"n":2}\n' | jq-enqueue --key batchkey | sort -u | wc -l | tr -d ' ')
is "$two" 1 "two values with one key in one run are one job"
# Once the job is finished, the key is free again.
finish() { sql "select finish_job($1, '$2', null, null, null)" >/dev/null; }
finish "$a" completed
d=$(jq-enqueue --key nightly '{"run":4}')
isnt "$d" "$a" "a finished job's key can be used again"

# Dependencies.
p1=$(jq-enqueue '{"p":1}')
p2=$(jq-enqueue '{"p":2}')
dep=$(jq-enqueue --after "$p1,$p2" '{"child":1}')
is "$(job "$dep" "state || ' ' || waiting || ' ' || after::text")" "scheduled 2 {$p1,$p2}" \
	"--after stores the dependencies and waits for them"
dep2=$(jq-enqueue --after "$p1" --after "$p2" '{"child":2}')
is "$(job "$dep2" "after::text")" "{$p1,$p2}" "--after may be repeated"
dep3=$(jq-enqueue --after "$a" '{"child":3}')
is "$(job "$dep3" "state || ' ' || waiting")" "queued 0" "a completed dependency does not hold a job back"
exits 66 "an unknown dependency exits 66" jq-enqueue --after 999999 '{}'
like "$(cat "$T/err")" "no such job: 999999" "and names it"
is "$(sql "select count(*) from all_jobs where payload = '{}'::jsonb and after = '{999999}'")" 0 "and enqueues nothing"
sql "update history set state = 'failed' where id = $a" >/dev/null  # as if it had failed
dead=$(jq-enqueue --after "$a" '{"child":4}')
is "$(job "$dead" "state || ': ' || error")" "cancelled: dependency $a failed" \
	"a job after a failed one is cancelled, saying why"

# Envelopes: their fields win, what they leave out falls back to the options.
printf '%s\n' \
	'{"payload":{"e":1},"queue":"env","priority":9,"max_attempts":2,"timeout":"5m"}' \
	'{"payload":{"e":2}}' \
	'{"payload":{"e":3},"delay":30,"key":"ek"}' \
	'{"payload":{"e":4},"at":"2032-01-01 00:00+00","after":'"$p1"'}' \
	'{"payload":{"e":5},"queue":null,"key":null}' > "$T/env"
exits 0 "envelopes are enqueued" jq-enqueue -e -q fallback -p 1 < "$T/env"
set -- $(cat "$T/out")
is "$(job "$1" "queue || ' ' || priority || ' ' || max_attempts || ' ' || timeout")" "env 9 2 00:05:00" "envelope fields are used"
is "$(job "$2" "queue || ' ' || priority || ' ' || max_attempts")" "fallback 1 3" "absent fields fall back to the options"
is "$(job "$3" "state || ' ' || (run_at - created_at) || ' ' || key")" "scheduled 00:00:30 ek" "delay as seconds, and a key"
is "$(job "$4" "state || ' ' || (run_at at time zone 'UTC') || ' ' || after::text")" "scheduled 2032-01-01 00:00:00 {$p1}" \
	"at and after"
is "$(job "$5" "queue || ' ' || coalesce(key, '-')")" "fallback -" "null fields fall back to the options"
is "$(job "$2" "payload::text")" '{"e": 2}' "the payload is the envelope's payload"
done_testing
