#!/bin/sh
# jq-cancel: queued and scheduled jobs at once; a running job through its
# worker; a finished job is left alone, and says so.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
s=$JQ_SCHEMA

state() { sql "select state from all_jobs where id = $1"; }

q=$(jq-enqueue '{}')
d=$(jq-enqueue --delay 1h '{}')
dep=$(jq-enqueue --after "$q" '{}')
exits 0 "cancelling a queued and a scheduled job" jq-cancel "$q" "$d"
is "$(cat "$T/out")" "$q
$d" "prints their ids"
is "$(state "$q") $(state "$d")" "cancelled cancelled" "both are cancelled at once"
is "$(state "$dep")" cancelled "a job that depended on one is cancelled too"

exits 1 "cancelling a finished job: exit 1" jq-cancel "$q"
is "$(cat "$T/out")" "" "prints no id"
is "$(cat "$T/err")" "jq-cancel: job $q is already cancelled; nothing changed" "says nothing changed"
c=$(jq-enqueue '{}'); sql "select finish_job($c, 'completed', null, null, null)" >/dev/null
exits 1 "a completed job" jq-cancel --json "$c"
is "$(jget .id .cancelled .state < "$T/out")" "[$c,false,\"completed\"]" "stays completed, --json says so"
is "$(state "$c")" completed "and is unchanged"

# A running job: marked, its worker told on <schema>_cancel.
r=$(jq-enqueue '{}')
sql "update jobs set state = 'running', worker = 42, lease_until = now() + interval '1 hour', attempts = 1, started_at = now() where id = $r" >/dev/null
psql -X -q -c "LISTEN \"${s}_cancel\"" -c "SELECT pg_sleep(2)" -c "SELECT 1" > "$T/notes" 2>&1 &
lpid=$!
wait_for "psql to listen" 10 sh -c "[ \"\$(psql -X -At -c \"select count(*) from pg_stat_activity where query like '%pg_sleep(2)%' and pid <> pg_backend_pid()\")\" = 1 ]"
exits 0 "cancelling a running job exits 0" jq-cancel "$r"
is "$(cat "$T/out")" "$r" "prints its id"
is "$(cat "$T/err")" "jq-cancel: job $r is running; its worker will stop it" "says the worker will stop it"
wait $lpid
like "$(cat "$T/notes")" "\"${s}_cancel\" with payload \"$r 42\"" "the worker is notified"
is "$(sql "select state || ' ' || cancel from jobs where id = $r")" "running true" "the job is marked"
# What the worker then does: finish it as cancelled, and a waiter sees it.
timeout 10 jq-status --wait "$r" 2> "$T/w.err" &
wpid=$!
sql "select finish_job($r, 'cancelled', 42, null, 'cancelled')" >/dev/null
wait $wpid
is "$?" 1 "a waiter sees it end cancelled"
is "$(sql "select count(*) from jobs where id = $r")" 0 "and it is not retried"

exits 66 "an unknown id: exit 66" jq-cancel 999999
like "$(cat "$T/err")" "job 999999: no such job" "it is named"
exits 64 "no ids is a usage error" jq-cancel
exits 64 "-q with ids is a usage error" jq-cancel -q x 1
exits 64 "--state without -q is a usage error" jq-cancel --state queued
exits 64 "a final state is a usage error" jq-cancel -q x --state failed

# A whole queue, in batches of a thousand: more than one batch here.
sql "insert into jobs (queue, state, payload) select 'bulk', 'queued', jsonb_build_object('i', i) from generate_series(1, 2500) i" \
    "insert into jobs (queue, state, run_at, payload) select 'bulk', 'scheduled', now() + interval '1 h', '{}' from generate_series(1, 3) i" \
    "insert into jobs (queue, state, payload) select 'keep', 'queued', '{}' from generate_series(1, 4) i" >/dev/null
sched=$(sql "select string_agg(id::text, ' ' order by id) from jobs where queue = 'bulk' and state = 'scheduled'")
dep=$(sql "select enqueue('{}', queue => 'keep', after => array[(select min(id) from jobs where queue = 'bulk' and state = 'queued')])")
ok "-q --state scheduled cancels a queue's scheduled jobs" jq-cancel -q bulk --state scheduled
is "$(tr '\n' ' ' < "$T/out")" "$sched " "and prints their ids"
is "$(sql "select count(*) from jobs where queue = 'bulk'")" 2500 "its queued jobs stay"
ok "-q cancels every live job of the queue" jq-cancel -q bulk
is "$(wc -l < "$T/out" | tr -d ' ')" 2500 "one id per job"
is "$(sort -n "$T/out" | uniq | wc -l | tr -d ' ')" 2500 "each once"
is "$(sql "select count(*) from jobs where queue = 'bulk'")" 0 "none is left"
is "$(sql "select count(*) from history where queue = 'bulk' and state = 'cancelled' and error = 'cancelled'")" 2503 \
	"all are in history, cancelled"
is "$(sql "select state || ' ' || error from all_jobs where id = $dep")" \
	"cancelled dependency $(head -1 "$T/out") was cancelled" "a job that depended on one is cancelled with it"
is "$(sql "select count(*) from jobs where queue = 'keep'")" 4 "another queue's jobs stay"
r1=$(jq-enqueue -q bulk '{}')
sql "update jobs set state = 'running', worker = 7, lease_until = now() + interval '1 h',
     attempts = 1, started_at = now() where id = $r1" >/dev/null
ok "--state running asks a running job's worker to stop it" jq-cancel -q bulk --state running --json
is "$(jget .id .cancelled .state < "$T/out")" "[$r1,true,\"running\"]" "said in JSON"
is "$(sql "select cancel from jobs where id = $r1")" t "the job is marked"
# Interrupted between batches: what was printed was cancelled, and only that.
sql "insert into jobs (queue, payload) select 'many', '{}' from generate_series(1, 30000)" >/dev/null
run signal_after 1 INT jq-cancel -q many
case $RC in
0) pass "the run ended before the signal (nothing to tell)" ;;
130) like "$(cat "$T/err")" "^jq-cancel: interrupted by SIGINT: [0-9]+ jobs cancelled, their ids printed" \
	"SIGINT: exit 130, saying how many were cancelled" ;;
*) fail "SIGINT: exit 130 (got $RC)" ;;
esac
is "$(wc -l < "$T/out" | tr -d ' ')" "$(sql "select count(*) from history where queue = 'many'")" \
	"every id printed was cancelled, and every job cancelled was printed"
ok "-q on a queue with nothing live" jq-cancel -q empty
is "$(cat "$T/out")" "" "prints nothing"
exits 64 "a bad id is a usage error" jq-cancel abc
done_testing
