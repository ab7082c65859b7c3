-- stepcoin_wallet_post v3: v2 (post.v2.sql) with `plan_cache_mode = force_generic_plan` for
-- its own statements (issue 13, migration 0052). Its replay probe (each entry's ledger row, over
-- the entries' arrays) was planned anew on every call that probes (0.13 ms of planning for
-- 0.04 ms of execution): a custom plan knows how many entries the arrays hold, a generic plan
-- guesses, so the custom plans always looked cheaper and PostgreSQL never kept the generic
-- one. Callers under a function that sets the same already had it (stepcoin_place_order); the
-- achievements batch's payouts (stepcoin_wallet_post_many), the review's decisions and every
-- Python caller did not. The generic plan of the probe is the one v2 was written for (one
-- probe of the unique index per entry). The body is v2's, unchanged; v2's notes follow.
--
-- stepcoin_wallet_post v2: as v1 (post.v1.sql), with the ledger keyed per walker (issue 19
-- item 4, migration 0038): coin_transactions is unique by (transaction_type, reference_id,
-- user_id), so the replay probe and the read of the replayed rows name the walker. A reference
-- is unique PER WALKER now: docs/scale-out.md, "Ledger references per user", shows that every
-- caller's idempotency needs no more.
--
-- stepcoin_wallet_post: the one door through which coins move (docs/architecture.md).
--
-- Every change to a wallet, from Python (stepcoin.wallet.service.post) or from SQL (the step
-- loop), is one call of this function in the caller's transaction. It
--   1. locks the wallet row (the caller may hold it already: a re-lock is free);
--   2. leaves out entries whose (transaction_type, reference_id) is in the ledger already and
--      returns those rows with replayed = true: every award, debit and refund happens once
--      (p_replay = false skips that look-up for callers whose references are new by
--      construction; a duplicate then fails on the UNIQUE key instead of replaying);
--   3. appends one ledger row per new entry, in the given order, each with the balance after
--      it, stamped with clock_timestamp() (taken under the lock, so created_at follows the
--      balance_after chain);
--   4. refuses a balance below zero at any step: SQLSTATE SC001 (insufficient_coins), the
--      balance before the call in DETAIL; nothing is written;
--   5. updates the wallet by the one rule of the counters:
--        shop movements (redemption, refund) change lifetime_spent by -amount;
--        every other movement changes lifetime_earned by +amount (a clawback or a debit
--        adjustment is an earning taken back);
--      so available_coins = lifetime_earned - lifetime_spent always (stepcoin check-ledger);
--   6. adds p_pending_delta to pending_coins (coins held for records in review: no ledger
--      row, reconciled against step_days by check-ledger; never below zero by CHECK);
--   7. bumps wallets.version: the step loop reads it as its optimistic snapshot version.
-- A missing wallet is SQLSTATE SC002.
CREATE OR REPLACE FUNCTION stepcoin_wallet_post(
    p_user uuid,
    p_amounts bigint[],
    p_types text[],
    p_refs text[],
    p_notes text[] DEFAULT NULL,
    p_pending_delta bigint DEFAULT 0,
    p_replay boolean DEFAULT true)
RETURNS TABLE (id bigint, amount bigint, transaction_type text, reference_id text,
               balance_after bigint, created_at timestamptz, note text, replayed boolean)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
DECLARE
    v_start bigint;
    v_balance bigint;
    v_earned bigint := 0;
    v_spent bigint := 0;
    n_amounts bigint[];
    n_types text[];
    n_refs text[];
    n_notes text[];
    n_balances bigint[] := '{}';
    replay_ids bigint[];
BEGIN
    SELECT w.available_coins INTO v_start FROM wallets w WHERE w.user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no wallet for user %', p_user USING ERRCODE = 'SC002';
    END IF;
    v_balance := v_start;

    IF NOT p_replay THEN
        -- the caller's references are new by construction (the step loop's carry the day's
        -- version, taken under this lock): no probe; a duplicate still fails on the UNIQUE key
        n_amounts := coalesce(p_amounts, '{}');
        n_types := p_types;
        n_refs := p_refs;
        n_notes := p_notes;
        replay_ids := '{}';
    ELSE
        -- each entry's existing ledger row, if any, by one probe of the unique index per entry
        -- (a scalar subquery: a join here gets a generic plan that may scan the whole ledger)
        SELECT coalesce(array_agg(x.amount ORDER BY x.ord) FILTER (WHERE x.existing IS NULL), '{}'),
               coalesce(array_agg(x.kind ORDER BY x.ord) FILTER (WHERE x.existing IS NULL), '{}'),
               coalesce(array_agg(x.ref ORDER BY x.ord) FILTER (WHERE x.existing IS NULL), '{}'),
               coalesce(array_agg(x.note ORDER BY x.ord) FILTER (WHERE x.existing IS NULL), '{}'),
               coalesce(array_agg(x.existing) FILTER (WHERE x.existing IS NOT NULL), '{}')
        INTO n_amounts, n_types, n_refs, n_notes, replay_ids
        FROM (
            SELECT e.amount, e.kind, e.ref, e.note, e.ord,
                   (SELECT t.id FROM coin_transactions t
                    WHERE t.transaction_type = e.kind AND t.reference_id = e.ref
                      AND t.user_id = p_user) AS existing
            FROM unnest(p_amounts, p_types, p_refs, p_notes)
                WITH ORDINALITY AS e(amount, kind, ref, note, ord)
            WHERE e.amount IS NOT NULL
        ) x;
    END IF;

    FOR i IN 1 .. cardinality(n_amounts) LOOP
        v_balance := v_balance + n_amounts[i];
        IF v_balance < 0 THEN
            RAISE EXCEPTION 'insufficient coins for user %', p_user
                USING ERRCODE = 'SC001', DETAIL = v_start::text;
        END IF;
        n_balances := n_balances || v_balance;
        IF n_types[i] IN ('redemption', 'refund') THEN
            v_spent := v_spent - n_amounts[i];
        ELSE
            v_earned := v_earned + n_amounts[i];
        END IF;
    END LOOP;

    IF cardinality(replay_ids) > 0 THEN
        RETURN QUERY
        SELECT t.id, t.amount, t.transaction_type::text, t.reference_id::text, t.balance_after,
               t.created_at, t.note, true
        FROM coin_transactions t WHERE t.id = ANY(replay_ids) AND t.user_id = p_user
        ORDER BY t.id;
    END IF;

    IF cardinality(n_amounts) > 0 THEN
        RETURN QUERY
        INSERT INTO coin_transactions AS t (user_id, amount, transaction_type, reference_id,
                                            balance_after, note, created_at)
        SELECT p_user, e.amount, e.kind, e.ref, e.balance, e.note, clock_timestamp()
        FROM unnest(n_amounts, n_types, n_refs, n_balances, n_notes)
            AS e(amount, kind, ref, balance, note)
        RETURNING t.id, t.amount, t.transaction_type::text, t.reference_id::text,
                  t.balance_after, t.created_at, t.note, false;
    END IF;

    UPDATE wallets SET
        available_coins = v_balance,
        pending_coins = pending_coins + coalesce(p_pending_delta, 0),
        lifetime_earned = lifetime_earned + v_earned,
        lifetime_spent = lifetime_spent + v_spent,
        version = version + 1,
        updated_at = now()
    WHERE wallets.user_id = p_user;
END
$fn$;
