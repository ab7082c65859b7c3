"""The challenge templates, their parameters, the standings and the prize split: plain
functions without a database (docs/challenges.md)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from fractions import Fraction
from typing import Any

from stepcoin.errors import InvalidInput

MAX_TARGET = 100_000_000  # steps: a race or a group goal; far beyond a year of walking


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    description: str
    minimum: int
    maximum: int


@dataclass(frozen=True, slots=True)
class Template:
    code: str
    name: str
    description: str
    params: tuple[Param, ...]
    late_join: bool  # joining stays open after the start


TEMPLATES: dict[str, Template] = {
    t.code: t
    for t in (
        Template(
            "total_steps",
            "Most steps",
            "The most steps over the challenge's days wins (ties share).",
            (),
            late_join=False,
        ),
        Template(
            "goal_days",
            "Goal days",
            "Everyone with at least `goal_days` days of `target_steps` or more wins and shares.",
            (
                Param("target_steps", "Steps a day must reach to count.", 1_000, 100_000),
                Param("goal_days", "Days at or above the target needed to win.", 1, 366),
            ),
            late_join=True,
        ),
        Template(
            "race",
            "Race",
            "The first to reach `target_total` steps wins (the earliest day; ties on that day "
            "share).",
            (Param("target_total", "Steps to reach.", 1_000, MAX_TARGET),),
            late_join=False,
        ),
        Template(
            "group_goal",
            "Group goal",
            "All participants together reach `target_total` steps: everyone who walked shares.",
            (Param("target_total", "Steps of all participants together.", 1_000, MAX_TARGET),),
            late_join=True,
        ),
        Template(
            "team_average",
            "Team average",
            "Participants are split into `teams` at the start; the team with the highest "
            "average steps per member wins and its members share.",
            (Param("teams", "Number of teams.", 2, 10),),
            late_join=False,
        ),
    )
}


def validate_params(template_code: str, raw: Mapping[str, Any] | None) -> dict[str, int]:
    """The template's parameters, every one present, whole and in range; one 422 naming all
    that are wrong (`invalid_params`), an unknown template `unknown_template`."""
    template = TEMPLATES.get(template_code)
    if template is None:
        raise InvalidInput(
            f"Unknown template {template_code!r}; see GET /v1/challenges/templates.",
            code="unknown_template",
        )
    given = dict(raw or {})
    problems: dict[str, str] = {}
    params: dict[str, int] = {}
    for p in template.params:
        value = given.pop(p.name, None)
        if value is None:
            problems[p.name] = "required"
        elif isinstance(value, bool) or not isinstance(value, int):
            problems[p.name] = "must be a whole number"
        elif not p.minimum <= value <= p.maximum:
            problems[p.name] = f"must be between {p.minimum} and {p.maximum}"
        else:
            params[p.name] = value
    for extra in given:
        problems[str(extra)[:40]] = f"not a parameter of {template_code}"
    if problems:
        raise InvalidInput(
            "Some parameters of the template are wrong.",
            code="invalid_params",
            extra={"params": problems},
        )
    return params


def assign_teams(user_ids_in_join_order: Sequence[uuid.UUID], teams: int) -> dict[uuid.UUID, int]:
    """Round robin in join order: team sizes differ by one at most."""
    return {user: index % teams + 1 for index, user in enumerate(user_ids_in_join_order)}


def smallest_team(current: Sequence[int | None], teams: int) -> int:
    """The team a late member joins: the smallest, the lowest number among equals."""
    sizes = {t: 0 for t in range(1, teams + 1)}
    for team in current:
        if team is not None:
            sizes[team] = sizes.get(team, 0) + 1
    return min(sizes, key=lambda t: (sizes[t], t))


@dataclass(frozen=True, slots=True)
class Score:
    """One participant's score as the database sums it."""

    user_id: uuid.UUID
    joined_at: Any
    total_steps: int
    good_days: int  # days at or above target_steps (goal_days)
    reached_on: date | None  # the day the running total reached target_total (race)
    team: int | None = None
    rank: int = 0
    winner: bool = False


@dataclass(frozen=True, slots=True)
class Standings:
    scores: list[Score]  # in rank order
    goal_reached: bool | None = None  # group_goal only
    team_averages: dict[int, Fraction] | None = None  # team_average only

    @property
    def winners(self) -> list[Score]:
        return [s for s in self.scores if s.winner]


def _ranked(scores: list[Score], key: Any) -> list[Score]:
    """Sorted by key (smaller first); equal keys share a rank (1, 1, 3)."""
    ordered = sorted(scores, key=lambda s: (key(s), s.joined_at, str(s.user_id)))
    out: list[Score] = []
    previous: Any = object()
    rank = 0
    for index, score in enumerate(ordered, start=1):
        k = key(score)
        if k != previous:
            rank, previous = index, k
        out.append(replace(score, rank=rank))
    return out


def standings(template: str, params: Mapping[str, int], scores: Sequence[Score]) -> Standings:
    """Ranks and winners by the template's rule (docs/challenges.md, "Who wins")."""
    items = list(scores)
    if template == "total_steps":
        ranked = _ranked(items, lambda s: -s.total_steps)
        return Standings([replace(s, winner=s.rank == 1 and s.total_steps > 0) for s in ranked])
    if template == "goal_days":
        ranked = _ranked(items, lambda s: (-s.good_days, -s.total_steps))
        need = params["goal_days"]
        return Standings([replace(s, winner=s.good_days >= need) for s in ranked])
    if template == "race":
        ranked = _ranked(items, lambda s: (s.reached_on is None, s.reached_on or date.max))
        first = min((s.reached_on for s in items if s.reached_on is not None), default=None)
        return Standings(
            [replace(s, winner=first is not None and s.reached_on == first) for s in ranked]
        )
    if template == "group_goal":
        reached = sum(s.total_steps for s in items) >= params["target_total"]
        ranked = _ranked(items, lambda s: -s.total_steps)
        return Standings(
            [replace(s, winner=reached and s.total_steps > 0) for s in ranked],
            goal_reached=reached,
        )
    if template == "team_average":
        members: dict[int, list[Score]] = {}
        for s in items:
            if s.team is not None:
                members.setdefault(s.team, []).append(s)
        averages = {
            team: Fraction(sum(m.total_steps for m in group), len(group))
            for team, group in members.items()
        }
        best = max(averages.values(), default=Fraction(0))
        ranked = _ranked(
            items,
            lambda s: (
                -(averages.get(s.team, Fraction(-1)) if s.team else Fraction(-1)),
                -s.total_steps,
            ),
        )
        return Standings(
            [
                replace(s, winner=best > 0 and s.team is not None and averages[s.team] == best)
                for s in ranked
            ],
            team_averages=averages,
        )
    raise ValueError(f"unknown template {template!r}")


def split(pool: int, winners: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The pool in whole coins: an equal share each, and the remainder one coin each to the
    first winners in rank order (then join order). sum(values) == pool, exactly."""
    if pool < 0:
        raise ValueError("a pool is never negative")
    if not winners:
        return {}
    share, remainder = divmod(pool, len(winners))
    return {user: share + (1 if index < remainder else 0) for index, user in enumerate(winners)}
