-- Live leaderboards (issue 13): the rank buckets and the change log of walkers.
--
-- A board row holds a walker's total only; a rank is counted at read time:
--   rank(t) = 1 + (walkers in buckets above bucket(t)) + (walkers of t's bucket above t)
-- leaderboard_rank_counts holds the walkers per (board, bucket) and is kept equal to
-- leaderboard_cache by the statement triggers below (whatever writes the cache: the
-- refresh, a full rebuild, the prune, a cascade from a deleted user).

-- A total's bucket: the total with its first three digits kept (12,345 -> 12,300; below
-- 1,000 the total itself). Monotone, so "bucket > bucket(t)" holds only totals above t;
-- about 900 buckets a decade, so a rank reads a few thousand small rows at most.
CREATE OR REPLACE FUNCTION stepcoin_board_bucket(p_total bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_total < 1000 THEN p_total
                ELSE p_total - p_total % CAST(10 ^ (length(CAST(p_total AS text)) - 3) AS bigint)
           END
$$;

-- The first total after a total's bucket.
CREATE OR REPLACE FUNCTION stepcoin_board_bucket_end(p_total bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_total < 1000 THEN p_total + 1
                ELSE p_total - p_total % CAST(10 ^ (length(CAST(p_total AS text)) - 3) AS bigint)
                     + CAST(10 ^ (length(CAST(p_total AS text)) - 3) AS bigint)
           END
$$;

-- Statement trigger of leaderboard_cache (one per event, each with its transition tables
-- new_rows / old_rows): the rows that left and entered each bucket, netted, applied in key
-- order (no deadlock with another writer of the cache), emptied buckets removed.
CREATE OR REPLACE FUNCTION stepcoin_board_counts() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    d_periods varchar[];
    d_starts date[];
    d_buckets bigint[];
    d_walkers bigint[];
BEGIN
    -- (a transition table exists only for its own event: one query per event)
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(period), array_agg(period_start), array_agg(bucket), array_agg(n)
        INTO d_periods, d_starts, d_buckets, d_walkers
        FROM (SELECT period, period_start, stepcoin_board_bucket(total_steps) AS bucket,
                     count(*) AS n
              FROM new_rows GROUP BY 1, 2, 3) x;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(period), array_agg(period_start), array_agg(bucket), array_agg(n)
        INTO d_periods, d_starts, d_buckets, d_walkers
        FROM (SELECT period, period_start, stepcoin_board_bucket(total_steps) AS bucket,
                     -count(*) AS n
              FROM old_rows GROUP BY 1, 2, 3) x;
    ELSE
        SELECT array_agg(period), array_agg(period_start), array_agg(bucket), array_agg(n)
        INTO d_periods, d_starts, d_buckets, d_walkers
        FROM (SELECT period, period_start, bucket, sum(walkers) AS n
              FROM (SELECT period, period_start, stepcoin_board_bucket(total_steps) AS bucket,
                           1 AS walkers FROM new_rows
                    UNION ALL
                    SELECT period, period_start, stepcoin_board_bucket(total_steps), -1
                    FROM old_rows) m
              GROUP BY 1, 2, 3 HAVING sum(walkers) <> 0) x;
    END IF;
    IF d_buckets IS NULL THEN
        RETURN NULL;
    END IF;
    WITH applied AS (
        INSERT INTO leaderboard_rank_counts AS k (period, period_start, bucket, walkers)
        SELECT * FROM unnest(d_periods, d_starts, d_buckets, d_walkers)
                      AS d(period, period_start, bucket, walkers)
        ORDER BY 1, 2, 3
        ON CONFLICT (period, period_start, bucket)
        DO UPDATE SET walkers = k.walkers + EXCLUDED.walkers
        RETURNING k.period, k.period_start, k.bucket, k.walkers
    )
    SELECT array_agg(period), array_agg(period_start), array_agg(bucket)
    INTO d_periods, d_starts, d_buckets
    FROM applied WHERE walkers = 0;
    IF d_buckets IS NOT NULL THEN
        DELETE FROM leaderboard_rank_counts k
        USING unnest(d_periods, d_starts, d_buckets) AS e(period, period_start, bucket)
        WHERE k.period = e.period AND k.period_start = e.period_start AND k.bucket = e.bucket
          AND k.walkers = 0;
    END IF;
    RETURN NULL;
END
$$;

-- Row trigger of step_days (only when the credited steps change, see the triggers' WHEN):
-- log the walker's day and by how much its credited steps moved; the refresh job adds that
-- to the walker's live boards.
CREATE OR REPLACE FUNCTION stepcoin_board_day_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO leaderboard_dirty (user_id, recorded_date, steps_delta)
        VALUES (OLD.user_id, OLD.recorded_date, -OLD.credited_steps);
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO leaderboard_dirty (user_id, recorded_date, steps_delta)
        VALUES (NEW.user_id, NEW.recorded_date, NEW.credited_steps);
    ELSE
        INSERT INTO leaderboard_dirty (user_id, recorded_date, steps_delta)
        VALUES (NEW.user_id, NEW.recorded_date, NEW.credited_steps - OLD.credited_steps);
    END IF;
    RETURN NULL;
END
$$;

-- Row trigger of users (only when is_active flips): every board of the walker, recounted.
CREATE OR REPLACE FUNCTION stepcoin_board_walker_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO leaderboard_dirty (user_id, recorded_date, steps_delta) VALUES (NEW.id, NULL, NULL);
    RETURN NULL;
END
$$;

-- TRUNCATE of leaderboard_cache (fires no row or transition trigger): the counts go with it.
CREATE OR REPLACE FUNCTION stepcoin_board_counts_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM leaderboard_rank_counts;
    RETURN NULL;
END
$$;
