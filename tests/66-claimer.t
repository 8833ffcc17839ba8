#!/bin/sh
# The claimer: a worker claims on a second connection while its turns
# record outcomes on the first.  Losing it loses nothing: the turns claim
# until it is back, and no job runs twice.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

export RECORD="$T/ran"
: > "$RECORD"
# A --pipe handler that notes each job it is given.
cat > "$T/h" <<'H'
#!/bin/sh
while IFS= read -r line; do
	id=${line#'{"id":'}
	id=${id%%,*}
	echo "$id" >> "$RECORD"
	printf '{"id":%s,"status":"completed"}\n' "$id"
done
H
chmod +x "$T/h"
wave() { # N: N more jobs in queue cl
	i=0; while [ $i -lt "$1" ]; do echo "{\"i\":$i}"; i=$((i + 1)); done | jq-enqueue -q cl > /dev/null
}
backends() {
	sql "select count(*) from pg_stat_activity where application_name = 'jq-worker' and datname = current_database()"
}
has_backends() { [ "$(backends)" -eq "$1" ]; }
completed() { [ "$(sql "select count(*) from history where queue = 'cl' and state = 'completed'")" -eq "$1" ]; }

jq-worker -q cl -c 4 --pipe --quiet -- "$T/h" 2> "$T/w.err" &
w=$!
at_exit "kill -9 $w 2>/dev/null"
wait_for "the worker's connections" 20 has_backends 2 &&
	pass "a worker holds two connections" || fail "a worker holds two connections ($(backends))"
wave 1000
wait_for "the first wave" 60 completed 1000

# The claimer connected second: the newer backend.
sql "select pg_terminate_backend(pid) from pg_stat_activity
      where application_name = 'jq-worker' and datname = current_database()
      order by backend_start desc limit 1" > /dev/null
wait_for "the claimer to go" 10 has_backends 1
wave 1000
wait_for "the second wave" 60 completed 2000 &&
	pass "without its claimer, a worker claims with its turns" ||
	fail "without its claimer, a worker claims with its turns"
wait_for "the claimer to come back" 30 has_backends 2 &&
	pass "the claimer connects again" || fail "the claimer connects again ($(backends))"
wave 1000
wait_for "the third wave" 60 completed 3000
kill -TERM $w
wait $w
is "$?" 0 "the worker stops cleanly"

is "$(sql "select count(*) from all_jobs where queue = 'cl' and state <> 'completed'")" 0 "every job completed"
is "$(wc -l < "$RECORD" | tr -d ' ')" 3000 "3000 jobs handed to the handler"
is "$(sort -u "$RECORD" | wc -l | tr -d ' ')" 3000 "none of them twice"
is "$(grep -c 'lost the database' "$T/w.err")" 0 "the turns' connection was never lost"
grep -v "^jq-worker: Terminated: no more claims" "$T/w.err" | sed "s/^/# said: /" | head -5
is "$(grep -v "^jq-worker: Terminated: no more claims" "$T/w.err" | grep -c .)" 0 "no warning: losing the claimer is not worth one"
done_testing
