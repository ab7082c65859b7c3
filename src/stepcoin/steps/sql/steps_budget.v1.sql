-- stepcoin_steps_budget_take v1: the steps issuance budget's claim of new coins, the one
-- implementation that both stepcoin_apply_sync (v9) and stepcoin_review_decide (v1) call
-- (migration 0041; before, each function carried its own copy of this loop).
--
-- p_budget: the walker's shares of the steps budgets ({period, start, stripe, share} each,
-- stepcoin.wallet.budgets; null or not an array: no steps budget); p_coins: the gross new
-- coins of the caller's change. Every share's usage row is created if missing and locked in
-- period order; if any share lacks room for p_coins, the answer is false and no usage moves
-- (the caller writes nothing and answers "budget"); otherwise every share's usage grows by
-- p_coins and the answer is true. Nothing to claim (p_coins <= 0, no budget): true.
CREATE OR REPLACE FUNCTION stepcoin_steps_budget_take(p_budget jsonb, p_coins bigint)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
    v_issued bigint;
    b record;
BEGIN
    IF p_coins <= 0 OR jsonb_typeof(p_budget) IS DISTINCT FROM 'array' THEN
        RETURN true;
    END IF;
    FOR b IN SELECT * FROM jsonb_to_recordset(p_budget)
             AS x(period text, start date, stripe smallint, share bigint) ORDER BY period
    LOOP
        INSERT INTO issuance_usage (source, period, period_start, stripe)
        VALUES ('steps', b.period, b.start, b.stripe) ON CONFLICT DO NOTHING;
        SELECT u.issued INTO v_issued FROM issuance_usage u
        WHERE u.source = 'steps' AND u.period = b.period AND u.period_start = b.start
          AND u.stripe = b.stripe
        FOR UPDATE;
        IF v_issued + p_coins > b.share THEN
            RETURN false;
        END IF;
    END LOOP;
    UPDATE issuance_usage u SET issued = u.issued + p_coins
    FROM jsonb_to_recordset(p_budget) AS x(period text, start date, stripe smallint, share bigint)
    WHERE u.source = 'steps' AND u.period = x.period AND u.period_start = x.start
      AND u.stripe = x.stripe;
    RETURN true;
END
$fn$;
