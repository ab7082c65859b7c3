-- stepcoin_wallet_hold_many: coins held for many wallets (or released from hold), through the
-- one door (docs/architecture.md).
--
-- An issuance budget at its cap (stepcoin.wallet.budgets) does not pay a reward: it holds it,
-- one issuance_holds row per reward, and the walker sees the coins as pending. This function
-- moves wallets.pending_coins by each delta (positive: held; negative: released, when the
-- hold is paid), in user order (the one lock order), and bumps wallets.version (the step loop's
-- snapshot version). No ledger row: a hold is not a movement; its payment is, later, through
-- stepcoin_wallet_post. pending_coins never goes below zero (CHECK). Returns the users whose
-- wallet it changed.
CREATE OR REPLACE FUNCTION stepcoin_wallet_hold_many(p_users uuid[], p_deltas bigint[])
RETURNS SETOF uuid
LANGUAGE sql AS $fn$
    WITH asked AS (
        SELECT u, sum(d) AS d FROM unnest(p_users, p_deltas) AS a(u, d) GROUP BY u
    ), locked AS (
        SELECT w.user_id FROM wallets w JOIN asked a ON a.u = w.user_id
        ORDER BY w.user_id FOR UPDATE OF w
    )
    UPDATE wallets w
    SET pending_coins = w.pending_coins + a.d, version = w.version + 1, updated_at = now()
    FROM asked a
    WHERE w.user_id = a.u AND w.user_id IN (SELECT user_id FROM locked) AND a.d <> 0
    RETURNING w.user_id
$fn$;
