-- stepcoin_append_only: a trigger function that refuses UPDATE, DELETE and TRUNCATE on the
-- tables it guards (the coin ledger, the audit log). A correction is a new, reversing row; the books of
-- a deleted account stay. SQLSTATE SC004.
CREATE OR REPLACE FUNCTION stepcoin_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'SC004', HINT = 'Write a new, reversing row instead.';
END
$fn$;
