-- pgjq schema, version 14: listings and figures that stay fast with a
-- million jobs waiting and a million kept, and counters that only grow.
--
-- Before this version a listing of one queue (ORDER BY id DESC LIMIT n
-- over jobs and history) walked a table's primary key until it found n
-- rows of that queue: with a million jobs in the other table and none of
-- the queue there, a million rows (bench/stats: 230 ms).  jq-stats read
-- the live table whole and counted history's jobs by state through an
-- index, both in proportion to their size (310 ms).
--
-- Now every listing is a few short index ranges, one per queue and state,
-- newest first, and jq-stats reads history's counts from `counts` (below)
-- and the live table's from index ranges.

-- (queue, state, id): jobs of one queue waiting in one state, newest
-- first.  Partial: a claim, which makes a job running or claimed, then
-- adds no entry to it (a full index cost the worker about 10 us of
-- server time per job, measured).  Held jobs are listed by jobs_held
-- (queue, id) of version 11.  A query reaches this index only when it
-- says "state IN ('scheduled', 'queued')" in so many words.
CREATE INDEX jobs_queue_state_id ON jobs (queue, state, id) WHERE state IN ('scheduled', 'queued');
-- The same for history.  It takes over from history_queue_state (version
-- 5), whose counts now come from `counts`; being unique, its entries do
-- not deduplicate (about 45 MB per million jobs against 7 MB), which is
-- the price of a listing and of jq-retry --failed in id order.
CREATE INDEX history_queue_state_id ON history (queue, state, id);
DROP INDEX history_queue_state;

-- The queues that have jobs, each found by one probe of the indexes above
-- (a skip scan), in name order.
CREATE FUNCTION job_queues() RETURNS SETOF text
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	WITH RECURSIVE
	jq AS (
		(SELECT j.queue FROM jobs j WHERE j.state IN ('scheduled', 'queued') ORDER BY j.queue LIMIT 1)
		UNION ALL
		SELECT (SELECT j.queue FROM jobs j
		         WHERE j.state IN ('scheduled', 'queued') AND j.queue > jq.queue
		         ORDER BY j.queue LIMIT 1)
		  FROM jq WHERE jq.queue IS NOT NULL
	),
	held AS (
		(SELECT j.queue FROM jobs j WHERE j.state IN ('running', 'claimed') ORDER BY j.queue LIMIT 1)
		UNION ALL
		SELECT (SELECT j.queue FROM jobs j
		         WHERE j.state IN ('running', 'claimed') AND j.queue > held.queue
		         ORDER BY j.queue LIMIT 1)
		  FROM held WHERE held.queue IS NOT NULL
	),
	hq AS (
		(SELECT h.queue FROM history h ORDER BY h.queue LIMIT 1)
		UNION ALL
		SELECT (SELECT h.queue FROM history h WHERE h.queue > hq.queue ORDER BY h.queue LIMIT 1)
		  FROM hq WHERE hq.queue IS NOT NULL
	)
	SELECT q FROM (SELECT jq.queue FROM jq UNION SELECT held.queue FROM held
	               UNION SELECT hq.queue FROM hq) u(q)
	 WHERE q IS NOT NULL ORDER BY q
$$;

-- The ids of jq-status's listing: the newest p_limit jobs (ids grow with
-- creation) of the queues p_queues (NULL: every queue) in state p_state
-- (NULL: any).  Each (queue, state) pair is one backward range of the
-- indexes above, cut at p_limit, so the cost is queues x states x p_limit
-- at most, whatever the tables hold.  PL/pgSQL, so that the statement is
-- planned knowing its arguments: a plan made for any of them (an SQL
-- function's) keeps the branches for every queue and costs 150 ms.
CREATE FUNCTION list_job_ids(p_queues text[], p_state text, p_limit bigint)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
BEGIN
	IF p_queues IS NULL THEN
		p_queues := ARRAY(SELECT job_queues());
	END IF;
	RETURN QUERY
	WITH
	q AS (SELECT DISTINCT u.queue FROM unnest(p_queues) u(queue)),
	waiting AS (
		SELECT s.state FROM unnest(ARRAY['scheduled', 'queued']) s(state)
		 WHERE p_state IS NULL OR s.state = p_state
	),
	done AS (
		SELECT s.state FROM unnest(ARRAY['completed', 'failed', 'cancelled']) s(state)
		 WHERE p_state IS NULL OR s.state = p_state
	)
	SELECT x.id FROM (
		SELECT l.id FROM q CROSS JOIN waiting
		 CROSS JOIN LATERAL (SELECT j.id FROM jobs j
		                      WHERE j.queue = q.queue AND j.state = waiting.state
		                        AND j.state IN ('scheduled', 'queued')
		                      ORDER BY j.id DESC LIMIT p_limit) l
		UNION ALL
		-- Held jobs (as many as the workers' slots and local queues): one
		-- queue's range of jobs_held, sorted.
		SELECT l.id FROM q
		 CROSS JOIN LATERAL (SELECT j.id FROM jobs j
		                      WHERE j.queue = q.queue AND j.state IN ('running', 'claimed')
		                        AND (p_state IS NULL OR j.state = p_state)
		                      ORDER BY j.id DESC LIMIT p_limit) l
		UNION ALL
		SELECT l.id FROM q CROSS JOIN done
		 CROSS JOIN LATERAL (SELECT h.id FROM history h
		                      WHERE h.queue = q.queue AND h.state = done.state
		                      ORDER BY h.id DESC LIMIT p_limit) l
	) x
	ORDER BY x.id DESC LIMIT p_limit;
END
$$;

-- Counters for Prometheus, which only grow: jobs enqueued, retried,
-- completed, failed and cancelled per queue since the schema was made,
-- whatever retention has removed since, and the run times of completed
-- jobs as a histogram.  Also what history still keeps, per queue and final
-- state, for jq-stats without counting history.
--
-- How, without a row that every finish must lock: `counts` takes deltas
-- and is never updated.  Statement-level triggers on jobs and history add
-- one row per statement, queue and name (a whole turn of a worker, or a
-- COPY of a million jobs, is one statement), so concurrent finishes
-- insert side by side and never wait for each other or deadlock.
-- prune_history(), which some worker runs every minute, folds the deltas
-- into one row per queue and name.  Readers sum; between folds that is a
-- minute's statements at most.  Being part of the schema's tables, the
-- counts survive restarts of workers and of the server, and pruning
-- removes rows from history, never from here.
--
-- Names: 'live', the rows of jobs (+1 inserted, -1 deleted), so that
-- jq-stats counts a million queued jobs without reading them;
-- 'enqueued', 'retried', 'completed', 'failed', 'cancelled';
-- '<state>_gone' for finished jobs since removed from history (pruned,
-- retried, purged), so history keeps '<state>' - '<state>_gone';
-- 'run_seconds' and 'run_count', the sum and number of completed jobs'
-- run times, and 'run_bucket' with le: how many ran at most le seconds.
CREATE TABLE counts (
	queue text NOT NULL,
	name  text NOT NULL,
	le    double precision,
	n     double precision NOT NULL
);

-- The triggers below are SECURITY DEFINER: a producer role (roles.sql)
-- inserts into jobs itself, and may not write to counts.

-- The histogram's upper bounds in seconds, from a thumbnail to a report.
CREATE FUNCTION run_buckets() RETURNS double precision[]
LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY[0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600]::double precision[]
$$;

-- The least bound of the histogram that holds a run of p_secs seconds
-- (NULL: longer than all of them).  A bound holds what is no longer than
-- it; width_bucket() counts the bounds no greater than p_secs, so a run
-- of exactly a bound's length is that bound's.  Inlined, run_buckets()
-- folds to a constant.
CREATE FUNCTION run_bound(p_secs double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN (run_buckets())[width_bucket(p_secs, run_buckets())] = p_secs THEN p_secs
	            ELSE (run_buckets())[width_bucket(p_secs, run_buckets()) + 1] END
$$;

-- A job enqueued is a row inserted into jobs, except when retry_job()
-- puts a finished one back: it says so for its own transaction.
CREATE FUNCTION count_enqueued() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
	INSERT INTO counts (queue, name, n)
	SELECT n.queue, m.name, count(*)
	  FROM new_jobs n
	 CROSS JOIN (VALUES ('live'),
	                    (CASE WHEN current_setting('pgjq.retrying', true) = 'on'
	                          THEN 'retried' ELSE 'enqueued' END)) m(name)
	 GROUP BY n.queue, m.name;
	RETURN NULL;
END
$$;
CREATE TRIGGER jobs_count AFTER INSERT ON jobs
	REFERENCING NEW TABLE AS new_jobs
	FOR EACH STATEMENT EXECUTE FUNCTION count_enqueued();

-- Whatever removes a job from jobs (finishing, cancelling, by hand).
CREATE FUNCTION count_left() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
	INSERT INTO counts (queue, name, n)
	SELECT o.queue, 'live', -count(*) FROM old_jobs o GROUP BY o.queue;
	RETURN NULL;
END
$$;
CREATE TRIGGER jobs_count_out AFTER DELETE ON jobs
	REFERENCING OLD TABLE AS old_jobs
	FOR EACH STATEMENT EXECUTE FUNCTION count_left();

CREATE FUNCTION count_jobs_truncated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
	INSERT INTO counts (queue, name, n)
	SELECT c.queue, 'live', -sum(c.n) FROM counts c WHERE c.name = 'live'
	 GROUP BY c.queue HAVING sum(c.n) <> 0;
	RETURN NULL;
END
$$;
CREATE TRIGGER jobs_count_truncate AFTER TRUNCATE ON jobs
	FOR EACH STATEMENT EXECUTE FUNCTION count_jobs_truncated();

-- A job that lands in history finished.  One whose dependency had already
-- failed is born there, cancelled, never having been in jobs (enqueue_job()
-- of version 1): it is enqueued too.  It is told by being created and
-- finished at the same moment without an attempt.
CREATE FUNCTION count_finished() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
	-- One pass over the rows into a handful of groups, then the groups
	-- into counters: a turn moves hundreds of jobs at once, and a pass
	-- per counter (nine bounds each) cost the worker 9 us of server time
	-- per job, measured.
	WITH r AS (
		SELECT n.queue, n.state,
		       n.state = 'cancelled' AND n.attempts = 0 AND n.created_at = n.finished_at AS born,
		       CASE WHEN n.state = 'completed' AND n.started_at IS NOT NULL
		            THEN date_part('epoch', n.finished_at - n.started_at) END AS secs
		  FROM new_rows n
	),
	g AS (
		SELECT r.queue, r.state, r.born, r.secs IS NOT NULL AS ran, run_bound(r.secs) AS bound,
		       count(*)::double precision AS n, sum(r.secs) AS secs
		  FROM r GROUP BY r.queue, r.state, r.born, r.secs IS NOT NULL, run_bound(r.secs)
	)
	INSERT INTO counts (queue, name, le, n)
	SELECT g.queue, g.state, NULL::double precision, sum(g.n) FROM g GROUP BY g.queue, g.state
	UNION ALL
	SELECT g.queue, 'enqueued', NULL, sum(g.n) FROM g WHERE g.born GROUP BY g.queue
	UNION ALL
	SELECT g.queue, m.name, NULL, CASE m.name WHEN 'run_count' THEN sum(g.n) ELSE sum(g.secs) END
	  FROM g CROSS JOIN (VALUES ('run_count'), ('run_seconds')) m(name)
	 WHERE g.ran GROUP BY g.queue, m.name
	UNION ALL
	-- Cumulative, as Prometheus has it: a run counts under every bound
	-- from the least that holds it up.
	SELECT g.queue, 'run_bucket', b.le, sum(g.n)
	  FROM g JOIN unnest(run_buckets()) b(le) ON b.le >= g.bound
	 GROUP BY g.queue, b.le;
	RETURN NULL;
END
$$;
CREATE TRIGGER history_count_in AFTER INSERT ON history
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION count_finished();

CREATE FUNCTION count_removed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
	INSERT INTO counts (queue, name, n)
	SELECT o.queue, o.state || '_gone', count(*) FROM old_rows o GROUP BY o.queue, o.state;
	RETURN NULL;
END
$$;
CREATE TRIGGER history_count_out AFTER DELETE ON history
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION count_removed();

-- TRUNCATE by hand: nothing is kept any more, and the totals stay.
CREATE FUNCTION count_truncated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
	INSERT INTO counts (queue, name, n)
	SELECT c.queue, s.state || '_gone',
	       sum(CASE WHEN c.name = s.state THEN c.n ELSE -c.n END)
	  FROM counts c
	  JOIN unnest(ARRAY['completed', 'failed', 'cancelled']) s(state)
	    ON c.name IN (s.state, s.state || '_gone')
	 GROUP BY c.queue, s.state;
	RETURN NULL;
END
$$;
CREATE TRIGGER history_count_truncate AFTER TRUNCATE ON history
	FOR EACH STATEMENT EXECUTE FUNCTION count_truncated();

-- What the schema already holds counts from here on: what history keeps,
-- as finished, and every job there and in jobs as enqueued.
INSERT INTO counts (queue, name, le, n)
SELECT h.queue, h.state, NULL::double precision, count(*)::double precision
  FROM history h GROUP BY h.queue, h.state
UNION ALL
SELECT j.queue, 'live', NULL, count(*) FROM jobs j GROUP BY j.queue
UNION ALL
SELECT a.queue, 'enqueued', NULL, count(*)
  FROM (SELECT j.queue FROM jobs j UNION ALL SELECT h.queue FROM history h) a GROUP BY a.queue
UNION ALL
SELECT r.queue, m.name, NULL, CASE m.name WHEN 'run_count' THEN count(*) ELSE sum(r.secs) END
  FROM (SELECT h.queue, extract(epoch FROM h.finished_at - h.started_at)::double precision AS secs
          FROM history h WHERE h.state = 'completed' AND h.started_at IS NOT NULL) r
 CROSS JOIN (VALUES ('run_count'), ('run_seconds')) m(name)
 GROUP BY r.queue, m.name
UNION ALL
SELECT h.queue, 'run_bucket', b.le, count(*)
  FROM history h
  JOIN unnest(run_buckets()) b(le) ON extract(epoch FROM h.finished_at - h.started_at) <= b.le
 WHERE h.state = 'completed' AND h.started_at IS NOT NULL
 GROUP BY h.queue, b.le;

-- Folds the deltas into one row per queue, name and bound, in one
-- statement: a reader sees the sums before or after, never half.
CREATE FUNCTION fold_counts() RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
	WITH gone AS (DELETE FROM counts c RETURNING c.*)
	INSERT INTO counts (queue, name, le, n)
	SELECT g.queue, g.name, g.le, sum(g.n) FROM gone g GROUP BY g.queue, g.name, g.le
$$;

-- The counters of p_queues (NULL: every queue that ever had a job), one
-- row per queue, name and bound, summed.
CREATE FUNCTION counters(p_queues text[] DEFAULT NULL)
RETURNS TABLE (queue text, name text, le double precision, n double precision)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	SELECT c.queue, c.name, c.le, sum(c.n)
	  FROM counts c
	 WHERE p_queues IS NULL OR c.queue = ANY (p_queues)
	 GROUP BY c.queue, c.name, c.le
	 ORDER BY c.queue, c.name, c.le
$$;

-- Replaces retry_job() of version 2: the same, with its insert counted
-- as retried rather than enqueued, and the job keeps its group (version 11).
CREATE OR REPLACE FUNCTION retry_job(p_id bigint) RETURNS text
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
	PERFORM set_config('pgjq.retrying', 'on', true);
	INSERT INTO jobs (id, queue, state, priority, run_at, waiting, after, payload, attempts,
	                  max_attempts, timeout, key, error, created_at, group_key)
	VALUES (v_job.id, v_job.queue, 'queued', v_job.priority, now(), 0, v_job.after,
	        v_job.payload, 0, v_job.max_attempts, v_job.timeout, v_job.key, v_job.error,
	        v_job.created_at, v_job.group_key);
	PERFORM set_config('pgjq.retrying', '', true);
	RETURN 'queued';
END
$$;

-- Replaces prune_history() of version 4: the same, and the counts folded.
CREATE OR REPLACE FUNCTION prune_history(p_keep_completed interval, p_keep_failed interval,
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
	PERFORM fold_counts();
	RETURN v_n;
END
$$;

-- When the oldest job of queue p_queue that waits for a slot became ready
-- (NULL: none waits).  jobs_claim (ungrouped jobs, version 11) is ordered
-- by priority first, so its
-- oldest run_at is the least of each priority's first: one probe per
-- priority in use, a handful, not one row per queued job.  Claimed jobs
-- wait in a worker's local queue; they are few.
CREATE FUNCTION oldest_queued(p_queue text) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
	v_prio   integer;
	v_oldest timestamptz;
BEGIN
	SELECT min(j.run_at) INTO v_oldest FROM jobs j WHERE j.queue = p_queue AND j.state = 'claimed';
	SELECT j.priority INTO v_prio FROM jobs j
	 WHERE j.queue = p_queue AND j.state = 'queued' AND j.group_key IS NULL
	 ORDER BY j.priority LIMIT 1;
	WHILE v_prio IS NOT NULL LOOP
		v_oldest := least(v_oldest, (SELECT j.run_at FROM jobs j
		                              WHERE j.queue = p_queue AND j.state = 'queued' AND j.group_key IS NULL
		                                AND j.priority = v_prio
		                              ORDER BY j.run_at LIMIT 1));
		v_prio := (SELECT j.priority FROM jobs j
		            WHERE j.queue = p_queue AND j.state = 'queued' AND j.group_key IS NULL
		              AND j.priority > v_prio
		            ORDER BY j.priority LIMIT 1);
	END LOOP;
	-- Jobs of groups (version 11) are not in jobs_claim, but in jobs_group_claim.
	v_oldest := least(v_oldest, (SELECT min(j.run_at) FROM jobs j
	                              WHERE j.queue = p_queue AND j.state = 'queued' AND j.group_key IS NOT NULL));
	RETURN v_oldest;
END
$$;

-- Replaces stats_queues() of version 10: the same figures, each from an
-- index range or from `counts`, never from a pass over a table.  Jobs
-- queued (or claimed) are those in jobs less the scheduled and running
-- ones: a backlog of a million is never counted, and the running are as
-- few as the slots (counts of jobs_queue_state_id and jobs_held).  History's
-- counts come from `counts`; queues are found by skip scans
-- (job_queues()).
CREATE OR REPLACE FUNCTION stats_queues(p_queues text[] DEFAULT NULL)
RETURNS TABLE (queue text, scheduled bigint, queued bigint, running bigint,
               completed bigint, failed bigint, cancelled bigint,
               oldest_queued double precision,
               completed_1m bigint, completed_5m bigint, completed_15m bigint,
               failed_1m bigint, failed_5m bigint, failed_15m bigint,
               run_p50 double precision, run_p95 double precision, run_p99 double precision,
               workers bigint, slots bigint)
LANGUAGE sql STABLE SET search_path FROM CURRENT SET jit = off AS $$
	WITH
	-- Live: heard from within its lease (it heartbeats every third of it).
	alive AS (
		SELECT w.queues, w.concurrency FROM workers w WHERE w.seen_at >= now() - w.lease
	),
	names AS (
		SELECT q.name AS queue, q.n AS ord
		  FROM unnest(p_queues) WITH ORDINALITY q(name, n)
		UNION
		SELECT u.queue, NULL
		  FROM (SELECT jq.q FROM job_queues() jq(q)
		        UNION SELECT unnest(a.queues) FROM alive a) u(queue)
		 WHERE p_queues IS NULL AND u.queue IS NOT NULL
	),
	kept AS (
		SELECT c.queue,
		       sum(c.n) FILTER (WHERE c.name = 'live') AS live,
		       sum(c.n) FILTER (WHERE c.name = 'completed') - coalesce(sum(c.n) FILTER (WHERE c.name = 'completed_gone'), 0) AS completed,
		       sum(c.n) FILTER (WHERE c.name = 'failed') - coalesce(sum(c.n) FILTER (WHERE c.name = 'failed_gone'), 0) AS failed,
		       sum(c.n) FILTER (WHERE c.name = 'cancelled') - coalesce(sum(c.n) FILTER (WHERE c.name = 'cancelled_gone'), 0) AS cancelled
		  FROM counts c
		 WHERE c.name IN ('live', 'completed', 'failed', 'cancelled',
		                  'completed_gone', 'failed_gone', 'cancelled_gone')
		   AND (p_queues IS NULL OR c.queue = ANY (p_queues))
		 GROUP BY c.queue
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
	SELECT n.queue, l.scheduled,
	       greatest(coalesce(k.live, 0)::bigint - l.scheduled - l.running, 0),
	       l.running,
	       coalesce(k.completed, 0)::bigint, coalesce(k.failed, 0)::bigint, coalesce(k.cancelled, 0)::bigint,
	       (SELECT CASE WHEN o.t IS NOT NULL THEN greatest(extract(epoch FROM now() - o.t)::double precision, 0) END
	          FROM oldest_queued(n.queue) o(t)),
	       coalesce(r.c1, 0), coalesce(r.c5, 0), coalesce(r.c15, 0),
	       coalesce(r.f1, 0), coalesce(r.f5, 0), coalesce(r.f15, 0),
	       r.p[1], r.p[2], r.p[3],
	       (SELECT count(*) FROM alive a WHERE n.queue = ANY (a.queues)),
	       (SELECT coalesce(sum(a.concurrency), 0) FROM alive a WHERE n.queue = ANY (a.queues))
	  FROM names n
	 CROSS JOIN LATERAL (
		SELECT (SELECT count(*) FROM jobs j WHERE j.queue = n.queue AND j.state = 'scheduled') AS scheduled,
		       (SELECT count(*) FROM jobs j WHERE j.queue = n.queue AND j.state = 'running') AS running
	 ) l
	  LEFT JOIN kept k ON k.queue = n.queue
	  LEFT JOIN recent r ON r.queue = n.queue
	 ORDER BY n.ord, n.queue
$$;

-- Steering a whole queue in batches: jq-cancel -q and jq-retry --failed.
-- One call is one batch, and the caller commits each, so no lock is held
-- for longer than a batch takes (tens of milliseconds for a thousand
-- jobs) and a worker never waits for the whole run.  Each call takes the
-- next p_batch jobs of one queue in one state after id p_after, in id
-- order (one range of the (queue, state, id) indexes), skipping those
-- another transaction holds, and moves them with set operations: one
-- DELETE feeding one INSERT, where cancel_job() and retry_job() took a
-- function call per job.  The caller goes on from the last id returned
-- until a call returns nothing.

-- Cancels scheduled and queued jobs; returns their ids.  A job that
-- depends on one of them is cancelled too, as finish_job() does, one by
-- one: dependants are the exception.  Claimed and running jobs are left to
-- cancel_job(), one per transaction, as they must be told to their worker
-- and the worker holds them.
CREATE FUNCTION cancel_batch(p_queue text, p_state text, p_after bigint, p_batch integer)
RETURNS SETOF bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_ids bigint[];
	v_dep record;
BEGIN
	IF p_state NOT IN ('scheduled', 'queued') THEN
		RAISE EXCEPTION 'cancel_batch() takes scheduled or queued jobs, not %', p_state
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	v_ids := ARRAY(SELECT j.id FROM jobs j
	                WHERE j.queue = p_queue AND j.state = p_state AND j.id > p_after
	                  AND j.state IN ('scheduled', 'queued')
	                ORDER BY j.id LIMIT p_batch FOR UPDATE SKIP LOCKED);
	IF cardinality(v_ids) = 0 THEN
		RETURN;
	END IF;
	WITH d AS (
		DELETE FROM jobs j WHERE j.id = ANY (v_ids) RETURNING j.*
	)
	INSERT INTO history (id, queue, state, priority, run_at, waiting, after, payload,
	                     attempts, max_attempts, timeout, key, progress, message,
	                     result, error, worker, lease_until, created_at, started_at,
	                     finished_at, snoozes, group_key)
	SELECT d.id, d.queue, 'cancelled', d.priority, d.run_at, d.waiting, d.after, d.payload,
	       d.attempts, d.max_attempts, d.timeout, d.key, d.progress, d.message,
	       NULL, 'cancelled', d.worker, NULL, d.created_at, d.started_at, now(),
	       d.snoozes, d.group_key
	  FROM d;
	PERFORM pg_notify(current_schema() || '_done', i || ' cancelled') FROM unnest(v_ids) i;
	FOR v_dep IN SELECT j.id, d.d AS dep
	               FROM jobs j CROSS JOIN LATERAL unnest(j.after) d(d)
	              WHERE j.after && v_ids AND j.after IS NOT NULL AND j.state <> 'running'
	                AND d.d = ANY (v_ids)
	              ORDER BY j.id LOOP
		PERFORM finish_job(v_dep.id, 'cancelled', NULL, NULL,
		                   format('dependency %s was cancelled', v_dep.dep));
	END LOOP;
	RETURN QUERY SELECT unnest(v_ids);
END
$$;

-- Retries failed jobs, as retry_job() does; returns each job taken with
-- 'queued', or 'key-taken' (left failed) when a live job holds its key
-- or a newer job of the batch has the same key.
CREATE FUNCTION retry_batch(p_queue text, p_after bigint, p_batch integer)
RETURNS TABLE (id bigint, outcome text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
	v_ids  bigint[];
	v_ok   bigint[];
BEGIN
	v_ids := ARRAY(SELECT h.id FROM history h
	                WHERE h.queue = p_queue AND h.state = 'failed' AND h.id > p_after
	                ORDER BY h.id LIMIT p_batch FOR UPDATE SKIP LOCKED);
	IF cardinality(v_ids) = 0 THEN
		RETURN;
	END IF;
	v_ok := ARRAY(SELECT c.id FROM (
	                  SELECT h.id, h.key,
	                         row_number() OVER (PARTITION BY h.key ORDER BY h.id DESC) AS nth
	                    FROM history h WHERE h.id = ANY (v_ids)) c
	               WHERE c.key IS NULL
	                  OR (c.nth = 1 AND NOT EXISTS (SELECT 1 FROM jobs j
	                                                 WHERE j.queue = p_queue AND j.key = c.key)));
	PERFORM set_config('pgjq.retrying', 'on', true);
	WITH d AS (
		DELETE FROM history h WHERE h.id = ANY (v_ok) RETURNING h.*
	)
	INSERT INTO jobs (id, queue, state, priority, run_at, waiting, after, payload, attempts,
	                  max_attempts, timeout, key, error, created_at, group_key)
	SELECT d.id, d.queue, 'queued', d.priority, now(), 0, d.after, d.payload, 0,
	       d.max_attempts, d.timeout, d.key, d.error, d.created_at, d.group_key
	  FROM d;
	PERFORM set_config('pgjq.retrying', '', true);
	IF cardinality(v_ok) > 0 THEN
		PERFORM pg_notify(current_schema() || '_new', p_queue);
	END IF;
	RETURN QUERY SELECT i, CASE WHEN i = ANY (v_ok) THEN 'queued' ELSE 'key-taken' END
	               FROM unnest(v_ids) i ORDER BY i;
END
$$;
