#!/bin/sh
# Ids printed and jobs committed go together: closed descriptors, a reader
# that goes away, and a run interrupted at random points.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

jq-enqueue -q warm '{}' > /dev/null   # the schema
jobs_in() { sql "select count(*) from jobs where queue = '$1'"; }
has_commit_waiting() {
	[ "$(sql "select count(*) from pg_stat_activity where application_name = 'jq-enqueue' and query = 'COMMIT'")" = 1 ]
}
ids_in() { sql "select coalesce(string_agg(id::text, ' ' order by id), '') from jobs where queue = '$1'"; }

# Closed descriptors are never reused for the connection.
jq-enqueue -q closed '{"a":1}' >&- 2> "$T/err"
is "$?" 74 "stdout closed: jq-enqueue exits 74"
is "$(jobs_in closed)" 0 "and enqueues nothing"
like "$(cat "$T/err")" "stdout is closed" "saying why on stderr"
jq-stats >&- 2> "$T/err"
is "$?" 74 "stdout closed: jq-stats exits 74 too"
echo '{"b":2}' > "$T/one"
id=$(jq-enqueue -q closed '{"b":2}' <&-)
is "$?" 0 "stdin closed: jq-enqueue with an argument works"
is "$(ids_in closed)" "$id" "the job is in, its id printed"
id2=$(jq-enqueue -q closed2 < "$T/one" 2>&-)
is "$?" 0 "stderr closed: jq-enqueue works"
is "$(ids_in closed2)" "$id2" "the job is in, its id printed"
run jq-status "$id" <&- 2>&-
is "$?" 0 "jq-status with stdin and stderr closed"
like "$(cat "$T/out")" "^job $id " "still shows the job"
sql "select count(*) from pg_stat_activity where backend_type = 'client backend'" > /dev/null
ok "the server logged no garbled protocol message" \
	sh -c "! grep -q 'invalid frontend message' '$PG_DIR/postgres.log'"

# A reader that goes away: nothing is enqueued by a whole run, and with
# --batch what is in is said.  60,000 ids do not fit in a pipe's buffer.
awk 'BEGIN { for (i = 1; i <= 60000; i++) print "{\"i\":" i "}" }' > "$T/many"
jq-enqueue -q gone < "$T/many" 2> "$T/err" | head -1 > /dev/null
is "$(cat "$T/err")" "jq-enqueue: cannot write the job ids: Broken pipe: nothing was enqueued" \
	"a whole run whose reader went away says nothing was enqueued"
is "$(jobs_in gone)" 0 "and nothing is"
(jq-enqueue -q gone < "$T/many" 2> "$T/err"; echo $? > "$T/status") | head -1 > /dev/null
is "$(cat "$T/status")" 74 "it exits 74"
(jq-enqueue -q goneb --batch 1000 < "$T/many" 2> "$T/err"; echo $? > "$T/status") | head -1 > /dev/null
is "$(cat "$T/status")" 74 "with --batch it exits 74 too"
n=$(jobs_in goneb)
last=$(sql "select max((payload->>'i')::int) from jobs where queue = 'goneb'")
like "$(cat "$T/err")" "Broken pipe: $n values were enqueued, up to stdin:$last; the ids of the last [0-9]+ of them may be missing" \
	"and says how many values were enqueued ($n) and up to which line"
is "$(sql "select count(*) from jobs where queue = 'goneb' and (payload->>'i')::int > $last")" 0 \
	"nothing after that line is in"

# The connection lost during the COMMIT of a whole run, whose ids are
# printed before it: the run finds out on a new connection whether the
# jobs are in, and says so of the ids it printed.  (A deferred trigger
# holds the COMMIT for 3 s; the backend is killed meanwhile.)
sql "create function slow_commit() returns trigger language plpgsql as \$\$ begin perform pg_sleep(3); return null; end \$\$" \
    "create constraint trigger slow_commit after insert on jobs deferrable initially deferred
     for each row when (new.queue = 'lost') execute function slow_commit()" > /dev/null
jq-enqueue -q lost '{"a":1}' '{"a":2}' > "$T/lost.ids" 2> "$T/lost.err" &
p=$!
wait_for "the COMMIT is under way" 10 has_commit_waiting
sql "select pg_terminate_backend(pid) from pg_stat_activity
     where application_name = 'jq-enqueue' and query = 'COMMIT'" > /dev/null
wait $p
is "$?" 75 "a whole run whose COMMIT lost its connection exits 75"
is "$(wc -l < "$T/lost.ids" | tr -d ' ')" 2 "its ids were printed before the COMMIT"
is "$(jobs_in lost)" 0 "the COMMIT did not happen"
like "$(cat "$T/lost.err")" "and the jobs are not in: the 2 ids printed above were NOT enqueued" \
	"and it says the printed ids are not jobs, having asked on a new connection"

# Interrupted at random points: the ids printed are exactly the jobs
# committed, and stderr says how many and where it stopped.
awk 'BEGIN { for (i = 1; i <= 400000; i++) print "{\"i\":" i "}" }' > "$T/big"
i=0
while [ $i -lt 24 ]; do
	i=$((i + 1))
	case $((i % 4)) in
	0) mode="" ;;
	1) mode="--batch 5000" ;;
	2) mode="--batch 3" ;;
	3) mode="--batch 250" ;;
	esac
	sig=INT st=130
	[ $((i % 3)) = 0 ] && sig=TERM st=143
	q=intr$i
	jq-enqueue -q $q $mode < "$T/big" > "$T/ids" 2> "$T/ierr" &
	p=$!
	# From just after its start to about half a second in.
	sleep "0.$(awk -v s=$i 'BEGIN { srand(s); printf "%03d", 20 + int(rand() * 480) }')"
	kill -$sig $p
	wait $p
	s=$?
	printed=$(sort -n "$T/ids" | tr '\n' ' ' | sed 's/ $//')
	committed=$(ids_in $q)
	if [ "$s" = $st ] && [ "$printed" = "$committed" ] && grep -q "interrupted by SIG$sig" "$T/ierr"; then
		ok "interrupt $i (SIG$sig${mode:+, $mode}): $(jobs_in $q) enqueued, every id printed, no other" true
	else
		ok "interrupt $i (SIG$sig${mode:+, $mode}): status $s, $(wc -l < "$T/ids") ids printed, $(jobs_in $q) jobs: $(cat "$T/ierr")" false
	fi
	if [ -z "$mode" ]; then
		is "$(jobs_in $q)" 0 "  a whole run interrupted enqueues nothing"
	elif [ "$(jobs_in $q)" -gt 0 ]; then
		n=$(jobs_in $q)
		like "$(cat "$T/ierr")" "interrupted by SIG$sig: $n values were enqueued" "  stderr says how many"
	fi
done
done_testing
