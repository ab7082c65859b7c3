"""The trust score's formula and the standing the walker is told (stepcoin.fairplay.trust)."""

from __future__ import annotations

from stepcoin.fairplay.trust import Inputs, score, standing_for


def inputs(**values: int) -> Inputs:
    base = {
        "approved_days": 0,
        "account_age_days": 0,
        "flagged_days": 0,
        "rejected_days": 0,
        "linked_accounts": 0,
    }
    return Inputs(**{**base, **values})


def test_a_new_walker_starts_in_the_middle():
    assert score(inputs()) == 50


def test_history_builds_trust_up_to_the_caps():
    assert score(inputs(approved_days=30, account_age_days=45)) == 75
    assert score(inputs(approved_days=600, account_age_days=900)) == 100


def test_flags_rejections_and_links_take_it_down_each_to_its_cap():
    assert score(inputs(flagged_days=2)) == 42
    assert score(inputs(flagged_days=100)) == 20
    assert score(inputs(rejected_days=2)) == 30
    assert score(inputs(rejected_days=9)) == 10
    assert score(inputs(linked_accounts=9)) == 10
    assert score(inputs(linked_accounts=9, rejected_days=9, flagged_days=9)) == 0


def test_the_walker_is_told_words_never_the_number():
    good = standing_for(90, inputs(approved_days=60), redemption_hold_below=30)
    assert good.standing == "good" and good.checks == ()
    new = standing_for(50, inputs(), redemption_hold_below=30)
    assert new.standing == "building"
    farm = standing_for(10, inputs(linked_accounts=9), redemption_hold_below=30)
    assert farm.standing == "limited"
    assert any("Orders are checked" in c for c in farm.checks)
    assert any("shares a phone" in c for c in farm.checks)
    for told in (good, new, farm):
        words = str(told.as_json())
        assert "score" not in words and "10" not in words and "90" not in words
