#!/bin/sh
# jq-status --follow and --wait survive a PostgreSQL restart: they
# reconnect, read the jobs again, and miss no final state, even one
# reached before they are back.
. "${top_srcdir:-..}/tests/lib.sh"
need_private_pg
pg_start
s=$JQ_SCHEMA

finish() { sql "select finish_job($1, '$2', null, null, null)" >/dev/null; }
has() { grep -q "\"event\":\"$2\",\"id\":$1," "$T/ev"; }

a=$(jq-enqueue '{}'); b=$(jq-enqueue '{}')
jq-status -f "$a" "$b" > "$T/ev" 2> "$T/ev.err" &
fpid=$!
jq-status --wait "$a" "$b" 2> "$T/w.err" &
wpid=$!
at_exit "kill $fpid $wpid"
wait_for "following" 10 has "$b" job
wait_for "both connected" 10 sh -c "[ \"\$(psql -X -At -c \"select count(*) from pg_stat_activity where application_name = 'jq-status'\")\" = 2 ]"

pg_stop fast
wait_for "the loss is noticed" 10 grep -q "lost the database" "$T/ev.err"
pg_restart_server
# At once, before they are back: this NOTIFY reaches nobody.
finish "$a" completed
wait_for "the final state read after reconnecting" 15 has "$a" done
like "$(cat "$T/ev")" "\"event\":\"done\",\"id\":$a,.*\"state\":\"completed\"" "--follow saw the job finish while it was away"
wait_for "the reconnection" 10 grep -q "reconnected" "$T/ev.err"
like "$(cat "$T/ev.err")" "^jq-status: lost the database \\(.*\\); reconnecting$" "it said it lost the database"
like "$(cat "$T/ev.err")" "^jq-status: reconnected to the database$" "and that it is back"
wait_for "the waiter to listen again" 15 sh -c "[ \"\$(psql -X -At -c \"select count(*) from pg_stat_activity where application_name = 'jq-status'\")\" = 2 ]"

sql "update jobs set state = 'running', worker = 7, lease_until = now() + interval '1 hour', started_at = now(), progress = 70, message = 'after the restart' where id = $b" \
    "select pg_notify('${s}_progress', '$b 70 after the restart')" >/dev/null
wait_for "progress after the restart" 10 grep -q '"progress":70' "$T/ev"
like "$(cat "$T/ev")" "\"id\":$b,.*\"progress\":70,\"message\":\"after the restart\"" "NOTIFYs arrive again"
finish "$b" completed
wait $fpid
is "$?" 0 "--follow ends with 0: both completed"
wait $wpid
is "$?" 0 "--wait across the restart ends with 0 too"
like "$(cat "$T/w.err")" "reconnected to the database" "having reconnected"
done_testing
