-- pgjq schema, version 11: flow control.  Queues may be paused, and
-- limited in how many of their jobs run at once and how many start per
-- window, across every worker on every host.
--
-- A queue's settings live in `queues`, one row per queue that has any
-- (a queue without a row is active and unlimited).  turn() enforces
-- them in its claim, so they cost no round trip more:
--
-- * A paused queue is not claimed from.  Workers also drop the jobs of
--   it they hold claimed but not started: pause_queue() tells them on the
--   cancel channel ("pause QUEUE"), which workers of version 10 ignore.
-- * A claim of a limited queue takes a transaction advisory lock of the
--   queue (so claims of that queue serialise; unlike a row lock it writes
--   nothing), and only then, in a statement with a newer snapshot, are
--   its running and claimed jobs counted: every claim that
--   committed before the lock was granted is seen, so the count of jobs
--   held is never above the limit, not even for a moment.  Claimed-ahead
--   jobs count as they hold a place.
-- * A rated queue keeps the times of its recent starts (`starts`).  Its
--   jobs are claimed only to start at once ('running', never ahead into a
--   local queue, where they could wait and then start in a bunch), and at
--   most N in any window of DURATION plus a margin (a quarter of it, at
--   most a second more): a handler starts a little after its claim
--   commits, and the margin keeps that delay from letting N+1 starts fall
--   into one window of the handlers' clocks.
--
-- Queues with none of it pay one probe of queues_pkey per turn.

CREATE TABLE queues (
	name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.:-]{1,64}$'),
	paused      boolean NOT NULL DEFAULT false,
	max_running integer CHECK (max_running >= 1),
	rate_n      integer CHECK (rate_n >= 1),
	rate_window interval CHECK (rate_window > '0'),
	-- The clock_timestamp() of each start within the last window and margin.
	starts      timestamptz[] NOT NULL DEFAULT '{}',
	-- At most this many of a group's jobs held at once.
	group_limit integer NOT NULL DEFAULT 1 CHECK (group_limit >= 1),
	-- The last claim found the limit reached: a turn that frees a place
	-- says so on the "_new" channel.  (Only then: a NOTIFY serialises
	-- commits, too dear for every turn of a queue far from its limit.)
	at_limit    boolean NOT NULL DEFAULT false,
	changed_at  timestamptz NOT NULL DEFAULT now(),
	CHECK ((rate_n IS NULL) = (rate_window IS NULL))
);

-- How often the job's handlers said "not now" (snooze): within the
-- worker's --max-snoozes, a snooze does not count as an attempt.
ALTER TABLE jobs ADD COLUMN snoozes integer NOT NULL DEFAULT 0;
ALTER TABLE history ADD COLUMN snoozes integer NOT NULL DEFAULT 0;

-- Groups: a job may belong to a group of its queue (jq-enqueue --group),
-- of which at most the queue's group_limit are held at once, fleet-wide.
-- Ungrouped jobs are claimed from jobs_claim, now without the grouped
-- ones, so a group's backlog is never read past by them; grouped ones
-- from jobs_group_claim, one index descent per group (a skip scan), so
-- a group of 100,000 jobs costs a claim what a group of one does.
ALTER TABLE jobs ADD COLUMN group_key text CHECK (length(group_key) BETWEEN 1 AND 512);
ALTER TABLE history ADD COLUMN group_key text;
DROP INDEX jobs_claim;
CREATE INDEX jobs_claim ON jobs (queue, priority, run_at, id)
	WHERE state = 'queued' AND group_key IS NULL;
CREATE INDEX jobs_group_claim ON jobs (queue, group_key, priority, run_at, id)
	WHERE state = 'queued' AND group_key IS NOT NULL;
CREATE INDEX jobs_group_held ON jobs (queue, group_key)
	WHERE state IN ('running', 'claimed') AND group_key IS NOT NULL;

CREATE OR REPLACE VIEW all_jobs AS
	SELECT * FROM jobs
	UNION ALL
	SELECT * FROM history;

-- The jobs workers hold, by queue and lease: what a limit counts (one
-- queue's range) and what reaping reads (lease_until, over all of them:
-- they are only as many as the slots and local queues).  It takes over
-- from jobs_lease (version 10).  A claim is a non-HOT update, so every
-- index of held jobs takes an entry per claim: two such indexes cost the
-- worker about 5 us of server time per job more than one, measured.
DROP INDEX jobs_lease;
CREATE INDEX jobs_held ON jobs (queue, lease_until) WHERE state IN ('running', 'claimed');

-- Whether a queue is known: it has jobs, finished jobs, settings, or a
-- live worker serving it.  jq-queue refuses to change an unknown one, so
-- a misspelt name is an error rather than a setting nothing reads.
CREATE FUNCTION queue_known(p_queue text) RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	SELECT EXISTS (SELECT 1 FROM queues q WHERE q.name = p_queue)
	    OR EXISTS (SELECT 1 FROM jobs j WHERE j.queue = p_queue)
	    OR EXISTS (SELECT 1 FROM history h WHERE h.queue = p_queue)
	    OR EXISTS (SELECT 1 FROM workers w WHERE p_queue = ANY (w.queues)
	                                          AND w.seen_at >= now() - w.lease)
$$;

-- Pauses (p_paused) or resumes the queue; workers holding claimed jobs of
-- a paused queue are told to put them back, and on resume to claim.
CREATE FUNCTION pause_queue(p_queue text, p_paused boolean) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	INSERT INTO queues AS q (name, paused) VALUES (p_queue, p_paused)
	ON CONFLICT (name) DO UPDATE SET paused = p_paused, changed_at = now();
	IF p_paused THEN
		PERFORM pg_notify(current_schema() || '_cancel', 'pause ' || p_queue);
	ELSE
		PERFORM pg_notify(current_schema() || '_new', p_queue);
	END IF;
END
$$;

-- Sets (or, with NULL, lifts) the queue's limit on jobs running at once.
CREATE FUNCTION limit_queue(p_queue text, p_max integer) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	INSERT INTO queues AS q (name, max_running) VALUES (p_queue, p_max)
	ON CONFLICT (name) DO UPDATE SET max_running = p_max, changed_at = now();
	PERFORM pg_notify(current_schema() || '_new', p_queue);
END
$$;

-- Sets (or, with NULLs, lifts) the queue's rate: p_n starts per p_window.
CREATE FUNCTION rate_queue(p_queue text, p_n integer, p_window interval) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	INSERT INTO queues AS q (name, rate_n, rate_window) VALUES (p_queue, p_n, p_window)
	ON CONFLICT (name) DO UPDATE SET rate_n = p_n, rate_window = p_window, changed_at = now();
	PERFORM pg_notify(current_schema() || '_new', p_queue);
END
$$;

-- Sets the queue's group limit (NULL: back to 1).
CREATE FUNCTION group_limit_queue(p_queue text, p_max integer) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	INSERT INTO queues AS q (name, group_limit) VALUES (p_queue, coalesce(p_max, 1))
	ON CONFLICT (name) DO UPDATE SET group_limit = coalesce(p_max, 1), changed_at = now();
	PERFORM pg_notify(current_schema() || '_new', p_queue);
END
$$;

-- The first key of the advisory locks a claim of a limited queue takes
-- (the second is the hash of the queue's name): the queues table's oid,
-- so that schemas in one database do not share them.
CREATE FUNCTION flow_lock_class() RETURNS integer
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	SELECT 'queues'::regclass::oid::integer
$$;

-- The margin a rated queue's window is widened by: the time a handler may
-- take to start after its claim committed, on a busy host.
CREATE FUNCTION rate_margin(p_window interval) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
	SELECT least(p_window / 4, interval '1 second')
$$;

-- Each queue (those named, else every one known) with its settings and
-- its counts.
CREATE FUNCTION queue_list(p_queues text[] DEFAULT NULL)
RETURNS TABLE (queue text, paused boolean, max_running integer, rate_n integer,
               rate_window double precision, scheduled bigint, queued bigint, running bigint,
               completed bigint, failed bigint, cancelled bigint, workers bigint,
               group_limit integer)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	SELECT coalesce(s.queue, q.name), coalesce(q.paused, false), q.max_running, q.rate_n,
	       extract(epoch FROM q.rate_window)::double precision,
	       coalesce(s.scheduled, 0), coalesce(s.queued, 0), coalesce(s.running, 0),
	       coalesce(s.completed, 0), coalesce(s.failed, 0), coalesce(s.cancelled, 0),
	       coalesce(s.workers, 0), coalesce(q.group_limit, 1)
	  FROM stats_queues(p_queues) s
	  FULL JOIN (SELECT * FROM queues x WHERE p_queues IS NULL OR x.name = ANY (p_queues)) q
	    ON q.name = s.queue
	 ORDER BY 1
$$;

-- Replaces turn() of version 10 (which now calls this one): a report may
-- be 'snoozed', p_max_snoozes bounding it; the claim obeys the queues'
-- pause, limit and rate; a turn that frees a place in a limited queue that a claim
-- found full says so on the "_new" channel, for the workers waiting; when
-- a rated queue is what stopped the claim, the "due" row tells when its
-- next start may be.

-- Records a turn's reports and claims jobs, in one call and so one commit.
--
-- Element i of the report arrays is about job p_ids[i], attempt
-- p_attempts[i] (for a claimed job: the attempt it is to be).  p_kinds[i]:
--   'running'    its handler has it (p_ran[i] ago); progress only, once told
--   'completed'  p_results[i] is the result
--   'failed'     p_errors[i], p_permanent[i], p_backoffs[i] as fail_attempt
--   'released'   put back unfinished (shutting down); the attempt not counted
--   'snoozed'    the handler said "not now": scheduled again in
--                p_backoffs[i], the attempt not counted, if the job has
--                been snoozed fewer than p_max_snoozes times (NULL: 10);
--                past that, as 'failed' with that backoff
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
CREATE OR REPLACE FUNCTION turn(p_worker bigint, p_ids bigint[], p_attempts integer[], p_kinds text[],
                     p_ran interval[], p_results jsonb[], p_errors text[],
                     p_permanent boolean[], p_backoffs interval[], p_progress smallint[],
                     p_messages text[], p_channel text,
                     p_queues text[], p_run integer, p_ahead integer, p_lease interval,
                     p_max_snoozes integer)
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
	v_idq     text[];
	v_freed   text[];
	v_rules   text[];
	v_qnames  text[];
	v_quota   integer[];
	v_rated   text[];
	v_rate_at timestamptz;
	v_flip    text[];
	v_gfreed  text[];
	v_grouped text[];
	v_gids    bigint[];
	v_q       text;
	v_glimit  integer;
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
	            WHERE k IS NULL OR k NOT IN ('running', 'completed', 'failed', 'released', 'snoozed')) THEN
		RAISE EXCEPTION 'turn: not a kind of report: %',
			(SELECT k FROM unnest(p_kinds) k
			  WHERE k IS NULL OR k NOT IN ('running', 'completed', 'failed', 'released', 'snoozed') LIMIT 1)
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
			SELECT j.id, j.queue, r.ord::integer AS ord, r.attempt, r.result, r.backoff, r.pct, r.msg,
			       j.group_key IS NOT NULL AS grouped,
			       CASE WHEN r.kind = 'snoozed' AND NOT j.cancel
			            THEN format('snoozed %s times, as many as --max-snoozes allows: the attempt counts',
			                        j.snoozes)
			            ELSE r.error END AS error,
			       CASE WHEN j.state = 'claimed' THEN now() - coalesce(r.ran, '0') ELSE j.started_at END
			           AS started_at,
			       CASE r.kind
			       WHEN 'completed' THEN 'completed'
			       WHEN 'running' THEN 'running'
			       WHEN 'released' THEN CASE WHEN j.cancel THEN 'cancelled' ELSE 'queued' END
			       WHEN 'snoozed' THEN
			           CASE WHEN j.cancel THEN 'cancelled'
			                WHEN j.snoozes < coalesce(p_max_snoozes, 10) THEN 'snoozed'
			                WHEN r.permanent OR r.attempt >= j.max_attempts THEN 'failed'
			                ELSE 'scheduled' END
			       ELSE CASE WHEN j.cancel THEN 'cancelled'
			                 WHEN r.permanent OR r.attempt >= j.max_attempts THEN 'failed'
			                 ELSE 'scheduled' END
			       END AS fate
			  FROM r,
			       -- One probe of jobs_pkey per report, whatever the statistics
			       -- say: LATERAL, and nothing but the id in its condition
			       -- (OFFSET 0 keeps the conditions below out).  A condition on
			       -- state would offer jobs_held, all of whose rows a planner
			       -- that has seen none there would read for every report.
			       LATERAL (SELECT x.id, x.queue, x.state, x.started_at, x.cancel, x.max_attempts,
			                       x.worker, x.attempts, x.snoozes, x.group_key
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
			                     finished_at, snoozes, group_key)
			SELECT m.id, m.queue, m.fate, m.priority, m.run_at, m.waiting, m.after, m.payload,
			       m.new_attempts, m.max_attempts, m.timeout, m.key,
			       CASE WHEN m.fate = 'completed' THEN 100 WHEN m.pct IS NOT NULL THEN m.pct
			            ELSE m.progress END,
			       CASE WHEN m.pct IS NOT NULL THEN m.msg ELSE m.message END,
			       m.new_result,
			       CASE WHEN m.fate = 'cancelled' THEN coalesce(m.new_error, 'cancelled')
			            ELSE coalesce(m.new_error, m.error) END,
			       m.worker, NULL, m.created_at, m.new_started_at, now(), m.snoozes, m.group_key
			  FROM moved m
		),
		changed AS (
			UPDATE jobs j
			   SET state = CASE WHEN h.fate = 'snoozed' THEN 'scheduled' ELSE h.fate END,
			       attempts = CASE WHEN h.fate IN ('queued', 'snoozed') THEN h.attempt - 1 ELSE h.attempt END,
			       started_at = CASE WHEN h.fate IN ('queued', 'snoozed') THEN NULL ELSE h.started_at END,
			       run_at = CASE WHEN h.fate IN ('scheduled', 'snoozed') THEN now() + h.backoff
			                     ELSE j.run_at END,
			       snoozes = j.snoozes + CASE WHEN h.fate = 'snoozed' THEN 1 ELSE 0 END,
			       error = CASE WHEN h.fate = 'scheduled' THEN h.error ELSE j.error END,
			       worker = CASE WHEN h.fate = 'running' THEN j.worker END,
			       lease_until = CASE WHEN h.fate = 'running' THEN j.lease_until END,
			       progress = CASE WHEN h.fate IN ('queued', 'snoozed') THEN NULL WHEN h.pct IS NOT NULL THEN h.pct
			                       ELSE j.progress END,
			       message = CASE WHEN h.fate IN ('queued', 'snoozed') THEN NULL WHEN h.pct IS NOT NULL THEN h.msg
			                      ELSE j.message END
			  FROM held h
			 WHERE j.id = h.id AND h.fate IN ('running', 'scheduled', 'queued', 'snoozed')
			RETURNING j.id
		)
		SELECT array_agg(h.ord ORDER BY h.ord), array_agg(h.fate ORDER BY h.ord),
		       array_agg(h.id) FILTER (WHERE h.fate = 'completed'),
		       array_agg(h.id) FILTER (WHERE h.fate IN ('failed', 'cancelled')),
		       array_agg(h.fate) FILTER (WHERE h.fate IN ('failed', 'cancelled')),
		       array_agg(DISTINCT h.queue) FILTER (WHERE h.fate = 'queued'),
		       array_agg(DISTINCT h.queue) FILTER (WHERE h.fate <> 'running'),
		       array_agg(DISTINCT h.queue) FILTER (WHERE h.fate <> 'running' AND h.grouped)
		  INTO v_ords, v_states, v_done, v_dead, v_dead_st, v_queues, v_freed, v_gfreed
		  FROM held h;
		-- A place freed in a full queue, or in a group: workers that found
		-- it full claim again.
		IF v_freed IS NOT NULL THEN
			PERFORM pg_notify(current_schema() || '_new', q.name)
			   FROM queues q WHERE q.name = ANY (v_freed) AND q.at_limit;
			PERFORM pg_notify(current_schema() || '_new', q) FROM unnest(v_gfreed) q;
		END IF;

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
		-- The worker's queues that are paused, limited or rated.
		SELECT array_agg(q.name ORDER BY q.name) INTO v_rules
		  FROM queues q
		 WHERE q.name = ANY (p_queues)
		   AND (q.paused OR q.max_running IS NOT NULL OR q.rate_n IS NOT NULL);
		-- The worker's queues with grouped jobs ready: one probe each.
		-- (LIMIT 1, not EXISTS: as a semi-join the planner read a whole
		-- group's entries with a bitmap scan.)
		SELECT array_agg(q.name ORDER BY q.name) INTO v_grouped
		  FROM (SELECT DISTINCT unnest(p_queues)) q(name)
		 WHERE (SELECT true FROM jobs x
		         WHERE x.state = 'queued' AND x.queue = q.name AND x.group_key IS NOT NULL
		         LIMIT 1);
		IF v_rules IS NOT NULL OR v_grouped IS NOT NULL THEN
			-- Claims of a limited, rated or grouped queue wait here for one
			-- another, always in the same order.  (A hash that two queues
			-- share only makes their claims wait for each other too.)
			PERFORM pg_advisory_xact_lock(flow_lock_class(), hashtext(l.name))
			   FROM (SELECT q.name FROM queues q
			          WHERE q.name = ANY (v_rules) AND (q.max_running IS NOT NULL OR q.rate_n IS NOT NULL)
			         UNION
			         SELECT unnest(v_grouped)) l
			  ORDER BY hashtext(l.name);
		END IF;
		IF v_rules IS NOT NULL THEN
			-- A statement of its own: its snapshot, taken once the locks
			-- were granted, sees every claim that committed before.
			-- Each queue's quota: none if paused; its limit less the jobs
			-- held; for a rated queue, no more than start now and fit in
			-- the window.  And when the window next has room, if it has none.
			SELECT array_agg(q.name), array_agg(greatest(0,
			           CASE WHEN q.paused THEN 0
			                ELSE least(p_run + p_ahead, q.max_running - l.held,
			                           CASE WHEN q.rate_n IS NOT NULL THEN least(p_run, q.rate_n - r.n) END)
			           END)),
			       array_agg(q.name) FILTER (WHERE q.rate_n IS NOT NULL AND NOT q.paused),
			       min(r.first + q.rate_window + rate_margin(q.rate_window))
			           FILTER (WHERE NOT q.paused AND r.n >= q.rate_n),
			       array_agg(q.name) FILTER (WHERE NOT q.paused
			                                   AND q.at_limit <> (q.max_running - l.held < p_run + p_ahead))
			  INTO v_qnames, v_quota, v_rated, v_rate_at, v_flip
			  FROM queues q,
			       LATERAL (SELECT count(*)::integer AS held FROM jobs j
			                 WHERE q.max_running IS NOT NULL
			                   AND j.queue = q.name AND j.state IN ('running', 'claimed')) l,
			       LATERAL (SELECT count(*)::integer AS n, min(s.at) AS first
			                  FROM unnest(q.starts) s(at)
			                 WHERE s.at > clock_timestamp() - q.rate_window - rate_margin(q.rate_window)) r
			 WHERE q.name = ANY (v_rules);
			-- Full, or no longer: written only when that changes.
			IF v_flip IS NOT NULL THEN
				UPDATE queues q SET at_limit = NOT q.at_limit WHERE q.name = ANY (v_flip);
			END IF;
		END IF;
		-- Each group's best jobs, as many as its limit leaves room for,
		-- locked; the claim below takes the best of them with the rest.
		-- Counted after the lock: every claim of a grouped job has it.
		FOREACH v_q IN ARRAY coalesce(v_grouped, '{}') LOOP
			CONTINUE WHEN coalesce(v_quota[array_position(v_qnames, v_q)], 1) = 0;
			v_glimit := coalesce((SELECT q.group_limit FROM queues q WHERE q.name = v_q), 1);
			SELECT coalesce(v_gids, '{}') || coalesce(array_agg(y.id), '{}') INTO v_gids
			  FROM (WITH RECURSIVE k(g) AS (
			            (SELECT x.group_key FROM jobs x
			              WHERE x.state = 'queued' AND x.queue = v_q AND x.group_key IS NOT NULL
			              ORDER BY x.group_key LIMIT 1)
			            UNION ALL
			            SELECT (SELECT x.group_key FROM jobs x
			                     WHERE x.state = 'queued' AND x.queue = v_q AND x.group_key IS NOT NULL
			                       AND x.group_key > k.g
			                     ORDER BY x.group_key LIMIT 1)
			              FROM k WHERE k.g IS NOT NULL)
			        SELECT k.g FROM k WHERE k.g IS NOT NULL) k,
			       LATERAL (SELECT x.id FROM jobs x
			                 WHERE x.state = 'queued' AND x.queue = v_q AND x.group_key = k.g
			                   AND NOT x.cancel
			                 ORDER BY x.priority, x.run_at, x.id
			                 LIMIT greatest(0, v_glimit - (SELECT count(*) FROM jobs h
			                                                WHERE h.state IN ('running', 'claimed')
			                                                  AND h.queue = v_q AND h.group_key = k.g
			                                                  AND h.group_key IS NOT NULL))
			                 FOR UPDATE SKIP LOCKED) y;
		END LOOP;
		-- Each queue's best rows from jobs_claim, as claim_jobs() takes them,
		-- best first, each queue within its quota.
		SELECT array_agg(c.id ORDER BY c.priority, c.run_at, c.id),
		       array_agg(c.queue ORDER BY c.priority, c.run_at, c.id)
		  INTO v_ids, v_idq
		  FROM (SELECT b.id, b.queue, b.priority, b.run_at
		          FROM (SELECT DISTINCT unnest(p_queues)) q(name),
		               LATERAL (SELECT u.id, u.queue, u.priority, u.run_at
		                          FROM (SELECT f.* FROM (SELECT x.id, x.queue, x.priority, x.run_at FROM jobs x
		                                  WHERE x.state = 'queued' AND x.queue = q.name
		                                    AND x.group_key IS NULL AND NOT x.cancel
		                                  ORDER BY x.priority, x.run_at, x.id
		                                  LIMIT coalesce(v_quota[array_position(v_qnames, q.name)],
		                                                 p_run + p_ahead)
		                                  FOR UPDATE SKIP LOCKED) f
		                                UNION ALL
		                                SELECT x.id, x.queue, x.priority, x.run_at FROM jobs x
		                                 WHERE v_gids IS NOT NULL AND x.id = ANY (v_gids)
		                                   AND x.queue = q.name) u
		                         ORDER BY u.priority, u.run_at, u.id
		                         LIMIT coalesce(v_quota[array_position(v_qnames, q.name)],
		                                        p_run + p_ahead)) b
		         ORDER BY b.priority, b.run_at, b.id
		         LIMIT p_run + p_ahead) c;
		IF v_rated IS NOT NULL THEN
			-- A rated queue's jobs start now or are not claimed: one left
			-- waiting in a local queue would start later than its claim
			-- says.  (Only ranks past p_run go, so the others keep theirs.)
			SELECT array_agg(u.id ORDER BY u.n), array_agg(u.q ORDER BY u.n) INTO v_ids, v_idq
			  FROM unnest(v_ids, v_idq) WITH ORDINALITY u(id, q, n)
			 WHERE u.n <= p_run OR u.q <> ALL (v_rated);
			UPDATE queues q
			   SET starts = (SELECT coalesce(array_agg(s.at ORDER BY s.at), '{}') FROM unnest(q.starts) s(at)
			                  WHERE s.at > clock_timestamp() - q.rate_window - rate_margin(q.rate_window))
			                || array_fill(clock_timestamp(), ARRAY[c.n])
			  FROM (SELECT u.q, count(*)::integer AS n FROM unnest(v_idq) u(q)
			         WHERE u.q = ANY (v_rated) GROUP BY u.q) c
			 WHERE q.name = c.q;
		END IF;
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
		-- job is due (timeout: how long from now), or a rated queue's
		-- window has room, if that is sooner than its poll, with no
		-- statement more.
		IF v_got < p_run + p_ahead THEN
			RETURN QUERY
			SELECT NULL::bigint, NULL::text, NULL::jsonb, NULL::integer, NULL::integer,
			       least(min(d.run_at) - now(), v_rate_at - clock_timestamp()), NULL::integer, 'due'::text
			  FROM jobs d
			 WHERE d.state = 'scheduled' AND d.waiting = 0 AND d.queue = ANY (p_queues);
		END IF;
	END IF;
END
$$;

-- jq-retry --now: a scheduled job (a delay, or a backoff between
-- attempts) becomes queued at once, its attempts as they are.  Returns
-- the job's state afterwards ('queued' if moved), NULL for no such job.
-- One still waiting for dependencies stays scheduled.
CREATE FUNCTION run_now(p_id bigint) RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_state text;
	v_queue text;
BEGIN
	UPDATE jobs j SET state = 'queued', run_at = now()
	 WHERE j.id = p_id AND j.state = 'scheduled' AND j.waiting = 0
	RETURNING j.queue INTO v_queue;
	IF FOUND THEN
		PERFORM pg_notify(current_schema() || '_new', v_queue);
		RETURN 'queued';
	END IF;
	SELECT j.state INTO v_state FROM jobs j WHERE j.id = p_id;
	IF NOT FOUND THEN
		SELECT h.state INTO v_state FROM history h WHERE h.id = p_id;
	END IF;
	RETURN v_state;
END
$$;

-- jq-queue purge: deletes up to p_limit of the queue's jobs in the states
-- given, never a running or claimed one, and returns how many.  A live
-- job (scheduled, queued) goes if created before p_before, a finished one
-- if it finished before it (NULL: any).  Called once per batch, each its
-- own transaction, so no lock is held long and vacuum keeps up.  Jobs
-- that waited for a deleted live job are cancelled, as when a dependency
-- is cancelled.
CREATE FUNCTION purge_batch(p_queue text, p_states text[], p_before timestamptz, p_limit integer)
RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_ids bigint[];
	v_n   integer;
	v_dep record;
BEGIN
	IF EXISTS (SELECT 1 FROM unnest(p_states) s
	            WHERE s IS NULL OR s NOT IN ('scheduled', 'queued', 'completed', 'failed', 'cancelled')) THEN
		RAISE EXCEPTION 'purge_batch: only scheduled, queued, completed, failed and cancelled jobs are purged'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	WITH d AS (
		DELETE FROM jobs j
		 WHERE j.id IN (SELECT x.id FROM jobs x
		                 WHERE x.queue = p_queue AND x.state = ANY (p_states)
		                   AND x.state IN ('scheduled', 'queued')
		                   AND (p_before IS NULL OR x.created_at < p_before)
		                 LIMIT p_limit FOR UPDATE SKIP LOCKED)
		   AND j.state IN ('scheduled', 'queued')
		RETURNING j.id
	)
	SELECT array_agg(d.id) INTO v_ids FROM d;
	v_n := coalesce(cardinality(v_ids), 0);
	IF v_ids IS NOT NULL AND EXISTS (SELECT 1 FROM jobs w WHERE w.waiting > 0) THEN
		FOR v_dep IN SELECT j.id, d.id AS dead
		               FROM unnest(v_ids) d(id),
		                    LATERAL (SELECT x.id FROM jobs x
		                              WHERE x.after @> ARRAY[d.id] AND x.after IS NOT NULL
		                                AND x.state NOT IN ('running', 'claimed')) j
		              ORDER BY j.id LOOP
			PERFORM finish_job(v_dep.id, 'cancelled', NULL, NULL,
			                   format('dependency %s was purged', v_dep.dead));
		END LOOP;
	END IF;
	IF v_n < p_limit THEN
		WITH d AS (
			DELETE FROM history h
			 WHERE h.id IN (SELECT x.id FROM history x
			                 WHERE x.queue = p_queue AND x.state = ANY (p_states)
			                   AND (p_before IS NULL OR x.finished_at < p_before)
			                 LIMIT p_limit - v_n FOR UPDATE SKIP LOCKED)
			RETURNING 1
		)
		SELECT v_n + count(*) INTO v_n FROM d;
	END IF;
	RETURN v_n;
END
$$;

-- What purge_batch() would delete, for jq-queue to ask about.
CREATE FUNCTION purge_count(p_queue text, p_states text[], p_before timestamptz)
RETURNS bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	SELECT (SELECT count(*) FROM jobs x
	         WHERE x.queue = p_queue AND x.state = ANY (p_states) AND x.state IN ('scheduled', 'queued')
	           AND (p_before IS NULL OR x.created_at < p_before))
	     + (SELECT count(*) FROM history x
	         WHERE x.queue = p_queue AND x.state = ANY (p_states)
	           AND (p_before IS NULL OR x.finished_at < p_before))
$$;

-- Replaces turn() of version 10, for workers of that version: the one
-- above, with the default bound on snoozes (they send none).
CREATE OR REPLACE FUNCTION turn(p_worker bigint, p_ids bigint[], p_attempts integer[], p_kinds text[],
                                p_ran interval[], p_results jsonb[], p_errors text[],
                                p_permanent boolean[], p_backoffs interval[], p_progress smallint[],
                                p_messages text[], p_channel text,
                                p_queues text[], p_run integer, p_ahead integer, p_lease interval)
RETURNS TABLE (id bigint, queue text, payload jsonb, attempt integer, max_attempts integer,
               timeout interval, priority integer, state text)
LANGUAGE sql SET search_path FROM CURRENT AS $$
	SELECT * FROM turn(p_worker, p_ids, p_attempts, p_kinds, p_ran, p_results, p_errors,
	                   p_permanent, p_backoffs, p_progress, p_messages, p_channel,
	                   p_queues, p_run, p_ahead, p_lease, NULL::integer)
$$;

-- enqueue_job() with a group: what jq-enqueue --group calls (roles.sql
-- lets producers call it).  A job a key found keeps the group it has.
CREATE FUNCTION enqueue_grouped(
	payload      jsonb,
	queue        text,
	priority     integer,
	delay        interval,
	"at"         timestamptz,
	max_attempts integer,
	timeout      interval,
	key          text,
	after        bigint[],
	p_group      text,
	OUT id       bigint,
	OUT state    text,
	OUT is_new   boolean
)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
BEGIN
	SELECT e.id, e.state, e.is_new INTO id, state, is_new
	  FROM enqueue_job(payload, queue, priority, delay, "at", max_attempts, timeout, key, after) e;
	IF is_new AND p_group IS NOT NULL THEN
		UPDATE jobs j SET group_key = p_group WHERE j.id = enqueue_grouped.id;
	END IF;
END
$$;
