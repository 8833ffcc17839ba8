#!/bin/sh
# jq-retry: by id or every failed job of a queue, atomically, --dry-run;
# jobs that are not failed or cancelled are reported and left alone.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

finish() { sql "select finish_job($1, '$2', null, null, 'boom')" >/dev/null; }
state() { sql "select state from all_jobs where id = $1"; }

f1=$(jq-enqueue -q q1 '{"n":1}'); finish "$f1" failed
f2=$(jq-enqueue -q q1 '{"n":2}'); finish "$f2" failed
cx=$(jq-enqueue -q q1 '{"n":3}'); sql "select cancel_job($cx)" >/dev/null
ok=$(jq-enqueue -q q1 '{"n":4}'); finish "$ok" completed
live=$(jq-enqueue -q q1 '{"n":5}')
other=$(jq-enqueue -q q2 '{}'); finish "$other" failed
sql "update history set attempts = 3 where id = $f1" >/dev/null

exits 0 "--dry-run exits 0" jq-retry -n -q q1 --failed
is "$(cat "$T/out")" "$f1
$f2" "and prints what would be retried"
is "$(state "$f1") $(state "$f2")" "failed failed" "but changes nothing"

exits 0 "retrying a failed job by id" jq-retry "$f1"
is "$(cat "$T/out")" "$f1" "prints its id"
is "$(sql "select state || ' ' || attempts from jobs where id = $f1")" "queued 0" "it is queued with fresh attempts"

exits 0 "a cancelled job can be retried too" jq-retry --json "$cx"
is "$(jget .id .retried .state < "$T/out")" "[$cx,true,\"queued\"]" "--json says so"

exits 1 "a job that is not failed or cancelled: exit 1" jq-retry "$f2" "$ok" "$live"
is "$(cat "$T/out")" "$f2" "the failed one is retried all the same"
like "$(cat "$T/err")" "^jq-retry: job $ok is completed, not failed or cancelled; not retried$" "a completed job is named"
like "$(cat "$T/err")" "^jq-retry: job $live is queued, not failed or cancelled; not retried$" \
	"and a live one, though retry_job() answers 'queued' for it"
is "$(state "$ok")" completed "and left alone"

exits 66 "an unknown id: exit 66, over 1" jq-retry "$ok" 999999
like "$(cat "$T/err")" "job 999999: no such job" "it is named"

# --failed takes every failed job of the queue, and only that queue's.
g1=$(jq-enqueue -q q1 '{}'); finish "$g1" failed
g2=$(jq-enqueue -q q1 '{}'); finish "$g2" failed
exits 0 "--failed retries a queue's failed jobs" jq-retry -q q1 --failed
is "$(cat "$T/out")" "$g1
$g2" "and prints their ids"
is "$(state "$other")" failed "another queue's failed job stays"
ok "--failed on a queue with none" jq-retry -q q1 --failed
is "$(cat "$T/out")" "" "prints nothing"
h1=$(jq-enqueue -q q3 '{}'); finish "$h1" failed
h2=$(jq-enqueue -q q4 '{}'); finish "$h2" failed
exits 0 "-q twice: --failed retries both queues' failed jobs" jq-retry -q q3 -q q4 --failed
is "$(sort -n "$T/out" | tr '\n' ' ')" "$h1 $h2 " "both are retried"
is "$(state "$other")" failed "a third queue's failed job stays"

# Two runs at once never retry a job twice.
for i in 1 2 3 4 5 6 7 8; do id=$(jq-enqueue -q race '{}'); finish "$id" failed; done
jq-retry -q race --failed > "$T/r1" &
jq-retry -q race --failed > "$T/r2" &
wait
is "$(cat "$T/r1" "$T/r2" | sort | uniq -d)" "" "two concurrent runs retry no job twice"
is "$(cat "$T/r1" "$T/r2" | wc -l | tr -d ' ')" 8 "and together retry all 8"

# A key held by a live job.
k1=$(jq-enqueue --key once '{}'); sql "select cancel_job($k1)" >/dev/null
k2=$(jq-enqueue --key once '{}')
exits 1 "a job whose key a live job holds is not retried" jq-retry "$k1"
like "$(cat "$T/err")" "job $k1: a live job in its queue holds its key" "saying why"

# Atomic: a database failure midway retries nothing.
h1=$(jq-enqueue -q atom '{}'); finish "$h1" failed
h2=$(jq-enqueue -q atom '{}'); finish "$h2" failed
sql "create function boom() returns trigger language plpgsql as \$\$ begin
	if new.id = $h2 then raise exception 'refused'; end if; return new; end \$\$" \
    "create trigger boom before insert on jobs for each row execute function boom()" >/dev/null
fails "a failure on the second job" jq-retry "$h1" "$h2"
is "$(cat "$T/out")" "" "prints no id"
is "$(state "$h1") $(state "$h2")" "failed failed" "and retries neither"
sql "drop trigger boom on jobs" >/dev/null

exits 64 "neither ids nor --failed is a usage error" jq-retry
exits 64 "both is a usage error" jq-retry --failed 1
exits 64 "-q with ids is a usage error" jq-retry -q q1 1
done_testing
