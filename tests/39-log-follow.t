#!/bin/sh
# jq-status --log -f: a job's log followed live, started before, during and
# after the job; it shows what was written before it started and ends with
# --wait's exit status when the job ends; across a PostgreSQL restart; and
# through PgBouncer in transaction mode, where notices do not arrive and it
# polls.
. "${top_srcdir:-..}/tests/lib.sh"
need_private_pg
pg_start

# A handler that writes a line, then one more each time a file appears.
cat > "$T/steps" <<'SH'
#!/bin/sh
d=$STEPS/$JQ_JOB_ID
echo "one" >&2
until [ -e "$d.go" ]; do sleep 0.05; done
echo "two" >&2
echo "50 half way" >&3
until [ -e "$d.end" ]; do sleep 0.05; done
echo "three" >&2
[ ! -e "$d.fail" ]
SH
chmod +x "$T/steps"
export STEPS="$T"
lines() { cut -d' ' -f3- "$1" | tr '\n' '|'; }
has() { grep -q " $2\$" "$1"; }
all="1 stderr one|1 stderr two|1 progress 50 half way|1 stderr three|"

j=$(jq-enqueue -q s --max-attempts 1 '{}')
jq-status --log -f "$j" > "$T/before" 2> "$T/before.err" &
bpid=$!
at_exit "kill $bpid 2>/dev/null"
jq-worker -q s --backoff 10ms -- "$T/steps" > /dev/null 2> "$T/worker.err" &
wpid=$!
at_exit "kill $wpid 2>/dev/null"
wait_for "the first line, live" 30 has "$T/before" one
is "$(lines "$T/before")" "1 stderr one|" "started before the job: its first line, live"
jq-status --log -f "$j" > "$T/during" 2> "$T/during.err" &
dpid=$!
at_exit "kill $dpid 2>/dev/null"
wait_for "the line written before" 30 has "$T/during" one
is "$(lines "$T/during")" "1 stderr one|" "started during it: what was written before"
touch "$T/$j.go"
wait_for "the next lines" 30 has "$T/during" "50 half way"
is "$(lines "$T/during")" "1 stderr one|1 stderr two|1 progress 50 half way|" "then each line as it comes"
touch "$T/$j.end"
wait $bpid
is "$?" 0 "the job completed: the follower started before exits 0"
is "$(lines "$T/before")" "$all" "with every line, once, in order"
wait $dpid
is "$?" 0 "the one started during it too"
is "$(lines "$T/during")" "$all" "with every line"
exits 0 "started after the job: exits 0 at once" jq-status --log -f "$j"
is "$(lines "$T/out")" "$all" "with every line"
exits 0 "--json follows too" jq-status --log -f --json "$j"
is "$(jget -r .stream < "$T/out" | tr '\n' ' ')" "stderr stderr progress stderr " "one object per line"

f=$(jq-enqueue -q s --max-attempts 1 '{}')
touch "$T/$f.fail"
touch "$T/$f.go" "$T/$f.end"
exits 1 "a job that fails: 1, as --wait" jq-status --log -f "$f"
like "$(lines "$T/out")" "1 stderr three" "after its lines"

# Across a restart: the follower and the worker reconnect; no line is lost.
r=$(jq-enqueue -q s --max-attempts 1 '{}')
jq-status --log -f "$r" > "$T/restart" 2> "$T/restart.err" &
rpid=$!
at_exit "kill $rpid 2>/dev/null"
wait_for "the first line" 30 has "$T/restart" one
pg_stop fast
touch "$T/$r.go"
pg_restart_server
wait_for "the follower to reconnect" 30 grep -q "reconnected" "$T/restart.err"
touch "$T/$r.end"
wait $rpid
is "$?" 0 "across a restart: it ends with the job, 0"
is "$(lines "$T/restart")" "$all" "with every line, once"
like "$(cat "$T/restart.err")" "^jq-status: reconnected to the database$" "having said it reconnected"
kill $wpid; wait $wpid

# Through PgBouncer in transaction mode: the worker's pipelined turns pass; the follower polls.
pgbouncer_start transaction || bail_out "cannot start pgbouncer"
p=$(JQ_DATABASE_URL=$PGB_URL jq-enqueue -q s --max-attempts 1 '{}')
JQ_DATABASE_URL=$PGB_URL jq-status --log -f "$p" > "$T/pooled" 2> "$T/pooled.err" &
ppid=$!
at_exit "kill $ppid 2>/dev/null"
JQ_DATABASE_URL=$PGB_URL jq-worker -q s --poll 500ms -- "$T/steps" > /dev/null 2> "$T/pworker.err" &
wpid=$!
at_exit "kill $wpid 2>/dev/null"
wait_for "the first line through the pooler" 30 has "$T/pooled" one
touch "$T/$p.go"
# (stderr and fd 3 are two pipes: lines on both at once may be read in either order)
wait_for "the progress line" 30 has "$T/pooled" "50 half way"
touch "$T/$p.end"
wait $ppid
is "$?" 0 "through the pooler: it ends with the job, 0"
is "$(lines "$T/pooled")" "$all" "with every line"
like "$(cat "$T/pooled.err")" "notifications do not arrive on this connection .*: polling every" \
	"it said it polls"
unlike "$(cat "$T/pworker.err")" "cannot record|lost the database" "the worker's pipelined turns went through"
kill $wpid; wait $wpid
done_testing
