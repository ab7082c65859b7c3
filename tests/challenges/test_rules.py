"""The pure rules: parameters, standings per template, teams, and the split of a pool."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepcoin.challenges import rules
from stepcoin.errors import InvalidInput

U = [uuid.UUID(int=i) for i in range(1, 20)]


def score(i: int, total: int, good: int = 0, reached: date | None = None, team: int | None = None):
    return rules.Score(U[i], i, total, good, reached, team)


def test_params_are_checked_all_at_once():
    assert rules.validate_params("goal_days", {"target_steps": 5000, "goal_days": 3}) == {
        "target_steps": 5000,
        "goal_days": 3,
    }
    with pytest.raises(InvalidInput) as caught:
        rules.validate_params("goal_days", {"target_steps": 5, "goal_days": True, "x": 1})
    assert caught.value.code == "invalid_params"
    assert set(caught.value.extra["params"]) == {"target_steps", "goal_days", "x"}
    with pytest.raises(InvalidInput) as unknown:
        rules.validate_params("marathon", {})
    assert unknown.value.code == "unknown_template"


def test_total_steps_ties_share_the_first_rank_and_nobody_wins_with_zero():
    table = rules.standings("total_steps", {}, [score(0, 10), score(1, 30), score(2, 30)])
    assert [(s.user_id, s.rank, s.winner) for s in table.scores] == [
        (U[1], 1, True),
        (U[2], 1, True),
        (U[0], 3, False),
    ]
    assert rules.standings("total_steps", {}, [score(0, 0)]).winners == []


def test_race_the_earliest_day_wins():
    d1, d2 = date(2026, 1, 1), date(2026, 1, 2)
    table = rules.standings(
        "race",
        {"target_total": 100},
        [score(0, 500, reached=d2), score(1, 100, reached=d1), score(2, 90)],
    )
    assert [s.user_id for s in table.winners] == [U[1]]
    assert table.scores[-1].user_id == U[2]


def test_group_goal_and_team_average():
    group = rules.standings(
        "group_goal", {"target_total": 100}, [score(0, 60), score(1, 40), score(2, 0)]
    )
    assert group.goal_reached and [s.user_id for s in group.winners] == [U[0], U[1]]
    teams = rules.assign_teams(U[:5], 2)
    assert list(teams.values()) == [1, 2, 1, 2, 1]
    table = rules.standings(
        "team_average",
        {"teams": 2},
        [score(0, 30, team=1), score(1, 10, team=1), score(2, 25, team=2)],
    )
    assert {s.user_id for s in table.winners} == {U[2]}  # 25 a member beats 20
    assert rules.smallest_team([1, 2, 1], 3) == 3


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=19))
def test_a_split_makes_and_loses_no_coin(pool, n):
    shares = rules.split(pool, U[:n])
    assert sum(shares.values()) == pool
    assert max(shares.values()) - min(shares.values()) <= 1
    assert list(shares.values()) == sorted(shares.values(), reverse=True)  # remainder first
