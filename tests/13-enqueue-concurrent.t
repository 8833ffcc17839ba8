#!/bin/sh
# Concurrent enqueuers: one key, one job; bulk runs side by side keep
# their own input order and share no id.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
jq-enqueue --json '{}' >/dev/null   # create the schema before the race

n=12
i=0
while [ $i -lt $n ]; do
	jq-enqueue --key only-one "{\"racer\":$i}" > "$T/key.$i" 2> "$T/key.$i.err" &
	i=$((i + 1))
done
wait
is "$(cat "$T"/key.* | sort -u | wc -l | tr -d ' ')" 1 "$n enqueuers of one key all print the same id"
is "$(cat "$T"/key.*.err)" "" "and none failed"
is "$(sql "select count(*) from jobs where key = 'only-one'")" 1 "exactly one job exists"

# Four bulk enqueuers with 5000 values each, at once.
for r in 1 2 3 4; do
	awk -v r=$r 'BEGIN { for (i = 0; i < 5000; i++) printf "{\"r\":%d,\"i\":%d}\n", r, i }' > "$T/bulk.$r"
done
for r in 1 2 3 4; do
	jq-enqueue -q bulk < "$T/bulk.$r" > "$T/ids.$r" 2> "$T/ids.$r.err" &
done
wait
is "$(cat "$T"/ids.*.err)" "" "four bulk enqueuers at once all succeed"
is "$(sql "select count(*) from jobs where queue = 'bulk'")" 20000 "20000 jobs"
is "$(cat "$T"/ids.[1-4] | sort -u | wc -l | tr -d ' ')" 20000 "20000 distinct ids printed"
for r in 1 2 3 4; do
	ids=$(tr '\n' ',' < "$T/ids.$r" | sed 's/,$//')
	is "$(sql "select count(*) from unnest('{$ids}'::bigint[]) with ordinality o(id, n) join jobs j on j.id = o.id and (j.payload->>'r')::int = $r and (j.payload->>'i')::int = o.n - 1")" \
		5000 "enqueuer $r's ids match its own values in order"
done
done_testing
