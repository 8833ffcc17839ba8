#!/bin/sh
# jq-status showing jobs by id and listing a queue: human and --json.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

a=$(jq-enqueue -q pics '{"path":"a.jpg"}')
b=$(jq-enqueue -q pics --delay 1h --key nightly '{"path":"b.jpg"}')
c=$(jq-enqueue -q pics '{"path":"c.jpg","n":12345678901234567890}')
d=$(jq-enqueue -q pics '{"path":"d.jpg"}')
sql "update jobs set state = 'running', worker = 7, lease_until = now() + interval '1 hour', attempts = 1, started_at = now() - interval '75 s',
     progress = 40, message = 'resizing the photo' where id = $a" \
    "select finish_job($c, 'completed', null, '{\"thumb\":\"c.png\",\"n\":0.1}', null)" \
    "select finish_job($d, 'failed', null, null, E'boom: no such file\nsecond line \x1b[31mred')" >/dev/null

exits 0 "showing a job exits 0" jq-status "$a"
out=$(cat "$T/out")
like "$out" "^job $a  queue pics  running  attempt 1 of 3$" "the first line says id, queue, state and attempt"
like "$out" "^  progress  40% resizing the photo$" "progress and message"
like "$out" "^  started   [0-9-]+ [0-9:]+  \\(running 1m1[5-9]s\\)$" "when it started and how long it runs"
like "$out" "^  payload   \\{\"path\": \"a.jpg\"\\}$" "the payload"
like "$out" "^  worker    7 \\(no longer registered\\)$" "a worker that is gone, by its number"
w=$(sql "insert into workers (name, queues, concurrency) values ('host1:4242', '{pics}', 1) returning id")
sql "update jobs set worker = $w where id = $a" >/dev/null
ok "a job held by a registered worker" jq-status "$a"
like "$(cat "$T/out")" "^  worker    host1:4242$" "names it by host and pid"
ok "in JSON" jq-status --json "$a"
is "$(jget .worker .worker_name < "$T/out")" "[$w,\"host1:4242\"]" "its id and its name"
sql "update jobs set worker = 7 where id = $a" >/dev/null

exits 0 "several jobs at once, comma lists too" jq-status "$b,$c" "$d"
out=$(cat "$T/out")
like "$out" "^job $b  queue pics  scheduled" "a scheduled job"
like "$out" "^  run at    .*\\(in 59m5[0-9]s\\)$" "says when it will run"
like "$out" "^  key       nightly$" "and its key"
like "$out" "^  result    \\{\"n\": 0.1, \"thumb\": \"c.png\"\\}$" "a completed job's result"
like "$out" "^  error     boom: no such file$" "a failed job's error"
like "$out" "^            second line \\?\\[31mred$" "on several lines, control characters made harmless"
is "$(grep -c '^job ' "$T/out")" 3 "three jobs shown"
is "$(awk 'length > 80' "$T/out")" "" "no line is wider than 80 columns"

exits 66 "an unknown id exits 66" jq-status "$a" 999999
like "$(cat "$T/err")" "^jq-status: job 999999: no such job$" "and names it"
like "$(cat "$T/out")" "^job $a " "the known job is still shown"

# --json: the whole job, exactly as stored.
exits 0 "--json shows a job" jq-status --json "$c"
is "$(wc -l < "$T/out" | tr -d ' ')" 1 "one line per job"
is "$(jget .id .state .result.n .progress < "$T/out")" "[$c,\"completed\",0.1,100]" \
	"its fields"
like "$(cat "$T/out")" '"payload":\{"n": 12345678901234567890, ' "a big integer passes through byte for byte"
like "$(jget -r .finished_at < "$T/out")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "times are ISO 8601"

# Listings: newest first, by state, with a limit.
for i in 1 2 3 4 5; do jq-enqueue -q many "{\"i\":$i}" >/dev/null; done
exits 0 "listing a queue exits 0" jq-status -q pics
set -- $(awk 'NR > 1 { print $1 }' "$T/out")
is "$*" "$d $c $b $a" "newest first"
like "$(head -1 "$T/out")" "^ID +STATE +TRIES +PROG +AGE +RAN +INFO$" "under a header"
like "$(cat "$T/out")" "^ *$a +running +1/3 +40% .* resizing the photo$" "a running job's line"
like "$(cat "$T/out")" "^ *$d +failed +0/3 .* boom: no such file$" "a failed job shows its error"
is "$(awk 'length > 80' "$T/out")" "" "no line is wider than 80 columns"
run env COLUMNS=60 jq-status -q pics
is "$(awk 'length > 60' "$T/out")" "" "COLUMNS is obeyed off a terminal"
like "$(cat "$T/out")" "boom: no s\.\.\.$" "and long text is cut"
ok "--state filters" jq-status -q pics --state failed
is "$(awk 'NR > 1 { print $1 }' "$T/out")" "$d" "only the failed job"
ok "--limit" jq-status -q many --limit 2 --json
is "$(jget .payload.i < "$T/out" | tr '\n' ' ')" "5 4 " "the newest two"
ok "without -q, every queue" jq-status --json --limit 100
is "$(jget -r .queue < "$T/out" | sort -u | tr '\n' ' ')" "many pics " "both queues' jobs are listed"
is "$(jget .id < "$T/out" | tr '\n' ' ')" "$(jget .id < "$T/out" | sort -rn | tr '\n' ' ')" "newest first"
jq-enqueue -q third '{}' > /dev/null
ok "-q twice lists both queues" jq-status -q pics -q many --json --limit 100
is "$(jget -r .queue < "$T/out" | sort | uniq -c | awk '{ print $2 ":" $1 }' | tr '\n' ' ')" \
	"many:5 pics:4 " "every job of each, none of a third queue"
ok "-q of a queue with no jobs" jq-status -q nothing
is "$(cat "$T/out")" "" "lists nothing"

# A listing takes both tables, every state and several queues together,
# newest first, and cuts at --limit across all of them.
for i in 1 2 3 4 5 6; do jq-enqueue -q mix "{\"m\":$i}"; done > "$T/mix"
set -- $(cat "$T/mix")
m1=$1 m2=$2 m3=$3 m4=$4 m5=$5 m6=$6
o1=$(jq-enqueue -q other '{"o":1}')
sql "select finish_job($m2, 'completed', null, null, null)" "select finish_job($m4, 'failed', null, null, 'x')" \
    "select cancel_job($m5)" >/dev/null
ok "a queue over both tables, cut" jq-status -q mix --limit 4 --json
is "$(jget .id .state < "$T/out" | tr '\n' ' ')" \
	"[$m6,\"queued\"] [$m5,\"cancelled\"] [$m4,\"failed\"] [$m3,\"queued\"] " "the newest four, live and finished"
ok "two queues, cut" jq-status -q mix -q other --limit 3 --json
is "$(jget .id < "$T/out" | tr '\n' ' ')" "$o1 $m6 $m5 " "newest first across the queues"
ok "one state of a queue" jq-status -q mix --state queued --json
is "$(jget .id < "$T/out" | tr '\n' ' ')" "$m6 $m3 $m1 " "only its queued jobs, newest first"
ok "one state of every queue" jq-status --state completed --limit 2 --json
is "$(jget .id < "$T/out" | tr '\n' ' ')" "$m2 $c " "the newest two completed, of any queue"
ok "a state no job is in" jq-status -q mix --state running
is "$(cat "$T/out")" "" "lists nothing"
exits 64 "an unknown state is a usage error" jq-status --state done
exits 64 "--state with ids is a usage error" jq-status --state failed "$a"
exits 64 "-q with ids is a usage error" jq-status -q pics "$a"
exits 64 "--limit 0 is a usage error" jq-status --limit 0
exits 64 "a bad id is a usage error" jq-status 12x
exits 64 "--wait without ids is a usage error" jq-status --wait
done_testing
