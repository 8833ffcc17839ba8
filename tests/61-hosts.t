#!/bin/sh
# Scale out: workers on three "hosts" (network namespaces, each joined to
# the root namespace by a veth pair) share one PostgreSQL over TCP.  Every
# one of N jobs completes exactly once, but for one thing: host 1's link is
# cut mid-run while its worker holds running jobs.  The other hosts take
# those jobs over once their leases run out (not before); only those jobs
# may run twice (their handlers on the cut host went on, and it cannot know
# it was cut).  When the link is back, the cut host's worker finds its
# leases gone: its late outcomes are dropped ("lease lost"), changing
# nothing, and it goes on as a worker.  A call of its that committed just
# as the link went, its answer lost, is sent again: those outcomes are
# told as recorded, not as lost (sql/009-resend.sql).
. "${top_srcdir:-..}/tests/lib.sh"
need_private_pg
[ "$(id -u)" = 0 ] || skip_all "making network namespaces needs root"
command -v ip > /dev/null 2>&1 || skip_all "no ip(8)"

N=3000        # jobs
C=4           # each worker's concurrency
NS=pgjq61-$$  # namespaces $NS-1 .. $NS-3
L=pj$$h       # links ${L}1r (root side) and ${L}1n (host side); at most 15 bytes
workers=      # "pid pid pid", for the clean-up

# Everything made here goes at exit, whatever happened: workers first (a
# process still in a namespace keeps it alive), then namespaces and links.
net_cleanup() {
	for p in $workers; do kill -9 "$p"; done
	for n in 1 2 3; do
		ip netns del "$NS-$n"
		ip link del "${L}${n}r"
	done
}
at_exit net_cleanup

ip netns add "$NS-1" 2> "$T/netns.err" ||
	skip_all "cannot make a network namespace: $(head -1 "$T/netns.err")"

# Three /30 subnets of 10.77.0.0/16 of our own, chosen by our pid, so that
# parallel runs do not meet (and skipping any already in use here).
addr() { # HOST SIDE: SIDE 1 is the root side, 2 the host's
	_s=$((base + $1 - 1))
	echo "10.77.$((_s / 64)).$((_s % 64 * 4 + $2))"
}
base=$(($$ % 5461 * 3))
tries=0
while ip -o -4 addr show | grep -qE "inet ($(addr 1 1)|$(addr 2 1)|$(addr 3 1))/"; do
	base=$(((base + 3) % 16383))
	tries=$((tries + 1))
	[ $tries -lt 50 ] || skip_all "no free subnet in 10.77.0.0/16"
done
made=0
for n in 1 2 3; do
	{ [ $n = 1 ] || ip netns add "$NS-$n"; } &&
	ip link add "${L}${n}r" type veth peer name "${L}${n}n" &&
	ip link set "${L}${n}n" netns "$NS-$n" &&
	ip addr add "$(addr $n 1)/30" dev "${L}${n}r" &&
	ip link set "${L}${n}r" up &&
	ip -n "$NS-$n" addr add "$(addr $n 2)/30" dev "${L}${n}n" &&
	ip -n "$NS-$n" link set "${L}${n}n" up &&
	ip -n "$NS-$n" link set lo up &&
	made=$((made + 1))
done 2> "$T/net.err"
[ $made = 3 ] || skip_all "cannot make the hosts' links: $(head -1 "$T/net.err")"

# The server listens on the root side of each link, on a port of our own
# (one run's addresses are its own, but something may hold *:5432).
pg_start
P=$((20000 + $$ % 20000))
sql "alter system set listen_addresses = '$(addr 1 1),$(addr 2 1),$(addr 3 1)'" \
	"alter system set port = $P" > /dev/null
pg_stop || bail_out "cannot stop the server to make it listen on TCP"
JQ_DATABASE_URL="postgresql:///pgjq?host=$PG_DIR/sock&port=$P&user=pgjq"
PGPORT=$P
export JQ_DATABASE_URL PGPORT
pg_restart_server || bail_out "cannot restart the server on port $P: $(tail -5 "$PG_LOG")"
pg_hba "host all all 10.77.0.0/16 trust" || bail_out "cannot change pg_hba.conf"
for n in 1 2 3; do
	ok "host $n reaches the server over its link" \
		ip netns exec "$NS-$n" psql -X -At -h "$(addr $n 1)" -p $P -U pgjq -d pgjq -c 'select 1'
done

# The handler notes job, host and attempt.  Host 1's is slow, so that it
# holds jobs whose handlers run when its link goes; the others are quick.
cat > "$T/handler" << 'EOF'
#!/bin/sh
cat > /dev/null
[ -n "$NAP" ] && sleep "$NAP"
echo "$JQ_JOB_ID $HOST_TAG $JQ_ATTEMPT" >> "$RECORD"
EOF
chmod +x "$T/handler"
RECORD=$T/ran
: > "$RECORD"
export RECORD

count() { sql "select count(*) from all_jobs where $1"; }
has() { test "$(count "$1")" -ge "$2"; }
ran_on() { awk -v h="$1" '$2 == h' "$RECORD" | wc -l | tr -d ' '; }
ran_enough() { test "$(wc -l < "$RECORD")" -ge "$1" && test "$(ran_on h1)" -ge "$2"; }
sqlq() { sql "$1" > /dev/null; }
cut_idle() { # the cut host's backend has done with whatever reached it
	test "$(sql "select count(*) from pg_stat_activity
	             where client_addr = '$(addr 1 2)' and state <> 'idle'")" = 0
}

awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) printf "{\"i\":%d}\n", i }' |
	jq-enqueue -q hosts > "$T/ids"
is "$(wc -l < "$T/ids" | tr -d ' ')" $N "$N jobs enqueued"

for n in 1 2 3; do
	nap=0
	[ $n = 1 ] && nap=0.2
	ip netns exec "$NS-$n" env HOST_TAG=h$n NAP=$nap \
		JQ_DATABASE_URL="host=$(addr $n 1) port=$P user=pgjq dbname=pgjq" \
		jq-worker --json -q hosts -c $C --lease 3s -- "$T/handler" 2> "$T/h$n.err" &
	eval "w$n=\$!"
	workers="$workers $!"
done
has_workers() { test "$(sql "select count(*) from workers where 'hosts' = any (queues)")" -ge 3; }
wait_for "three workers to register" 20 has_workers
is "$(sql "select count(distinct client_addr) from pg_stat_activity
           where application_name = 'jq-worker' and client_addr <<= '10.77.0.0/16'")" 3 \
	"the workers talk to the server from three hosts"
cw=$(sql "select id from workers where name like '%:$w1'")
[ -n "$cw" ] || bail_out "host 1's worker (pid $w1) is not in the table workers"

# The cut: once a third of the jobs ran, and host 1 ran some of them.
wait_for "a third of the jobs to run" 40 ran_enough $((N / 3)) 8
ok "every host ran jobs before the cut" \
	test "$(ran_on h1)" -gt 0 -a "$(ran_on h2)" -gt 0 -a "$(ran_on h3)" -gt 0
# The cut comes while host 1's turn is on the server, outcomes in it: a
# lock on history holds that turn (and everyone's) up; the link goes; the
# lock goes and the turn commits, its answer lost.  Host 1 cannot know
# it committed, and must send its outcomes again once it is back.
mkfifo "$T/locker"
sql < "$T/locker" > "$T/locker.out" 2>&1 &
locker=$!
exec 8> "$T/locker"
echo "begin; lock table history in share mode; select 'locked';" >&8
wait_for "the lock on history" 10 grep -q locked "$T/locker.out"
h1_turn_waits() {
	test "$(sql "select count(*) from pg_stat_activity where client_addr = '$(addr 1 2)'
	             and wait_event_type = 'Lock' and query like '%FROM \"jq\".turn(%'")" = 1
}
wait_for "host 1's turn to wait on the lock" 10 h1_turn_waits
ok "host 1's turn waits on the server" h1_turn_waits
sqlq "create table public.before_cut as select id from history where worker = $cw"
ip link set "${L}1r" down
cut_at=$(sql "select now()")
echo "commit;" >&8
exec 8>&-
wait "$locker"
# Host 1's jobs at once: a job claimed ahead in an earlier turn may have
# its lease run out (and be taken over) before the checks below are done
# on a loaded machine, and host 1 may still start it.
sqlq "create table public.held_early as
      select id from jobs where worker = $cw and state in ('running', 'claimed')"
done_at_cut=$(count "queue = 'hosts' and state = 'completed'")
# What host 1 holds now is frozen: it can neither finish nor renew.
wait_for "the cut host's last statement to end" 10 cut_idle
sqlq "create table public.at_cut as
      select id from history where worker = $cw and id not in (select id from before_cut)"
at_cut=$(sql "select count(*) from at_cut")
ok "host 1's turn committed after the cut, with $at_cut outcomes" test "$at_cut" -gt 0
sqlq "create table public.held as
      select id, lease_until from jobs where state = 'running' and worker = $cw"
held=$(sql "select count(*) from held")
sql "select id from held" | sort > "$T/held"
# Claimed ahead, not yet started: host 1 may start them while its lease
# holds, not knowing it is cut off; they come back when it runs out.
sql "select id from jobs where state = 'claimed' and worker = $cw
     union select id from held union select id from held_early" | sort > "$T/held_all"
sql "select id from at_cut" | sort > "$T/at_cut.ids"
diag "cut after $done_at_cut jobs completed; host 1 held $held: $(tr '\n' ' ' < "$T/held")"
ok "the cut host holds running jobs ($held)" test "$held" -gt 0

wait_for "the held jobs to complete elsewhere" 30 has "state = 'completed' and id in (select id from held)" "$held"
is "$(count "state = 'completed' and attempts = 2 and worker <> $cw
             and error = 'worker lost: its lease expired' and id in (select id from held)")" "$held" \
	"the other hosts took every held job over, in a second attempt"
is "$(sql "select count(*) from history h join held using (id) where h.started_at < held.lease_until")" 0 \
	"none was taken over before its lease ran out"
took=$(sql "select round(extract(epoch from min(started_at) - '$cut_at')::numeric, 1) || '-' ||
	           round(extract(epoch from max(started_at) - '$cut_at')::numeric, 1)
            from history where id in (select id from held)")
diag "the held jobs started again ${took}s after the cut (lease 3s)"
is "$(awk '$2 != "h1" && $3 == 2 { print $1 }' "$RECORD" | sort -u | comm -12 - "$T/held" | wc -l | tr -d ' ')" "$held" \
	"their second runs were on hosts 2 and 3"
ok "host 1's worker is still there, cut off" kill -0 "$w1"

wait_for "every job to complete" 60 has "queue = 'hosts' and state = 'completed'" $N
is "$(count "queue = 'hosts' and state = 'completed'")" $N "all $N jobs are completed"
is "$(count "queue = 'hosts' and state <> 'completed'")" 0 "none is anything else"
is "$(count "queue = 'hosts' and attempts <> 1 and id not in (select id from held)")" 0 \
	"every job but the held ones completed at its first attempt"
awk '{ print $1 }' "$RECORD" | sort -u > "$T/ran.ids"
is "$(wc -l < "$T/ran.ids" | tr -d ' ')" $N "every job ran"
awk '{ print $1 }' "$RECORD" | sort | uniq -d > "$T/twice"
twice=$(wc -l < "$T/twice" | tr -d ' ')
diag "$(wc -l < "$RECORD" | tr -d ' ') runs; $twice jobs ran twice: $(tr '\n' ' ' < "$T/twice")"
is "$(comm -23 "$T/twice" "$T/held_all" | tr '\n' ' ')" "" \
	"only jobs host 1 held at the cut (running or claimed) ran twice"
is "$(awk '{ print $1 }' "$RECORD" | sort | uniq -c | awk '$1 > 2' | wc -l | tr -d ' ')" 0 \
	"and none more than twice"
# The held jobs whose handlers ran on host 1: their outcomes wait there.
awk '$2 == "h1" { print $1 }' "$RECORD" | sort | comm -12 - "$T/twice" > "$T/late"
late=$(wc -l < "$T/late" | tr -d ' ')

# The link comes back.  Host 1's worker learns that its leases are gone
# when it records its late outcomes: dropped, with a "lease lost" event.
# The worker waits its lease (but at least 10 s) for the answer, then
# drops the connection; it keeps the turn's outcomes.
gave_up() { test "$(grep -c 'lost the database (no answer within the lease)' "$T/h1.err")" -ge "$1"; }
wait_for "host 1's worker to give up on its turn" 30 gave_up 1
ok "host 1's worker gives up on the turn it got no answer to" gave_up 1
ip link set "${L}1r" up
up_at=$(sql "select now()")
# (A job claimed ahead and never started is lost too, "claimed, not started":
# it never ran here, and is not among them.)
lost() {
	grep '^{' "$T/h1.err" | grep -v '"detail":"claimed, not started' |
		jget -r .event .id | awk '$1 == "lease" && $2 == "lost" { print $3 }' | sort -u
}
lost_all() { test "$(lost | wc -l)" -ge "$late"; }
wait_for "host 1's worker to record its late outcomes" 60 lost_all
diag "host 1's worker dropped its late outcomes within $(sql "select round(extract(epoch from now() - '$up_at')::numeric, 1)")s of the link coming back"
is "$(lost | tr '\n' ' ')" "$(tr '\n' ' ' < "$T/late")" \
	"host 1's worker drops the outcomes of the $late taken-over jobs it ran: lease lost"
told() { grep '^{' "$T/h1.err" | jget -r .event .id | awk '$1 == "completed" { print $2 }' | sort; }
is "$(told | grep -Fx -f "$T/at_cut.ids" | tr '\n' ' ')" "$(tr '\n' ' ' < "$T/at_cut.ids")" \
	"it sends the $at_cut outcomes of its cut-off turn again, and tells them as completed, once each"
is "$(count "id in (select id from held) and (worker = $cw or state <> 'completed' or attempts <> 2)")" 0 \
	"and those outcomes changed nothing"
is "$(count "queue = 'hosts' and state = 'completed'")" $N "all $N jobs are still completed, once each"
renewed() { test "$(sql "select seen_at > '$up_at' from workers where id = $cw")" = t; }
wait_for "host 1's worker to renew again" 20 renewed
ok "host 1's worker is back in touch with the database" renewed

# A second cut, longer than the worker's wait for a statement (its lease,
# but at least 10 s): it drops the silent connection and says so.  Two
# stop signals then stop it at once, though the database is out of reach:
# its jobs wait for their leases, and are taken over.
awk 'BEGIN { for (i = 1; i <= 40; i++) printf "{\"second\":%d}\n", i }' | jq-enqueue -q hosts > "$T/ids2"
holds() { test "$(count "state = 'running' and worker = $cw")" -gt 0; }
wait_for "host 1 to hold jobs again" 20 holds
ip link set "${L}1r" down
wait_for "host 1's worker to give up on the silent connection" 30 gave_up 2
ok "host 1's worker drops a connection that does not answer" gave_up 2
kill -TERM "$w1"
sleep 0.2
kill -TERM "$w1"
gone() { ! kill -0 "$w1" 2> /dev/null; }
wait_for "host 1's worker to stop, cut off" 10 gone
ok "two stop signals stop a cut-off worker at once" gone
wait "$w1"
is "$?" 0 "and it exits 0"
workers="$w2 $w3"
wait_for "every job to complete" 60 has "queue = 'hosts' and state = 'completed'" $((N + 40))
is "$(count "queue = 'hosts' and state <> 'completed'")" 0 "the other hosts complete every job of the second batch"

for n in 2 3; do
	eval "p=\$w$n"
	kill -TERM "$p"
	wait "$p"
	is "$?" 0 "host $n's worker stops cleanly"
done
workers=
done_testing
