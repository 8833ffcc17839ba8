#!/bin/sh
# Hostile input: SQL and shell metacharacters, very long values, NUL bytes
# and invalid UTF-8 in every place a user can put them.  Each one either
# works exactly (stored byte for byte, since values reach the server only
# as parameters) or is refused with a clear error and the documented exit
# status.  Also one test for each documented size limit.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

# A file made by any of these means something ran a shell on our input.
pwn=$T/pwned
evil_sql="'; DROP TABLE jobs; --"
evil_sh="\$(touch $pwn)\`touch $pwn\`;touch $pwn|touch $pwn&&touch $pwn"
evil_bs='back\slash\\ \x41 \u0041 %s%n'
# brief STR: the start of STR, printable, for a test's description.
brief() { printf '%.20s' "$1" | LC_ALL=C tr -c ' -~' '?'; }
# rep N STR: STR N times.
rep() { awk -v n="$1" -v s="$2" 'BEGIN { while (n-- > 0) printf "%s", s }'; }
# same ID EXPR VALUE: whether EXPR of job ID equals VALUE; VALUE reaches the
# server as a psql variable, never pasted into the SQL.
same() {
	printf 'select (%s) = :'"'"'v'"'"' from "%s".all_jobs where id = %s\n' "$2" "$JQ_SCHEMA" "$1" |
		psql -X -At -v ON_ERROR_STOP=1 -v v="$3" -d "$JQ_DATABASE_URL" 2>&1
}
# js STR: STR as a JSON string.
js() {
	printf '"%s"' "$(printf '%s\n' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' |
		awk 'NR > 1 { printf "%s", "\\n" } { printf "%s", $0 }')"
}
tables() { sql "select count(*) from pg_tables where schemaname = '$JQ_SCHEMA'"; }
ntables=$(jq-enqueue '{}' > /dev/null && tables)
bad=$(printf 'a\377b')       # invalid UTF-8
nl=$(printf 'a\nb')

# ---- payloads: stored as the same JSON value, whatever they hold
for p in \
	"{\"sql\": \"$evil_sql\", \"q\": \"\\\"'\\\"\"}" \
	"{\"sh\": \"$(printf '%s' "$evil_sh" | sed 's/"/\\"/g')\"}" \
	'{"bs": "back\\slash\\\\ \\u0041 %s%n"}' \
	'{"ctl": "\t\n\r\u0001\u001b[31m\u007f", "uni": "é€😀\u2028"}' \
	'"\u00e9 plain string"' \
	'1234567890123456789012345.678901234567890123' \
	"$(rep 2000 '[')$(rep 2000 ']')"
do
	id=$(jq-enqueue "$p") || { fail "payload $p: enqueued"; continue; }
	is "$(same "$id" payload "$p")" t "payload stored as given: $(brief "$p")"
	printf '%s\n' "$p" > "$T/in"
	id=$(jq-enqueue < "$T/in")
	is "$(same "$id" payload "$p")" t "and from stdin"
done
exits 65 "a payload with \\u0000 is refused with 65" jq-enqueue '{"a": "\u0000"}'
like "$(cat "$T/err")" "arg 1: invalid JSON" "as invalid JSON, naming the argument"
printf '{"a":1}\n{"b":"x\000y"}\n' > "$T/nul"
exits 65 "a NUL byte on stdin is refused with 65" jq-enqueue < "$T/nul"
like "$(cat "$T/err")" "stdin:2: NUL byte in input" "naming the line"
exits 65 "invalid UTF-8 in an argument is refused with 65" jq-enqueue "\"$bad\""
like "$(cat "$T/err")" "arg 1: invalid JSON" "as invalid JSON"
printf '"%s"\n' "$bad" > "$T/bad"
exits 65 "invalid UTF-8 on stdin is refused with 65" jq-enqueue < "$T/bad"
exits 65 "a lone surrogate is refused with 65" jq-enqueue '"\ud800"'
exits 65 "nesting deeper than 2048 is refused with 65" jq-enqueue "$(rep 3000 '[')$(rep 3000 ']')"
like "$(cat "$T/err")" "maximum parsing depth" "saying why"
exits 65 "a number beyond a double is refused with 65" jq-enqueue '1e400'
is "$(sql "select count(*) from jobs where payload::text like '%DROP%'")" 2 "the SQL in payloads was stored, not run"
is "$(tables)" "$ntables" "and every table is still there"

# ---- the payload size limit: 1 MiB of JSON text
printf '"%s"' "$(rep 1048574 x)" > "$T/max"
is "$(wc -c < "$T/max" | tr -d ' ')" 1048576 "(a payload of exactly 1 MiB)"
exits 0 "a payload of exactly 1 MiB is accepted" jq-enqueue < "$T/max"
id=$(cat "$T/out")
is "$(sql "select octet_length(payload #>> '{}') from jobs where id = $id")" 1048574 "and stored whole"
printf '"%s"' "$(rep 1048575 x)" > "$T/over"
exits 65 "one byte more is refused with 65" jq-enqueue < "$T/over"
like "$(cat "$T/err")" "stdin:1: .*too large.*1048577 bytes, the limit is 1048576" "saying so, with the limit"
printf '{"payload": %s, "queue": "big"}' "$(cat "$T/max")" > "$T/env"
exits 0 "an envelope may wrap a payload of 1 MiB" jq-enqueue -e < "$T/env"

# ---- uniqueness keys: any UTF-8 text of 1 to 512 bytes
for k in "$evil_sql" "$evil_sh" "$evil_bs" "$nl" "tab	and space " "é€😀" "$(rep 128 '😀')" "$(rep 512 k)"; do
	id=$(jq-enqueue --key "$k" '{}') || { fail "key $k: enqueued"; continue; }
	is "$(same "$id" key "$k")" t "key stored byte for byte: $(brief "$k")"
	is "$(jq-enqueue --key "$k" '{}')" "$id" "and the same key finds the same job"
done
exits 64 "a key of 513 bytes is refused with 64" jq-enqueue --key "$(rep 513 k)" '{}'
like "$(cat "$T/err")" "--key: expected 1 to 512 bytes" "naming the limit"
exits 64 "an empty key is refused with 64" jq-enqueue --key "" '{}'
exits 64 "a key of invalid UTF-8 is refused with 64" jq-enqueue --key "$bad" '{}'
like "$(cat "$T/err")" "--key: expected 1 to 512 bytes of UTF-8 text" "saying why"
exits 65 "in an envelope, a key of 513 bytes is refused with 65" \
	jq-enqueue -e "{\"payload\": 1, \"key\": \"$(rep 513 k)\"}"
exits 65 "in an envelope, a key with \\u0000 is refused with 65" jq-enqueue -e '{"payload": 1, "key": "a\u0000b"}'
printf '{"payload": 1, "key": "%s"}\n' "$evil_sql" > "$T/env"
exits 0 "in an envelope, SQL in a key is just text" jq-enqueue -e < "$T/env"
is "$(same "$(cat "$T/out")" key "$evil_sql")" t "stored as given"

# ---- queue names: 1 to 64 of A-Z a-z 0-9 _ . - :, everywhere
exits 0 "a queue name of 64 characters is accepted" jq-enqueue -q "$(rep 64 q)" '{}'
for q in "$(rep 65 q)" "$evil_sql" "$evil_sh" "$evil_bs" "$nl" "$bad" "é" "a b" ""; do
	d=$(brief "$q")
	exits 64 "jq-enqueue -q '$d' is refused with 64" jq-enqueue -q "$q" '{}'
	like "$(cat "$T/err")" "invalid queue name" "and says why"
	exits 64 "jq-worker -q '$d' is refused with 64" jq-worker -q "$q" --drain -- true
	exits 64 "jq-status -q '$d' is refused with 64" jq-status -q "$q"
	exits 64 "jq-retry -q '$d' is refused with 64" jq-retry -q "$q" --failed
	exits 65 "an envelope's queue '$d' is refused with 65" \
		jq-enqueue -e "{\"payload\": 1, \"queue\": $(js "$q")}"
done

# ---- job ids: positive integers, and nothing else
for i in "1;drop table jobs" "1 OR 1=1" "$evil_sh" "-1" "0" "+1" " 1" "1 " "0x10" "1e3" \
	"99999999999999999999" "1,,2" "," "$bad" ""; do
	d=$(brief "$i")
	exits 64 "jq-enqueue --after '$d' is refused with 64" jq-enqueue --after "$i" '{}'
	exits 64 "jq-status '$d' is refused with 64" jq-status "$i"
	exits 64 "jq-cancel '$d' is refused with 64" jq-cancel "$i"
	exits 64 "jq-retry '$d' is refused with 64" jq-retry "$i"
done
exits 66 "--after an id that names no job: 66" jq-enqueue --after 999999999 '{}'
exits 65 "an envelope's after with a string: 65" jq-enqueue -e '{"payload": 1, "after": ["1;drop"]}'
exits 66 "a thousand ids at once: 66, since most name no job" jq-status --json "$(seq -s, 1 1000)"
like "$(cat "$T/out")" '"id": *1[,}]' "and the ones that exist are shown"
is "$(tables)" "$ntables" "every table is still there"

# ---- durations, times and numbers
for v in "1s; drop table jobs" "$evil_sh" "-1s" "nan" "inf" "1e400" "0x10" "99999999999999d" \
	"1 s" "1s " "$bad" "$(rep 5000 9)"; do
	d=$(brief "$v")
	exits 64 "jq-enqueue --delay '$d' is refused with 64" jq-enqueue --delay "$v" '{}'
	exits 64 "jq-enqueue --timeout '$d' is refused with 64" jq-enqueue --timeout "$v" '{}'
	for o in $(jq-worker --help 2>&1 | grep -o -- '--[a-z-]* duration' | cut -d' ' -f1 | sort -u); do
		exits 64 "jq-worker $o '$d' is refused with 64" jq-worker "$o" "$v" --drain -- true
	done
done
like "$(jq-enqueue --delay '1s; drop' '{}' 2>&1)" "--delay: invalid duration '1s; drop'" "a bad duration is named"
for v in "tomorrow$evil_sql" "$evil_sh" "$bad" "$(rep 100000 9)" "now'::timestamptz; select 1; --"; do
	exits 64 "jq-enqueue --at '$(brief "$v")' is refused with 64" jq-enqueue --at "$v" '{}'
	like "$(cat "$T/err")" "^jq-enqueue: --at: invalid time" "with the server's reason"
done
for v in "1;drop" "1 " "0x1" "1e3" "99999999999999999999" "$bad" ""; do
	d=$(brief "$v")
	exits 64 "jq-enqueue -p '$d' is refused with 64" jq-enqueue -p "$v" '{}'
	exits 64 "jq-enqueue --max-attempts '$d' is refused with 64" jq-enqueue --max-attempts "$v" '{}'
	exits 64 "jq-enqueue --batch '$d' is refused with 64" jq-enqueue --batch "$v" '{}'
	exits 64 "jq-worker -c '$d' is refused with 64" jq-worker -c "$v" --drain -- true
	exits 64 "jq-worker --max-jobs '$d' is refused with 64" jq-worker --max-jobs "$v" --drain -- true
	exits 64 "jq-status --limit '$d' is refused with 64" jq-status --limit "$v"
done
for v in "queued'; drop table jobs; --" "$evil_sh" "$bad" "QUEUED"; do
	exits 64 "jq-status --state '$(brief "$v")' is refused with 64" jq-status --state "$v"
done
exits 64 "jq-worker --http with a file: URL is refused with 64" jq-worker --http "file:///etc/passwd"
exits 64 "jq-worker --http with a shell command is refused with 64" jq-worker --http "$evil_sh"
exits 65 "an envelope's delay with SQL in it: 65" jq-enqueue -e '{"payload": 1, "delay": "1s; drop"}'
exits 65 "an envelope's at with SQL in it: 65, bad data" jq-enqueue -e "{\"payload\": 1, \"at\": \"now$evil_sql\"}"
is "$(tables)" "$ntables" "every table is still there"

# ---- schema names and connection strings
odd="we\"ird'; drop schema jq cascade; --"
exits 0 "a schema name with quotes and SQL works" jq-enqueue --schema "$odd" '{}'
is "$(sql "select count(*) from \"we\"\"ird'; drop schema jq cascade; --\".jobs")" 1 "and holds the job"
exits 0 "a schema name of 53 bytes works" jq-enqueue --schema "$(rep 53 s)" '{}'
exits 64 "one of 54 bytes is refused with 64" jq-enqueue --schema "$(rep 54 s)" '{}'
like "$(cat "$T/err")" "schema name must be 1 to 53 bytes" "naming the limit"
exits 64 "one of invalid UTF-8 is refused with 64" jq-enqueue --schema "$bad" '{}'
exits 64 "an empty one is refused with 64" jq-status --schema "" 1
exits 0 "a schema name with a newline works" env JQ_SCHEMA="$nl" jq-enqueue '{}'
exits 69 "a connection string with SQL in it: 69" jq-enqueue -d "host=$T/nowhere$evil_sql" '{}'
like "$(cat "$T/err")" "cannot connect to the database" "saying so"
exits 69 "a connection string of 100 KB: 69" jq-status -d "host=$(rep 100000 h)" 1

# ---- the handler: run without a shell, its output kept as it was
id=$(jq-enqueue -q h '{}')
exits 0 "a handler whose arguments hold shell syntax runs directly" \
	jq-worker -q h --drain -- printf '%s' "$evil_sh"
is "$(same "$id" "result #>> '{}'" "$evil_sh")" t "its output is the result, as a string, byte for byte"
cat > "$T/noisy" <<'EOF'
#!/bin/sh
cat > /dev/null
case $JQ_QUEUE in
out) printf '{"a":"\000"}\nna\377ve\n' ;;
err) printf 'ignored %05000d' 0 >&2; printf 'x\000y\377z' >&2; printf '%s' "$EVIL" >&2; exit 3 ;;
big) head -c 1048577 /dev/zero | tr '\0' 'b' ;;
json) printf '"%s"' "$(awk 'BEGIN { while (n++ < 1048574) printf "j" }')" ;;
msg) awk 'BEGIN { printf "40 "; while (n++ < 5000) printf "m"; print "" }' >&3 ;;
evil) echo "41 $EVIL" >&3 ;;
esac
EOF
chmod +x "$T/noisy"
for q in out err big json msg evil; do
	eval "id_$q=\$(jq-enqueue -q $q --max-attempts 1 '{}')"
done
exits 0 "handlers with hostile output are run" \
	env EVIL="$evil_sql$evil_sh" jq-worker -q out -q err -q big -q json -q msg -q evil -c 6 --drain -- "$T/noisy"
is "$(sql "select result #>> '{}' from all_jobs where id = $id_out")" \
	"$(printf '{"a":"\357\277\275"}\nna\357\277\275ve')" "NUL and invalid UTF-8 in stdout become U+FFFD, in a string"
is "$(sql "select octet_length(error) <= 2048 + 32 and error like 'exit status 3: %'
             and error not like '%ignored%' from all_jobs where id = $id_err")" t \
	"the error keeps the last 2 KiB of stderr, after the exit status"
is "$(same "$id_err" "right(error, length(:'v'))" "$(printf 'x y\357\277\275z')$evil_sql$evil_sh")" t \
	"NUL became a space, bad UTF-8 U+FFFD, SQL and shell syntax stayed as they were"
is "$(sql "select jsonb_typeof(result) || ' ' || octet_length(result #>> '{}') from all_jobs where id = $id_big")" \
	"string 1048576" "stdout over 1 MiB is cut to 1 MiB and stored as a string"
like "$(cat "$T/err")" "job $id_big: .*1048576 bytes" "and the worker says so"
is "$(sql "select jsonb_typeof(result) || ' ' || octet_length(result #>> '{}') from all_jobs where id = $id_json")" \
	"string 1048574" "a JSON result of exactly 1 MiB is stored as JSON"
is "$(sql "select octet_length(message) from all_jobs where id = $id_msg")" 4093 \
	"a progress line is cut at 4 KiB"
is "$(same "$id_evil" message "$evil_sql$evil_sh")" t "a progress message is stored as written"
ok "no shell ever ran on any of it" test ! -e "$pwn"
is "$(tables)" "$ntables" "every table is still there"

# A queue named like an array's null element is a queue like any other.
nid=$(jq-enqueue -q NULL '{}')
exits 0 "a worker of the queue NULL drains it" jq-worker -q NULL --drain -- true
is "$(sql "select state from all_jobs where id = $nid")" completed "and ran its job"
exits 0 "jq-status -q NULL lists it" jq-status -q NULL --json
is "$(jget .id < "$T/out")" "$nid" "that job and no other"
done_testing
