-- Group boards (issue 17, item 3): leaderboard_group_entries holds, per group, the board rows
-- of its members (period, period start, walker, total), kept equal to
-- leaderboard_cache x group_members by the statement triggers below, so a group's board reads
-- its top as one index range and a rank as one index-only count, however large the board.
-- (Reading a group of 10,000 through leaderboard_cache takes 10,000 primary-key probes and a
-- sort per read: p50 100-150 ms at 1M walkers on the bench machine; BENCHMARKS.md.)

-- leaderboard_cache rows inserted (the refresh, a rebuild): the walker's groups follow.
CREATE OR REPLACE FUNCTION stepcoin_group_board_upsert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO leaderboard_group_entries AS e
        (group_id, period, period_start, user_id, total_steps)
    SELECT m.group_id, n.period, n.period_start, n.user_id, n.total_steps
    FROM new_rows n JOIN group_members m ON m.user_id = n.user_id
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (group_id, period, period_start, user_id)
    DO UPDATE SET total_steps = EXCLUDED.total_steps
    WHERE e.total_steps IS DISTINCT FROM EXCLUDED.total_steps;
    RETURN NULL;
END
$$;

-- leaderboard_cache rows updated (a total moved): a primary-key update per group of the
-- walker (the row is there: it was copied when the walker joined or the board row was made).
CREATE OR REPLACE FUNCTION stepcoin_group_board_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE leaderboard_group_entries e SET total_steps = n.total_steps
    FROM new_rows n JOIN group_members m ON m.user_id = n.user_id
    WHERE e.group_id = m.group_id AND e.period = n.period AND e.period_start = n.period_start
      AND e.user_id = n.user_id AND e.total_steps IS DISTINCT FROM n.total_steps;
    RETURN NULL;
END
$$;

-- leaderboard_cache rows deleted (a walker off a board, the prune): a primary-key delete per
-- group of the walker. (A walker's rows of a group they left went when they left; a deleted
-- user's rows go by the foreign key's cascade.)
CREATE OR REPLACE FUNCTION stepcoin_group_board_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM leaderboard_group_entries e
    USING old_rows o JOIN group_members m ON m.user_id = o.user_id
    WHERE e.group_id = m.group_id AND e.period = o.period AND e.period_start = o.period_start
      AND e.user_id = o.user_id;
    RETURN NULL;
END
$$;

-- TRUNCATE of leaderboard_cache: the group boards go with it.
CREATE OR REPLACE FUNCTION stepcoin_group_board_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM leaderboard_group_entries;
    RETURN NULL;
END
$$;

-- A walker joins groups: their rows of every board kept (one primary-key probe per board).
CREATE OR REPLACE FUNCTION stepcoin_group_board_joined() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO leaderboard_group_entries (group_id, period, period_start, user_id, total_steps)
    SELECT n.group_id, c.period, c.period_start, n.user_id, c.total_steps
    FROM new_rows n
    CROSS JOIN leaderboard_builds b
    JOIN leaderboard_cache c
      ON c.period = b.period AND c.period_start = b.period_start AND c.user_id = n.user_id
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (group_id, period, period_start, user_id) DO NOTHING;
    RETURN NULL;
END
$$;

-- A walker leaves, is kicked or banned, or the group goes: their rows of it go (a
-- primary-key delete per board; every board a row can be on has its leaderboard_builds row).
CREATE OR REPLACE FUNCTION stepcoin_group_board_left() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM leaderboard_group_entries e
    USING old_rows o CROSS JOIN leaderboard_builds b
    WHERE e.group_id = o.group_id AND e.period = b.period AND e.period_start = b.period_start
      AND e.user_id = o.user_id;
    RETURN NULL;
END
$$;
