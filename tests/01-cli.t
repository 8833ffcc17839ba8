#!/bin/sh
# Every tool: --help, --version, bad options and bad option values, an
# unreachable database.  Runs the real binaries; most need no database.
. "${top_srcdir:-..}/tests/lib.sh"

tools="jq-enqueue jq-worker jq-status jq-retry jq-cancel jq-stats jq-queue jq-schedule"

for t in $tools; do
	exits 0 "$t --help exits 0" $t --help
	like "$(cat "$T/out")" "^usage: $t " "$t --help prints the usage on stdout"
	is "$(cat "$T/err")" "" "$t --help writes nothing on stderr"
	exits 0 "$t -h exits 0" $t -h
	exits 0 "$t --version exits 0" $t --version
	like "$(cat "$T/out")" "^$t \\(pgjq\\) [0-9]+\\.[0-9]+\\.[0-9]+$" "$t --version names tool, package, version"
	exits 64 "$t --no-such-option exits 64" $t --no-such-option
	like "$(cat "$T/err")" "no-such-option" "$t names the bad option"
	like "$(cat "$T/err")" "^usage: $t " "$t prints the usage after a bad option"
	is "$(cat "$T/out")" "" "$t writes nothing on stdout after a bad option"
done

# The usage text is the man page's SYNOPSIS, word for word.
for t in $tools; do
	page="$top_srcdir/man/$t.1"
	if command -v mandoc >/dev/null 2>&1; then
		syn=$(mandoc -Tascii -O width=200 "$page" | col -b |
			sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | tr -s ' \t\n' '   ' | sed 's/^ //;s/ $//')
		use=$($t --help | sed '/^$/,$d' | sed 's/^usage: //' | tr -s ' \n' '  ' | sed 's/^ //;s/ $//')
		is "$use" "$syn" "$t usage matches the SYNOPSIS of $t.1"
	else
		skip "mandoc is not installed"
	fi
done

# -h lists every option the man page has, each with a few words.
for t in $tools; do
	$t -h > "$T/help"
	missing=
	for o in $(grep '^\.It Fl' "$top_srcdir/man/$t.1" | grep -o 'Fl -[a-z-]*' | sed 's/Fl /-/' | sort -u); do
		grep -Eq -- "^  (-[a-zA-Z], )? *$o [a-z ]*[A-Za-z]" "$T/help" || missing="$missing $o"
	done
	is "$missing" "" "$t -h describes every option of $t.1"
done

# jq-enqueue's option values.
e=jq-enqueue
exits 64 "--batch 0 is a usage error" $e --batch 0 1
exits 64 "-q twice is a usage error, not the last one silently" $e -q a -q b 1
like "$(cat "$T/err")" "one queue per run" "saying why"
exits 64 "--batch x is a usage error" $e --batch x 1
exits 64 "--delay 5x is a usage error" $e --delay 5x 1
like "$(cat "$T/err")" "invalid duration '5x'" "the bad duration is named"
exits 64 "--timeout 0 is a usage error" $e --timeout 0 1
exits 64 "-p 1.5 is a usage error" $e -p 1.5 1
exits 64 "-p beyond 32 bits is a usage error" $e -p 2147483648 1
exits 64 "--max-attempts 0 is a usage error" $e --max-attempts 0 1
exits 64 "--after with a bad id is a usage error" $e --after 1,x 1
exits 64 "--after 1,,2 is a usage error" $e --after 1,,2 1
exits 64 "a bad queue name is a usage error" $e -q 'a b' 1
like "$(cat "$T/err")" "invalid queue name 'a b'" "the bad queue name is named"
exits 64 "--delay and --at exclude each other" $e --delay 1s --at tomorrow 1
exits 69 "an unreachable database exits 69" $e -d "host=$T/nowhere connect_timeout=2" 1
like "$(cat "$T/err")" "^jq-enqueue: cannot connect to the database" "and says so"
exits 69 "JQ_DATABASE_URL is used when -d is absent" env JQ_DATABASE_URL="host=$T/nowhere" $e 1

done_testing
