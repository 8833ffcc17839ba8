-- pgjq schema, version 12: recurring jobs (jq-schedule).
--
-- A schedule says when (a cron expression in a zone, or an interval),
-- where (a queue) and what (a payload and the enqueue settings).  When
-- its slots fall is worked out by the clients (lib/cron.c, with the
-- system's tz database); the database keeps the one fact that makes
-- firing exactly-once: next_at, the next slot not yet fired.  Whoever
-- fires a slot moves next_at past it in the same transaction as the job,
-- under the schedule row's lock, and only if next_at is still what it
-- read; a second worker (or one restarted mid-fire, whose transaction
-- rolled back) finds next_at moved on and makes nothing.  Job keys alone
-- would not do: a slot's job that has finished has left jobs, and its
-- key with it.
--
-- Nothing here sends notices on a channel of its own: the tools that
-- change schedules tell the workers, on the channel they name.

CREATE TABLE schedules (
	name         text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.:-]{1,64}$'),
	queue        text NOT NULL CHECK (queue ~ '^[A-Za-z0-9_.:-]{1,64}$'),
	cron         text CHECK (length(cron) BETWEEN 1 AND 256),
	every        interval CHECK (every >= '1 second'),
	tz           text NOT NULL DEFAULT 'UTC' CHECK (length(tz) BETWEEN 1 AND 127),
	catch_up     text NOT NULL DEFAULT 'last' CHECK (catch_up IN ('none', 'last', 'all')),
	payload      jsonb NOT NULL,
	priority     integer NOT NULL DEFAULT 0,
	max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
	timeout      interval CHECK (timeout > '0'),
	paused       boolean NOT NULL DEFAULT false,
	next_at      timestamptz NOT NULL,             -- the next slot not yet fired
	last_slot    timestamptz,                      -- the last slot fired (or run by hand)
	last_job     bigint,                           -- and its job
	last_success timestamptz,                      -- when a job of it last completed, as last seen
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	CHECK ((cron IS NULL) <> (every IS NULL))
);
-- Workers read the schedules of their queues, and sleep until min(next_at).
CREATE INDEX schedules_due ON schedules (queue, next_at) WHERE NOT paused;

-- The jobs a schedule fired whose outcome is not yet folded into
-- last_success.  A row goes once its job is finished (or gone).
CREATE TABLE schedule_jobs (
	name text NOT NULL REFERENCES schedules ON DELETE CASCADE,
	slot timestamptz NOT NULL,
	job  bigint NOT NULL,
	PRIMARY KEY (name, slot)
);
CREATE INDEX schedule_jobs_job ON schedule_jobs (job);

-- The uniqueness key of a slot's job: also how a job's schedule and slot
-- are read back.  Seconds suffice: an interval is at least one.
CREATE FUNCTION schedule_key(p_name text, p_slot timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT AS $$
	SELECT 'schedule/' || p_name || '/' ||
	       to_char(p_slot AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- When a job of the schedule last completed: what was folded in, or a job
-- fired since that has completed.
CREATE FUNCTION schedule_last_success(p_name text) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	SELECT greatest(s.last_success,
	                (SELECT max(h.finished_at) FROM schedule_jobs j
	                   JOIN history h ON h.id = j.job AND h.state = 'completed'
	                  WHERE j.name = s.name))
	  FROM schedules s WHERE s.name = p_name
$$;

-- Enqueues the schedule's job for slot p_slot (s locked by the caller).
CREATE FUNCTION schedule_enqueue(s schedules, p_slot timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_id bigint;
BEGIN
	v_id := enqueue(s.payload, s.queue, s.priority, NULL, NULL, s.max_attempts, s.timeout,
	                schedule_key(s.name, p_slot), NULL);
	INSERT INTO schedule_jobs (name, slot, job) VALUES (s.name, p_slot, v_id)
	ON CONFLICT (name, slot) DO UPDATE SET job = excluded.job;
	RETURN v_id;
END
$$;

-- Folds the finished jobs of the schedule into last_success and forgets them.
CREATE FUNCTION schedule_settle(p_name text) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
	UPDATE schedules s SET last_success = schedule_last_success(p_name) WHERE s.name = p_name;
	DELETE FROM schedule_jobs j
	 WHERE j.name = p_name AND NOT EXISTS (SELECT 1 FROM jobs x WHERE x.id = j.job);
$$;

-- Fires the slots p_slots of schedule p_name, in order, if its next slot
-- is still p_due (what the caller read before working out the slots),
-- and moves next_at to p_next.  Returns the slots fired and their jobs:
-- none if another worker fired first, the schedule or its queue was
-- paused, or it was changed or removed meanwhile (next_at, set afresh by
-- add and resume, says so).
CREATE FUNCTION schedule_fire(p_name text, p_due timestamptz, p_slots timestamptz[],
                              p_next timestamptz)
RETURNS TABLE (slot timestamptz, job bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	s      schedules;
	v_slot timestamptz;
	v_id   bigint;
BEGIN
	SELECT * INTO s FROM schedules x WHERE x.name = p_name FOR UPDATE;
	IF NOT FOUND OR s.paused OR s.next_at IS DISTINCT FROM p_due OR p_next <= p_due
	   OR EXISTS (SELECT 1 FROM queues q WHERE q.name = s.queue AND q.paused) THEN
		RETURN;
	END IF;
	PERFORM schedule_settle(p_name);
	FOREACH v_slot IN ARRAY coalesce(p_slots, '{}') LOOP
		v_id := schedule_enqueue(s, v_slot);
		slot := v_slot;
		job := v_id;
		RETURN NEXT;
	END LOOP;
	UPDATE schedules x
	   SET next_at = p_next, last_slot = coalesce(v_slot, x.last_slot),
	       last_job = coalesce(v_id, x.last_job)
	 WHERE x.name = p_name;
END
$$;

-- jq-schedule run: the schedule's job now, its slot this moment; the
-- schedule's own slots are untouched.  NULL if there is no such schedule.
CREATE FUNCTION schedule_run(p_name text) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	s    schedules;
	v_id bigint;
BEGIN
	SELECT * INTO s FROM schedules x WHERE x.name = p_name FOR UPDATE;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	PERFORM schedule_settle(p_name);
	v_id := schedule_enqueue(s, date_trunc('second', now()));
	UPDATE schedules x SET last_slot = date_trunc('second', now()), last_job = v_id
	 WHERE x.name = p_name;
	RETURN v_id;
END
$$;

-- Schedules and flow control (version 11): a schedule whose queue is
-- paused fires nothing; its slots wait, and on resume follow --catch-up.

-- Replaces queue_known() of version 11: a queue that only a schedule
-- names is known too, so that it may be paused before its first job.
CREATE OR REPLACE FUNCTION queue_known(p_queue text) RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	SELECT EXISTS (SELECT 1 FROM queues q WHERE q.name = p_queue)
	    OR EXISTS (SELECT 1 FROM schedules s WHERE s.queue = p_queue)
	    OR EXISTS (SELECT 1 FROM jobs j WHERE j.queue = p_queue)
	    OR EXISTS (SELECT 1 FROM history h WHERE h.queue = p_queue)
	    OR EXISTS (SELECT 1 FROM workers w WHERE p_queue = ANY (w.queues)
	                                          AND w.seen_at >= now() - w.lease)
$$;

-- Replaces pause_queue() of version 11: the queue's workers also look at
-- its schedules again, to fire what waited for the resume.
CREATE OR REPLACE FUNCTION pause_queue(p_queue text, p_paused boolean) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	INSERT INTO queues AS q (name, paused) VALUES (p_queue, p_paused)
	ON CONFLICT (name) DO UPDATE SET paused = p_paused, changed_at = now();
	IF p_paused THEN
		PERFORM pg_notify(current_schema() || '_cancel', 'pause ' || p_queue);
	ELSE
		PERFORM pg_notify(current_schema() || '_new', p_queue);
		PERFORM pg_notify(current_schema() || '_schedule', p_queue);
	END IF;
END
$$;
