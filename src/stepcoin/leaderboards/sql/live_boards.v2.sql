-- Live leaderboards, version 2 (issue 13): what the API processes' cache of each board's top
-- entries is keyed by, besides the board's computed_at.
--
-- A board's top entries show each walker's display name, read from users. The API keeps the
-- top N of a board per process, keyed by (leaderboard_builds.computed_at, the names
-- generation): every refresh or rebuild moves the first; this trigger moves the second
-- whenever a walker's name or is_active changes or a walker is deleted (the cascade removes
-- their board rows without a refresh), so a cached top never shows a name the board itself
-- would no longer show (a tombstoned or renamed walker).
--
-- A deferred constraint trigger: it runs at commit, after everything else the transaction
-- does, so the one generation row is locked only for the commit itself (no lock order to
-- keep with any other row, no deadlock), and in the same transaction as the change (a reader
-- sees both or neither).
CREATE OR REPLACE FUNCTION stepcoin_board_names_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO leaderboard_names AS n (id, generation) VALUES (1, 1)
    ON CONFLICT (id) DO UPDATE SET generation = n.generation + 1;
    RETURN NULL;
END
$$;
