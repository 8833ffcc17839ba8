#!/bin/sh
# jq-worker --quiet keeps only the events that call for attention (and
# every warning), plain or JSON; and the event lines, which the worker
# writes a block at a time, arrive whole, all of them, and without delay
# when the worker goes idle.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
h=$top_srcdir/tests/handlers

job() { sql "select $2 from all_jobs where id = $1"; }
work() { jq-worker --drain --backoff 50ms --kill-after 500ms "$@"; }
# Handlers here sleep 68 s where they hang, so other tests' sleeps are not counted.
export HANG=68
no_sleepers() { ! pgrep -f 'sleep 68' > /dev/null; }

# ---- --quiet, plain lines
b() { jq-enqueue -q "$1" "{\"do\":\"$2\"}"; }
t1=$(b q text); t2=$(b q text); twice=$(b q fail-twice); bad=$(b q bad); prog=$(b q progress)
exits 0 "a --quiet worker drains a mixed queue" work -q q -c 2 --quiet -- "$h/behave"
is "$(sql "select string_agg(state::text, ' ' order by id) from all_jobs where queue = 'q'")" \
	"completed completed completed failed completed" "the jobs ran as without --quiet"
unlike "$(cat "$T/err")" " started: " "no line for a job that starts"
unlike "$(cat "$T/err")" " completed: " "nor for one that completes"
like "$(cat "$T/err")" "^jq-worker: job $bad failed: for good after attempt 1/3: exit status 65: bad payload: cannot parse this payload$" \
	"a job failing for good is told"
is "$(grep -c "^jq-worker: job $twice failed: attempt [12]/3: exit status 1: attempt [12] failed; retry in " "$T/err")" 2 \
	"so is each failed attempt that will be retried"
like "$(cat "$T/err")" "^jq-worker: job $bad: cannot parse this payload$" "the handlers' stderr still passes through"
like "$(cat "$T/err")" "^jq-worker: job $prog: ignoring a progress line" "warnings are still given"
is "$(grep -v -E "^jq-worker: job [0-9]+(: | failed: )" "$T/err")" "" "and nothing else is said"
is "$(cat "$T/out")" "" "nothing on stdout"

# ---- --quiet with --json
t1=$(b qj text); bad=$(b qj bad)
hang=$(jq-enqueue -q qj --timeout 300ms --max-attempts 1 '{"do":"hang"}')
exits 0 "a --quiet --json worker drains a mixed queue" work -q qj -c 3 --quiet --json -- "$h/behave"
is "$(job "$t1" state) $(job "$bad" state) $(job "$hang" state)" "completed failed failed" "the jobs ran"
events=$(grep '^{' "$T/err" | jget -r .event .id | sort)
is "$events" "$(printf 'failed %s\nfailed %s\ntimed out %s' "$bad" "$hang" "$hang" | sort)" \
	"the JSON events are the failures and the time limit, not started or completed"
like "$(grep '^{' "$T/err" | jget -r .id .detail)" "^$bad for good after attempt 1/3: exit status 65" "with their detail"
like "$(cat "$T/err")" "^jq-worker: job $bad: cannot parse this payload$" "the handlers' stderr is still plain text"
wait_for "the timed-out handler to go" 5 no_sleepers

# ---- without --quiet: every line, whole
ids=$(i=0; while [ $i -lt 200 ]; do echo '{"n":1}'; i=$((i + 1)); done | jq-enqueue -q bulk | sort -n)
exits 0 "200 jobs through 8 slots" work -q bulk -c 8 -- cat
is "$(sql "select count(*) from history where queue = 'bulk' and state = 'completed'")" 200 "all completed"
is "$(grep -c -v -E '^jq-worker: job [0-9]+ (\(bulk\) started: attempt 1/3|completed: took [0-9.]+[a-z]+)$' "$T/err")" 0 \
	"every line on stderr is a whole event line"
is "$(wc -l < "$T/err" | tr -d ' ')" 400 "two lines per job"
is "$(sed -n 's/^jq-worker: job \([0-9]*\) (bulk) started: .*/\1/p' "$T/err" | sort -n)" "$ids" \
	"each job's start is told once"
is "$(sed -n 's/^jq-worker: job \([0-9]*\) completed: .*/\1/p' "$T/err" | sort -n)" "$ids" \
	"and each completion"

# Two workers writing to one pipe: their blocks do not cut into each other's lines.
ids=$(i=0; while [ $i -lt 200 ]; do echo '{"n":1}'; i=$((i + 1)); done | jq-enqueue -q pair | sort -n)
{ work -q pair -c 4 -- cat & work -q pair -c 4 -- cat & wait; } 2>&1 | cat > "$T/pair.err"
is "$(grep -c -v -E '^jq-worker: job [0-9]+ (\(pair\) started: attempt 1/3|completed: took [0-9.]+[a-z]+)$' "$T/pair.err")" 0 \
	"two workers on one pipe: every line is whole"
is "$(sed -n 's/^jq-worker: job \([0-9]*\) completed: .*/\1/p' "$T/pair.err" | sort -n)" "$ids" \
	"and every completion is there"

# ---- no line waits while the worker does
jq-worker -q idle -- cat 2> "$T/idle.err" &
wpid=$!
at_exit "kill $wpid 2>/dev/null"
id=$(jq-enqueue -q idle '{}')
wait_for "the completion to be told" 10 grep -q "job $id completed" "$T/idle.err"
like "$(cat "$T/idle.err")" "^jq-worker: job $id completed: took " "an idle worker has written the job's lines"
kill -TERM "$wpid"
wait "$wpid"
is "$?" 0 "and it exits 0 on SIGTERM"
like "$(cat "$T/idle.err")" "^jq-worker: Terminated: no more claims" "the lines told on the way out are written"

# ---- an early exit still says why
exits 69 "a worker that cannot connect exits 69" jq-worker -d "host=$T/nowhere" -q idle -- cat
like "$(cat "$T/err")" "^jq-worker: cannot connect to the database" "and says so"

done_testing
