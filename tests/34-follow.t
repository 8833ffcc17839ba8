#!/bin/sh
# jq-status --follow in a pipe: one JSON event per line, written at once,
# driven by the worker's NOTIFYs (sent here by hand), ending with --wait's
# exit status; and following a queue's running jobs.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
s=$JQ_SCHEMA

start() { sql "update jobs set state = 'running', worker = 7, lease_until = now() + interval '1 hour', attempts = attempts + 1, started_at = now() where id = $1" >/dev/null; }
progress() {
	sql "update jobs set progress = $2, message = nullif('$3', '') where id = $1" \
	    "select pg_notify('${s}_progress', '$1 $2' || coalesce(' ' || nullif('$3', ''), ''))" >/dev/null
}
finish() { sql "select finish_job($1, '$2', null, null, ${3:-null})" >/dev/null; }
events() { grep -c "\"event\":\"$2\",\"id\":$1," "$T/ev"; }
has() { [ "$(events "$1" "$2")" -ge "${3:-1}" ]; }

a=$(jq-enqueue '{}'); b=$(jq-enqueue '{}'); done0=$(jq-enqueue '{}'); finish "$done0" completed
timeout 20 jq-status -f "$a" "$b" "$done0" > "$T/ev" 2> "$T/ev.err" &
pid=$!
at_exit "kill $pid"
wait_for "the first events" 10 has "$b" job
is "$(head -3 "$T/ev" | jget -r .event .id .state | sort)" \
"done $done0 completed
job $a queued
job $b queued" "one event per job first: its state; a finished job's is done"
start "$a"
wait_for "the start is seen" 10 has "$a" state
like "$(cat "$T/ev")" "\"event\":\"state\",\"id\":$a,.*\"state\":\"running\"" "a state event when it starts"
progress "$a" 40 "resizing photo"
wait_for "a progress event" 10 has "$a" progress
like "$(cat "$T/ev")" "\"event\":\"progress\",\"id\":$a,.*\"progress\":40,\"message\":\"resizing photo\"" \
	"the progress NOTIFY becomes an event, at once (the pipe is not buffered)"
progress "$a" 90 ""
wait_for "a second progress event" 10 has "$a" progress 2
like "$(grep progress "$T/ev" | tail -1)" "\"progress\":90,\"message\":null" "each change is an event"
finish "$a" completed
wait_for "a done event" 10 has "$a" done
like "$(cat "$T/ev")" "\"event\":\"done\",\"id\":$a,.*\"state\":\"completed\",.*\"progress\":100" "done, completed"
ok "still following the job left" kill -0 $pid
finish "$b" failed "'no such file'"
wait $pid
is "$?" 1 "exit 1 when one of them failed"
like "$(tail -1 "$T/ev")" "\"event\":\"done\",\"id\":$b,.*\"state\":\"failed\",.*\"error\":\"no such file\"" \
	"the last event is the failure, with its error"
is "$(jget . < "$T/ev" | wc -l | tr -d ' ')" "$(wc -l < "$T/ev" | tr -d ' ')" "every line is a JSON object"
is "$(cat "$T/ev.err")" "" "nothing on stderr"

exits 0 "following finished, completed jobs ends at once with 0" timeout 10 jq-status -f "$done0"
exits 66 "an unknown id: 66" timeout 10 jq-status -f 999999
exits 64 "--follow with --state is a usage error" jq-status -f --state failed

# Without ids: the queue's running jobs, until a signal.
x=$(jq-enqueue -q top '{}'); y=$(jq-enqueue -q top '{}'); z=$(jq-enqueue -q other '{}')
start "$x"
jq-status -f -q top > "$T/ev" 2> "$T/ev.err" &
pid=$!
at_exit "kill $pid"
wait_for "the running job" 10 has "$x" job
is "$(jget -r .id < "$T/ev")" "$x" "only the queue's running job"
start "$y"; start "$z"
wait_for "a job that starts" 10 has "$y" job
progress "$y" 10 "step one"
wait_for "its progress" 10 has "$y" progress
finish "$x" completed
wait_for "the finished one" 10 has "$x" done
unlike "$(cat "$T/ev")" "\"id\":$z," "another queue's job is not followed"
kill -TERM $pid
wait $pid
is "$?" 143 "a signal ends it"
done_testing
