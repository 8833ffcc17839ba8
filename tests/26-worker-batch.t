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
