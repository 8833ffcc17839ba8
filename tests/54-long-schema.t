#!/bin/sh
# A schema name of the longest length the tools accept: every NOTIFY
# channel's name (<schema>_new, _cancel, _progress, _done) still fits
# PostgreSQL's 63 bytes, so the worker hears new jobs and cancels, its
# progress is recorded, and jq-cancel of a running job works.  The limit
# is read from the tools themselves, so this follows it if it moves.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

exits 64 "an empty schema name is refused" jq-enqueue --schema "" '{}'
max=$(sed -n 's/.*schema name must be 1 to \([0-9]*\) bytes.*/\1/p' "$T/err")
like "$max" '^[0-9]+$' "the refusal names the limit ($max)"
long=$(printf "%${max}s" "" | tr ' ' 'l')
exits 64 "one byte more is refused" jq-enqueue --schema "${long}x" '{}'
JQ_SCHEMA=$long
export JQ_SCHEMA
s=$long

# The handler reports progress, then waits to be stopped.
cat > "$T/handler" <<'HANDLER'
#!/bin/sh
cat > /dev/null
echo "50 halfway" >&3
while :; do sleep 0.2; done
HANDLER
chmod +x "$T/handler"

state() { sql "select state from all_jobs where id = $1"; }
is_state() { [ "$(state "$1")" = "$2" ]; }
progress() { sql "select progress || ' ' || message from jobs where id = $1"; }
is_progress() { [ "$(progress "$1")" = "$2" ]; }

# Ready before the worker starts, so its first claim takes it.
first=$(jq-enqueue -q long '{}')
like "$first" '^[0-9]+$' "a job is enqueued in the long schema"

# A poll and a lease of an hour: only a notification brings the worker a
# new job or a cancel within the test.
jq-worker -q long --poll 1h --lease 1h -- "$T/handler" > "$T/w.out" 2> "$T/w.err" &
wpid=$!
at_exit "kill $wpid 2>/dev/null"
wait_for "the worker to take the first job" 30 is_state "$first" running
is "$(state "$first")" running "the worker runs it"
exits 0 "jq-cancel of a running job exits 0" jq-cancel "$first"
is "$(cat "$T/err")" "jq-cancel: job $first is running; its worker will stop it" \
	"saying its worker will stop it"
wait_for "the worker to stop it" 30 is_state "$first" cancelled
is "$(state "$first")" cancelled "the worker hears <schema>_cancel and ends it cancelled"

# The worker is idle now: a new job reaches it by NOTIFY on <schema>_new.
# psql shows a notification after the statement it arrived during.
{
	echo "LISTEN \"${s}_progress\";"
	i=0
	while [ $i -lt 120 ]; do echo "SELECT pg_sleep(0.5);"; i=$((i + 1)); done
} > "$T/listen.sql"
psql -X -q -f "$T/listen.sql" > "$T/notes" 2>&1 &
lpid=$!
at_exit "kill $lpid 2>/dev/null"
wait_for "psql to listen" 30 grep -q pg_sleep "$T/notes"
id=$(jq-enqueue -q long '{}')
wait_for "the worker to take the new job" 30 is_state "$id" running
is "$(state "$id")" running "a new job is heard of on <schema>_new"
wait_for "its progress to be recorded" 30 is_progress "$id" "50 halfway"
is "$(progress "$id")" "50 halfway" "its progress is recorded"
wait_for "the notification to reach psql" 30 grep -q "with payload \"$id " "$T/notes"
kill $lpid
like "$(cat "$T/notes")" "\"${s}_progress\" with payload \"$id 50 halfway\"" \
	"and told on <schema>_progress"
exits 0 "jq-cancel stops it too" jq-cancel "$id"
wait_for "the worker to stop it" 30 is_state "$id" cancelled
is "$(state "$id")" cancelled "ended cancelled"

kill "$wpid"
wait "$wpid"
unlike "$(cat "$T/w.err")" "too long|cannot record|do not arrive" "the worker warned of nothing"
done_testing
