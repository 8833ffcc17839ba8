-- pgjq schema, version 9: an outcome sent twice is told as recorded.  A
-- worker whose connection goes silent (a link down, a frozen server)
-- gives up on the statement in flight without knowing whether it
-- committed, keeps its outcomes and sends them again on a new connection.
-- If the first send did commit, the job is no longer running under that
-- worker, and the functions below used to say so as they say "your lease
-- ran out and another worker took the job over": the worker then warned
-- "lease lost" for a job it had in fact finished.  Now a second send of
-- the very outcome already recorded (same worker, same attempt) returns
-- what the first one did, and changes nothing.  The worker ids come from
-- a sequence, so no other worker's attempt can match.

-- Replaces complete_attempt() of version 3.
-- As complete_attempt() of version 3; also true if this worker's
-- completion of this attempt is already in history.
CREATE OR REPLACE FUNCTION complete_attempt(p_id bigint, p_worker bigint, p_attempt integer,
                                            p_result jsonb)
RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	PERFORM 1 FROM jobs j
	 WHERE j.id = p_id AND j.worker = p_worker AND j.state = 'running' AND j.attempts = p_attempt
	   FOR UPDATE;
	IF NOT FOUND THEN
		RETURN EXISTS (SELECT 1 FROM history h
		                WHERE h.id = p_id AND h.worker = p_worker AND h.attempts = p_attempt
		                  AND h.state = 'completed');
	END IF;
	RETURN finish_job(p_id, 'completed', p_worker, p_result, NULL);
END
$$;

-- Replaces fail_attempt() of version 3.
-- As fail_attempt() of version 3; also returns the state a first send of
-- this failure left: failed or cancelled for good (in history, under this
-- worker and attempt, with this error), or scheduled again with this
-- error.  The error tells a first send from the reaper, which finishes or
-- puts back an expired job with an error of its own; a job claimed again
-- since has a higher attempt number.
CREATE OR REPLACE FUNCTION fail_attempt(p_id bigint, p_worker bigint, p_attempt integer,
                                        p_error text, p_permanent boolean, p_backoff interval)
RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_job jobs;
	v_state text;
BEGIN
	SELECT * INTO v_job FROM jobs j
	 WHERE j.id = p_id AND j.worker = p_worker AND j.state = 'running' AND j.attempts = p_attempt
	   FOR UPDATE;
	IF NOT FOUND THEN
		SELECT h.state INTO v_state FROM history h
		 WHERE h.id = p_id AND h.worker = p_worker AND h.attempts = p_attempt
		   AND ((h.state = 'failed' AND (p_error IS NULL OR h.error = p_error))
		        OR (h.state = 'cancelled' AND h.error = coalesce(p_error, 'cancelled')));
		IF FOUND THEN
			RETURN v_state;
		END IF;
		RETURN (SELECT j.state FROM jobs j
		         WHERE j.id = p_id AND j.state = 'scheduled' AND j.worker IS NULL
		           AND j.attempts = p_attempt AND j.error IS NOT DISTINCT FROM p_error);
	END IF;
	IF v_job.cancel THEN
		PERFORM finish_job(p_id, 'cancelled', p_worker, NULL, coalesce(p_error, 'cancelled'));
		RETURN 'cancelled';
	END IF;
	IF p_permanent OR v_job.attempts >= v_job.max_attempts THEN
		PERFORM finish_job(p_id, 'failed', p_worker, NULL, p_error);
		RETURN 'failed';
	END IF;
	UPDATE jobs SET state = 'scheduled', run_at = now() + p_backoff, error = p_error,
	                worker = NULL, lease_until = NULL
	 WHERE id = p_id;
	RETURN 'scheduled';
END
$$;
