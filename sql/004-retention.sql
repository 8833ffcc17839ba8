-- pgjq schema, version 4: keeping the tables small without anyone
-- scheduling anything.  Finished jobs stay in history for a while, for
-- jq-status, jq-retry and jq-stats; then the workers' maintenance removes
-- them in small batches.  Workers that vanished long ago are forgotten.

-- A worker renews its leases, and says it is alive, every third of its
-- lease; one silent for a whole lease is gone.  jq-stats counts live
-- workers by it.
ALTER TABLE workers ADD COLUMN lease interval NOT NULL DEFAULT '30 seconds';

-- Replaces register_worker() of version 3 (dropped first: it takes a lease now).
DROP FUNCTION register_worker(text, text[], integer);
CREATE FUNCTION register_worker(p_name text, p_queues text[], p_concurrency integer,
                                p_lease interval)
RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
	INSERT INTO workers (name, queues, concurrency, lease)
	VALUES (p_name, p_queues, p_concurrency, p_lease)
	RETURNING id
$$;

-- Retention walks history oldest first within one final state, so the
-- long-kept failures never stand in the way of removing completed jobs.
DROP INDEX history_finished;
CREATE INDEX history_state_finished ON history (state, finished_at);

-- Removes up to p_batch finished jobs older than their state's keep time
-- (p_keep_completed for completed ones, p_keep_failed for failed and
-- cancelled ones) and forgets workers silent for a day.  Only one caller
-- at a time does anything: the others get -1 at once rather than queue
-- behind it.  Returns how many jobs it removed; the caller calls again
-- while that is p_batch.  Short transactions keep the locks brief and
-- let vacuum reuse the space as it goes.
CREATE FUNCTION prune_history(p_keep_completed interval, p_keep_failed interval,
                              p_batch integer)
RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_n     integer := 0;
	v_more  integer;
	v_state text;
BEGIN
	IF NOT pg_try_advisory_xact_lock(7367281, hashtext(current_schema() || '/prune')) THEN
		RETURN -1;
	END IF;
	FOREACH v_state IN ARRAY ARRAY['completed', 'failed', 'cancelled'] LOOP
		EXIT WHEN v_n >= p_batch;
		DELETE FROM history h
		 WHERE h.id IN (SELECT o.id FROM history o
		                 WHERE o.state = v_state
		                   AND o.finished_at < now() - CASE v_state WHEN 'completed'
		                                                THEN p_keep_completed ELSE p_keep_failed END
		                 ORDER BY o.finished_at
		                 LIMIT p_batch - v_n);
		GET DIAGNOSTICS v_more = ROW_COUNT;
		v_n := v_n + v_more;
	END LOOP;
	DELETE FROM workers w
	 WHERE w.seen_at < now() - interval '1 day'
	   AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.worker = w.id AND j.state = 'running');
	RETURN v_n;
END
$$;
