-- stepcoin_ensure_step_partitions v2: the monthly partitions of step_records from `from_day`'s
-- month up to `months_ahead` months from today (step_records_pYYYYMM); returns how many it
-- created. Run hourly by the job steps:ensure_step_partitions (from today minus the sync
-- window: stepcoin.steps.tasks) and at worker start. Loaded by migration 0049.
--
-- v1 created months from today on only, so a sync window longer than a month (the setting
-- allows 365 days) wrote the older days into step_records_default: never archived by month,
-- and read by a sequential scan wherever a plan was made while it was empty (the sync's
-- snapshot keeps one generic plan per session; a raised window's 500-record batches read the
-- whole default partition on every sync, issue 13). v2 also repairs that: a month whose rows
-- are in the default partition gets its partition and its rows, in this transaction (under the
-- lock that creating a partition takes anyway, held for that moment; PostgreSQL refuses to
-- create a partition while the default one holds rows of its range).
CREATE OR REPLACE FUNCTION stepcoin_ensure_step_partitions(from_day date, months_ahead integer)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    month_start date := date_trunc('month', from_day)::date;
    month_end date;
    last_month date := (date_trunc('month', current_date) + make_interval(months => months_ahead))::date;
    part_name text;
    created integer := 0;
    moving boolean;
BEGIN
    -- One partition per calendar month; names are step_records_pYYYYMM.
    WHILE month_start <= last_month LOOP
        month_end := (month_start + interval '1 month')::date;
        part_name := format('step_records_p%s', to_char(month_start, 'YYYYMM'));
        IF to_regclass(part_name) IS NULL THEN
            moving := false;
            IF to_regclass('step_records_default') IS NOT NULL THEN
                moving := EXISTS (
                    SELECT 1 FROM step_records_default r
                    WHERE r.recorded_date >= month_start AND r.recorded_date < month_end);
            END IF;
            IF moving THEN
                -- nothing reaches step_records until the month's rows are in their partition.
                -- The strongest lock first, as CREATE TABLE ... PARTITION OF takes it anyway: a
                -- weaker one held while waiting for that would deadlock with a transaction that
                -- read step_records and then writes them (a review's decision)
                LOCK TABLE ONLY step_records IN ACCESS EXCLUSIVE MODE;
                CREATE TEMPORARY TABLE stepcoin_moving_records ON COMMIT DROP AS
                    WITH moved AS (
                        DELETE FROM step_records_default r
                        WHERE r.recorded_date >= month_start AND r.recorded_date < month_end
                        RETURNING r.*
                    ) SELECT * FROM moved;
            END IF;
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF step_records FOR VALUES FROM (%L) TO (%L)',
                part_name, month_start, month_end);
            IF moving THEN
                INSERT INTO step_records SELECT * FROM stepcoin_moving_records;
                DROP TABLE stepcoin_moving_records;
            END IF;
            created := created + 1;
        END IF;
        month_start := month_end;
    END LOOP;
    RETURN created;
END
$fn$;
