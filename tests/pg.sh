# tests/pg.sh: a private, throwaway PostgreSQL cluster, for the tests, the
# demo and the benchmarks.  Source it; it defines functions only.
#
#   pg_start DIR    make a cluster in DIR (from a cached template), start
#                   it on a unix socket in DIR, export JQ_DATABASE_URL and
#                   PGHOST PGPORT PGUSER PGDATABASE
#   pg_stop [MODE]  stop it (pg_ctl -m MODE, default fast)
#   pg_restart      start it again after pg_stop, same socket
#   pg_cleanup      stop it at once if it runs (for EXIT traps)
#
# PG_DEFAULT_SETTINGS=yes keeps PostgreSQL's settings as they come (for
# benchmarks); otherwise durability is traded for speed (fsync=off...).
# PostgreSQL refuses to run as root, so as root the server runs as
# "nobody": DIR's parent must be one that nobody may enter (mode 755).

pg_bindir() {
	if [ -n "${PG_BINDIR:-}" ]; then
		echo "$PG_BINDIR"
		return
	fi
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	if [ -n "$d" ] && [ -x "$d/initdb" ]; then
		echo "$d"
	elif command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
		pg_config --bindir
	elif command -v initdb >/dev/null 2>&1; then
		dirname "$(command -v initdb)"
	fi
}

# Runs a server command as the cluster's owner.
pg_as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u nobody -- "$@"
	else
		"$@"
	fi
}

# The template: one initdb per machine and PostgreSQL version, copied for
# each cluster, because initdb costs a second or two and the copy almost
# nothing.  Built in a private directory, then renamed into place, so
# parallel tests never see half a template.
pg_template() {
	bindir=$1
	version=$("$bindir/postgres" --version | sed 's/.* \([0-9][0-9]*\).*/\1/')
	tpl=${TMPDIR:-/tmp}/pgjq-cluster-template-$(id -u)-$version
	if [ -f "$tpl/data/PG_VERSION" ]; then
		echo "$tpl"
		return 0
	fi
	tmp=$(mktemp -d "$tpl.XXXXXX") || return 1
	chmod 755 "$tmp"
	[ "$(id -u)" = 0 ] && chown nobody "$tmp"
	if ! pg_as_owner "$bindir/initdb" -D "$tmp/data" -U pgjq --auth=trust -E UTF8 \
	    --locale=C -N > "$tmp/initdb.log" 2>&1; then
		cat "$tmp/initdb.log" >&2
		rm -rf "$tmp"
		return 1
	fi
	# Someone else may have won the race: theirs is as good as ours.
	if ! mv -T "$tmp" "$tpl" 2>/dev/null; then
		rm -rf "$tmp"
	fi
	echo "$tpl"
}

pg_start() {
	PG_DIR=$1
	PG_BIN=$(pg_bindir)
	if [ -z "$PG_BIN" ]; then
		echo "pg.sh: no PostgreSQL server binaries (set PG_BINDIR)" >&2
		return 2
	fi
	tpl=$(pg_template "$PG_BIN") || return 1
	mkdir -p "$PG_DIR"
	chmod 755 "$PG_DIR"
	cp -a "$tpl/data" "$PG_DIR/data" || return 1
	[ "$(id -u)" = 0 ] && chown nobody "$PG_DIR"
	chmod 700 "$PG_DIR/data"
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$PG_DIR'"
		echo "max_connections = 100"
		if [ "${PG_DEFAULT_SETTINGS:-no}" != yes ]; then
			echo "fsync = off"
			echo "synchronous_commit = off"
			echo "full_page_writes = off"
		fi
	} | pg_as_owner sh -c "cat >> '$PG_DIR/data/postgresql.conf'"
	pg_restart || return 1
	export PGHOST="$PG_DIR" PGPORT=5432 PGUSER=pgjq PGDATABASE=postgres
	export JQ_DATABASE_URL="postgresql:///postgres?host=$PG_DIR&port=5432&user=pgjq"
}

pg_restart() {
	pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 start >/dev/null ||
		{ tail -20 "$PG_DIR/log" >&2; return 1; }
}

pg_stop() {
	pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m "${1:-fast}" -w -t 60 stop >/dev/null
}

pg_cleanup() {
	if [ -n "${PG_DIR:-}" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
		pg_stop immediate 2>/dev/null
	fi
}
