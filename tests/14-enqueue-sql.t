#!/bin/sh
# jq.enqueue() from SQL: the job exists if and only if the caller's
# transaction commits, and only then does the NOTIFY wake anyone.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
jq-enqueue '{"setup":1}' >/dev/null
s=$JQ_SCHEMA

# listen SECONDS: prints the notifications psql receives on <schema>_new.
listen() {
	psql -X -q -c "LISTEN \"${s}_new\"" -c "SELECT pg_sleep($1)" -c "SELECT 1" 2>&1 |
		sed -n 's/^Asynchronous notification "\([^"]*\)" with payload "\([^"]*\)".*/\1 \2/p'
}

listen 2 > "$T/rolled" &
sleep 0.5
sql "begin; select \"$s\".enqueue('{\"rb\":1}'::jsonb, queue => 'rb'); rollback;" >/dev/null
wait
is "$(sql "select count(*) from all_jobs where queue = 'rb'")" 0 "a job enqueued in a rolled-back transaction never exists"
is "$(cat "$T/rolled")" "" "and wakes no listener"

listen 2 > "$T/committed" &
sleep 0.5
id=$(sql "begin; select \"$s\".enqueue('{\"c\":1}'::jsonb, queue => 'cq', priority => 4, delay => '10 minutes', max_attempts => 9, key => 'sk'); commit;")
wait
is "$(sql "select queue || ' ' || priority || ' ' || max_attempts || ' ' || state || ' ' || key from jobs where id = $id")" \
	"cq 4 9 scheduled sk" "a committed enqueue() exists with its named arguments"
is "$(cat "$T/committed")" "${s}_new cq" "and sends one NOTIFY with the queue's name"
is "$(sql "select \"$s\".enqueue('{}'::jsonb, queue => 'cq', key => 'sk')")" "$id" "enqueue() honours keys"
at_id=$(sql "select \"$s\".enqueue('{}'::jsonb, at => now() + interval '1 day')")
is "$(sql "select state from jobs where id = $at_id")" scheduled "the at argument works unquoted"
exits 1 "enqueue() refuses a bad queue name" sql "select \"$s\".enqueue('{}'::jsonb, queue => 'a b')"
exits 1 "enqueue() refuses delay with at" sql "select \"$s\".enqueue('{}'::jsonb, delay => '1s', at => now())"

# One NOTIFY per statement and queue, however many rows.
listen 3 > "$T/bulk" &
sleep 0.5
i=0; while [ $i -lt 3000 ]; do
	echo "{\"payload\":$i,\"queue\":\"q$((i % 2))\"}"; i=$((i + 1))
done | jq-enqueue -e > /dev/null
wait
is "$(sort "$T/bulk" | tr '\n' ' ')" "${s}_new q0 ${s}_new q1 " "3000 jobs in two queues send two notifications"
done_testing
