#!/bin/sh
# Fleet-wide limits, from the handlers' own clocks: 4 workers x -c 8 on a
# queue limited to 3 never run more than 3 at once; a queue rated 20/1s
# never starts more than 20 in any 1 s window.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start
h=$top_srcdir/tests/handlers

count() { sql "select count(*) from all_jobs where $1"; }
has() { test "$(count "$1")" -ge "$2"; }
enqueue_n() { # QUEUE N
	i=0; while [ $i -lt "$2" ]; do echo "{\"i\":$i}"; i=$((i + 1)); done | jq-enqueue -q "$1" > /dev/null
}
# The most handlers of RECORD running at once: +1 at each start, -1 at
# each end, an end before a start at the same instant.
most_at_once() {
	awk '$1 == "end" { print $3, 1; print $4, 0 }' "$1" | sort -k1,1g -k2,2n |
		awk '{ n += $2 ? 1 : -1; if (n > m) m = n } END { print m + 0 }'
}
# The most starts in any window of $2 seconds.
most_in_window() {
	awk '$1 == "start" { print $3 }' "$1" | sort -g |
		awk -v w="$2" '{ t[NR] = $1 } END {
			j = 1
			for (i = 1; i <= NR; i++) { while (t[i] - t[j] >= w) j++; if (i - j + 1 > m) m = i - j + 1 }
			print m + 0 }'
}
# 4 workers x -c 8 on queue $1, handler span with NAP $2, records to $3.
workers() {
	pids=
	for k in 1 2 3 4; do
		RECORD=$3 NAP=$2 jq-worker -q "$1" -c 8 --grace 0 -- "$h/span" 2>> "$T/$1.err" &
		pids="$pids $!"
	done
	at_exit "kill -9 $pids 2>/dev/null"
}

enqueue_n lim 30
exits 0 "limit lim 3" jq-queue limit lim 3
: > "$T/lim.rec"
workers lim 0.3 "$T/lim.rec"
wait_for "30 jobs complete" 60 has "queue = 'lim' and state = 'completed'" 30
is "$(count "queue = 'lim' and state = 'completed'")" 30 "the 30 jobs of the limited queue complete"
kill -TERM $pids; wait $pids
m=$(most_at_once "$T/lim.rec")
diag "most handlers at once: $m"
ok "never more than 3 handlers at once, across 4 workers x -c 8 ($m)" test "$m" -le 3
ok "yet more than one at once" test "$m" -ge 2

enqueue_n rated 100
exits 0 "rate rated 20/1s" jq-queue rate rated 20/1s
: > "$T/rated.rec"
workers rated 0 "$T/rated.rec"
wait_for "100 jobs complete" 60 has "queue = 'rated' and state = 'completed'" 100
is "$(count "queue = 'rated' and state = 'completed'")" 100 "the 100 jobs of the rated queue complete"
kill -TERM $pids; wait $pids
m=$(most_in_window "$T/rated.rec" 1)
diag "most starts in a 1 s window: $m"
ok "never more than 20 starts in any 1 s window ($m)" test "$m" -le 20
span=$(awk '$1 == "start" { print $3 }' "$T/rated.rec" | sort -g | sed -n '1p;$p' | tr '\n' ' ' |
	awk '{ printf "%d", $2 - $1 }')
diag "first to last start: ${span}s"
ok "the 100 starts spread over 4 s at least ($span s)" test "$span" -ge 4
done_testing
