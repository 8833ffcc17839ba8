#!/bin/sh
# The schema: created on first use, once, even when many tools start at
# once; per --schema; the installed SQL gives the same schema; a schema
# newer than the tools is refused.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

s=$JQ_SCHEMA
exits 0 "the first enqueue creates the schema" jq-enqueue '{}'
# Versions are the files' numbers; branches written side by side may leave gaps.
versions=$(ls "$top_srcdir"/sql/[0-9]*.sql | sed 's|.*/0*\([0-9][0-9]*\)-[^/]*$|\1|' | paste -sd, -)
latest=${versions##*,}
nmig=$(ls "$top_srcdir"/sql/[0-9]*.sql | wc -l | tr -d ' ')
is "$(sql "select string_agg(version::text, ',' order by version) from \"$s\".schema_version")" \
	"$versions" "every migration is applied, in order"
is "$(sql "select count(*) from \"$s\".jobs")" "1" "and the job is there"

# Eight tools at once on a fresh schema: one applies the migrations, all work.
for i in 1 2 3 4 5 6 7 8; do
	jq-enqueue --schema "${s}_race" "{\"i\":$i}" > "$T/race.$i" 2> "$T/race.$i.err" &
done
wait
fails_n=0
for i in 1 2 3 4 5 6 7 8; do
	[ -s "$T/race.$i" ] && [ ! -s "$T/race.$i.err" ] || fails_n=$((fails_n + 1))
done
is "$fails_n" 0 "eight tools starting at once on a fresh schema all succeed"
is "$(sql "select count(*) from \"${s}_race\".schema_version")" "$nmig" "each migration was applied once"
is "$(sql "select count(*) from \"${s}_race\".jobs")" "8" "every job is there"

# JQ_SCHEMA picks the schema too; -d wins over JQ_DATABASE_URL.
exits 0 "JQ_SCHEMA selects a schema" env JQ_SCHEMA="${s}_env" jq-enqueue '{}'
is "$(sql "select count(*) from \"${s}_env\".jobs")" "1" "the job went to that schema"
exits 0 "-d wins over a broken JQ_DATABASE_URL" \
	env JQ_DATABASE_URL="host=$T/nowhere" jq-enqueue -d "$JQ_DATABASE_URL" --schema "${s}_env" '{}'

# A schema name that needs quoting is quoted, not pasted.
odd='we"ird; drop'
exits 0 "a schema name with quotes and semicolons works" jq-enqueue --schema "$odd" '{}'
is "$(sql "select count(*) from \"we\"\"ird; drop\".jobs")" "1" "and holds the job"

# The installed SQL builds the same schema; the tools then need no migration.
sqlfile="$top_builddir/sql/pgjq.sql"
ok "pgjq.sql applies with psql" psql -X -q -v ON_ERROR_STOP=1 -v schema="${s}_dba" -f "$sqlfile"
is "$(sql "select max(version) from \"${s}_dba\".schema_version")" "$latest" "it records the version"
exits 0 "jq-enqueue works on the hand-made schema" jq-enqueue --schema "${s}_dba" '{"dba":1}'
a=$(sql "select string_agg(column_name || ':' || data_type, ',' order by ordinal_position) from information_schema.columns where table_schema = '$s' and table_name = 'jobs'")
b=$(sql "select string_agg(column_name || ':' || data_type, ',' order by ordinal_position) from information_schema.columns where table_schema = '${s}_dba' and table_name = 'jobs'")
is "$b" "$a" "the hand-made jobs table matches the automatic one"

# Version 7 makes the table keep the rules of a live job's row.  Rows
# written by hand into an older schema that break them are put right by
# the upgrade, which would otherwise fail.
(cd "$top_srcdir" && sh build-aux/sql2c sql . sql/00[1-6]-*.sql) > "$T/v6.sql"
ok "a version 6 schema" psql -X -q -v ON_ERROR_STOP=1 -v schema="${s}_v6" -f "$T/v6.sql"
sql "insert into \"${s}_v6\".jobs (queue, state, payload, worker, lease_until, attempts, waiting) values
	('q', 'running', '{}', null, null, 1, 0),
	('q', 'queued', '{}', 4, now() + interval '1 hour', 5, 0),
	('q', 'queued', '{}', null, null, 0, 2),
	('q', 'scheduled', '{}', null, null, 0, -1),
	('q', 'running', '{}', 9, now() + interval '1 hour', 3, 0)" > /dev/null
exits 0 "a tool upgrades it" jq-status --schema "${s}_v6" -q q
is "$(sql "select max(version) from \"${s}_v6\".schema_version")" "$latest" "to the latest version"
is "$(sql "select string_agg(state || ' ' || attempts || ' ' || coalesce(worker::text, '-') || ' ' || waiting
                             || ' ' || (lease_until is not null), ',' order by id) from \"${s}_v6\".jobs")" \
	"queued 1 - 0 false,queued 2 - 0 false,queued 0 - 0 false,scheduled 0 - 0 false,running 3 9 0 true" \
	"rows that broke the rules are put right, the others kept"
is "$(sql "select count(*) from pg_constraint where conrelid = '\"${s}_v6\".jobs'::regclass and convalidated
             and conname in ('jobs_running_held', 'jobs_attempts_range', 'jobs_waiting_scheduled')")" 3 \
	"and the rules are validated"
fails "a job born running is refused now" sql "insert into \"${s}_v6\".jobs (queue, state, payload) values ('q', 'running', '{}')"
like "$(cat "$T/err")" 'violates check constraint "jobs_running_held"' "by its rule"

# A schema from a newer pgjq is refused rather than misused.
sql "insert into \"${s}_dba\".schema_version (version) values (999)" >/dev/null
exits 69 "a schema newer than the tools exits 69" jq-enqueue --schema "${s}_dba" '{}'
like "$(cat "$T/err")" "version 999, newer than this pgjq" "and says why"

# A lookalike table in public does not capture our statements.
sql "create table public.jobs (id int); create table public.schema_version (version int)" >/dev/null
exits 0 "objects in public do not shadow ours" jq-enqueue '{"after_public":1}'
is "$(sql "select count(*) from public.jobs")" "0" "public.jobs is untouched"

# A role that may not create the schema is told so.
sql "create role lowly login" >/dev/null
exits 69 "a role without CREATE gets 69 when the schema is missing" \
	jq-enqueue -d "host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=lowly" --schema "${s}_nope" '{}'
like "$(cat "$T/err")" "cannot be created" "and is told to ask for the schema"

# Tools that only read or steer never create a schema; none uses a system one.
for tool in "jq-status 1" "jq-stats" "jq-retry 1" "jq-cancel 1"; do
	exits 69 "${tool%% *} with a misspelt schema exits 69" $tool --schema "${s}_typo"
	like "$(cat "$T/err")" "schema ${s}_typo has no pgjq tables" "naming the schema"
done
is "$(sql "select count(*) from pg_namespace where nspname = '${s}_typo'")" 0 "and none of them created it"
sql "create schema \"${s}_bare\"" > /dev/null
exits 69 "nor tables in an existing schema without them" jq-stats --schema "${s}_bare"
is "$(sql "select count(*) from pg_tables where schemaname = '${s}_bare'")" 0 "which stays empty"
for sys in information_schema pg_catalog pg_toast pg_temp_1 pg_mine; do
	exits 64 "--schema $sys: a system schema is a usage error" jq-enqueue --schema $sys '{}'
	like "$(cat "$T/err")" "schema $sys is a system schema" "saying so"
done
is "$(sql "select count(*) from pg_class where relname in ('jobs', 'schema_version')
            and relnamespace in (select oid from pg_namespace
                                  where nspname like 'pg\\_%' or nspname = 'information_schema')")" 0 \
	"no pgjq table went into a system schema"
is "$(sql "select count(*) from pg_namespace where nspname = 'pg_mine'")" 0 "and none was made"
done_testing
