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
exits 64 "-q is refused" jq-cancel -q x 1
exits 64 "a bad id is a usage error" jq-cancel abc
done_testing
