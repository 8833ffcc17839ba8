#!/bin/sh
# jq-schedule: the commands, cron errors, slots through DST changes, and
# the firing path with slots in the past: --catch-up none, last and all,
# what handlers are told, and list.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

# next, touching nothing: cronie's times, worked out by hand (see tests/unit/cron.c).
# Europe/Berlin 2027: 02:00 CET -> 03:00 CEST on 28 March, 03:00 CEST -> 02:00 CET on 31 October.
exits 0 "next in Europe/Berlin across the spring change" \
	jq-schedule next '30 2 * * *' --tz Europe/Berlin --from 2027-03-26T12:00Z -n 4
is "$(cat "$T/out")" "2027-03-27T02:30:00+01:00
2027-03-28T03:00:00+02:00
2027-03-29T02:30:00+02:00
2027-03-30T02:30:00+02:00" "the 02:30 that does not exist fires once, at the change"
exits 0 "next in Europe/Berlin across the autumn change" \
	jq-schedule next '30 2 * * *' --tz Europe/Berlin --from 2027-10-29T12:00Z -n 3
is "$(cat "$T/out")" "2027-10-30T02:30:00+02:00
2027-10-31T02:30:00+02:00
2027-11-01T02:30:00+01:00" "the repeated 02:30 fires once, at its first occurrence"
# America/New_York 2027: 02:00 EST -> 03:00 EDT on 14 March, 02:00 EDT -> 01:00 EST on 7 November.
exits 0 "next in America/New_York, spring" \
	jq-schedule next '30 2 * * *' --tz America/New_York --from 2027-03-13T00:00Z -n 3
is "$(cat "$T/out")" "2027-03-13T02:30:00-05:00
2027-03-14T03:00:00-04:00
2027-03-15T02:30:00-04:00" "New York: skipped 02:30 at 03:00 EDT"
exits 0 "next in America/New_York, autumn" \
	jq-schedule next '30 1 * * *' --tz America/New_York --from 2027-11-06T00:00Z -n 3
is "$(cat "$T/out")" "2027-11-06T01:30:00-04:00
2027-11-07T01:30:00-04:00
2027-11-08T01:30:00-05:00" "New York: repeated 01:30 once, EDT"
exits 0 "next --json" jq-schedule next '@yearly' --from 2027-06-01T00:00Z -n 1 --json
is "$(jget -r .slot .epoch < "$T/out")" "2028-01-01T00:00:00+00:00 1830297600" "a JSON object per slot"

# Errors name the field and the value, for each kind of field.
for c in '60 * * * *|field 1 (minute): 60 is not in 0-59' \
	'0 24 * * *|field 2 (hour): 24 is not in 0-23' \
	'0 0 32 * *|field 3 (day of month): 32 is not in 1-31' \
	'0 0 1 jam *|field 4 (month): '"'jam'"' is not a number or a month name (jan-dec)' \
	'0 0 * * 9|field 5 (day of week): 9 is not in 0-7' \
	'*/0 * * * *|field 1 (minute): step '"'0'"' is not in 1-59' \
	'0 0 * *|expected 5 fields (minute hour day-of-month month day-of-week), got 4' \
	'@often|'"'@often'"' is not one of @hourly, @daily, @weekly, @monthly, @yearly'; do
	expr=${c%%|*} msg=${c#*|}
	exits 64 "add --cron '$expr' is a usage error" jq-schedule add bad -q s --cron "$expr"
	is "$(cat "$T/err" | head -1)" "jq-schedule: --cron: $msg" "naming the place: $msg"
done
exits 64 "an unknown zone" jq-schedule add bad -q s --cron '@daily' --tz Mars/Olympus_Mons
exits 64 "--cron and --every together" jq-schedule add bad -q s --cron '@daily' --every 1h
exits 64 "no queue" jq-schedule add bad --cron '@daily'
exits 65 "a payload that is not JSON" jq-schedule add bad -q s --cron '@daily' '{nope'
exits 69 "list never creates the schema" jq-schedule list
like "$(cat "$T/err")" 'schema' "and says which is missing"

# add, replace, list, pause, resume, rm.
exits 0 "add" jq-schedule add nightly -q s --cron '0 3 * * *' --tz Europe/Berlin -p 5 '{"r":1}'
is "$(cat "$T/out")" nightly "add prints the name"
exits 0 "add again" jq-schedule add nightly -q s --cron '15 3 * * *' --tz Europe/Berlin '{"r":2}'
like "$(cat "$T/err")" "schedule 'nightly' replaced; its next slot is .*T03:15:00\\+0[12]:00" \
	"replacing says so on stderr"
is "$(sql "select cron || ' ' || payload::text || ' ' || priority from schedules")" \
	'15 3 * * * {"r": 2} 0' "and replaces it"
exits 0 "list --json" jq-schedule list --json
is "$(jget -r .name .queue .cron .tz .catch_up .paused .last_job < "$T/out")" \
	"nightly s 15 3 * * * Europe/Berlin last false null" "list --json says what it is"
like "$(jget -r .next < "$T/out")" 'T03:15:00\+0[12]:00$' "and its next slot, in its zone"
exits 0 "pause" jq-schedule pause nightly
is "$(sql "select paused from schedules")" t "pause pauses"
exits 0 "resume" jq-schedule resume nightly
is "$(sql "select paused from schedules")" f "resume resumes"
exits 66 "pause of no such schedule" jq-schedule pause nope
like "$(cat "$T/err")" "schedule 'nope': no such schedule" "says so"
exits 0 "run fires now" jq-schedule run nightly
run_id=$(cat "$T/out")
is "$(sql "select payload::text || ' ' || state from jobs where id = $run_id")" '{"r": 2} queued' \
	"run enqueues the schedule's job and prints its id"
exits 0 "rm" jq-schedule rm nightly
is "$(sql "select count(*) from schedules")" 0 "rm removes"
exits 0 "list of none" jq-schedule list
is "$(cat "$T/out")" "" "lists nothing"

# The firing path, with slots in the past: five yearly slots missed.
cat > "$T/h" <<'H'
#!/bin/sh
cat > /dev/null
echo "$JQ_SCHEDULE $JQ_SCHEDULED_FOR $JQ_JOB_ID" >> "$RECORD"
H
chmod +x "$T/h"
export RECORD="$T/record"
missed() { # NAME CATCH-UP: a yearly schedule whose last five slots (2022..2026) went unfired
	jq-schedule add "$1" -q "q$1" --cron '0 0 1 1 *' --catch-up "$2" > /dev/null &&
	sql "update schedules set next_at = '2022-01-01 00:00+00' where name = '$1'"
}
fired() { sql "select string_agg(substr(key, length('schedule/$1/') + 1), ' ' order by id) from all_jobs where key like 'schedule/$1/%'"; }
for cu in none last all; do
	missed "m$cu" "$cu"
	: > "$RECORD"
	exits 0 "a worker fires the missed slots of --catch-up $cu" jq-worker -q "qm$cu" --drain -- "$T/h"
done
is "$(fired mnone)" "" "--catch-up none fires nothing for them"
is "$(fired mlast)" "2026-01-01T00:00:00Z" "--catch-up last fires the last of them, once"
is "$(fired mall)" "2022-01-01T00:00:00Z 2023-01-01T00:00:00Z 2024-01-01T00:00:00Z 2025-01-01T00:00:00Z 2026-01-01T00:00:00Z" \
	"--catch-up all fires all five, in order"
is "$(sql "select count(distinct to_char(next_at at time zone 'UTC', 'MM-DD HH24:MI')) || ' ' || (min(next_at) > now())::text from schedules")" \
	"1 true" "and each moves on to its next slot"
is "$(sort "$RECORD" | cut -d' ' -f1,2)" "mall 2022-01-01T00:00:00Z
mall 2023-01-01T00:00:00Z
mall 2024-01-01T00:00:00Z
mall 2025-01-01T00:00:00Z
mall 2026-01-01T00:00:00Z" "handlers get JQ_SCHEDULE and JQ_SCHEDULED_FOR"
exits 0 "a second worker on the same queue" jq-worker -q qmall --drain -- "$T/h"
is "$(sql "select count(*) from all_jobs where key like 'schedule/mall/%'")" 5 "fires none of them again"

# --pipe handlers find the schedule and the slot in the job's line.
jq-schedule add piped -q qpiped --cron '0 0 1 1 *' '{"do":"ok"}' > /dev/null
sql "update schedules set next_at = '2025-06-01 00:00+00' where name = 'piped'"
exits 0 "a --pipe worker" jq-worker -q qpiped --pipe --drain -- "$top_srcdir/tests/handlers/pipe"
is "$(sql "select (result->'line'->>'schedule') || ' ' || (result->'line'->>'scheduled_for') from all_jobs where queue = 'qpiped'")" \
	"piped 2026-01-01T00:00:00Z" "a --pipe handler gets \"schedule\" and \"scheduled_for\""

# --http handlers find them in headers.
"$top_builddir/tests/httpd" "$T/port" "$T" &
hpid=$!
at_exit "pkill -P $hpid 2>/dev/null; kill $hpid 2>/dev/null"
wait_for "the test server listens" 10 test -s "$T/port"
jq-schedule add webbed -q qweb --cron '0 0 1 1 *' > /dev/null
sql "update schedules set next_at = '2025-06-01 00:00+00' where name = 'webbed'"
exits 0 "an --http worker" jq-worker -q qweb --drain --http "http://127.0.0.1:$(cat "$T/port")/schedule"
is "$(sql "select result #>> '{}' from all_jobs where queue = 'qweb'")" "webbed 2026-01-01T00:00:00Z" \
	"an --http handler gets the Jq-Schedule and Jq-Scheduled-For headers"

# The DST rule on the firing path: 02:30 on 29 March 2026 did not exist in Berlin.
jq-schedule add spring -q qspring --cron '30 2 29 3 *' --tz Europe/Berlin --catch-up all > /dev/null
sql "update schedules set next_at = '2026-03-28 12:00+00' where name = 'spring'"
: > "$RECORD"
exits 0 "a worker fires a slot skipped by DST" jq-worker -q qspring --drain -- "$T/h"
is "$(cut -d' ' -f1,2 "$RECORD")" "spring 2026-03-29T01:00:00Z" "once, at the change (03:00 CEST)"
exits 0 "list" jq-schedule list --json -q qspring
is "$(jget -r .next .last_slot .last_state < "$T/out")" \
	"2027-03-29T02:30:00+02:00 2026-03-29T03:00:00+02:00 completed" \
	"list: the next slot, the last fired, its job's state"
like "$(jget -r .last_success < "$T/out")" '^20[0-9-]+T' "and when it last succeeded"

# A paused schedule fires nothing; resumed, it follows --catch-up.
missed paused last
jq-schedule pause paused > /dev/null
exits 0 "a worker with a paused schedule" jq-worker -q qpaused --drain -- "$T/h"
is "$(fired paused)" "" "a paused schedule fires nothing"
jq-schedule resume paused > /dev/null
exits 0 "resumed" jq-worker -q qpaused --drain -- "$T/h"
is "$(fired paused)" "2026-01-01T00:00:00Z" "resumed, it catches up as told (last)"

# A schedule whose queue is paused (jq-queue) waits the same way, and the
# resume is heard by a worker already running.
missed qpaused all
exits 0 "a queue only a schedule names may be paused" jq-queue pause qqpaused
exits 0 "a worker of the paused queue" jq-worker -q qqpaused --drain -- "$T/h"
is "$(fired qpaused)" "" "fires nothing of its schedules"
qp_registered() { test "$(sql "select count(*) from workers where queues = array['qqpaused']")" = 1; }
qp_fired() { test "$(sql "select count(*) from all_jobs where key like 'schedule/qpaused/%' and state = 'completed'")" = 5; }
jq-worker -q qqpaused -- "$T/h" 2> "$T/qpaused.err" &
qpw=$!
at_exit "kill $qpw 2>/dev/null"
wait_for "the worker to register" 10 qp_registered
exits 0 "resume" jq-queue resume qqpaused
wait_for "the running worker to fire the missed slots" 10 qp_fired
is "$(fired qpaused)" "2022-01-01T00:00:00Z 2023-01-01T00:00:00Z 2024-01-01T00:00:00Z 2025-01-01T00:00:00Z 2026-01-01T00:00:00Z" \
	"resumed, the running worker fires them as told (all), at once"
kill $qpw; wait $qpw

# A schedule this host cannot reckon (a zone its tz database lacks) is said once, not spun on.
jq-schedule add alien -q qalien --cron '@daily' > /dev/null
sql "update schedules set tz = 'Mars/Olympus_Mons', next_at = now() - interval '1 day' where name = 'alien'"
signal_after 2 TERM jq-worker -q qalien -- "$T/h" 2> "$T/alien.err"
is "$(grep -c "schedule 'alien': cannot fire it here: time zone 'Mars/Olympus_Mons' is not in this host's tz database" "$T/alien.err")" 1 \
	"a schedule that cannot be fired here is said once, and left for the next look"
jq-schedule rm alien > /dev/null

# jq-stats: the last success per schedule.
exits 0 "jq-stats --prometheus" jq-stats --prometheus
like "$(cat "$T/out")" '^pgjq_schedule_last_success_timestamp_seconds\{schedule="spring"\} [0-9]+' \
	"the last success time of each schedule"
# The man page's examples, as pasted (with a worker for the report, whose handler is true(1)).
if command -v mandoc > /dev/null 2>&1; then
	mandoc -Tascii "$top_srcdir/man/jq-schedule.1" | col -b | sed -n '/^EXAMPLES/,/^SEE ALSO/p' |
		grep -E '^[[:space:]]+jq-schedule ' | grep -v '| jq ' | sed 's/^[[:space:]]*//' > "$T/examples"
	is "$(wc -l < "$T/examples" | tr -d ' ')" 5 "the man page has five jq-schedule examples to try"
	jq-worker -q reports -- true 2> "$T/ex-worker.err" &
	wpid=$!
	at_exit "kill $wpid"
	while IFS= read -r line; do
		exits 0 "as pasted: $line" sh -c "$line" < /dev/null
	done < "$T/examples"
	is "$(sql "select count(*) from schedules where name in ('nightly-report', 'office-sync', 'heartbeat')")" 3 \
		"the examples added their schedules"
else
	skip "mandoc is not installed" 8
fi
done_testing
