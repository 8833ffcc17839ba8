#!/bin/sh
# jq-queue purge: counts right, running jobs untouched, dependants
# cancelled, bad input refused with nothing changed; a purge of 100,000
# queued jobs goes in batches, never holding a row lock a second long.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
h=$top_srcdir/tests/handlers
export RECORD="$T/ran"
: > "$RECORD"

count() { sql "select count(*) from all_jobs where $1"; }
has() { test "$(count "$1")" -ge "$2"; }
enqueue_n() { # QUEUE N [OPTION...]
	q=$1 n=$2
	shift 2
	awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "{\"i\":%d}\n", i }' | jq-enqueue -q "$q" "$@" > /dev/null
}

# One job running, 10 queued, 5 scheduled, 3 completed, 2 failed.
enqueue_n pq 1
NAP=60 jq-worker -q pq -c 1 --prefetch 0 --grace 0 --kill-after 100ms -- "$h/span" 2> "$T/w.err" &
w=$!
at_exit "kill -9 $w 2>/dev/null"
wait_for "a job runs" 20 has "queue = 'pq' and state = 'running'" 1
kill -STOP $w   # it claims nothing more, and its job stays running
at_exit "kill -CONT $w 2>/dev/null"
enqueue_n pq 10
enqueue_n pq 5 --delay 1h
for s in completed completed completed failed failed; do
	id=$(jq-enqueue -q pq '{}')
	sql "select finish_job($id, '$s', null, null, null)" > /dev/null
done
parent=$(jq-enqueue -q pq '{}')
child=$(jq-enqueue -q other --after "$parent" '{}')
total() { sql "select state || count(*) from all_jobs where queue = 'pq' group by state order by state" | tr '\n' ' '; }
before=$(total)
is "$before" "completed3 failed2 queued11 running1 scheduled5 " "the queue as made"

exits 64 "--state running is a usage error" jq-queue purge --state running pq
like "$(cat "$T/err")" "'running' cannot be purged" "saying so"
exits 64 "--state claimed too" jq-queue purge --state claimed pq
exits 64 "an unknown queue" jq-queue purge --yes pqq
like "$(cat "$T/err")" "no queue 'pqq'" "naming it"
exits 64 "no queue named" jq-queue purge
exits 64 "two queues" jq-queue purge pq other
exits 64 "--yes without purge" jq-queue --yes pause pq
exits 64 "--older-than garbage" jq-queue purge --older-than soon pq
is "$(total)" "$before" "nothing changed by any of them"

exits 0 "purge --state completed" jq-queue purge --state completed pq
is "$(cat "$T/out")" 3 "prints the count"
sql "update jobs set created_at = now() - interval '2 days' where queue = 'pq' and state = 'scheduled'" > /dev/null
exits 0 "purge --older-than 1d" jq-queue purge --older-than 1d pq
is "$(cat "$T/out")" 5 "only the old backlog: the 5 scheduled"
exits 0 "purge, the backlog" jq-queue --json purge pq
is "$(jget .queue .purged < "$T/out")" '["pq",11]' "the 11 queued, said in JSON"
is "$(total)" "failed2 running1 " "the running job and the failed ones are left"
is "$(count "id = $child and state = 'cancelled'")" 1 "a job that waited for a purged one is cancelled"
exits 0 "purging an empty backlog" jq-queue purge pq
is "$(cat "$T/out")" 0 "prints 0"
kill -CONT $w

# A large purge: batches, no long lock.  Meanwhile a probe locks a few of
# the queue's rows with lock_timeout 1s, again and again.
enqueue_n big 100000
is "$(count "queue = 'big'")" 100000 "100,000 queued"
probe() {
	i=0
	while [ ! -e "$T/purged" ]; do
		sql "set lock_timeout = '1s'" \
			"select count(*) from (select 1 from jobs where queue = 'big' and state = 'queued' order by id limit 10 for update) x" \
			> /dev/null 2>> "$T/probe.err" || echo fail >> "$T/probe.fails"
		i=$((i + 1))
		echo "$i" > "$T/probes"
	done
}
: > "$T/probe.fails"
probe &
p=$!
at_exit "kill $p 2>/dev/null"
wait_for "the probe runs" 10 test -s "$T/probes"
exits 0 "purge of 100,000 queued jobs" jq-queue purge --yes big
touch "$T/purged"
wait $p
is "$(cat "$T/out")" 100000 "all counted"
is "$(count "queue = 'big'")" 0 "all gone"
diag "probes during the purge: $(cat "$T/probes")"
is "$(wc -l < "$T/probe.fails" | tr -d ' ')" 0 "no probe waited a second for a lock"
done_testing
