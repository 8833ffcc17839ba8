#!/bin/sh
# A password in the connection string stays with the tools: a handler gets
# the connection without it (and finds it in a password file if it needs
# it), argv loses it as soon as the tool starts, and no message, log line,
# result or error of a job ever shows it.
. "${top_srcdir:-..}/tests/lib.sh"
need_private_pg
pg_start

# A password with characters that need quoting in a conninfo and encoding
# in a URI, unlike anything else in this test.
pw="Pa55:w@rd/zq'x"
enc='Pa55%3Aw%40rd%2Fzq%27x'
sql "create role sekrit login password 'Pa55:w@rd/zq''x'" > /dev/null
jq-enqueue '{"schema": "made"}' > /dev/null
sql_file "$top_srcdir/sql/roles.sql" -v schema=jq > /dev/null 2>&1
sql "grant jq_worker, jq_producer to sekrit" > /dev/null
ok "the cluster asks sekrit for a password" pg_hba "local all sekrit scram-sha-256"

sock=$PG_DIR/sock
uri="postgresql://sekrit:$enc@/$PGDATABASE?host=$sock&port=$PGPORT"
kw="host=$sock port=$PGPORT dbname=$PGDATABASE user=sekrit password='Pa55:w@rd/zq\\'x'"
fails "without the password sekrit is refused" \
	psql -X -At -d "postgresql:///$PGDATABASE?host=$sock&port=$PGPORT&user=sekrit" -c 'select 1'
ok "with it in a URI the tools connect" jq-enqueue -d "$uri" -q s '{"n":1}'
ok "and in a conninfo string" jq-enqueue -d "$kw" -q s '{"n":2}'

# leaks WHAT FILE...: no line of the files shows the password, raw or encoded.
leaks() {
	_what=$1
	shift
	if grep -F -e "$pw" -e "$enc" -e "Pa55:w@rd" "$@" > "$T/leak" 2>/dev/null; then
		fail "$_what"
		diag "the password is in:" "$(cut -c1-300 "$T/leak")"
	else
		pass "$_what"
	fi
}

# A handler that shows everything it was given, everywhere it can.
cat > "$T/show" <<'EOF'
#!/bin/sh
cat > /dev/null
env > "$DUMP/env.$JQ_JOB_ID"
echo "my database: $JQ_DATABASE_URL" >&2
echo "50 $JQ_DATABASE_URL" >&3
if [ -n "${FOLLOW:-}" ]; then
	jq-enqueue -q follow '{"from": "handler"}' >&2 || exit 1
fi
printf '{"db": "%s"}\n' "$JQ_DATABASE_URL"
[ -z "${FAIL:-}" ]
EOF
chmod +x "$T/show"
mkdir "$T/dump"
export DUMP=$T/dump

# Through -d, as a URI.
exits 0 "a worker connected with -d URI runs the jobs" \
	jq-worker -d "$uri" --drain -q s -- "$T/show"
cp "$T/err" "$T/worker-uri.err"
cp "$T/out" "$T/worker-uri.out"
n=$(ls "$T/dump" | wc -l | tr -d ' ')
is "$n" 2 "both handlers dumped their environment"
like "$(cat "$T"/dump/env.*)" "^JQ_DATABASE_URL=postgresql://.*user=sekrit" "a handler gets JQ_DATABASE_URL, a URI still"
unlike "$(cat "$T"/dump/env.*)" "password" "with no password in it"
leaks "no handler's environment holds the password" "$T"/dump/env.*
leaks "the worker's stderr and stdout do not show it" "$T/worker-uri.err" "$T/worker-uri.out"

# Through JQ_DATABASE_URL, as a conninfo string, with failing handlers.
rm -f "$T"/dump/*
jq-enqueue -d "$kw" -q f --max-attempts 1 '{"n":3}' > /dev/null
exits 0 "a worker connected with JQ_DATABASE_URL runs the jobs" \
	env JQ_DATABASE_URL="$kw" FAIL=1 jq-worker --drain -q f -- "$T/show"
cp "$T/err" "$T/worker-kw.err"
like "$(cat "$T"/dump/env.*)" "^JQ_DATABASE_URL=.*user='sekrit'" "the handler gets the conninfo, rebuilt"
leaks "the handler's environment does not hold the password" "$T"/dump/env.*
leaks "nor does the worker's stderr" "$T/worker-kw.err"

sql "select coalesce(result::text, '') || ' ' || coalesce(error, '') || ' ' || coalesce(message, '')
       from all_jobs" > "$T/stored"
like "$(cat "$T/stored")" "my database" "the jobs stored what the handlers said"
leaks "no job's stored result, error or progress message holds the password" "$T/stored"

# A persistent handler (--pipe) is started the same way.
cat > "$T/pipe" <<'EOF'
#!/bin/sh
env > "$DUMP/pipe-env"
while IFS= read -r line; do
	id=$(printf '%s' "$line" | sed 's/^{"id":\([0-9]*\).*/\1/')
	printf '{"id":%s,"status":"completed","result":"%s"}\n' "$id" "$JQ_DATABASE_URL"
done
EOF
chmod +x "$T/pipe"
if jq-worker --help 2>&1 | grep -q -- --pipe; then
	jq-enqueue -d "$uri" -q p '{"n":7}' > /dev/null
	exits 0 "a --pipe worker connected with -d URI runs the job" \
		jq-worker -d "$uri" --drain -q p --pipe -- "$T/pipe"
	like "$(cat "$T/dump/pipe-env")" "^JQ_DATABASE_URL=postgresql://.*user=sekrit" "the --pipe handler gets JQ_DATABASE_URL"
	leaks "without the password" "$T/dump/pipe-env" "$T/err"
	rm -f "$T/dump/pipe-env"
else
	skip "jq-worker has no --pipe" 3
fi

# The handler may still connect, when libpq can find the password: the
# documented way is a password file.
rm -f "$T"/dump/*
jq-enqueue -d "$uri" -q s '{"n":4}' > /dev/null
exits 0 "a handler's follow-up enqueue without a password file fails the job, not the worker" \
	env FOLLOW=1 jq-worker -d "$uri" --drain -q s --max-jobs 1 --backoff 1h -- "$T/show"
like "$(cat "$T/err")" "password" "libpq tells the handler it has no password"
leaks "and that message does not show it" "$T/err"
printf '*:*:*:sekrit:%s\n' "$(printf '%s' "$pw" | sed 's/[\\:]/\\&/g')" > "$T/pgpass"
chmod 600 "$T/pgpass"
jq-enqueue -d "$uri" -q s '{"n":5}' > /dev/null
exits 0 "with PGPASSFILE the handler's follow-up enqueue works" \
	env FOLLOW=1 PGPASSFILE="$T/pgpass" jq-worker -d "$uri" --drain -q s -- "$T/show"
is "$(sql "select count(*) from jobs where queue = 'follow'")" 1 "the follow-up job is there"
leaks "still without showing the password" "$T/err" "$T"/dump/env.*

# ps(1) shows argv to every user: the password is gone from there.
jq-enqueue -d "$uri" -q slow '{"n":6}' > /dev/null
jq-worker -d "$uri" -q slow --grace 100ms --kill-after 100ms -- sleep 30 > /dev/null 2> "$T/slow.err" &
wpid=$!
at_exit "kill $wpid"
slow_runs() { [ "$(sql "select state from jobs where queue = 'slow'")" = running ]; }
wait_for "the slow job to start" 10 slow_runs
tr '\0' '\n' < "/proc/$wpid/cmdline" > "$T/cmdline"
like "$(cat "$T/cmdline")" "^postgresql://sekrit:x+@" "a running worker's argv has the password wiped"
leaks "its command line does not show the password" "$T/cmdline"
kill "$wpid"
wait "$wpid"
leaks "nor does its stderr" "$T/slow.err"

# Every error about the connection, well-formed or not.
bad_conn() {
	_desc=$1
	shift
	exits 69 "$_desc: exit 69" jq-enqueue -d "$1" '{}'
	leaks "$_desc: the error does not show the password" "$T/err" "$T/out"
}
bad_conn "a wrong password" "postgresql://sekrit:${enc}x@/$PGDATABASE?host=$sock"
bad_conn "no such server" "postgresql://sekrit:$enc@/$PGDATABASE?host=$T/nowhere"
bad_conn "a malformed URI" "postgresql://sekrit:$enc@[::1/$PGDATABASE"
bad_conn "a bad percent-escape in the password" "postgresql://sekrit:%zz$enc@/db"
bad_conn "an unquoted password with a space" "host=$sock user=sekrit password=Pa55:w@rd/zq x"
bad_conn "a malformed parameter after it" "postgresql://sekrit:$enc@/db?host=$sock&bogus"
bad_conn "an unterminated quote" "host=$sock password='Pa55:w@rd/zq"
like "$(cat "$T/err")" "unterminated quoted string" "libpq's explanation is kept when it is safe"
exits 69 "a bad JQ_DATABASE_URL: exit 69" env JQ_DATABASE_URL="postgresql://sekrit:$enc@[::1/x" jq-status 1
leaks "and its error does not show the password" "$T/err"
exits 69 "jq-worker reports a bad connection string" jq-worker -d "host=$sock password=Pa55:w@rd/zq x" --drain -- true
leaks "without the password" "$T/err"

# A password in --http's URL goes to the server, and nowhere else.
"$top_builddir/tests/httpd" "$T/port" "$T" &
srv=$!
at_exit "pkill -P $srv 2>/dev/null; kill $srv 2>/dev/null"   # and the connections it forked
wait_for "the test server listens" 10 test -s "$T/port"
hurl="http://sekrit:$enc@127.0.0.1:$(cat "$T/port")"
h1=$(jq-enqueue -q web '{}')
exits 0 "an HTTP worker with a password in its URL runs the job" jq-worker --drain -q web --http "$hurl/auth"
is "$(sql "select result #>> '{}' from all_jobs where id = $h1")" \
	"Basic $(printf 'sekrit:%s' "$pw" | base64 | tr -d '\n')" "the server got it, decoded, as Basic authentication"
leaks "the worker's stderr and stdout do not show it" "$T/err" "$T/out"
h2=$(jq-enqueue -q webdown --max-attempts 1 '{}')
exits 0 "an HTTP worker whose server is down" jq-worker --drain -q webdown --http "http://sekrit:$enc@127.0.0.1:1/x"
like "$(sql "select error from all_jobs where id = $h2")" "^request failed: " "fails the job"
sql "select error from all_jobs where id = $h2" > "$T/stored"
leaks "without the password in the job's error or the worker's stderr" "$T/stored" "$T/err"
exits 64 "a URL that is not http(s) is a usage error" jq-worker --http "ftp://sekrit:$enc@127.0.0.1/x"
like "$(cat "$T/err")" "got 'ftp://sekrit:x+@127\\.0\\.0\\.1/x'" "showing the URL"
leaks "without the password" "$T/err"

# ps(1): gone from a running HTTP worker's argv too.
jq-enqueue -q webslow '{}' > /dev/null
jq-worker -q webslow --grace 100ms --http "$hurl/slow" > /dev/null 2> "$T/hslow.err" &
hpid=$!
at_exit "kill $hpid 2>/dev/null"
webslow_runs() { [ "$(sql "select state from jobs where queue = 'webslow'")" = running ]; }
wait_for "the slow request to start" 10 webslow_runs
tr '\0' '\n' < "/proc/$hpid/cmdline" > "$T/hcmdline"
like "$(cat "$T/hcmdline")" "^http://sekrit:x+@127\\.0\\.0\\.1:[0-9]+/slow$" "a running HTTP worker's argv has the password wiped"
leaks "its command line does not show the password" "$T/hcmdline"
kill "$hpid"
wait "$hpid"
leaks "nor does its stderr" "$T/hslow.err"
done_testing
