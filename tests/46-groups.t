#!/bin/sh
# Groups: at most the queue's group limit of a group's jobs run at once,
# fleet-wide, from the handlers' own clocks; other groups go on, a group
# enqueued later is not stuck behind the others, and a group with
# 100,000 queued jobs is not read past by claims of the others.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
h=$top_srcdir/tests/handlers

count() { sql "select count(*) from all_jobs where $1"; }
has() { test "$(count "$1")" -ge "$2"; }

exits 64 "group-limit 0" jq-queue group-limit q 0
exits 64 "--group with an empty key" jq-enqueue -q gq --group '' '{}'
exits 65 "an envelope group that is not a string" jq-enqueue -q gq -e '{"payload":{},"group":7}'

for g in a b c; do
	i=0; while [ $i -lt 20 ]; do echo "{\"g\":\"$g\",\"i\":$i}"; i=$((i + 1)); done |
		jq-enqueue -q gq --group "$g" > /dev/null
done
is "$(count "queue = 'gq' and group_key is not null")" 60 "3 groups x 20 jobs"
exits 0 "group-limit gq 1" jq-queue --json group-limit gq 1
is "$(jget .queue .group_limit < "$T/out")" '["gq",1]' "listed"
export RECORD="$T/gq.rec"
: > "$RECORD"
pids=
for k in 1 2 3; do
	NAP=0.1 jq-worker -q gq -c 4 --grace 0 -- "$h/span" 2>> "$T/gq.err" &
	pids="$pids $!"
done
at_exit "kill -9 $pids 2>/dev/null"
wait_for "the groups start" 20 has "queue = 'gq' and state = 'completed'" 3
jq-enqueue -q gq --group d '{"g":"d"}' > /dev/null
d=$(jq-enqueue -q gq -e '{"payload":{"g":"d"},"group":"d"}')
wait_for "60 + 2 jobs complete" 90 has "queue = 'gq' and state = 'completed'" 62
is "$(count "queue = 'gq' and state = 'completed'")" 62 "every job completes"
kill -TERM $pids; wait $pids
# Each handler's span, with its group, then the most of one group at once.
sql "select id, group_key from history where queue = 'gq'" | tr '|' ' ' > "$T/groups"
most=$(awk 'NR == FNR { g[$1] = $2; next } $1 == "end" { print g[$2], $3, 1; print g[$2], $4, 0 }' \
	"$T/groups" "$RECORD" | sort -k1,1 -k2,2g -k3,3n |
	awk '$1 != last { n = 0; last = $1 } { n += $3 ? 1 : -1; if (n > m) m = n } END { print m + 0 }')
diag "most of one group at once: $most"
is "$most" 1 "never two of one group at once, across 3 workers x -c 4"
all=$(awk '$1 == "end" { print $3, 1; print $4, 0 }' "$RECORD" | sort -k1,1g -k2,2n |
	awk '{ n += $2 ? 1 : -1; if (n > m) m = n } END { print m + 0 }')
diag "most at once: $all"
ok "yet groups ran side by side ($all at once)" test "$all" -ge 2
is "$(sql "select (select finished_at from history where id = $d)
             < (select max(finished_at) from history where queue = 'gq' and group_key <> 'd')")" t \
	"the group enqueued later ran before the others were done"
is "$(sql "select count(*) from history where queue = 'gq' and group_key = 'd'")" 2 "both its jobs"

# A group of 100,000 queued jobs beside 5 small groups and 20 ungrouped jobs.
sql "insert into jobs (queue, payload, group_key) select 'big', '{}', 'huge' from generate_series(1, 100000)" \
	"insert into jobs (queue, payload, group_key) select 'big', '{}', 'g' || (i % 5) from generate_series(1, 10) i" \
	"insert into jobs (queue, payload) select 'big', '{}' from generate_series(1, 20)" \
	"analyze jobs" > /dev/null
read_tuples() {
	sql "select coalesce(sum(idx_tup_read), 0) from pg_stat_user_indexes
	      where relname = 'jobs' and indexrelname in ('jobs_group_claim', 'jobs_claim')"
}
before=$(read_tuples)
exits 0 "a worker takes 40 jobs from it" jq-worker -q big -c 4 --max-jobs 40 -- true
sleep 1
after=$(read_tuples)
diag "index tuples read by the claims: $((after - before))"
is "$(count "queue = 'big' and state = 'completed' and group_key is distinct from 'huge'")" 30 \
	"the small groups and the ungrouped jobs all ran"
is "$(count "queue = 'big' and state = 'completed' and group_key = 'huge'")" 10 "the big group one at a time"
ok "the claims read $((after - before)) index entries, not the big group's 100,000" \
	test $((after - before)) -lt 20000

# A failed job of a group, retried (one by one and in bulk), is of its group still.
one=$(echo '{"again":1}' | jq-enqueue -q regroup --group g1 --max-attempts 1)
two=$(echo '{"again":2}' | jq-enqueue -q regroup --group g2 --max-attempts 1)
exits 0 "both fail" jq-worker -q regroup --drain -- false
exits 0 "jq-retry ID" jq-retry "$one"
exits 0 "jq-retry --failed" jq-retry -q regroup --failed
is "$(sql "select string_agg(group_key, ' ' order by id) from jobs where queue = 'regroup' and state = 'queued'")" \
	"g1 g2" "retried, each keeps its group"
done_testing
