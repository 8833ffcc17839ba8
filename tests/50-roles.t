#!/bin/sh
# Least privilege: sql/roles.sql's producer, worker and observer roles.
# Each tool, run as each role, does what the role is for and is refused
# the rest with a clear message and exit status 69; a role that cannot
# upgrade or create the schema says so.
. "${top_srcdir:-..}/tests/lib.sh"
# Roles belong to the whole cluster, not to a schema: a private one.
need_private_pg
pg_start

roles=$top_srcdir/sql/roles.sql
url() { printf 'postgresql:///%s?host=%s&port=%s&user=%s' "$PGDATABASE" "$PGHOST" "$PGPORT" "$1"; }
# as USER CMD...: CMD connecting as USER, as a deployment would set it up.
as() {
	_as=$1
	shift
	env JQ_DATABASE_URL="$(url "$_as")" "$@"
}
# psql_as USER SQL: one statement as USER; rows on stdout.
psql_as() { psql -X -At -q -v ON_ERROR_STOP=1 -d "$(url "$1")" -c "$2"; }
h=$top_srcdir/tests/handlers

# The recommended setup: an ordinary role owns the schema (the roles'
# functions run with its rights, so not a superuser) and applies roles.sql.
sql "create role boss login createrole; grant create on database $PGDATABASE to boss" > /dev/null
exits 0 "the owner creates the schema by running a tool" as boss jq-worker --drain -q none -- true
exits 0 "the owner applies roles.sql" psql -X -q -d "$(url boss)" -v schema=jq -1 -f "$roles"
is "$(cat "$T/err")" "" "without a warning, since the owner is no superuser"
is "$(sql "select string_agg(rolname || ':' || rolcanlogin, ' ' order by rolname) from pg_roles where rolname like 'jq\\_%'")" \
	"jq_observer:false jq_producer:false jq_worker:false" "it makes three NOLOGIN group roles"
acl() { sql "select string_agg(p.proname || ':' || p.prosecdef || ':' || coalesce(p.proacl::text, ''), ' ' order by p.proname)
               from pg_proc p where p.pronamespace = 'jq'::regnamespace"; }
acl1=$(acl)
exits 0 "applying it again works" psql -X -q -d "$(url boss)" -v schema=jq -1 -f "$roles"
is "$(acl)" "$acl1" "and changes nothing"

sql "create role alice login in role jq_producer;
     create role walter login in role jq_worker;
     create role olga login in role jq_observer;
     create role mallory login;
     create role bea login in role jq_producer, jq_worker" > /dev/null

# ---- the producer
a1=$(as alice jq-enqueue '{"who":"alice"}' 2> "$T/a1.err")
like "$a1" '^[0-9]+$' "producer: jq-enqueue works (the COPY path)"
exits 0 "producer: jq-enqueue --delay works" as alice jq-enqueue --delay 1h '{"later":1}'
exits 0 "producer: jq-enqueue --key works (through enqueue_job)" as alice jq-enqueue --key k1 '{"k":1}'
k1=$(cat "$T/out")
exits 0 "producer: and the same key again" as alice jq-enqueue --key k1 '{"k":2}'
is "$(cat "$T/out")" "$k1" "gives the same job"
exits 0 "producer: jq-enqueue --after works" as alice jq-enqueue -q then --after "$a1" '{"after":1}'
then=$(cat "$T/out")
exits 0 "producer: enqueue() from SQL works" psql_as alice "select jq.enqueue('{\"sql\":1}', queue => 'q2')"
exits 0 "producer: jobs, history and all_jobs are readable" \
	psql_as alice "select (select count(*) from jq.jobs) + (select count(*) from jq.history) + (select count(*) from jq.all_jobs)"
exits 0 "producer: jq-status works" as alice jq-status "$a1"
exits 0 "producer: jq-status --json listing works" as alice jq-status --json --limit 5
exits 69 "producer: jq-cancel is refused with 69" as alice jq-cancel "$a1"
like "$(cat "$T/err")" "^jq-cancel: .*permission denied" "with the reason"
exits 69 "producer: jq-retry is refused with 69" as alice jq-retry "$a1"
like "$(cat "$T/err")" "^jq-retry: .*permission denied" "with the reason"
exits 69 "producer: jq-worker is refused with 69" as alice jq-worker --drain -- cat
like "$(cat "$T/err")" "^jq-worker: cannot register: permission denied for function register_worker" "naming what it may not do"
fails "producer: UPDATE of jobs is refused" psql_as alice "update jq.jobs set priority = -100"
like "$(cat "$T/err")" "permission denied for table jobs" "permission denied"
fails "producer: DELETE from history is refused" psql_as alice "delete from jq.history"
fails "producer: claiming jobs from SQL is refused" psql_as alice "select * from jq.claim_jobs(1, '{default}', 1, '30s')"
fails "producer: finishing a job from SQL is refused" \
	psql_as alice "select jq.finish_job($a1, 'completed', null, null, null)"
fails "producer: creating objects in the schema is refused" psql_as alice "create table jq.mine (x int)"
# A producer may INSERT the columns of jq-enqueue's COPY by hand; the rows
# it writes so are held to the rules the functions keep.
ins() { psql_as alice "insert into jq.jobs ($1, queue, payload) values ($2, 'hand', '{}')"; }
fails "producer: a job born running is refused" ins state "'running'"
like "$(cat "$T/err")" 'violates check constraint "jobs_running_held"' "by the rule that a running job has a worker and a lease"
fails "producer: a job with a worker and lease of its choosing is refused" \
	ins "state, worker, lease_until" "'running', 1, now() + interval '1 day'"
like "$(cat "$T/err")" "permission denied for table jobs" "permission denied"
fails "producer: attempts of its choosing are refused" ins attempts 5
like "$(cat "$T/err")" "permission denied for table jobs" "permission denied"
fails "producer: a scheduled job with waiting counts is refused" ins "state, waiting" "'scheduled', 3"
like "$(cat "$T/err")" "permission denied for table jobs" "permission denied"
fails "producer: an id past the sequence is refused" ins id "nextval('jq.job_id_seq') + 1000"
like "$(cat "$T/err")" "job id [0-9]+ was not taken from job_id_seq, or is a finished job's" "saying why"
is "$(sql "select count(*) from jobs where queue = 'hand'")" 0 "none of them is there"
ok "producer: a queued job with an id from the sequence is taken" ins id "nextval('jq.job_id_seq')"
ok "producer: and a scheduled one" ins "state, run_at" "'scheduled', now() + interval '1 hour'"
is "$(sql "select string_agg(state || ' ' || attempts || ' ' || coalesce(worker::text, '-'), ',' order by id)
             from jobs where queue = 'hand'")" "queued 0 -,scheduled 0 -" "as jobs like any other"

# ---- the observer
exits 0 "observer: jq-status works" as olga jq-status "$a1"
exits 0 "observer: a listing works" as olga jq-status -q default --limit 10
exits 0 "observer: the tables are readable" psql_as olga "select count(*) from jq.all_jobs, jq.workers"
if command -v jq-stats > /dev/null 2>&1; then
	exits 0 "observer: jq-stats works" as olga jq-stats --json
else
	skip "jq-stats is not built"
fi
exits 69 "observer: jq-enqueue is refused with 69" as olga jq-enqueue '{}'
like "$(cat "$T/err")" "permission denied" "with the reason"
like "$(cat "$T/err")" "nothing was enqueued" "and says nothing was enqueued"
exits 69 "observer: jq-enqueue --key (the function path) is refused too" as olga jq-enqueue --key x '{}'
exits 69 "observer: jq-worker is refused with 69" as olga jq-worker --drain -- cat
exits 69 "observer: jq-cancel is refused with 69" as olga jq-cancel "$a1"
exits 69 "observer: jq-retry is refused with 69" as olga jq-retry "$a1"
fails "observer: enqueue() from SQL is refused" psql_as olga "select jq.enqueue('{}')"
like "$(cat "$T/err")" "permission denied for function" "permission denied"
fails "observer: reaping from SQL is refused" psql_as olga "select jq.reap_expired()"

# ---- the worker
exits 0 "worker: jq-worker runs the jobs" as walter jq-worker --drain -- "$h/echo"
is "$(sql "select state from all_jobs where id = $a1")" completed "the job is completed"
is "$(sql "select progress || ' ' || (result->'payload'->>'who') from all_jobs where id = $a1")" "100 alice" \
	"with its progress and result"
is "$(sql "select state from all_jobs where id = $then")" queued "the dependant was released"
fails "producer: the id of a finished job is refused" ins id "$a1"
like "$(cat "$T/err")" "job id $a1 was not taken from job_id_seq, or is a finished job's" "saying why"
is "$(sql "select count(*) from all_jobs where id = $a1")" 1 "the finished job stays the only one with its id"
fid=$(as alice jq-enqueue -q b --max-attempts 2 '{"do":"fail"}')
exits 0 "worker: failed attempts are recorded" as walter jq-worker --drain -q b --backoff 10ms -- "$h/behave"
is "$(sql "select state || ' ' || attempts from all_jobs where id = $fid")" "failed 2" "retried, then failed"
exits 0 "worker: reaping from SQL works" psql_as walter "select jq.reap_expired()"
exits 0 "worker: pruning history from SQL works" psql_as walter "select jq.prune_history('1 day', '1 day', 10)"
exits 0 "worker: jq-status works" as walter jq-status "$a1"
exits 69 "worker: jq-enqueue is refused with 69" as walter jq-enqueue '{}'
exits 69 "worker: jq-cancel is refused with 69" as walter jq-cancel "$a1"
exits 69 "worker: jq-retry is refused with 69" as walter jq-retry "$fid"
fails "worker: changing a payload is refused" psql_as walter "update jq.jobs set payload = '{}'"
fails "worker: finishing a job directly is refused" psql_as walter "select jq.finish_job($a1, 'failed', null, null, null)"
fails "worker: deleting history is refused" psql_as walter "delete from jq.history"

# ---- both: a worker whose handlers enqueue follow-up jobs
cat > "$T/follow" <<'EOF'
#!/bin/sh
cat > /dev/null
jq-enqueue -q next '{"from":"handler"}'
EOF
chmod +x "$T/follow"
as bea jq-enqueue -q chain '{}' > /dev/null
exits 0 "producer and worker: handlers may enqueue follow-up jobs" as bea jq-worker --drain -q chain -- "$T/follow"
is "$(sql "select count(*) from jobs where queue = 'next'")" 1 "the follow-up job is there"

# ---- waiting, as a producer, for a worker's result
w=$(as alice jq-enqueue -q wait '{"n":1}')
as walter jq-worker --drain -q wait -- "$h/echo" > /dev/null 2>&1 &
exits 0 "a producer waits for a job a worker completes" as alice jq-status --wait "$w"
wait

# ---- no role at all, or the wrong schema
exits 69 "no role: jq-status exits 69" as mallory jq-status "$a1"
like "$(cat "$T/err")" "^jq-status: schema jq: role mallory may not use it .*permission denied for schema jq" \
	"naming the schema, the role and the missing privilege"
exits 69 "no role: jq-enqueue exits 69" as mallory jq-enqueue '{}'
is "$(sql "select count(*) from pg_proc p where p.pronamespace = 'jq'::regnamespace
             and has_function_privilege('mallory', p.oid, 'EXECUTE')")" 0 "PUBLIC may execute no function"
is "$(sql "select string_agg(p.proname, ' ' order by p.proname) from pg_proc p
             where p.pronamespace = 'jq'::regnamespace and p.prosecdef")" \
	"append_logs claim_jobs complete_attempt count_enqueued count_finished count_jobs_truncated count_left count_removed count_truncated enqueue_grouped enqueue_job fail_attempt finish_and_claim finish_and_claim prune_history prune_logs reap_expired register_worker release_job renew_leases schedule_fire turn turn unregister_worker" \
	"exactly the functions the roles call to change jobs, and the counting triggers, run as the owner (finish_and_claim twice: versions 6 and 8; turn twice: version 10's calls 11's)"

exits 69 "a missing schema: exit 69" as olga jq-status --schema nothere 1
like "$(cat "$T/err")" "schema nothere has no pgjq tables" "says so, naming it"
is "$(sql "select count(*) from pg_namespace where nspname = 'nothere'")" 0 "and does not create it"
exits 69 "a missing schema for a producer: exit 69" as alice jq-enqueue --schema nothere '{}'
like "$(cat "$T/err")" "schema nothere: does not exist and cannot be created" \
	"it may not create it, and says so"

# A second queue system in the same database has roles of its own.
exits 0 "the owner makes a second schema" as boss jq-worker --schema jq2 --drain -- true
exits 0 "and its roles" psql -X -q -d "$(url boss)" -v schema=jq2 -1 -f "$roles"
exits 69 "jq's producer may not enqueue into jq2" as alice jq-enqueue --schema jq2 '{}'
fails "roles.sql refuses a schema that does not exist" psql -X -q -d "$(url boss)" -v schema=nothere -1 -f "$roles"
like "$(cat "$T/err")" 'schema "nothere" does not exist' "and says so"
exits 0 "-v prefix names the roles" psql -X -q -d "$(url boss)" -v schema=jq2 -v prefix=q2 -1 -f "$roles"
is "$(sql "select count(*) from pg_roles where rolname in ('q2_producer', 'q2_worker', 'q2_observer')")" 3 "q2_producer and friends"

# An outdated schema: the roles use a current one, but cannot upgrade it.
latest=$(sql "select max(version) from schema_version")
prev=$(sql "select max(version) from schema_version where version < $latest")
sql "delete from schema_version where version = $latest" > /dev/null
exits 69 "an outdated schema: an observer exits 69" as olga jq-status "$a1"
like "$(cat "$T/err")" "schema jq is at version $prev and this pgjq needs version $latest, but role olga may not upgrade it" \
	"naming the schema, both versions and the role"
exits 69 "and so does a worker" as walter jq-worker --drain -- true
like "$(cat "$T/err")" "may not upgrade it" "for the same reason"
sql "insert into schema_version (version) values ($latest)" > /dev/null

# An upgrade that replaces a function takes its grants; the roles are then
# refused, never allowed more, until roles.sql is applied again.
sql "alter function register_worker(text, text[], integer, interval) security invoker;
     revoke execute on function register_worker(text, text[], integer, interval) from jq_worker" > /dev/null
as alice jq-enqueue -q up '{}' > /dev/null
exits 69 "a worker refused a replaced function exits 69" as walter jq-worker --drain -q up -- true
like "$(cat "$T/err")" "permission denied for function register_worker" "naming it"
psql -X -q -d "$(url boss)" -v schema=jq -1 -f "$roles" > /dev/null 2>&1
exits 0 "after roles.sql again it works" as walter jq-worker --drain -q up -- true
is "$(acl)" "$acl1" "with the same privileges as before"
done_testing
