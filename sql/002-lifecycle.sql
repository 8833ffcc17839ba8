-- pgjq schema, version 2: what happens to a job after enqueue.  Every
-- transition is a function here, so the tools, and anyone in SQL, move
-- jobs the same way: a finished job always lands in history, always wakes
-- whoever waits for it, and always releases or cancels its dependants.
--
-- Channels (payloads are text):
--   <schema>_new       queue name      jobs arrived or became due
--   <schema>_done      "ID STATE"      a job finished (completed, failed, cancelled)
--   <schema>_cancel    "ID WORKER"     a running job is to be stopped by its worker

-- Workers register and heartbeat, so stats can count live ones and a dead
-- worker's jobs are found by its silence as well as by lease expiry.
CREATE TABLE workers (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name        text NOT NULL,                 -- host:pid, for people
	queues      text[] NOT NULL,
	concurrency integer NOT NULL,
	started_at  timestamptz NOT NULL DEFAULT now(),
	seen_at     timestamptz NOT NULL DEFAULT now()
);

-- Moves a job from jobs to history in its final state, tells listeners,
-- and settles its dependants.  Returns false if the job is not live (or,
-- when p_worker is given, not held by that worker: its lease was lost or
-- it was cancelled), in which case nothing changes.
CREATE FUNCTION finish_job(p_id bigint, p_state text, p_worker bigint,
                           p_result jsonb, p_error text)
RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_dep  record;
	v_why  text;
BEGIN
	IF p_state NOT IN ('completed', 'failed', 'cancelled') THEN
		RAISE EXCEPTION 'not a final state: %', p_state USING ERRCODE = 'invalid_parameter_value';
	END IF;
	WITH d AS (
		DELETE FROM jobs j
		 WHERE j.id = p_id AND (p_worker IS NULL OR (j.worker = p_worker AND j.state = 'running'))
		RETURNING j.*
	)
	INSERT INTO history (id, queue, state, priority, run_at, waiting, after, payload,
	                     attempts, max_attempts, timeout, key, progress, message,
	                     result, error, worker, lease_until, created_at, started_at,
	                     finished_at)
	SELECT d.id, d.queue, p_state, d.priority, d.run_at, d.waiting, d.after, d.payload,
	       d.attempts, d.max_attempts, d.timeout, d.key,
	       CASE WHEN p_state = 'completed' THEN 100 ELSE d.progress END, d.message,
	       p_result, coalesce(p_error, d.error), d.worker, NULL, d.created_at,
	       d.started_at, now()
	  FROM d;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM pg_notify(current_schema() || '_done', p_id || ' ' || p_state);

	-- Dependants, in a statement of their own so that one enqueued
	-- concurrently (it held FOR KEY SHARE on this job until it committed)
	-- is seen here.
	IF p_state = 'completed' THEN
		WITH released AS (
			UPDATE jobs j
			   SET waiting = j.waiting - 1,
			       state = CASE WHEN j.waiting = 1 AND j.run_at <= now() THEN 'queued' ELSE j.state END
			 WHERE j.after @> ARRAY[p_id] AND j.after IS NOT NULL AND j.waiting > 0
			RETURNING j.queue, j.state
		)
		SELECT string_agg(DISTINCT r.queue, ',') AS queues INTO v_dep FROM released r WHERE r.state = 'queued';
		IF v_dep.queues IS NOT NULL THEN
			PERFORM pg_notify(current_schema() || '_new', q)
			   FROM unnest(string_to_array(v_dep.queues, ',')) q;
		END IF;
	ELSE
		v_why := format('dependency %s %s', p_id,
		                CASE p_state WHEN 'failed' THEN 'failed' ELSE 'was cancelled' END);
		FOR v_dep IN SELECT j.id FROM jobs j WHERE j.after @> ARRAY[p_id] AND j.after IS NOT NULL
		              AND j.state <> 'running' ORDER BY j.id LOOP
			PERFORM finish_job(v_dep.id, 'cancelled', NULL, NULL, v_why);
		END LOOP;
	END IF;
	RETURN true;
END
$$;

-- Cancels a job.  A scheduled or queued job is cancelled at once; a
-- running one is marked, and its worker is told to stop the handler and
-- then finishes it as cancelled.  Returns the job's state afterwards
-- ('cancelled', 'running' while its worker stops it, or the final state
-- it already had), or NULL if there is no such job.
CREATE FUNCTION cancel_job(p_id bigint) RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_state  text;
	v_worker bigint;
BEGIN
	SELECT j.state, j.worker INTO v_state, v_worker FROM jobs j WHERE j.id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		SELECT h.state INTO v_state FROM history h WHERE h.id = p_id;
		RETURN v_state;
	END IF;
	IF v_state = 'running' THEN
		UPDATE jobs SET cancel = true WHERE id = p_id;
		PERFORM pg_notify(current_schema() || '_cancel', p_id || ' ' || v_worker);
		RETURN 'running';
	END IF;
	PERFORM finish_job(p_id, 'cancelled', NULL, NULL, 'cancelled');
	RETURN 'cancelled';
END
$$;

-- Puts a failed or cancelled job back in its queue with a fresh set of
-- attempts.  Returns 'queued' when it did; otherwise the state that kept
-- it ('completed', or a live state), 'key-taken' if a live job now holds
-- its key, or NULL if there is no such job.
CREATE FUNCTION retry_job(p_id bigint) RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_job history;
BEGIN
	SELECT * INTO v_job FROM history h WHERE h.id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		SELECT j.state INTO v_job.state FROM jobs j WHERE j.id = p_id;
		RETURN v_job.state;
	END IF;
	IF v_job.state NOT IN ('failed', 'cancelled') THEN
		RETURN v_job.state;
	END IF;
	IF v_job.key IS NOT NULL AND EXISTS (SELECT 1 FROM jobs j WHERE j.queue = v_job.queue AND j.key = v_job.key) THEN
		RETURN 'key-taken';
	END IF;
	DELETE FROM history WHERE id = p_id;
	-- Dependencies were settled when it was first enqueued; a retry runs it now.
	INSERT INTO jobs (id, queue, state, priority, run_at, waiting, after, payload, attempts,
	                  max_attempts, timeout, key, error, created_at)
	VALUES (v_job.id, v_job.queue, 'queued', v_job.priority, now(), 0, v_job.after,
	        v_job.payload, 0, v_job.max_attempts, v_job.timeout, v_job.key, v_job.error,
	        v_job.created_at);
	RETURN 'queued';
END
$$;
