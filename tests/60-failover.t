#!/bin/sh
# Failover: a worker and a waiter use a connection string naming a primary
# and its streaming standby, with target_session_attrs=read-write.  The
# primary dies mid-run (-m immediate), the standby is promoted, and they
# find the new primary on their own: every job ends completed.  What may run
# twice: the jobs in flight at the failover, and those whose outcome the
# worker recorded on the old primary but which had not reached the standby
# (asynchronous replication).
. "${top_srcdir:-..}/tests/lib.sh"
need_private_pg
pg_start
h=$top_srcdir/tests/handlers
export RECORD="$T/ran"
: > "$RECORD"
N=300      # jobs
C=4        # worker concurrency

# The test clusters run with synchronous_commit off for speed: a commit is
# acknowledged before its WAL is written, so a crash forgets it, and the
# walsender sends only written WAL, so the standby would lack commits the
# clients were told of.  pgjq's promises assume the default; restore it
# before the base backup, so the standby has it too.
sql "alter system set synchronous_commit = on" "select pg_reload_conf()" > /dev/null
ok "the schema is created on the primary" jq-enqueue -q warmup '{}'
pg_standby || bail_out "cannot make a standby"
pass "a streaming standby runs"

primary=$PG_DIR/sock
standby=$STANDBY_DIR/sock
JQ_DATABASE_URL="host=$primary,$standby port=5432,5433 user=pgjq dbname=pgjq target_session_attrs=read-write"
export JQ_DATABASE_URL
# Plain psql, for the standby.
sb() { psql -X -At -h "$standby" -p 5433 -d pgjq -c "$1"; }
count() { sql "select count(*) from all_jobs where $1"; }
has() { test "$(count "$1")" -ge "$2"; }
ran_at_least() { test "$(wc -l < "$RECORD")" -ge "$1"; }

is "$(sb "select pg_is_in_recovery()")" t "the standby is in recovery"
awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) printf "{\"i\":%d}\n", i }' |
	jq-enqueue -q fo > "$T/ids"
is "$(wc -l < "$T/ids" | tr -d ' ')" $N "$N jobs enqueued through the multi-host connection string"

# A waiter on every job, through the failover.
jq-status --wait $(cat "$T/ids") > "$T/wait.out" 2> "$T/wait.err" &
wpid=$!
at_exit "kill $wpid"
NAP=0.05 jq-worker -q fo -c $C --lease 3s -- "$h/record" > "$T/w.out" 2> "$T/w.err" &
w=$!
at_exit "kill -9 $w"
wait_for "a third of the jobs ran" 60 ran_at_least $((N / 3))

# Everything committed so far, the enqueues above all, must be on the
# standby before the primary goes: with asynchronous replication the last
# commits acknowledged may not have reached it, and a failover loses them
# (see FAILOVER in pgjq(7)).  The worker goes on meanwhile; what it records
# after this point may be lost, and those jobs then run again.
before=$(wc -l < "$RECORD")
lsn=$(psql -X -At -h "$primary" -p 5432 -d pgjq -c "select pg_current_wal_insert_lsn()")
wait_for "the standby to replay $lsn" 30 \
	sh -c "[ \"\$(psql -X -At -h '$standby' -p 5433 -d pgjq -c \"select pg_last_wal_replay_lsn() >= '$lsn'\")\" = t ]"
pg_stop immediate
after=$(wc -l < "$RECORD")
diag "failover after $after runs ($((after - before)) since the replication check)"
ok "the primary is gone" sh -c "! psql -X -At -h '$primary' -p 5432 -d pgjq -c 'select 1'"
ok "the standby is promoted" pg_promote_standby

wait_for "every job completed on the new primary" 60 has "queue = 'fo' and state = 'completed'" $N
is "$(count "queue = 'fo' and state = 'completed'")" $N "all $N jobs are completed on the new primary"
is "$(sql "select string_agg(id || ':' || state, ' ') from all_jobs where queue = 'fo' and state <> 'completed'")" "" \
	"no job is left running or queued"
is "$(sort -u "$RECORD" | wc -l | tr -d ' ')" $N "every job ran"
runs=$(wc -l < "$RECORD" | tr -d ' ')
twice=$(sort "$RECORD" | uniq -d | wc -l | tr -d ' ')
diag "$N jobs, $runs runs, $twice jobs ran twice"
# At most: the C in flight at the failover (their claims or outcomes may
# be lost), C more finished but not yet recorded, and those the worker
# finished after the replication check (their outcome may not have reached
# the standby).
ok "only jobs in flight or not yet replicated ran twice ($twice, bound $((2 * C + after - before)))" \
	test "$((runs - N))" -le $((2 * C + after - before))
like "$(cat "$T/w.err")" "lost the database" "the worker said it lost the database"
like "$(cat "$T/w.err")" "reconnected" "and that it reconnected, to the new primary"

wait $wpid
is "$?" 0 "jq-status --wait on every job rode out the failover and ends with 0"
kill -TERM $w
wait $w
is "$?" 0 "the worker stops cleanly"
is "$(sb "select pg_is_in_recovery()")" f "the new primary is the old standby"
done_testing
