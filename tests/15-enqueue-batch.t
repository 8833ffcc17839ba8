#!/bin/sh
# --batch: committed batches stay when a later value is bad; a quiet pipe
# does not hold values back.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

printf '1\n2\n3\n4\n5\n6\n7\n{"bad"\n9\n' > "$T/in"
exits 65 "a bad value in the fourth batch exits 65" jq-enqueue --batch 2 < "$T/in"
is "$(wc -l < "$T/out" | tr -d ' ')" 6 "the ids of the three committed batches are printed"
is "$(sql "select string_agg(payload::text, ',' order by id) from jobs")" "1,2,3,4,5,6" "their jobs stay"
like "$(sed -n 1p "$T/err")" "^jq-enqueue: stdin:8: truncated input" "the error names the bad line"
like "$(sed -n 2p "$T/err")" "^jq-enqueue: stdin:7: 6 values before this line were enqueued; nothing from here on was" \
	"and the first line not enqueued"

# A slow writer: each value is committed and its id printed while the
# pipe is still open.
sql "truncate jobs" >/dev/null
mkfifo "$T/fifo"
jq-enqueue --batch 100 < "$T/fifo" > "$T/ids" &
pid=$!
exec 3> "$T/fifo"
echo '{"slow":1}' >&3
wait_for "first value committed" 10 sh -c "test \"\$(psql -X -Atc 'select count(*) from \"$JQ_SCHEMA\".jobs')\" = 1"
ok "the first value is committed before the pipe closes" test "$(sql "select count(*) from jobs")" = 1
wait_for "first id printed" 10 test -s "$T/ids"
is "$(wc -l < "$T/ids" | tr -d ' ')" 1 "its id is printed at once"
echo '{"slow":2}' >&3
exec 3>&-
wait $pid
is "$?" 0 "the run ends cleanly at end of input"
is "$(sql "select count(*) from jobs")" 2 "both values are in"

# Batches of exactly N commit as they fill.
sql "truncate jobs" >/dev/null
i=0; while [ $i -lt 2500 ]; do echo $i; i=$((i + 1)); done > "$T/n"
exits 0 "2500 values in batches of 1000" jq-enqueue --batch 1000 < "$T/n"
is "$(wc -l < "$T/out" | tr -d ' ')" 2500 "2500 ids"
is "$(sql "select count(*) from jobs")" 2500 "2500 jobs"
done_testing
