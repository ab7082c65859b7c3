-- stepcoin_wallet_post_many: many wallets' entries in one round trip, through the one door.
--
-- For callers that move coins for many walkers in one transaction (the achievements batch pays
-- every unlock of up to 1,000 walkers): one call instead of one round trip per walker, so the
-- wallet locks the caller holds are held for one statement, not for N round trips (issue 13:
-- syncs of those walkers waited on them). Entries are given flat and in order; each walker's
-- run of consecutive entries is ONE call of stepcoin_wallet_post (same rules: lock, replay,
-- never below zero, counters, version). Callers should sort by user: the one lock order.
-- Returns every ledger row stepcoin_wallet_post returned, with its user.
CREATE OR REPLACE FUNCTION stepcoin_wallet_post_many(
    p_users uuid[],
    p_amounts bigint[],
    p_types text[],
    p_refs text[],
    p_notes text[] DEFAULT NULL)
RETURNS TABLE (user_id uuid, id bigint, amount bigint, transaction_type text,
               reference_id text, balance_after bigint, created_at timestamptz, note text,
               replayed boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
    n integer := coalesce(cardinality(p_users), 0);
    first_i integer := 1;
BEGIN
    IF coalesce(cardinality(p_amounts), 0) <> n OR coalesce(cardinality(p_types), 0) <> n
       OR coalesce(cardinality(p_refs), 0) <> n
       OR (p_notes IS NOT NULL AND cardinality(p_notes) <> n) THEN
        RAISE EXCEPTION 'stepcoin_wallet_post_many: arrays of different lengths';
    END IF;
    FOR i IN 1 .. n LOOP
        IF i = n OR p_users[i + 1] IS DISTINCT FROM p_users[i] THEN
            RETURN QUERY
                SELECT p_users[i], p.id, p.amount, p.transaction_type, p.reference_id,
                       p.balance_after, p.created_at, p.note, p.replayed
                FROM stepcoin_wallet_post(
                    p_users[i], p_amounts[first_i:i], p_types[first_i:i], p_refs[first_i:i],
                    CASE WHEN p_notes IS NULL THEN NULL ELSE p_notes[first_i:i] END) AS p;
            first_i := i + 1;
        END IF;
    END LOOP;
END
$fn$;
