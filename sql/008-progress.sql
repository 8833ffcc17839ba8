-- pgjq schema, version 8: progress travels with the turn.  A worker wrote
-- each job's progress with an UPDATE and a commit of its own, at most
-- every 100 ms per job and once more when the job ended: a handler that
-- reports progress doubled the commits of a short job, and 16 busy slots
-- reporting made 160 commits a second.  This finish_and_claim() also
-- takes the progress of the jobs whose reports are due, running or ending
-- in this very call, so all of a turn is still one statement and one
-- commit.

-- Replaces nothing: an overload beside finish_and_claim() of version 6, which it calls.
-- As finish_and_claim() of version 6, after first setting progress
-- p_progress[i] and message p_messages[i] on job p_progress_ids[i], if the
-- worker still holds it, and telling channel p_channel (jq-status
-- --follow listens there) "ID PCT [MESSAGE]" for each job it set.
CREATE FUNCTION finish_and_claim(p_worker bigint, p_ids bigint[], p_attempts integer[],
                                 p_kinds text[], p_results jsonb[], p_errors text[],
                                 p_permanent boolean[], p_backoffs interval[],
                                 p_queues text[], p_limit integer, p_lease interval,
                                 p_progress_ids bigint[], p_progress smallint[],
                                 p_messages text[], p_channel text)
RETURNS TABLE (id bigint, queue text, payload jsonb, attempt integer, max_attempts integer,
               timeout interval, state text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_n integer := coalesce(array_length(p_progress_ids, 1), 0);
	v_told integer;
BEGIN
	IF coalesce(array_length(p_progress, 1), 0) <> v_n
	   OR coalesce(array_length(p_messages, 1), 0) <> v_n THEN
		RAISE EXCEPTION 'finish_and_claim: the progress arrays differ in length'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF v_n > 0 THEN
		-- Before the outcomes: a job that ends here keeps its last message.
		WITH set_progress AS (
			UPDATE jobs j SET progress = p.pct, message = p.msg
			  FROM unnest(p_progress_ids, p_progress, p_messages) AS p(job, pct, msg)
			 WHERE j.id = p.job AND j.worker = p_worker AND j.state = 'running'
			RETURNING j.id AS job, p.pct, p.msg)
		SELECT count(pg_notify(p_channel, s.job || ' ' || s.pct || coalesce(' ' || s.msg, '')))
		  INTO v_told FROM set_progress s;
	END IF;
	RETURN QUERY
	SELECT f.id, f.queue, f.payload, f.attempt, f.max_attempts, f.timeout, f.state
	  FROM finish_and_claim(p_worker, p_ids, p_attempts, p_kinds, p_results, p_errors,
	                        p_permanent, p_backoffs, p_queues, p_limit, p_lease) f;
END
$$;
