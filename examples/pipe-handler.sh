#!/bin/sh
# pipe-handler.sh: a persistent handler for jq-worker --pipe, in POSIX sh.
#
#	jq-worker -q demo -c 4 --pipe -- examples/pipe-handler.sh
#
# jq-worker starts it once per slot and writes one job per line on its
# stdin, such as
#	{"id":17,"queue":"demo","attempt":1,"max_attempts":3,"payload":{"n": 1}}
# with "id" always first and "payload" always last.  It answers each job
# with one line on stdout, reports progress the same way, and exits when
# stdin ends.
#
# What it cannot do: sh has no JSON parser.  It takes the id out of the
# line with the shell's own pattern matching (no process per job: that is
# the point of --pipe), but it cannot read the payload reliably, nor
# escape arbitrary text into an answer, so every job gets the same fixed
# result.  A handler that needs its payload wants a language with a JSON
# parser (see pipe-handler.py), or jq(1) once per job, and then a process
# per job costs what the exec handler costs.
while IFS= read -r line; do
	id=${line#'{"id":'}
	id=${id%%,*}
	case $id in
	'' | *[!0-9]*)
		# Without its id no answer can be given; exiting fails the job.
		echo "pipe-handler.sh: no job id in: $line" >&2
		exit 1 ;;
	esac
	printf '{"id":%s,"progress":50,"message":"half way"}\n' "$id"
	printf '{"id":%s,"status":"completed","result":{"handled_by":%d}}\n' "$id" "$$"
done
