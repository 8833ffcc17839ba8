#!/bin/sh
# jq-status --wait: exit 0 only if every job completed, 1 if any failed or
# was cancelled, 66 for an unknown id; woken by NOTIFY, never polling; a
# job finishing at the very moment the wait starts is not missed.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

finish() { sql "select finish_job($1, '$2', null, null, ${3:-null})" >/dev/null; }

a=$(jq-enqueue '{}'); finish "$a" completed
b=$(jq-enqueue '{}'); finish "$b" failed "'disk full'"
c=$(jq-enqueue '{}'); sql "select cancel_job($c)" >/dev/null
exits 0 "a job completed before the call: exit 0 at once" timeout 10 jq-status --wait "$a"
is "$(cat "$T/out" "$T/err")" "" "and nothing is printed"
exits 1 "a failed job: exit 1" timeout 10 jq-status -w "$a" "$b"
is "$(cat "$T/err")" "jq-status: job $b failed: disk full" "the failed job is named on stderr"
exits 1 "a cancelled job: exit 1" timeout 10 jq-status -w "$c"
exits 66 "an unknown id: exit 66" timeout 10 jq-status -w "$a" 999999
like "$(cat "$T/err")" "job 999999: no such job" "and it is named"
exits 0 "--json prints each finished job" timeout 10 jq-status -w --json "$a,$a"
is "$(jget .id .state < "$T/out")" "[$a,\"completed\"]" "once, as its JSON object"

# A live job: the wait blocks until it finishes, on LISTEN.
d=$(jq-enqueue '{}'); e=$(jq-enqueue '{}')
timeout 20 jq-status --wait "$d" "$e" > "$T/wait.out" 2> "$T/wait.err" &
pid=$!
at_exit "kill $pid"
listening() { [ "$(sql "select count(*) from pg_stat_activity where application_name = 'jq-status'
	and state = 'idle' and query like 'SELECT a.id%'")" = 1 ]; }
wait_for "jq-status to wait" 10 listening
q1=$(sql "select query_start from pg_stat_activity where application_name = 'jq-status'")
sleep 1
q2=$(sql "select query_start from pg_stat_activity where application_name = 'jq-status'")
is "$q2" "$q1" "waiting sends no queries: it does not poll"
finish "$d" completed
sleep 0.3
ok "still waiting while one job is live" kill -0 $pid
finish "$e" completed
wait $pid
is "$?" 0 "exit 0 once both completed"

g=$(jq-enqueue '{}'); h=$(jq-enqueue '{}')
timeout 20 jq-status --wait "$g" "$h" 2> "$T/wait.err" &
pid=$!
wait_for "jq-status to wait" 10 listening
finish "$g" completed
finish "$h" failed "'bad payload'"
wait $pid
is "$?" 1 "exit 1 when one of them fails while waiting"
is "$(cat "$T/wait.err")" "jq-status: job $h failed: bad payload" "naming it"

# The race: the job finishes as the wait starts, in every order.
bad=0
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	id=$(jq-enqueue '{}')
	state=completed want=0
	[ $((i % 2)) = 0 ] && state=failed want=1
	finish "$id" $state &
	fpid=$!
	timeout 10 jq-status --wait "$id" 2>/dev/null
	rc=$?
	wait $fpid
	[ $rc = $want ] || { bad=$((bad + 1)); diag "round $i: $state, exit $rc, expected $want"; }
done
is "$bad" 0 "20 waits racing the finish all got the right answer"
bad=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	id=$(jq-enqueue '{}')
	timeout 10 jq-status --wait "$id" 2>/dev/null &
	wpid=$!
	finish "$id" completed
	wait $wpid
	rc=$?
	[ $rc = 0 ] || { bad=$((bad + 1)); diag "round $i: exit $rc"; }
done
is "$bad" 0 "10 finishes racing the wait all woke it"
done_testing
