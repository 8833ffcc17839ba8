#!/bin/sh
# jq-queue: the listing, bad input (exit 64, nothing changed), and pause:
# with 8 jobs running across two workers and 50 queued, the 8 finish and
# nothing else starts, not even from a worker's local queue nor in a
# worker started afresh; resume runs the rest.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
h=$top_srcdir/tests/handlers
export RECORD="$T/ran"
: > "$RECORD"

count() { sql "select count(*) from all_jobs where $1"; }
has() { test "$(count "$1")" -ge "$2"; }
has_worker() { test "$(sql "select count(*) from workers where 'p' = any (queues)")" -ge 2; }
starts() { grep -c '^start ' "$RECORD"; }
enqueue_n() { # QUEUE N
	i=0; while [ $i -lt "$2" ]; do echo "{\"i\":$i}"; i=$((i + 1)); done | jq-enqueue -q "$1" > /dev/null
}
settings() { sql "select coalesce(string_agg(format('%s %s %s %s %s', name, paused, max_running, rate_n, rate_window), ';' order by name), '')  from queues"; }

enqueue_n mail 3
enqueue_n thumbs 2
exits 69 "a misspelt schema: exit 69" jq-queue --schema jqq pause mail
like "$(cat "$T/err")" "schema jqq" "naming it"
is "$(sql "select count(*) from pg_namespace where nspname = 'jqq'")" 0 "and none is made"

# Bad input: exit 64, a clear message, nothing changed.
before=$(settings)
exits 64 "an unknown queue is a usage error" jq-queue pause mial
like "$(cat "$T/err")" "no queue 'mial'" "naming it"
exits 64 "one unknown among known ones changes none" jq-queue pause mail mial
exits 64 "a bad queue name" jq-queue limit 'a b' 3
like "$(cat "$T/err")" "invalid queue name 'a b'" "naming it"
exits 64 "limit -1" jq-queue limit mail -1
exits 64 "limit 0" jq-queue limit mail 0
like "$(cat "$T/err")" "expected an integer from 1" "saying what is expected"
exits 64 "limit x" jq-queue limit mail x
exits 64 "limit without a number" jq-queue limit mail
exits 64 "rate 0/1s" jq-queue rate mail 0/1s
like "$(cat "$T/err")" "invalid rate '0/1s'" "naming it"
exits 64 "rate 5/0s" jq-queue rate mail 5/0s
like "$(cat "$T/err")" "longer than 0" "saying why"
exits 64 "rate 5" jq-queue rate mail 5
exits 64 "rate x/1s" jq-queue rate mail x/1s
exits 64 "rate 5/soon" jq-queue rate mail 5/soon
exits 64 "a garbage command" jq-queue frobnicate mail
like "$(cat "$T/err")" "unknown command 'frobnicate'" "naming it"
exits 64 "--wait without pause" jq-queue resume --wait mail
exits 64 "pause with no queue" jq-queue pause
is "$(settings)" "$before" "nothing was changed by any of them"

# The listing.
exits 0 "limit mail 3" jq-queue limit mail 3
exits 0 "rate mail 20/1s" jq-queue rate mail 20/1s
exits 0 "the listing" jq-queue
like "$(cat "$T/out")" "^QUEUE +STATE +LIMIT +RATE" "has a header"
like "$(cat "$T/out")" "^mail +active +3 +20/1s +0 +3 +0" "mail, active, limit 3, rate 20/1s, 3 queued"
like "$(cat "$T/out")" "^thumbs +active +- +- +0 +2 +0" "thumbs, unlimited, 2 queued"
exits 0 "--json" jq-queue --json -q mail
is "$(jget .queue .state .limit .rate .queued < "$T/out")" '["mail","active",3,"20/1s",3]' "as JSON"
exits 0 "pause thumbs" jq-queue pause thumbs
exits 0 "jq-stats --json" jq-stats --json -q mail -q thumbs
is "$(grep '"queue"' "$T/out" | jget .queue .paused .limit | tr '\n' ' ')" '["mail",false,3] ["thumbs",true,null] ' \
	"jq-stats shows the paused state and the limit"
exits 0 "jq-stats --prometheus" jq-stats --prometheus
like "$(cat "$T/out")" '^pgjq_queue_paused\{queue="thumbs"\} 1$' "as Prometheus gauges: paused"
like "$(cat "$T/out")" '^pgjq_queue_paused\{queue="mail"\} 0$' "not paused"
like "$(cat "$T/out")" '^pgjq_queue_limit\{queue="mail"\} 3$' "the limit"
exits 0 "resume thumbs" jq-queue resume thumbs
exits 0 "limit none" jq-queue limit mail none
exits 0 "rate none" jq-queue rate mail none
exits 0 "pause --json" jq-queue --json pause thumbs
is "$(jget .queue .state .limit .rate < "$T/out")" '["thumbs","paused",null,null]' "says the queue is paused"
exits 0 "resume" jq-queue resume thumbs
is "$(settings)" "mail f   ;thumbs f   " "both lifted and resumed"

# Pause with 8 running (2 workers x -c 4, claiming ahead) and 50 queued.
enqueue_n p 58
NAP=3 jq-worker -q p -c 4 --prefetch 8 --grace 0 -- "$h/span" 2> "$T/w1.err" &
w1=$!
NAP=3 jq-worker -q p -c 4 --prefetch 8 --grace 0 -- "$h/span" 2> "$T/w2.err" &
w2=$!
at_exit "kill -9 $w1 $w2 2>/dev/null"
wait_for "8 jobs run" 20 has "queue = 'p' and state = 'running'" 8
wait_for "their handlers start" 10 test "$(starts)" -ge 8
exits 0 "pause --wait" jq-queue pause --wait p
is "$(count "queue = 'p' and state in ('running', 'claimed')")" 0 "returns once none runs, none is claimed"
is "$(starts)" 8 "only the 8 running when paused ever started"
is "$(count "queue = 'p' and state = 'completed'")" 8 "and they completed"
sleep 2
is "$(starts)" 8 "nothing starts in the next 2 s"
is "$(count "queue = 'p' and state = 'queued' and attempts = 0")" 50 "the 50 wait, queued, no attempt counted"
like "$(cat "$T/w1.err" "$T/w2.err")" "queue p paused: putting back" "a worker put its claimed jobs back"
kill -TERM $w1
wait $w1
NAP=0 jq-worker -q p -c 4 --grace 0 -- "$h/span" 2> "$T/w3.err" &
w3=$!
at_exit "kill -9 $w3 2>/dev/null"
wait_for "the new worker registers" 10 has_worker
sleep 1.5
is "$(starts)" 8 "a worker started afresh claims nothing either"
exits 0 "resume" jq-queue resume p
wait_for "the rest run" 60 has "queue = 'p' and state = 'completed'" 58
is "$(count "queue = 'p' and state = 'completed'")" 58 "resumed, the rest run"
kill -TERM $w2 $w3
wait $w2 $w3
done_testing
