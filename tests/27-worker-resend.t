#!/bin/sh
# A worker whose connection goes silent gives up on the statement in
# flight without knowing whether it committed, and sends its outcomes
# again on a new connection (tests/61 cuts a host's link for this).  The
# functions tell a second send of an outcome already recorded from a
# stale one: the first is answered as it was the first time and changes
# nothing; the second (the lease ran out, the reaper or another worker
# took the job) is refused as before.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

enqueue() { jq-enqueue -q rs "$@" '{}'; }
claim() { sql "select id from claim_jobs($1, '{rs}', 1, '1 min')"; }
expire() { sql "update jobs set lease_until = now() - interval '1 s' where id = $1" "select reap_expired()" > /dev/null; }
complete() { sql "select complete_attempt($1, $2, $3, '{\"n\":$4}')"; }
fail() { sql "select coalesce(fail_attempt($1, $2, $3, '$4', $5, '1 min'), 'NULL')"; }

a=$(enqueue)
w=$(sql "select register_worker('resend:1', '{rs}', 1, '1 min')")
w2=$(sql "select register_worker('resend:2', '{rs}', 1, '1 min')")

# ---- completions
is "$(claim $w)" "$a" "worker 1 claims job $a"
is "$(complete $a $w 1 1)" t "its completion is recorded"
is "$(complete $a $w 1 2)" t "sent again, it is told as recorded"
is "$(sql "select state || ' ' || result::text || ' ' || attempts from all_jobs where id = $a")" \
	'completed {"n": 1} 1' "and the second send changed nothing"
is "$(complete $a $w2 1 3)" f "another worker's completion of that attempt is refused"
is "$(complete $a $w 2 3)" f "and so is one of another attempt"

b=$(enqueue)
claim $w > /dev/null
expire $b
is "$(sql "select state || ' ' || error from jobs where id = $b")" "queued worker lost: its lease expired" \
	"job $b's lease ran out and the reaper put it back"
is "$(complete $b $w 1 1)" f "worker 1's late completion is refused"
is "$(claim $w2)" "$b" "worker 2 takes it over"
is "$(complete $b $w2 2 2)" t "and completes it"
is "$(complete $b $w 1 1)" f "worker 1's completion is still refused"
is "$(sql "select result::text || ' ' || attempts from history where id = $b")" '{"n": 2} 2' \
	"the job keeps worker 2's result"

# ---- failures
c=$(enqueue)
claim $w > /dev/null
is "$(fail $c $w 1 boom false)" scheduled "a failed attempt with attempts left: scheduled"
is "$(fail $c $w 1 boom false)" scheduled "sent again: told as scheduled"
is "$(sql "select state || ' ' || attempts || ' ' || error from jobs where id = $c")" "scheduled 1 boom" \
	"and nothing changed"
is "$(fail $c $w 1 other false)" NULL "a failure with another error was not this send: refused"

d=$(enqueue)
claim $w > /dev/null
expire $d
is "$(fail $d $w 1 boom false)" NULL "a failure after the reaper put the job back is refused"
is "$(sql "select state || ' ' || error from jobs where id = $d")" "queued worker lost: its lease expired" \
	"and the job is as the reaper left it"
is "$(claim $w2)" "$d" "worker 2 takes it over"
is "$(complete $d $w2 2 1)" t "and completes it"

e=$(enqueue)
is "$(claim $w)" "$e" "worker 1 claims job $e"
is "$(fail $e $w 1 broken true)" failed "a permanent failure: failed for good"
is "$(fail $e $w 1 broken true)" failed "sent again: told as failed"
is "$(complete $e $w 1 1)" f "a completion of that attempt is refused"

f=$(enqueue --max-attempts 1)
is "$(claim $w)" "$f" "worker 1 claims job $f"
expire $f
is "$(sql "select state || ' ' || worker || ' ' || error from history where id = $f")" \
	"failed $w worker lost: its lease expired" "job $f, at its last attempt, was failed by the reaper"
is "$(fail $f $w 1 boom false)" NULL "worker 1's own failure is refused: the reaper's is not its"

g=$(enqueue)
is "$(claim $w)" "$g" "worker 1 claims job $g"
sql "update jobs set cancel = true where id = $g" > /dev/null
is "$(fail $g $w 1 stopped false)" cancelled "a failure of a job cancelled meanwhile: cancelled"
is "$(fail $g $w 1 stopped false)" cancelled "sent again: told as cancelled"

# ---- in a batch, as jq-worker sends them
h=$(enqueue)
is "$(claim $w)" "$h" "worker 1 claims job $h"
batch() {
	sql "select coalesce(state, 'NULL') from finish_and_claim($w, array[$h, $a], array[1, 1],
	         array['completed', 'completed'], array['{\"n\":1}', '{\"n\":9}']::jsonb[], array[null, null]::text[],
	         array[false, false], array['0', '0']::interval[], '{rs}', 0, '1 min')" | tr '\n' ' '
}
is "$(batch)" "completed completed " "a batch records a completion and tells a resent one as recorded"
is "$(batch)" "completed completed " "the whole batch sent again is told the same"
is "$(sql "select string_agg(result::text, ' ' order by id) from history where id in ($a, $h)")" \
	'{"n": 1} {"n": 1}' "and changed nothing"
done_testing
