#!/bin/sh
# Faults are normal: a worker killed with -9, PostgreSQL restarted under a
# running worker, SIGTERM with and without time to finish, a second signal,
# and a cancel.  Each time: nothing lost.
. "${top_srcdir:-..}/tests/lib.sh"
need_private_pg
pg_start
h=$top_srcdir/tests/handlers
export RECORD="$T/ran"
: > "$RECORD"

count() { sql "select count(*) from all_jobs where $1"; }
# For wait_for, which runs a command again and again: conditions as functions.
has() { test "$(count "$1")" -ge "$2"; }
has_worker() { test "$(sql "select count(*) from workers where '$1' = any (queues)")" -ge 1; }
ran_at_least() { test "$(wc -l < "$RECORD")" -ge "$1"; }
enqueue_n() { # QUEUE N
	i=0; while [ $i -lt "$2" ]; do echo "{\"i\":$i}"; i=$((i + 1)); done | jq-enqueue -q "$1" > /dev/null
}

# kill -9: the dead worker's jobs come back when their leases run out.
enqueue_n k9 60
NAP=0.2 jq-worker -q k9 -c 4 --lease 2s -- "$h/record" 2> "$T/a.err" &
a=$!
at_exit "kill -9 $a 2>/dev/null"
wait_for "worker A completes some jobs" 20 has "queue = 'k9' and state = 'completed'" 8
kill -9 $a
wait $a 2>/dev/null
held=$(count "queue = 'k9' and state = 'running'")
ok "worker A died holding jobs ($held)" test "$held" -gt 0
# B runs until all is done: --drain would leave jobs a dead worker still holds.
NAP=0 jq-worker -q k9 -c 4 --lease 2s -- "$h/record" 2> "$T/b.err" &
b=$!
at_exit "kill -9 $b 2>/dev/null"
wait_for "worker B takes over A's jobs when their leases expire" 30 has "queue = 'k9' and state = 'completed'" 60
is "$(count "queue = 'k9' and state = 'completed'")" 60 "all 60 jobs are completed"
kill -TERM $b
wait $b
is "$?" 0 "worker B stops cleanly"
runs=$(sort "$RECORD" | wc -l | tr -d ' ')
ok "at most the $held held jobs ran twice ($runs runs)" test "$runs" -le $((60 + held))
is "$(sort -u "$RECORD" | wc -l | tr -d ' ')" 60 "every job ran"
like "$(sql "select string_agg(distinct error, ',') from history where queue = 'k9' and error is not null")" \
	"worker lost" "taken-over jobs say their worker was lost"

# PostgreSQL stopped with -m immediate and restarted under a running worker.
# (A's orphaned handlers may still write to the old record: use a new one.)
# The test clusters run with synchronous_commit off for speed, and a crash
# then forgets the last commits the clients were told of: jobs enqueued or
# completed would come back as not.  That is the server's configuration
# losing work, not pgjq; pgjq's promises assume the default, so restore it.
sql "alter system set synchronous_commit = on" "select pg_reload_conf()" > /dev/null
export RECORD="$T/ran.pg"
: > "$RECORD"
enqueue_n pg 40
NAP=0.1 jq-worker -q pg -c 4 --drain -- "$h/record" > "$T/pg.out" 2> "$T/pg.err" &
w=$!
at_exit "kill -9 $w 2>/dev/null"
wait_for "a few jobs ran" 20 ran_at_least 4
pg_stop immediate
sleep 1
pg_restart_server
wait $w
is "$?" 0 "the worker rode out the restart and drained the queue"
is "$(count "queue = 'pg' and state = 'completed'")" 40 "all 40 jobs are completed"
like "$(cat "$T/pg.err")" "lost the database" "the worker said it lost the database"
like "$(cat "$T/pg.err")" "reconnected" "and that it reconnected"
is "$(sql "select string_agg(id || ':' || state, ' ') from all_jobs where queue = 'pg' and state <> 'completed'")" "" \
	"no job is left running or queued"

# A claim that committed while its reply was lost (the connection broke in
# between): the database marks the job as the worker's, the worker never
# heard of it.  Made by hand here, with a lease far in the future, so only
# the worker noticing the stray claim can bring the job back.
export RECORD="$T/ran.ghost"
: > "$RECORD"
NAP=0 jq-worker -q ghost --lease 3s -- "$h/record" 2> "$T/g.err" &
w=$!
at_exit "kill -9 $w 2>/dev/null"
wait_for "the worker registers" 10 has_worker ghost
id=$(jq-enqueue -q ghost --delay 1h '{"i":"ghost"}')
sql "update jobs set state = 'running', attempts = 1, run_at = now(), lease_until = now() + interval '1 hour',
     worker = (select id from workers where 'ghost' = any (queues)) where id = $id" > /dev/null
wait_for "the stray claim is put back and run" 15 has "id = $id and state = 'completed'" 1
is "$(sql "select state || ' ' || attempts from all_jobs where id = $id")" "completed 1" \
	"a stray claim is run once, its lost attempt not counted"
is "$(wc -l < "$RECORD" | tr -d ' ')" 1 "and the handler ran once"
# Nothing stays marked as the worker's once it has gone, either: here a
# stray claim in a queue it does not serve, so it is not run meanwhile.
sql "update jobs set state = 'running', attempts = 1, run_at = now(), lease_until = now() + interval '1 hour',
     worker = (select id from workers where 'ghost' = any (queues))
     where id = $(jq-enqueue -q ghost-other --delay 1h '{"i":"ghost2"}')" > /dev/null
kill -TERM $w
wait $w
is "$?" 0 "the worker stops"
is "$(sql "select state || ' ' || attempts || ' ' || (worker is null) from jobs where queue = 'ghost-other'")" \
	"queued 0 true" "leaving no job marked as its own"

# SIGTERM with time to finish: the running job completes.
id=$(jq-enqueue -q term '{"do":"slow"}')
NAP=1 jq-worker -q term --grace 10s -- "$h/record" 2> "$T/t.err" &
w=$!
wait_for "the job runs" 10 has "id = $id and state = 'running'" 1
kill -TERM $w
wait $w
is "$?" 0 "SIGTERM: the worker exits 0"
is "$(count "id = $id and state = 'completed'")" 1 "after letting the running job finish"

# SIGTERM, grace too short: the job is put back, its attempt not counted.
id=$(jq-enqueue -q term2 '{"do":"hang"}')
jq-worker -q term2 --grace 300ms --kill-after 300ms -- "$h/behave" 2> "$T/t2.err" &
w=$!
wait_for "the job runs" 10 has "id = $id and state = 'running'" 1
kill -TERM $w
wait $w
is "$?" 0 "the worker exits 0 after its grace period"
is "$(sql "select state || ' ' || attempts from jobs where id = $id")" "queued 0" \
	"the unfinished job is queued again, the attempt not counted"
like "$(cat "$T/t2.err")" "job $id released" "and the worker says so"

# A second signal stops at once.
jq-worker -q term2 --grace 1h -- "$h/behave" 2> "$T/t3.err" &
w=$!
wait_for "the job runs again" 10 has "id = $id and state = 'running'" 1
kill -TERM $w
sleep 0.3
kill -INT $w
wait $w
is "$?" 0 "a second signal stops the worker at once"
is "$(sql "select state from jobs where id = $id")" queued "the job is back in the queue"

# A handler that finished when the stop signals arrive has its outcome:
# the job is completed, not put back to run again.  The worker is stopped
# (SIGSTOP) while its handler ends and both signals are sent, so that it
# sees the exit and the signals in one turn of its loop.
# The handler says when it has read its payload (the worker must not be
# stopped before it has written it) and when it ends, in files of its own.
cat > "$T/term3" << 'EOF2'
#!/bin/sh
cat > /dev/null
echo read > "$MARK.read"
sleep 1
echo "$JQ_JOB_ID" > "$MARK.done"
EOF2
chmod +x "$T/term3"
id=$(jq-enqueue -q term3 '{}')
MARK="$T/term3" jq-worker -q term3 --grace 1h -- "$T/term3" 2> "$T/t4.err" &
w=$!
at_exit "kill -9 $w 2>/dev/null"
wait_for "the handler to read its payload" 10 test -s "$T/term3.read"
kill -STOP $w
wait_for "its handler to finish" 10 test -s "$T/term3.done"
sleep 0.3
kill -TERM $w
kill -INT $w
kill -CONT $w
wait $w
is "$?" 0 "the worker stops at the second signal"
is "$(sql "select state || ' ' || attempts from all_jobs where id = $id")" "completed 1" \
	"a job whose handler had finished is recorded completed, not put back"
unlike "$(cat "$T/t4.err")" "released" "and not reported released"

# Cancelling a running job: its handler gets SIGTERM and the job ends cancelled.
id=$(jq-enqueue -q can '{"do":"hang"}')
jq-worker -q can --kill-after 500ms -- "$h/behave" 2> "$T/c.err" &
w=$!
at_exit "kill -9 $w 2>/dev/null"
wait_for "the job runs" 10 has "id = $id and state = 'running'" 1
# Anyone may NOTIFY: a forged cancel must not stop the job.
sql "select pg_notify('jq_cancel', id || ' ' || worker) from jobs where id = $id" > /dev/null
sleep 1
is "$(sql "select state from jobs where id = $id")" running "a forged cancel notification changes nothing"
is "$(sql "select cancel_job($id)")" running "cancel_job asks the worker"
wait_for "the job is cancelled" 10 has "id = $id and state = 'cancelled'" 1
is "$(sql "select state || ' ' || attempts from history where id = $id")" "cancelled 1" "the job ends cancelled, not retried"
kill -TERM $w
wait $w
is "$?" 0 "and the worker goes on until told to stop"
done_testing
