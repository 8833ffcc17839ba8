#!/bin/sh
# Retention: finished jobs go once older than their state's keep time, in
# batches, by one worker at a time; live jobs and recent history stay.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

# history rows of queue ret: STATE AGE COUNT
finished() {
	sql "insert into history (queue, state, payload, attempts, created_at, started_at, finished_at)
	     select 'ret', '$1', '{}', 1, now() - interval '$2' - interval '1 minute',
	            now() - interval '$2' - interval '1 second', now() - interval '$2'
	       from generate_series(1, $3)" > /dev/null
}
left() { sql "select count(*) from history where queue = 'ret' and state = '$1' and finished_at $2 now() - interval '$3'"; }

# Live jobs, however old, are never touched.
jq-enqueue -q ret-live '{"n":1}' '{"n":2}' > /dev/null
jq-enqueue -q ret-live --delay 1h '{"n":3}' > /dev/null
sql "update jobs set created_at = now() - interval '1 year', run_at = now() - interval '1 year'
      where queue = 'ret-live' and state = 'queued'" > /dev/null

finished completed '2 hours' 2500
finished completed '30 minutes' 7
finished failed '2 hours' 5
finished failed '2 days' 4
finished cancelled '2 days' 3
finished cancelled '3 hours' 2
# A worker row silent for two days goes; a recent one stays.
sql "insert into workers (name, queues, concurrency, seen_at) values
       ('gone:1', '{x}', 1, now() - interval '2 days'), ('here:1', '{x}', 1, now())" > /dev/null

# The SQL function by hand: batches are bounded, -1 while another holds the lock.
is "$(sql "select prune_history('1 hour', '1 day', 10)")" 10 "prune_history removes one batch at a time"
PGAPPNAME=holder sql "select pg_advisory_lock(7367281, hashtext('jq/prune'))" "select pg_sleep(60)" \
	> /dev/null 2>&1 &
holder=$!
at_exit "kill $holder 2>/dev/null"
locked() { test "$(sql "select count(*) from pg_locks where locktype = 'advisory' and granted")" -ge 1; }
wait_for "the lock is taken" 10 locked
is "$(sql "select prune_history('1 hour', '1 day', 10)")" -1 "one caller at a time: the others skip"
exits 0 "a draining worker runs while another prunes" \
	jq-worker -q ret --drain --keep-completed 1h --keep-failed 1d -- true
is "$(left completed '<' '1 hour')" 2490 "and leaves pruning to the lock holder"
# (Killing psql would leave its backend asleep, holding the lock.)
sql "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'holder'" > /dev/null
wait $holder 2>/dev/null

exits 0 "a worker prunes as it starts (here: --drain)" \
	jq-worker -q other --drain --keep-completed 1h --keep-failed 1d -- true
is "$(left completed '<' '1 hour')" 0 "completed jobs older than --keep-completed are gone, all 2490"
is "$(left completed '>' '1 hour')" 7 "younger completed jobs stay"
is "$(left failed '<' '1 day')" 0 "failed jobs older than --keep-failed are gone"
is "$(left failed '>' '1 day')" 5 "failed jobs younger than --keep-failed stay, though older than --keep-completed"
is "$(left cancelled '<' '1 day')" 0 "cancelled jobs are kept like failed ones"
is "$(left cancelled '>' '1 day')" 2 "younger cancelled jobs stay"
is "$(sql "select count(*) from jobs where queue = 'ret-live'")" 3 "live jobs are never touched"
is "$(sql "select string_agg(name, ',') from workers where name in ('gone:1', 'here:1')")" "here:1" \
	"workers silent for a day are forgotten"

# The defaults keep a day of completed jobs and a week of failed ones.
finished completed '25 hours' 3
finished completed '23 hours' 2
finished failed '8 days' 3
finished failed '6 days' 1
exits 0 "the defaults" jq-worker -q other --drain -- true
is "$(left completed '<' '1 day')" 0 "by default completed jobs are kept a day"
is "$(left completed '>' '1 day')" 9 "(and not less)"
is "$(left failed '<' '1 week')" 0 "and failed ones a week"
is "$(left failed '>' '1 week')" 6 "(and not less)"
done_testing
