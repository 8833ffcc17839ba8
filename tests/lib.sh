# tests/lib.sh: the harness for pgjq's integration tests.
#
# Every tests/NN-name.t is a POSIX sh script (dash is enough) that starts
#
#	. "${top_srcdir:-..}/tests/lib.sh"
#
# and speaks TAP on stdout, for automake's tap-driver.sh.  Diagnostics are
# "# " lines on stdout, so they land in the test's .log file.
#
# On entry: top_srcdir and top_builddir (absolute; set by the Makefile's
# AM_TESTS_ENVIRONMENT, else guessed from the script's own place), PATH with
# "$top_builddir/bin" first.  Sourcing this file:
#   - makes $T, a private temporary directory, removed at exit
#     (kept when PGJQ_KEEP_TMP=1);
#   - points the script's stdin at /dev/null, so a tool that reads stdin
#     never waits on a terminal or on make; `cmd < file` still works;
#   - clears the PG* and JQ_* variables that would send a tool to some
#     other database than the test's own.
#
# TAP (numbering is automatic; a failed assertion never stops the script):
#   plan N                  announce N tests up front (or end with done_testing)
#   done_testing            print the plan 1..N; call it last
#   ok DESC CMD [ARG...]    pass iff CMD exits 0
#   fails DESC CMD...       pass iff CMD exits 1..125 (not 126/127, "cannot
#                           run", nor 128+, killed by a signal: a crash is not
#                           the failure a test expects)
#   exits N DESC CMD...     pass iff CMD exits N
#   is GOT EXPECTED DESC    string equality
#   isnt GOT UNEXPECTED DESC
#   like GOT ERE DESC       pass iff some line of GOT matches ERE (grep -E)
#   unlike GOT ERE DESC     pass iff no line of GOT matches ERE
#   pass DESC, fail DESC    an unconditional result
#   skip REASON [N]         N (default 1) "ok N # skip REASON" lines
#   skip_all REASON         skip the whole script ("1..0 # SKIP REASON"), exit 0
#   bail_out MSG            "Bail out! MSG", exit 255
#   diag MSG...             each MSG on "# " lines of its own
# ok, fails and exits run CMD through run, so $T/out, $T/err and $RC hold
# its output and status afterwards.
#
# Commands:
#   run CMD...              CMD's stdout to $T/out, stderr to $T/err, exit
#                           status to $RC (also returned).  stdin is the
#                           script's (/dev/null) unless redirected:
#                           `run cmd < file` and `exits 0 DESC cmd < file`
#                           feed the file to cmd.
#   wait_for DESC SECS CMD...  run CMD every 0.1 s until it exits 0 (returns 0)
#                           or SECS pass (diag, returns 1).  Not an assertion.
#   at_exit CMD             run the shell command CMD at exit, before the
#                           server stops (e.g. at_exit "kill $pid").
#   jget [-r] PATH...       fields of JSON lines on stdin (tests/jget.c), so
#                           tests need no jq(1): `jget .id .state < out`
#                           prints [7,"queued"] per line, -r raw and spaced.
#
# PostgreSQL:
#   pg_start                a private, throwaway server for this script, then
#                           exports JQ_DATABASE_URL, JQ_SCHEMA=jq and PGHOST
#                           PGPORT PGUSER PGDATABASE (plain `psql` works).
#                           Sets PG_DIR (cluster directory: data/, sock/) and
#                           PG_LOG (the server's log file).
#                           With JQ_TEST_DATABASE_URL set, starts nothing: uses
#                           that database and a schema of the script's own,
#                           JQ_SCHEMA=t_<script>_<pid>, dropped (with every
#                           schema whose name starts with it) at exit.
#   need_private_pg         skip_all unless pg_start will start a private server;
#                           call it first in tests that stop or crash the server.
#   pg_stop [MODE]          pg_ctl stop -m MODE (smart, fast (default), immediate)
#   pg_restart_server       start the stopped server again: same data, socket and
#                           port; returns once it accepts connections.
#   pg_kill9                SIGKILL the postmaster and all its processes (a
#                           crash); pg_restart_server then runs crash recovery.
#   sql SQL...              psql -X -At -q -v ON_ERROR_STOP=1, one -c per
#                           argument, search_path "$JQ_SCHEMA", public.  Rows on
#                           stdout; exit status 1 on an SQL error, 2 when it
#                           cannot connect.
#   sql_file FILE [PSQL-ARG...]  likewise with -f FILE (status 3 on SQL error).
#   pg_hba RECORD...        put the pg_hba.conf records before the cluster's
#                           own (which trust every local connection) and
#                           reload, e.g. pg_hba "local all ann scram-sha-256"
#                           to make ann give her password.  Returns once a
#                           new connection obeys them.  Private server only.
#   pg_standby              a streaming standby of the private server, made
#                           with pg_basebackup -R in $PG_DIR/standby (data/,
#                           sock/, port 5433, log postgres.log), started;
#                           returns once it accepts connections.  Sets
#                           STANDBY_DIR.  Stopped at exit.  Private server only.
#   pg_promote_standby      pg_ctl promote the standby; returns once it
#                           accepts writes.
#
# PgBouncer (private server only):
#   pgbouncer_start MODE    PgBouncer with pool_mode MODE (session or
#                           transaction) in front of the private server, on
#                           a unix socket of its own (port 6432), a pool of
#                           a few server connections so that clients share
#                           them; skip_all if pgbouncer is not installed.
#                           Sets PGB_URL, a JQ_DATABASE_URL through it, and
#                           PGB_LOG.  Stopped at exit.
#   pgbouncer_stop          stops it at once (SIGINT: every client cut).
#   pgbouncer_restart [MODE]  starts it again, same socket, MODE or the last.
#
# Internal names start with _t_, _pg_, _pgb_ or _lib_; tests must not set an EXIT
# trap of their own (use at_exit).  Assertions may run in subshells and
# pipelines (the counters live in files under $T) but not in parallel.

# ---------------------------------------------------------------- set up

# Where are we?  The Makefile tells us; by hand, guess from the script path
# ($0 is the .t file, one level below the top).
if [ -z "${top_srcdir:-}" ]; then
	top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
fi
top_srcdir=$(cd "$top_srcdir" && pwd)
if [ -z "${top_builddir:-}" ]; then
	if [ ! -f "$top_srcdir/Makefile" ] && [ -f "$top_srcdir/_build/Makefile" ]; then
		top_builddir=$top_srcdir/_build     # tests/run's build directory
	else
		top_builddir=$top_srcdir
	fi
fi
mkdir -p "$top_builddir" 2>/dev/null
top_builddir=$(cd "$top_builddir" && pwd)
case ":$PATH:" in
*":$top_builddir/bin:"*) ;;
*) PATH=$top_builddir/bin:$PATH ;;
esac
export top_srcdir top_builddir PATH

# Nothing from the caller's environment may point a tool or psql at a real
# database.  (JQ_TEST_DATABASE_URL is the one way to ask for that.)
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGSERVICEFILE \
	PGOPTIONS PGTARGETSESSIONATTRS JQ_DATABASE_URL JQ_SCHEMA

# tap-driver.sh passes make's stdin on; tests must never block reading it.
exec </dev/null

_lib_name=$(basename "$0" .t)
T=$(mktemp -d "${TMPDIR:-/tmp}/pgjq-$_lib_name.XXXXXX") || {
	echo "Bail out! cannot create a temporary directory"
	exit 255
}
export T
_lib_atexit=
printf '0 0\n' > "$T/.tap-count"    # tests run, tests failed
_t_plan=
_t_done=0

# ------------------------------------------------------------------- TAP

diag() {
	# Each argument starts a line; every line becomes a "# " line.
	for _t_a; do
		printf '%s\n' "$_t_a"
	done | sed 's/^/# /'
}

# _t_show LABEL VALUE: a got/expected diagnostic in quotes, at most 40
# lines of at most 300 characters.
_t_show() {
	printf '%s\n' "$2" | awk -v label="$1" '
		BEGIN { pad = label " "; gsub(/./, " ", pad) }
		length($0) > 300 { $0 = substr($0, 1, 300) "...(" length($0) " chars)" }
		NR == 1 { printf "#   %s\047%s", label, $0; next }
		NR <= 40 { printf "\n#   %s%s", pad, $0 }
		END { print "\047"; if (NR > 40) printf "#   ... %d lines in all\n", NR }'
}

# _t_result OK|NOT DESC [DIRECTIVE]: prints one numbered result line.
_t_result() {
	read -r _t_n _t_nfail < "$T/.tap-count"
	_t_n=$((_t_n + 1))
	[ "$1" = OK ] || _t_nfail=$((_t_nfail + 1))
	printf '%s %s\n' "$_t_n" "$_t_nfail" > "$T/.tap-count"
	_t_desc=$2
	# A "#" would start a TAP directive, a newline a new line: escape them.
	case $_t_desc in
	*'#'* | *'
'*)
		_t_desc=$(printf '%s' "$_t_desc" | tr '\n' ' ' | sed 's/#/\\#/g') ;;
	esac
	if [ "$1" = OK ]; then
		printf 'ok %d - %s%s\n' "$_t_n" "$_t_desc" "${3:+ # $3}"
		return 0
	fi
	printf 'not ok %d - %s\n' "$_t_n" "$_t_desc"
	echo "#   Failed test '$_t_desc'"
	return 1
}

plan() {
	_t_plan=$1
	echo "1..$1"
}

done_testing() {
	read -r _t_n _t_nfail < "$T/.tap-count"
	if [ -n "$_t_plan" ]; then
		[ "$_t_n" = "$_t_plan" ] || diag "planned $_t_plan tests but ran $_t_n"
	else
		echo "1..$_t_n"
	fi
	_t_done=1
	[ "$_t_nfail" = 0 ] || diag "failed $_t_nfail of $_t_n tests"
	# The status stays 0: failures are in the TAP already, and a non-zero
	# exit would make tap-driver report one more error.
	return 0
}

pass() { _t_result OK "$1"; }
fail() { _t_result NOT "$1"; }

skip() {
	_t_skipn=${2:-1}
	while [ "$_t_skipn" -gt 0 ]; do
		_t_result OK "skipped" "skip $1"
		_t_skipn=$((_t_skipn - 1))
	done
}

skip_all() {
	read -r _t_n _t_nfail < "$T/.tap-count"
	if [ "$_t_n" = 0 ] && [ -z "$_t_plan" ]; then
		echo "1..0 # SKIP $*"
	else
		# Too late for 1..0: skip what is left of the plan, or close it here.
		diag "skipping the rest: $*"
		if [ -n "$_t_plan" ]; then
			[ "$_t_n" -lt "$_t_plan" ] && skip "$*" $((_t_plan - _t_n))
		else
			echo "1..$_t_n"
		fi
	fi
	_t_done=1
	exit 0
}

bail_out() {
	echo "Bail out! $*"
	exit 255
}

ok() {
	_t_d=$1
	shift
	run "$@"
	[ "$RC" = 0 ] && { _t_result OK "$_t_d"; return 0; }
	_t_result NOT "$_t_d"
	_t_cmdfail "0" "$@"
	return 1
}

fails() {
	_t_d=$1
	shift
	run "$@"
	[ "$RC" -gt 0 ] && [ "$RC" -lt 126 ] && { _t_result OK "$_t_d"; return 0; }
	_t_result NOT "$_t_d"
	_t_cmdfail "non-zero (1-125)" "$@"
	return 1
}

exits() {
	_t_want=$1 _t_d=$2
	shift 2
	run "$@"
	[ "$RC" = "$_t_want" ] && { _t_result OK "$_t_d"; return 0; }
	_t_result NOT "$_t_d"
	_t_cmdfail "$_t_want" "$@"
	return 1
}

# _t_cmdfail EXPECTED CMD...: what a failed command assertion shows.
_t_cmdfail() {
	_t_want=$1
	shift
	# Long lines are cut: a test may pass a megabyte as an argument.
	printf '#   command: %.300s\n' "$*"
	echo "#   exit status: $RC, expected $_t_want"
	if [ -s "$T/err" ]; then
		echo "#   stderr (first lines):"
		head -15 "$T/err" | cut -c1-300 | sed 's/^/#     /'
	fi
	if [ -s "$T/out" ]; then
		echo "#   stdout (first lines):"
		head -10 "$T/out" | cut -c1-300 | sed 's/^/#     /'
	fi
	return 0
}

is() {
	[ "$1" = "$2" ] && { _t_result OK "$3"; return 0; }
	_t_result NOT "$3"
	_t_show "     got: " "$1"
	_t_show "expected: " "$2"
	return 1
}

isnt() {
	[ "$1" != "$2" ] && { _t_result OK "$3"; return 0; }
	_t_result NOT "$3"
	_t_show "     got: " "$1"
	echo "#   expected anything else"
	return 1
}

like() {
	printf '%s\n' "$1" | grep -E -q -e "$2" && { _t_result OK "$3"; return 0; }
	_t_result NOT "$3"
	_t_show "     got: " "$1"
	echo "#   expected a line matching /$2/"
	return 1
}

unlike() {
	printf '%s\n' "$1" | grep -E -q -e "$2" || { _t_result OK "$3"; return 0; }
	_t_result NOT "$3"
	_t_show "     got: " "$1"
	echo "#   expected no line matching /$2/"
	return 1
}

# No stdin redirection here on purpose: the caller's `run cmd < file` is
# applied to this whole function call and so reaches cmd.
run() {
	"$@" > "$T/out" 2> "$T/err"
	RC=$?
	return $RC
}

# signal_after SECONDS SIGNAL COMMAND...: runs COMMAND, sends it SIGNAL
# after SECONDS, and returns its status.  Not timeout(1): it follows the
# signal with SIGCONT to the whole process group, and a SIGCONT that lands
# while LeakSanitizer is attaching to the exiting tool (its leak check
# at exit) discards the attach's SIGSTOP, hanging both for ever.
signal_after() {
	_t_secs=$1 _t_sig=$2
	shift 2
	"$@" &
	_t_pid=$!
	sleep "$_t_secs"
	kill -"$_t_sig" "$_t_pid" 2> /dev/null
	wait "$_t_pid"
}

wait_for() {
	_t_wdesc=$1
	# Whole seconds; a fraction rounds up.
	case $2 in
	*.*) _t_wsecs=$((${2%%.*} + 1)) ;;
	*) _t_wsecs=$2 ;;
	esac
	shift 2
	_t_wend=$(($(date +%s) + _t_wsecs))
	while :; do
		"$@" > /dev/null 2>&1 && return 0
		[ "$(date +%s)" -ge "$_t_wend" ] && break
		sleep 0.1 2>/dev/null || sleep 1
	done
	diag "timed out after ${_t_wsecs}s waiting for: $_t_wdesc"
	return 1
}

jget() { "$top_builddir/tests/jget" "$@"; }

at_exit() {
	_lib_atexit="$_lib_atexit
$1"
}

# ------------------------------------------------------------ PostgreSQL

_pg_mode=          # "", private or shared
_pg_running=0      # 1 while our private server may be up
_pg_psql=psql
PG_DIR=
PG_LOG=

need_private_pg() {
	[ -n "${JQ_TEST_DATABASE_URL:-}" ] &&
		skip_all "needs a private PostgreSQL server; JQ_TEST_DATABASE_URL is set"
	return 0
}

# initdb and postgres refuse to run as root.  As root we run them as
# "nobody", so everything they touch (the template, each cluster directory)
# lives under /tmp and belongs to nobody: the build tree may be in /root,
# mode 700, where nobody cannot go.  Our own client programs still run as
# root and reach the server through its socket.
_pg_as() {
	if [ "$_pg_uid" = 0 ]; then
		(cd / && runuser -u nobody -- "$@")
	else
		"$@"
	fi
}

# _pg_find_bindir: sets _pg_bindir to the server's binaries, or skips the
# script.  $PG_BINDIR, the newest Debian-style /usr/lib/postgresql/*/bin,
# pg_config --bindir, then PATH.
_pg_has_server() {
	[ -x "$1/postgres" ] && [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ]
}
_pg_find_bindir() {
	_pg_bindir=
	if [ -n "${PG_BINDIR:-}" ]; then
		_pg_has_server "$PG_BINDIR" && _pg_bindir=$PG_BINDIR
	else
		for _pg_d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n); do
			_pg_has_server "$_pg_d" && _pg_bindir=$_pg_d
		done
		if [ -z "$_pg_bindir" ] && command -v pg_config > /dev/null 2>&1; then
			_pg_d=$(pg_config --bindir 2>/dev/null)
			_pg_has_server "$_pg_d" && _pg_bindir=$_pg_d
		fi
		if [ -z "$_pg_bindir" ] && command -v initdb > /dev/null 2>&1; then
			_pg_d=$(dirname "$(command -v initdb)")
			_pg_has_server "$_pg_d" && _pg_bindir=$_pg_d
		fi
	fi
	[ -n "$_pg_bindir" ] || skip_all "no PostgreSQL server binaries"
	if [ -x "$_pg_bindir/psql" ]; then
		_pg_psql=$_pg_bindir/psql
	elif command -v psql > /dev/null 2>&1; then
		_pg_psql=psql
	else
		skip_all "no psql"
	fi
	# Tests call plain `psql`; make sure there is one.
	command -v psql > /dev/null 2>&1 || PATH=$PATH:$(dirname "$_pg_psql")
}

# Settings of every test cluster.  A throwaway cluster needs no durability,
# so fsync and friends are off for speed.  Parallel query is off because
# many clusters side by side (make -j) can exhaust a small /dev/shm.
_pg_settings="
# ---- pgjq test cluster (tests/lib.sh) ----
listen_addresses = ''
port = 5432
unix_socket_permissions = 0777
max_connections = 100
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_parallel_workers_per_gather = 0
logging_collector = off
lc_messages = 'C'
"

# _pg_template: makes sure $_pg_tpl holds a ready data directory (initdb
# done, database pgjq created, server stopped cleanly).
#
# Why a template: initdb takes seconds, copying its result a fraction of
# one, and every script wants a fresh cluster.  The first script to get
# here builds it; with make -j others arrive at the same moment, so the
# build holds a mkdir lock (atomic) and is published by a rename (atomic),
# and anyone who sees the template sees a whole one.
_pg_template_ok() {
	[ -f "$_pg_tpl/pgjq-template.stamp" ] &&
		[ "$(cat "$_pg_tpl/pgjq-template.stamp")" = "$_pg_stamp" ] &&
		[ -n "$(find "$_pg_tpl" -maxdepth 0 -user "$_pg_owner" 2>/dev/null)" ]
}
_pg_template() {
	_pg_template_ok && return 0
	_pg_lock=$_pg_tpl.lock
	_pg_tries=0
	until mkdir "$_pg_lock" 2>/dev/null; do
		# Someone is building it.  If that someone died, break the lock.
		_pg_holder=$(cat "$_pg_lock/pid" 2>/dev/null)
		if [ -n "$_pg_holder" ] && ! kill -0 "$_pg_holder" 2>/dev/null; then
			rm -rf "$_pg_lock"
			continue
		fi
		_pg_tries=$((_pg_tries + 1))
		[ $_pg_tries -gt 1800 ] && bail_out "waited 3 minutes for $_pg_lock"
		sleep 0.1 2>/dev/null || sleep 1
	done
	echo $$ > "$_pg_lock/pid"
	if _pg_template_ok; then     # built while we waited
		rm -rf "$_pg_lock"
		return 0
	fi
	_pg_build_template
	_pg_st=$?
	rm -rf "$_pg_lock"
	return $_pg_st
}
_pg_build_template() {
	diag "building the PostgreSQL template $_pg_tpl"
	_pg_new=$(mktemp -d "$_pg_tpl.new.XXXXXX") || return 1
	_pg_log=$_pg_new.log
	[ "$_pg_uid" = 0 ] && chown nobody "$_pg_new"
	if ! _pg_as env LC_ALL=C "$_pg_bindir/initdb" -D "$_pg_new" -U pgjq --auth=trust -E UTF8 \
	    --locale=C -N > "$_pg_log" 2>&1; then
		diag "initdb failed:" "$(tail -20 "$_pg_log")"
		rm -rf "$_pg_new" "$_pg_log"
		return 1
	fi
	printf '%s' "$_pg_settings" >> "$_pg_new/postgresql.conf"
	# Create the database pgjq: start the server once on a private socket.
	_pg_tsock=$(mktemp -d "$_pg_base/pgjq-tplsock.XXXXXX") || return 1
	[ "$_pg_uid" = 0 ] && chown nobody "$_pg_tsock"
	chmod 755 "$_pg_tsock"
	_pg_ok=0
	if _pg_as "$_pg_bindir/pg_ctl" -D "$_pg_new" -l "$_pg_tsock/log" -w -t 60 -s \
	    -o "-k '$_pg_tsock'" start < /dev/null >> "$_pg_log" 2>&1; then
		PGHOST=$_pg_tsock PGPORT=5432 PGUSER=pgjq "$_pg_psql" -X -q -d postgres \
		    -c 'CREATE DATABASE pgjq' >> "$_pg_log" 2>&1 && _pg_ok=1
		_pg_as "$_pg_bindir/pg_ctl" -D "$_pg_new" -m fast -w -t 60 -s stop \
		    < /dev/null >> "$_pg_log" 2>&1 || _pg_ok=0
	fi
	if [ $_pg_ok = 0 ]; then
		diag "building the template failed:" "$(tail -20 "$_pg_log")" \
			"$(tail -20 "$_pg_tsock/log" 2>/dev/null)"
		rm -rf "$_pg_new" "$_pg_log" "$_pg_tsock"
		return 1
	fi
	rm -rf "$_pg_tsock" "$_pg_log" "$_pg_new/postmaster.opts"
	printf '%s' "$_pg_stamp" > "$_pg_new/pgjq-template.stamp"
	# Publish: move a broken or stale template aside, then rename ours in.
	if [ -e "$_pg_tpl" ]; then
		mv "$_pg_tpl" "$_pg_tpl.old.$$" && rm -rf "$_pg_tpl.old.$$"
	fi
	[ -e "$_pg_tpl" ] || mv "$_pg_new" "$_pg_tpl"
	rm -rf "$_pg_new"
	_pg_template_ok
}

# _pg_ctl_start: starts the private server in $PG_DIR; 0 once it accepts
# connections.  pg_ctl -w waits for that; the psql check is a safety net.
_pg_ctl_start() {
	_pg_running=1
	# </dev/null and closed fds 3-9: the daemonised postmaster must hold
	# nothing of ours open, least of all the pipe tap-driver reads.
	if ! _pg_as "$_pg_bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_LOG" -w -t 60 -s start \
	    < /dev/null > "$PG_DIR/pg_ctl.out" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; then
		diag "pg_ctl start failed:" "$(cat "$PG_DIR/pg_ctl.out")" \
			"server log:" "$(tail -20 "$PG_LOG" 2>/dev/null)"
		return 1
	fi
	wait_for "the server to accept connections" 30 \
		"$_pg_psql" -X -At -d "$JQ_DATABASE_URL" -c 'select 1'
}

pg_start() {
	[ -n "$_pg_mode" ] && bail_out "pg_start called twice"
	_pg_uid=$(id -u)
	if [ -n "${JQ_TEST_DATABASE_URL:-}" ]; then
		_pg_start_shared
		return
	fi
	_pg_find_bindir
	if [ "$_pg_uid" = 0 ]; then
		command -v runuser > /dev/null 2>&1 || skip_all "running as root, and no runuser to drop to nobody"
		id nobody > /dev/null 2>&1 || skip_all "running as root, and there is no user nobody"
		_pg_owner=nobody
	else
		_pg_owner=$_pg_uid
	fi
	# Where the template and clusters live: $TMPDIR if the server's user can
	# reach it and it leaves room for a socket path (at most 107 bytes), else /tmp.
	_pg_base=${TMPDIR:-/tmp}
	if [ "${#_pg_base}" -gt 60 ] || ! _pg_as sh -c 'cd "$1"' sh "$_pg_base" 2>/dev/null; then
		_pg_base=/tmp
	fi
	_pg_version=$("$_pg_bindir/postgres" -V) || skip_all "$_pg_bindir/postgres does not run"
	_pg_major=$(echo "$_pg_version" | sed 's/^[^0-9]*\([0-9][0-9]*\).*/\1/')
	_pg_tpl=$_pg_base/pgjq-template-$_pg_uid-$_pg_major
	# The template is rebuilt whenever this changes (a new minor release,
	# other binaries, other settings).
	# ($(...) drops trailing newlines, as the $(cat) that reads it back will.)
	_pg_stamp=$(printf 'pgjq-template 1\n%s\n%s\n%s' "$_pg_version" "$_pg_bindir" "$_pg_settings")

	PG_DIR=$(mktemp -d "$_pg_base/pgjq-pg.XXXXXX") || bail_out "cannot create a cluster directory"
	PG_LOG=$PG_DIR/postgres.log
	mkdir "$PG_DIR/sock"
	chmod 755 "$PG_DIR" "$PG_DIR/sock"
	[ "$_pg_uid" = 0 ] && chown nobody "$PG_DIR" "$PG_DIR/sock"
	_pg_mode=private

	JQ_DATABASE_URL="postgresql:///pgjq?host=$PG_DIR/sock&port=5432&user=pgjq"
	JQ_SCHEMA=jq
	PGHOST=$PG_DIR/sock PGPORT=5432 PGUSER=pgjq PGDATABASE=pgjq
	export JQ_DATABASE_URL JQ_SCHEMA PGHOST PGPORT PGUSER PGDATABASE PG_DIR PG_LOG

	# Two tries: a template that looks right but does not start is rebuilt.
	for _pg_try in 1 2; do
		_pg_template || bail_out "cannot build a PostgreSQL template in $_pg_base"
		rm -rf "$PG_DIR/data"
		cp -a "$_pg_tpl" "$PG_DIR/data" 2>/dev/null || cp -Rp "$_pg_tpl" "$PG_DIR/data" ||
			bail_out "cannot copy $_pg_tpl"
		printf "unix_socket_directories = '%s'\n" "$PG_DIR/sock" >> "$PG_DIR/data/postgresql.conf"
		_pg_ctl_start && return 0
		[ $_pg_try = 1 ] && { diag "rebuilding the template"; rm -f "$_pg_tpl/pgjq-template.stamp"; }
	done
	bail_out "cannot start PostgreSQL (log: $PG_LOG)"
}

# A database the caller provides: a schema of our own in it, no server.
_pg_start_shared() {
	_pg_mode=shared
	_pg_find_bindir_client
	JQ_DATABASE_URL=$JQ_TEST_DATABASE_URL
	JQ_SCHEMA=t_$(printf '%s' "$_lib_name" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9' '_' | cut -c1-40)_$$
	# psql knows what the URL means; let it tell us, for plain `psql`.
	_pg_conn=$("$_pg_psql" -X -At -d "$JQ_DATABASE_URL" -c '\echo :HOST' -c '\echo :PORT' \
		-c '\echo :USER' -c '\echo :DBNAME' 2> "$T/.pgconn.err") ||
		bail_out "cannot connect to JQ_TEST_DATABASE_URL: $(cat "$T/.pgconn.err")"
	{ read -r PGHOST; read -r PGPORT; read -r PGUSER; read -r PGDATABASE; } <<EOF
$_pg_conn
EOF
	export JQ_DATABASE_URL JQ_SCHEMA PGHOST PGPORT PGUSER PGDATABASE
}
_pg_find_bindir_client() {
	command -v psql > /dev/null 2>&1 || skip_all "no psql"
	_pg_psql=psql
}

_pg_need_private() {
	[ "$_pg_mode" = private ] && return 0
	[ "$_pg_mode" = shared ] && skip_all "$1 needs a private PostgreSQL server (JQ_TEST_DATABASE_URL is set)"
	bail_out "$1 before pg_start"
}

pg_stop() {
	_pg_need_private pg_stop
	_pg_as "$_pg_bindir/pg_ctl" -D "$PG_DIR/data" -m "${1:-fast}" -w -t 60 -s stop \
		< /dev/null > "$PG_DIR/pg_ctl.out" 2>&1
	_pg_st=$?
	if [ $_pg_st = 0 ]; then
		_pg_running=0
	else
		diag "pg_ctl stop failed:" "$(cat "$PG_DIR/pg_ctl.out")"
	fi
	return $_pg_st
}

pg_restart_server() {
	_pg_need_private pg_restart_server
	_pg_ctl_start
}

# _pg_gone PID: the process is gone, or a zombie nobody will reap.
_pg_gone() {
	case $(ps -o stat= -p "$1" 2>/dev/null) in
	'' | Z*) return 0 ;;
	esac
	return 1
}

pg_kill9() {
	_pg_need_private pg_kill9
	_pg_pm=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null)
	[ -n "$_pg_pm" ] || { diag "pg_kill9: no postmaster.pid"; return 1; }
	# The postmaster's children too: orphaned backends would keep the shared
	# memory attached and the restart would refuse to start.
	_pg_kids=$(ps -e -o pid= -o ppid= | awk -v p="$_pg_pm" '$2 == p { print $1 }')
	kill -9 "$_pg_pm" $_pg_kids 2>/dev/null
	_pg_running=0
	_pg_tries=0
	for _pg_p in $_pg_pm $_pg_kids; do
		while ! _pg_gone "$_pg_p" && [ $_pg_tries -lt 100 ]; do
			sleep 0.1 2>/dev/null || sleep 1
			_pg_tries=$((_pg_tries + 1))
		done
	done
	# Where PID 1 does not reap orphans (some containers), the dead
	# postmaster stays a zombie, kill -0 still finds it, and the new
	# postmaster would take the stale lock files (which hold its PID) for
	# a live server.
	case $(ps -o stat= -p "$_pg_pm" 2>/dev/null) in
	Z*) rm -f "$PG_DIR/data/postmaster.pid" "$PG_DIR/sock/.s.PGSQL.5432.lock" ;;
	esac
	_pg_gone "$_pg_pm"
}

sql() {
	# One -c per argument: rebuild "$@" as -c ARG -c ARG ...
	_pg_n=$#
	for _pg_a; do
		set -- "$@" -c "$_pg_a"
	done
	shift $_pg_n
	PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c search_path=${JQ_SCHEMA:-public},public" \
		"$_pg_psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "${JQ_DATABASE_URL:-}" "$@"
}

sql_file() {
	_pg_f=$1
	shift
	PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c search_path=${JQ_SCHEMA:-public},public" \
		"$_pg_psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "${JQ_DATABASE_URL:-}" -f "$_pg_f" "$@"
}

pg_hba() {
	_pg_need_private pg_hba
	_pg_hba=$PG_DIR/data/pg_hba.conf
	# Rewritten in place, not replaced, so it keeps the server's owner.
	{ printf '%s\n' "$@"; cat "$_pg_hba"; } > "$T/.pg_hba" && cat "$T/.pg_hba" > "$_pg_hba" || return 1
	_pg_bad=$(sql "select line_number || ': ' || error from pg_hba_file_rules where error is not null")
	[ -z "$_pg_bad" ] || { diag "pg_hba: bad records:" "$_pg_bad"; return 1; }
	# The reload is asynchronous: a new session has the new rules once the
	# server's configuration time has moved on.
	_pg_loaded=$(sql "select pg_conf_load_time()") &&
		sql "select pg_reload_conf()" > /dev/null &&
		wait_for "pg_hba.conf to be reloaded" 10 _pg_reloaded
}
_pg_reloaded() {
	[ "$(sql "select pg_conf_load_time() > '$_pg_loaded'")" = t ]
}

pg_standby() {
	_pg_need_private pg_standby
	STANDBY_DIR=$PG_DIR/standby
	mkdir "$STANDBY_DIR" "$STANDBY_DIR/sock" || return 1
	chmod 755 "$STANDBY_DIR" "$STANDBY_DIR/sock"
	[ "$_pg_uid" = 0 ] && chown nobody "$STANDBY_DIR" "$STANDBY_DIR/sock"
	export STANDBY_DIR
	# The template's pg_hba.conf has initdb's "local replication all trust".
	if ! _pg_as "$_pg_bindir/pg_basebackup" -D "$STANDBY_DIR/data" -R -X stream -c fast \
	    -h "$PG_DIR/sock" -p 5432 -U pgjq < /dev/null > "$STANDBY_DIR/basebackup.out" 2>&1; then
		diag "pg_basebackup failed:" "$(cat "$STANDBY_DIR/basebackup.out")"
		return 1
	fi
	# The copy has the primary's socket directory; the last setting wins.
	printf "port = 5433\nunix_socket_directories = '%s'\n" "$STANDBY_DIR/sock" \
		>> "$STANDBY_DIR/data/postgresql.conf"
	at_exit _pg_standby_stop
	if ! _pg_as "$_pg_bindir/pg_ctl" -D "$STANDBY_DIR/data" -l "$STANDBY_DIR/postgres.log" \
	    -w -t 60 -s start < /dev/null > "$STANDBY_DIR/pg_ctl.out" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; then
		diag "pg_ctl start (standby) failed:" "$(cat "$STANDBY_DIR/pg_ctl.out")" \
			"server log:" "$(tail -20 "$STANDBY_DIR/postgres.log" 2>/dev/null)"
		return 1
	fi
	wait_for "the standby to accept connections" 30 \
		"$_pg_psql" -X -At -h "$STANDBY_DIR/sock" -p 5433 -U pgjq -d pgjq -c 'select 1'
}
_pg_standby_stop() {
	[ -f "$STANDBY_DIR/data/postmaster.pid" ] &&
		_pg_as "$_pg_bindir/pg_ctl" -D "$STANDBY_DIR/data" -m immediate -w -t 30 -s stop \
			< /dev/null > /dev/null 2>&1
}
_pg_standby_writable() {
	[ "$("$_pg_psql" -X -At -h "$STANDBY_DIR/sock" -p 5433 -U pgjq -d pgjq \
		-c 'select pg_is_in_recovery()')" = f ]
}

pg_promote_standby() {
	_pg_as "$_pg_bindir/pg_ctl" -D "$STANDBY_DIR/data" -w -t 60 -s promote \
		< /dev/null > "$STANDBY_DIR/pg_ctl.out" 2>&1 ||
		{ diag "pg_ctl promote failed:" "$(cat "$STANDBY_DIR/pg_ctl.out")"; return 1; }
	wait_for "the standby to leave recovery" 30 _pg_standby_writable
}

# ------------------------------------------------------------- PgBouncer

_pgb_bin=
_pgb_dir=
_pgb_mode=

need_pgbouncer() {
	for _pgb_b in "$(command -v pgbouncer 2>/dev/null)" /usr/sbin/pgbouncer /usr/bin/pgbouncer; do
		[ -n "$_pgb_b" ] && [ -x "$_pgb_b" ] && { _pgb_bin=$_pgb_b; return 0; }
	done
	skip_all "pgbouncer is not installed"
}

pgbouncer_start() {
	_pg_need_private pgbouncer_start
	need_pgbouncer
	_pgb_mode=${1:-transaction}
	# In the cluster's directory, not $T: as root PgBouncer (which refuses
	# root) runs as the server's user, who may read there.
	_pgb_dir=$PG_DIR/pgbouncer
	if [ ! -d "$_pgb_dir" ]; then
		mkdir "$_pgb_dir" && chmod 755 "$_pgb_dir" || return 1
		[ "$_pg_uid" = 0 ] && chown nobody "$_pgb_dir"
		at_exit pgbouncer_stop
	fi
	PGB_LOG=$_pgb_dir/pgbouncer.log
	PGB_URL="postgresql:///pgjq?host=$_pgb_dir&port=6432&user=pgjq"
	export PGB_URL PGB_LOG
	# trust still wants the user in auth_file.
	printf '"pgjq" ""\n' | _pg_as sh -c 'cat > "$1/userlist.txt"' sh "$_pgb_dir"
	_pg_as sh -c 'cat > "$1/pgbouncer.ini"' sh "$_pgb_dir" <<EOF
[databases]
* = host=$PG_DIR/sock port=5432

[pgbouncer]
listen_addr =
listen_port = 6432
unix_socket_dir = $_pgb_dir
auth_type = trust
auth_file = $_pgb_dir/userlist.txt
pool_mode = $_pgb_mode
default_pool_size = 3
max_client_conn = 500
logfile = $PGB_LOG
pidfile = $_pgb_dir/pgbouncer.pid
EOF
	if ! _pg_as "$_pgb_bin" -d -q "$_pgb_dir/pgbouncer.ini" < /dev/null \
	    > "$_pgb_dir/start.out" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; then
		diag "pgbouncer failed to start:" "$(cat "$_pgb_dir/start.out")" \
			"$(tail -20 "$PGB_LOG" 2>/dev/null)"
		return 1
	fi
	wait_for "pgbouncer to accept connections" 30 \
		"$_pg_psql" -X -At -d "$PGB_URL" -c 'select 1'
}

# The daemon's pid is read from its pidfile: only ever the one we started.
pgbouncer_stop() {
	[ -n "$_pgb_dir" ] && [ -f "$_pgb_dir/pgbouncer.pid" ] || return 0
	_pgb_pid=$(cat "$_pgb_dir/pgbouncer.pid" 2>/dev/null)
	[ -n "$_pgb_pid" ] || return 0
	kill -INT "$_pgb_pid" 2>/dev/null
	_pgb_tries=0
	while kill -0 "$_pgb_pid" 2>/dev/null && [ $_pgb_tries -lt 100 ]; do
		sleep 0.1 2>/dev/null || sleep 1
		_pgb_tries=$((_pgb_tries + 1))
	done
	kill -0 "$_pgb_pid" 2>/dev/null && kill -9 "$_pgb_pid" 2>/dev/null
	rm -f "$_pgb_dir/pgbouncer.pid"
	return 0
}

pgbouncer_restart() {
	pgbouncer_stop
	pgbouncer_start "${1:-$_pgb_mode}"
}

# ------------------------------------------------------------------ exit

# Runs at every exit, whatever the script did (tests do not use set -e, and
# nothing here may depend on it): the script's at_exit commands, then the
# server or the shared schema, then $T.  Keeps the script's exit status.
_lib_exit() {
	_lib_status=$?
	set +e
	trap - EXIT
	if [ -n "$_lib_atexit" ]; then
		eval "$_lib_atexit" > /dev/null 2>&1
	fi
	if [ "$_pg_mode" = private ] && [ "$_pg_running" = 1 ]; then
		_pg_pm=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null)
		if ! _pg_as "$_pg_bindir/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 -s stop \
		    < /dev/null > /dev/null 2>&1; then
			[ -n "$_pg_pm" ] && kill -9 "$_pg_pm" 2>/dev/null
		fi
	fi
	if [ "$_pg_mode" = shared ]; then
		# Every schema the script made in the shared database starts with
		# JQ_SCHEMA (tests derive others from it): drop them all.
		sql "do \$pgjq\$ declare s name; begin
			for s in select nspname from pg_namespace
			    where left(nspname, length('$JQ_SCHEMA')) = '$JQ_SCHEMA' loop
				execute format('drop schema %I cascade', s);
			end loop; end \$pgjq\$" > /dev/null 2>&1 ||
			echo "# could not drop schema $JQ_SCHEMA"
	fi
	if [ -n "$_t_plan" ] && [ "$_t_done" = 0 ]; then
		read -r _t_n _t_nfail < "$T/.tap-count"
		[ "$_t_n" = "$_t_plan" ] || echo "# planned $_t_plan tests but ran $_t_n"
	fi
	if [ -z "$_t_plan" ] && [ "$_t_done" = 0 ]; then
		echo "# the script ended (status $_lib_status) before done_testing"
	fi
	if [ "${PGJQ_KEEP_TMP:-0}" = 1 ]; then
		echo "# kept $T${PG_DIR:+ and $PG_DIR}"
	else
		rm -rf "$T"
		[ "$_pg_mode" = private ] && rm -rf "$PG_DIR"
	fi
	exit $_lib_status
}
trap _lib_exit EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
