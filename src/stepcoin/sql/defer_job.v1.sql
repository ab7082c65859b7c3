-- stepcoin_defer_job: enqueue one procrastinate job inside the caller's transaction.
--
-- The job exists exactly when the caller's change commits (the transactional outbox). With a
-- queueing lock, a job of that lock already waiting makes this a no-op that returns NULL
-- (procrastinate raises unique_violation; only that case is caught, in a subtransaction that
-- is entered only when a queueing lock is given). Used from Python (stepcoin.queue) and SQL.
CREATE OR REPLACE FUNCTION stepcoin_defer_job(
    p_queue text, p_task text, p_lock text, p_queueing_lock text, p_args jsonb)
RETURNS bigint LANGUAGE plpgsql AS $fn$
BEGIN
    IF p_queueing_lock IS NULL THEN
        RETURN (procrastinate_defer_jobs_v1(ARRAY[ROW(
            p_queue, p_task, 0, p_lock, NULL, p_args, NULL)::procrastinate_job_to_defer_v1]))[1];
    END IF;
    BEGIN
        RETURN (procrastinate_defer_jobs_v1(ARRAY[ROW(
            p_queue, p_task, 0, p_lock, p_queueing_lock, p_args, NULL
        )::procrastinate_job_to_defer_v1]))[1];
    EXCEPTION WHEN unique_violation THEN
        RETURN NULL;  -- a job with this queueing lock is already waiting
    END;
END
$fn$;
