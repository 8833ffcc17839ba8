-- pgjq schema, version 1: the job tables, the NOTIFY on arrival, and
-- enqueue() for applications that enqueue inside their own transactions.
--
-- Every name here is unqualified: whoever applies this has set search_path
-- to "<schema>, pg_catalog, pg_temp" first, and functions keep that path
-- (SET search_path FROM CURRENT), so one file serves any --schema.
--
-- Why two tables: `jobs` holds only live jobs (scheduled, queued,
-- running).  Workers claim, renew leases and report progress there all day,
-- so it must stay small for its indexes to stay in memory and for
-- autovacuum to keep up; a fillfactor below 100 leaves room on each page
-- for the frequent HOT updates (progress, lease) that touch no index.
-- When a job finishes it moves to `history`, which is append-mostly,
-- queryable for as long as retention keeps it, and pruned in small
-- batches by the workers.  The key's uniqueness then comes for free:
-- "not yet finished" is exactly "still in jobs".

CREATE TABLE schema_version (
	version    integer PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
);

-- A sequence of its own, so jq-enqueue can take ids for a whole COPY in
-- one round trip and print them in input order.
CREATE SEQUENCE job_id_seq;

CREATE TABLE jobs (
	id           bigint PRIMARY KEY DEFAULT nextval('job_id_seq'),
	queue        text NOT NULL CHECK (queue ~ '^[A-Za-z0-9_.:-]{1,64}$'),
	state        text NOT NULL DEFAULT 'queued'
	             CHECK (state IN ('scheduled', 'queued', 'running')),
	priority     integer NOT NULL DEFAULT 0,       -- lower runs first
	run_at       timestamptz NOT NULL DEFAULT now(),
	waiting      integer NOT NULL DEFAULT 0,       -- dependencies not yet completed
	after        bigint[],                         -- the ids it depends on
	payload      jsonb NOT NULL,
	attempts     integer NOT NULL DEFAULT 0,       -- attempts started
	max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
	timeout      interval CHECK (timeout > '0'),   -- run time limit per attempt
	key          text CHECK (length(key) BETWEEN 1 AND 512),
	progress     smallint CHECK (progress BETWEEN 0 AND 100),
	message      text,                             -- progress message
	result       jsonb,
	error        text,                             -- the last attempt's error
	worker       bigint,                           -- workers.id of its holder while running
	cancel       boolean NOT NULL DEFAULT false,   -- cancelling asked while it runs
	lease_until  timestamptz,
	created_at   timestamptz NOT NULL DEFAULT now(),
	started_at   timestamptz,                      -- the current attempt's start
	finished_at  timestamptz
) WITH (fillfactor = 70);

-- The claim: WHERE state = 'queued' AND queue = ANY($1)
--            ORDER BY priority, run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
CREATE INDEX jobs_claim ON jobs (queue, priority, run_at, id)
	WHERE state = 'queued';
-- Scheduled jobs whose time has come are promoted to queued; the worker
-- also sleeps until min(run_at) here.  Jobs still waiting for
-- dependencies are not due whatever their time.
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'scheduled' AND waiting = 0;
-- Expired leases: jobs whose worker died.
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_key ON jobs (queue, key) WHERE key IS NOT NULL;
-- Dependants of a job that just finished.
CREATE INDEX jobs_after ON jobs USING gin (after) WHERE after IS NOT NULL;

CREATE TABLE history (LIKE jobs INCLUDING DEFAULTS);
ALTER TABLE history
	ADD PRIMARY KEY (id),
	ADD CHECK (state IN ('completed', 'failed', 'cancelled'));
CREATE INDEX history_queue_finished ON history (queue, finished_at);
CREATE INDEX history_finished ON history (finished_at);

CREATE VIEW all_jobs AS
	SELECT * FROM jobs
	UNION ALL
	SELECT * FROM history;

-- One NOTIFY per statement and queue, not per row: a COPY of a million
-- jobs wakes each worker once.  The channel is "<schema>_new" and the
-- payload the queue's name; NOTIFY is delivered only if the inserting
-- transaction commits.
CREATE FUNCTION notify_new() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	q text;
BEGIN
	FOR q IN SELECT DISTINCT n.queue FROM new_jobs n LOOP
		PERFORM pg_notify(TG_TABLE_SCHEMA || '_new', q);
	END LOOP;
	RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_new AFTER INSERT ON jobs
	REFERENCING NEW TABLE AS new_jobs
	FOR EACH STATEMENT EXECUTE FUNCTION notify_new();

-- enqueue_job() does the work and tells jq-enqueue whether the job is new;
-- enqueue() is the public face of the contract.
CREATE FUNCTION enqueue_job(
	payload      jsonb,
	queue        text,
	priority     integer,
	delay        interval,
	"at"         timestamptz,
	max_attempts integer,
	timeout      interval,
	key          text,
	after        bigint[],
	OUT id       bigint,
	OUT state    text,
	OUT is_new   boolean
)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
	v_run_at  timestamptz;
	v_waiting integer := 0;
	v_missing bigint;
	v_dead    record;
	v_state   text;
BEGIN
	IF enqueue_job.payload IS NULL THEN
		RAISE EXCEPTION 'payload must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF enqueue_job.delay IS NOT NULL AND enqueue_job."at" IS NOT NULL THEN
		RAISE EXCEPTION 'delay and at exclude each other' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF enqueue_job.delay < '0' THEN
		RAISE EXCEPTION 'delay must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	v_run_at := coalesce(enqueue_job."at", now() + coalesce(enqueue_job.delay, '0'));

	IF enqueue_job.after IS NOT NULL AND cardinality(enqueue_job.after) > 0 THEN
		enqueue_job.after := ARRAY(SELECT DISTINCT d FROM unnest(enqueue_job.after) d ORDER BY d);
		-- Lock the live dependencies so none can finish (and look for
		-- its dependants) before this transaction commits: without the
		-- lock a finisher could miss this job and leave it waiting forever.
		PERFORM 1 FROM jobs j WHERE j.id = ANY (enqueue_job.after) ORDER BY j.id FOR KEY SHARE;
		SELECT count(*) INTO v_waiting FROM jobs j WHERE j.id = ANY (enqueue_job.after);
		SELECT d INTO v_missing FROM unnest(enqueue_job.after) d
		 WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = d)
		   AND NOT EXISTS (SELECT 1 FROM history h WHERE h.id = d)
		 LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'no such job: %', v_missing USING ERRCODE = 'no_data_found';
		END IF;
		SELECT h.id, h.state INTO v_dead FROM history h
		 WHERE h.id = ANY (enqueue_job.after) AND h.state <> 'completed'
		 ORDER BY h.id LIMIT 1;
		IF FOUND THEN
			-- Its dependency can never complete: the job is born cancelled,
			-- just as it would be cancelled had the dependency failed later.
			INSERT INTO history (queue, state, priority, run_at, after, payload,
			                     max_attempts, timeout, key, error, finished_at)
			VALUES (enqueue_job.queue, 'cancelled', enqueue_job.priority, v_run_at,
			        enqueue_job.after, enqueue_job.payload, enqueue_job.max_attempts,
			        enqueue_job.timeout, enqueue_job.key,
			        format('dependency %s %s', v_dead.id,
			               CASE v_dead.state WHEN 'failed' THEN 'failed' ELSE 'was cancelled' END),
			        now())
			RETURNING history.id INTO id;
			state := 'cancelled';
			is_new := true;
			RETURN;
		END IF;
	END IF;

	v_state := CASE WHEN v_waiting > 0 OR v_run_at > now() THEN 'scheduled' ELSE 'queued' END;
	LOOP
		INSERT INTO jobs (queue, state, priority, run_at, waiting, after, payload,
		                  max_attempts, timeout, key)
		VALUES (enqueue_job.queue, v_state, enqueue_job.priority, v_run_at, v_waiting,
		        enqueue_job.after, enqueue_job.payload, enqueue_job.max_attempts,
		        enqueue_job.timeout, enqueue_job.key)
		ON CONFLICT (queue, key) WHERE key IS NOT NULL DO NOTHING
		RETURNING jobs.id, jobs.state INTO id, state;
		IF FOUND THEN
			is_new := true;
			RETURN;
		END IF;
		-- Same key, not yet finished: that job is the answer.  If it
		-- finished between the two statements, try the insert again.
		SELECT j.id, j.state INTO id, state FROM jobs j
		 WHERE j.queue = enqueue_job.queue AND j.key = enqueue_job.key;
		IF FOUND THEN
			is_new := false;
			RETURN;
		END IF;
	END LOOP;
END
$$;

CREATE FUNCTION enqueue(
	payload      jsonb,
	queue        text DEFAULT 'default',
	priority     integer DEFAULT 0,
	delay        interval DEFAULT NULL,
	"at"         timestamptz DEFAULT NULL,
	max_attempts integer DEFAULT 3,
	timeout      interval DEFAULT NULL,
	key          text DEFAULT NULL,
	after        bigint[] DEFAULT NULL
) RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
	SELECT (enqueue_job(payload, queue, priority, delay, "at", max_attempts,
	                    timeout, key, after)).id
$$;
