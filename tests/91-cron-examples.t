#!/bin/sh
# The crontab examples of the man pages, run as cron runs them: from a
# bare environment (cron's PATH is /usr/bin:/bin, and no JQ_DATABASE_URL
# unless the crontab sets it), in the home directory, with cron's `%'
# rule; then one of them by a real cron(8) daemon, where one can be
# started (as root, with none running).  The examples' own lines are used;
# only the database, the install directory, the handler stubs and the
# textfile directory are put in for the test's.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

home=$T/home stubs=$T/stubs textfile=$T/textfile
mkdir -p "$home" "$stubs" "$textfile"
# The handlers the examples name by their full path: they complete.
for h in report make-thumb; do
	printf '#!/bin/sh\ncat > /dev/null\necho "{\\"by\\": \\"%s\\"}"\n' "$h" > "$stubs/$h"
	chmod +x "$stubs/$h"
done

# Each page's crontab lines from its EXAMPLES, in order: VAR=value lines
# and entries, "FILE<TAB>LINE", with mdoc's \e made a backslash.
for page in "$top_srcdir"/man/*.1 "$top_srcdir"/man/pgjq.7; do
	awk -v f="${page##*/}" '
		/^\.Sh / { ex = ($2 == "EXAMPLES") }
		ex && /^\.Bd -literal/ { lit = 1; n = 0; next }
		ex && /^\.Ed/ {
			if (cron) for (i = 1; i <= n; i++) print f "\t" l[i]
			lit = 0; cron = 0; next
		}
		lit {
			gsub(/\\e/, "\\")
			l[++n] = $0
			if ($0 ~ /^[0-9*\/,-]+ [0-9*\/,-]+ [0-9*\/,-]+ [0-9*\/,-]+ [0-9*\/,-]+ /) cron = 1
		}' "$page"
done > "$T/crontabs"
is "$(cut -f1 "$T/crontabs" | sort -u | tr '\n' ' ')" "jq-enqueue.1 jq-stats.1 jq-worker.1 pgjq.7 " \
	"the pages with crontab examples"

# The example's line made the test's: where the tools, the handlers, the
# database and the textfile directory are.
url=$(printf '%s\n' "$JQ_DATABASE_URL" | sed 's/[&|\\]/\\&/g')
localize() {
	sed -e "s|^PATH=/usr/local/bin:|PATH=$top_builddir/bin:|" \
	    -e "s|^JQ_DATABASE_URL=.*|JQ_DATABASE_URL=$url|" \
	    -e "s|/usr/local/bin/\\([a-z-]*\\)|$stubs/\\1|g" \
	    -e "s|/var/lib/prometheus/node-exporter|$textfile|g"
}

# Work for the entries: a job in each queue a worker entry drains.
jq-enqueue -q nightly '{}' > /dev/null && jq-enqueue -q thumbs '{"path": "a.jpg"}' > /dev/null ||
	bail_out "cannot enqueue"

n=0
while IFS='	' read -r page line; do
	case $line in
	[A-Z]*=*)
		# cron sets a variable for the entries after it, in the same crontab.
		eval "env_$(echo "$page" | tr -c 'a-z0-9\n' _)=\"\${env_$(echo "$page" | tr -c 'a-z0-9\n' _)}\$line
\""
		continue ;;
	esac
	n=$((n + 1))
	vars=$(eval "printf '%s' \"\${env_$(echo "$page" | tr -c 'a-z0-9\n' _)}\"")
	cmd=$(printf '%s\n' "$line" | cut -d' ' -f6-)
	like "$vars" '^PATH=/usr/local/bin:' "$page entry $n: its crontab puts /usr/local/bin on PATH"
	like "$vars" '^JQ_DATABASE_URL=' "$page entry $n: and names the database"
	unlike "$cmd" '(^| )\.\.?/' "$page entry $n: no path relative to cron's directory"
	# cron: an unescaped % ends the command (the rest is its stdin), \% is %.
	cmd=$(printf '%s\n' "$cmd" | sed -e 's/\\%/\x01/g' -e 's/%.*//' -e 's/\x01/%/g' | localize)
	case $cmd in *"| jq "*)
		command -v jq >/dev/null 2>&1 || { skip "jq is not installed" 2; continue; } ;;
	esac
	set --
	for v in $(printf '%s' "$vars" | localize); do set -- "$@" "$v"; done
	exits 0 "$page entry $n runs as cron runs it: ${cmd%% *} ..." \
		sh -c 'cd "$1" && shift && exec env -i HOME="$PWD" LOGNAME=root SHELL=/bin/sh PATH=/usr/bin:/bin "$@"' \
		sh "$home" "$@" /bin/sh -c "$cmd" < /dev/null
	[ "$RC" = 0 ] || diag "$(cat "$T/err")"
done < "$T/crontabs"

is "$(sql "select string_agg(queue || ' ' || state, ', ' order by queue) from all_jobs
            where queue in ('nightly', 'thumbs')")" "nightly completed, thumbs completed" \
	"the worker entries drained their queues with the handlers named"
is "$(sql "select count(*) from jobs where queue = 'reports' and key = 'nightly-' || to_char(now(), 'YYYY-MM-DD')")" 1 \
	"the enqueue entry enqueued tonight's report, its % escaped"
ok "the textfile entry left its metrics" grep -q '^pgjq_workers ' "$textfile/pgjq.prom"

# ---- a real cron daemon, with the textfile entry, for a minute at most
entry=$(grep -F 'jq-stats --prometheus' "$T/crontabs" | head -1 | cut -f2 | localize)
if [ "$(id -u)" != 0 ]; then
	skip "cron runs crontabs in /etc/cron.d only as root" 2
elif ! command -v cron >/dev/null 2>&1; then
	skip "cron is not installed (Debian: cron)" 2
elif [ -s /var/run/crond.pid ] && kill -0 "$(cat /var/run/crond.pid)" 2>/dev/null; then
	skip "a cron daemon runs already; not starting another" 2
else
	rm -f "$textfile/pgjq.prom"
	tab=/etc/cron.d/pgjq-test-$$
	{
		grep -F 'jq-stats.1' "$T/crontabs" | cut -f2 | grep -E '^[A-Z_]+=' | localize
		# /etc/cron.d's lines name the user after the time fields.
		printf '%s\n' "$entry" | sed 's/^\(\([^ ]* \)\{5\}\)/\1root /'
	} > "$tab"
	chmod 644 "$tab"
	at_exit "rm -f '$tab'"
	cron -f -L 0 > "$T/cron.log" 2>&1 &
	cronpid=$!
	at_exit "kill $cronpid 2>/dev/null"
	# cron runs an entry at the start of a minute.
	if wait_for "cron to run the entry" 75 test -s "$textfile/pgjq.prom"; then
		pass "cron ran the textfile entry"
	else
		fail "cron ran the textfile entry"
		diag "$(cat "$tab" "$T/cron.log")"
	fi
	ok "and the metrics are there" grep -q '^pgjq_jobs_completed_total{queue="thumbs"} 1$' "$textfile/pgjq.prom"
	kill "$cronpid" 2>/dev/null
	wait "$cronpid" 2>/dev/null
	rm -f "$tab"
fi
done_testing
