#!/bin/sh
# The local queue: a worker claims ahead of its free slots.  A job it holds
# but has not started is 'claimed', not running: its attempt, started_at
# and time limit count from the moment a handler gets it.  SIGTERM gives
# the claimed jobs back at once, kill -9 lets them come back when their
# leases run out, and neither counts an attempt; a cancel takes effect at
# once; an urgent job does not wait behind the batch; two workers share a
# queue.
. "${top_srcdir:-..}/tests/lib.sh"
need_private_pg
pg_start
h=$top_srcdir/tests/handlers
export RECORD="$T/ran"
: > "$RECORD"

count() { sql "select count(*) from all_jobs where $1"; }
has() { test "$(count "$1")" -ge "$2"; }
has_worker() { test "$(sql "select count(*) from workers where '$1' = any (queues)")" -ge "${2:-1}"; }
ran_at_least() { test "$(wc -l < "$RECORD")" -ge "$1"; }
enqueue_n() { # QUEUE N [OPTION...]
	q=$1 n=$2
	shift 2
	i=0; while [ $i -lt "$n" ]; do echo "{\"i\":$i}"; i=$((i + 1)); done | jq-enqueue -q "$q" "$@"
}

# What a claimed job looks like: two running, the next ones claimed, the
# rest queued.
enqueue_n look 12 > "$T/look.ids"
NAP=37.3 jq-worker -q look -c 2 --prefetch 4 --grace 0 --kill-after 100ms -- "$h/record" 2> "$T/look.err" &
w=$!
at_exit "kill -9 $w 2>/dev/null"
wait_for "two jobs run" 10 has "queue = 'look' and state = 'running'" 2
wait_for "jobs are claimed ahead" 10 has "queue = 'look' and state = 'claimed'" 2
is "$(count "queue = 'look' and state = 'running'")" 2 "as many jobs run as there are slots"
claimed=$(count "queue = 'look' and state = 'claimed'")
ok "a few more are claimed ahead, within --prefetch ($claimed)" test "$claimed" -ge 2 -a "$claimed" -le 4
is "$(count "queue = 'look' and state = 'claimed' and (attempts <> 0 or started_at is not null)")" 0 \
	"a claimed job has no attempt counted and no start"
is "$(count "queue = 'look' and state = 'claimed' and worker is not null and lease_until > now()")" "$claimed" \
	"it is leased to its worker"
c=$(sql "select id from jobs where queue = 'look' and state = 'claimed' order by id limit 1")
run jq-status "$c"
like "$(cat "$T/out")" "^job $c  queue look  claimed  attempt 0 of 3" "jq-status shows it claimed, not running"
unlike "$(cat "$T/out")" "^started" "with no start"
exits 0 "jq-status --state claimed lists the claimed jobs" jq-status -q look --state claimed --json
is "$(jget -r .id < "$T/out" | sort -n | tr '\n' ' ')" \
	"$(sql "select id from jobs where queue = 'look' and state = 'claimed' order by id" | tr '\n' ' ')" \
	"exactly those"
run jq-stats -q look --json
like "$(cat "$T/out")" "\"queued\": *$((12 - 2))" "jq-stats counts claimed jobs as queued"

# A cancel of a claimed job takes effect at once; the worker drops it.
run jq-cancel --json "$c"
like "$(cat "$T/out")" '"state": *"cancelled"' "jq-cancel of a claimed job cancels it at once"
is "$(count "id = $c and state = 'cancelled'")" 1 "it is cancelled"
wait_for "the worker drops it" 5 grep -q "job $c cancelled: before it started" "$T/look.err"
like "$(cat "$T/look.err")" "job $c cancelled: before it started" "the worker dropped it from its local queue"

# SIGTERM: the claimed jobs go back at once, attempts untouched; the
# running ones are put back after the grace period (here none).
kill -TERM $w
wait $w
is "$?" 0 "SIGTERM: the worker exits 0"
like "$(cat "$T/look.err")" "putting back [0-9]+ claimed jobs? that had not started" "and says it gave back its claimed jobs"
is "$(count "queue = 'look' and state in ('claimed', 'running')")" 0 "no job is left claimed or running"
is "$(count "queue = 'look' and state = 'queued' and attempts = 0")" 11 \
	"every job but the cancelled one is queued again, no attempt counted"
grep -qx "$c" "$RECORD"
is "$?" 1 "the cancelled job never ran"

# kill -9: claimed jobs come back when their leases run out, their
# attempts untouched; the running job's attempt counts, as always.
NAP=37.3 jq-worker -q look -c 1 --prefetch 5 --lease 2s -- "$h/record" 2> "$T/k9.err" &
w=$!
at_exit "kill -9 $w 2>/dev/null"
wait_for "a job runs" 10 has "queue = 'look' and state = 'running'" 1
wait_for "jobs are claimed ahead" 10 has "queue = 'look' and state = 'claimed'" 1
r=$(sql "select id from jobs where queue = 'look' and state = 'running'")
held=$(count "queue = 'look' and state = 'claimed'")
kill -9 $w
wait $w 2>/dev/null
pkill -9 -f "sleep 37.3" 2>/dev/null
sleep 2.5
sql "select reap_expired()" > /dev/null
is "$(count "queue = 'look' and state in ('claimed', 'running')")" 0 "kill -9: every job it held is back once its lease ran out"
is "$(count "queue = 'look' and state = 'queued' and attempts = 0")" 10 \
	"the $held claimed ones with no attempt counted"
is "$(count "id = $r and state = 'queued' and attempts = 1 and error like 'worker lost%'")" 1 \
	"the running one with its attempt counted"
exits 0 "a draining worker runs them all" env NAP=0 jq-worker -q look -c 2 --drain -- "$h/record"
is "$(count "queue = 'look' and state = 'completed'")" 11 "all completed"
is "$(count "queue = 'look' and state = 'completed' and attempts = 1 and id <> $r")" 10 \
	"each at its first attempt but the one that was running"
is "$(count "queue = 'look' and state = 'completed' and started_at < finished_at and started_at > created_at")" 11 \
	"started_at is the handler's start"

# A time limit counts from the handler's start: with -c 1, jobs that wait
# in the local queue for longer than their limit still complete.
enqueue_n lim 4 --timeout 1s > /dev/null
exits 0 "jobs waiting their turn longer than their time limit" env NAP=0.6 jq-worker -q lim -c 1 --drain -- "$h/record"
is "$(count "queue = 'lim' and state = 'completed' and attempts = 1")" 4 "all complete at their first attempt"

# An urgent job enqueued behind a claimed batch waits for about a turn,
# not for the batch: behind the two running, what the local queue held
# (two turns' worth, a few jobs here) and a claim under way, not the
# rest of the 30.
: > "$RECORD"
enqueue_n urg 30 > /dev/null
NAP=0.2 jq-worker -q urg -c 2 --prefetch 100 --drain -- "$h/record" 2> "$T/urg.err" &
w=$!
at_exit "kill -9 $w 2>/dev/null"
wait_for "some jobs ran" 10 ran_at_least 4
before=$(wc -l < "$RECORD")
u=$(echo '{"urgent":true}' | jq-enqueue -q urg -p -10)
wait $w
is "$?" 0 "the worker drains the queue"
pos=$(grep -nx "$u" "$RECORD" | cut -d: -f1)
ok "the urgent job ran soon after it came (run $pos; $before had run when it came)" \
	test -n "$pos" -a "$pos" -le $((before + 12))

# Two workers share a queue: claiming ahead does not starve either.
: > "$RECORD"
NAP=0.005 jq-worker -q fair -c 4 -- "$h/record" 2> "$T/f1.err" &
f1=$!
NAP=0.005 jq-worker -q fair -c 4 -- "$h/record" 2> "$T/f2.err" &
f2=$!
at_exit "kill -9 $f1 $f2 2>/dev/null"
wait_for "both workers register" 10 has_worker fair 2
enqueue_n fair 600 > /dev/null
wait_for "the jobs are done" 60 has "queue = 'fair' and state = 'completed'" 600
kill -TERM $f1 $f2
wait $f1; s1=$?
wait $f2; s2=$?
is "$s1 $s2" "0 0" "two workers sharing a queue stop cleanly"
is "$(count "queue = 'fair' and state = 'completed'")" 600 "all 600 jobs are completed"
is "$(sort -u "$RECORD" | wc -l | tr -d ' ')" 600 "none ran twice"
share=$(sql "select min(n) from (select count(*) n from history where queue = 'fair' group by worker) s")
ok "each worker ran at least a quarter of them (the smaller share: $share)" test "$share" -ge 150

# A quick --pipe handler is sent the next jobs before it answers: it
# finds several in one read.  One that quits with jobs still waiting in
# its stdin loses none of them, and one that answers out of order is
# understood.
quick=$top_builddir/tests/quickpipe
enqueue_n quick 2000 > /dev/null
exits 0 "2000 jobs through 2 quick --pipe handlers" env LOG="$T/reads" jq-worker -q quick -c 2 --pipe --drain --quiet -- "$quick"
is "$(count "queue = 'quick' and state = 'completed' and attempts = 1 and result::text = id::text")" 2000 \
	"all completed at their first attempt, each answer taken for its own job"
ok "the handlers found several jobs in one read ($(sort -n "$T/reads" | tail -1) at most)" \
	test "$(sort -n "$T/reads" | tail -1)" -gt 1
enqueue_n quit 1000 > /dev/null
exits 0 "handlers that quit after 37 answers, jobs still in their stdin" \
	env QUIT_AFTER=37 jq-worker -q quit -c 2 --pipe --drain --quiet -- "$quick"
is "$(count "queue = 'quit' and state = 'completed' and attempts = 1")" 1000 \
	"every job completed, at its first attempt"
# The handler is sometimes reaped before its last answers are read: the
# job taken next must not start a new handler then, which dropped those
# answers and lost track of what was sent ahead (a crash, 1 run in 10).
k=0
while [ $k -lt 5 ]; do
	k=$((k + 1))
	enqueue_n quit$k 1000 > /dev/null
	env QUIT_AFTER=37 jq-worker -q quit$k -c 2 --pipe --drain --quiet -- "$quick" 2> "$T/quit.err"
	echo $? >> "$T/quit.status"
done
is "$(sort -u "$T/quit.status" | tr '\n' ' ')" "0 " "five more such runs exit 0"
is "$(count "queue like 'quit_%' and state = 'completed' and attempts = 1")" 5000 \
	"and complete every job at its first attempt"
enqueue_n rev 1000 > /dev/null
exits 0 "handlers that answer each read's jobs last first" \
	env REVERSE=1 jq-worker -q rev -c 2 --pipe --drain --quiet -- "$quick"
is "$(count "queue = 'rev' and state = 'completed' and attempts = 1 and result::text = id::text")" 1000 \
	"every job completed once, with its own answer"

# --prefetch 0: nothing is claimed ahead.
enqueue_n none 6 > /dev/null
NAP=37.3 jq-worker -q none -c 2 --prefetch 0 --grace 0 --kill-after 100ms -- "$h/record" 2> "$T/none.err" &
w=$!
at_exit "kill -9 $w 2>/dev/null"
wait_for "two jobs run" 10 has "queue = 'none' and state = 'running'" 2
sleep 0.3
is "$(count "queue = 'none' and state = 'claimed'")" 0 "--prefetch 0: no job is claimed ahead"
kill -TERM $w
wait $w
is "$(count "queue = 'none' and state = 'queued' and attempts = 0")" 6 "and SIGTERM puts the running ones back"
done_testing
