#!/usr/bin/env python3
"""pipe-handler.py: a persistent handler for jq-worker --pipe, in Python 3
with the standard library only.

    jq-worker -q words -c 4 --pipe -- examples/pipe-handler.py

jq-worker starts it once per slot and sends it job after job, one JSON
object per line on stdin; it answers each with one JSON line on stdout,
and exits when stdin ends.  The work here stands in for real work: it
counts the words of the payload's "text".  Costly set-up (imports,
connections, models) belongs before the loop, where it is paid once per
process instead of once per job.
"""
import json
import os
import sys


class BadPayload(Exception):
    """A payload that no number of attempts can handle."""


def say(**fields):
    # One line per message, flushed at once: the worker is waiting for it.
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def work(job, progress):
    payload = job["payload"]
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        raise BadPayload('the payload has no "text" string')
    progress(50, "counting")
    return {"words": len(payload["text"].split()), "pid": os.getpid()}


def main():
    for line in sys.stdin:
        job = json.loads(line)
        job_id = job["id"]

        def progress(pct, message=None):
            say(id=job_id, progress=pct, message=message)

        try:
            result = work(job, progress)
        except BadPayload as e:
            say(id=job_id, status="failed", error=str(e), retry=False)
        except Exception as e:  # anything else may pass on another attempt
            say(id=job_id, status="failed", error=f"{type(e).__name__}: {e}")
        else:
            say(id=job_id, status="completed", result=result)


if __name__ == "__main__":
    main()
