-- stepcoin_defer_job with a time to run at (issue 13, migration 0043): as the five-argument
-- form of defer_job.v1.sql, which stays, and the job is due at p_scheduled_at (NULL: now). A
-- waiting job of the same queueing lock, due or not, makes this a no-op that returns NULL.
CREATE OR REPLACE FUNCTION stepcoin_defer_job(
    p_queue text, p_task text, p_lock text, p_queueing_lock text, p_args jsonb,
    p_scheduled_at timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $fn$
BEGIN
    IF p_queueing_lock IS NULL THEN
        RETURN (procrastinate_defer_jobs_v1(ARRAY[ROW(
            p_queue, p_task, 0, p_lock, NULL, p_args, p_scheduled_at
        )::procrastinate_job_to_defer_v1]))[1];
    END IF;
    BEGIN
        RETURN (procrastinate_defer_jobs_v1(ARRAY[ROW(
            p_queue, p_task, 0, p_lock, p_queueing_lock, p_args, p_scheduled_at
        )::procrastinate_job_to_defer_v1]))[1];
    EXCEPTION WHEN unique_violation THEN
        RETURN NULL;  -- a job with this queueing lock is already waiting
    END;
END
$fn$;
