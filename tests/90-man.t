#!/bin/sh
# The man pages: lint-clean, and every option a tool accepts is documented.
. "${top_srcdir:-..}/tests/lib.sh"

command -v mandoc >/dev/null 2>&1 || skip_all "mandoc is not installed"

for page in "$top_srcdir"/man/*.[1-9]; do
	name=$(basename "$page")
	exits 0 "$name: mandoc -Tlint -Wwarning is clean" mandoc -Tlint -Wwarning "$page"
	is "$(cat "$T/out" "$T/err")" "" "$name: no lint messages"
	text=$(mandoc -Tascii "$page" | col -b)
	like "$text" "^EXIT STATUS" "$name: has EXIT STATUS"
	like "$text" "^EXAMPLES" "$name: has EXAMPLES"
done

# Every long option in a tool's usage has an entry in its page.
for page in "$top_srcdir"/man/jq-*.1; do
	tool=$(basename "$page" .1)
	missing=
	for opt in $($tool --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		grep -q -- "^\\.It .*Fl $(echo "$opt" | sed 's/^-//')" "$page" ||
			grep -q -- "Fl $(echo "$opt" | sed 's/^-//')" "$page" || missing="$missing $opt"
	done
	is "$missing" "" "$tool: every option in --help is in $tool.1"
done
done_testing
