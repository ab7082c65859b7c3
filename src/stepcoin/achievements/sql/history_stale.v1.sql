-- stepcoin_achievement_history_stale(): a row trigger of step_days (migration 0048).
--
-- achievement_history summarises each walker's credited days up to `through` (the closed
-- history: days no sync can change any more), so the achievements read and batch read only the
-- days after it. A change of a day in the closed part (a reviewer's decision or an appeal of an
-- old day, a deletion) must make that summary unusable in the very transaction that changes
-- the day. The triggers' WHEN passes only days at least 10 days back (UTC; the builder never
-- summarises a later day), so a sync of its window never calls this.
--
-- Each call bumps the walker's generation (a missing row becomes a row with nothing
-- summarised): a builder that read the days before this change writes its summary only if
-- the generation it read is still there (achievements.repository.HISTORY_WRITE), so it can
-- never store a summary of days that changed while it computed. A summary that holds the
-- changed day is dropped (through NULL: read everything until the builder builds it again).
CREATE OR REPLACE FUNCTION stepcoin_achievement_history_stale() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    walker uuid;
    changed date;
BEGIN
    IF TG_OP = 'DELETE' THEN
        walker := OLD.user_id;
        changed := OLD.recorded_date;
    ELSIF TG_OP = 'UPDATE' THEN
        walker := NEW.user_id;
        changed := least(OLD.recorded_date, NEW.recorded_date);
        IF OLD.user_id <> NEW.user_id THEN  -- never done; still, both walkers' sums changed
            UPDATE achievement_history SET generation = generation + 1, through = NULL
            WHERE user_id = OLD.user_id;
        END IF;
    ELSE
        walker := NEW.user_id;
        changed := NEW.recorded_date;
    END IF;
    -- no foreign key to users (as achievements_dirty): a row of a walker deleted in this very
    -- statement (the cascade of a user's deletion) must not fail it
    INSERT INTO achievement_history AS h (user_id, generation) VALUES (walker, 1)
    ON CONFLICT (user_id) DO UPDATE SET
        generation = h.generation + 1,
        through = CASE WHEN h.through >= changed THEN NULL ELSE h.through END;
    RETURN NULL;
END
$$;
