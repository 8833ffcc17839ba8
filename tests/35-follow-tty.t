#!/bin/sh
# jq-status --follow on a real terminal (tmux): progress bars redrawn in
# place, sized to the terminal and redrawn on resize, the screen restored
# at the end and on Ctrl-C.
. "${top_srcdir:-..}/tests/lib.sh"
command -v tmux >/dev/null 2>&1 || skip_all "tmux is not installed"
pg_start
s=$JQ_SCHEMA

sock=pgjq-test-$$
tm() { tmux -L "$sock" -f /dev/null "$@"; }
at_exit "tmux -L $sock kill-server"
screen() { tm capture-pane -p -t "$1"; }
shows() { screen "$1" | grep -E -q -e "$2"; }
start() { sql "update jobs set state = 'running', worker = 7, lease_until = now() + interval '1 hour', attempts = 1, started_at = now() where id = $1" >/dev/null; }
progress() {
	sql "update jobs set progress = $2, message = '$3' where id = $1" \
	    "select pg_notify('${s}_progress', '$1 $2 $3')" >/dev/null
}
finish() { sql "select finish_job($1, '$2', null, null, ${3:-null})" >/dev/null; }

a=$(jq-enqueue '{}'); b=$(jq-enqueue '{}')
tm new-session -d -s f -x 80 -y 20 "printf 'before\n'; jq-status -f $a $b; echo EXIT=\$?; sleep 600"
wait_for "the screen" 10 shows f "^2 jobs: 0 running, 0 finished"
is "$(tm display -p -t f '#{alternate_on}')" 1 "it draws on the alternate screen"
unlike "$(screen f)" "before" "which hides what was there"
like "$(screen f)" "^ *$a \\[\\.{20}\\]    - +- queued$" "one line per job, with an empty bar"

start "$a"
progress "$a" 40 "resizing photo"
wait_for "the progress" 10 shows f "40%"
like "$(screen f)" "^ *$a \\[#{8}\\.{12}\\]  40% resizing photo +[0-9.]+m?s running$" \
	"bar, percent, message, elapsed time and state"
like "$(screen f)" "^2 jobs: 1 running, 0 finished" "the first line counts the jobs"
is "$(screen f | awk 'length > 79' | wc -l | tr -d ' ')" 0 "every line fits in 80 columns"
is "$(screen f | grep -c "^ *[0-9]* \\[")" 2 "drawn in place: still one line per job"

tm resize-window -t f -x 50 -y 20
wait_for "the redraw at 50 columns" 10 shows f "^ *$a \\[#{4}\\.{6}\\]  40%"
is "$(screen f | awk 'length > 49' | wc -l | tr -d ' ')" 0 "after a resize, every line fits the new width"
is "$(screen f | grep -c "^ *[0-9]* \\[")" 2 "and nothing is left over from before"
tm resize-window -t f -x 100 -y 20
wait_for "the redraw at 100 columns" 10 shows f "^ *$a \\[#{8}\\.{12}\\]  40%"
is "$(screen f | grep -c "^ *[0-9]* \\[")" 2 "growing is clean too"

finish "$a" completed
finish "$b" failed "'disk full'"
wait_for "the end" 10 shows f "^EXIT="
like "$(screen f)" "^EXIT=1$" "it ends with --wait's exit status"
is "$(tm display -p -t f '#{alternate_on} #{cursor_flag}')" "0 1" "the alternate screen is left, the cursor shown"
like "$(screen f)" "before" "what was there is back"
like "$(screen f)" "^ *$a \\[#{20}\\] 100% +.* completed$" "the final lines are printed"
like "$(screen f)" "^ *$b \\[\\.{20}\\]    - disk full +- +failed$" "a failed job shows its error"

# A queue, like top(1), until Ctrl-C.
x=$(jq-enqueue -q top '{}'); start "$x"
# The shell records how jq-status ended (tmux's own pane_dead_signal is not
# always filled in); its trap keeps it alive through the Ctrl-C.
tm new-session -d -s q -x 80 -y 20 "trap : INT; jq-status -f -q top; echo EXIT=\$? > '$T/q.exit'" \; \
	set-option -t q remain-on-exit on
wait_for "the queue's screen" 10 shows q "^queue top: 1 running"
like "$(screen q)" "^ *$x \\[" "its running job"
y=$(jq-enqueue -q top '{}'); start "$y"
wait_for "a job that starts" 10 shows q "^queue top: 2 running"
tm send-keys -t q C-c
ended() { [ -s "$T/q.exit" ]; }
wait_for "the interrupt" 10 ended
is "$(cat "$T/q.exit")" "EXIT=130" "Ctrl-C ends it as SIGINT would"
# tmux may mark the pane dead before it has parsed the last bytes written.
restored() { [ "$(tm display -p -t q '#{alternate_on}')" = 0 ]; }
wait_for "the last output" 5 restored
is "$(tm display -p -t q '#{alternate_on}')" 0 "and the screen is restored"
# A short terminal, more jobs than lines: the running ones first, then the
# most recently finished, then the waiting ones (12 rows: the first line,
# 10 jobs, "... and 20 more").
for i in $(seq 1 30); do jq-enqueue -q short '{}'; done > "$T/short"
set -- $(cat "$T/short")
for i in $(seq 1 20); do eval "finish \${$i} completed"; done
for i in 21 22 23 24 25; do eval "start \${$i}"; done
eval "r1=\${21} r5=\${25} f20=\${20} f19=\${19} f16=\${16}"
tm new-session -d -s s -x 80 -y 12 "jq-status -f $(tr '\n' ' ' < "$T/short"); sleep 600"
wait_for "the short screen" 10 shows s "^30 jobs: 5 running, 20 finished"
screen s > "$T/s.screen"
is "$(awk 'NR >= 2 && NR <= 6 { print $1 }' "$T/s.screen" | tr '\n' ' ')" "$(seq "$r1" "$r5" | tr '\n' ' ')" \
	"the five running jobs come first"
is "$(awk 'NR >= 7 && NR <= 11 { print $1 }' "$T/s.screen" | tr '\n' ' ')" "$f20 $f19 $(($f19 - 1)) $(($f19 - 2)) $f16 " \
	"then the most recently finished"
like "$(cat "$T/s.screen")" "^\\.\\.\\. and 20 more$" "and a count of the rest"
done_testing
