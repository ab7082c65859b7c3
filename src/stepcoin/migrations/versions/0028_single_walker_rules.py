"""Sharper single-walker anti-cheat rules (issue 16, item 6): their thresholds as settings.

Seeds the thresholds of the rules sudden_jump, steady_climb, high_without_baseline,
too_regular and night_burst (src/stepcoin/steps/rules.py; docs/fair-play.md), and raises
`anticheat.baseline_multiplier` from 3.0 to 6.0 where it is still the old default (the
sudden-jump rule now judges a day against the walker's own highest days; the plain
multiple-of-the-median rule at x3 flagged one weekend hiker's day in twenty).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | Sequence[str] | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEEDS = {  # key: (value as JSON, description), as the registry had them at this revision
    "anticheat.jump_high_multiplier": (
        "1.3",
        "A day above this multiple of the user's highest day in the baseline window (and above anticheat.jump_median_multiplier times the median) is flagged.",
    ),
    "anticheat.jump_high_rank": (
        "1",
        "The sudden-jump rule's 'highest day': the user's n-th highest day in the baseline window (1: the highest; higher ranks are not raised by one slipped-through day).",
    ),
    "anticheat.jump_median_multiplier": (
        "2.0",
        "The sudden-jump rule only fires above this multiple of the user's trailing median.",
    ),
    "anticheat.jump_floor_steps": (
        "10000",
        "The sudden-jump rule only fires above this many steps.",
    ),
    "anticheat.climb_days": (
        "14",
        "The steady-climb rule counts the new highs among this many days before the day.",
    ),
    "anticheat.climb_min_highs": (
        "4",
        "The steady-climb rule needs at least this many new highs among its climb days.",
    ),
    "anticheat.climb_ratio": (
        "1.5",
        "A steady climb ending above this multiple of the median before the climb is flagged.",
    ),
    "anticheat.climb_floor_steps": (
        "10000",
        "The steady-climb rule only fires above this many steps.",
    ),
    "anticheat.no_baseline_max_steps": (
        "15000",
        "A day above this many steps is flagged while the user has fewer credited days in the baseline window than anticheat.baseline_min_history_days.",
    ),
    "anticheat.regular_days": (
        "14",
        "The too-regular rule looks at the credited days among this many days before the day.",
    ),
    "anticheat.regular_min_days": (
        "3",
        "The too-regular rule needs at least this many credited days in its window.",
    ),
    "anticheat.regular_floor_steps": (
        "12000",
        "Too-regular only judges a day when it and the window's days exceed this many steps.",
    ),
    "anticheat.regular_max_variation": (
        "0.05",
        "High days whose spread (standard deviation / mean) is below this are flagged.",
    ),
    "anticheat.night_start_hour": (
        "0",
        "The night-burst rule's night starts at this hour (the phone's own clock).",
    ),
    "anticheat.night_end_hour": (
        "5",
        "The night-burst rule's night ends at this hour (the phone's own clock).",
    ),
    "anticheat.night_max_steps_per_minute": (
        "60",
        "A night sample above this pace (averaged over at least an hour) is flagged.",
    ),
}
MULTIPLIER = "anticheat.baseline_multiplier"
OLD_MULTIPLIER, NEW_MULTIPLIER = "3.0", "6.0"


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
