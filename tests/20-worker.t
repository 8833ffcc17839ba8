#!/bin/sh
# jq-worker runs handlers as the contract says: payload on stdin, the
# environment, results, progress on fd 3, retries with backoff, exit 65,
# time limits, and handlers that misbehave.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
h=$top_srcdir/tests/handlers

job() { sql "select $2 from all_jobs where id = $1"; }
no_sleepers() { ! pgrep -f 'sleep 61' > /dev/null; }
work() { jq-worker --drain --backoff 50ms --kill-after 500ms "$@"; }
# Handlers here sleep 61 s where they hang, so other tests' sleeps are not counted.
export HANG=61

id=$(jq-enqueue -q echo '{"n":42}')
exits 0 "a draining worker runs the job and exits 0" work -q echo -- "$h/echo"
is "$(job "$id" state)" completed "the job is completed"
is "$(job "$id" "result->'payload'")" '{"n": 42}' "the handler got the payload on stdin; its JSON stdout is the result"
is "$(job "$id" "result->>'id' || ' ' || (result->>'queue') || ' ' || (result->>'attempt') || '/' || (result->>'max')")" \
	"$id echo 1/3" "JQ_JOB_ID, JQ_QUEUE, JQ_ATTEMPT and JQ_MAX_ATTEMPTS are set"
is "$(job "$id" "result->>'fd' || ' ' || (result->>'db')")" "3 set" "JQ_PROGRESS_FD is 3 and JQ_DATABASE_URL is set"
like "$(cat "$T/err")" "job $id \\(echo\\) started: attempt 1/3" "a line on stderr when a job starts"
like "$(cat "$T/err")" "job $id completed" "and when it completes"
is "$(cat "$T/out")" "" "nothing on stdout"

b() { jq-enqueue -q b "{\"do\":\"$1\"}"; }
fail2=$(b fail-twice); fail=$(b fail); bad=$(b bad); text=$(b text); crash=$(b crash)
exits 0 "a worker with 3 slots drains a mixed queue" work -q b -c 3 -- "$h/behave"
is "$(job "$fail2" "state || ' ' || attempts || ' ' || result::text")" 'completed 3 "third time"' \
	"a failing job is retried until it succeeds"
like "$(cat "$T/err")" "job $fail2 failed: attempt 1/3: exit status 1: attempt 1 failed; retry in" \
	"each failed attempt is reported with its retry"
is "$(job "$fail" "state || ' ' || attempts")" "failed 3" "a job failing every attempt ends failed"
is "$(job "$fail" error)" "exit status 7: it went wrong" "its error is the exit status and the tail of stderr"
is "$(job "$bad" "state || ' ' || attempts")" "failed 1" "exit 65 fails the job at once"
like "$(job "$bad" error)" "exit status 65" "and says so"
is "$(job "$text" "result::text")" '"plain words"' "stdout that is not JSON is stored as a string"
is "$(job "$crash" "state || ' ' || attempts")" "failed 3" "a handler killed by a signal fails the attempt"
like "$(job "$crash" error)" "killed by signal 11" "naming the signal"

# Time limits: SIGTERM to the handler's group, SIGKILL after --kill-after.
hang=$(jq-enqueue -q t --timeout 300ms --max-attempts 1 '{"do":"hang"}')
stub=$(jq-enqueue -q t --timeout 300ms --max-attempts 1 '{"do":"stubborn"}')
exits 0 "jobs over their time limit are stopped" work -q t -c 2 -- "$h/behave"
is "$(job "$hang" "state || ': ' || error")" "failed: timed out after 300ms" "a hanging handler times out"
is "$(job "$stub" "state || ': ' || error")" "failed: timed out after 300ms" "one ignoring SIGTERM is killed"
wait_for "the killed handlers to go" 5 no_sleepers
is "$(pgrep -f 'sleep 61' | wc -l | tr -d ' ')" 0 "nothing the handlers started is left running"
wt=$(jq-enqueue -q t2 --max-attempts 1 '{"do":"hang"}')
exits 0 "the worker's --timeout applies to jobs without their own" work -q t2 --timeout 200ms -- "$h/behave"
is "$(job "$wt" "error")" "timed out after 200ms" "and is named in the error"

# Misbehaving handlers.
flood=$(b flood); orphan=$(b orphan); noisy=$(b noisy)
exits 0 "floods, orphans and noise do not stop the worker" work -q b -c 3 --max-jobs 100 -- "$h/behave"
cp "$T/err" "$T/b.err"
is "$(job "$flood" "state || ' ' || length(result #>> '{}')")" "completed 1048576" \
	"a flood of stdout is capped at 1 MiB and kept as a string"
like "$(cat "$T/err")" "job $flood: its output passed 1048576 bytes" "and the cap is said"
is "$(job "$orphan" "state || ' ' || result::text")" 'completed "left a child"' "a handler that leaves a child completes"
# SIGKILL is delivered asynchronously: give a loaded machine a moment.
wait_for "the orphan to die" 5 no_sleepers
is "$(pgrep -f 'sleep 61' | wc -l | tr -d ' ')" 0 "and its child is killed with it"
is "$(job "$noisy" "state")" failed "a handler flooding stderr fails normally"
ok "its error keeps only the tail of stderr" test "$(job "$noisy" "length(error)")" -le 2100
like "$(job "$noisy" error)" "line 1999 of noise$" "the last line is in it"
is "$(grep -c "job $noisy failed" "$T/b.err")" 3 "the worker's log has each failure in one line"
like "$(grep "job $noisy failed" "$T/b.err")" 'of noise\\nline [0-9]+ of noise' \
	"the handler's lines kept apart by \\n"

# Progress on fd 3.
p=$(b progress); c3=$(b close3)
psql -X -q -c "LISTEN \"${JQ_SCHEMA}_progress\"" -c "SELECT pg_sleep(3)" -c "SELECT 1" > "$T/notes" 2>&1 &
listener=$!
sleep 0.5
exits 0 "progress reports are read" work -q b -c 2 -- "$h/behave"
wait $listener
like "$(cat "$T/notes")" "payload \"$p (10 starting|90 nearly)\"" "progress is published with NOTIFY"
is "$(job "$p" "state || ' ' || message")" "completed nearly" "the last progress message is kept"
like "$(cat "$T/err")" "job $p: ignoring a progress line" "a bad progress line is reported, not fatal"
is "$(job "$c3" "state")" completed "a handler that closes fd 3 is fine"

# Output that is not UTF-8 is made text, not lost.
l1=$(b latin1); l2=$(jq-enqueue -q b --max-attempts 1 '{"do":"latin1fail"}'); sc=$(b schema)
exits 0 "handlers writing Latin-1" work -q b -c 2 -- "$h/behave"
is "$(job "$l1" "state || ' ' || result::text")" 'completed "na�ve �"' \
	"a result that is not UTF-8 is stored with replacement characters"
is "$(job "$l2" "state || ': ' || error")" "failed: exit status 1: �� caf�" "so is an error"
is "$(job "$sc" "result #>> '{}'")" "$JQ_SCHEMA" "handlers get JQ_SCHEMA"

# Dependencies: a job runs only after those it depends on completed.
p1=$(jq-enqueue -q dep '{"do":"text"}')
d1=$(jq-enqueue -q dep --after "$p1" '{"do":"text"}')
exits 0 "dependants run after their dependencies" work -q dep -- "$h/behave"
ok "the dependant started after its dependency finished" \
	test "$(sql "select (select started_at from history where id = $d1) >= (select finished_at from history where id = $p1)")" = t
f1=$(jq-enqueue -q dep2 '{"do":"bad"}')
d2=$(jq-enqueue -q dep2 --after "$f1" '{"do":"text"}')
exits 0 "a failed dependency" work -q dep2 -- "$h/behave"
is "$(job "$d2" "state || ': ' || error")" "cancelled: dependency $f1 failed" "cancels its dependant"

# A handler that cannot be run is refused before anything is claimed.
x=$(jq-enqueue -q nx '{}')
exits 64 "a handler that does not exist is a usage error" jq-worker -q nx --drain -- /no/such/handler
is "$(job "$x" state)" queued "and nothing was claimed"
exits 64 "no command is a usage error" jq-worker -q nx

# --max-jobs
for i in 1 2 3 4 5; do jq-enqueue -q mj '{"do":"text"}' >/dev/null; done
exits 0 "--max-jobs 2 stops after two jobs" jq-worker -q mj --max-jobs 2 -- "$h/behave"
is "$(sql "select count(*) from history where queue = 'mj'")" 2 "two jobs ran"
is "$(sql "select count(*) from jobs where queue = 'mj' and state = 'queued'")" 3 "three are still queued"
is "$(sql "select count(*) from workers")" 0 "workers unregister when they exit"

# Several queues: one claim takes the most urgent jobs of all of them, in
# priority order across queues (a queue named twice counts once).
a1=$(jq-enqueue -q mq-a -p 5 '{}'); b1=$(jq-enqueue -q mq-b -p 1 '{}')
a2=$(jq-enqueue -q mq-a -p 2 '{}'); b2=$(jq-enqueue -q mq-b -p 9 '{}')
c1=$(jq-enqueue -q mq-c -p 0 '{}')
RECORD="$T/mq" exits 0 "a worker of several queues drains them" \
	jq-worker -q mq-a -q mq-b -q mq-a --drain -- "$h/record"
is "$(tr '\n' ' ' < "$T/mq")" "$b1 $a2 $a1 $b2 " "in priority order across the queues"
is "$(job "$c1" state)" queued "and leaves other queues alone"

# A command that cannot be run fails each attempt, saying why; the worker
# goes on.  (One that is not there at all is a usage error at start; these
# pass that check.)  Also for a handler whose pipe ends would land on 0-3
# (the worker started with stdin closed).
printf '#!%s/no-such-shell\necho hi\n' "$T" > "$T/bad-interp" && chmod 755 "$T/bad-interp"
nx=$(jq-enqueue -q nx-run --max-attempts 2 '{}')
exits 0 "a handler whose interpreter does not exist: the worker drains the queue" \
	work -q nx-run -- "$T/bad-interp"
is "$(job "$nx" "state || ' ' || attempts")" "failed 2" "every attempt fails"
is "$(job "$nx" error)" "cannot run $T/bad-interp: No such file or directory" "naming the command and the cause"
printf 'echo no interpreter line\n' > "$T/no-shebang" && chmod 755 "$T/no-shebang"
nx=$(jq-enqueue -q nx-run --max-attempts 1 '{}')
work -q nx-run -- "$T/no-shebang" 2> /dev/null
is "$(job "$nx" error)" "cannot run $T/no-shebang: Exec format error" "a script without #! is not run by sh"
nx=$(jq-enqueue -q nx-run '{"n":7}')
exits 0 "a worker with stdin closed" sh -c 'exec jq-worker -q nx-run --drain -- "$1" <&-' sh "$h/echo"
is "$(job "$nx" "state || ' ' || (result->'payload')::text")" 'completed {"n": 7}' "its handler still gets the payload on stdin"

# --json events.
jq-enqueue -q js '{"do":"text"}' >/dev/null
exits 0 "--json" work -q js --json -- "$h/behave"
like "$(cat "$T/err")" '^\{"event":"started","id":[0-9]+,"queue":"js","attempt":1,"max_attempts":3' "events are JSON lines"
done_testing
