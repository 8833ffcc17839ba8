#!/bin/sh
# The harness itself (tests/lib.sh): a private PostgreSQL starts, answers
# through sql and through JQ_DATABASE_URL, keeps its data over a restart;
# run, exits and like do what the other tests rely on.
. "${top_srcdir:-..}/tests/lib.sh"

# Without the server first.
exits 3 "exits captures a status" sh -c 'echo out; echo err >&2; exit 3'
is "$(cat "$T/out")/$(cat "$T/err")" "out/err" "run captures stdout and stderr apart"
like "$(printf 'first\nsecond line\nthird')" '^second' "like matches any line of a multi-line value"
unlike "$(printf 'first\nsecond')" '^third' "unlike"
printf 'fed\n' > "$T/in"
run cat < "$T/in"
is "$(cat "$T/out")" "fed" "run cmd < file passes the file to cmd"
exits 0 "stdin is /dev/null otherwise" cat
is "$(cat "$T/out")" "" "so cat reads nothing and does not wait"

# tests/guard, which runs every test script: a script that leaves a process
# running fails, whatever its own status; one on its way out is waited for.
g="$top_srcdir/tests/guard"
exits 99 "guard: a script that leaves a process running fails" \
	sh "$g" sh -c 'sleep 60 & echo 1..1; echo ok 1'
like "$(cat "$T/out")" '^Bail out! the script left 1 processes running' "and says so with a Bail out! line"
like "$(cat "$T/out")" '^#   [0-9]+ sleep 60$' "naming what it left, which it killed"
exits 0 "guard: a clean script keeps its status 0" sh "$g" sh -c 'echo 1..1; echo ok 1'
unlike "$(cat "$T/out")" 'Bail out' "and no Bail out! line"
exits 0 "guard: a process that ends within three seconds is not left behind" \
	sh "$g" sh -c '(sleep 1) > /dev/null & echo 1..1; echo ok 1'
exits 3 "guard: a script's failure status is kept" sh "$g" sh -c 'exit 3'

pg_start
is "$(sql 'select 1')" 1 "sql runs a query"
ok "psql works with JQ_DATABASE_URL" psql -X "$JQ_DATABASE_URL" -Atc 'select 1'
is "$(cat "$T/out")" 1 "and prints its rows"
is "$(psql -X -Atc 'select current_user')" "$PGUSER" "plain psql works from PG* variables"
exits 1 "an SQL error makes sql exit 1" sql 'select no_such_column'
s=$JQ_SCHEMA
ok "sql creates a table in JQ_SCHEMA and fills it" \
	sql "create schema if not exists \"$s\"" "create table t (x int)" "insert into t values (42)"
is "$(sql "select x from \"$s\".t")" 42 "the row is in JQ_SCHEMA, found through the search_path"

if [ -z "${JQ_TEST_DATABASE_URL:-}" ]; then
	ok "pg_stop fast" pg_stop fast
	fails "the server is down" sql 'select 1'
	ok "pg_restart_server" pg_restart_server
	is "$(sql 'select x from t')" 42 "the row survived the restart"
	pg_kill9
	fails "after pg_kill9 the server is gone" sql 'select 1'
	ok "pg_restart_server recovers from the crash" pg_restart_server
	is "$(sql 'select x from t')" 42 "the committed row survived the crash"
else
	skip "JQ_TEST_DATABASE_URL: no private server to stop" 7
fi
done_testing
