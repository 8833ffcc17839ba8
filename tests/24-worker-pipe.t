#!/bin/sh
# jq-worker --pipe: one handler process per slot takes job after job as
# JSON lines and answers each with one.  Results, failures, progress, time
# limits, cancels and signals as for exec handlers; handlers that die,
# break the protocol, quit between jobs or never start; the two examples.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
h=$top_srcdir/tests/handlers
export STARTS="$T/starts"
# Handlers here sleep 61 s where they hang, so other tests' sleeps are not counted.
export HANG=61

job() { sql "select $2 from all_jobs where id = $1"; }
work() { jq-worker --drain --backoff 50ms --kill-after 500ms "$@"; }
p() { jq-enqueue -q "$1" "{\"do\":\"$2\"}"; }
starts() { grep -c '^start' "$STARTS"; }
ended() { grep -c '^exit' "$STARTS"; }
count() { sql "select count(*) from all_jobs where $1"; }
has() { test "$(count "$1")" -ge "$2"; }
hung() { pgrep -f 'sleep 61' | wc -l | tr -d ' '; }

exits 64 "--pipe needs a command" jq-worker --pipe
exits 64 "--pipe and --http exclude each other" jq-worker --pipe --http http://127.0.0.1:1/ -- "$h/pipe"

# Many jobs through few processes.
: > "$STARTS"
i=0; while [ $i -lt 200 ]; do echo '{"do":"ok"}'; i=$((i + 1)); done | jq-enqueue -q many > /dev/null
exits 0 "200 jobs through 3 persistent handlers" work -q many -c 3 --pipe -- "$h/pipe"
is "$(cat "$T/out")" "" "nothing on stdout"
like "$(cat "$T/err")" "job [0-9]+ \\(many\\) started: attempt 1/3" "job events as usual"
is "$(count "queue = 'many' and state = 'completed'")" 200 "all 200 completed"
ok "by at most 3 handler processes ($(starts) started)" test "$(starts)" -le 3
is "$(sql "select count(distinct result->>'pid') from history where queue = 'many'")" "$(starts)" \
	"each answered with its own pid"
is "$(ended)" "$(starts)" "every handler saw the end of stdin and exited"

# What a handler is sent, and what its answers become.
: > "$STARTS"
ok1=$(jq-enqueue -q r --max-attempts 5 '{"do":"ok","big":123456789012345678901234567890,"t":"a\nb"}')
big=$(p r big); text=$(p r text); none=$(p r none)
exits 0 "results" work -q r --pipe -- "$h/pipe"
is "$(job "$ok1" "(result->'line') - 'payload'::text")" \
	"{\"id\": $ok1, \"queue\": \"r\", \"attempt\": 1, \"max_attempts\": 5}" \
	"each job is a line with its id, queue, attempt and max_attempts"
is "$(job "$ok1" "result->'line'->'payload' = payload")" t "and its payload, exactly"
is "$(job "$big" "result::text")" '{"s": "café", "x": 0.1, "big": 123456789012345678901234567890}' \
	"a result is stored as written, numbers exact"
is "$(job "$text" "result::text")" '"plain words"' "any JSON value is a result"
is "$(job "$none" "state || ' ' || coalesce(result::text, 'NULL')")" "completed null" "no result: null"
is "$(starts)" 1 "one handler did it all"

# Failures.
f2=$(p f fail-twice); f=$(p f fail); bad=$(p f bad); qf=$(jq-enqueue -q f --max-attempts 1 '{"do":"quiet-fail"}')
exits 0 "failures" work -q f -c 2 --pipe -- "$h/pipe"
is "$(job "$f2" "state || ' ' || attempts || ' ' || result::text")" 'completed 3 "third time"' \
	"a failed attempt is retried"
like "$(cat "$T/err")" "job $f2 failed: attempt 1/3: attempt 1 failed; retry in" "with its error in the event"
is "$(job "$f" "state || ' ' || attempts || ': ' || error")" "failed 3: it went wrong" \
	"failing every attempt ends failed, with the handler's error"
is "$(job "$bad" "state || ' ' || attempts || ': ' || error")" "failed 1: cannot use this payload" \
	'"retry":false fails the job at once'
is "$(job "$qf" "error")" "failed: the reason, on stderr" "no error given: the job's stderr says it"

# Progress, and stderr passed through.
: > "$STARTS"
pr=$(p pg progress); n=$(p pg noisy)
psql -X -q -c "LISTEN \"${JQ_SCHEMA}_progress\"" -c "SELECT pg_sleep(3)" -c "SELECT 1" > "$T/notes" 2>&1 &
listener=$!
sleep 0.5
exits 0 "progress" work -q pg --pipe -- "$h/pipe"
wait $listener
like "$(cat "$T/notes")" "payload \"$pr (10 starting|90 nearly)\"" "progress lines are published with NOTIFY"
is "$(job "$pr" "state || ' ' || message")" "completed nearly" "the last report is kept"
like "$(cat "$T/err")" "job $pr: ignoring a progress line: \"progress\" is not a number from 0 to 100" \
	"a bad progress line is reported, not fatal"
like "$(cat "$T/err")" "job $n: a word on stderr" "stderr lines are passed on, named by their job"

# Time limits: the handler is stopped, the attempt fails, the slot starts another.
: > "$STARTS"
t1=$(jq-enqueue -q t --timeout 300ms --max-attempts 1 '{"do":"hang"}')
t2=$(p t ok)
exits 0 "a job over its time limit" work -q t --pipe -- "$h/pipe"
is "$(job "$t1" "state || ': ' || error")" "failed: timed out after 300ms" "times out"
is "$(job "$t2" state)" completed "the next job runs in a new handler"
is "$(starts)" 2 "(two starts)"
is "$(hung)" 0 "nothing the stopped handler started is left"

# A handler that dies in the middle of a job.
: > "$STARTS"
d=$(jq-enqueue -q d --max-attempts 2 '{"do":"die"}'); d2=$(p d ok)
exits 0 "a handler dying mid-job" work -q d --pipe -- "$h/pipe"
is "$(job "$d" "state || ' ' || attempts || ': ' || error")" \
	"failed 2: the handler exited with status 3 before answering: dying on job $d" \
	"fails the attempt, saying how it died and what it said"
is "$(job "$d2" state)" completed "the slot starts another for the next job"
unlike "$(cat "$T/err")" "between jobs" "no more is said of its death"

# Lines that break the protocol fail the job in flight; the handler is replaced.
: > "$STARTS"
g=$(jq-enqueue -q g --max-attempts 1 '{"do":"garbage"}')
wi=$(jq-enqueue -q g --max-attempts 1 '{"do":"wrong-id"}')
mb=$(jq-enqueue -q g --max-attempts 1 '{"do":"maybe"}')
g2=$(p g ok)
exits 0 "handlers breaking the protocol" work -q g --pipe -- "$h/pipe"
is "$(job "$g" "state || ': ' || error")" \
	"failed: bad line from the handler: not JSON ('[' or '{' expected near 'hello'): 'hello world'" \
	"a line that is not JSON"
is "$(job "$wi" "error")" \
	"bad line from the handler: it is about job $((wi + 1000)), but job $wi is in flight: '{\"id\":$((wi + 1000)),\"status\":\"completed\"}'" \
	"an answer for another job"
like "$(job "$mb" "error")" "^bad line from the handler: \"status\" is neither \"completed\" nor \"failed\"" \
	"an unknown status"
like "$(cat "$T/err")" "slot 1 \\(pid [0-9]+\\): job $g: bad line from the handler: not JSON" \
	"each is reported naming the slot and the job"
is "$(job "$g2" state)" completed "and the jobs after them run"
is "$(starts)" 4 "in a new handler each time"

gb=$(jq-enqueue -q gb --max-attempts 1 '{"do":"ok"}')
PIPE_START=banner exits 0 "a handler greeting on stdout" work -q gb --pipe -- "$h/pipe"
like "$(job "$gb" "state || ': ' || error")" "^failed: bad line from the handler: not JSON .*'ready for work'" \
	"fails the job it was started for"

# Handlers that quit between jobs are replaced quietly, and lose no job,
# even one sent as they quit.
: > "$STARTS"
i=0; while [ $i -lt 10 ]; do echo '{"do":"quit"}'; echo '{"do":"ok"}'; i=$((i + 1)); done |
	jq-enqueue -q qu > /dev/null
exits 0 "handlers quitting after some jobs" work -q qu --pipe -- "$h/pipe"
is "$(count "queue = 'qu' and state = 'completed' and attempts = 1")" 20 "every job completed at its first attempt"
ok "a handler started after each quit ($(starts) starts)" test "$(starts)" -ge 10
unlike "$(cat "$T/err")" "slot|between jobs|before answering" "and nothing is said about it"

# A handler that dies before it can take a job: the jobs fail, the restarts slow down.
: > "$STARTS"
for i in 1 2 3; do jq-enqueue -q ds --max-attempts 2 '{"do":"ok"}' > /dev/null; done
PIPE_START=die exits 0 "a handler dying at start" work -q ds --pipe -- "$h/pipe"
is "$(sql "select string_agg(distinct state || ' ' || attempts || ': ' || error, ',') from history where queue = 'ds'")" \
	"failed 2: the handler exited with status 1 before answering: cannot start: no configuration" \
	"each attempt fails with what it said"
like "$(cat "$T/err")" "slot 1: the handler keeps dying before it answers a job; starting the next in" \
	"the slot waits longer and longer before starting it again"

# A handler that stays after stdin ends is stopped once the wind-down runs out.
p l ok > /dev/null
PIPE_END=linger exits 0 "a handler that does not exit at EOF" work -q l --grace 300ms --pipe -- "$h/pipe"
is "$(hung)" 0 "is stopped when the worker leaves"

# Cancelling a running job: its handler is stopped, the slot starts another.
: > "$STARTS"
c=$(p can hang)
jq-worker -q can --kill-after 500ms --pipe -- "$h/pipe" 2> "$T/c.err" &
w=$!
at_exit "kill -9 $w 2>/dev/null"
wait_for "the job runs" 10 has "id = $c and state = 'running'" 1
is "$(sql "select cancel_job($c)")" running "cancel_job asks the worker"
wait_for "the job is cancelled" 10 has "id = $c and state = 'cancelled'" 1
is "$(job "$c" "state || ' ' || attempts || ': ' || error")" "cancelled 1: cancelled" "the job ends cancelled"
c2=$(p can ok)
wait_for "the next job completes" 10 has "id = $c2 and state = 'completed'" 1
is "$(job "$c2" state)" completed "the worker goes on with a new handler"
is "$(starts)" 2 "(two starts)"
kill -TERM $w
wait $w
is "$?" 0 "and stops on SIGTERM"
is "$(ended)" 1 "the new handler exits at the end of stdin"

# SIGTERM with a job in flight: it finishes, then the handler sees EOF.
: > "$STARTS"
s=$(p term slow)
NAP=1 jq-worker -q term --grace 10s --pipe -- "$h/pipe" 2> "$T/t.err" &
w=$!
wait_for "the job runs" 10 has "id = $s and state = 'running'" 1
kill -TERM $w
wait $w
is "$?" 0 "SIGTERM: the worker exits 0"
is "$(job "$s" state)" completed "after the job in flight has finished"
is "$(ended)" 1 "and its handler has exited"

# SIGTERM, grace too short: the job is put back, the handler stopped.
s=$(p term2 hang)
jq-worker -q term2 --grace 300ms --kill-after 300ms --pipe -- "$h/pipe" 2> "$T/t2.err" &
w=$!
wait_for "the job runs" 10 has "id = $s and state = 'running'" 1
kill -TERM $w
wait $w
is "$?" 0 "the worker exits 0 after its grace period"
is "$(sql "select state || ' ' || attempts from jobs where id = $s")" "queued 0" \
	"the unfinished job is queued again, the attempt not counted"
like "$(cat "$T/t2.err")" "job $s released" "and the worker says so"
is "$(hung)" 0 "its handler is gone"

# The examples.
sh1=$(jq-enqueue -q ex '{"anything":1}')
exits 0 "examples/pipe-handler.sh" work -q ex --pipe -- "$top_srcdir/examples/pipe-handler.sh"
like "$(job "$sh1" "state || ' ' || result::text")" '^completed \{"handled_by": [0-9]+\}$' "answers every job alike"
if command -v python3 > /dev/null 2>&1; then
	i=0; while [ $i -lt 20 ]; do echo '{"text":"three little words"}'; i=$((i + 1)); done | jq-enqueue -q py > /dev/null
	pb=$(jq-enqueue -q py '{"no":"text"}')
	exits 0 "examples/pipe-handler.py" work -q py -c 2 --pipe -- "$top_srcdir/examples/pipe-handler.py"
	is "$(sql "select count(*) from history where queue = 'py' and state = 'completed' and (result->>'words')::int = 3")" 20 \
		"counts the words of each payload"
	ok "in at most 2 processes" test "$(sql "select count(distinct result->>'pid') from history where queue = 'py'")" -le 2
	is "$(job "$pb" "state || ' ' || attempts || ': ' || error")" 'failed 1: the payload has no "text" string' \
		"and fails a payload it cannot use, at once"
else
	skip "no python3" 4
fi
# A --pipe command that cannot be run: each attempt fails, saying why.
printf '#!%s/no-such-shell\n' "$T" > "$T/bad-interp" && chmod 755 "$T/bad-interp"
nx=$(jq-enqueue -q pipe-nx --max-attempts 2 '{}')
exits 0 "a --pipe handler whose interpreter does not exist: the worker drains the queue" \
	work -q pipe-nx --pipe -- "$T/bad-interp"
is "$(job "$nx" "state || ' ' || attempts || ' ' || error")" \
	"failed 2 cannot run $T/bad-interp: No such file or directory" "every attempt fails, naming the cause"
done_testing
