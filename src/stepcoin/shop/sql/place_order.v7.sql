-- stepcoin_place_order v7: v6 (place_order.v6.sql) marks the walker for the achievements batch
-- only on a first redemption (issue 13, migration 0047). v2-v6 marked the walker on every order,
-- so the batch evaluated every buyer after every order (their whole credited history read, every
-- criterion checked: ~0.15 ms of PostgreSQL and more of the worker's CPU a walker), while an
-- order changes only the batch's `redeemed` fact (achievements.repository._FACTS_SELECT: an
-- order that is not cancelled or failed), which a walker's earlier order already made true.
-- The test is the same as the fact's, on the walker's other orders (ix_orders_user_created).
-- A first order that is cancelled leaves `redeemed` false again, and the walker's next order
-- is a first one again. The rest is v6's; v6's notes follow.
--
-- stepcoin_place_order v6: v5 (place_order.v5.sql) with `plan_cache_mode =
-- force_generic_plan` for its own statements (issue 13, migration 0045). Its statements over
-- the order's product ids and quantities (array parameters) were planned anew on every order:
-- a custom plan knows how many lines the arrays hold (two) and a generic plan guesses ten, so
-- the custom plans always looked cheaper and PostgreSQL never kept the generic one (planning
-- was 12 % of an order's PostgreSQL CPU). The body is v5's, unchanged; v5's notes follow.
--
-- stepcoin_place_order v5: as v4 (place_order.v4.sql), with the sweep woken after a gathering
-- time (issue 13, migration 0043). v2-v4 woke shop:submit_pending at once: under a steady
-- stream of orders every placement that found no sweep waiting queued one, so the sweep ran
-- back to back for a few orders each time (the bench's half-load orders: 10-20 sweeps a
-- second), and a sweep costs about the same for 1 order as for 10 (~5.6 ms of the worker's
-- CPU and ~3.3 ms of PostgreSQL's, bench/sweep_cost.py). Now the placement that wakes it
-- queues the sweep due `shop.submit_gather_ms` later (runtime setting, read only then; 0: at
-- once, as v4): the orders placed meanwhile find it waiting and ride on it. An order reaches
-- Shopify that much later; nothing else changed (the per-minute sweep stays the safety net).
-- v4's notes follow.
--
-- stepcoin_place_order v4: as v3 (place_order.v3.sql), with the order code claimed across
-- walkers (issue 19 item 4, migration 0040). Since 0038 orders is unique by (order_code,
-- user_id) only; a code must still be unique across walkers (a Shopify webhook and the
-- console find an order by its code, and the order's Shopify tag is stepcoin-<code>). Each
-- drawn code is first claimed in global_keys (kind 'order_code', sharded by the key on Citus,
-- written in this transaction): a code another order holds is skipped for the next drawn one,
-- as v1-v3 skipped a code the orders table refused. A concurrent claim of the same code waits
-- for this transaction and then moves on.
-- Everything else is v3's; see place_order.v3.sql, v2 and v1.
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
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $fn$
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
    v_claimed text;
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
            INSERT INTO global_keys AS g (kind, key, user_id)
            VALUES ('order_code', v_code, p_user)
            ON CONFLICT (kind, key) DO NOTHING
            RETURNING g.key INTO v_claimed;
            CONTINUE WHEN v_claimed IS NULL;
            INSERT INTO orders AS o (id, user_id, order_code, total_coins, status,
                                     shipping_address, idempotency_key, request_fingerprint)
            VALUES (p_order_id, p_user, v_code, v_total, 'pending', p_address, p_key,
                    p_fingerprint)
            ON CONFLICT (order_code, user_id) DO NOTHING
            RETURNING o.order_code INTO v_placed;
            EXIT WHEN v_placed IS NOT NULL;
        END LOOP;
        IF v_placed IS NULL THEN
            RAISE EXCEPTION 'no free order code among %', p_codes USING ERRCODE = 'SC003';
        END IF;

        INSERT INTO order_items (user_id, order_id, product_id, quantity,
                                 coin_price_at_purchase)
        SELECT p_user, p_order_id, x.pid, x.q, p.coin_price
        FROM unnest(p_product_ids, p_quantities) AS x(pid, q)
        JOIN reward_products p ON p.id = x.pid;

        PERFORM stepcoin_wallet_post(
            p_user, ARRAY[-v_total], ARRAY['redemption'], ARRAY['order:' || p_order_id::text],
            ARRAY['Order ' || v_placed], 0, false);

        -- the Shopify outbox: wake the sweep (see the head of this file)
        -- a mark, never taken exclusively (shop/tasks.py SUBMIT_PENDING_MARK): it blocks nothing
        PERFORM pg_advisory_xact_lock_shared(5301, 1);
        IF NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                       WHERE j.queueing_lock = 'shop:submit_pending' AND j.status = 'todo') THEN
            PERFORM stepcoin_defer_job(
                'shop', 'shop:submit_pending', NULL, 'shop:submit_pending', '{}'::jsonb,
                now() + make_interval(secs => coalesce(
                    (SELECT (s.value #>> '{}')::integer FROM settings s
                     WHERE s.key = 'shop.submit_gather_ms'), 1000) / 1000.0));
        END IF;
        -- a first redemption may unlock an achievement: the next batch evaluates the user;
        -- a walker who redeemed before is not marked (v7: the batch's `redeemed` fact is the
        -- only one an order changes, and it is already true)
        IF NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = p_user AND o.id <> p_order_id
                       AND o.status NOT IN ('cancelled', 'failed')) THEN
            INSERT INTO achievements_dirty AS a (user_id, since) VALUES (p_user, now())
            ON CONFLICT (user_id) DO UPDATE SET claimed_at = NULL
            WHERE a.claimed_at IS NOT NULL;
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
           -- each title by its key (a join let a plan from stale statistics read every
           -- product page: a hash of the whole, bloated, reward_products per order)
           coalesce((SELECT json_agg(json_build_object(
                'product_id', i.product_id,
                'title', (SELECT p.title FROM reward_products p WHERE p.id = i.product_id),
                'quantity', i.quantity, 'coin_price', i.coin_price_at_purchase)
                ORDER BY i.product_id)
             FROM order_items i WHERE i.order_id = o.id AND i.user_id = o.user_id), '[]')
    FROM orders o WHERE o.id = v_existing AND o.user_id = p_user;
END
$fn$;
