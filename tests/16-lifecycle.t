#!/bin/sh
# The schema's transitions (sql/002-lifecycle.sql) that every tool uses:
# finishing releases or cancels dependants and wakes listeners; cancel and
# retry move jobs the documented way.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
s=$JQ_SCHEMA

state() { sql "select state from all_jobs where id = $1"; }

a=$(jq-enqueue '{"a":1}')
b=$(jq-enqueue '{"b":1}')
c=$(jq-enqueue --after "$a,$b" -q later '{"c":1}')
d=$(jq-enqueue --after "$c" '{"d":1}')
is "$(state "$c") $(state "$d")" "scheduled scheduled" "dependants wait"

is "$(sql "select finish_job($a, 'completed', null, '{\"ok\":1}', null)")" t "finish_job completes a live job"
is "$(sql "select state || ' ' || progress || ' ' || result::text from history where id = $a")" 'completed 100 {"ok": 1}' \
	"it is in history, completed, with its result"
is "$(sql "select state || ' ' || waiting from jobs where id = $c")" "scheduled 1" "one dependency left"
is "$(sql "select finish_job($a, 'completed', null, null, null)")" f "finishing a finished job changes nothing"

# The last dependency completing makes the dependant ready, and says so.
psql -X -q -c "LISTEN \"${s}_new\"" -c "LISTEN \"${s}_done\"" -c "SELECT pg_sleep(1.5)" -c "SELECT 1" > "$T/notes" 2>&1 &
sleep 0.5
sql "select finish_job($b, 'completed', null, null, null)" >/dev/null
wait
is "$(state "$c")" queued "the last dependency completing queues the dependant"
like "$(cat "$T/notes")" "\"${s}_done\" with payload \"$b completed\"" "a NOTIFY on _done names the job and its state"
like "$(cat "$T/notes")" "\"${s}_new\" with payload \"later\"" "a NOTIFY on _new names the dependant's queue"

# A worker can only finish the jobs it holds.
sql "update jobs set state = 'running', worker = 7, lease_until = now() + interval '1 hour' where id = $c" >/dev/null
is "$(sql "select finish_job($c, 'completed', 8, null, null)")" f "another worker cannot finish a job"
is "$(sql "select finish_job($c, 'failed', 7, null, 'boom')")" t "its holder can"
is "$(state "$d")" cancelled "a failed dependency cancels the dependant"
is "$(sql "select error from history where id = $d")" "dependency $c failed" "saying which and why"

# Chains are cancelled all the way down.
x=$(jq-enqueue '{"x":1}'); y=$(jq-enqueue --after "$x" '{"y":1}'); z=$(jq-enqueue --after "$y" '{"z":1}')
is "$(sql "select cancel_job($x)")" cancelled "cancel_job cancels a queued job at once"
is "$(state "$y") $(state "$z")" "cancelled cancelled" "and everything that depended on it"
is "$(sql "select error from history where id = $z")" "dependency $y was cancelled" "each saying why"
is "$(sql "select cancel_job($a)")" completed "cancelling a completed job leaves it completed"
is "$(sql "select coalesce(cancel_job(999999), 'none')")" none "cancelling an unknown job returns null"

# A running job is marked and its worker told.
r=$(jq-enqueue '{"r":1}')
sql "update jobs set state = 'running', worker = 3, lease_until = now() + interval '1 hour' where id = $r" >/dev/null
psql -X -q -c "LISTEN \"${s}_cancel\"" -c "SELECT pg_sleep(1)" -c "SELECT 1" > "$T/cancel" 2>&1 &
sleep 0.4
is "$(sql "select cancel_job($r)")" running "cancelling a running job leaves it to its worker"
wait
is "$(sql "select cancel from jobs where id = $r")" t "the job is marked"
like "$(cat "$T/cancel")" "\"${s}_cancel\" with payload \"$r 3\"" "and its worker is told by NOTIFY"

# Retry: failed and cancelled jobs come back fresh; others are left alone.
sql "update history set attempts = 3 where id = $c" >/dev/null
is "$(sql "select retry_job($c)")" queued "retry_job queues a failed job"
is "$(sql "select state || ' ' || attempts || ' ' || (finished_at is null) from jobs where id = $c")" "queued 0 true" \
	"with a fresh set of attempts"
is "$(sql "select retry_job($x)")" queued "retry_job queues a cancelled job"
is "$(sql "select retry_job($a)")" completed "a completed job is not retried"
is "$(sql "select retry_job($c)")" queued "a live job is reported as it is"
k1=$(jq-enqueue --key kk '{}'); sql "select cancel_job($k1)" >/dev/null; k2=$(jq-enqueue --key kk '{}')
is "$(sql "select retry_job($k1)")" key-taken "a job whose key a live job holds is not retried"
done_testing
