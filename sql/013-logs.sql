-- pgjq schema, version 13: job logs.  Everything a handler writes to
-- stderr, and its progress lines, kept per attempt with the time of each
-- line and the stream it came from, for as long as the job is kept.
--
-- The worker sends the lines of a turn in one call of append_logs(),
-- pipelined with turn() in the same round trip and the same implicit
-- transaction: the lines of an attempt are committed no later than its
-- outcome.  No foreign key to jobs: a finished job moves from jobs to
-- history by DELETE and INSERT, and its lines must stay put meanwhile.

CREATE TABLE logs (
	id      bigserial PRIMARY KEY,  -- the order lines were written in
	job_id  bigint NOT NULL,
	attempt integer NOT NULL,
	at      timestamptz NOT NULL,   -- when the worker read the line
	stream  text NOT NULL CHECK (stream IN ('stderr', 'progress', 'http', 'worker')),
	line    text NOT NULL
);
-- Reading and following one job's log, in order, from a given line on.
CREATE INDEX logs_job ON logs (job_id, id);

-- Appends lines: line i is p_lines[i], of attempt p_attempts[i] of job
-- p_ids[i], read at p_ats[i] from stream p_streams[i].  Tells channel
-- p_channel (jq-status --log -f listens there) each job's id once, so a
-- follower reads what is new.  Returns how many lines it kept.
CREATE FUNCTION append_logs(p_ids bigint[], p_attempts integer[], p_ats timestamptz[],
                            p_streams text[], p_lines text[], p_channel text)
RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_n integer := coalesce(cardinality(p_ids), 0);
BEGIN
	IF coalesce(cardinality(p_attempts), 0) <> v_n OR coalesce(cardinality(p_ats), 0) <> v_n
	   OR coalesce(cardinality(p_streams), 0) <> v_n OR coalesce(cardinality(p_lines), 0) <> v_n THEN
		RAISE EXCEPTION 'append_logs: the arrays differ in length'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF v_n = 0 THEN
		RETURN 0;
	END IF;
	INSERT INTO logs (job_id, attempt, at, stream, line)
	SELECT u.job, u.attempt, u.at, u.stream, u.line
	  FROM unnest(p_ids, p_attempts, p_ats, p_streams, p_lines)
	       WITH ORDINALITY AS u(job, attempt, at, stream, line, n)
	 ORDER BY u.n;
	PERFORM pg_notify(p_channel, d.job::text) FROM (SELECT DISTINCT job FROM unnest(p_ids) job) d;
	RETURN v_n;
END
$$;

-- A job leaves history (retention, or jq-retry starting it afresh with a
-- new set of attempts): its log goes with it.
CREATE FUNCTION logs_follow_history() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	DELETE FROM logs l USING gone g WHERE l.job_id = g.id;
	RETURN NULL;
END
$$;
CREATE TRIGGER history_logs AFTER DELETE ON history
	REFERENCING OLD TABLE AS gone
	FOR EACH STATEMENT EXECUTE FUNCTION logs_follow_history();

-- jq-worker --keep-logs: removes lines older than p_keep, whatever their
-- job, looking at no more than the p_batch oldest (ids grow with time, so
-- a table of young lines costs a glance, not a scan).  Only one caller
-- at a time does anything; the others get -1 at once.  Returns how many
-- lines it removed; the caller calls again while that is p_batch.
CREATE FUNCTION prune_logs(p_keep interval, p_batch integer)
RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_n integer;
BEGIN
	IF NOT pg_try_advisory_xact_lock(7367281, hashtext(current_schema() || '/prune_logs')) THEN
		RETURN -1;
	END IF;
	DELETE FROM logs l
	 WHERE l.id IN (SELECT o.id
	                  FROM (SELECT f.id, f.at FROM logs f ORDER BY f.id LIMIT p_batch) o
	                 WHERE o.at < now() - p_keep);
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END
$$;
