-- pgjq: least-privilege roles for one pgjq schema.
--
--     psql -v schema=jq -1 -f roles.sql
--     psql -c 'GRANT jq_producer TO alice'
--
-- Three NOLOGIN group roles, named after the schema (-v prefix=NAME names
-- them NAME_observer, ... instead):
--
--   <schema>_observer  reads everything: jq-status, jq-stats, SELECT on
--                      jobs, history, all_jobs, workers
--   <schema>_producer  an observer that enqueues: jq-enqueue, enqueue()
--   <schema>_worker    an observer that runs jobs: jq-worker (register,
--                      claim, renew, finish, release, reap, prune history,
--                      fire the schedules of its queues)
--
-- None of them may cancel or retry jobs (jq-cancel, jq-retry), add or
-- change schedules (jq-schedule add, rm, pause, resume, run), change
-- the schema, or call the internal functions; those stay with the owner.
-- A login role is given one or more of them:
--
--     CREATE ROLE alice LOGIN IN ROLE jq_producer;
--     GRANT jq_worker, jq_producer TO bob;  -- handlers that enqueue follow-ups
--
-- Apply it as the schema's owner (with CREATEROLE to create the roles),
-- after the schema exists, and again after every upgrade: an upgrade may
-- replace functions, and a replaced function has lost what this file gave
-- it.  Until then the roles are refused more, never allowed more.
-- Applying it again is harmless.
--
-- How, and why.  Every change to a job is made by a function of the
-- schema, and the functions the roles call to change jobs run with their
-- owner's rights (SECURITY DEFINER).  The alternative, table privileges,
-- would have to be broad: finishing a job deletes it from jobs and
-- inserts it into history, claiming locks rows FOR UPDATE, cancelling
-- dependants touches other jobs, so a worker would need DELETE and UPDATE
-- on every column of jobs and INSERT on history, and could rewrite any
-- job's payload or erase the history.  Through the functions a role can
-- make exactly the transitions the tools make, checked as the tools'
-- are.  These functions are safe to run with the owner's rights because
-- each keeps a search_path that starts with the schema and ends with
-- pg_temp, and only the owner may create objects in the schema; EXECUTE
-- is taken from PUBLIC on every function, so only the roles named here
-- may call them.  Let the owner be an ordinary role, not a superuser.
--
-- Two narrow table privileges remain, for statements the tools run
-- directly: a producer may INSERT the columns jq-enqueue's COPY fills
-- (COPY is what makes bulk enqueueing fast) and take ids from
-- job_id_seq; a worker may UPDATE progress and message (as workers
-- before schema version 8 report it; later ones report it through
-- finish_and_claim).  A producer who
-- writes rows by hand can set only those columns, within the rules the
-- table keeps (sql/007-rules.sql): no job born running, no id past
-- job_id_seq or of a finished job.  It cannot touch existing jobs.
--
-- Reading needs nothing special: SELECT on every table and view, and
-- EXECUTE on every function that is not VOLATILE, since PostgreSQL lets
-- no STABLE or IMMUTABLE function change data.  A new function that the
-- observer must not call must therefore be VOLATILE.
\set ON_ERROR_STOP on
\if :{?schema}
\else
\set schema jq
\endif
\if :{?prefix}
\else
\set prefix :schema
\endif
-- Qualified names only, and nothing from the caller's path.
SET search_path = pg_catalog, pg_temp;
SET pgjq.schema = :'schema';
SET pgjq.prefix = :'prefix';

DO $roles$
DECLARE
	v_schema   constant text := current_setting('pgjq.schema');
	v_observer constant text := current_setting('pgjq.prefix') || '_observer';
	v_producer constant text := current_setting('pgjq.prefix') || '_producer';
	v_worker   constant text := current_setting('pgjq.prefix') || '_worker';
	-- What each role may call to change jobs; each runs as the owner.
	c_produce  constant text[] := ARRAY['enqueue_job', 'enqueue_grouped'];
	c_work     constant text[] := ARRAY['register_worker', 'claim_jobs', 'renew_leases',
	                                    'unregister_worker', 'complete_attempt', 'fail_attempt',
	                                    'release_job', 'reap_expired', 'prune_history',
	                                    'finish_and_claim', 'turn', 'append_logs', 'prune_logs',
	                                    'schedule_fire'];
	v_nsp      oid;
	v_owner    name;
	v_name     text;
	v_role     text;
	v_fn       regprocedure;
BEGIN
	SELECT n.oid, pg_get_userbyid(n.nspowner) INTO v_nsp, v_owner
	  FROM pg_namespace n WHERE n.nspname = v_schema;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'schema "%" does not exist', v_schema
			USING HINT = 'Create it first: apply pgjq.sql, or run any pgjq tool once as its owner.';
	END IF;
	IF octet_length(v_observer) > 63 THEN
		RAISE EXCEPTION 'role name "%" is longer than 63 bytes', v_observer
			USING HINT = 'Name the roles with a shorter -v prefix=NAME.';
	END IF;
	FOREACH v_name IN ARRAY c_produce || c_work || ARRAY['enqueue'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = v_nsp AND p.proname = v_name) THEN
			RAISE EXCEPTION 'schema "%" has no function %(): it is older than this roles.sql',
				v_schema, v_name
				USING HINT = 'Upgrade it first: run any pgjq tool once as its owner.';
		END IF;
	END LOOP;
	IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = v_owner) THEN
		RAISE WARNING 'schema "%" belongs to the superuser "%": the roles'' functions run with its rights',
			v_schema, v_owner
			USING HINT = 'Let an ordinary role own the schema and everything in it.';
	END IF;

	FOREACH v_role IN ARRAY ARRAY[v_observer, v_producer, v_worker] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = v_role) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
		END IF;
	END LOOP;
	FOREACH v_role IN ARRAY ARRAY[v_producer, v_worker] LOOP
		IF NOT pg_has_role(v_role, v_observer, 'MEMBER') THEN
			EXECUTE format('GRANT %I TO %I', v_observer, v_role);
		END IF;
	END LOOP;

	-- From nothing, so that a run after an upgrade leaves no stale grant.
	EXECUTE format('REVOKE ALL ON ALL ROUTINES IN SCHEMA %I FROM PUBLIC, %I, %I, %I',
		v_schema, v_observer, v_producer, v_worker);
	EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I, %I, %I',
		v_schema, v_observer, v_producer, v_worker);
	EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %I, %I, %I',
		v_schema, v_observer, v_producer, v_worker);
	EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I, %I, %I',
		v_schema, v_observer, v_producer, v_worker);

	EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_schema, v_observer);
	EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', v_schema, v_observer);
	FOR v_fn IN SELECT p.oid::regprocedure FROM pg_proc p
	             WHERE p.pronamespace = v_nsp AND p.prokind = 'f' AND p.provolatile <> 'v' LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_fn, v_observer);
	END LOOP;

	EXECUTE format('GRANT INSERT (id, queue, state, run_at, priority, max_attempts, timeout, payload) '
		'ON TABLE %I.jobs TO %I', v_schema, v_producer);
	EXECUTE format('GRANT USAGE ON SEQUENCE %I.job_id_seq TO %I', v_schema, v_producer);
	EXECUTE format('GRANT UPDATE (progress, message) ON TABLE %I.jobs TO %I', v_schema, v_worker);

	FOR v_fn, v_name IN SELECT p.oid::regprocedure, p.proname FROM pg_proc p
	                     WHERE p.pronamespace = v_nsp AND p.proname = ANY (c_produce || c_work) LOOP
		EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', v_fn);
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_fn,
			CASE WHEN v_name = ANY (c_produce) THEN v_producer ELSE v_worker END);
	END LOOP;
	-- enqueue() only calls enqueue_job(): it needs no rights of its own.
	FOR v_fn IN SELECT p.oid::regprocedure FROM pg_proc p
	             WHERE p.pronamespace = v_nsp AND p.proname = 'enqueue' LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_fn, v_producer);
	END LOOP;
END
$roles$;

RESET pgjq.schema;
RESET pgjq.prefix;
