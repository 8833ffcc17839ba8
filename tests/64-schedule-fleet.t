#!/bin/sh
# A schedule fired by a fleet: four workers on its queue, every second,
# for about fifteen seconds, two of them killed with SIGKILL and restarted
# halfway.  Each slot must make exactly one job: none doubled, none skipped
# (--catch-up all, so a slot late under load is still fired, and counted).
# A job a killed worker held comes back when its lease runs out: a short
# lease lets that happen within the test, which waits for it.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

exits 0 "add a schedule every second" jq-schedule add tick -q tick --every 1s --catch-up all
# Most jobs run on a worker that did not fire them: each handler still says what it is for.
cat > "$T/h" <<'H'
#!/bin/sh
cat > /dev/null
echo "$JQ_JOB_ID ${JQ_SCHEDULE:-none} ${JQ_SCHEDULED_FOR:-none}" >> "$RECORD"
H
chmod +x "$T/h"
export RECORD="$T/record"
start() { # N: worker N, its log in $T/wN.err
	jq-worker -q tick -c 2 --lease 2s -- "$T/h" 2>> "$T/w$1.err" &
	eval "pid$1=\$!"
}
for n in 1 2 3 4; do start $n; done
# An idle worker of another queue, to hear of a schedule added later.
jq-worker -q other -- true 2> "$T/w5.err" &
pid5=$!
at_exit 'kill $pid1 $pid2 $pid3 $pid4 $pid5 2> /dev/null'
slots() { sql "select count(*) from all_jobs where key like 'schedule/tick/%'"; }
enough() { [ "$(slots)" -ge "$1" ]; }

wait_for "six slots fired" 30 enough 6
sleep 1
kill -9 $pid1 $pid3
diag "killed two workers (-9) at $(slots) slots"
sleep 1
start 1
start 3
wait_for "six more slots fired" 30 enough "$(($(slots) + 6))"
exits 0 "add a schedule to the idle worker's queue" jq-schedule add other -q other --every 1s
other() { [ "$(sql "select count(*) from all_jobs where key like 'schedule/other/%'")" -ge 2 ]; }
# Well within the minute after which a worker reads its schedules anyway.
wait_for "the idle worker fired it" 20 other && pass "a worker hears of a new schedule at once (NOTIFY)" ||
	fail "a worker hears of a new schedule at once (NOTIFY)"
exits 0 "pause it" jq-schedule pause tick
sleep 1
all_ran() { [ "$(sql "select count(*) from all_jobs where key like 'schedule/tick/%' and state <> 'completed'")" = 0 ]; }
wait_for "every fired job to finish" 30 all_ran
kill -TERM $pid1 $pid2 $pid3 $pid4 $pid5
wait $pid1 $pid2 $pid3 $pid4 $pid5 2> /dev/null

got=$(sql "select count(*) || ' ' || count(distinct key) || ' ' ||
	(extract(epoch from max(s) - min(s))::integer + 1)
	from (select key, substr(key, length('schedule/tick/') + 1)::timestamptz s
	      from all_jobs where key like 'schedule/tick/%') x")
n=${got%% *}
diag "jobs, distinct slots, seconds from the first slot to the last: $got"
[ "$n" -ge 12 ] && pass "at least twelve slots fired ($n)" || fail "at least twelve slots fired ($n)"
is "$got" "$n $n $n" "one job per slot: none doubled, none skipped"
left=$(sql "select count(*) from all_jobs where key like 'schedule/tick/%' and state <> 'completed'")
[ "$left" = 0 ] || sql "select id, key, state, attempts from all_jobs where key like 'schedule/tick/%' and state <> 'completed'" | sed 's/^/# not completed: /'
is "$left" 0 "every one of them ran"
is "$(sql "select last_slot = (select max(substr(key, 15)::timestamptz) from all_jobs where key like 'schedule/tick/%') from schedules where name = 'tick'")" \
	t "the schedule's last slot is the last job's"
fired_by=$(cat "$T"/w*.err | grep -c ' scheduled: schedule tick')
diag "fired: $fired_by job events; by worker: $(for n in 1 2 3 4; do printf '%s ' "$(grep -c ' scheduled: ' "$T/w$n.err")"; done)"
[ "$fired_by" -le "$n" ] && pass "no worker says it fired a slot another fired" ||
	fail "no worker says it fired a slot another fired ($fired_by events for $n jobs)"
is "$(grep -c ' none' "$RECORD")" 0 "every handler got JQ_SCHEDULE and JQ_SCHEDULED_FOR"
is "$(sql "select count(*) from all_jobs where key like 'schedule/tick/%'")" \
	"$(grep ' tick ' "$RECORD" | cut -d' ' -f1 | sort -u | wc -l | tr -d ' ')" "each job's handler ran"
done_testing
