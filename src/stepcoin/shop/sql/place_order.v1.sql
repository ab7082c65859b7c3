-- stepcoin_place_order: POST /v1/orders in one call, one round trip, one transaction.
--
-- Called as a single statement (in autocommit it is its own transaction: everything or
-- nothing). In this order it
--   1. locks the user's wallet row: every writer of this user's coins (another order, a
--      duplicate of this one, a refund, the account deletion) waits here, so the checks below
--      read a settled state;
--   2. looks the Idempotency-Key up: the same key with the same body fingerprint answers the
--      first order (outcome 'replayed'), with another body it is refused
--      ('idempotency_key_reused'), both before any account check, as the Python path did;
--   3. reads the account in a statement of its own, AFTER the wallet lock (a fresh snapshot:
--      a deletion or deactivation that committed while this call waited is seen):
--      no wallet or inactive -> 'account_gone'; email not verified -> 'email_unverified';
--   4. locks the products in id order (the same order as every other writer: no deadlock),
--      and refuses when any line is unknown, inactive or short, or the total (at today's
--      prices) exceeds the balance: 'not_possible' with the locked products and the balance,
--      from which the caller builds the one 409 that lists every short line and the missing
--      coins. Nothing is written on any refusal;
--   5. takes the stock, inserts the order (the first of p_codes that is free; none free is
--      SQLSTATE SC003 and rolls everything back) and its lines with frozen prices, debits the
--      wallet through stepcoin_wallet_post (the one door of coins; the reference order:<id> is
--      new by construction) and defers the Shopify submission and an achievement evaluation
--      through stepcoin_defer_job (the transactional outbox; the evaluation only when none of
--      the user's waits already, which is what its queueing lock would decide);
--   6. returns the order row exactly as GET /v1/orders/{id} reads it (outcome 'created').
-- Refusals return one row with only outcome (and for 'not_possible' available_coins and
-- products) set.
CREATE OR REPLACE FUNCTION stepcoin_place_order(
    p_user uuid,
    p_key text,
    p_fingerprint text,
    p_order_id uuid,
    p_codes text[],
    p_product_ids bigint[],
    p_quantities integer[],
    p_address jsonb)
RETURNS TABLE (outcome text, available_coins bigint, products json,
               id uuid, user_id uuid, order_code text, status text, total_coins bigint,
               shipping_address jsonb, tracking_numbers text[], created_at timestamptz,
               updated_at timestamptz, shopify_order_id text, failure_reason text,
               cancel_requested_at timestamptz, cancel_refused_reason text, items json)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_available bigint;
    v_active boolean;
    v_verified boolean;
    v_existing uuid;
    v_existing_print text;
    v_total bigint;
    v_refused boolean;
    v_code text;
    v_placed text;
    v_outcome text;
BEGIN
    SELECT w.available_coins INTO v_available
    FROM wallets w WHERE w.user_id = p_user FOR UPDATE;

    SELECT o.id, o.request_fingerprint INTO v_existing, v_existing_print
    FROM orders o WHERE o.user_id = p_user AND o.idempotency_key = p_key;
    IF v_existing IS NOT NULL THEN
        IF v_existing_print IS DISTINCT FROM p_fingerprint THEN
            outcome := 'idempotency_key_reused';
            RETURN NEXT;
            RETURN;
        END IF;
        v_outcome := 'replayed';
    ELSE
        SELECT u.is_active, u.email_verified_at IS NOT NULL INTO v_active, v_verified
        FROM users u WHERE u.id = p_user;
        IF v_available IS NULL OR v_active IS NOT TRUE THEN
            outcome := 'account_gone';
            RETURN NEXT;
            RETURN;
        END IF;
        IF NOT v_verified THEN
            outcome := 'email_unverified';
            RETURN NEXT;
            RETURN;
        END IF;

        WITH locked AS MATERIALIZED (
            SELECT p.id, p.coin_price, p.stock_quantity, p.is_active
            FROM reward_products p WHERE p.id = ANY(p_product_ids) ORDER BY p.id FOR UPDATE
        )
        SELECT coalesce(sum(l.coin_price::bigint * x.q) FILTER (WHERE l.is_active), 0),
               coalesce(bool_or(l.id IS NULL OR NOT l.is_active OR l.stock_quantity < x.q), false)
        INTO v_total, v_refused
        FROM unnest(p_product_ids, p_quantities) AS x(pid, q)
        LEFT JOIN locked l ON l.id = x.pid;

        IF v_refused OR v_total > v_available THEN
            outcome := 'not_possible';
            available_coins := v_available;
            SELECT json_agg(json_build_object(
                       'product_id', x.pid, 'quantity', x.q, 'coin_price', p.coin_price,
                       'stock_quantity', p.stock_quantity, 'is_active', p.is_active)
                   ORDER BY x.pid)
            INTO products
            FROM unnest(p_product_ids, p_quantities) AS x(pid, q)
            LEFT JOIN reward_products p ON p.id = x.pid;
            RETURN NEXT;
            RETURN;
        END IF;

        UPDATE reward_products p
        SET stock_quantity = p.stock_quantity - x.q, updated_at = now()
        FROM unnest(p_product_ids, p_quantities) AS x(pid, q)
        WHERE p.id = x.pid;

        FOREACH v_code IN ARRAY p_codes LOOP
            INSERT INTO orders AS o (id, user_id, order_code, total_coins, status,
                                     shipping_address, idempotency_key, request_fingerprint)
            VALUES (p_order_id, p_user, v_code, v_total, 'pending', p_address, p_key,
                    p_fingerprint)
            ON CONFLICT (order_code) DO NOTHING
            RETURNING o.order_code INTO v_placed;
            EXIT WHEN v_placed IS NOT NULL;
        END LOOP;
        IF v_placed IS NULL THEN
            RAISE EXCEPTION 'no free order code among %', p_codes USING ERRCODE = 'SC003';
        END IF;

        INSERT INTO order_items (order_id, product_id, quantity, coin_price_at_purchase)
        SELECT p_order_id, x.pid, x.q, p.coin_price
        FROM unnest(p_product_ids, p_quantities) AS x(pid, q)
        JOIN reward_products p ON p.id = x.pid;

        PERFORM stepcoin_wallet_post(
            p_user, ARRAY[-v_total], ARRAY['redemption'], ARRAY['order:' || p_order_id::text],
            ARRAY['Order ' || v_placed], 0, false);

        PERFORM stepcoin_defer_job('shop', 'shop:submit_order', 'order:' || p_order_id::text,
                                   NULL, jsonb_build_object('order_id', p_order_id::text));
        -- a first redemption may unlock an achievement (at most one evaluation waits per user:
        -- when one waits already, the defer would be a no-op; looking first spares it the
        -- subtransaction and the failed insert, a dead job row each)
        IF NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                       WHERE j.queueing_lock = 'achievements:' || p_user::text
                         AND j.status = 'todo') THEN
            PERFORM stepcoin_defer_job('default', 'achievements:evaluate_user', NULL,
                                       'achievements:' || p_user::text,
                                       jsonb_build_object('user_id', p_user::text));
        END IF;
        v_existing := p_order_id;
        v_outcome := 'created';
    END IF;

    RETURN QUERY
    SELECT v_outcome, NULL::bigint, NULL::json,
           o.id, o.user_id, o.order_code::text, o.status::text, o.total_coins,
           o.shipping_address, o.tracking_numbers::text[], o.created_at, o.updated_at,
           o.shopify_order_id::text, o.failure_reason, o.cancel_requested_at,
           o.cancel_refused_reason,
           coalesce((SELECT json_agg(json_build_object(
                'product_id', i.product_id, 'title', p.title, 'quantity', i.quantity,
                'coin_price', i.coin_price_at_purchase) ORDER BY i.product_id)
             FROM order_items i JOIN reward_products p ON p.id = i.product_id
             WHERE i.order_id = o.id), '[]')
    FROM orders o WHERE o.id = v_existing;
END
$fn$;
