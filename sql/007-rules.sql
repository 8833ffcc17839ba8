-- pgjq schema, version 7: the rules of a live job's row, kept by the
-- table itself.  The functions have always kept them; a row written by
-- hand need not.  A producer may INSERT into jobs directly (roles.sql:
-- the columns of jq-enqueue's COPY), and before this version could write
-- a job born 'running': with no worker and no lease nothing would ever
-- claim, reap or release it, and only the owner could remove it.  Or it
-- could give its row the id of a finished job: finishing it again would
-- then collide with history's key and fail every time, and reap_expired
-- (which takes the oldest expired leases first) would fail with it, for
-- every worker.  A wrong row is now refused when it is written, where the
-- error reaches whoever wrote it.

-- The rules hold for every row written from here on (NOT VALID: the rows
-- already there are checked below, once any that break them have been
-- put right).
ALTER TABLE jobs
	-- A running job has a holder and a lease, so that it is either
	-- finished by its worker or reaped when the lease runs out; no other
	-- job has either.
	ADD CONSTRAINT jobs_running_held
	CHECK (CASE WHEN state = 'running' THEN worker IS NOT NULL AND lease_until IS NOT NULL
	            ELSE worker IS NULL AND lease_until IS NULL END) NOT VALID,
	-- Attempts started: only a running job may be on its last one, so
	-- that claiming a ready job (attempts + 1) can never break this rule
	-- and fail the claim of every job claimed with it.
	ADD CONSTRAINT jobs_attempts_range
	CHECK (attempts >= 0 AND (attempts < max_attempts OR (state = 'running' AND attempts = max_attempts)))
	NOT VALID,
	-- Only a scheduled job waits for dependencies.
	ADD CONSTRAINT jobs_waiting_scheduled
	CHECK (waiting >= 0 AND (waiting = 0 OR state = 'scheduled')) NOT VALID;

-- Only rows written by hand can break the rules.  Each is put right in
-- one step (every row written must keep all three rules now), as the
-- functions would have left it: a "running" job that nobody holds goes
-- back to its queue, as if its worker had been lost.
UPDATE jobs j
   SET state = f.state,
       worker = CASE WHEN f.state = 'running' THEN j.worker END,
       lease_until = CASE WHEN f.state = 'running' THEN j.lease_until END,
       started_at = CASE WHEN f.state = j.state THEN j.started_at END,
       attempts = greatest(least(j.attempts, CASE WHEN f.state = 'running' THEN j.max_attempts
                                                  ELSE j.max_attempts - 1 END), 0),
       waiting = CASE WHEN f.state = 'scheduled' THEN greatest(j.waiting, 0) ELSE 0 END
  FROM (SELECT x.id,
               CASE WHEN x.state = 'running' AND (x.worker IS NULL OR x.lease_until IS NULL)
                    THEN 'queued' ELSE x.state END AS state
          FROM jobs x
         WHERE NOT (CASE WHEN x.state = 'running' THEN x.worker IS NOT NULL AND x.lease_until IS NOT NULL
                         ELSE x.worker IS NULL AND x.lease_until IS NULL END
                    AND x.attempts >= 0
                    AND (x.attempts < x.max_attempts OR (x.state = 'running' AND x.attempts = x.max_attempts))
                    AND x.waiting >= 0 AND (x.waiting = 0 OR x.state = 'scheduled'))) f
 WHERE j.id = f.id;

ALTER TABLE jobs VALIDATE CONSTRAINT jobs_running_held;
ALTER TABLE jobs VALIDATE CONSTRAINT jobs_attempts_range;
ALTER TABLE jobs VALIDATE CONSTRAINT jobs_waiting_scheduled;

-- Ids: a new live job's id must have come from job_id_seq (as the
-- default does, and jq-enqueue, which takes ids for a whole COPY first)
-- and must not be a finished job's.  An id past the sequence would make a
-- later enqueue collide with it; a finished job's could never finish.
-- Checked once per statement, so a COPY pays one index probe a row, and
-- after the rows went in, when any concurrent finish of the same id has
-- committed (the primary key made this insert wait for it; a statement of
-- its own sees that commit at READ COMMITTED).  retry_job()
-- puts a job back under its own id after deleting it from history in the
-- same transaction, which this sees.  It runs with the inserter's rights:
-- a producer reads history and uses job_id_seq anyway (roles.sql).
CREATE FUNCTION check_new_ids() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_id   bigint;
	v_last bigint := coalesce(pg_sequence_last_value('job_id_seq'), 0);
BEGIN
	SELECT n.id INTO v_id FROM new_jobs n
	 WHERE n.id > v_last OR EXISTS (SELECT 1 FROM history h WHERE h.id = n.id)
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'job id % was not taken from job_id_seq, or is a finished job''s', v_id
			USING ERRCODE = 'check_violation',
			      HINT = 'Leave id to its default, or take it with nextval(''job_id_seq'').';
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER jobs_check_ids AFTER INSERT ON jobs
	REFERENCING NEW TABLE AS new_jobs
	FOR EACH STATEMENT EXECUTE FUNCTION check_new_ids();
