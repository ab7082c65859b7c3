"""Sharper single-walker anti-cheat rules (issue 16, item 6): their thresholds as settings.

Seeds the thresholds of the rules intervals_short, repeated_highs, held_level, rising_run and
high_after_gap (src/stepcoin/steps/rules.py; docs/fair-play.md), and raises
`anticheat.jump_high_multiplier` from 1.3 to 1.4 where it is still the old default (the new
rules catch what sudden_jump caught between 1.3x and 1.4x the walker's highest day; at 1.3x it
flagged 16 more honest days on the simulated population: holiday makers' first days away,
runners' long runs).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-04 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | Sequence[str] | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEEDS = {  # key: (value as JSON, description), as the registry had them at this revision
    "anticheat.intervals_min_share": (
        "0.8",
        "A day whose intervals hold less than this share of its count (and anticheat.intervals_gap_steps fewer steps) is flagged.",
    ),
    "anticheat.intervals_gap_steps": (
        "3000",
        "The intervals-short rule only fires when the count exceeds its intervals by more than this many steps.",
    ),
    "anticheat.highs_floor_steps": (
        "6000",
        "The repeated-highs rule only fires above this many steps.",
    ),
    "anticheat.highs_multiplier": (
        "1.8",
        "The repeated-highs rule's high day: above this multiple of the user's trailing median.",
    ),
    "anticheat.highs_weekday_multiplier": (
        "1.5",
        "The repeated-highs rule's high day is also above this multiple of the median of the same weekday's days in the baseline window.",
    ),
    "anticheat.highs_days": (
        "14",
        "The repeated-highs rule counts the runs of high days among this many days before the day.",
    ),
    "anticheat.highs_min_runs": (
        "3",
        "The repeated-highs rule fires at this many separate runs of high days, the day's own included.",
    ),
    "anticheat.held_days": (
        "7",
        "The held-level rule looks at the credited days among this many days before the day.",
    ),
    "anticheat.held_min_days": (
        "4",
        "The held-level rule fires when at least this many of its days are within anticheat.held_tolerance of the day.",
    ),
    "anticheat.held_tolerance": (
        "0.04",
        "The held-level rule's 'same count': within this share of the day's steps.",
    ),
    "anticheat.held_floor_steps": (
        "12000",
        "The held-level rule only judges a day above this many steps.",
    ),
    "anticheat.rising_min_days": (
        "6",
        "The rising-run rule fires when the day tops at least this many credited days, each above the one before.",
    ),
    "anticheat.rising_ratio": (
        "1.45",
        "The rising-run rule fires above this multiple of the median of the days before the run.",
    ),
    "anticheat.rising_floor_steps": (
        "6000",
        "The rising-run rule only fires above this many steps.",
    ),
    "anticheat.gap_days": (
        "14",
        "The high-after-gap rule counts the credited days among this many days before the day.",
    ),
    "anticheat.gap_min_days": (
        "7",
        "A day above anticheat.no_baseline_max_steps is flagged when fewer of the anticheat.gap_days days before it were credited.",
    ),
    "anticheat.gap_weekday_multiplier": (
        "1.3",
        "The high-after-gap rule lets a day pass that is within this multiple of the median of the same weekday's credited days in the baseline window (two or more of them).",
    ),
}
MULTIPLIER = "anticheat.jump_high_multiplier"
OLD_MULTIPLIER, NEW_MULTIPLIER = "1.3", "1.4"


def upgrade() -> None:
    for key, (value, description) in SEEDS.items():
        op.execute(
            sa.text(
                "INSERT INTO settings (key, value, description) "
                "VALUES (:k, CAST(:v AS jsonb), :d) ON CONFLICT (key) DO NOTHING"
            ).bindparams(k=key, v=value, d=description)
        )
    op.execute(
        sa.text(
            "UPDATE settings SET value = CAST(:new AS jsonb) "
            "WHERE key = :k AND value = CAST(:old AS jsonb)"
        ).bindparams(k=MULTIPLIER, new=NEW_MULTIPLIER, old=OLD_MULTIPLIER)
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE settings SET value = CAST(:old AS jsonb) "
            "WHERE key = :k AND value = CAST(:new AS jsonb)"
        ).bindparams(k=MULTIPLIER, new=NEW_MULTIPLIER, old=OLD_MULTIPLIER)
    )
    op.execute(sa.text("DELETE FROM settings WHERE key = ANY(:keys)").bindparams(keys=list(SEEDS)))
