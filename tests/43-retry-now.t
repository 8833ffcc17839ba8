#!/bin/sh
# jq-retry --now: a scheduled job is queued at once, attempts untouched,
# and a worker runs it; others are named and left alone.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
h=$top_srcdir/tests/handlers
export RECORD="$T/ran"
: > "$RECORD"

state() { sql "select state || ' ' || attempts from all_jobs where id = $1"; }

late=$(jq-enqueue -q n --delay 1h '{}')
sql "update jobs set attempts = 1 where id = $late" > /dev/null
live=$(jq-enqueue -q n '{}')
dep=$(jq-enqueue -q n --after "$live" --delay 1h '{}')
is "$(state "$late")" "scheduled 1" "a job delayed an hour is scheduled"

exits 64 "--now without ids" jq-retry --now
exits 64 "--now with -q" jq-retry --now -q n "$late"
exits 64 "--now with --failed" jq-retry --now --failed
exits 0 "--now --dry-run" jq-retry -n --now "$late"
is "$(cat "$T/out")" "$late" "says what it would queue"
is "$(state "$late")" "scheduled 1" "but changes nothing"

exits 1 "a queued job and one waiting for dependencies: exit 1" jq-retry --now "$late" "$live" "$dep"
is "$(cat "$T/out")" "$late" "the scheduled one is queued all the same"
like "$(cat "$T/err")" "job $live is queued, not scheduled" "the queued one is named"
like "$(cat "$T/err")" "job $dep is scheduled waiting for its dependencies" "and the one waiting"
is "$(state "$late")" "queued 1" "queued now, its attempts as they were"
is "$(state "$dep")" "scheduled 0" "the waiting one is still scheduled"
exits 66 "an unknown id: exit 66" jq-retry --now 999999
exits 1 "--json, a job already queued: exit 1" jq-retry --now --json "$late"
is "$(jget .id .retried < "$T/out")" "[$late,false]" "says a queued job was not moved"

jq-worker -q n --drain -- "$h/record" 2> "$T/w.err"
like "$(cat "$RECORD")" "^$late\$" "a worker runs it at once"
is "$(state "$late")" "completed 2" "as its second attempt"
done_testing
