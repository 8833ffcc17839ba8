#!/bin/sh
# jq-worker records the outcomes it has ready and claims the next jobs in
# one transaction per turn of its loop (finish_and_claim), so with fsync on
# it pays one commit for many jobs; each outcome of a batch still gets
# exactly the meaning complete_attempt, fail_attempt or release_job gives it.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
h=$top_srcdir/tests/handlers

job() { sql "select $2 from all_jobs where id = $1"; }
running() { test "$(sql "select count(*) from jobs where queue = '$1' and state = 'running'")" -eq "$2"; }
# A job's finished_at is its finishing transaction's now(), the same for
# every job that transaction finished; started_at likewise for a claim.
xacts() { sql "select count(distinct $2) from history where queue = '$1'"; }

# ---- many outcomes, few transactions
# The test cluster commits without fsync, so a commit is quick and a turn
# seldom finds many outcomes ready by chance; here the database is held
# up on purpose, as a slow disk would: 16 handlers answer while the
# worker waits on a row lock, and their outcomes go in one transaction.
i=0; while [ $i -lt 16 ]; do echo '{"do":"slow"}'; i=$((i + 1)); done | jq-enqueue -q burst > /dev/null
NAP=1 jq-worker --drain -q burst -c 16 --pipe -- "$h/pipe" 2> "$T/burst.err" &
wpid=$!
wait_for "16 running jobs" 10 running burst 16
sql "begin" "select id from jobs where queue = 'burst' for update" "select pg_sleep(2)" "commit" > /dev/null
wait "$wpid"
is "$?" 0 "a --pipe worker with 16 slots drains 16 jobs"
is "$(sql "select count(*) from history where queue = 'burst' and state = 'completed'")" 16 "all completed"
is "$(xacts burst started_at)" 1 "claimed in one transaction"
n=$(xacts burst finished_at)
if [ "$n" -le 2 ]; then
	pass "16 outcomes recorded in $n transactions"
else
	fail "16 outcomes recorded in $n transactions (at most 2 expected: the one held up, and the rest)"
fi
is "$(grep -c ' completed: took ' "$T/burst.err")" 16 "each job's completion is told, as before"

# A free run: the outcomes a turn finds share its transaction, and the
# claim for the slots they freed goes with them.
i=0; while [ $i -lt 200 ]; do echo '{"do":"slow"}'; i=$((i + 1)); done | jq-enqueue -q many > /dev/null
NAP=0.2 exits 0 "200 jobs through 16 --pipe handlers" jq-worker --drain -q many -c 16 --pipe -- "$h/pipe"
is "$(sql "select count(*) from history where queue = 'many' and state = 'completed' and attempts = 1")" 200 \
	"every job is completed, at its first attempt"
is "$(grep -c ' completed: took ' "$T/err")" 200 "each job's completion is told"
is "$(grep -c ' started: attempt 1/3' "$T/err")" 200 "and each start"
# (started_at is each handler's start, not a transaction's: jobs of the
# local queue start between turns.)
n=$(xacts many finished_at)
if [ "$n" -lt 200 ]; then
	pass "outcomes share transactions: $n for 200 jobs"
else
	fail "outcomes share transactions: $n for 200 jobs"
fi

# ---- progress, coalesced
# Handlers that report progress as fast as they can: each job's progress
# reaches the database at most every 100 ms, in the turn's own statement,
# and the last report goes with the outcome, so the job keeps it.
cat > "$T/flood" << 'EOF2'
#!/bin/sh
cat > /dev/null
i=0
end=$(($(date +%s) + 2))
while [ "$(date +%s)" -lt "$end" ]; do
	j=0
	while [ $j -lt 200 ]; do i=$((i + 1)); echo "$((i % 100)) line $i" >&3; j=$((j + 1)); done
done
echo "$i"
EOF2
chmod +x "$T/flood"
upd() { sql "select pg_stat_clear_snapshot()" "select n_tup_upd from pg_stat_user_tables where relid = 'jobs'::regclass" | tail -1; }
before=$(upd)
f1=$(jq-enqueue -q flood '{}'); f2=$(jq-enqueue -q flood '{}')
exits 0 "two handlers flood their progress fd" jq-worker --drain -q flood -c 2 -- "$T/flood"
lines=$(sql "select sum(result::text::int) from history where queue = 'flood'")
secs=$(sql "select ceil(sum(extract(epoch from finished_at - started_at))) from history where queue = 'flood'")
updates=$(($(upd) - before))
diag "$lines progress lines in ${secs}s of running; $updates updates of jobs (2 of them claims)"
ok "thousands of lines were written" test "$lines" -ge 2000
# At most one update every 100 ms per job, and one more each at the end.
ok "they made at most $((secs * 10 + 4 + 2)) updates" test "$updates" -le $((secs * 10 + 4 + 2))
for f in $f1 $f2; do
	n=$(job "$f" "result::text")
	is "$(job "$f" "state || ' ' || progress || ' ' || message")" "completed 100 line $n" \
		"job $f keeps its last message"
done

# ---- one batch of mixed outcomes, straight through the function
wid=$(sql "select register_worker('test', '{mix}', 5, '30s')")
for k in 1 2 3 4 5; do jq-enqueue -q mix --max-attempts 3 "{\"k\":$k}" > /dev/null; done
for k in 6 7 8; do jq-enqueue -q mix2 "{\"k\":$k}" > /dev/null; done
set -- $(sql "select id from claim_jobs($wid, '{mix}', 5, '30s') order by id")
j1=$1 j2=$2 j3=$3 j4=$4 j5=$5
# Job 4 was taken over meanwhile: its lease ran out, and another claim made attempt 2.
sql "update jobs set attempts = 2 where id = $j4" > /dev/null
is "$(sql "select coalesce(state, 'lost') || ' ' || coalesce(queue, '-')
             from finish_and_claim($wid, array[$j1, $j2, $j3, $j4, $j5], array[1, 1, 1, 1, 1],
                  array['completed', 'failed', 'failed', 'completed', 'released'],
                  array['{\"r\": 1}', null, null, '{\"r\": 4}', null]::jsonb[],
                  array[null, 'try again', 'no hope', null, null],
                  array[false, false, true, false, false],
                  array['0', '10 minutes', '0', '0', '0']::interval[],
                  '{mix2}', 2, '30s')" | tr '\n' ' ')" \
	"completed - scheduled - failed - lost - queued - claimed mix2 claimed mix2 " \
	"a batch says what became of each outcome, in order, then the jobs it claimed"
is "$(job "$j1" "state || ' ' || result::text")" 'completed {"r": 1}' "completed: with its result"
is "$(job "$j2" "state || ' ' || error || ' ' || (run_at > now() + interval '9 minutes')")" \
	"scheduled try again true" "failed with attempts left: scheduled after its backoff"
is "$(job "$j3" "state || ' ' || attempts || ' ' || error")" "failed 1 no hope" "failed for good: failed at once"
is "$(job "$j4" "state || ' ' || attempts || ' ' || (result is null)")" "running 2 true" \
	"a stale outcome (lease lost) changes nothing"
is "$(job "$j5" "state || ' ' || attempts || ' ' || (worker is null)")" "queued 0 true" \
	"released: back in the queue, the attempt not counted"
is "$(sql "select count(*) from jobs where queue = 'mix2' and state = 'running' and worker = $wid")" 2 \
	"and no more jobs are claimed than asked for"
fails "arrays of different lengths are refused" \
	sql "select * from finish_and_claim($wid, array[$j4], array[]::int[], array['completed'], array[null]::jsonb[],
	         array[null], array[false], array['0']::interval[], '{mix2}', 0, '30s')"
is "$(sql "select count(*) from finish_and_claim($wid, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{mix2}', 0, '30s')")" 0 \
	"no outcomes and a limit of 0: nothing to do, nothing done"

# ---- turn(), schema 10: the same meanings, set-based, with the local queue
# t WORKER IDS ATTEMPTS KINDS RAN RESULTS ERRORS PERMANENT BACKOFFS RUN AHEAD [QUEUES]
t() {
	sql "select coalesce(state, 'lost') || coalesce(' ' || queue, '')
	     from turn($1, '$2'::bigint[], '$3'::integer[], '$4'::text[], '$5'::interval[], '$6'::jsonb[],
	               '$7'::text[], '$8'::boolean[], '$9'::interval[],
	               array_fill(null::smallint, array[cardinality('$2'::bigint[])]),
	               array_fill(null::text, array[cardinality('$2'::bigint[])]), 'x_progress',
	               '${12:-{tq\}}', ${10}, ${11}, '30s')" | tr '\n' ' '
}
tw=$(sql "select register_worker('turn', '{tq}', 2, '30s')")
for k in 1 2 3 4 5 6; do jq-enqueue -q tq "{\"k\":$k}" > /dev/null; done
is "$(t $tw '{}' '{}' '{}' '{}' '{}' '{}' '{}' '{}' 2 3)" \
	"running tq running tq claimed tq claimed tq claimed tq " \
	"a claim takes the jobs to start now as running, the rest as claimed, best first"
set -- $(sql "select id from jobs where queue = 'tq' and worker = $tw order by id")
r1=$1 r2=$2 c1=$3 c2=$4 c3=$5
is "$(sql "select string_agg(state || ':' || attempts || ':' || (started_at is not null), ' ' order by id)
             from jobs where queue = 'tq' and worker = $tw")" \
	"running:1:true running:1:true claimed:0:false claimed:0:false claimed:0:false" \
	"a claimed job has no attempt counted and no start"
is "$(t $tw "{$r1,$c1,$c2,$c3}" '{1,1,1,1}' '{completed,running,completed,released}' \
	'{NULL,2 seconds,1 second,NULL}' '{"{\"r\":1}",NULL,NULL,NULL}' '{NULL,NULL,NULL,NULL}' \
	'{f,f,f,f}' '{0,0,0,0}' 0 0)" "completed running completed queued " \
	"outcomes, a start and a release of claimed jobs, in order"
is "$(job "$c1" "state || ' ' || attempts || ' ' || (started_at between now() - interval '3 seconds' and now() - interval '1 second')")" \
	"running 1 true" "a claimed job told running: its attempt counts, started when its handler got it"
is "$(job "$c2" "state || ' ' || attempts || ' ' || (started_at < finished_at)")" "completed 1 true" \
	"a claimed job can end in one turn, its start told with its end"
is "$(job "$c3" "state || ' ' || attempts || ' ' || (worker is null) || ' ' || (started_at is null)")" \
	"queued 0 true true" "a released claimed job goes back with no attempt counted"
is "$(t $tw "{$r1}" '{1}' '{completed}' '{NULL}' '{"{\"r\":1}"}' '{NULL}' '{f}' '{0}' 0 0)" "completed " \
	"an outcome sent twice is told as the first send left it"
sql "select cancel_job($r2)" > /dev/null
is "$(t $tw "{$r2}" '{1}' '{released}' '{NULL}' '{NULL}' '{NULL}' '{f}' '{0}' 0 0)" "cancelled " \
	"a job being cancelled that its worker puts back ends cancelled, not queued again"
is "$(t $tw "{$r2}" '{1}' '{released}' '{NULL}' '{NULL}' '{NULL}' '{f}' '{0}' 0 0)" "cancelled " \
	"and a second send of that release is told the same"
is "$(t $tw "{$c1}" '{1}' '{failed}' '{1 second}' '{NULL}' '{oops}' '{f}' '{10 minutes}' 0 0)" "scheduled " \
	"a failed attempt with attempts left is scheduled again"
is "$(t $tw "{$c1}" '{1}' '{failed}' '{1 second}' '{NULL}' '{oops}' '{f}' '{10 minutes}' 0 0)" "scheduled " \
	"and a second send of it is told the same"
is "$(t $tw "{$c1}" '{2}' '{completed}' '{NULL}' '{NULL}' '{NULL}' '{f}' '{0}' 0 0)" "lost " \
	"a report of an attempt the worker does not hold changes nothing"
# Dependencies: one job waits on two that finish in the same turn; another on one that fails.
set -- $(for k in 1 2 3; do jq-enqueue -q tdep "{\"d\":$k}"; done)
d1=$1 d2=$2 d3=$3
both=$(jq-enqueue -q tdep --after "$d1,$d2" '{"both":1}')
dead=$(jq-enqueue -q tdep --after "$d3" '{"dead":1}')
dw=$(sql "select register_worker('dep', '{tdep}', 3, '30s')")
t $dw '{}' '{}' '{}' '{}' '{}' '{}' '{}' '{}' 3 0 '{tdep}' > /dev/null
is "$(t $dw "{$d1,$d2,$d3}" '{1,1,1}' '{completed,completed,failed}' '{NULL,NULL,NULL}' '{NULL,NULL,NULL}' \
	'{NULL,NULL,no}' '{f,f,t}' '{0,0,0}' 0 0 '{tdep}')" "completed completed failed " \
	"two dependencies completed and one failed in one turn"
is "$(job "$both" "state || ' ' || waiting")" "queued 0" "a job waiting on both is ready"
is "$(job "$dead" "state || ' ' || error")" "cancelled dependency $d3 failed" "a job waiting on the failed one is cancelled"
is "$(t $dw '{}' '{}' '{}' '{}' '{}' '{}' '{}' '{}' 0 1 '{empty}')" "due " \
	"a claim that finds fewer than asked says when the next scheduled job is due"
fails "report arrays of different lengths are refused" \
	sql "select * from turn($tw, '{1}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', 'x', '{tq}', 0, 0, '30s')"

# ---- the worker with mixed outcomes: each is told and recorded as before
p() { jq-enqueue -q "$1" "{\"do\":\"$2\"}"; }
ok=$(p m ok); fail=$(p m fail); bad=$(p m bad); twice=$(p m fail-twice)
exits 0 "a --pipe worker drains a mixed queue" jq-worker --drain --backoff 10ms -q m -c 4 --pipe -- "$h/pipe"
is "$(job "$ok" state)" completed "its completed job"
is "$(job "$fail" "state || ' ' || attempts || ' ' || error")" "failed 3 it went wrong" "its failing job, retried"
is "$(job "$bad" "state || ' ' || attempts")" "failed 1" "its job failed for good"
is "$(job "$twice" "state || ' ' || attempts")" "completed 3" "its job that fails twice"
like "$(cat "$T/err")" "job $fail failed: attempt 1/3: it went wrong; retry in" "failed attempts are told with their retry"
like "$(cat "$T/err")" "job $bad failed: for good after attempt 1/3: cannot use this payload" "failures for good too"
done_testing
