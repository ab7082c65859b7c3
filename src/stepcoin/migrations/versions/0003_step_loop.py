"""The step-to-coin loop: day settlements, record status, and the one-round-trip apply function.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 13:40:42.136340
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Applies a sync (or a review decision) computed in Python, in one round trip and one
# transaction: lock the wallet, check that the user's steps did not change since the snapshot
# the decisions were computed from (optimistic version), upsert the records, store the
# decisions, settle each day against its stored state (clawbacks never exceed the balance),
# append the ledger rows and update the wallet. Returns {"conflict": true} when the snapshot is
# stale: the caller recomputes from a fresh one.
APPLY_SYNC_SQL = r"""
CREATE OR REPLACE FUNCTION stepcoin_apply_sync(p_user uuid, p_version bigint, p_payload jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
    v_available bigint;
    v_version bigint;
    v_pending_total bigint := 0;
    v_earned_total bigint := 0;
    day record;
    cur record;
    v_delta bigint;
    v_paid bigint;
    v_pending bigint;
    v_day_version integer;
    amounts bigint[] := '{}';
    kinds text[] := '{}';
    refs text[] := '{}';
    balances bigint[] := '{}';
    results jsonb := '[]'::jsonb;
    new_ids bigint[];
    new_dates date[];
    new_sources text[];
BEGIN
    SELECT available_coins, steps_version INTO v_available, v_version
    FROM wallets WHERE user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'no_wallet');
    END IF;
    IF v_version <> p_version THEN
        RETURN jsonb_build_object('conflict', true);
    END IF;

    -- decisions get their ids first, so each record is written once, already pointing at its
    -- newest decision (validation_id), and each decision knows its record's id
    WITH v AS MATERIALIZED (
        SELECT x.*, nextval(pg_get_serial_sequence('step_validations', 'id')) AS vid
        FROM jsonb_to_recordset(coalesce(p_payload -> 'validations', '[]'::jsonb))
            AS x(d date, s text, steps integer, st text, hits jsonb, risk integer, stored boolean)
    ), up AS (
        INSERT INTO step_records AS r (
            user_id, recorded_date, source, steps, approved_steps, device_ids, client_record_id,
            client_record_version, is_manual, is_deleted, intervals, status, reasons, synced_at,
            validation_id)
        SELECT p_user, x.d, x.s, x.steps, x.ap, coalesce(x.dev, '{}'), x.cid, x.cv,
               coalesce(x.man, false), coalesce(x.del, false), x.iv, x.st, coalesce(x.rs, '{}'),
               now(), (SELECT v.vid FROM v WHERE v.stored AND v.d = x.d AND v.s = x.s)
        FROM jsonb_to_recordset(coalesce(p_payload -> 'records', '[]'::jsonb)) AS x(
            d date, s text, steps integer, ap integer, dev text[], cid text, cv bigint,
            man boolean, del boolean, iv jsonb, st text, rs text[])
        ON CONFLICT (user_id, recorded_date, source) DO UPDATE SET
            steps = EXCLUDED.steps, approved_steps = EXCLUDED.approved_steps,
            device_ids = EXCLUDED.device_ids, client_record_id = EXCLUDED.client_record_id,
            client_record_version = EXCLUDED.client_record_version,
            is_manual = EXCLUDED.is_manual, is_deleted = EXCLUDED.is_deleted,
            intervals = EXCLUDED.intervals, status = EXCLUDED.status, reasons = EXCLUDED.reasons,
            synced_at = now(), validation_id = coalesce(EXCLUDED.validation_id, r.validation_id)
        RETURNING r.id, r.recorded_date, r.source
    ), ins AS (
        INSERT INTO step_validations (id, user_id, step_record_id, recorded_date, source, steps,
                                      status, rule_hits, risk_score)
        SELECT v.vid, p_user, up.id, v.d, v.s, v.steps, v.st, coalesce(v.hits, '[]'::jsonb),
               coalesce(v.risk, 0)
        FROM v LEFT JOIN up ON v.stored AND up.recorded_date = v.d AND up.source = v.s
        RETURNING id, recorded_date, source, step_record_id
    )
    SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(recorded_date), '{}'),
           coalesce(array_agg(source::text), '{}')
    INTO new_ids, new_dates, new_sources
    FROM ins WHERE step_record_id IS NOT NULL;

    -- older unreviewed flags of the same records leave the queue
    UPDATE step_validations v SET superseded_by = n.id
    FROM unnest(new_ids, new_dates, new_sources) AS n(id, d, s)
    WHERE v.user_id = p_user AND v.recorded_date = n.d AND v.source = n.s AND v.id < n.id
      AND v.status = 'flagged' AND v.reviewed_at IS NULL AND v.superseded_by IS NULL;

    FOR day IN
        SELECT x.* FROM jsonb_to_recordset(coalesce(p_payload -> 'days', '[]'::jsonb))
            AS x(d date, src text, steps integer, paid bigint, pending bigint)
        ORDER BY x.d
    LOOP
        SELECT coins_paid, coins_pending, version INTO cur
        FROM step_days WHERE user_id = p_user AND recorded_date = day.d;
        v_paid := coalesce(cur.coins_paid, 0);
        v_pending := coalesce(cur.coins_pending, 0);
        v_day_version := coalesce(cur.version, 0) + 1;
        v_delta := day.paid - v_paid;
        IF v_delta < 0 THEN
            v_delta := greatest(v_delta, -v_available);  -- never below zero: claw what is there
        END IF;
        v_available := v_available + v_delta;
        v_earned_total := v_earned_total + v_delta;
        v_pending_total := v_pending_total + (day.pending - v_pending);
        INSERT INTO step_days AS sd (user_id, recorded_date, credited_source, credited_steps,
                                     coins_paid, coins_pending, version, updated_at)
        VALUES (p_user, day.d, day.src, day.steps, v_paid + v_delta, day.pending,
                v_day_version, now())
        ON CONFLICT (user_id, recorded_date) DO UPDATE SET
            credited_source = EXCLUDED.credited_source, credited_steps = EXCLUDED.credited_steps,
            coins_paid = EXCLUDED.coins_paid, coins_pending = EXCLUDED.coins_pending,
            version = EXCLUDED.version, updated_at = now();
        IF v_delta <> 0 THEN
            amounts := amounts || v_delta;
            kinds := kinds || (CASE WHEN v_delta > 0 THEN 'step_reward' ELSE 'reversal' END);
            refs := refs || format('steps:%s:%s:%s', p_user, day.d, v_day_version);
            balances := balances || v_available;
        END IF;
        results := results || jsonb_build_object(
            'd', day.d, 'src', day.src, 'delta', v_delta,
            'pending_delta', day.pending - v_pending, 'paid', v_paid + v_delta,
            'pending', day.pending);
        UPDATE step_validations v SET coins_awarded = v_delta, coins_pending = day.pending
        FROM unnest(new_ids, new_dates, new_sources) AS n(id, d, s)
        WHERE v.id = n.id AND n.d = day.d AND n.s = day.src;
    END LOOP;

    IF cardinality(amounts) > 0 THEN
        -- clock_timestamp(): the time the wallet lock was held, so created_at follows the
        -- balance_after chain even when this statement waited for the lock
        INSERT INTO coin_transactions (user_id, amount, transaction_type, reference_id,
                                       balance_after, created_at)
        SELECT p_user, a.amount, a.kind, a.ref, a.balance, clock_timestamp()
        FROM unnest(amounts, kinds, refs, balances) AS a(amount, kind, ref, balance);
    END IF;

    UPDATE wallets SET
        available_coins = v_available,
        pending_coins = pending_coins + v_pending_total,
        lifetime_earned = lifetime_earned + v_earned_total,
        steps_version = steps_version + 1,
        updated_at = now()
    WHERE user_id = p_user;

    IF v_earned_total > 0 THEN
        -- approved steps were paid: achievements are evaluated by a job, at most one waiting
        -- per user (its queueing lock); the job is committed with the coins or not at all
        BEGIN
            PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
                'default', 'achievements:evaluate_user', 0, NULL,
                'achievements:' || p_user::text, jsonb_build_object('user_id', p_user::text),
                NULL)::procrastinate_job_to_defer_v1]);
        EXCEPTION WHEN unique_violation THEN
            NULL;  -- an evaluation for this user is already waiting
        END;
    END IF;

    RETURN jsonb_build_object('conflict', false, 'days', results, 'available', v_available,
                              'version', v_version + 1);
END
$fn$;
"""


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "step_days",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("recorded_date", sa.Date(), nullable=False),
        sa.Column("credited_source", sa.String(length=16), nullable=True),
        sa.Column("credited_steps", sa.Integer(), server_default="0", nullable=False),
        sa.Column("coins_paid", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("coins_pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("coins_paid >= 0", name=op.f("ck_step_days_paid_non_negative")),
        sa.CheckConstraint("coins_pending >= 0", name=op.f("ck_step_days_pending_non_negative")),
        sa.CheckConstraint("credited_steps >= 0", name=op.f("ck_step_days_steps_non_negative")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_step_days_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "recorded_date", name=op.f("pk_step_days")),
    )
    op.add_column(
        "step_records",
        sa.Column(
            "device_ids",
            postgresql.ARRAY(sa.String(length=200)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
    )
    op.add_column(
        "step_records",
        sa.Column("status", sa.String(length=16), server_default="approved", nullable=False),
    )
    op.add_column(
        "step_records",
        sa.Column(
            "reasons",
            postgresql.ARRAY(sa.String(length=64)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
    )
    op.add_column("step_records", sa.Column("validation_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "step_records",
        sa.Column("approved_steps", sa.Integer(), server_default="0", nullable=False),
    )
    op.drop_column("step_records", "device_count")
    op.add_column(
        "step_validations",
        sa.Column("coins_pending", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.add_column("step_validations", sa.Column("superseded_by", sa.BigInteger(), nullable=True))
    op.alter_column("step_validations", "step_record_id", existing_type=sa.BIGINT(), nullable=True)
    op.drop_index(
        op.f("ix_step_validations_flagged_queue"),
        table_name="step_validations",
        postgresql_where="((status)::text = 'flagged'::text)",
    )
    op.create_index(
        "ix_step_validations_review_queue",
        "step_validations",
        ["created_at", "id"],
        unique=False,
        postgresql_where=sa.text(
            "status = 'flagged' AND reviewed_at IS NULL AND superseded_by IS NULL"
        ),
    )
    op.drop_constraint(
        op.f("fk_step_validations_step_record"), "step_validations", type_="foreignkey"
    )
    op.create_foreign_key(
        op.f("fk_step_validations_user_id_users"),
        "step_validations",
        "users",
        ["user_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.add_column(
        "wallets", sa.Column("steps_version", sa.BigInteger(), server_default="0", nullable=False)
    )
    # ### end Alembic commands ###
    op.create_check_constraint(
        op.f("ck_step_records_status"),
        "step_records",
        "status IN ('approved', 'flagged', 'rejected')",
    )
    op.execute(APPLY_SYNC_SQL)


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_column("wallets", "steps_version")
    op.drop_constraint(
        op.f("fk_step_validations_user_id_users"), "step_validations", type_="foreignkey"
    )
    op.create_foreign_key(
        op.f("fk_step_validations_step_record"),
        "step_validations",
        "step_records",
        ["user_id", "recorded_date", "source"],
        ["user_id", "recorded_date", "source"],
        ondelete="CASCADE",
    )
    op.drop_index(
        "ix_step_validations_review_queue",
        table_name="step_validations",
        postgresql_where=sa.text(
            "status = 'flagged' AND reviewed_at IS NULL AND superseded_by IS NULL"
        ),
    )
    op.create_index(
        op.f("ix_step_validations_flagged_queue"),
        "step_validations",
        ["created_at", "id"],
        unique=False,
        postgresql_where="((status)::text = 'flagged'::text)",
    )
    op.alter_column("step_validations", "step_record_id", existing_type=sa.BIGINT(), nullable=False)
    op.drop_column("step_validations", "superseded_by")
    op.drop_column("step_validations", "coins_pending")
    op.add_column(
        "step_records",
        sa.Column(
            "device_count",
            sa.SMALLINT(),
            server_default=sa.text("'1'::smallint"),
            autoincrement=False,
            nullable=False,
        ),
    )
    op.drop_column("step_records", "approved_steps")
    op.drop_column("step_records", "validation_id")
    op.drop_column("step_records", "reasons")
    op.drop_column("step_records", "status")
    op.drop_column("step_records", "device_ids")
    op.drop_table("step_days")
    op.execute("DROP FUNCTION IF EXISTS stepcoin_apply_sync(uuid, bigint, jsonb)")
    # ### end Alembic commands ###
