-- pgjq schema, version 10: a set-based turn and a local queue.
--
-- Two costs bounded a worker before this version.  finish_and_claim()
-- recorded each outcome with a call of its own (a locking SELECT, a
-- DELETE, an INSERT, a look for dependants, each planned and run per
-- job), so the server spent about 450 us of CPU per job.  And a slot that
-- freed waited for a round trip and a commit before it had work again.
--
-- turn() records a whole turn with set operations: one statement finds
-- and locks every job the worker still holds, moves the finished ones to
-- history in one DELETE ... RETURNING feeding one INSERT, and updates the
-- rest in one UPDATE; dependants take one statement more.
--
-- A worker may now claim ahead of its free slots.  A job it holds but has
-- not started is 'claimed': leased to that worker, its attempt not yet
-- counted, started_at empty.  Only when a handler gets it does it become
-- 'running' (told in the next turn, with how long ago it started, so
-- started_at is the handler's start).  A claimed job whose worker dies
-- comes back when its lease runs out with its attempts untouched; a
-- cancelled one is cancelled at once.

ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
	CHECK (state IN ('scheduled', 'queued', 'claimed', 'running'));
-- A claimed job has a holder and a lease, as a running one does.
ALTER TABLE jobs DROP CONSTRAINT jobs_running_held;
ALTER TABLE jobs ADD CONSTRAINT jobs_running_held
	CHECK (CASE WHEN state IN ('running', 'claimed') THEN worker IS NOT NULL AND lease_until IS NOT NULL
	            ELSE worker IS NULL AND lease_until IS NULL END);
DROP INDEX jobs_lease;
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state IN ('running', 'claimed');
-- Jobs waiting for dependencies: few or none, so a turn can tell in one
-- probe that none waits for the jobs it finished.
CREATE INDEX jobs_waiting ON jobs (id) WHERE waiting > 0;

-- Records a turn's reports and claims jobs, in one call and so one commit.
--
-- Element i of the report arrays is about job p_ids[i], attempt
-- p_attempts[i] (for a claimed job: the attempt it is to be).  p_kinds[i]:
--   'running'    its handler has it (p_ran[i] ago); progress only, once told
--   'completed'  p_results[i] is the result
--   'failed'     p_errors[i], p_permanent[i], p_backoffs[i] as fail_attempt
--   'released'   put back unfinished (shutting down); the attempt not counted
-- p_progress[i], when not NULL, sets the job's progress and message
-- p_messages[i], and is told on p_channel as "ID PCT [MESSAGE]".  Each
-- job appears at most once.  Meanings are those of complete_attempt(),
-- fail_attempt() and release_job(), version 9: a report of a job the
-- worker no longer holds changes nothing, and one sent twice is told as
-- the first send left it.
--
-- Then claims up to p_run jobs to start now ('running') and up to p_ahead
-- more for the worker's local queue ('claimed'), best first.
--
-- Returns one row per report, in order, with the job's state afterwards
-- (NULL if the worker no longer held it); then one row per claimed job,
-- its state 'running' or 'claimed'; then, if fewer were found than
-- asked, a row of state 'due' whose timeout is the time until the next
-- scheduled job is due (NULL: none).
CREATE FUNCTION turn(p_worker bigint, p_ids bigint[], p_attempts integer[], p_kinds text[],
                     p_ran interval[], p_results jsonb[], p_errors text[],
                     p_permanent boolean[], p_backoffs interval[], p_progress smallint[],
                     p_messages text[], p_channel text,
                     p_queues text[], p_run integer, p_ahead integer, p_lease interval)
RETURNS TABLE (id bigint, queue text, payload jsonb, attempt integer, max_attempts integer,
               timeout interval, priority integer, state text)
LANGUAGE plpgsql SET search_path FROM CURRENT
-- Every statement here reaches the rows of jobs it needs by an index, a
-- few hundred at most.  The cached generic plans cannot see how long the
-- arrays are, and took a thousand ids for a few: they hashed a scan of
-- the whole table, evaluating "= ANY" on every row (a profile showed it
-- as the costliest step of a turn).
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
#variable_conflict use_column
DECLARE
	v_n       integer := coalesce(cardinality(p_ids), 0);
	v_ords    integer[];
	v_states  text[];
	v_done    bigint[];
	v_dead    bigint[];
	v_dead_st text[];
	v_queues  text[];
	v_dep     record;
	v_got     integer;
	v_ids     bigint[];
BEGIN
	IF coalesce(cardinality(p_attempts), 0) <> v_n OR coalesce(cardinality(p_kinds), 0) <> v_n
	   OR coalesce(cardinality(p_ran), 0) <> v_n OR coalesce(cardinality(p_results), 0) <> v_n
	   OR coalesce(cardinality(p_errors), 0) <> v_n OR coalesce(cardinality(p_permanent), 0) <> v_n
	   OR coalesce(cardinality(p_backoffs), 0) <> v_n OR coalesce(cardinality(p_progress), 0) <> v_n
	   OR coalesce(cardinality(p_messages), 0) <> v_n THEN
		RAISE EXCEPTION 'turn: the report arrays differ in length'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT 1 FROM unnest(p_kinds) k
	            WHERE k IS NULL OR k NOT IN ('running', 'completed', 'failed', 'released')) THEN
		RAISE EXCEPTION 'turn: not a kind of report: %',
			(SELECT k FROM unnest(p_kinds) k
			  WHERE k IS NULL OR k NOT IN ('running', 'completed', 'failed', 'released') LIMIT 1)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	IF v_n > 0 THEN
		WITH r AS (
			SELECT * FROM unnest(p_ids, p_attempts, p_kinds, p_ran, p_results, p_errors,
			                     p_permanent, p_backoffs, p_progress, p_messages)
			       WITH ORDINALITY AS r(id, attempt, kind, ran, result, error, permanent,
			                            backoff, pct, msg, ord)
		),
		-- The jobs this worker still holds in the reported attempt, locked,
		-- each with its fate.  A cancel asked while it ran wins over a
		-- failure and over a release, as it would have had it come sooner.
		held AS (
			SELECT j.id, j.queue, r.ord::integer AS ord, r.attempt, r.result, r.error, r.backoff, r.pct, r.msg,
			       CASE WHEN j.state = 'claimed' THEN now() - coalesce(r.ran, '0') ELSE j.started_at END
			           AS started_at,
			       CASE r.kind
			       WHEN 'completed' THEN 'completed'
			       WHEN 'running' THEN 'running'
			       WHEN 'released' THEN CASE WHEN j.cancel THEN 'cancelled' ELSE 'queued' END
			       ELSE CASE WHEN j.cancel THEN 'cancelled'
			                 WHEN r.permanent OR r.attempt >= j.max_attempts THEN 'failed'
			                 ELSE 'scheduled' END
			       END AS fate
			  FROM r,
			       -- One probe of jobs_pkey per report, whatever the statistics
			       -- say: LATERAL, and nothing but the id in its condition
			       -- (OFFSET 0 keeps the conditions below out).  A condition on
			       -- state would offer jobs_lease, all of whose rows a planner
			       -- that has seen none there would read for every report.
			       LATERAL (SELECT x.id, x.queue, x.state, x.started_at, x.cancel, x.max_attempts,
			                       x.worker, x.attempts
			                  FROM jobs x WHERE x.id = r.id OFFSET 0 FOR UPDATE) j
			 WHERE j.worker = p_worker AND j.state IN ('claimed', 'running')
			   AND j.attempts + CASE WHEN j.state = 'claimed' THEN 1 ELSE 0 END = r.attempt
		),
		moved AS (
			DELETE FROM jobs j USING held h
			 WHERE j.id = h.id AND h.fate IN ('completed', 'failed', 'cancelled')
			RETURNING j.*, h.fate, h.attempt AS new_attempts, h.started_at AS new_started_at,
			          h.result AS new_result, h.error AS new_error, h.pct, h.msg
		),
		kept AS (
			INSERT INTO history (id, queue, state, priority, run_at, waiting, after, payload,
			                     attempts, max_attempts, timeout, key, progress, message,
			                     result, error, worker, lease_until, created_at, started_at,
			                     finished_at)
			SELECT m.id, m.queue, m.fate, m.priority, m.run_at, m.waiting, m.after, m.payload,
			       m.new_attempts, m.max_attempts, m.timeout, m.key,
			       CASE WHEN m.fate = 'completed' THEN 100 WHEN m.pct IS NOT NULL THEN m.pct
			            ELSE m.progress END,
			       CASE WHEN m.pct IS NOT NULL THEN m.msg ELSE m.message END,
			       m.new_result,
			       CASE WHEN m.fate = 'cancelled' THEN coalesce(m.new_error, 'cancelled')
			            ELSE coalesce(m.new_error, m.error) END,
			       m.worker, NULL, m.created_at, m.new_started_at, now()
			  FROM moved m
		),
		changed AS (
			UPDATE jobs j
			   SET state = h.fate,
			       attempts = CASE WHEN h.fate = 'queued' THEN h.attempt - 1 ELSE h.attempt END,
			       started_at = CASE WHEN h.fate = 'queued' THEN NULL ELSE h.started_at END,
			       run_at = CASE WHEN h.fate = 'scheduled' THEN now() + h.backoff ELSE j.run_at END,
			       error = CASE WHEN h.fate = 'scheduled' THEN h.error ELSE j.error END,
			       worker = CASE WHEN h.fate = 'running' THEN j.worker END,
			       lease_until = CASE WHEN h.fate = 'running' THEN j.lease_until END,
			       progress = CASE WHEN h.fate = 'queued' THEN NULL WHEN h.pct IS NOT NULL THEN h.pct
			                       ELSE j.progress END,
			       message = CASE WHEN h.fate = 'queued' THEN NULL WHEN h.pct IS NOT NULL THEN h.msg
			                      ELSE j.message END
			  FROM held h
			 WHERE j.id = h.id AND h.fate IN ('running', 'scheduled', 'queued')
			RETURNING j.id
		)
		SELECT array_agg(h.ord ORDER BY h.ord), array_agg(h.fate ORDER BY h.ord),
		       array_agg(h.id) FILTER (WHERE h.fate = 'completed'),
		       array_agg(h.id) FILTER (WHERE h.fate IN ('failed', 'cancelled')),
		       array_agg(h.fate) FILTER (WHERE h.fate IN ('failed', 'cancelled')),
		       array_agg(DISTINCT h.queue) FILTER (WHERE h.fate = 'queued')
		  INTO v_ords, v_states, v_done, v_dead, v_dead_st, v_queues
		  FROM held h;

		PERFORM pg_notify(current_schema() || '_done', d.id || ' ' || d.st)
		   FROM unnest(v_done || v_dead,
		               array_fill('completed'::text, ARRAY[coalesce(cardinality(v_done), 0)])
		                                 || v_dead_st) d(id, st);
		PERFORM pg_notify(current_schema() || '_new', q) FROM unnest(v_queues) q;
		PERFORM pg_notify(p_channel, r.id || ' ' || r.pct || coalesce(' ' || r.msg, ''))
		   FROM unnest(p_ids, p_progress, p_messages) WITH ORDINALITY r(id, pct, msg, ord)
		  WHERE r.pct IS NOT NULL AND r.ord = ANY (v_ords);

		-- Reports of jobs no longer held: a second send of what a first
		-- send recorded is told as that send left it (version 9's rules).
		IF coalesce(cardinality(v_ords), 0) < v_n THEN
			SELECT array_agg(x.ord ORDER BY x.ord), array_agg(x.st ORDER BY x.ord)
			  INTO v_ords, v_states
			  FROM (SELECT s.ord, s.st FROM unnest(v_ords, v_states) AS s(ord, st)
			        UNION ALL
			        SELECT o.ord,
			               CASE p_kinds[o.ord]
			               WHEN 'released' THEN
			                   (SELECT 'cancelled' FROM history h
			                     WHERE h.id = p_ids[o.ord] AND h.worker = p_worker
			                       AND h.attempts = p_attempts[o.ord] AND h.state = 'cancelled')
			               WHEN 'completed' THEN
			                   (SELECT 'completed' FROM history h
			                     WHERE h.id = p_ids[o.ord] AND h.worker = p_worker
			                       AND h.attempts = p_attempts[o.ord] AND h.state = 'completed')
			               WHEN 'failed' THEN
			                   coalesce((SELECT h.state FROM history h
			                              WHERE h.id = p_ids[o.ord] AND h.worker = p_worker
			                                AND h.attempts = p_attempts[o.ord]
			                                AND ((h.state = 'failed' AND (p_errors[o.ord] IS NULL
			                                                            OR h.error = p_errors[o.ord]))
			                                     OR (h.state = 'cancelled'
			                                         AND h.error = coalesce(p_errors[o.ord], 'cancelled')))),
			                            (SELECT j.state FROM jobs j
			                              WHERE j.id = p_ids[o.ord] AND j.state = 'scheduled'
			                                AND j.worker IS NULL AND j.attempts = p_attempts[o.ord]
			                                AND j.error IS NOT DISTINCT FROM p_errors[o.ord]))
			               END
			          FROM generate_series(1, v_n) o(ord)
			         WHERE o.ord <> ALL (coalesce(v_ords, '{}'))) x;
		END IF;
		RETURN QUERY
		SELECT p_ids[s.ord], NULL::text, NULL::jsonb, NULL::integer, NULL::integer,
		       NULL::interval, NULL::integer, s.st
		  FROM unnest(v_ords, v_states) AS s(ord, st) ORDER BY s.ord;

		-- Dependants, in statements of their own, so that one enqueued
		-- concurrently (it held FOR KEY SHARE on a finished job until it
		-- committed) is seen here.  A job waits on each dependency once.
		-- Most turns finish no job anything waits for: one probe of
		-- jobs_waiting says so.  Otherwise each finished job's dependants
		-- come from jobs_after.
		IF v_done IS NOT NULL AND EXISTS (SELECT 1 FROM jobs w WHERE w.waiting > 0) THEN
			WITH c AS (
				SELECT x.id, count(*)::integer AS n
				  FROM unnest(v_done) f(done),
				       LATERAL (SELECT d.id FROM jobs d
				                 WHERE d.after @> ARRAY[f.done] AND d.after IS NOT NULL
				                   AND d.waiting > 0) x
				 GROUP BY x.id
			), released AS (
				UPDATE jobs j
				   SET waiting = j.waiting - c.n,
				       state = CASE WHEN j.waiting = c.n AND j.run_at <= now() THEN 'queued'
				                    ELSE j.state END
				  FROM c WHERE j.id = c.id
				RETURNING j.queue, j.state
			)
			SELECT array_agg(DISTINCT r.queue) FILTER (WHERE r.state = 'queued') INTO v_queues
			  FROM released r;
			PERFORM pg_notify(current_schema() || '_new', q) FROM unnest(v_queues) q;
		END IF;
		IF v_dead IS NOT NULL AND EXISTS (SELECT 1 FROM jobs w WHERE w.waiting > 0) THEN
			FOR v_dep IN SELECT j.id, d.id AS dead, d.st
			               FROM unnest(v_dead, v_dead_st) d(id, st),
			                    LATERAL (SELECT x.id FROM jobs x
			                              WHERE x.after @> ARRAY[d.id] AND x.after IS NOT NULL
			                                AND x.state NOT IN ('running', 'claimed')) j
			              ORDER BY j.id LOOP
				PERFORM finish_job(v_dep.id, 'cancelled', NULL, NULL,
				                   format('dependency %s %s', v_dep.dead,
				                          CASE v_dep.st WHEN 'failed' THEN 'failed' ELSE 'was cancelled' END));
			END LOOP;
		END IF;
	END IF;

	IF p_run + p_ahead > 0 THEN
		UPDATE jobs j SET state = 'queued'
		 WHERE j.id IN (SELECT d.id FROM jobs d
		                 WHERE d.state = 'scheduled' AND d.waiting = 0 AND d.run_at <= now()
		                   AND d.queue = ANY (p_queues)
		                 ORDER BY d.run_at LIMIT 1000
		                 FOR UPDATE SKIP LOCKED);
		-- Each queue's best rows from jobs_claim, as claim_jobs() takes them,
		-- best first.
		SELECT array_agg(c.id ORDER BY c.priority, c.run_at, c.id) INTO v_ids
		  FROM (SELECT b.id, b.priority, b.run_at
		          FROM (SELECT DISTINCT unnest(p_queues)) q(name),
		               LATERAL (SELECT x.id, x.priority, x.run_at FROM jobs x
		                         WHERE x.state = 'queued' AND x.queue = q.name AND NOT x.cancel
		                         ORDER BY x.priority, x.run_at, x.id
		                         LIMIT p_run + p_ahead
		                         FOR UPDATE SKIP LOCKED) b
		         ORDER BY b.priority, b.run_at, b.id
		         LIMIT p_run + p_ahead) c;
		RETURN QUERY
		UPDATE jobs j
		   SET state = CASE WHEN c.rank <= p_run THEN 'running' ELSE 'claimed' END,
		       attempts = j.attempts + CASE WHEN c.rank <= p_run THEN 1 ELSE 0 END,
		       worker = p_worker, lease_until = now() + p_lease,
		       started_at = CASE WHEN c.rank <= p_run THEN now() END,
		       progress = NULL, message = NULL
		  FROM unnest(v_ids) WITH ORDINALITY AS c(id, rank)
		 WHERE j.id = c.id
		RETURNING j.id, j.queue, j.payload,
		          j.attempts + CASE WHEN j.state = 'claimed' THEN 1 ELSE 0 END,
		          j.max_attempts, j.timeout, j.priority, j.state;
		GET DIAGNOSTICS v_got = ROW_COUNT;
		-- Fewer than asked: the worker sleeps until the next scheduled
		-- job is due (timeout: how long from now), if that is sooner than
		-- its poll, with no statement more.
		IF v_got < p_run + p_ahead THEN
			RETURN QUERY
			SELECT NULL::bigint, NULL::text, NULL::jsonb, NULL::integer, NULL::integer,
			       min(d.run_at) - now(), NULL::integer, 'due'::text
			  FROM jobs d
			 WHERE d.state = 'scheduled' AND d.waiting = 0 AND d.queue = ANY (p_queues);
		END IF;
	END IF;
END
$$;

-- Replaces renew_leases() of version 3.
-- As version 3's: also renews the leases of the worker's claimed jobs.
CREATE OR REPLACE FUNCTION renew_leases(p_worker bigint, p_ids bigint[], p_lease interval)
RETURNS SETOF bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	UPDATE workers SET seen_at = now() WHERE id = p_worker;
	PERFORM pg_notify(current_schema() || '_new', g.queue)
	   FROM (SELECT DISTINCT r.queue FROM release_unknown(p_worker, p_ids) r) g;
	RETURN QUERY
	UPDATE jobs j SET lease_until = now() + p_lease
	 WHERE j.id = ANY (p_ids) AND j.worker = p_worker AND j.state IN ('running', 'claimed')
	RETURNING CASE WHEN j.cancel THEN j.id END;
END
$$;

-- Replaces release_unknown() of version 3.
-- As version 3's: a claimed job goes back too, its attempts untouched;
-- and a job whose cancel was asked is cancelled, not put back.
CREATE OR REPLACE FUNCTION release_unknown(p_worker bigint, p_ids bigint[])
RETURNS TABLE (queue text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_id bigint;
BEGIN
	FOR v_id IN SELECT j.id FROM jobs j
	             WHERE j.state IN ('running', 'claimed') AND j.lease_until IS NOT NULL
	               AND j.worker = p_worker AND j.id <> ALL (p_ids) AND j.cancel
	             FOR UPDATE LOOP
		PERFORM finish_job(v_id, 'cancelled', NULL, NULL, 'cancelled; its worker lost track of it');
	END LOOP;
	RETURN QUERY
	UPDATE jobs j SET state = 'queued',
	                  attempts = greatest(j.attempts - CASE WHEN j.state = 'running' THEN 1 ELSE 0 END, 0),
	                  worker = NULL, lease_until = NULL, started_at = NULL, progress = NULL,
	                  message = NULL
	 WHERE j.state IN ('running', 'claimed') AND j.lease_until IS NOT NULL AND j.worker = p_worker
	   AND j.id <> ALL (p_ids)
	RETURNING j.queue;
END
$$;

-- Replaces reap_expired() of version 3.
-- As version 3's: a claimed job whose lease ran out was never started,
-- so it is ready again with its attempts untouched.
CREATE OR REPLACE FUNCTION reap_expired() RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_job  record;
	v_n    integer := 0;
	v_why  constant text := 'worker lost: its lease expired';
BEGIN
	FOR v_job IN SELECT j.id, j.state, j.worker, j.attempts, j.max_attempts, j.cancel FROM jobs j
	              WHERE j.state IN ('running', 'claimed') AND j.lease_until < now()
	              ORDER BY j.lease_until LIMIT 1000
	              FOR UPDATE SKIP LOCKED LOOP
		IF v_job.cancel THEN
			PERFORM finish_job(v_job.id, 'cancelled', NULL, NULL, 'cancelled; ' || v_why);
		ELSIF v_job.state = 'claimed' THEN
			UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL WHERE id = v_job.id;
			PERFORM pg_notify(current_schema() || '_new', queue) FROM jobs WHERE id = v_job.id;
		ELSIF v_job.attempts >= v_job.max_attempts THEN
			PERFORM finish_job(v_job.id, 'failed', NULL, NULL, v_why);
		ELSE
			UPDATE jobs SET state = 'queued', error = v_why, worker = NULL, lease_until = NULL
			 WHERE id = v_job.id;
			PERFORM pg_notify(current_schema() || '_new', queue) FROM jobs WHERE id = v_job.id;
		END IF;
		v_n := v_n + 1;
	END LOOP;
	DELETE FROM workers WHERE seen_at < now() - interval '1 hour';
	RETURN v_n;
END
$$;

-- Replaces cancel_job() of version 2.
-- As version 2's: a claimed job has not started, so it is cancelled at
-- once like a queued one; its worker is told, to drop it.
CREATE OR REPLACE FUNCTION cancel_job(p_id bigint) RETURNS text
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
	IF v_state = 'claimed' THEN
		PERFORM pg_notify(current_schema() || '_cancel', p_id || ' ' || v_worker);
	END IF;
	RETURN 'cancelled';
END
$$;

-- Replaces stats_queues() of version 5.
-- As version 5's, with claimed jobs counted as queued: they wait for a slot,
-- in a worker's local queue instead of the table's.
CREATE OR REPLACE FUNCTION stats_queues(p_queues text[] DEFAULT NULL)
RETURNS TABLE (queue text, scheduled bigint, queued bigint, running bigint,
               completed bigint, failed bigint, cancelled bigint,
               oldest_queued double precision,
               completed_1m bigint, completed_5m bigint, completed_15m bigint,
               failed_1m bigint, failed_5m bigint, failed_15m bigint,
               run_p50 double precision, run_p95 double precision, run_p99 double precision,
               workers bigint, slots bigint)
-- JIT would cost more than the whole query: the planner prices the
-- correlated index-only counts as if each read all of history.
LANGUAGE sql STABLE SET search_path FROM CURRENT SET jit = off AS $$
	WITH RECURSIVE
	-- The queues in history: each step jumps to the next queue name in
	-- history_queue_state, so this reads one index probe per queue.
	hq AS (
		(SELECT h.queue FROM history h ORDER BY h.queue LIMIT 1)
		UNION ALL
		SELECT (SELECT h.queue FROM history h WHERE h.queue > hq.queue ORDER BY h.queue LIMIT 1)
		  FROM hq WHERE hq.queue IS NOT NULL
	),
	live AS (
		SELECT j.queue,
		       count(*) FILTER (WHERE j.state = 'scheduled') AS scheduled,
		       count(*) FILTER (WHERE j.state IN ('queued', 'claimed')) AS queued,
		       count(*) FILTER (WHERE j.state = 'running') AS running,
		       -- A queued job has been ready since run_at: when it was
		       -- enqueued, or when its delay, backoff or dependencies ended.
		       min(j.run_at) FILTER (WHERE j.state IN ('queued', 'claimed')) AS oldest
		  FROM jobs j
		 WHERE p_queues IS NULL OR j.queue = ANY (p_queues)
		 GROUP BY j.queue
	),
	-- Live: heard from within its lease (it heartbeats every third of it).
	alive AS (
		SELECT w.queues, w.concurrency FROM workers w WHERE w.seen_at >= now() - w.lease
	),
	names AS (
		SELECT q.name AS queue, q.n AS ord
		  FROM unnest(p_queues) WITH ORDINALITY q(name, n)
		UNION
		SELECT u.queue, NULL
		  FROM (SELECT hq.queue FROM hq
		        UNION SELECT live.queue FROM live
		        UNION SELECT unnest(a.queues) FROM alive a) u
		 WHERE p_queues IS NULL AND u.queue IS NOT NULL
	),
	-- Two ranges of history_state_finished; nothing older is read.
	recent AS (
		SELECT h.queue,
		       count(*) FILTER (WHERE h.state = 'completed' AND h.finished_at >= now() - interval '1 minute') AS c1,
		       count(*) FILTER (WHERE h.state = 'completed' AND h.finished_at >= now() - interval '5 minutes') AS c5,
		       count(*) FILTER (WHERE h.state = 'completed') AS c15,
		       count(*) FILTER (WHERE h.state = 'failed' AND h.finished_at >= now() - interval '1 minute') AS f1,
		       count(*) FILTER (WHERE h.state = 'failed' AND h.finished_at >= now() - interval '5 minutes') AS f5,
		       count(*) FILTER (WHERE h.state = 'failed') AS f15,
		       percentile_disc(ARRAY[0.5, 0.95, 0.99]::double precision[])
		           WITHIN GROUP (ORDER BY extract(epoch FROM h.finished_at - h.started_at)::double precision)
		           FILTER (WHERE h.state = 'completed' AND h.started_at IS NOT NULL) AS p
		  FROM history h
		 WHERE h.state IN ('completed', 'failed')
		   AND h.finished_at >= now() - interval '15 minutes'
		   AND (p_queues IS NULL OR h.queue = ANY (p_queues))
		 GROUP BY h.queue
	)
	SELECT n.queue,
	       coalesce(l.scheduled, 0), coalesce(l.queued, 0), coalesce(l.running, 0),
	       (SELECT count(*) FROM history h WHERE h.queue = n.queue AND h.state = 'completed'),
	       (SELECT count(*) FROM history h WHERE h.queue = n.queue AND h.state = 'failed'),
	       (SELECT count(*) FROM history h WHERE h.queue = n.queue AND h.state = 'cancelled'),
	       CASE WHEN l.oldest IS NOT NULL
	            THEN greatest(extract(epoch FROM now() - l.oldest)::double precision, 0) END,
	       coalesce(r.c1, 0), coalesce(r.c5, 0), coalesce(r.c15, 0),
	       coalesce(r.f1, 0), coalesce(r.f5, 0), coalesce(r.f15, 0),
	       r.p[1], r.p[2], r.p[3],
	       (SELECT count(*) FROM alive a WHERE n.queue = ANY (a.queues)),
	       (SELECT coalesce(sum(a.concurrency), 0) FROM alive a WHERE n.queue = ANY (a.queues))
	  FROM names n
	  LEFT JOIN live l ON l.queue = n.queue
	  LEFT JOIN recent r ON r.queue = n.queue
	 ORDER BY n.ord, n.queue
$$;

-- Versions before this one put a job back unfinished with its cancel
-- asked (a worker's grace ending while its handler was being cancelled),
-- and the next claim ran it again.  No path does now, and no claim takes
-- such a job: those left are cancelled here.
DO $$
BEGIN
	PERFORM finish_job(j.id, 'cancelled', NULL, NULL, 'cancelled')
	   FROM jobs j
	  WHERE j.state IN ('queued', 'scheduled') AND j.cancel;
END
$$;
