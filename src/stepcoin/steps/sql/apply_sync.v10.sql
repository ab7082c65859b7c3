-- stepcoin_apply_sync v10: as v9, with the decisions' sequence looked up once per call
-- (issue 13, migration 0051). v9 numbered each new decision with
-- nextval(pg_get_serial_sequence('step_validations', 'id')): pg_get_serial_sequence is STABLE,
-- not IMMUTABLE, so it ran once per decision row, a catalog look-up of ~3 µs each (1.5 ms of a
-- 500-record bulk batch's ~35 ms of PostgreSQL). Nothing else changed; v9's notes follow.
--
-- stepcoin_apply_sync v9: as v8, with the read of the payload's days bounded by those days
-- (issue 13, migration 0042). v8 joined the payload's days to step_days on (walker, day); the
-- planner, which expects 100 rows from jsonb_to_recordset, read every step_days row of the
-- walker (a bitmap scan by user_id alone: 90 rows and 90 heap pages for a 7-day sync of a
-- walker with 90 days, growing with the walker's history) and hashed them. Each day is now
-- looked up by itself (a lateral subquery the planner cannot flatten: one primary-key probe
-- per payload day, whatever the statistics). The steps budgets' claim is
-- stepcoin_steps_budget_take (steps_budget.v1.sql, shared with a review's decision: the same
-- loop as v8's). Nothing else changed; v8's notes follow.
--
-- stepcoin_apply_sync v8: as v7, with step_validations keyed (id, user_id) (issue 19 item 4,
-- migration 0038): the update that supersedes older flags names the walker, so on a sharded
-- database it stays on the walker's shard. Nothing else changed; v7's notes follow.
--
-- stepcoin_apply_sync v7: v6 that also records the batch's devices (issue 16, item 1).
--
-- Same contract, rows and answer as v6; a payload may carry `devices` (text[]): the devices of
-- this sync that the synced days' stored records do not hold yet (stepcoin.steps.service), so
-- at most about once per walker, device and day. Each is upserted into device_accounts with
-- today's UTC date as last_seen. When that makes a device new to the walker and the device
-- synced for other accounts within the window (`device_since`), every account on it is marked
-- (link_marks.device_accounts: the accounts on it, kept at the highest count) and, if that is
-- more than the sync was planned with (`device_accounts`), the function answers
-- {"conflict": true, "relink": true} with nothing else written: the caller reads its snapshot
-- again (now with the mark) and judges the batch again (the `shared_device` rule). Mark rows
-- are locked in user order, after the wallet (the one lock order).
-- See apply_sync.v6.sql and earlier for the rest.
CREATE OR REPLACE FUNCTION stepcoin_apply_sync(p_user uuid, p_version bigint, p_payload jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
    v_available bigint;
    v_version bigint;
    v_pending_total bigint := 0;
    v_paid_any boolean := false;
    d_days date[];
    d_sources text[];
    d_steps integer[];
    d_target bigint[];
    d_pending bigint[];
    d_old_paid bigint[];
    d_old_pending bigint[];
    d_version integer[];
    d_delta bigint[] := '{}';
    v_delta bigint;
    v_gross bigint := 0;
    amounts bigint[] := '{}';
    kinds text[] := '{}';
    refs text[] := '{}';
    results jsonb := '[]'::jsonb;
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_device text;
    v_new boolean;
    v_accounts integer;
    v_relink boolean := false;
    -- the decisions' ids, in the order they are written (looked up once: see the head)
    v_decision_seq regclass := pg_get_serial_sequence('step_validations', 'id')::regclass;
BEGIN
    SELECT w.available_coins, w.version INTO v_available, v_version
    FROM wallets w WHERE w.user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'no_wallet');
    END IF;
    IF v_version <> p_version THEN
        RETURN jsonb_build_object('conflict', true);
    END IF;

    -- the batch's devices: recorded, and a device that links this walker to others marks them
    IF jsonb_typeof(p_payload -> 'devices') = 'array' THEN
        FOR v_device IN SELECT jsonb_array_elements_text(p_payload -> 'devices') LOOP
            v_new := NULL;
            INSERT INTO device_accounts AS da (device_id, user_id, first_seen, last_seen)
            VALUES (v_device, p_user, v_today, v_today)
            ON CONFLICT (device_id, user_id) DO UPDATE SET last_seen = EXCLUDED.last_seen
            WHERE da.last_seen < EXCLUDED.last_seen
            RETURNING (xmax = 0) INTO v_new;
            IF v_new THEN
                SELECT count(*) INTO v_accounts FROM device_accounts o
                WHERE o.device_id = v_device
                  AND o.last_seen >= (p_payload ->> 'device_since')::date;
                IF v_accounts > 1 THEN
                    INSERT INTO link_marks AS lm (user_id, device_accounts)
                    SELECT o.user_id, v_accounts FROM device_accounts o
                    WHERE o.device_id = v_device
                      AND o.last_seen >= (p_payload ->> 'device_since')::date
                    ORDER BY o.user_id
                    ON CONFLICT (user_id) DO UPDATE
                    SET device_accounts = greatest(lm.device_accounts, EXCLUDED.device_accounts),
                        updated_at = now();
                    IF v_accounts > coalesce((p_payload ->> 'device_accounts')::integer, 1) THEN
                        v_relink := true;
                    END IF;
                END IF;
            END IF;
        END LOOP;
        IF v_relink THEN
            RETURN jsonb_build_object('conflict', true, 'relink', true);
        END IF;
    END IF;

    -- the payload's days with what they hold now (read under the lock)
    SELECT coalesce(array_agg(x.day ORDER BY x.day), '{}'),
           coalesce(array_agg(x.credited_source ORDER BY x.day), '{}'),
           coalesce(array_agg(x.credited_steps ORDER BY x.day), '{}'),
           coalesce(array_agg(x.coins_paid ORDER BY x.day), '{}'),
           coalesce(array_agg(x.coins_pending ORDER BY x.day), '{}'),
           coalesce(array_agg(coalesce(sd.coins_paid, 0) ORDER BY x.day), '{}'),
           coalesce(array_agg(coalesce(sd.coins_pending, 0) ORDER BY x.day), '{}'),
           coalesce(array_agg(coalesce(sd.version, 0) + 1 ORDER BY x.day), '{}')
    INTO d_days, d_sources, d_steps, d_target, d_pending, d_old_paid, d_old_pending, d_version
    FROM jsonb_to_recordset(coalesce(p_payload -> 'days', '[]'::jsonb)) AS x(
        day date, credited_source text, credited_steps integer, coins_paid bigint,
        coins_pending bigint)
    -- each of the payload's days looked up by itself (OFFSET 0 keeps the subquery from being
    -- flattened into a join that the planner answered with every day of the walker)
    LEFT JOIN LATERAL (
        SELECT s.coins_paid, s.coins_pending, s.version FROM step_days s
        WHERE s.user_id = p_user AND s.recorded_date = x.day OFFSET 0
    ) sd ON true;

    -- each day's change, in day order: a clawback never takes the balance below zero
    FOR i IN 1 .. cardinality(d_days) LOOP
        v_delta := d_target[i] - d_old_paid[i];
        IF v_delta < 0 THEN
            v_delta := greatest(v_delta, -v_available);
        END IF;
        v_available := v_available + v_delta;
        v_pending_total := v_pending_total + (d_pending[i] - d_old_pending[i]);
        d_delta := d_delta || v_delta;
        IF v_delta <> 0 THEN
            amounts := amounts || v_delta;
            kinds := kinds || (CASE WHEN v_delta > 0 THEN 'step_reward' ELSE 'reversal' END);
            refs := refs || format('steps:%s:%s:%s', p_user, d_days[i], d_version[i]);
            v_paid_any := v_paid_any OR v_delta > 0;
        END IF;
    END LOOP;
    -- the steps budgets: every share must have room for the new coins, or nothing is written
    SELECT coalesce(sum(x), 0) INTO v_gross FROM unnest(d_delta) AS x WHERE x > 0;
    IF NOT stepcoin_steps_budget_take(p_payload -> 'budget', v_gross) THEN
        RETURN jsonb_build_object('conflict', false, 'budget', true);
    END IF;

    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'day', d_days[i], 'credited_source', d_sources[i], 'coins_delta', d_delta[i],
               'pending_delta', d_pending[i] - d_old_pending[i],
               'coins_paid', d_old_paid[i] + d_delta[i], 'coins_pending', d_pending[i])
               ORDER BY i), '[]'::jsonb)
    INTO results
    FROM generate_subscripts(d_days, 1) AS i;

    -- every row of the sync in one statement, each written once with its final values
    WITH d AS MATERIALIZED (
        SELECT * FROM unnest(d_days, d_sources, d_delta, d_pending)
            AS d(day, credited_source, delta, pending)
    ), v AS MATERIALIZED (
        SELECT x.*, nextval(v_decision_seq) AS vid
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
               now(), sv.vid
        FROM jsonb_to_recordset(coalesce(p_payload -> 'records', '[]'::jsonb)) AS x(
            day date, source text, steps integer, approved_steps integer, device_ids text[],
            client_record_id text, client_record_version bigint, manual boolean,
            deleted boolean, intervals jsonb, status text, reasons text[])
        LEFT JOIN v sv ON sv.stored AND sv.day = x.day AND sv.source = x.source
        ON CONFLICT (user_id, recorded_date, source) DO UPDATE SET
            steps = EXCLUDED.steps, approved_steps = EXCLUDED.approved_steps,
            device_ids = EXCLUDED.device_ids, client_record_id = EXCLUDED.client_record_id,
            client_record_version = EXCLUDED.client_record_version,
            is_manual = EXCLUDED.is_manual, is_deleted = EXCLUDED.is_deleted,
            intervals = EXCLUDED.intervals, status = EXCLUDED.status, reasons = EXCLUDED.reasons,
            synced_at = now(), validation_id = coalesce(EXCLUDED.validation_id, r.validation_id)
        RETURNING r.id, r.recorded_date, r.source
    ), ins AS (
        -- a stored decision of a changed day records what it changed: the credited source's
        -- the coins, every flagged one the coins the day holds for review
        INSERT INTO step_validations (id, user_id, step_record_id, recorded_date, source, steps,
                                      status, rule_hits, risk_score, coins_awarded,
                                      coins_pending)
        SELECT v.vid, p_user, up.id, v.day, v.source, v.steps, v.status,
               coalesce(v.rule_hits, '[]'::jsonb), coalesce(v.risk_score, 0),
               CASE WHEN up.id IS NOT NULL AND v.source = d.credited_source
                    THEN d.delta ELSE 0 END,
               CASE WHEN up.id IS NOT NULL AND d.day IS NOT NULL AND v.status = 'flagged'
                    THEN d.pending ELSE 0 END
        FROM v
        LEFT JOIN up ON v.stored AND up.recorded_date = v.day AND up.source = v.source
        LEFT JOIN d ON d.day = v.day
        ORDER BY v.vid
        RETURNING id, recorded_date, source, step_record_id
    ), older AS MATERIALIZED (
        -- the user's earlier decisions of the records' days, by (user_id, recorded_date): a
        -- status test here would let a generic plan walk every flagged row of every user
        SELECT o.id, o.recorded_date, o.source, o.status, o.reviewed_at, o.superseded_by
        FROM step_validations o
        WHERE o.user_id = p_user
          AND o.recorded_date = ANY(ARRAY(SELECT v.day FROM v WHERE v.stored))
    ), superseded AS (
        -- older unreviewed flags of the same records leave the queue (this statement's
        -- snapshot holds only the older rows: the new decisions are not in it)
        UPDATE step_validations t SET superseded_by = n.id
        FROM older o JOIN ins n
          ON o.recorded_date = n.recorded_date AND o.source = n.source AND o.id < n.id
        WHERE t.id = o.id AND t.user_id = p_user AND n.step_record_id IS NOT NULL
          AND o.status = 'flagged' AND o.reviewed_at IS NULL AND o.superseded_by IS NULL
        RETURNING t.id
    ), days AS (
        INSERT INTO step_days AS sd (user_id, recorded_date, credited_source, credited_steps,
                                     coins_paid, coins_pending, version, updated_at)
        SELECT p_user, x.day, x.source, x.steps, x.paid + x.delta, x.pending, x.version, now()
        FROM unnest(d_days, d_sources, d_steps, d_old_paid, d_delta, d_pending, d_version)
            AS x(day, source, steps, paid, delta, pending, version)
        ON CONFLICT (user_id, recorded_date) DO UPDATE SET
            credited_source = EXCLUDED.credited_source, credited_steps = EXCLUDED.credited_steps,
            coins_paid = EXCLUDED.coins_paid, coins_pending = EXCLUDED.coins_pending,
            version = EXCLUDED.version, updated_at = now()
        RETURNING 1
    ), dirty AS (
        -- approved steps were paid: the user's achievements are evaluated by the next batch.
        -- An existing mark is locked (not rewritten) until this transaction ends; one a batch
        -- has claimed is released (claimed_at NULL), so that batch does not consume it.
        INSERT INTO achievements_dirty AS a (user_id, since)
        SELECT p_user, now() WHERE v_paid_any
        ON CONFLICT (user_id) DO UPDATE SET claimed_at = NULL
        WHERE a.claimed_at IS NOT NULL
        RETURNING 1
    )
    SELECT NULL INTO v_delta;

    -- the coins, the held coins and the version, through the wallet's one door
    -- (references carry the day's version, new under this lock: no replay look-up needed)
    PERFORM 1 FROM stepcoin_wallet_post(p_user, amounts, kinds, refs, NULL, v_pending_total,
                                        false);

    RETURN jsonb_build_object('conflict', false, 'days', results, 'available', v_available,
                              'version', v_version + 1);
END
$fn$;
