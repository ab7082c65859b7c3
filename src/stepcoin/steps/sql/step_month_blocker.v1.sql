-- stepcoin_step_month_blocker: why the step_records partition of `month` may not be archived
-- yet, or NULL when every row of it is settled (docs/retention.md, "What is still needed").
-- A month is archived only when it ended before `keep_after` and before the sync window (no
-- sync can write to it again), and none of its days has a record or a decision in review (an
-- appeal is one), a rejection still appealable, coins held, or an unsettled challenge covering
-- it. The ledger never
-- references step records (its references are user:day:version), and step_days (what each day
-- paid) stays. Checked by stepcoin.retention before the partition is detached, in the same
-- transaction. Loaded by migration 0037.
CREATE OR REPLACE FUNCTION stepcoin_step_month_blocker(month date, keep_after date)
RETURNS text LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    first_day date := date_trunc('month', month)::date;
    next_month date := (date_trunc('month', month) + interval '1 month')::date;
    sync_days integer := coalesce(
        (SELECT (value #>> '{}')::integer FROM settings
          WHERE key = 'anticheat.sync_window_days'), 7);
BEGIN
    IF next_month > keep_after THEN
        RETURN 'inside the retention window';
    END IF;
    IF next_month > current_date - sync_days - 1 THEN
        RETURN 'inside the sync window';
    END IF;
    IF EXISTS (SELECT 1 FROM step_records r
               WHERE r.recorded_date >= first_day AND r.recorded_date < next_month
                 AND r.status = 'flagged') THEN
        RETURN 'a record is in review';
    END IF;
    IF EXISTS (SELECT 1 FROM step_validations v
               WHERE v.recorded_date >= first_day AND v.recorded_date < next_month
                 AND v.status = 'flagged' AND v.reviewed_at IS NULL
                 AND v.superseded_by IS NULL) THEN
        RETURN 'a decision is in review';
    END IF;
    -- a rejection is appealable for 30 days (stepcoin.steps.appeals.APPEAL_DAYS) from when
    -- it was made, which for a reviewed record may be long after its day
    IF EXISTS (SELECT 1 FROM step_validations v
               WHERE v.recorded_date >= first_day AND v.recorded_date < next_month
                 AND v.status = 'rejected'
                 AND coalesce(v.reviewed_at, v.created_at) > now() - interval '30 days') THEN
        RETURN 'a rejection may still be appealed';
    END IF;
    IF EXISTS (SELECT 1 FROM step_days d
               WHERE d.recorded_date >= first_day AND d.recorded_date < next_month
                 AND d.coins_pending > 0) THEN
        RETURN 'coins are held for a day';
    END IF;
    IF EXISTS (SELECT 1 FROM challenges ch
               WHERE ch.status IN ('scheduled', 'active', 'grace', 'settling')
                 AND ch.starts_on < next_month AND ch.ends_on >= first_day) THEN
        RETURN 'a challenge covering it is not settled';
    END IF;
    RETURN NULL;
END
$fn$;
