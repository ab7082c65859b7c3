"""The anti-cheat rules on a simulated population (tests/steps/simulation.py; docs/fair-play.md).

Seeded, no database: about 1,100 walkers over 90 days each through `rules.evaluate`, a few
seconds. Prints the figures (pytest -s shows them).

Issue 16 item 6 asks for >= 98 % of cheat days caught with <= 0.5 % of honest days flagged.
Reached on this simulation: 98.2 % caught, 0.48 % flagged. Part of it rests on an assumption
written down in docs/fair-play.md: a cheap cheat tool raises the day's count and leaves the
phone's intervals as they were (`intervals_short` sees the gap on the days that send
intervals). A careful cheat, whose intervals add up to the claim in the walker's own shape, is
measured apart: the daily-count rules alone catch 89.6 % of those jumps and ramps. The
floors below are what the rules reach here, so that a change that loses catches fails.
"""

from __future__ import annotations

from stepcoin.runtime_settings.registry import defaults
from stepcoin.steps import rules
from tests.steps import simulation as sim

CAUGHT_AT_LEAST = 0.98  # the target
FLAGGED_AT_MOST = 0.005  # the target
CAREFUL_CAUGHT_AT_LEAST = 0.89  # a careful cheat's jumps and ramps (not part of the target)


def test_the_rules_on_the_simulated_population():
    figures = sim.figures(sim.simulate(defaults()))
    print("\n" + figures.report())
    assert figures.honest_days > 30_000 and figures.cheat_days > 9_000
    assert figures.flagged_rate <= FLAGGED_AT_MOST
    assert figures.caught_rate >= CAUGHT_AT_LEAST
    # every kind of cheat is mostly caught, the blunt ones all
    for kind in ("shaker", "manual", "night"):
        _, _, cheat, caught = figures.by_kind[kind]
        assert caught == cheat, kind
    for kind in sim.CHEATS:
        _, _, cheat, caught = figures.by_kind[kind]
        assert caught / cheat >= 0.85, kind


def test_a_careful_cheat_measured_apart():
    """Jumps and ramps whose intervals add up to the claim in the walker's own shape: no
    interval rule sees them, the daily-count rules catch what they catch."""
    figures = sim.figures(sim.simulate(defaults(), honest_per_100=0, cheats=sim.CAREFUL))
    print("\ncareful:\n" + figures.report())
    assert figures.cheat_days > 2_500
    assert figures.caught_rate >= CAREFUL_CAUGHT_AT_LEAST
    assert "intervals_short" not in figures.by_rule


def test_the_daily_count_rules_alone(monkeypatch):
    """Without the interval rule (walkers whose phones send no intervals are judged this way):
    the sharper daily-count rules still catch well over the 93.6 % of the rules before them."""
    monkeypatch.setattr(
        rules, "RULES", tuple(r for r in rules.RULES if r is not rules.intervals_short)
    )
    figures = sim.figures(sim.simulate(defaults()))
    print("\nwithout intervals_short:\n" + figures.report())
    assert figures.flagged_rate <= FLAGGED_AT_MOST
    assert figures.caught_rate >= 0.95


def test_the_new_rules_are_what_catches_them(monkeypatch):
    """The same population under the rules as they were before (the first nine, the baseline
    multiplier at 3): far fewer cheat days caught and more honest days flagged. This is what
    shows that the simulation can fail: it is not built so that anything passes."""
    settings = {**defaults(), "anticheat.baseline_multiplier": 3.0}
    monkeypatch.setattr(rules, "RULES", rules.RULES[:9])
    before = sim.figures(sim.simulate(settings, honest_per_100=100, cheats_per_kind=10))
    print("\nbefore:\n" + before.report())
    assert before.caught_rate < 0.5
    assert before.flagged_rate > FLAGGED_AT_MOST


def test_the_simulation_is_deterministic():
    first = sim.simulate(defaults(), honest_per_100=25, cheats_per_kind=3)
    again = sim.simulate(defaults(), honest_per_100=25, cheats_per_kind=3)
    assert first == again
    assert sum(o.cheat_days for o in first) > 0 and sum(o.honest_days for o in first) > 0
