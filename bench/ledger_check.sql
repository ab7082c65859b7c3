-- The five checks of `stepcoin check-ledger`, set-based (that command's balance-chain query
-- scans coin_transactions' primary key backwards once per wallet: hours at 10k wallets x 900k
-- rows; see BENCHMARKS.md). Prints the number of offending rows per check; all must be 0.
SELECT 'wallet != ledger sum' AS check, count(*) FROM wallets w
LEFT JOIN (SELECT user_id, sum(amount) AS total FROM coin_transactions GROUP BY user_id) l
  ON l.user_id = w.user_id
WHERE w.available_coins <> coalesce(l.total, 0)
UNION ALL
SELECT 'duplicate (type, reference)', count(*) FROM (
  SELECT 1 FROM coin_transactions GROUP BY user_id, transaction_type, reference_id HAVING count(*) > 1) d
UNION ALL
SELECT 'last balance_after != wallet', count(*) FROM wallets w
JOIN (SELECT DISTINCT ON (user_id) user_id, balance_after FROM coin_transactions
      ORDER BY user_id, id DESC) last ON last.user_id = w.user_id
WHERE last.balance_after <> w.available_coins
UNION ALL
SELECT 'pending != days in review + budget holds', count(*) FROM wallets w
LEFT JOIN (SELECT user_id, sum(coins_pending) AS held FROM step_days GROUP BY user_id) d
  ON d.user_id = w.user_id
LEFT JOIN (SELECT user_id, sum(amount) AS held FROM issuance_holds
           WHERE released_at IS NULL GROUP BY user_id) h ON h.user_id = w.user_id
WHERE w.pending_coins <> coalesce(d.held, 0) + coalesce(h.held, 0)
UNION ALL
SELECT 'counters != ledger by their rule', count(*) FROM wallets w
LEFT JOIN (SELECT user_id,
                  sum(amount) FILTER (WHERE transaction_type NOT IN ('redemption', 'refund')) AS earned,
                  -sum(amount) FILTER (WHERE transaction_type IN ('redemption', 'refund')) AS spent
           FROM coin_transactions GROUP BY user_id) l ON l.user_id = w.user_id
WHERE (w.lifetime_earned, w.lifetime_spent) <> (coalesce(l.earned, 0), coalesce(l.spent, 0));
