-- stepcoin_sync_snapshot v1: the step sync's one read (issue 13, migration 0044), what the
-- service read with a prepared statement of the same text before: the walker (active?
-- created, time zone), the wallet's version, the stored records of the batch's days (every
-- source), the trailing credited history (p_from .. p_to), and the walker's links to other
-- accounts (stepcoin.fairplay: the link marks, and how many accounts were made from the
-- walker's sign-up address within p_burst of theirs). One row; none for an unknown walker.
--
-- Why a function: its statement keeps one generic plan. As a prepared statement PostgreSQL
-- planned it anew on every sync: the planner pruned step_records' month partitions by the
-- days it was given, so each custom plan looked cheaper than the generic one and the generic
-- one was never chosen (planning was 15 % of the sync's PostgreSQL CPU). plan_cache_mode is
-- set for this function's own statements only. A generic plan cannot prune partitions by
-- `recorded_date = ANY(p_days)` (an array parameter): it would probe every month kept online;
-- the days' first and last day as two more conditions let it prune when it starts (EXPLAIN:
-- "Subplans Removed"), so it reads the one or two months of the batch.
CREATE OR REPLACE FUNCTION stepcoin_sync_snapshot(
    p_user uuid, p_days date[], p_from date, p_to date, p_burst interval)
RETURNS TABLE (is_active boolean, created_at timestamptz, timezone varchar, version bigint,
               records json, history json, links json)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_first date;
    v_last date;
BEGIN
    SELECT min(x), max(x) INTO v_first, v_last FROM unnest(p_days) AS x;
    RETURN QUERY
    SELECT u.is_active, u.created_at, u.timezone, w.version,
      coalesce((SELECT json_agg(json_build_array(
            r.recorded_date, r.source, r.steps, r.approved_steps, r.device_ids, r.is_deleted,
            r.is_manual, r.client_record_id, r.client_record_version, r.status, r.reasons,
            r.intervals IS NOT NULL))
          FROM step_records r WHERE r.user_id = p_user AND r.recorded_date = ANY(p_days)
            AND r.recorded_date BETWEEN v_first AND v_last),
        '[]'::json),
      coalesce((SELECT json_object_agg(d.recorded_date, d.credited_steps)
          FROM step_days d WHERE d.user_id = p_user AND d.recorded_date >= p_from
            AND d.recorded_date <= p_to AND d.credited_steps > 0), '{}'::json),
      json_build_array(
        (SELECT json_build_array(lm.device_accounts, lm.same_series, lm.cleared)
           FROM link_marks lm WHERE lm.user_id = p_user),
        (SELECT count(*) FROM users o WHERE o.signup_address = u.signup_address
            AND o.created_at BETWEEN u.created_at - p_burst AND u.created_at + p_burst))
    FROM users u JOIN wallets w ON w.user_id = u.id WHERE u.id = p_user;
END
$fn$;
