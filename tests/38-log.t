#!/bin/sh
# Job logs: everything a handler writes on stderr, and its progress lines,
# kept per attempt with a time and a stream, for exec, --pipe and --http
# handlers; jq-status --log prints them.  A handler writing 50 MB is cut
# at --log-max, the cut said, the worker's memory bounded, the other jobs
# served; --keep-logs and retention remove them.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

# Ten lines on stderr and one progress line, then a failure; the second attempt succeeds.
cat > "$T/ten" <<'SH'
#!/bin/sh
i=1
while [ $i -le 10 ]; do echo "line $i of attempt $JQ_ATTEMPT" >&2; i=$((i + 1)); done
echo "50 halfway" >&3
[ "$JQ_ATTEMPT" -ge 2 ] || exit 3
echo '"ok"'
SH
chmod +x "$T/ten"
id=$(jq-enqueue -q ten '{}')
exits 0 "a job failing once, then succeeding" jq-worker -q ten --drain --backoff 10ms -- "$T/ten"
is "$(sql "select state || ' ' || attempts from all_jobs where id = $id")" "completed 2" "two attempts"
exits 0 "jq-status --log prints it" jq-status --log "$id"
is "$(wc -l < "$T/out" | tr -d ' ')" 22 "22 lines: 10 on stderr and a progress line, per attempt"
is "$(sed -E 's/^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]{12} //' "$T/out" | sed -n '1p;10p;11p;12p;22p')" \
"1 stderr line 1 of attempt 1
1 stderr line 10 of attempt 1
1 progress 50 halfway
2 stderr line 1 of attempt 2
2 progress 50 halfway" "in order: time, attempt, stream, line"
exits 0 "--attempt 2: that attempt's only" jq-status --log --attempt 2 "$id"
is "$(awk '{print $3}' "$T/out" | sort -u)" 2 "every line of attempt 2"
is "$(wc -l < "$T/out" | tr -d ' ')" 11 "all 11 of them"
exits 0 "--json: one object per line" jq-status --log --json "$id"
is "$(sed -n 12p "$T/out" | jget -r .id .attempt .stream .line)" "$id 2 stderr line 1 of attempt 2" \
	"with id, attempt, stream and line"
like "$(sed -n 1p "$T/out" | jget -r .time)" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' "and an ISO time"
exits 66 "no such job: 66" jq-status --log 999999
exits 64 "--log takes one id" jq-status --log "$id" 999999
exits 64 "--attempt is for --log" jq-status --attempt 1 "$id"

# --pipe: each stderr and progress line goes to the job in flight on its slot, 4 slots busy at once.
cat > "$T/pipe" <<'SH'
#!/bin/sh
while IFS= read -r line; do
	id=${line#'{"id":'}
	id=${id%%,*}
	for k in 1 2 3 4 5; do echo "job $id says $k" >&2; done
	printf '{"id":%s,"progress":40,"message":"job %s"}\n' "$id" "$id"
	sleep 0.4
	echo "job $id ends" >&2
	printf '{"id":%s,"status":"completed"}\n' "$id"
done
SH
chmod +x "$T/pipe"
i=0; while [ $i -lt 12 ]; do echo '{}'; i=$((i + 1)); done | jq-enqueue -q piped > "$T/ids"
exits 0 "12 jobs through 4 --pipe handlers" jq-worker -q piped -c 4 --pipe --drain -- "$T/pipe"
is "$(sql "select count(*) from history a where queue = 'piped' and 3 <= (select count(*) from history b
	where b.queue = 'piped' and b.id <> a.id and b.started_at < a.finished_at and a.started_at < b.finished_at)")" \
	12 "each ran beside 3 others"
is "$(sql "select count(*) from logs l join history h on h.id = l.job_id where h.queue = 'piped'
	and l.line !~ ('job ' || l.job_id || '( |$)')")" 0 "no line landed on another job"
is "$(sql "select string_agg(distinct n::text, ',') from (select count(*) n from logs l join history h
	on h.id = l.job_id where h.queue = 'piped' group by l.job_id) c")" 7 "every job has its 7 lines"
first=$(head -1 "$T/ids")
is "$(jq-status --log "$first" | cut -d' ' -f3- | tr '\n' '|')" \
"1 stderr job $first says 1|1 stderr job $first says 2|1 stderr job $first says 3|1 stderr job $first says 4|1 stderr job $first says 5|1 progress 40 job $first|1 stderr job $first ends|" \
	"in the order written, stderr and progress"

# --http: the status line and the error body of an answer that is not 2xx.
"$top_builddir/tests/httpd" "$T/port" "$T" &
srv=$!
at_exit "pkill -P $srv 2>/dev/null; kill $srv 2>/dev/null"
wait_for "the test server listens" 10 test -s "$T/port"
hid=$(jq-enqueue -q web --max-attempts 1 '{}')
exits 0 "an HTTP job answered 500" jq-worker -q web --drain --http "http://127.0.0.1:$(cat "$T/port")/fail"
is "$(jq-status --log "$hid" | cut -d' ' -f3- | tr '\n' '|')" "1 http HTTP 500|1 http the server broke|" \
	"its log has the status and the body"

# 50 MB on stderr, fast: cut at --log-max, said so; the worker's memory stays bounded; others run.
cat > "$T/flood" <<'SH'
#!/bin/sh
yes 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' |
	head -c 50000000 >&2
date +%s.%N > "$FLOOD_END"
SH
cat > "$T/quick" <<'SH'
#!/bin/sh
case $(cat) in *flood*) exec "$FLOOD" ;; esac
echo "quick $JQ_JOB_ID" >&2
SH
chmod +x "$T/flood" "$T/quick"
export FLOOD="$T/flood" FLOOD_END="$T/flood.end"
finished() { test "$(sql "select count(*) from history where queue = '$1'")" = "$2"; }
hwm() { sed -n 's/^VmHWM:[^0-9]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }
jq-enqueue -q warm '{}' > /dev/null
jq-worker -q warm -c 2 --log-max 256k -- "$T/quick" > /dev/null 2>&1 &
wpid=$!
at_exit "kill $wpid 2>/dev/null"
wait_for "a first job" 60 finished warm 1
base=$(hwm $wpid)
kill $wpid; wait $wpid
big=$(jq-enqueue -q flood '{"flood":1}')
i=0; while [ $i -lt 20 ]; do echo '{}'; i=$((i + 1)); done | jq-enqueue -q flood > /dev/null
jq-worker -q flood -c 2 --log-max 256k -- "$T/quick" > /dev/null 2> "$T/flood.err" &
wpid=$!
at_exit "kill $wpid 2>/dev/null"
wait_for "all 21 jobs done" 120 finished flood 21
peak=$(hwm $wpid)
kill $wpid; wait $wpid
diag "worker VmHWM: $base kB idle, $peak kB after 50 MB of stderr"
ok "its memory stayed bounded (under 40 MB more than a worker that ran one job)" \
	test "$peak" -lt $((base + 40000))
is "$(sql "select state from history where id = $big")" completed "the writer completed"
ok "its log holds at most --log-max" \
	test "$(sql "select sum(octet_length(line) + 1) from logs where job_id = $big and stream = 'stderr'")" -le 262144
like "$(sql "select stream || ' ' || line from logs where job_id = $big order by id desc limit 1")" \
	"^worker log cut: this attempt passed --log-max \\(262144 bytes\\)" "the cut is the last line, said"
during=$(sql "select count(*) from history h where h.queue = 'flood' and h.id <> $big
	and h.finished_at < to_timestamp($(cat "$FLOOD_END"))")
diag "$during of the 20 other jobs finished while it wrote"
ok "the other slot's jobs ran while it wrote" test "$during" -ge 5
is "$(sql "select count(*) from logs l join history h on h.id = l.job_id where h.queue = 'flood'
	and h.id <> $big and l.line = 'quick ' || h.id")" 20 "each with its own line"

# Retention: a job that leaves history takes its log along; --keep-logs drops lines sooner.
sql "delete from history where id = $id" > /dev/null
is "$(sql "select count(*) from logs where job_id = $id")" 0 "a pruned job's log goes with it"
n=$(sql "select count(*) from logs")
sql "update logs set at = at - interval '2 hours' where job_id = $first" > /dev/null
jq-enqueue -q none '{}' > /dev/null
exits 0 "a worker with --keep-logs 1h" jq-worker -q none --drain --keep-logs 1h -- true
is "$(sql "select count(*) from logs where job_id = $first")" 0 "drops the lines older than that"
is "$(sql "select count(*) from logs")" $((n - 7)) "and no other"
done_testing
