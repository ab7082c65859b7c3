-- stepcoin_apply_sync: apply a sync (or a review decision) decided in Python, in one call.
--
-- The step loop (docs/steps.md) costs two round trips: a snapshot read, then this function.
-- Python (stepcoin.steps.service / steps.review, payload types in stepcoin.steps.payload)
-- judges the records against the snapshot and settles each touched day; this function
--   1. locks the wallet row (the user's lock: every change of the user's steps or coins takes
--      it first) and compares wallets.version with the snapshot's: when another change came
--      in between, it answers {"conflict": true} and the caller judges again on a fresh one;
--   2. upserts the records, each pointing at its newest decision, and stores the decisions;
--   3. moves older unreviewed flags of the same records out of the queue (superseded_by);
--   4. settles each day against its stored state: the coins it should have paid minus what it
--      paid is the day's change; a clawback never takes the balance below zero (what is not
--      there is written off: the day records what was really taken);
--   5. moves the coins through the wallet's one door, stepcoin_wallet_post (one ledger row per
--      changed day, the pending total, the wallet's version);
--   6. when coins were paid, queues the user's achievement evaluation (one waiting per user).
-- Payload (JSON, readable names):
--   records:     [{day, source, steps, approved_steps, device_ids, client_record_id,
--                  client_record_version, manual, deleted, intervals, status, reasons}]
--   validations: [{day, source, steps, status, rule_hits, risk_score, stored}]
--   days:        [{day, credited_source, credited_steps, coins_paid, coins_pending}]
-- Answer: {conflict, version, available,
--          days: [{day, credited_source, coins_delta, pending_delta, coins_paid, coins_pending}]}
CREATE OR REPLACE FUNCTION stepcoin_apply_sync(p_user uuid, p_version bigint, p_payload jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
    v_available bigint;
    v_version bigint;
    v_pending_total bigint := 0;
    v_paid_any boolean := false;
    d record;
    cur record;
    v_delta bigint;
    v_paid bigint;
    v_pending bigint;
    v_day_version integer;
    amounts bigint[] := '{}';
    kinds text[] := '{}';
    refs text[] := '{}';
    results jsonb := '[]'::jsonb;
    new_ids bigint[];
    new_dates date[];
    new_sources text[];
BEGIN
    SELECT w.available_coins, w.version INTO v_available, v_version
    FROM wallets w WHERE w.user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'no_wallet');
    END IF;
    IF v_version <> p_version THEN
        RETURN jsonb_build_object('conflict', true);
    END IF;

    -- decisions get their ids first, so each record is written once, already pointing at its
    -- newest decision (validation_id), and each decision knows its record's id
    WITH v AS MATERIALIZED (
        SELECT x.*, nextval(pg_get_serial_sequence('step_validations', 'id')) AS vid
        FROM jsonb_to_recordset(coalesce(p_payload -> 'validations', '[]'::jsonb)) AS x(
            day date, source text, steps integer, status text, rule_hits jsonb,
            risk_score integer, stored boolean)
    ), up AS (
        INSERT INTO step_records AS r (
            user_id, recorded_date, source, steps, approved_steps, device_ids, client_record_id,
            client_record_version, is_manual, is_deleted, intervals, status, reasons, synced_at,
            validation_id)
        SELECT p_user, x.day, x.source, x.steps, x.approved_steps, coalesce(x.device_ids, '{}'),
               x.client_record_id, x.client_record_version, coalesce(x.manual, false),
               coalesce(x.deleted, false), x.intervals, x.status, coalesce(x.reasons, '{}'),
               now(),
               (SELECT v.vid FROM v WHERE v.stored AND v.day = x.day AND v.source = x.source)
        FROM jsonb_to_recordset(coalesce(p_payload -> 'records', '[]'::jsonb)) AS x(
            day date, source text, steps integer, approved_steps integer, device_ids text[],
            client_record_id text, client_record_version bigint, manual boolean,
            deleted boolean, intervals jsonb, status text, reasons text[])
        ON CONFLICT (user_id, recorded_date, source) DO UPDATE SET
            steps = EXCLUDED.steps, approved_steps = EXCLUDED.approved_steps,
            device_ids = EXCLUDED.device_ids, client_record_id = EXCLUDED.client_record_id,
            client_record_version = EXCLUDED.client_record_version,
            is_manual = EXCLUDED.is_manual, is_deleted = EXCLUDED.is_deleted,
            intervals = EXCLUDED.intervals, status = EXCLUDED.status, reasons = EXCLUDED.reasons,
            synced_at = now(), validation_id = coalesce(EXCLUDED.validation_id, r.validation_id)
        RETURNING r.id, r.recorded_date, r.source
    ), ins AS (
        INSERT INTO step_validations (id, user_id, step_record_id, recorded_date, source, steps,
                                      status, rule_hits, risk_score)
        SELECT v.vid, p_user, up.id, v.day, v.source, v.steps, v.status,
               coalesce(v.rule_hits, '[]'::jsonb), coalesce(v.risk_score, 0)
        FROM v LEFT JOIN up ON v.stored AND up.recorded_date = v.day AND up.source = v.source
        RETURNING id, recorded_date, source, step_record_id
    )
    SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(recorded_date), '{}'),
           coalesce(array_agg(source::text), '{}')
    INTO new_ids, new_dates, new_sources
    FROM ins WHERE step_record_id IS NOT NULL;

    -- older unreviewed flags of the same records leave the queue
    UPDATE step_validations v SET superseded_by = n.id
    FROM unnest(new_ids, new_dates, new_sources) AS n(id, day, source)
    WHERE v.user_id = p_user AND v.recorded_date = n.day AND v.source = n.source
      AND v.id < n.id AND v.status = 'flagged' AND v.reviewed_at IS NULL
      AND v.superseded_by IS NULL;

    FOR d IN
        SELECT x.* FROM jsonb_to_recordset(coalesce(p_payload -> 'days', '[]'::jsonb)) AS x(
            day date, credited_source text, credited_steps integer, coins_paid bigint,
            coins_pending bigint)
        ORDER BY x.day
    LOOP
        SELECT sd.coins_paid, sd.coins_pending, sd.version INTO cur
        FROM step_days sd WHERE sd.user_id = p_user AND sd.recorded_date = d.day;
        v_paid := coalesce(cur.coins_paid, 0);
        v_pending := coalesce(cur.coins_pending, 0);
        v_day_version := coalesce(cur.version, 0) + 1;
        v_delta := d.coins_paid - v_paid;
        IF v_delta < 0 THEN
            v_delta := greatest(v_delta, -v_available);  -- never below zero: claw what is there
        END IF;
        v_available := v_available + v_delta;
        v_pending_total := v_pending_total + (d.coins_pending - v_pending);
        INSERT INTO step_days AS sd (user_id, recorded_date, credited_source, credited_steps,
                                     coins_paid, coins_pending, version, updated_at)
        VALUES (p_user, d.day, d.credited_source, d.credited_steps, v_paid + v_delta,
                d.coins_pending, v_day_version, now())
        ON CONFLICT (user_id, recorded_date) DO UPDATE SET
            credited_source = EXCLUDED.credited_source, credited_steps = EXCLUDED.credited_steps,
            coins_paid = EXCLUDED.coins_paid, coins_pending = EXCLUDED.coins_pending,
            version = EXCLUDED.version, updated_at = now();
        IF v_delta <> 0 THEN
            amounts := amounts || v_delta;
            kinds := kinds || (CASE WHEN v_delta > 0 THEN 'step_reward' ELSE 'reversal' END);
            refs := refs || format('steps:%s:%s:%s', p_user, d.day, v_day_version);
            v_paid_any := v_paid_any OR v_delta > 0;
        END IF;
        results := results || jsonb_build_object(
            'day', d.day, 'credited_source', d.credited_source, 'coins_delta', v_delta,
            'pending_delta', d.coins_pending - v_pending, 'coins_paid', v_paid + v_delta,
            'coins_pending', d.coins_pending);
        -- the day's new decisions record what they changed: the credited source's the coins,
        -- every flagged one the coins the day holds for review
        UPDATE step_validations v
        SET coins_awarded = CASE WHEN n.source = d.credited_source THEN v_delta ELSE 0 END,
            coins_pending = CASE WHEN v.status = 'flagged' THEN d.coins_pending ELSE 0 END
        FROM unnest(new_ids, new_dates, new_sources) AS n(id, day, source)
        WHERE v.id = n.id AND n.day = d.day
          AND (n.source = d.credited_source OR v.status = 'flagged');
    END LOOP;

    -- the coins, the held coins and the version, through the wallet's one door
    -- (references carry the day's version, new under this lock: no replay look-up needed)
    PERFORM 1 FROM stepcoin_wallet_post(p_user, amounts, kinds, refs, NULL, v_pending_total,
                                        false);

    IF v_paid_any THEN
        -- approved steps were paid: achievements are evaluated by a job, at most one waiting
        -- per user (its queueing lock); the job is committed with the coins or not at all
        PERFORM stepcoin_defer_job('default', 'achievements:evaluate_user', NULL,
                                   'achievements:' || p_user::text,
                                   jsonb_build_object('user_id', p_user::text));
    END IF;

    RETURN jsonb_build_object('conflict', false, 'days', results, 'available', v_available,
                              'version', v_version + 1);
END
$fn$;
