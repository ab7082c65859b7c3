"""The trust score (issue 16, item 2): 0-100 from a walker's own history, and their standing.

The score gates what is risky: a walker below `fairplay.redemption_hold_below` has their
orders held for a reviewer before they go to the shop (stepcoin.shop), and a referral with a
side below `referrals.review_below_trust` goes to the referral review (stepcoin.referrals).
Staff see the score with its inputs (the console's user page); the walker sees their standing
in plain words (`GET /v1/me/standing`), never the score or the formula.

The formula (docs/fair-play.md), every input counted by one query:

    50                                  where everybody starts
    + approved days / 2                 up to +30 (60 days with approved steps)
    + account age in days * 20 / 90     up to +20 (90 days)
    - 4 per flagged day, last 90 days   up to -30 (days the rules sent to review; a budget
                                        hold or an appeal is not the walker's doing)
    - 10 per rejected day, last 90 days up to -40 (by a rule or a reviewer)
    - 10 per linked account             up to -40 (the others on the walker's largest link that
                                        a link rule acts on: a device over its limit, a sign-up
                                        burst, the same steps; cleared links do not count)

clamped to 0-100. A new walker is 50; a month of walking and nothing odd is about 90.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.errors import NotFound
from stepcoin.fairplay import links
from stepcoin.runtime_settings.service import runtime_settings

NOT_THE_WALKERS_DOING = ("issuance_budget", "appeal")
FULL_CREDIT_DAYS = 60
"""Approved days beyond these add nothing to the score."""


@dataclass(frozen=True, slots=True)
class Inputs:
    approved_days: int
    account_age_days: int
    flagged_days: int
    rejected_days: int
    linked_accounts: int

    def as_json(self) -> dict[str, int]:
        return {
            "approved_days": self.approved_days,
            "account_age_days": self.account_age_days,
            "flagged_days": self.flagged_days,
            "rejected_days": self.rejected_days,
            "linked_accounts": self.linked_accounts,
        }


def score(inputs: Inputs) -> int:
    """The formula of the module's docstring: pure, so it is tested on its own."""
    value = (
        50
        + min(inputs.approved_days, FULL_CREDIT_DAYS) / 2
        + min(inputs.account_age_days, 90) * 20 / 90
        - min(4 * inputs.flagged_days, 30)
        - min(10 * inputs.rejected_days, 40)
        - min(10 * inputs.linked_accounts, 40)
    )
    return max(0, min(100, round(value)))


# Each 90-day count reads ix_step_validations_user_unclean (migration 0046): the walker's
# decisions that are not a clean approval, by time. Its predicate is stated as the index states
# it, so the planner needs no proof to use it.
_UNCLEAN = "(v.status <> 'approved' OR v.reviewed_at IS NOT NULL)"

INPUTS_SQL = text(
    f"""
    SELECT
      u.id,
      u.created_at,
      (SELECT count(*) FROM (SELECT FROM step_days d
        WHERE d.user_id = u.id AND d.credited_steps > 0 LIMIT :approved_cap) d
      ) AS approved_days,
      (SELECT count(DISTINCT v.recorded_date) FROM step_validations v
        WHERE v.user_id = u.id AND v.created_at > now() - interval '90 days' AND {_UNCLEAN}
          AND v.status = 'flagged' AND v.reviewed_at IS NULL AND v.superseded_by IS NULL
          AND NOT v.rule_hits @> ANY(ARRAY[:budget_hit, :appeal_hit]::jsonb[])
      ) + (SELECT count(DISTINCT v.recorded_date) FROM step_validations v
        WHERE v.user_id = u.id AND v.created_at > now() - interval '90 days' AND {_UNCLEAN}
          AND v.reviewed_at IS NOT NULL AND v.status = 'approved'
          AND NOT v.rule_hits @> ANY(ARRAY[:budget_hit, :appeal_hit]::jsonb[])
      ) AS flagged_days,
      (SELECT count(DISTINCT v.recorded_date) FROM step_validations v
        WHERE v.user_id = u.id AND v.created_at > now() - interval '90 days' AND {_UNCLEAN}
          AND v.status = 'rejected') AS rejected_days
    FROM users u WHERE u.id = ANY(CAST(:ids AS uuid[]))
    """
)


async def inputs_of(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    counts: dict[str, int] | None = None,
    cleared: dict[str, dict[str, Any]] | None = None,
) -> Inputs:
    """The score's inputs; `counts` (links.observed) and `cleared` (links.clearances) when the
    caller has read them already."""
    found = await inputs_of_many(
        session,
        [user_id],
        counts=None if counts is None else {user_id: counts},
        cleared=None if cleared is None else {user_id: cleared},
    )
    if user_id not in found:
        raise NotFound("No such walker.", code="user_not_found")
    return found[user_id]


async def inputs_of_many(
    session: AsyncSession,
    user_ids: Sequence[uuid.UUID],
    *,
    counts: dict[uuid.UUID, dict[str, int]] | None = None,
    cleared: dict[uuid.UUID, dict[str, dict[str, Any]]] | None = None,
    approved_cap: int | None = None,
) -> dict[uuid.UUID, Inputs]:
    """The inputs of many walkers, three statements whatever their number (a walker who does
    not exist is absent). approved_cap: count approved days up to this many only (the score
    is the same from FULL_CREDIT_DAYS on; the count no longer grows with a walker's history);
    None: all of them, as staff are shown."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return {}
    rows = (
        await session.execute(
            INPUTS_SQL,
            {
                "ids": ids,
                "approved_cap": approved_cap,
                "budget_hit": orjson.dumps([{"code": "issuance_budget"}]).decode(),
                "appeal_hit": orjson.dumps([{"code": "appeal"}]).decode(),
            },
        )
    ).all()
    if counts is None:
        counts = await links.observed_many(session, ids)
    if cleared is None:
        cleared = await links.clearances_many(session, ids)
    values = await runtime_settings.all(session)
    now = datetime.now(UTC)
    found: dict[uuid.UUID, Inputs] = {}
    for row in rows:
        seen = links.over_limits(counts[row.id], values)
        mine = cleared.get(row.id, {})
        linked = 0
        for code, count in seen.items():
            if count > mine.get(code, {}).get("observed", 0):
                linked = max(linked, count - 1)  # the others on the link, not the walker
        found[row.id] = Inputs(
            approved_days=int(row.approved_days),
            account_age_days=max(0, (now - row.created_at).days),
            flagged_days=int(row.flagged_days),
            rejected_days=int(row.rejected_days),
            linked_accounts=linked,
        )
    return found


async def compute(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    store: bool = True,
    counts: dict[str, int] | None = None,
    cleared: dict[str, dict[str, Any]] | None = None,
) -> tuple[int, Inputs]:
    """The walker's score now, stored with its inputs (trust_scores) unless store=False (a
    read-only page); `counts` and `cleared` as inputs_of takes them."""
    inputs = await inputs_of(session, user_id, counts=counts, cleared=cleared)
    value = score(inputs)
    if store:
        await _store(session, {user_id: (value, inputs)})
    return value, inputs


async def compute_many(
    session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, Inputs]]:
    """compute() for many walkers, stored: four statements whatever their number (the order
    sweep checks a chunk of orders at once). Approved days are counted up to FULL_CREDIT_DAYS
    (the stored inputs say 60 for a walker with more): what the score needs, in time that does
    not grow with each walker's history."""
    found = await inputs_of_many(session, user_ids, approved_cap=FULL_CREDIT_DAYS)
    scored = {user_id: (score(inputs), inputs) for user_id, inputs in found.items()}
    await _store(session, scored)
    return scored


async def _store(session: AsyncSession, scored: dict[uuid.UUID, tuple[int, Inputs]]) -> None:
    if not scored:
        return
    ids = sorted(scored)  # one order of row locks for every writer
    await session.execute(
        text(
            """
            INSERT INTO trust_scores (user_id, score, inputs, computed_at)
            SELECT u, s, i, now()
            FROM unnest(CAST(:u AS uuid[]), CAST(:score AS int[]), CAST(:inputs AS jsonb[]))
                 AS t(u, s, i)
            ON CONFLICT (user_id) DO UPDATE SET score = EXCLUDED.score,
                inputs = EXCLUDED.inputs, computed_at = now()
            """
        ),
        {
            "u": ids,
            "score": [scored[u][0] for u in ids],
            "inputs": [orjson.dumps(scored[u][1].as_json()).decode() for u in ids],
        },
    )


async def score_of(session: AsyncSession, user_id: uuid.UUID) -> int:
    """The walker's trust score now (0-100)."""
    value, _ = await compute(session, user_id)
    return value


@dataclass(frozen=True, slots=True)
class Standing:
    standing: str
    title: str
    message: str
    checks: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "standing": self.standing,
            "title": self.title,
            "message": self.message,
            "checks": list(self.checks),
        }


def standing_for(value: int, inputs: Inputs, *, redemption_hold_below: int) -> Standing:
    """What the walker is told: plain words from the score's band and what it changes for
    them, never the number or the formula."""
    checks: list[str] = []
    if value < redemption_hold_below:
        checks.append("Orders are checked by our team before they are sent.")
    if inputs.linked_accounts:
        checks.append(
            "Your account shares a phone or a sign-up with other accounts: new days and "
            "referral rewards are checked by our team."
        )
    if inputs.rejected_days:
        checks.append(
            "Some recent days were not counted. You can appeal a rejected day within 30 days."
        )
    if value >= 70:
        return Standing(
            "good",
            "In good standing",
            "Your steps are counted and paid as they come.",
            tuple(checks),
        )
    if value >= 40:
        return Standing(
            "building",
            "Building your standing",
            "Your account is new or some days needed a check. Every approved day of walking "
            "builds your standing.",
            tuple(checks),
        )
    return Standing(
        "limited",
        "Under review",
        "Some of your activity is being checked by our team. Rewards and orders may wait for "
        "a review; keep walking as usual.",
        tuple(checks),
    )
