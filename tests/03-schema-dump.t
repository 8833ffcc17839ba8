#!/bin/sh
# sql/schema.sql is what the migrations make of a fresh database: dumped
# again here (build-aux/schema-dump, a throwaway cluster of its own) and
# compared.  When this fails after a change to sql/, regenerate it:
#	sh build-aux/schema-dump _build > sql/schema.sql
. "${top_srcdir:-..}/tests/lib.sh"

run sh "$top_srcdir/build-aux/schema-dump" "$top_builddir"
case $RC:$(cat "$T/err") in
2:*"no PostgreSQL server binaries"*) skip_all "no PostgreSQL server binaries" ;;
esac
cp "$T/out" "$T/dump.sql"
is "$RC" 0 "build-aux/schema-dump runs"
like "$(cat "$T/dump.sql")" '^CREATE FUNCTION jq\.turn\(' "the dump holds the latest function, turn()"
like "$(cat "$T/dump.sql")" '^CREATE TABLE jq\.jobs \(' "and the jobs table"
latest=$(ls "$top_srcdir"/sql/0[0-9][0-9]-*.sql | sed -n '$s|.*/0*\([0-9]*\)-.*|\1|p')
like "$(sed -n 2p "$T/dump.sql")" "version $latest\\)" "at the latest migration's version ($latest)"
# The channels the SQL functions notify on are the C table's (lib/channel.h),
# whose longest suffix sets the longest schema name.
sent=$(grep -o "current_schema() || '_[a-z_]*'" "$T/dump.sql" | sed "s/.*'\(_[a-z_]*\)'/\1/" | sort -u)
like "$sent" '^_new$' "the functions notify on channels (found: $(echo $sent))"
missing=
for c in $sent; do
	grep -q "X(PGJQ_CHANNEL_[A-Z_]*, \"$c\")" "$top_srcdir/lib/channel.h" || missing="$missing $c"
done
is "$missing" "" "each of them is in lib/channel.h's table"
diff -u "$top_srcdir/sql/schema.sql" "$T/dump.sql" > "$T/diff" 2>&1
is "$?" 0 "sql/schema.sql is what the migrations make (else: sh build-aux/schema-dump _build > sql/schema.sql)"
[ -s "$T/diff" ] && diag "$(head -60 "$T/diff")"
done_testing
