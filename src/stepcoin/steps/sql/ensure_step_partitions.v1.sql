-- stepcoin_ensure_step_partitions: the monthly partitions of step_records up to `months_ahead`
-- months from today (step_records_pYYYYMM); returns how many it created. Run daily by the
-- job steps:ensure_step_partitions and at worker start. Loaded by migration 0001.
CREATE OR REPLACE FUNCTION stepcoin_ensure_step_partitions(from_day date, months_ahead integer)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    month_start date := date_trunc('month', from_day)::date;
    last_month date := (date_trunc('month', current_date) + make_interval(months => months_ahead))::date;
    part_name text;
    created integer := 0;
BEGIN
    -- One partition per calendar month; names are step_records_pYYYYMM.
    WHILE month_start <= last_month LOOP
        part_name := format('step_records_p%s', to_char(month_start, 'YYYYMM'));
        IF to_regclass(part_name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF step_records FOR VALUES FROM (%L) TO (%L)',
                part_name, month_start, (month_start + interval '1 month')::date);
            created := created + 1;
        END IF;
        month_start := (month_start + interval '1 month')::date;
    END LOOP;
    RETURN created;
END
$fn$;
