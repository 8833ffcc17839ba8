-- pgjq schema, version 3: the worker's side of the lifecycle: claiming,
-- leases, failed attempts and their backoff, and finding the jobs of
-- workers that died.

-- Registers a worker; its id marks the jobs it holds.
CREATE FUNCTION register_worker(p_name text, p_queues text[], p_concurrency integer)
RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
	INSERT INTO workers (name, queues, concurrency) VALUES (p_name, p_queues, p_concurrency)
	RETURNING id
$$;

-- Claims up to p_limit ready jobs of the queues, oldest and most urgent
-- first, skipping rows other workers are claiming right now.  Scheduled
-- jobs that have come due are made ready first (skipping locked ones too,
-- so workers never wait on each other here).
CREATE FUNCTION claim_jobs(p_worker bigint, p_queues text[], p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, queue text, payload jsonb, attempt integer,
               max_attempts integer, timeout interval)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	UPDATE jobs j SET state = 'queued'
	 WHERE j.id IN (SELECT d.id FROM jobs d
	                 WHERE d.state = 'scheduled' AND d.waiting = 0 AND d.run_at <= now()
	                   AND d.queue = ANY (p_queues)
	                 ORDER BY d.run_at LIMIT 1000
	                 FOR UPDATE SKIP LOCKED);
	-- Each queue's best rows come from jobs_claim in order ("queue = ANY"
	-- would sort every queued row instead), skipping rows other workers
	-- are claiming; the few found are merged and the best p_limit taken.
	-- With several queues, the rows not taken stay locked only until this
	-- short transaction ends.
	RETURN QUERY
	WITH c AS (
		SELECT b.id
		  FROM (SELECT DISTINCT unnest(p_queues)) q(name),
		       LATERAL (SELECT x.id, x.priority, x.run_at FROM jobs x
		                 WHERE x.state = 'queued' AND x.queue = q.name
		                 ORDER BY x.priority, x.run_at, x.id
		                 LIMIT p_limit
		                 FOR UPDATE SKIP LOCKED) b
		 ORDER BY b.priority, b.run_at, b.id
		 LIMIT p_limit
	)
	UPDATE jobs j
	   SET state = 'running', attempts = j.attempts + 1, worker = p_worker,
	       lease_until = now() + p_lease, started_at = now(), progress = NULL,
	       message = NULL, cancel = false
	  FROM c WHERE j.id = c.id
	RETURNING j.id, j.queue, j.payload, j.attempts, j.max_attempts, j.timeout;
END
$$;

-- When the next scheduled job of the queues is due (NULL: none).
CREATE FUNCTION next_due(p_queues text[]) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	SELECT min(run_at) FROM jobs
	 WHERE state = 'scheduled' AND waiting = 0 AND queue = ANY (p_queues)
$$;

-- Renews the leases of the jobs a worker still runs and says it is alive.
-- Returns the ids among them that someone asked to cancel, so a worker
-- that missed the NOTIFY (it was reconnecting) still stops them.
--
-- A job marked as ours that is not in p_ids is a claim whose commit the
-- worker never heard of (the connection broke before the reply came).
-- Nothing runs it: it goes back to the queue at once, the attempt not
-- counted, instead of waiting for its lease to run out.
CREATE FUNCTION renew_leases(p_worker bigint, p_ids bigint[], p_lease interval)
RETURNS SETOF bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	UPDATE workers SET seen_at = now() WHERE id = p_worker;
	PERFORM pg_notify(current_schema() || '_new', g.queue)
	   FROM (SELECT DISTINCT r.queue FROM release_unknown(p_worker, p_ids) r) g;
	RETURN QUERY
	UPDATE jobs j SET lease_until = now() + p_lease
	 WHERE j.id = ANY (p_ids) AND j.worker = p_worker AND j.state = 'running'
	RETURNING CASE WHEN j.cancel THEN j.id END;
END
$$;

-- Puts back the jobs marked as the worker's that it does not know it
-- holds; returns their queues.  jobs_lease keeps this to the running rows.
CREATE FUNCTION release_unknown(p_worker bigint, p_ids bigint[])
RETURNS TABLE (queue text)
LANGUAGE sql SET search_path FROM CURRENT AS $$
	UPDATE jobs j SET state = 'queued', attempts = greatest(j.attempts - 1, 0), worker = NULL,
	                  lease_until = NULL, started_at = NULL, progress = NULL, message = NULL
	 WHERE j.state = 'running' AND j.lease_until IS NOT NULL AND j.worker = p_worker
	   AND j.id <> ALL (p_ids)
	RETURNING j.queue
$$;

-- A worker leaving: whatever is still marked as its own goes back to the
-- queue, and its row goes.
CREATE FUNCTION unregister_worker(p_worker bigint) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	PERFORM pg_notify(current_schema() || '_new', g.queue)
	   FROM (SELECT DISTINCT r.queue FROM release_unknown(p_worker, '{}') r) g;
	DELETE FROM workers WHERE id = p_worker;
END
$$;

-- Records a completed attempt.  Returns false if the worker no longer
-- holds this attempt of the job (its lease expired and the job was taken
-- over, perhaps by another slot of the same worker), so the stale outcome
-- changes nothing.
CREATE FUNCTION complete_attempt(p_id bigint, p_worker bigint, p_attempt integer, p_result jsonb)
RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	PERFORM 1 FROM jobs j
	 WHERE j.id = p_id AND j.worker = p_worker AND j.state = 'running' AND j.attempts = p_attempt
	   FOR UPDATE;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	RETURN finish_job(p_id, 'completed', p_worker, p_result, NULL);
END
$$;

-- Records a failed attempt.  With attempts left (and not p_permanent) the
-- job is scheduled again after p_backoff; otherwise it is failed for
-- good.  Returns the job's new state, or NULL if the worker no longer
-- holds it (its lease expired and another worker took it over).
CREATE FUNCTION fail_attempt(p_id bigint, p_worker bigint, p_attempt integer, p_error text,
                             p_permanent boolean, p_backoff interval)
RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_job jobs;
BEGIN
	SELECT * INTO v_job FROM jobs j
	 WHERE j.id = p_id AND j.worker = p_worker AND j.state = 'running' AND j.attempts = p_attempt
	   FOR UPDATE;
	IF NOT FOUND THEN
		RETURN NULL;
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

-- Puts a job its worker did not finish (shutting down) back in the queue;
-- the interrupted attempt does not count.
CREATE FUNCTION release_job(p_id bigint, p_worker bigint, p_attempt integer) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	UPDATE jobs SET state = 'queued', attempts = greatest(attempts - 1, 0), worker = NULL,
	                lease_until = NULL, started_at = NULL, progress = NULL, message = NULL
	 WHERE id = p_id AND worker = p_worker AND state = 'running' AND attempts = p_attempt;
	IF FOUND THEN
		PERFORM pg_notify(current_schema() || '_new', queue) FROM jobs WHERE id = p_id;
	END IF;
	RETURN FOUND;
END
$$;

-- Jobs whose lease ran out: their worker died (kill -9, lost host) or
-- lost the database for longer than the lease.  The attempt counts; a
-- job with attempts left is ready again at once.  Whichever worker calls
-- this first does the work; the others skip the rows it has locked.
CREATE FUNCTION reap_expired() RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_job  record;
	v_n    integer := 0;
	v_why  constant text := 'worker lost: its lease expired';
BEGIN
	FOR v_job IN SELECT j.id, j.worker, j.attempts, j.max_attempts, j.cancel FROM jobs j
	              WHERE j.state = 'running' AND j.lease_until < now()
	              ORDER BY j.lease_until LIMIT 1000
	              FOR UPDATE SKIP LOCKED LOOP
		IF v_job.cancel THEN
			PERFORM finish_job(v_job.id, 'cancelled', NULL, NULL, 'cancelled; ' || v_why);
		ELSIF v_job.attempts >= v_job.max_attempts THEN
			PERFORM finish_job(v_job.id, 'failed', NULL, NULL, v_why);
		ELSE
			UPDATE jobs SET state = 'queued', error = v_why, worker = NULL, lease_until = NULL
			 WHERE id = v_job.id;
			PERFORM pg_notify(current_schema() || '_new', queue) FROM jobs WHERE id = v_job.id;
		END IF;
		v_n := v_n + 1;
	END LOOP;
	-- Workers silent for a long time are gone; their rows only mislead.
	DELETE FROM workers WHERE seen_at < now() - interval '1 hour';
	RETURN v_n;
END
$$;
