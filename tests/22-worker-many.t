#!/bin/sh
# Several workers with several slots each on thousands of jobs: every job
# completed, none run twice.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
h=$top_srcdir/tests/handlers
export RECORD="$T/ran"
: > "$RECORD"

n=3000
awk -v n=$n 'BEGIN { for (i = 0; i < n; i++) printf "{\"i\":%d}\n", i }' | jq-enqueue -q many > "$T/ids"
for w in 1 2 3; do
	jq-worker -q many -c 4 --drain -- "$h/record" 2> "$T/w$w.err" &
	eval "pid$w=\$!"
done
wait $pid1; s1=$?
wait $pid2; s2=$?
wait $pid3; s3=$?
is "$s1 $s2 $s3" "0 0 0" "three draining workers exit 0"
is "$(sql "select count(*) from history where queue = 'many' and state = 'completed'")" $n "all $n jobs are completed"
is "$(wc -l < "$RECORD" | tr -d ' ')" $n "$n handler runs"
is "$(sort -u "$RECORD" | wc -l | tr -d ' ')" $n "no job ran twice"
is "$(sort -n "$RECORD" | tr '\n' ' ')" "$(sort -n "$T/ids" | tr '\n' ' ')" "the jobs run are exactly the jobs enqueued"
for w in 1 2 3; do
	ok "worker $w did some of the work" grep -q 'completed' "$T/w$w.err"
done
done_testing
