-- stepcoin_notify v1 (issue 13, migration 0050): one notification written, and its push queued,
-- from SQL in the caller's transaction: what stepcoin.notify.service.notify_many does for one
-- note, for a caller whose whole write is one SQL statement (the review's decision:
-- steps/sql/review_decide.v2.sql). Python builds the row (stepcoin.notify.service.note_row:
-- the walker's switches, the push status, the limits) and this only writes it:
--
--   p_note: {user_id, kind, title, body, data (JSON text), dedupe_key, collapse_key, expires_at,
--            in_inbox, push_status, push: {queue, task, lock_prefix}}
--
-- The same (walker, dedupe_key) a second time is a no-op (NULL). A new notification whose push
-- is 'pending' gets its send job (args {"notification_id": id}, lock lock_prefix || id), as
-- notify_many queues it.
CREATE OR REPLACE FUNCTION stepcoin_notify(p_note jsonb)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    v_id bigint;
    v_status text;
BEGIN
    INSERT INTO notifications (user_id, kind, title, body, data, dedupe_key, collapse_key,
                               expires_at, in_inbox, push_status)
    VALUES ((p_note ->> 'user_id')::uuid, p_note ->> 'kind', p_note ->> 'title',
            p_note ->> 'body', coalesce((p_note ->> 'data')::jsonb, '{}'::jsonb), p_note ->> 'dedupe_key',
            p_note ->> 'collapse_key', (p_note ->> 'expires_at')::timestamptz,
            (p_note ->> 'in_inbox')::boolean, p_note ->> 'push_status')
    ON CONFLICT (user_id, dedupe_key) DO NOTHING
    RETURNING id, push_status INTO v_id, v_status;
    IF v_id IS NOT NULL AND v_status = 'pending' THEN
        PERFORM stepcoin_defer_job(
            p_note #>> '{push,queue}', p_note #>> '{push,task}',
            (p_note #>> '{push,lock_prefix}') || v_id, NULL,
            jsonb_build_object('notification_id', v_id), NULL);
    END IF;
    RETURN v_id;
END
$fn$;
