-- stepcoin_compact_decisions: one batch of the decisions compaction (docs/retention.md).
-- Examines at most `batch` step_validations with id > after_id, in id order, and deletes those
-- no longer needed: an unreviewed, non-appeal decision older than `cutoff` about a record
-- that is approved now under a newer decision (the sync sets superseded_by only on decisions
-- in review, so "superseded" here is: older than the record's validation_id), on a day whose
-- every record is approved, with no coins held and no unsettled challenge of the walker
-- covering it. The final decision of every record, every staff decision and every appeal
-- stay. Returns the last id examined (the next batch's cursor; NULL when none was left), how
-- many were examined and deleted, the first id examined that is newer than the cutoff (where
-- the next run starts), and whether every decision examined was newer than the cutoff (ids
-- follow time, so the pass is over). Run by the job retention:prune. Loaded by migration 0037.
CREATE OR REPLACE FUNCTION stepcoin_compact_decisions(
    after_id bigint, cutoff timestamptz, batch integer,
    OUT last_id bigint, OUT examined integer, OUT deleted integer, OUT young_from bigint,
    OUT all_young boolean)
LANGUAGE plpgsql AS $fn$
BEGIN
    WITH candidates AS (
        SELECT v.id, v.user_id, v.recorded_date, v.source, v.created_at, v.superseded_by,
               v.reviewed_at, v.rule_hits
        FROM step_validations v
        WHERE v.id > after_id
        ORDER BY v.id
        LIMIT batch
    ), doomed AS (
        SELECT c.id FROM candidates c
        WHERE c.created_at < cutoff
          AND c.reviewed_at IS NULL
          AND NOT c.rule_hits @> '[{"code": "appeal"}]'::jsonb
          AND EXISTS (SELECT 1 FROM step_records r
                      WHERE r.user_id = c.user_id AND r.recorded_date = c.recorded_date
                        AND r.source = c.source AND r.status = 'approved'
                        AND r.validation_id > c.id)
          AND NOT EXISTS (SELECT 1 FROM step_records r
                          WHERE r.user_id = c.user_id AND r.recorded_date = c.recorded_date
                            AND r.status <> 'approved')
          AND NOT EXISTS (SELECT 1 FROM step_validations o
                          WHERE o.user_id = c.user_id AND o.recorded_date = c.recorded_date
                            AND o.status = 'flagged' AND o.reviewed_at IS NULL
                            AND o.superseded_by IS NULL)
          AND NOT EXISTS (SELECT 1 FROM step_days d
                          WHERE d.user_id = c.user_id AND d.recorded_date = c.recorded_date
                            AND d.coins_pending > 0)
          AND NOT EXISTS (SELECT 1 FROM challenge_participants p
                          JOIN challenges ch ON ch.id = p.challenge_id
                          WHERE p.user_id = c.user_id
                            AND ch.status IN ('scheduled', 'active', 'grace', 'settling')
                            AND c.recorded_date BETWEEN ch.starts_on AND ch.ends_on)
    ), gone AS (
        DELETE FROM step_validations v USING doomed d WHERE v.id = d.id RETURNING v.id
    )
    SELECT (SELECT max(id) FROM candidates), (SELECT count(*) FROM candidates),
           (SELECT count(*) FROM gone),
           (SELECT min(id) FROM candidates WHERE created_at >= cutoff),
           (SELECT coalesce(bool_and(created_at >= cutoff), true) FROM candidates)
    INTO last_id, examined, deleted, young_from, all_young;
END
$fn$;
