#!/bin/sh
# Issue 19's directed cases: combinations of faults and races that the
# random faults of tests/chaos rarely hit, each made to happen on purpose.
# (The third, a cancel during the worker's grace, is tests/37's first case,
# for exec and --pipe handlers.)
#
#  1. A cancel racing the handler's own completion: jq-cancel runs just
#     before, during or just after the handler's end, many times.  The job
#     ends completed or cancelled, never runs again, and jq-cancel's answer
#     agrees with the end: "cancelled" (it had not started as far as the
#     database knew) ends cancelled; "running" ends cancelled, or completed
#     by a run its handler finished with success; not cancelled ("completed")
#     stays completed.
#  2. Leases running out while the database refuses a worker's turns (an
#     error that is not a lost connection: the worker records its outcomes
#     one by one, and those are refused too).  The jobs go to another
#     worker; the refused worker's late outcomes change nothing; once the
#     refusals stop, it works again; nothing is lost or recorded twice.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
d=$top_srcdir/tests/chaos.d
CHAOS_RUNS=$T/runs
export CHAOS_RUNS
: > "$CHAOS_RUNS"

state() { sql "select state from all_jobs where id = $1"; }
live() { [ "$(sql "select count(*) from jobs where queue = '$1'")" = 0 ]; }

# ------------------------------------------------ 1. cancel racing completion

# The handler naps 0.2 s; the cancel comes 0 to 0.15 s after its start is
# seen (which is itself up to 0.1 s late), so before, at and after its end.
ROUNDS=30
for mode in exec pipe; do
	q=race$mode
	if [ $mode = pipe ]; then handler="--pipe -- $d/pipehandler"; else handler="-- $d/handler"; fi
	# Word splitting of $handler is wanted.
	jq-worker -q $q -c 1 --json --kill-after 1s $handler 2> "$T/w.$mode.err" &
	w=$!
	at_exit "kill -9 $w 2>/dev/null"
	: > "$T/answers"
	i=0
	while [ $i -lt $ROUNDS ]; do
		off=$(awk -v i=$i 'BEGIN { printf "%.3f", (i % 7) * 0.025 }')
		j=$(jq-enqueue -q $q '{"n": 0, "nap": 0.2, "fail": 0}')
		wait_for "job $j to start" 30 grep -q "^S [^ ]* $j " "$CHAOS_RUNS"
		sleep "$off"
		echo "$j $(jq-cancel --json "$j" 2>/dev/null)" >> "$T/answers"
		wait_for "job $j to finish" 30 live $q
		i=$((i + 1))
	done
	ok "$mode: every job of the race finished" live $q
	kill -TERM $w
	wait $w
	is "$?" 0 "$mode: the worker stops with status 0"

	# ID ANSWER-CANCELLED ANSWER-STATE FINAL-STATE STARTS ENDS-OK
	while read -r j ans; do
		c=$(echo "$ans" | sed -n 's/.*"cancelled":\([a-z]*\).*/\1/p')
		s=$(echo "$ans" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')
		echo "$j ${c:-none} ${s:-none} $(state "$j")" \
			"$(grep -c "^S [^ ]* $j " "$CHAOS_RUNS")" \
			"$(grep "^E [^ ]* $j " "$CHAOS_RUNS" | grep -c ' ok$')"
	done < "$T/answers" > "$T/race.$mode"
	diag "$mode: jq-cancel's answer -> the job's end, over $ROUNDS rounds:" \
		"$(awk '{ n[$2 " " $3 " -> " $4]++ } END { for (k in n) printf "%s: %d; ", k, n[k] }' "$T/race.$mode")"
	is "$(awk '$5 != 1 { print "job " $1 ": " $5 " runs" }' "$T/race.$mode")" "" \
		"$mode: every job of the race ran once, never again"
	is "$(awk '$4 != "completed" && $4 != "cancelled" { print "job " $1 " ended " $4 }' "$T/race.$mode")" "" \
		"$mode: every job ended completed or cancelled"
	is "$(awk '
		$2 == "true" && $3 == "cancelled" && $4 != "cancelled" { print "job " $1 ": cancelled at once, ended " $4 }
		$2 == "true" && $3 == "running" && $4 == "completed" && $6 != 1 { print "job " $1 ": completed with no successful run" }
		$2 == "false" && $3 != $4 { print "job " $1 ": not cancelled as " $3 ", ended " $4 }
		$2 == "none" { print "job " $1 ": no answer" }' "$T/race.$mode")" "" \
		"$mode: jq-cancel's answer agrees with the job's end"
	unlike "$(cat "$T/w.$mode.err")" '"event":"(released|lease lost)"' \
		"$mode: the worker released and lost nothing"
done

# ------------------------------------- 2. leases run out during refused turns

# A trigger refuses every change of jobs made by the connections named
# "refused" while public.refuse says so: the turns of that worker fail
# with an error that leaves its connection fine (not a reconnect).
sql "create table public.refuse (now boolean not null)" "insert into public.refuse values (false)" \
	"create function public.refuse_turns() returns trigger language plpgsql as \$f\$
	 begin
		if current_setting('application_name') = 'refused' and (select now from public.refuse) then
			raise exception 'refused by the test';
		end if;
		return coalesce(new, old);
	 end \$f\$" \
	"create trigger refuse before insert or update or delete on jobs
	 for each row execute function public.refuse_turns()" > /dev/null
refuse() { sql "update public.refuse set now = $1" > /dev/null; }

# The handler logs "S|E ID ATTEMPT WHO" and naps $NAP; its result names WHO.
cat > "$T/h" <<'EOF'
#!/bin/sh
cat > /dev/null
echo "S $JQ_JOB_ID $JQ_ATTEMPT $WHO" >> "$RB_RUNS"
sleep "$NAP"
echo "E $JQ_JOB_ID $JQ_ATTEMPT $WHO" >> "$RB_RUNS"
printf '{"who":"%s","attempt":%s}\n' "$WHO" "$JQ_ATTEMPT"
EOF
chmod +x "$T/h"
RB_RUNS=$T/rb.runs
export RB_RUNS
: > "$RB_RUNS"
started() { [ "$(grep -c "^S .* $1\$" "$RB_RUNS")" -ge "$2" ]; }
expired() { [ "$(sql "select count(*) from jobs where queue = 'rb' and lease_until < now()")" -ge "$1" ]; }
finished() { [ "$(sql "select count(*) from all_jobs where id in ($1) and state = 'completed'")" = "$2" ]; }

# Worker a holds two jobs (napping 4 s, twice its lease) when its turns
# start to be refused.
NAP=4 WHO=a jq-worker -d "$JQ_DATABASE_URL&application_name=refused" -q rb -c 2 --lease 2s \
	--json -- "$T/h" 2> "$T/a.err" &
a=$!
at_exit "kill -9 $a 2>/dev/null"
j1=$(jq-enqueue -q rb '{}') j2=$(jq-enqueue -q rb '{}')
wait_for "worker a to start both jobs" 30 started a 2
ok "worker a runs both jobs" started a 2
refuse true
wait_for "their leases to run out" 30 expired 2
ok "with its turns refused, worker a's leases run out" expired 2

# Worker b reaps them and runs them to the end, while a's handlers still nap.
NAP=0.2 WHO=b jq-worker -q rb -c 2 --lease 2s --json -- "$T/h" 2> "$T/b.err" &
b=$!
at_exit "kill -9 $b 2>/dev/null"
wait_for "worker b to complete both" 60 finished "$j1,$j2" 2
ok "worker b takes both jobs over and completes them" finished "$j1,$j2" 2
# a's handlers end (4 s) and their outcomes are refused; then the refusals
# stop, and a's next turns meet jobs another worker finished.
wait_for "worker a's handlers to end" 30 sh -c "[ \$(grep -c '^E .* a\$' '$RB_RUNS') -ge 2 ]"
sleep 1
refuse false
sleep 3
# (Claims or outcomes, whichever its first refused turn carried: with the
# claimer lost too, the turns claim.)
like "$(cat "$T/a.err")" 'cannot (claim jobs|record outcomes): refused by the test' "worker a says its turns were refused"
# Sent again at once, a refused turn would spin (a line each time), and
# its claims, rolled back, would lock the queued jobs that b then skips.
ok "once: it waits between refused turns, and says it once" test "$(grep -c 'cannot claim jobs' "$T/a.err")" -le 1
like "$(cat "$T/a.err")" 'turns are taken again, after [0-9]+ refused' "and says when turns are taken again"
is "$(sql "select id || ' ' || state || ' ' || (result->>'who') from all_jobs where id in ($j1, $j2) order by id")" \
	"$(printf '%s completed b\n%s completed b' "$j1" "$j2")" \
	"both jobs keep worker b's results: a's late outcomes changed nothing"
is "$(sql "select count(*) from history where id in ($j1, $j2)")" 2 "each is recorded once"
is "$(sql "select count(*) from all_jobs where id in ($j1, $j2) and attempts > max_attempts")" 0 \
	"and within its attempts"
is "$(grep -c "^S " "$RB_RUNS")" 4 "each ran twice, once on each worker, no more"

# Once the refusals stop, worker a works again: b stops, a takes new jobs.
kill -TERM $b
wait $b
is "$?" 0 "worker b stops with status 0"
j3=$(jq-enqueue -q rb '{}')
wait_for "worker a to complete a new job" 60 finished "$j3" 1
is "$(sql "select state || ' ' || (result->>'who') from all_jobs where id = $j3")" "completed a" \
	"after the refusals, worker a completes a new job"
ok "worker a is still running" kill -0 $a
kill -TERM $a
wait $a
is "$?" 0 "worker a stops with status 0"
unlike "$(cat "$T/a.err")" '"event":"completed","id":('"$j1|$j2"')\b' \
	"worker a never said it completed the jobs b took over"
diag "the jobs:" "$(sql "select id, state, attempts, worker, error, result from all_jobs where queue = 'rb' order by id")"
diag "worker a's lines:" "$(grep -v '"event":"started"' "$T/a.err" | uniq -c | head -20)"
diag "worker b's lines:" "$(uniq -c "$T/b.err" | head -20)"
diag "runs:" "$(cat "$RB_RUNS")"

done_testing
