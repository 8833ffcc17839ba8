-- pgjq schema, version 6: a worker's turn in one transaction.  With fsync
-- on, every commit waits for a WAL flush; a worker that committed each
-- outcome and each claim on its own was bound by that wait, whatever its
-- concurrency.  finish_and_claim() records all the outcomes a worker has
-- ready and claims jobs for its free slots in one call, so one commit (one
-- flush) serves them all and throughput grows with the number of slots.

-- Records outcomes, element i of each array describing one: p_kinds[i] is
-- 'completed' (p_results[i] the result), 'failed' (p_errors[i],
-- p_permanent[i], p_backoffs[i] as fail_attempt takes them) or 'released'
-- (put back unfinished, as release_job).  Each has exactly the meaning of
-- the function named, and a stale one (the lease was lost) changes nothing.
-- Then claims up to p_limit jobs as claim_jobs (none if p_limit is 0).
--
-- Returns first one row per outcome, in order: its id and the job's new
-- state ('completed', 'scheduled', 'failed', 'cancelled', or 'queued' for a
-- released job), NULL if the worker no longer held the job; then one row
-- per claimed job, state 'claimed', with what claim_jobs returns.
CREATE FUNCTION finish_and_claim(p_worker bigint, p_ids bigint[], p_attempts integer[],
                                 p_kinds text[], p_results jsonb[], p_errors text[],
                                 p_permanent boolean[], p_backoffs interval[],
                                 p_queues text[], p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, queue text, payload jsonb, attempt integer, max_attempts integer,
               timeout interval, state text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_n integer := coalesce(array_length(p_ids, 1), 0);
BEGIN
	IF coalesce(array_length(p_attempts, 1), 0) <> v_n OR coalesce(array_length(p_kinds, 1), 0) <> v_n
	   OR coalesce(array_length(p_results, 1), 0) <> v_n OR coalesce(array_length(p_errors, 1), 0) <> v_n
	   OR coalesce(array_length(p_permanent, 1), 0) <> v_n
	   OR coalesce(array_length(p_backoffs, 1), 0) <> v_n THEN
		RAISE EXCEPTION 'finish_and_claim: the outcome arrays differ in length'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR v_i IN 1 .. v_n LOOP
		id := p_ids[v_i];
		CASE p_kinds[v_i]
		WHEN 'completed' THEN
			state := CASE WHEN complete_attempt(p_ids[v_i], p_worker, p_attempts[v_i], p_results[v_i])
			              THEN 'completed' END;
		WHEN 'failed' THEN
			state := fail_attempt(p_ids[v_i], p_worker, p_attempts[v_i], p_errors[v_i],
			                      p_permanent[v_i], p_backoffs[v_i]);
		WHEN 'released' THEN
			state := CASE WHEN release_job(p_ids[v_i], p_worker, p_attempts[v_i]) THEN 'queued' END;
		ELSE
			RAISE EXCEPTION 'finish_and_claim: not a kind of outcome: %', p_kinds[v_i]
				USING ERRCODE = 'invalid_parameter_value';
		END CASE;
		RETURN NEXT;
	END LOOP;
	IF p_limit > 0 THEN
		RETURN QUERY
		SELECT c.id, c.queue, c.payload, c.attempt, c.max_attempts, c.timeout, 'claimed'::text
		  FROM claim_jobs(p_worker, p_queues, p_limit, p_lease) c;
	END IF;
END
$$;
