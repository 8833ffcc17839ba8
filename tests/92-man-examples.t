#!/bin/sh
# The man pages' EXAMPLES, run as printed against the test's server, the
# way jq tests its manual: every literal block of every page's EXAMPLES
# section, in order, from one directory that holds the files they name
# (jobs.json, users.json, photos/, ids, ./publish-report), with stubs
# for convert(1), mail(1), systemctl(1) and sendmail-job.  A block must exit 0.  Handler
# scripts are saved under their name and used: a worker runs the pages'
# make-thumb for queue thumbs.  Not run: crontab entries (tests/91),
# systemd units, PromQL, and what runs until stopped (a worker without
# --drain or --max-jobs, --watch, a followed queue, tail -F).
. "${top_srcdir:-..}/tests/lib.sh"
command -v jq >/dev/null 2>&1 || skip_all "jq is not installed"
pg_start

ex=$T/ex stubs=$T/stubs
mkdir -p "$ex/photos" "$stubs"
printf '#!/bin/sh\n# convert SRC -thumbnail GEOMETRY DST\ncp "$1" "$4"\n' > "$stubs/convert"
printf '#!/bin/sh\ncat > /dev/null\n' > "$stubs/mail"
printf '#!/bin/sh\ncat > /dev/null\n' > "$stubs/sendmail-job"
printf '#!/bin/sh\nexit 0\n' > "$ex/publish-report"
printf '#!/bin/sh\nexit 0\n' > "$stubs/systemctl"
chmod +x "$stubs"/* "$ex/publish-report"
: > "$ex/photos/a.jpg"; : > "$ex/photos/b.jpg"
echo '[{"path": "photos/a.jpg"}, {"path": "photos/b.jpg"}]' > "$ex/jobs.json"
echo '[{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}]' > "$ex/users.json"
PATH=$stubs:$PATH
export PATH

# Job 42, failed, for the examples that name it; two queued jobs in ids;
# the table of pgjq(7)'s transaction example.
jq-enqueue -q setup '{}' > /dev/null || bail_out "cannot make the schema"
sql "select setval('job_id_seq', 41)" > /dev/null
[ "$(jq-enqueue '{"n": 42}')" = 42 ] || bail_out "job 42 is not 42"
sql "select finish_job(42, 'failed', null, null, 'boom')" \
    "create table public.orders (id integer, customer text)" > /dev/null
jq-enqueue -q later '{}' '{}' > "$ex/ids"
# Queues the jq-queue(1) examples steer, known by a job each.
jq-enqueue -q payments '{}' > /dev/null
jq-enqueue -q reports '{}' > /dev/null

# Workers for the queues whose jobs the examples wait for.
(cd "$ex" && exec jq-worker --quiet -c 4 -q default -q report -q reports -- cat) > "$T/w1.log" 2>&1 &
w1=$!
at_exit "kill $w1 2>/dev/null"

# The blocks: "PAGE<TAB>N<TAB>line" with mdoc's \e made a backslash.
for page in "$top_srcdir"/man/*.1 "$top_srcdir"/man/pgjq.7; do
	awk -v f="${page##*/}" '
		/^\.Sh / { ex = ($2 == "EXAMPLES") }
		ex && /^\.Bd -literal/ { lit = 1; n++; next }
		ex && /^\.Ed/ { lit = 0; next }
		lit { gsub(/\\e/, "\\"); print f "\t" n "\t" $0 }' "$page"
done > "$T/blocks"

# First the handler scripts, saved under the name their comment gives,
# so that the first make-thumb can serve queue thumbs from the start.
thumbs=
for key in $(cut -f1,2 "$T/blocks" | uniq | tr '\t' ':'); do
	page=${key%:*} n=${key#*:}
	awk -F '\t' -v f="$page" -v n="$n" '$1 == f && $2 == n' "$T/blocks" | cut -f3- > "$T/text"
	case $(head -1 "$T/text") in '#!'*) ;; *) continue ;; esac
	name=$(sed -n '2s/^# \([a-z-]*\): .*/\1/p' "$T/text")
	[ -n "$name" ] && [ ! -e "$ex/$name" ] || continue
	cp "$T/text" "$ex/$name" && chmod +x "$ex/$name"
done
[ -x "$ex/make-thumb" ] || bail_out "no make-thumb handler in the pages"
(cd "$ex" && exec jq-worker --quiet -c 2 -q thumbs -- ./make-thumb) > "$T/w2.log" 2>&1 &
thumbs=$!
at_exit "kill $thumbs 2>/dev/null"

# Runs block $2 of page $1 in $ex, its own process group, for 60 s at most.
run_block() {
	awk -F '\t' -v f="$1" -v n="$2" '$1 == f && $2 == n { sub(/^[^\t]*\t[^\t]*\t/, ""); print }' \
		"$T/blocks" > "$T/block.sh"
	(cd "$ex" && exec setsid sh "$T/block.sh") > "$T/out" 2> "$T/err" < /dev/null &
	bpid=$!
	i=0
	while kill -0 "$bpid" 2>/dev/null && [ "$i" -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -TERM -- "-$bpid" 2>/dev/null
	wait "$bpid"
	RC=$?
}

ran=0
for key in $(cut -f1,2 "$T/blocks" | uniq | tr '\t' ':'); do
	page=${key%:*} n=${key#*:}
	text=$(awk -F '\t' -v f="$page" -v n="$n" '$1 == f && $2 == n' "$T/blocks" | cut -f3-)
	first=$(printf '%s\n' "$text" | head -1)
	what="$page example $n: $(printf '%s' "$first" | cut -c1-40)"
	case $first in
	'#!'*)
		name=$(printf '%s\n' "$text" | sed -n '2s/^# \([a-z-]*\): .*/\1/p')
		if [ -n "$name" ]; then
			# Each page's own version runs the test's jobs, the later ones too.
			printf '%s\n' "$text" > "$ex/$name.new" && chmod +x "$ex/$name.new" &&
				mv "$ex/$name.new" "$ex/$name"
			case $first in
			*python*)
				if command -v python3 >/dev/null 2>&1; then
					ok "$what: ./$name parses" python3 -c \
						'import ast, sys; ast.parse(open(sys.argv[1]).read())' "$ex/$name"
				else
					skip "$what: python3 is not installed"
				fi ;;
			*) ok "$what: ./$name parses" sh -n "$ex/$name" ;;
			esac
		else
			skip "$what: a handler with no name"
		fi
		continue ;;
	'[Service]'*) skip "$what: a systemd unit"; continue ;;
	esac
	if printf '%s\n' "$text" | grep -Eq '^([0-9*/,-]+ ){5}'; then
		skip "$what: a crontab (tests/91-cron-examples.t)"; continue
	fi
	if printf '%s\n' "$text" | grep -Eq '^(rate|histogram_quantile)\('; then
		skip "$what: PromQL"; continue
	fi
	if printf '%s\n' "$text" | grep -Eq -e '--watch|tail -F|jq-status -f -q' ||
	    printf '%s\n' "$text" | grep -E 'jq-worker ' | grep -Eqv -e '--drain|--max-jobs'; then
		skip "$what: runs until stopped"; continue
	fi
	run_block "$page" "$n"
	is "$RC" 0 "$what runs"
	[ "$RC" = 0 ] || diag "$(cat "$T/block.sh")" "stderr: $(head -5 "$T/err")"
	ran=$((ran + 1))
done

# What some of them did.
is "$(sql "select count(*) from jq.all_jobs where queue = 'thumbs' and state = 'completed'
            and result->>'thumb' like 'photos/%.thumb.jpg'")" \
	"$(sql "select count(*) from jq.all_jobs where queue = 'thumbs' and state = 'completed'")" \
	"the make-thumb handler of the page made every completed thumbnail"
ok "and the thumbnails are there" test -f "$ex/photos/a.thumb.jpg"
is "$(sql "select count(*) from public.orders o join jq.all_jobs a on a.payload = '{\"order\": 42}'
            where o.id = 42")" 1 "the transaction example inserted the order and its job"
is "$(sql "select state from jq.all_jobs where id = 42")" completed "job 42 was retried and completed"
[ "$ran" -ge 30 ] && pass "$ran examples ran" || fail "only $ran examples ran"
done_testing
