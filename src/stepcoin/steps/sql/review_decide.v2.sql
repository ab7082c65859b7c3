-- stepcoin_review_open v2 and stepcoin_review_decide v2: a review's decision in two
-- statements and no explicit transaction (issue 13, the coin transaction; migration 0050).
-- v1 (review_decide.v1.sql) locked the wallet in stepcoin_review_open and so needed a
-- transaction around both calls, a read of the reviewer and an INSERT of the walker's
-- notification: BEGIN, five statements and COMMIT. v2 is optimistic, like the step sync:
--
--   1. stepcoin_review_open(validation, reviewer) reads, without a lock and in one snapshot,
--      what v1 read (the decision, its day's records, the steps budgets, the walker's
--      notification switches) and also the wallet's version and balance, what the day has
--      paid so far, and the reviewer's role and whether the reviewer's account is active.
--      NULL: no such decision (or no wallet). (The one-argument v1 stays for a server of the
--      previous release during an upgrade.)
--   2. Python settles the day (steps.settlement.settle_day), computes the coins the decision
--      moves from what it read, and builds the walker's notification (its text names them).
--   3. stepcoin_review_decide(user, version, payload) locks the wallet; if its version moved
--      since the read (every payment, order and sync posts through stepcoin_wallet_post, which
--      bumps it), or the decision is no longer waiting (flagged, not reviewed, not
--      superseded), or the coins it would move are not the ones the caller expected
--      (payload.expect_delta), it answers {"conflict": true} having written nothing, and the
--      caller reads again. Otherwise it writes as v1 did and then, from payload.notice, the
--      walker's notification and its push job (stepcoin_notify, notify/sql/notify_one.v1.sql),
--      all in the statement's one transaction.
--
-- Called inside a transaction that already holds the wallet's lock (the bulk decision of the
-- console, stepcoin.steps.review.decide_many) the version cannot move and v2 behaves as v1.
-- payload: as v1 (review_decide.v1.sql), plus expect_delta (optional) and notice (optional, a
-- stepcoin_notify row).
-- (plpgsql, not sql: a sql function that is not inlined is planned again on every call, which
-- cost 0.9 ms per call here; plpgsql keeps the statement's plan for the session)
CREATE OR REPLACE FUNCTION stepcoin_review_open(p_validation bigint, p_reviewer uuid)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN (SELECT jsonb_build_object(
               'user_id', v.user_id, 'version', w.version, 'available', w.available_coins,
               'day', v.recorded_date, 'source', v.source, 'status', v.status,
               'reviewed', v.reviewed_at IS NOT NULL,
               'superseded', v.superseded_by IS NOT NULL, 'coins_pending', v.coins_pending,
               -- stepcoin.steps.appeals.IS_APPEAL
               'appeal', v.rule_hits @> CAST('[{"code": "appeal"}]' AS jsonb),
               'paid', coalesce((SELECT sd.coins_paid FROM step_days sd
                                 WHERE sd.user_id = v.user_id
                                   AND sd.recorded_date = v.recorded_date), 0),
               'records', (
                   SELECT coalesce(jsonb_agg(jsonb_build_array(
                              r.source, r.steps, r.approved_steps, r.status, r.is_deleted,
                              r.intervals IS NOT NULL)), '[]'::jsonb)
                   FROM step_records r
                   WHERE r.user_id = v.user_id AND r.recorded_date = v.recorded_date),
               'budgets', (
                   SELECT coalesce(jsonb_agg(jsonb_build_array(b.period, b.cap_coins)
                                             ORDER BY b.period), '[]'::jsonb)
                   FROM issuance_budgets b WHERE b.source = 'steps'),
               -- the walker's notification switches and push reach (notify.service.note_row's)
               'reach', jsonb_build_array(
                   (SELECT p.kinds FROM notification_preferences p WHERE p.user_id = v.user_id),
                   EXISTS (SELECT 1 FROM push_devices d WHERE d.user_id = v.user_id)),
               -- the reviewer as the account is now: [role, is_active], null when none/gone
               'reviewer', (SELECT jsonb_build_array(u.role, u.is_active) FROM users u
                            WHERE u.id = p_reviewer))
    FROM step_validations v JOIN wallets w ON w.user_id = v.user_id
    WHERE v.id = p_validation);
END
$fn$;

CREATE OR REPLACE FUNCTION stepcoin_review_decide(p_user uuid, p_version bigint, p_payload jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
    v_available bigint;
    v_version bigint;
    v_day date := (p_payload ->> 'day')::date;
    v_source text := p_payload ->> 'source';
    v_status text := p_payload ->> 'decision';
    v_reviewer uuid := (p_payload ->> 'reviewer')::uuid;
    v_target bigint := (p_payload ->> 'coins_paid')::bigint;
    v_pending bigint := (p_payload ->> 'coins_pending')::bigint;
    v_old_paid bigint;
    v_old_pending bigint;
    v_day_version integer;
    v_delta bigint;
    v_done integer;
BEGIN
    SELECT w.available_coins, w.version INTO v_available, v_version
    FROM wallets w WHERE w.user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'no_wallet');
    END IF;
    IF v_version <> p_version THEN
        RETURN jsonb_build_object('conflict', true);
    END IF;
    -- the decision still waits for a person (v2: the caller's read held no lock)
    PERFORM 1 FROM step_validations v
    WHERE v.id = (p_payload ->> 'validation')::bigint AND v.user_id = p_user
      AND v.status = 'flagged' AND v.reviewed_at IS NULL AND v.superseded_by IS NULL
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('conflict', true);
    END IF;

    -- what the day holds now (read under the lock), and its change: a clawback never takes
    -- the balance below zero (as stepcoin_apply_sync)
    SELECT sd.coins_paid, sd.coins_pending, sd.version
    INTO v_old_paid, v_old_pending, v_day_version
    FROM step_days sd WHERE sd.user_id = p_user AND sd.recorded_date = v_day;
    v_old_paid := coalesce(v_old_paid, 0);
    v_old_pending := coalesce(v_old_pending, 0);
    v_day_version := coalesce(v_day_version, 0) + 1;
    v_delta := v_target - v_old_paid;
    IF v_delta < 0 THEN
        v_delta := greatest(v_delta, -v_available);
    END IF;
    -- the coins the caller's notification names (v2): others, and it reads again
    IF p_payload ? 'expect_delta' AND (p_payload ->> 'expect_delta')::bigint <> v_delta THEN
        RETURN jsonb_build_object('conflict', true);
    END IF;

    -- the steps budgets: every share must have room for the new coins, or nothing is written
    IF NOT stepcoin_steps_budget_take(p_payload -> 'budget', v_delta) THEN
        RETURN jsonb_build_object('conflict', false, 'budget', true);
    END IF;

    -- the day, the record, the decision and the audit row, each written once
    WITH days AS (
        INSERT INTO step_days AS sd (user_id, recorded_date, credited_source, credited_steps,
                                     coins_paid, coins_pending, version, updated_at)
        VALUES (p_user, v_day, p_payload ->> 'credited_source',
                (p_payload ->> 'credited_steps')::integer, v_old_paid + v_delta, v_pending,
                v_day_version, now())
        ON CONFLICT (user_id, recorded_date) DO UPDATE SET
            credited_source = EXCLUDED.credited_source, credited_steps = EXCLUDED.credited_steps,
            coins_paid = EXCLUDED.coins_paid, coins_pending = EXCLUDED.coins_pending,
            version = EXCLUDED.version, updated_at = now()
        RETURNING 1
    ), rec AS (
        UPDATE step_records SET status = v_status,
            approved_steps = CASE WHEN v_status = 'approved' THEN steps ELSE approved_steps END
        WHERE user_id = p_user AND recorded_date = v_day AND source = v_source
        RETURNING 1
    ), dec AS (
        UPDATE step_validations SET status = v_status, reviewed_by = v_reviewer,
            reviewed_at = now(), note = p_payload ->> 'note', coins_awarded = v_delta,
            coins_pending = 0
        WHERE id = (p_payload ->> 'validation')::bigint AND user_id = p_user
        RETURNING 1
    ), logged AS (
        INSERT INTO admin_logs (admin_id, action, entity_type, entity_id, changes)
        SELECT v_reviewer, a ->> 'action', a ->> 'entity_type', a ->> 'entity_id',
               jsonb_set(a -> 'changes', '{after,coins_awarded}', to_jsonb(v_delta))
        FROM (SELECT p_payload -> 'audit') AS x(a)
        RETURNING 1
    ), dirty AS (
        -- approved steps were paid: the walker's achievements are evaluated by the next batch
        -- (as stepcoin_apply_sync v8 marks them)
        INSERT INTO achievements_dirty AS a (user_id, since)
        SELECT p_user, now() WHERE v_delta > 0
        ON CONFLICT (user_id) DO UPDATE SET claimed_at = NULL
        WHERE a.claimed_at IS NOT NULL
        RETURNING 1
    )
    SELECT 1 INTO v_done;

    -- the coins and the held coins through the wallet's one door (the reference carries the
    -- day's version, new under this lock: no replay look-up needed)
    PERFORM 1 FROM stepcoin_wallet_post(
        p_user,
        CASE WHEN v_delta <> 0 THEN ARRAY[v_delta] ELSE '{}'::bigint[] END,
        CASE WHEN v_delta > 0 THEN ARRAY['step_reward'] WHEN v_delta < 0 THEN ARRAY['reversal']
             ELSE '{}'::text[] END,
        CASE WHEN v_delta <> 0 THEN ARRAY[format('steps:%s:%s:%s', p_user, v_day, v_day_version)]
             ELSE '{}'::text[] END,
        NULL, v_pending - v_old_pending, false);

    -- the walker's notification and its push, in this transaction (v2)
    IF jsonb_typeof(p_payload -> 'notice') = 'object' THEN
        PERFORM stepcoin_notify(p_payload -> 'notice');
    END IF;

    RETURN jsonb_build_object('conflict', false, 'coins_delta', v_delta,
                              'pending_delta', v_pending - v_old_pending);
END
$fn$;
