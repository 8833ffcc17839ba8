#!/bin/sh
# Through a real PgBouncer, in session and in transaction mode: tools on
# two schemas sharing server connections misplace nothing, a worker drains
# its queue, waits and follows end when the job does (polling where
# notifications cannot arrive, and saying so once), a cancel reaches the
# running handler, and a restart of the pooler loses and repeats no job.
. "${top_srcdir:-..}/tests/lib.sh"
need_private_pg
need_pgbouncer
pg_start
direct=$JQ_DATABASE_URL

# Checks go straight to the server: psql's search_path option is a startup
# parameter PgBouncer refuses.
dsql() { JQ_DATABASE_URL=$direct sql "$@"; }
state() { dsql "select state from \"$1\".all_jobs where id = $2"; }
deaf_msg='notifications do not arrive on this connection \(a pooler in transaction mode\?\)'

enqueue_loop() {
	_k=$1 _m=$2 _i=0 _st=0
	while [ $_i -lt 40 ]; do
		JQ_SCHEMA=a_$_m jq-enqueue "{\"s\":\"a\",\"k\":$_k,\"i\":$_i}" > /dev/null || _st=1
		JQ_SCHEMA=b_$_m jq-enqueue "{\"s\":\"b\",\"k\":$_k,\"i\":$_i}" > /dev/null || _st=1
		_i=$((_i + 1))
	done
	echo $_st > "$T/loop.$_k"
}

for mode in session transaction; do
	if [ $mode = session ]; then
		pgbouncer_start session || bail_out "cannot start pgbouncer"
	else
		pgbouncer_restart transaction || bail_out "cannot restart pgbouncer"
	fi
	JQ_DATABASE_URL=$PGB_URL
	export JQ_DATABASE_URL

	# Two schemas, three producers at once: each statement may run on
	# whichever server connection the last client left.
	for k in 1 2 3; do
		enqueue_loop $k $mode &
	done
	wait
	is "$(cat "$T/loop.1" "$T/loop.2" "$T/loop.3" | tr -d '\n')" 000 "$mode: every jq-enqueue exits 0"
	is "$(dsql "select count(*) filter (where payload->>'s' = 'a'), count(*) from a_$mode.all_jobs")" \
		"120|120" "$mode: schema a holds its 120 jobs and no other"
	is "$(dsql "select count(*) filter (where payload->>'s' = 'b'), count(*) from b_$mode.all_jobs")" \
		"120|120" "$mode: schema b holds its 120 jobs and no other"
	is "$(dsql "select count(distinct (payload->>'k', payload->>'i')) from a_$mode.all_jobs")" 120 \
		"$mode: each payload once"

	# A worker drains one of them through the pooler.
	exits 0 "$mode: jq-worker --drain through the pooler" \
		timeout 60 env JQ_SCHEMA=a_$mode jq-worker --drain -c 4 --quiet -- true
	is "$(dsql "select count(*) from a_$mode.all_jobs where state = 'completed'")" 120 \
		"$mode: it ran every job of its schema"
	is "$(dsql "select count(*) from b_$mode.all_jobs where state <> 'queued'")" 0 \
		"$mode: and none of the other's"

	# jq-status -w ends when the job does, not minutes later.
	JQ_SCHEMA=w_$mode
	export JQ_SCHEMA
	j=$(jq-enqueue '{}')
	timeout 30 jq-status -w "$j" > "$T/wait.out" 2> "$T/wait.err" &
	wpid=$!
	sleep 2
	ok "$mode: jq-status -w waits while the job is queued" kill -0 $wpid
	dsql "select \"w_$mode\".finish_job($j, 'completed', null, null, null)" > /dev/null
	t0=$(date +%s)
	wait $wpid
	is "$?" 0 "$mode: jq-status -w exits 0 once the job completed"
	ok "$mode: within a few seconds" test $(($(date +%s) - t0)) -le 4
	if [ $mode = transaction ]; then
		like "$(cat "$T/wait.err")" "^jq-status: $deaf_msg: polling every 1s$" \
			"$mode: it said it polls"
		is "$(grep -c 'notifications do not arrive' "$T/wait.err")" 1 "$mode: once"
	else
		is "$(cat "$T/wait.err")" "" "$mode: notifications arrive: nothing said"
	fi

	c=$(jq-enqueue '{}')
	timeout 30 jq-status -w "$c" > /dev/null 2>&1 &
	wpid=$!
	sleep 1.5
	exits 0 "$mode: jq-cancel of a queued job" jq-cancel "$c"
	wait $wpid
	is "$?" 1 "$mode: jq-status -w on it exits 1 promptly"

	# --follow: JSON events off a terminal, to the end.
	f=$(jq-enqueue '{}')
	timeout 30 jq-status --follow "$f" > "$T/follow.out" 2> "$T/follow.err" &
	fpid=$!
	sleep 1.5
	dsql "select \"w_$mode\".finish_job($f, 'completed', null, null, null)" > /dev/null
	wait $fpid
	is "$?" 0 "$mode: jq-status --follow ends with the job"
	like "$(jget -r .event .state < "$T/follow.out")" "completed" "$mode: and shows it completed"

	# A running job cancelled through the pooler: its worker stops the handler.
	r=$(jq-enqueue '{}')
	jq-worker --lease 3s --poll 500ms -- sleep 60 > /dev/null 2> "$T/worker.err" &
	kpid=$!
	at_exit "kill $kpid"
	is_running() { [ "$(state "w_$mode" "$r")" = running ]; }
	wait_for "the job to run" 20 is_running
	is "$(state "w_$mode" "$r")" running "$mode: the worker runs the job"
	exits 0 "$mode: jq-cancel of the running job" jq-cancel "$r"
	is_cancelled() { [ "$(state "w_$mode" "$r")" = cancelled ]; }
	wait_for "the job to be cancelled" 15 is_cancelled
	is "$(state "w_$mode" "$r")" cancelled "$mode: the worker noticed and the job is cancelled"
	kill -TERM $kpid
	wait $kpid
	is "$?" 0 "$mode: the worker stops cleanly"
	if [ $mode = transaction ]; then
		is "$(grep -E -c "^jq-worker: $deaf_msg: polling every 500ms$" "$T/worker.err")" 1 \
			"$mode: the worker said once that it polls"
	else
		is "$(grep -c 'notifications do not arrive' "$T/worker.err")" 0 \
			"$mode: the worker is woken by notifications: nothing said"
	fi

	exits 0 "$mode: jq-stats through the pooler" jq-stats
	like "$(cat "$T/out")" "default" "$mode: it shows the queue"
	exits 0 "$mode: jq-stats --json" env JQ_SCHEMA=a_$mode jq-stats --json
	like "$(jget -r .jobs.completed < "$T/out")" "^120$" "$mode: with the counts of its own schema"

	# The pooler restarts under a running worker: nothing lost, nothing twice.
	JQ_SCHEMA=r_$mode
	export JQ_SCHEMA
	: > "$T/ran.$mode"
	seq 1 40 | sed 's/.*/{"n":&}/' | jq-enqueue > /dev/null
	jq-worker -c 2 --poll 500ms -- sh -c "echo \$JQ_JOB_ID >> '$T/ran.$mode'; sleep 0.1" \
		> /dev/null 2> "$T/rworker.err" &
	rpid=$!
	at_exit "kill $rpid"
	# Restarted once the worker is at work, not while it first connects.
	some_ran() { [ "$(wc -l < "$T/ran.$mode")" -ge 5 ]; }
	wait_for "some jobs to run" 20 some_ran
	pgbouncer_restart || bail_out "cannot restart pgbouncer"
	done40() { [ "$(dsql "select count(*) from r_$mode.all_jobs where state = 'completed'")" = 40 ]; }
	wait_for "the 40 jobs to complete" 60 done40
	is "$(dsql "select count(*) from r_$mode.all_jobs where state = 'completed'")" 40 \
		"$mode: after a pooler restart every job completes"
	is "$(sort "$T/ran.$mode" | uniq -d)" "" "$mode: none ran twice"
	is "$(sort -u "$T/ran.$mode" | wc -l | tr -d ' ')" 40 "$mode: each ran"
	like "$(cat "$T/rworker.err")" "lost the database" "$mode: the worker saw the pooler go"
	n=$(jq-enqueue '{"after":"restart"}')
	done_n() { [ "$(state "r_$mode" "$n")" = completed ]; }
	wait_for "the job after the restart" 20 done_n
	is "$(state "r_$mode" "$n")" completed "$mode: the worker carries on"
	kill -TERM $rpid
	wait $rpid
	is "$?" 0 "$mode: and stops cleanly"
	JQ_SCHEMA=jq
done

done_testing
