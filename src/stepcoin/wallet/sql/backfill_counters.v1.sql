-- The lifetime counters by their one rule (stepcoin_wallet_post), recomputed from the ledger:
-- shop movements (redemption, refund) make lifetime_spent, every other movement
-- lifetime_earned. Run once by migration 0008, when the rule replaced three conventions.
UPDATE wallets w SET
    lifetime_earned = coalesce(l.earned, 0),
    lifetime_spent = coalesce(l.spent, 0)
FROM (
    SELECT user_id,
           sum(amount) FILTER (WHERE transaction_type NOT IN ('redemption', 'refund')) AS earned,
           -sum(amount) FILTER (WHERE transaction_type IN ('redemption', 'refund')) AS spent
    FROM coin_transactions GROUP BY user_id
) l
WHERE l.user_id = w.user_id;
