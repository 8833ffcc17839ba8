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

# A value the database refuses (here a check the test adds) fails its
# whole batch, which is one COPY committing on its own; the batches
# before stay, and the error names the value's line.
sql "truncate jobs" "alter table jobs add constraint not13 check (payload <> '13')" > /dev/null
awk 'BEGIN { for (i = 1; i <= 20; i++) print i }' > "$T/twenty"
exits 65 "a value the database refuses in the third batch exits 65" jq-enqueue --batch 5 < "$T/twenty"
is "$(tr '\n' ' ' < "$T/out")" "$(sql "select string_agg(id::text, ' ' order by id) || ' ' from jobs")" \
	"the ids of the two committed batches are printed"
is "$(sql "select string_agg(payload::text, ',' order by id) from jobs")" "1,2,3,4,5,6,7,8,9,10" \
	"their jobs stay, and none of the third batch"
like "$(sed -n 1p "$T/err")" "^jq-enqueue: stdin:13: cannot enqueue: .*not13" "the error names the refused line"
like "$(sed -n 2p "$T/err")" "^jq-enqueue: stdin:11: 10 values before this line were enqueued; nothing from here on was" \
	"and the first line not enqueued"
sql "alter table jobs drop constraint not13" "truncate jobs" > /dev/null

# A slow writer: each value is committed and its id printed while the
# pipe is still open.
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
