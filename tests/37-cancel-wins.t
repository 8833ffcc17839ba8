#!/bin/sh
# A cancel wins on every path that ends an attempt: a job whose handler is
# still cleaning up after the cancel's SIGTERM when its worker's grace
# ends is cancelled, not put back to run again (exec and --pipe); a job
# its worker lost track of is cancelled, not released; no claim takes a
# job whose cancel was asked.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
h=$top_srcdir/tests/handlers
export RUNS="$T/runs"
: > "$RUNS"

state() { sql "select state from all_jobs where id = $1"; }

# The issue's case: cancel, then 0.3 s later SIGTERM to the worker, whose
# 1 s grace ends while the handler still cleans up (2 s).
for mode in exec pipe; do
	if [ $mode = pipe ]; then handler="--pipe -- $h/pipe"; else handler="-- $h/behave"; fi
	j=$(jq-enqueue -q grace$mode '{"do": "cleanup"}')
	jq-worker -q grace$mode --grace 1s --kill-after 4s $handler 2> "$T/w.err" &
	w=$!
	at_exit "kill -9 $w 2>/dev/null"
	wait_for "the $mode job runs" 10 grep -qx "$j" "$RUNS"
	run jq-cancel --json "$j"
	like "$(cat "$T/out")" '"state": *"running"' "$mode: jq-cancel answers that the job is running"
	sleep 0.3
	kill -TERM $w
	wait $w
	is "$?" 0 "$mode: the worker stops with status 0"
	is "$(state "$j")" cancelled "$mode: the job ends cancelled, not put back"
	unlike "$(cat "$T/w.err")" "job $j released" "$mode: the worker does not say it released it"
	like "$(cat "$T/w.err")" "job $j cancelled" "$mode: it says it was cancelled"
	exits 0 "$mode: another worker drains the queue" jq-worker -q grace$mode --drain $handler
	is "$(grep -cx "$j" "$RUNS")" 1 "$mode: and the job never ran again"
done

# A worker that lost track of a job (its renewal names the jobs it holds)
# cancels a job whose cancel was asked rather than putting it back.
lost=$(jq-enqueue -q lost '{}')
kept=$(jq-enqueue -q lost '{}')
wid=$(sql "insert into workers (name, queues, concurrency) values ('test:1', '{lost}', 1) returning id")
sql "update jobs set state = 'running', worker = $wid, attempts = 1, started_at = now(),
     lease_until = now() + interval '1 minute', cancel = (id = $lost)
     where id in ($lost, $kept)" > /dev/null
sql "select renew_leases($wid, '{}'::bigint[], interval '1 minute')" > /dev/null
is "$(state "$lost")" cancelled "a lost job whose cancel was asked is cancelled"
is "$(sql "select state || ' ' || attempts from jobs where id = $kept")" "queued 0" \
	"one without is put back, its attempt not counted"

# Reaping: a job whose lease ran out and whose cancel was asked is
# cancelled, not queued again (running or claimed).
for st in running claimed; do
	r=$(jq-enqueue -q reap '{}')
	sql "update jobs set state = '$st', worker = $wid, attempts = case when '$st' = 'running' then 1 else 0 end,
	     started_at = case when '$st' = 'running' then now() end,
	     lease_until = now() - interval '1 second', cancel = true where id = $r" > /dev/null
	sql "select reap_expired()" > /dev/null
	is "$(state "$r")" cancelled "reaping a $st job whose cancel was asked cancels it"
done

# No claim takes a job whose cancel was asked, whatever put it back.
odd=$(jq-enqueue -q odd '{"do": "ok"}')
sql "update jobs set cancel = true where id = $odd" > /dev/null
exits 0 "a worker drains a queue holding a queued job marked cancelled" \
	jq-worker -q odd --drain -- "$h/behave"
is "$(state "$odd")" queued "that job is not claimed"
done_testing
