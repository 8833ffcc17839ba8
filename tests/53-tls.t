#!/bin/sh
# TLS: libpq's TLS settings reach every tool.  The private server listens on
# 127.0.0.1 with a certificate for "localhost" from a throwaway CA; TCP
# without TLS is rejected by pg_hba.conf.  Every tool connects with
# sslmode=verify-full (in JQ_DATABASE_URL, in -d, or from PGSSLMODE and
# PGSSLROOTCERT), and the server's log (log_connections) or pg_stat_ssl
# shows each tool's own connection used TLS.  With a wrong CA, a host name
# the certificate does not name, or no TLS at all, every tool exits 69
# with libpq's reason, and nothing is done.
. "${top_srcdir:-..}/tests/lib.sh"
need_private_pg
command -v openssl > /dev/null 2>&1 || skip_all "no openssl(1) to make certificates"

# ------------------------------------------------------ the certificates

# Our own configuration: the system's openssl.cnf may be missing or odd.
cat > "$T/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
EOF
# ssl CMD...: openssl, quiet; skips the script if it fails.
ssl() {
	openssl "$@" > "$T/openssl.log" 2>&1 ||
		skip_all "openssl cannot make the certificates: $(tail -1 "$T/openssl.log")"
}
# mkca NAME CN: a self-signed CA, NAME.key and NAME.crt in $T.
mkca() {
	ssl req -config "$T/openssl.cnf" -x509 -new -nodes -days 2 \
		-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-keyout "$T/$1.key" -out "$T/$1.crt" -subj "/CN=$2" -extensions ca
}
mkca ca "pgjq test CA"
mkca other "pgjq other CA"       # trusted by nobody: the wrong CA
ssl req -config "$T/openssl.cnf" -new -nodes \
	-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	-keyout "$T/server.key" -out "$T/server.csr" -subj "/CN=localhost"
ssl x509 -req -in "$T/server.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -set_serial 53 \
	-days 2 -out "$T/server.crt" -extfile "$T/openssl.cnf" -extensions server

# ----------------------------------------------------------- the server

pg_start
data=$PG_DIR/data
cp "$T/server.crt" "$T/server.key" "$data/" || bail_out "cannot copy the certificate"
# The server refuses a key that others can read or that is not its own.
chmod 600 "$data/server.key"
chmod 644 "$data/server.crt"
[ "$(id -u)" = 0 ] && chown nobody "$data/server.key" "$data/server.crt"
cat >> "$data/postgresql.conf" <<EOF
ssl = on
ssl_cert_file = '$data/server.crt'
ssl_key_file = '$data/server.key'
listen_addresses = '127.0.0.1'
log_connections = on
EOF

# A TCP port of our own, from our pid; the next one if it is taken.  The
# socket's name follows the port, so the harness's own connection (sql,
# psql) moves with it.
port_busy() {
	_hex=$(printf ':%04X ' "$1")
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p="$_hex" '
		index($2 " ", p) && $4 == "0A" { found = 1 } END { exit !found }'
}
pg_stop || bail_out "cannot stop the server to turn TLS on"
P=$((20000 + $$ % 20000))
started=0
for _try in 1 2 3 4 5; do
	while port_busy $P; do P=$((P + 1)); done
	echo "port = $P" >> "$data/postgresql.conf"
	JQ_DATABASE_URL="postgresql:///pgjq?host=$PG_DIR/sock&port=$P&user=pgjq"
	PGPORT=$P
	export JQ_DATABASE_URL PGPORT
	pg_restart_server && { started=1; break; }
	diag "cannot start on port $P, trying another"
	P=$((P + 1 + $$ % 7))
done
[ $started = 1 ] || bail_out "cannot start the server with TLS (log: $PG_LOG)"
ok "the server runs with ssl = on" test "$(sql "show ssl")" = on
ok "pg_hba.conf: TLS over TCP or nothing" pg_hba \
	"hostssl all all 127.0.0.1/32 trust" \
	"hostssl all all ::1/128 trust" \
	"hostnossl all all 0.0.0.0/0 reject" \
	"hostnossl all all ::/0 reject"
ok "the schema is made (over the socket)" jq-enqueue -q warmup '{}'

TLS="host=localhost port=$P user=pgjq dbname=pgjq sslmode=verify-full sslrootcert='$T/ca.crt'"
# tls CMD...: CMD with JQ_DATABASE_URL the verify-full connection.
tls() { env JQ_DATABASE_URL="$TLS" "$@"; }
ok "psql connects with verify-full" \
	psql -X -At -d "$TLS" -c "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
is "$(cat "$T/out")" t "and pg_stat_ssl says its connection is encrypted"

# mark: remember where the server's log ends.  used_tls APP DESC: every
# connection APP (its application_name) made since the mark came over TLS,
# and there was at least one.
mark() { wc -l < "$PG_LOG" | tr -d ' ' > "$T/mark"; }
conns() {
	tail -n +$(($(cat "$T/mark") + 1)) "$PG_LOG" |
		grep -E "connection authorized: .*application_name=$1( |$)"
}
used_tls() {
	_c=$(conns "$1")
	if [ -n "$_c" ] && ! printf '%s\n' "$_c" | grep -q -v 'SSL enabled'; then
		pass "$2"
		return 0
	fi
	fail "$2"
	diag "connections since the mark:" "${_c:-(none)}"
	echo "#   expected at least one, each with 'SSL enabled'"
	return 1
}
# on_tls APP: APP is connected now, over TCP, and every connection of its is
# encrypted (pg_stat_activity joined with pg_stat_ssl).
on_tls_now() {
	sql "select count(*) || ' ' || coalesce(bool_and(s.ssl and a.client_addr is not null), false)
	       from pg_stat_activity a join pg_stat_ssl s using (pid)
	      where a.application_name = '$1'"
}
on_tls() {
	_n=$(on_tls_now "$1")
	[ "${_n%% *}" -gt 0 ] && [ "${_n#* }" = true ] 2>/dev/null
}
state() { sql "select state from all_jobs where id = $1"; }

# ------------------------------------------------------- every tool, TLS

mark
exits 0 "jq-enqueue (arguments) with verify-full" tls jq-enqueue -q tls '{"n":1}' '{"n":2}'
ids=$(cat "$T/out")
is "$(printf '%s\n' "$ids" | grep -c '^[0-9][0-9]*$')" 2 "two ids"
used_tls jq-enqueue "jq-enqueue's connection used TLS"
id1=$(printf '%s\n' "$ids" | sed -n 1p)

printf '{"n":3}\n{"fail":true}\n' > "$T/in"
mark
exits 0 "jq-enqueue (stdin) with verify-full" tls jq-enqueue -q tls --max-attempts 1 < "$T/in"
is "$(grep -c '^[0-9][0-9]*$' "$T/out")" 2 "two ids"
used_tls jq-enqueue "jq-enqueue's connection used TLS"
idfail=$(sed -n 2p "$T/out")

mark
exits 0 "jq-status ID with verify-full" tls jq-status "$id1"
like "$(cat "$T/out")" "queued" "it shows the job queued"
used_tls jq-status "jq-status's connection used TLS"
exits 0 "jq-status --json with verify-full" tls jq-status --json "$id1"
is "$(jget -r .state < "$T/out")" queued "--json: the job is queued"

# A waiter, long-lived: its connection is in pg_stat_ssl while it waits.
mark
tls jq-status --wait "$id1" > "$T/wait.out" 2> "$T/wait.err" &
wpid=$!
at_exit "kill $wpid"
if wait_for "jq-status --wait to connect" 10 on_tls jq-status; then
	pass "jq-status --wait is connected over TLS while it waits"
else
	fail "jq-status --wait is connected over TLS while it waits"
	diag "pg_stat_ssl: $(on_tls_now jq-status)" "$(cat "$T/wait.err")"
fi

# The handler checks its own connection (JQ_DATABASE_URL from the worker)
# and the worker's, which is connected while the handler runs.
cat > "$T/handler" <<'EOF'
#!/bin/sh
payload=$(cat)
printf '%s\n' "$JQ_DATABASE_URL" > "$DUMP/url.$JQ_JOB_ID"
mine=$(psql -X -At -d "$JQ_DATABASE_URL" -c "select ssl from pg_stat_ssl where pid = pg_backend_pid()") || exit 2
worker=$(psql -X -At -d "$JQ_DATABASE_URL" -c "
	select count(*) || ' ' || coalesce(bool_and(s.ssl and a.client_addr is not null), false)
	  from pg_stat_activity a join pg_stat_ssl s using (pid)
	 where a.application_name = 'jq-worker'") || exit 2
printf '{"mine": "%s", "worker": "%s"}\n' "$mine" "$worker"
case $payload in
*fail*) exit 1 ;;
esac
exit 0
EOF
chmod +x "$T/handler"
mkdir "$T/dump"
export DUMP="$T/dump"

mark
exits 0 "jq-worker --drain with verify-full" tls jq-worker --drain -q tls --backoff 1h -- "$T/handler"
cp "$T/err" "$T/worker.err"
used_tls jq-worker "jq-worker's connections used TLS"
is "$(sql "select state, count(*) from all_jobs where queue = 'tls' group by 1 order by 1" | tr '\n' ' ')" \
	"completed|3 failed|1 " "the worker ran every job: three completed, one failed"
is "$(sql "select distinct result->>'mine' from all_jobs where queue = 'tls'")" t \
	"each handler's own connection (JQ_DATABASE_URL from the worker) used TLS"
like "$(sql "select distinct result->>'worker' from all_jobs where queue = 'tls'")" "^[1-9][0-9]* true$" \
	"and saw the worker connected over TLS while it ran"
like "$(cat "$T"/dump/url.*)" "sslmode='?verify-full" "the handler's JQ_DATABASE_URL keeps sslmode"
like "$(cat "$T"/dump/url.*)" "sslrootcert='?$T/ca.crt" "and sslrootcert"

wait $wpid
is "$?" 0 "jq-status --wait over TLS saw the job complete (exit 0)"

mark
is "$(state "$idfail")" failed "a job failed"
exits 0 "jq-retry with verify-full" tls jq-retry "$idfail"
used_tls jq-retry "jq-retry's connection used TLS"
is "$(state "$idfail")" queued "the job is queued again"

mark
exits 0 "jq-cancel with verify-full" tls jq-cancel "$idfail"
used_tls jq-cancel "jq-cancel's connection used TLS"
is "$(state "$idfail")" cancelled "the job is cancelled"

mark
exits 0 "jq-stats with verify-full" tls jq-stats
like "$(cat "$T/out")" "^tls " "it shows queue tls"
used_tls jq-stats "jq-stats's connection used TLS"
mark
exits 0 "jq-stats --json with verify-full" tls jq-stats --json -q tls
like "$(jget -r .type < "$T/out")" "queue" "--json: the queue's object"
used_tls jq-stats "jq-stats --json's connection used TLS"

# -d, as a URI.
uri="postgresql://pgjq@localhost:$P/pgjq?sslmode=verify-full&sslrootcert=$T/ca.crt"
mark
exits 0 "jq-status -d URI with verify-full" jq-status -d "$uri" "$id1"
used_tls jq-status "jq-status -d URI used TLS"

# libpq's environment: a connection string that says nothing of TLS.
plain="host=localhost port=$P user=pgjq dbname=pgjq"
mark
exits 0 "jq-enqueue with PGSSLMODE=verify-full PGSSLROOTCERT" \
	env JQ_DATABASE_URL="$plain" PGSSLMODE=verify-full PGSSLROOTCERT="$T/ca.crt" jq-enqueue -q env '{}'
used_tls jq-enqueue "its connection used TLS"
exits 0 "jq-worker with PGSSLMODE=verify-full PGSSLROOTCERT" \
	env JQ_DATABASE_URL="$plain" PGSSLMODE=verify-full PGSSLROOTCERT="$T/ca.crt" \
	jq-worker --drain -q env -- "$T/handler"
used_tls jq-worker "its connections used TLS"
is "$(sql "select state || ' ' || (result->>'mine') from all_jobs where queue = 'env'")" "completed t" \
	"the job ran, its handler connected over TLS too"
# The environment is really read: with the wrong CA in it, verification fails.
exits 69 "with PGSSLROOTCERT the wrong CA, jq-stats cannot connect (69)" \
	env JQ_DATABASE_URL="$plain" PGSSLMODE=verify-full PGSSLROOTCERT="$T/other.crt" jq-stats
like "$(cat "$T/err")" "certificate verify failed" "because the certificate does not verify"

# ------------------------------------------------------------- failures

jq-enqueue -q neg '{"sentinel":true}' > "$T/sentinel" 2>&1
sentinel=$(cat "$T/sentinel")
count() { sql "select count(*) from all_jobs"; }
before=$(count)

# timeout(1), where there is one: a tool that hangs instead of failing fails.
to=
command -v timeout > /dev/null 2>&1 && to="timeout 20"
# refused CONNINFO WHY ERE: every tool exits 69 with JQ_DATABASE_URL
# CONNINFO, saying ERE on stderr; nothing is enqueued, run or changed.
refused() {
	_ci=$1 _why=$2 _ere=$3
	for _cmd in "jq-enqueue -q neg {}" "jq-enqueue -q neg" "jq-worker --drain -q neg -- true" \
	    "jq-status $sentinel" "jq-status --wait $sentinel" "jq-retry $idfail" \
	    "jq-cancel $sentinel" "jq-stats" "jq-stats --json"; do
		case $_cmd in
		"jq-enqueue -q neg") printf '{"a":1}\n' > "$T/neg.in" ;;
		*) : > "$T/neg.in" ;;
		esac
		# shellcheck disable=SC2086
		exits 69 "$_why: $_cmd exits 69" env JQ_DATABASE_URL="$_ci" $to $_cmd < "$T/neg.in"
		like "$(cat "$T/err")" "$_ere" "$_why: $_cmd says why"
		unlike "$(cat "$T/out")" "." "$_why: $_cmd prints nothing on stdout"
	done
	is "$(count)" "$before" "$_why: nothing was enqueued"
	is "$(state "$sentinel") $(state "$idfail")" "queued cancelled" "$_why: no job changed"
}
refused "host=localhost port=$P user=pgjq dbname=pgjq sslmode=verify-full sslrootcert='$T/other.crt'" \
	"wrong CA" "certificate verify failed"
refused "host=127.0.0.1 port=$P user=pgjq dbname=pgjq sslmode=verify-full sslrootcert='$T/ca.crt'" \
	"host name mismatch" 'server certificate for "localhost".* does not match host name "127.0.0.1"'
refused "host=localhost port=$P user=pgjq dbname=pgjq sslmode=disable" \
	"no TLS" 'pg_hba.conf rejects connection .*no encryption'

# A password in the connection string is not shown when TLS fails.
exits 69 "wrong CA, with a password in the string: exit 69" \
	env JQ_DATABASE_URL="host=localhost port=$P user=pgjq dbname=pgjq password=tls-s3cr3t sslmode=verify-full sslrootcert='$T/other.crt'" \
	jq-enqueue -q neg '{}'
like "$(cat "$T/err")" "certificate verify failed" "it says why"
unlike "$(cat "$T/err" "$T/out")" "tls-s3cr3t" "without showing the password"
done_testing
