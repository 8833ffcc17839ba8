#!/bin/sh
# jq-stats: every figure against a job history made by hand with SQL
# (times relative to now(), run times 1..100 s so the percentiles are
# exact), in the three formats; --watch off and on a terminal, across a
# server restart; the man page's example pipelines; errors.
. "${top_srcdir:-..}/tests/lib.sh"
pg_start

# A fresh schema: no queue at all, only the schema's line.
jq-enqueue -q x --delay 1s 1 > /dev/null && sql "truncate jobs" > /dev/null   # the schema, empty
exits 0 "jq-stats on an empty schema exits 0" jq-stats --json
is "$(jget -r .type < "$T/out" | tr '\n' ' ')" "database " "--json: only the schema's object when there is no queue"
ok "the table on an empty schema" jq-stats
like "$(cat "$T/out")" "^QUEUE +SCHEDULED +QUEUED +RUNNING +COMPLETED +FAILED +CANCELLED +OLDEST +WORKERS +SLOTS$" \
	"the table's header, even with no queue"

# Queue mail: 2 scheduled, 3 queued (ready 100, 50 and 10 s ago), 1
# running since long before.  Completed in the last 15 minutes: 100 jobs
# that ran 1..100 s, 5 of them in the last minute and 30 in the last 5;
# 20 more an hour ago that ran 1000 s.  Failed: 1, 4 and 20 in the three
# windows (25 in 15 minutes: a failure rate of 25 / 125 = 0.2), 5 more two
# hours ago.  Cancelled: 2 three minutes ago, 1 three hours ago; they
# count in no rate.  Queue thumbs: one job queued 5 s ago.
sql "insert into jobs (queue, state, run_at, payload) values
	('mail', 'scheduled', now() + interval '1 hour', '{}'),
	('mail', 'scheduled', now() + interval '2 hours', '{}'),
	('mail', 'queued', now() - interval '100 seconds', '{}'),
	('mail', 'queued', now() - interval '50 seconds', '{}'),
	('mail', 'queued', now() - interval '10 seconds', '{}'),
	('thumbs', 'queued', now() - interval '5 seconds', '{}')" \
    "insert into jobs (queue, state, run_at, payload, attempts, started_at, worker, lease_until)
	values ('mail', 'running', now() - interval '900 seconds', '{}', 1, now() - interval '800 seconds',
	        7, now() + interval '1 hour')" \
    "insert into history (id, queue, state, payload, attempts, created_at, started_at, finished_at)
	select nextval('job_id_seq'), 'mail', 'completed', '{}', 1, now() - ago - i * interval '1 s' - interval '1 min',
	       now() - ago - i * interval '1 s', now() - ago
	  from (select i, case when i <= 5 then interval '20 s' when i <= 30 then interval '3 min'
	                       else interval '10 min' end as ago
	          from generate_series(1, 100) i) g" \
    "insert into history (id, queue, state, payload, attempts, created_at, started_at, finished_at)
	select nextval('job_id_seq'), 'mail', 'completed', '{}', 1, now() - interval '2 h',
	       now() - interval '1 h' - interval '1000 s', now() - interval '1 h'
	  from generate_series(1, 20)" \
    "insert into history (id, queue, state, payload, attempts, error, created_at, started_at, finished_at)
	select nextval('job_id_seq'), 'mail', 'failed', '{}', 3, 'boom', now() - interval '4 h',
	       now() - ago - interval '5000 s', now() - ago
	  from (select case when i <= 1 then interval '20 s' when i <= 5 then interval '3 min'
	                    when i <= 25 then interval '10 min' else interval '2 h' end as ago
	          from generate_series(1, 30) i) g" \
    "insert into history (id, queue, state, payload, error, created_at, finished_at)
	select nextval('job_id_seq'), 'mail', 'cancelled', '{}', 'cancelled', now() - interval '4 h', now() - ago
	  from unnest(array[interval '3 min', interval '3 min', interval '3 h']) ago" >/dev/null ||
	bail_out "cannot insert the jobs"
# Workers: live ones heard from within their lease, whatever its length;
# the one silent for longer than its lease is gone, and so is queue gone,
# which only it served.  Queue idle has workers and no job.
sql "insert into workers (name, queues, concurrency, seen_at, lease) values
	('a:1', '{mail,thumbs}', 4, now(), '30 s'),
	('b:2', '{mail}', 2, now() - interval '20 s', '30 s'),
	('c:3', '{mail,gone}', 8, now() - interval '40 s', '30 s'),
	('d:4', '{idle}', 1, now(), '1 min'),
	('e:5', '{idle}', 3, now() - interval '50 s', '1 min')" >/dev/null
# Dead rows in history: ten rows of another queue, deleted.  Each psql
# session's statistics reach the collector when it ends.
sql "insert into history (id, queue, state, payload, finished_at)
	select nextval('job_id_seq'), 'junk', 'completed', '{}', now() from generate_series(1, 10)" >/dev/null
sql "delete from history where queue = 'junk'" >/dev/null

# ------------------------------------------------------------- --json
exits 0 "--json exits 0" jq-stats --json
cp "$T/out" "$T/all.json"
is "$(jget -r .queue < "$T/all.json" | tr '\n' ' ')" "idle mail thumbs null " \
	"one object per queue, by name, then the schema's; a dead worker's queue is not there"
is "$(jget -r .type < "$T/all.json" | tr '\n' ' ')" "queue queue queue database " "each says what it is"
is "$(jget .at < "$T/all.json" | grep -c -v '^"20[0-9-]*T[0-9:.]*[+-][0-9:]*"$')" 0 "every object has its time"
# The object of queue $q.
q() { grep -F "\"queue\":\"$1\"" "$T/all.json"; }
between() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x < hi) }'; }
is "$(q mail | jget .jobs)" '{"scheduled":2,"queued":3,"running":1,"completed":120,"failed":30,"cancelled":3}' \
	"jobs by state, live and kept in history"
ok "the oldest queued job has been ready for 100 s (a running job is not queued)" \
	between "$(q mail | jget .oldest_queued_seconds)" 100 130
is "$(q mail | jget .completed_per_minute)" '{"1m":5.0,"5m":6.0,"15m":6.667}' "completed per minute over 1, 5, 15 minutes"
is "$(q mail | jget .failed_per_minute)" '{"1m":1.0,"5m":1.0,"15m":1.667}' "failed per minute over 1, 5, 15 minutes"
is "$(q mail | jget .failure_rate)" 0.2 "failure rate: failed / (completed + failed) in 15 minutes"
is "$(q mail | jget .run_seconds)" '{"p50":50.0,"p95":95.0,"p99":99.0}' \
	"run time percentiles of the jobs completed in 15 minutes, none older"
is "$(q mail | jget .workers .slots)" '[2,6]' "live workers serving it and their slots"
is "$(q thumbs | jget .jobs.queued .failure_rate .run_seconds.p50 .workers .slots)" '[1,null,null,1,4]' \
	"a queue with no history: null where nothing can be told"
ok "its oldest queued job" between "$(q thumbs | jget .oldest_queued_seconds)" 5 30
is "$(q idle | jget .jobs.queued .oldest_queued_seconds .completed_per_minute.15m .workers .slots)" '[0,null,0,2,4]' \
	"a queue with only workers, the lease of each its own"
d() { grep -F '"type":"database"' "$T/all.json" | jget "$@"; }
is "$(d .workers .slots)" '[4,10]' "the schema: live workers once each, with their slots"
is "$(d .tables.history)" '{"live_tuples":153,"dead_tuples":10}' "history's live and dead rows"
is "$(d .tables.jobs.live_tuples)" 7 "jobs' live rows"
is "$(d .tables.jobs.dead_tuples .tables.history.dead_tuples)" \
	"[$(sql "select pg_stat_get_dead_tuples('jobs'::regclass) || ',' || pg_stat_get_dead_tuples('history'::regclass)")]" \
	"dead rows as pg_stat_user_tables counts them"

ok "-q twice: those queues, in that order" jq-stats --json -q thumbs -q mail -q thumbs
is "$(jget -r .queue < "$T/out" | tr '\n' ' ')" "thumbs mail null " "each once"
is "$(grep -F '"type":"database"' "$T/out" | jget .workers .slots)" '[2,6]' \
	"the schema's workers are those serving the queues shown"
ok "-q with an empty queue" jq-stats --json -q nothing
is "$(grep -F '"queue":"nothing"' "$T/out" | jget .jobs.queued .jobs.completed .oldest_queued_seconds .failure_rate .workers)" \
	'[0,0,null,null,0]' "it is shown, with nothing in it"

# -------------------------------------------------------------- table
exits 0 "the table exits 0" jq-stats
cp "$T/out" "$T/table"
like "$(cat "$T/table")" "^mail +2 +3 +1 +120 +30 +3 +1m(4[0-9]|5[0-9])s +2 +6$" "mail: counts, oldest queued, workers, slots"
like "$(cat "$T/table")" "^thumbs +0 +1 +0 +0 +0 +0 +[0-9.]+s +1 +4$" "thumbs"
like "$(cat "$T/table")" "^idle +0 +0 +0 +0 +0 +0 +- +2 +4$" "idle: - for no queued job"
like "$(cat "$T/table")" "^ +COMPLETED/MIN +FAILED/MIN +RUN TIME$" "the second table's groups"
like "$(cat "$T/table")" "^QUEUE +1m +5m +15m +1m +5m +15m +FAILURES +P50 +P95 +P99$" "and its columns"
like "$(cat "$T/table")" "^mail +5\\.0 +6\\.0 +6\\.7 +1\\.0 +1\\.0 +1\\.7 +20\\.0% +50\\.0s +1m35s +1m39s$" \
	"mail: rates, failure rate, run times"
like "$(cat "$T/table")" "^thumbs +0\\.0 +0\\.0 +0\\.0 +0\\.0 +0\\.0 +0\\.0 +- +- +- +-$" "thumbs: nothing to tell"
like "$(cat "$T/table")" "^live workers: 4, with 10 slots$" "the live workers"
like "$(cat "$T/table")" "^tables: jobs 7 live rows, [0-9]+ dead; history 153 live rows, 10 dead$" "the tables"
# Columns line up: every row of the first table as long as its header.
is "$(awk 'NR == 1 { w = length } NR > 1 && NF == 0 { exit } NR > 1 && length != w' "$T/table")" "" \
	"the first table is aligned"

# --------------------------------------------------------- --prometheus
exits 0 "--prometheus exits 0" jq-stats --prometheus
cp "$T/out" "$T/prom"
p() { grep -F -x -e "$1" "$T/prom" > /dev/null; }
ok "pgjq_jobs by queue and state" p 'pgjq_jobs{queue="mail",state="completed"} 120'
ok "queued" p 'pgjq_jobs{queue="mail",state="queued"} 3'
like "$(cat "$T/prom")" '^pgjq_oldest_queued_seconds\{queue="mail"\} 1[0-2][0-9](\.[0-9]+)?$' "the oldest queued job's age"
ok "0 when nothing is queued" p 'pgjq_oldest_queued_seconds{queue="idle"} 0'
ok "finished jobs in a window" p 'pgjq_finished_jobs{queue="mail",state="completed",window="5m"} 30'
ok "failed jobs in a window" p 'pgjq_finished_jobs{queue="mail",state="failed",window="15m"} 25'
ok "the failure ratio" p 'pgjq_failure_ratio{queue="mail"} 0.2'
is "$(grep -c '^pgjq_failure_ratio{queue="thumbs"}' "$T/prom")" 0 "no failure ratio where no job finished"
is "$(grep -c NaN "$T/prom")" 0 "no NaN anywhere"
ok "run time quantiles" p 'pgjq_run_seconds{queue="mail",quantile="0.5"} 50'
ok "p99" p 'pgjq_run_seconds{queue="mail",quantile="0.99"} 99'
ok "a summary" p '# TYPE pgjq_run_seconds summary'
ok "in seconds" p '# UNIT pgjq_run_seconds seconds'
ok "with its sum since the start (1..100 s and 20 of 1000 s)" p 'pgjq_run_seconds_sum{queue="mail"} 25050'
ok "and count" p 'pgjq_run_seconds_count{queue="mail"} 120'
ok "and no quantile where none completed lately" sh -c "! grep -q '^pgjq_run_seconds{queue=\"thumbs\"' '$T/prom'"
# Counters: history made by hand counts as finished, the jobs rows as enqueued.
ok "completed, a counter" p '# TYPE pgjq_jobs_completed_total counter'
ok "completed_total" p 'pgjq_jobs_completed_total{queue="mail"} 120'
ok "failed_total" p 'pgjq_jobs_failed_total{queue="mail"} 30'
ok "cancelled_total" p 'pgjq_jobs_cancelled_total{queue="mail"} 3'
ok "enqueued_total" p 'pgjq_jobs_enqueued_total{queue="mail"} 6'
ok "retried_total" p 'pgjq_jobs_retried_total{queue="mail"} 0'
ok "0 for a queue with no job yet" p 'pgjq_jobs_completed_total{queue="idle"} 0'
ok "a histogram of run times" p '# TYPE pgjq_job_run_seconds histogram'
ok "cumulative buckets" p 'pgjq_job_run_seconds_bucket{queue="mail",le="60"} 60'
ok "up to" p 'pgjq_job_run_seconds_bucket{queue="mail",le="900"} 100'
ok "and +Inf" p 'pgjq_job_run_seconds_bucket{queue="mail",le="+Inf"} 120'
ok "every bucket even with none in it" p 'pgjq_job_run_seconds_bucket{queue="idle",le="0.1"} 0'
ok "workers of a queue" p 'pgjq_queue_workers{queue="mail"} 2'
ok "their slots" p 'pgjq_queue_worker_slots{queue="mail"} 6'
ok "live workers" p 'pgjq_workers 4'
ok "dead rows" p 'pgjq_table_dead_tuples{table="history"} 10'

# The format's grammar, line by line; run again with a worker whose
# queue name needs escaping (only a worker's row can hold any text).
sql "insert into workers (name, queues, concurrency) values ('f:6', array[E'odd\"q\\\\x\\nz'], 5)" >/dev/null
ok "--prometheus with an odd queue name" jq-stats --prometheus
cp "$T/out" "$T/prom"
ok "its label value is escaped" p 'pgjq_queue_workers{queue="odd\"q\\x\nz"} 1'
lv='"([^"\\]|\\[\\"n])*"'
sample="^pgjq_[a-z_]+(\\{[a-z_]+=$lv(,[a-z_]+=$lv)*\\})? -?[0-9]+(\\.[0-9]+)?(e[+-]?[0-9]+)?\$"
is "$(grep -v -E -e '^# (HELP|TYPE|UNIT) pgjq_[a-z_]+ [^ ].*$' -e "$sample" "$T/prom")" "" \
	"every line is a HELP, TYPE or UNIT line or a well-formed sample"
is "$(awk '/^# TYPE / { if (seen[$3]++) print "two TYPE lines for " $3; typed[$3] = 1; next }
	/^#/ { next }
	{ name = $1; sub(/\{.*/, "", name)
	  if (!typed[name]) sub(/_(bucket|sum|count)$/, "", name)
	  if (!typed[name]) print "no TYPE before " name;
	  if (name != last && done[name]++) print name " is not one group"; last = name }' "$T/prom")" "" \
	"one TYPE line per metric, before its samples, each metric in one group"
if command -v promtool >/dev/null 2>&1; then
	ok "promtool check metrics finds nothing to say" promtool check metrics < "$T/prom"
	is "$(cat "$T/out" "$T/err")" "" "not even a lint"
	ok "promtool check rules takes examples/pgjq.rules.yml" promtool check rules "$top_srcdir/examples/pgjq.rules.yml"
	ok "and its alerts fire when they should, only then" promtool test rules "$top_srcdir/tests/pgjq.rules.test.yml"
else
	skip "promtool is not installed (Debian: prometheus)" 4
fi
is "$(grep -c '^# HELP ' "$T/prom")" "$(grep -c '^# TYPE ' "$T/prom")" "every metric has its HELP"
ok "the odd name in JSON" jq-stats --json
is "$(grep -F '"queue":"odd' "$T/out" | jget -r .queue)" "$(printf 'odd"q\\x\nz')" \
	"comes through as it is"
ok "and in the table" jq-stats
like "$(cat "$T/out")" '^odd"q\\x z +0 ' "made safe to print, on one line"
sql "delete from workers where name = 'f:6'" >/dev/null

# ---------------------------------------------- the man page's examples
# They are run as printed (cron's schedule taken off), so they stay true.
examples=$(mandoc -Tascii "$top_srcdir/man/jq-stats.1" 2>/dev/null | col -b |
	sed -n '/^EXAMPLES/,/^SEE ALSO/p' |
	sed -n 's/^[[:space:]]*\(\*[^ ]* \* \* \* \* \)\{0,1\}\(.*jq-stats --\(json\|prometheus\) .*\)$/\2/p')
if [ -n "$examples" ]; then
	alert=$(printf '%s\n' "$examples" | grep -F 'jq -r')
	check=$(printf '%s\n' "$examples" | grep -F 'jq -e')
	scrape=$(printf '%s\n' "$examples" | grep -F -- '--prometheus' | sed "s|/var/lib/prometheus/node-exporter|$T|")
	if command -v jq >/dev/null 2>&1; then
		ok "the cron alert example runs" sh -c "$alert"
		like "$(cat "$T/out")" "^mail: oldest queued 1[0-2][0-9](\\.[0-9]+)?s, failure rate 0\\.2$" \
			"and names the queue with too many failures, only that one"
		is "$(wc -l < "$T/out" | tr -d ' ')" 1 "one line, for cron to mail"
		ok "the script check example holds with 3 queued jobs" sh -c "$check"
	else
		skip "jq is not installed" 4
	fi
	ok "the textfile collector example runs" sh -c "$scrape"
	ok "and leaves the metrics in pgjq.prom" grep -q -E '^pgjq_workers [0-9]+$' "$T/pgjq.prom"
	ok "renamed into place" test ! -e "$T/pgjq.prom.tmp"
	ok "the SQL example's columns exist" sql "SELECT queue, queued, oldest_queued, run_p95 FROM jq.stats_queues()"
else
	skip "mandoc is not installed" 9
fi

# ------------------------------------------------------ --watch, no tty
run signal_after 4 INT jq-stats --watch 1 --json -q mail
is "$RC" 0 "--watch ends on SIGINT with status 0"
cp "$T/out" "$T/watch.json"
n=$(grep -c '"type":"database"' "$T/watch.json")
ok "it read more than once ($n times)" test "$n" -ge 3
is "$(grep -F '"type":"database"' "$T/watch.json" | jget .at | sort -u | wc -l | tr -d ' ')" "$n" "each reading its own time"
is "$(grep -F '"type":"queue"' "$T/watch.json" | jget -r .queue | sort -u)" "mail" "each reading the queues asked for"
run signal_after 2.5 TERM jq-stats --watch 1 -q mail
is "$RC" 0 "and on SIGTERM"
is "$(grep -c '^every 1s: [0-9-]* [0-9:]*$' "$T/out")" "$(grep -c '^live workers' "$T/out")" \
	"the table is printed in full each time, under a first line"
like "$(cat "$T/out")" "^mail +2 +3 +1 " "with the figures"
like "$(sed -n 2p "$T/out")" '^$' "a blank line after the first line"

# ----------------------------------------------------------- errors
exits 64 "a bad option exits 64" jq-stats --no-such-option
like "$(cat "$T/err")" "^usage: jq-stats " "and prints the usage"
exits 64 "--json and --prometheus together exit 64" jq-stats --json --prometheus
exits 64 "--prometheus and --watch together exit 64" jq-stats --prometheus --watch 5
exits 64 "--watch 0 exits 64" jq-stats --watch 0
exits 64 "--watch 10ms is too short" jq-stats --watch 10ms
exits 64 "--watch with a bad duration exits 64" jq-stats --watch 5x
exits 64 "a bad queue name exits 64" jq-stats -q 'a b'
exits 64 "an argument exits 64" jq-stats mail
exits 69 "an unreachable database exits 69" jq-stats -d "host=$T/nowhere connect_timeout=2"
like "$(cat "$T/err")" "^jq-stats: cannot connect to the database" "and says so"
is "$(cat "$T/out")" "" "printing nothing on stdout"
exits 69 "so does --watch" jq-stats -d "host=$T/nowhere connect_timeout=2" --watch 1

# ------------------------------------------------- --watch on a terminal
if command -v tmux >/dev/null 2>&1; then
	sock=pgjq-stats-$$
	tm() { tmux -L "$sock" -f /dev/null "$@"; }
	at_exit "tmux -L $sock kill-server"
	screen() { tm capture-pane -p -t w; }
	shows() { screen | grep -E -q -e "$1"; }
	tm new-session -d -s w -x 100 -y 30 "printf 'before\\n'; jq-stats --watch 1 -q mail -q thumbs; echo EXIT=\$?; sleep 600"
	wait_for "the screen" 10 shows "^mail +2 +3 "
	is "$(tm display -p -t w '#{alternate_on}')" 1 "--watch draws on the alternate screen"
	like "$(screen)" "^every 1s: [0-9-]+ [0-9:]+$" "under a first line that says how often and when"
	unlike "$(screen)" "before" "hiding what was there"
	sql "insert into jobs (queue, state, payload) values ('mail', 'queued', '{}')" >/dev/null
	wait_for "the new job" 10 shows "^mail +2 +4 "
	is "$(screen | grep -c '^mail ')" 2 "redrawn in place: the queue still has one line per table"
	is "$(screen | grep -c '^every ')" 1 "and one first line"
	tm resize-window -t w -x 50 -y 30
	wait_for "the redraw at 50 columns" 10 sh -c "! tmux -L $sock capture-pane -p -t w | awk 'length > 49' | grep -q ."
	is "$(screen | awk 'length > 49' | wc -l | tr -d ' ')" 0 "after a resize every line fits"
	like "$(screen)" "^mail +2 +4 " "and the figures are still there"
	tm send-keys -t w C-c
	wait_for "the end" 10 shows "^EXIT="
	like "$(screen)" "^EXIT=0$" "Ctrl-C ends it with status 0"
	is "$(tm display -p -t w '#{alternate_on} #{cursor_flag}')" "0 1" "the screen is restored, the cursor shown"
	like "$(screen)" "before" "what was there is back"
else
	skip "tmux is not installed" 12
fi

# ------------------------------------------------ a server restart
if [ -z "${JQ_TEST_DATABASE_URL:-}" ]; then
	jq-stats --watch 0.5 --json -q mail > "$T/w.json" 2> "$T/w.err" &
	wpid=$!
	at_exit "kill $wpid"
	wait_for "a first reading" 10 grep -q database "$T/w.json"
	ontty=no
	if command -v tmux >/dev/null 2>&1; then
		ontty=yes
		tm new-session -d -s r -x 100 -y 30 "jq-stats --watch 0.5 -q mail 2>/dev/null"
		rshows() { tm capture-pane -p -t r | grep -E -q -e "$1"; }
		wait_for "the screen" 10 rshows "^mail +2 +"
	fi
	pg_stop fast
	wait_for "the loss to be noticed" 10 grep -q "lost the database" "$T/w.err"
	if [ $ontty = yes ]; then
		wait_for "the screen to say so" 10 rshows "^every .*\\(database lost: reconnecting\\)$"
		like "$(tm capture-pane -p -t r)" "^every .*  \\(database lost: reconnecting\\)$" \
			"on a terminal, the first line says the database is lost"
		like "$(tm capture-pane -p -t r)" "^mail +2 +" "and the last figures stay"
	else
		skip "tmux is not installed" 2
	fi
	like "$(cat "$T/w.err")" "^jq-stats: lost the database \\(.*\\); reconnecting$" "--watch says it lost the database"
	before=$(grep -c database "$T/w.json")
	sleep 1
	is "$(grep -c database "$T/w.json")" "$before" "and prints nothing while it is away"
	pg_restart_server
	wait_for "the reconnection" 15 grep -q "reconnected" "$T/w.err"
	like "$(cat "$T/w.err")" "^jq-stats: reconnected to the database$" "it reconnects"
	wait_for "readings again" 10 sh -c "[ \$(grep -c database '$T/w.json') -gt $before ]"
	if [ $ontty = yes ]; then
		wait_for "the screen to recover" 10 sh -c "! tmux -L $sock capture-pane -p -t r | grep -q 'database lost'"
		unlike "$(tm capture-pane -p -t r)" "database lost" "and stops saying so once it is back"
	else
		skip "tmux is not installed"
	fi
	queued=$(sql "select count(*) from jobs where queue = 'mail' and state = 'queued'")
	is "$(tail -2 "$T/w.json" | grep -F '"type":"queue"' | jget .queue .jobs.queued)" "[\"mail\",$queued]" \
		"and reads the figures again"
	kill -TERM "$wpid"
	wait "$wpid"
	is "$?" 0 "then ends on SIGTERM with status 0"
else
	skip "a server restart needs a private PostgreSQL" 9
fi
# ------------------------------------ counters outlive what history keeps
sql "insert into history (id, queue, state, payload, attempts, created_at, started_at, finished_at)
	select nextval('job_id_seq'), 'ctr', 'completed', '{}', 1, now() - interval '3 d',
	       now() - interval '3 d', now() - interval '2 d' from generate_series(1, 7)" \
    "insert into history (id, queue, state, payload, attempts, error, created_at, finished_at)
	select nextval('job_id_seq'), 'ctr', 'failed', '{}', 3, 'boom', now() - interval '1 h',
	       now() - interval '1 h' from generate_series(1, 4)" >/dev/null
ctr() { jq-stats --prometheus -q ctr > "$T/ctr" && grep -F -x -e "$1" "$T/ctr" > /dev/null; }
ok "finished jobs are counted" ctr 'pgjq_jobs_completed_total{queue="ctr"} 7'
is "$(sql "select prune_history('1 day', '7 days', 1000)")" 7 "pruning removes the old completed ones"
ok "history keeps none" ctr 'pgjq_jobs{queue="ctr",state="completed"} 0'
ok "the counter stays" ctr 'pgjq_jobs_completed_total{queue="ctr"} 7'
is "$(sql "select count(*) - count(distinct (name, le)) from counts where queue = 'ctr'")" 0 \
	"pruning folded the counts: one row per name"
ok "jq-retry --failed" jq-retry -q ctr --failed
is "$(wc -l < "$T/out" | tr -d ' ')" 4 "retries the four"
ok "retries are counted" ctr 'pgjq_jobs_retried_total{queue="ctr"} 4'
ok "not as enqueued" ctr 'pgjq_jobs_enqueued_total{queue="ctr"} 0'
ok "their failures stay counted" ctr 'pgjq_jobs_failed_total{queue="ctr"} 4'
ok "while history keeps none" ctr 'pgjq_jobs{queue="ctr",state="failed"} 0'
ok "and they are queued again" ctr 'pgjq_jobs{queue="ctr",state="queued"} 4'
is "$(sql "select sum(n) from counts where name = 'live'")" "$(sql "select count(*) from jobs")" \
	"the counts' live jobs are the rows of jobs"
done_testing
