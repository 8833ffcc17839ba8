#!/bin/sh
# Snooze: a handler says "not now" (fd 3, --pipe, HTTP 429/503 with
# Retry-After); the job runs again after the delay with its attempt not
# counted, up to --max-snoozes, after which snoozes count as attempts.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
export RECORD="$T/ran"
: > "$RECORD"

job() { sql "select $2 from all_jobs where id = $1"; }

# Exec: snoozes the first $SNOOZES runs of each job, for $DELAY, then completes.
cat > "$T/exec" <<'EOS'
#!/bin/sh
cat > /dev/null
n=$(cat "$T/n.$JQ_JOB_ID" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$T/n.$JQ_JOB_ID"
echo "run $JQ_JOB_ID $JQ_ATTEMPT $(date +%s.%N)" >> "$RECORD"
if [ "$n" -le "${SNOOZES:-1}" ]; then echo "snooze ${DELAY:-1s}" >&3; exit 0; fi
echo '"done"'
EOS
# --pipe: the same, a job per line.
cat > "$T/pipe" <<'EOS'
#!/bin/sh
while IFS= read -r line; do
	id=${line#'{"id":'}; id=${id%%,*}
	n=$(cat "$T/n.$id" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$T/n.$id"
	echo "run $id - $(date +%s.%N)" >> "$RECORD"
	if [ "$n" -le "${SNOOZES:-1}" ]; then
		printf '{"id":%s,"status":"snooze","delay":"%s"}\n' "$id" "${DELAY:-1s}"
	else
		printf '{"id":%s,"status":"completed","result":"done"}\n' "$id"
	fi
done
EOS
chmod +x "$T/exec" "$T/pipe"
runs() { grep -c "^run $1 " "$RECORD"; }
# Seconds from the first run of job $1 to its last.
spread() { awk -v id="$1" '$1 == "run" && $2 == id { t[++n] = $4 } END { printf "%.1f", t[n] - t[1] }' "$RECORD"; }

e=$(jq-enqueue -q ex --max-attempts 1 '{}')
exits 0 "exec: a worker runs a job that snoozes once" jq-worker -q ex --drain -- "$T/exec"
like "$(cat "$T/err")" "snoozed.*attempt 1/1 not counted; again in 1" "the worker says so"
is "$(job "$e" "state || ' ' || attempts || ' ' || snoozes || ' ' || result::text")" 'completed 1 1 "done"' \
	"it completes on its only attempt, snoozed once"
is "$(runs "$e")" 2 "its handler ran twice"
is "$(grep "^run $e " "$RECORD" | awk '{ print $3 }' | tr '\n' ' ')" "1 1 " "both times as attempt 1"
ok "the second run came after the delay ($(spread "$e") s)" \
	awk -v s="$(spread "$e")" 'BEGIN { exit !(s >= 1.0) }'

b=$(jq-enqueue -q bound --max-attempts 2 '{}')
SNOOZES=100 DELAY=100ms exits 0 "exec: a job that always snoozes, --max-snoozes 2" \
	jq-worker -q bound --max-snoozes 2 --drain -- "$T/exec"
is "$(job "$b" "state || ' ' || attempts || ' ' || snoozes")" "failed 2 2" \
	"two snoozes free, then each counts: failed after its 2 attempts"
is "$(grep "^run $b " "$RECORD" | awk '{ print $3 }' | tr '\n' ' ')" "1 1 1 2 " "its runs, by attempt"
like "$(job "$b" error)" "snoozed 2 times, as many as --max-snoozes allows" "the error says why"

c=$(jq-enqueue -q exbad '{}')
DELAY=soon exits 0 "exec: a bad snooze line" jq-worker -q exbad --drain -- "$T/exec"
like "$(cat "$T/err")" "ignoring \"snooze soon\"" "is warned about"
is "$(job "$c" "state || ' ' || snoozes")" "completed 0" "and ignored"

p=$(jq-enqueue -q pi --max-attempts 1 '{}')
exits 0 "--pipe: a job that snoozes once" jq-worker -q pi --drain --pipe -- "$T/pipe"
is "$(job "$p" "state || ' ' || attempts || ' ' || snoozes || ' ' || result::text")" 'completed 1 1 "done"' \
	"it completes on its only attempt, snoozed once"
is "$(runs "$p")" 2 "the handler had it twice"
ok "the second time after the delay ($(spread "$p") s)" \
	awk -v s="$(spread "$p")" 'BEGIN { exit !(s >= 1.0) }'
pb=$(jq-enqueue -q pibound --max-attempts 1 '{}')
SNOOZES=100 DELAY=0.1 exits 0 "--pipe: always snoozing, --max-snoozes 1, the delay in seconds" \
	jq-worker -q pibound --max-snoozes 1 --drain --pipe -- "$T/pipe"
is "$(job "$pb" "state || ' ' || attempts || ' ' || snoozes")" "failed 1 1" "one snooze free, the next counts"

"$top_builddir/tests/httpd" "$T/port" "$T" &
srv=$!
at_exit "pkill -P $srv 2>/dev/null; kill $srv 2>/dev/null"   # and the connections it forked
wait_for "the test server listens" 10 test -s "$T/port"
url="http://127.0.0.1:$(cat "$T/port")"
h=$(jq-enqueue -q fl --max-attempts 1 '{}')
exits 0 "--http: a 503 with Retry-After: 0, then a 200" jq-worker -q fl --drain --http "$url/flaky"
is "$(job "$h" "state || ' ' || attempts || ' ' || snoozes")" "completed 1 1" "a snooze, not a failed attempt"
hb=$(jq-enqueue -q busy --max-attempts 1 '{}')
exits 0 "--http: 429 with Retry-After: 1, --max-snoozes 1" \
	jq-worker -q busy --max-snoozes 1 --drain --http "$url/busy"
is "$(job "$hb" "state || ' ' || attempts || ' ' || snoozes")" "failed 1 1" "one snooze free, then it counts"
is "$(job "$hb" "extract(epoch from finished_at - created_at) >= 1")" t "after the server's Retry-After"
done_testing
