"""A seeded simulation of walkers, honest and cheating, judged day by day by the anti-cheat rules.

Deterministic (one random.Random per walker, seeded from the walker's number): the same code and
settings give the same figures. No database: each walker's days go through
`stepcoin.steps.rules.evaluate` in order, each with the RuleContext the sync would build
(history = the earlier days' credited steps over the baseline window).

What a day becomes, as in production with a reviewer behind the flags:
- approved: credited (enters the history);
- flagged or rejected: a reviewer looks; an honest day is approved on review (credited), a cheat
  day is refused (not credited). So a cheat that slips through raises its own baseline (the
  slow ramp lives on that), and a caught one does not.

Honest walkers (varied habits): office workers (weekday/weekend), weekend hikers, shift workers
(long nurse shifts, every other week at night), runners (weekly long runs, one marathon day),
holiday makers (a week or so of city sightseeing), ill walkers (a week of almost nothing), low
walkers with an occasional big day, beginners training up slowly, and new accounts (no history).
Every walker forgets the phone some days (no record), one in ten spends a week or two without
it, and half of them send hourly intervals holding 90-100 % of the day's count.

Cheats (each walks honestly first, or from account creation for the new-account kinds):
- shaker: a phone shaker, steady high counts (25-35k a day, +-2 %), from account creation;
- shaker_later: the same after an honest month;
- jumper: sudden jumps against the own baseline (x2.5-x3.5 the own median on half the days,
  whatever the cap);
- ramper: a slow ramp from the honest level to the cap (20k) over 2-4 weeks, then staying there;
- manual: steps typed in by hand on top of the walked ones;
- night: a shaker burst at night (2-3 hours of 4-6k steps an hour) on top of an honest day.
Their tool sets the day's count and leaves the phone's intervals as they were (docs/fair-play.md,
"What the interval rule assumes"). CAREFUL: the jumps and ramps again by a careful cheat, whose
intervals add up to the claim in the walker's own shape, measured apart.

A cheat day is a day whose claim is at least 1.5x what was walked and at least 3,000 steps more
(a few percent more than walked is indistinguishable from a phone's own noise), or any manual
entry of a cheat; the other days of a cheat are honest days of that walker, not counted either
way. Honest days are every day of an honest walker.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from stepcoin.steps.rules import Interval, RuleContext, StepInput, evaluate

START = date(2026, 3, 2)  # a Monday
DAYS = 90
WARMUP = 28  # honest days an older account has credited before the simulation starts
CAP = 20_000  # the step cap of today's earn rule (200 coins at 10 per 1,000 steps)


@dataclass(slots=True)
class Day:
    day: date
    walked: int  # what the walker really walked
    claimed: int  # what the phone reports
    manual: bool = False
    night_burst: int = 0  # steps added in the night hours
    intraday: bool = False
    night_shift: bool = False  # walked at work at night
    careful: bool = False  # a careful cheat: the intervals are made to add up to the claim


@dataclass(slots=True)
class Outcome:
    kind: str
    honest_days: int = 0
    honest_flagged: int = 0
    cheat_days: int = 0
    cheat_caught: int = 0
    hidden: int = 0  # inflated days inside the walker's usual range: not cheat days
    hidden_caught: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


def _clip(steps: float) -> int:
    return max(0, int(steps))


# -- honest habits: (rng, day index, date, walker traits) -> steps walked that day -------------


def _office(rng: random.Random, i: int, d: date, t: dict[str, Any]) -> int:
    if d.weekday() < 5:
        return _clip(rng.gauss(7000, 1500) * t["scale"])
    return _clip(rng.gauss(5500, 2200) * t["scale"])


def _hiker(rng: random.Random, i: int, d: date, t: dict[str, Any]) -> int:
    if d.weekday() == t["hike_day"] and rng.random() < 0.7:
        return _clip(rng.gauss(22_000, 4000))
    return _clip(rng.gauss(6500, 1500) * t["scale"])


def _shift(rng: random.Random, i: int, d: date, t: dict[str, Any]) -> int:
    # 4 on, 3 off, rotating; a shift is long and on the feet
    if (i + t["offset"]) % 7 < 4:
        return _clip(rng.gauss(13_000, 2500))
    return _clip(rng.gauss(4500, 1500))


def _runner(rng: random.Random, i: int, d: date, t: dict[str, Any]) -> int:
    if i == t["marathon"]:
        return _clip(rng.gauss(52_000, 3000))
    if d.weekday() == 6:
        return _clip(rng.gauss(24_000, 3000))
    return _clip(rng.gauss(11_000, 2500))


def _holiday(rng: random.Random, i: int, d: date, t: dict[str, Any]) -> int:
    if t["from"] <= i < t["from"] + t["length"]:
        return _clip(rng.gauss(18_000, 4000))
    return _office(rng, i, d, t)


def _ill(rng: random.Random, i: int, d: date, t: dict[str, Any]) -> int:
    if t["from"] <= i < t["from"] + t["length"]:
        return _clip(rng.gauss(600, 300))
    return _office(rng, i, d, t)


def _low(rng: random.Random, i: int, d: date, t: dict[str, Any]) -> int:
    if rng.random() < 0.04:
        return _clip(rng.gauss(9000, 2000))
    return _clip(rng.gauss(3000, 900))


def _beginner(rng: random.Random, i: int, d: date, t: dict[str, Any]) -> int:
    level = 4000 + 6000 * min(1.0, max(0, i) / 60)
    return _clip(rng.gauss(level, level * 0.2))


HABITS: dict[str, Callable[[random.Random, int, date, dict[str, Any]], int]] = {
    "office": _office,
    "hiker": _hiker,
    "shift": _shift,
    "runner": _runner,
    "holiday": _holiday,
    "ill": _ill,
    "low": _low,
    "beginner": _beginner,
    "new_account": _office,
}
# how many walkers of each habit per 100 walkers (honest population)
HONEST_MIX: dict[str, int] = {
    "office": 30,
    "hiker": 12,
    "shift": 10,
    "runner": 8,
    "holiday": 10,
    "ill": 8,
    "low": 8,
    "beginner": 6,
    "new_account": 8,
}
CHEATS = ("shaker", "shaker_later", "jumper", "ramper", "manual", "night")
# the same jumps and ramps by a careful cheat, whose phone sends intervals every day that add up
# to the claim in the shape of the walker's own days: measured apart (`simulate(cheats=CAREFUL)`)
CAREFUL = ("jumper_careful", "ramper_careful")
# the honest habits cheats start from; walkers whose own highs already reach the cap (hikers,
# runners) are the rules' blind spot for jumps under those highs: measured apart (BLIND_HABITS)
CHEAT_HABITS = ("office", "shift", "low", "beginner", "ill", "holiday")
BLIND_HABITS = ("hiker", "runner")


def _traits(rng: random.Random) -> dict[str, Any]:
    return {
        "scale": rng.uniform(0.6, 1.5),
        "hike_day": rng.choice((5, 6)),
        "offset": rng.randrange(7),
        "marathon": rng.randrange(40, DAYS),
        "from": rng.randrange(30, DAYS - 10),
        "length": rng.randrange(5, 11),
    }


def _walk(rng: random.Random, habit: str, traits: dict[str, Any]) -> list[Day]:
    """WARMUP days before START (the history an older account has), then DAYS days."""
    intraday = rng.random() < 0.5
    days = []
    for i in range(-WARMUP, DAYS):
        d = START + timedelta(days=i)
        walked = HABITS[habit](rng, i, d, traits)
        # shift workers work nights one week in two
        night = habit == "shift" and (i // 7) % 2 == 1 and (i + traits["offset"]) % 7 < 4
        days.append(Day(d, walked, walked, intraday=intraday, night_shift=night))
    return days


def _cheat(rng: random.Random, kind: str, days: list[Day]) -> None:
    """Turn an honest walk into the cheat's claims (in place); days[WARMUP] is START.

    How the claim reaches the server: a cheap tool sets the day's count and leaves the
    phone's intervals as they were (what was walked; the night kind adds its burst to them);
    a careful cheat (the `_careful` kinds) sends intervals every day, made to add up to the
    claim in the shape of the walker's own day."""
    if kind.endswith("_careful"):
        kind = kind.removesuffix("_careful")
        for day in days:
            day.careful = day.intraday = True
    start = WARMUP + rng.randrange(14, 45)
    if kind == "shaker":
        level = rng.uniform(25_000, 35_000)
        for day in days[WARMUP:]:
            day.claimed = max(day.walked, _clip(level * rng.uniform(0.98, 1.02)))
    elif kind == "shaker_later":
        level = rng.uniform(25_000, 35_000)
        for day in days[start:]:
            day.claimed = max(day.walked, _clip(level * rng.uniform(0.98, 1.02)))
    elif kind == "jumper":
        level = sorted(day.walked for day in days[start - 28 : start])[14]  # the own median
        for day in days[start:]:
            if rng.random() < 0.5:
                day.claimed = max(day.walked, _clip(level * rng.uniform(2.5, 3.5)))
    elif kind == "ramper":
        length = rng.randrange(14, 29)
        first = days[start].walked or 5000
        for n, day in enumerate(days[start:]):
            target = first + (CAP - first) * min(1.0, (n + 1) / length)
            day.claimed = max(day.walked, _clip(target * rng.uniform(0.97, 1.03)))
    elif kind == "manual":
        for day in days[start:]:
            if rng.random() < 0.4:
                day.claimed = day.walked + rng.randrange(5000, 15_000)
                day.manual = True
    elif kind == "night":
        for day in days[start:]:
            if rng.random() < 0.5:
                day.night_burst = rng.randrange(2, 4) * rng.randrange(4000, 6000)
                day.claimed = day.walked + day.night_burst
                day.intraday = True


def _coverage(day: Day) -> float:
    """The share of an honest day's count its intervals hold: 90-100 % (a watch's steps merged
    into the day's count without their samples, a sample lost between syncs). Drawn from its
    own seed, so the walkers' draws stay as they were."""
    return random.Random(day.day.toordinal() * 100_003 + day.walked).uniform(0.9, 1.0)


def _intervals(rng: random.Random, day: Day) -> tuple[Interval, ...]:
    """Hourly samples: the walked steps spread over waking hours, plus any night burst (a
    careful cheat spreads the claim instead, in the same shape)."""
    base = datetime(day.day.year, day.day.month, day.day.day, tzinfo=UTC)
    spread = (day.claimed - day.night_burst) if day.careful else day.walked * _coverage(day)
    if day.night_shift:  # walking spread over a night at work (22:00-07:00, the day's part)
        hours = list(range(0, 7))
        weights = [rng.uniform(0.5, 1.5) for _ in hours]
    else:
        hours = list(range(7, 22))
        weights = [rng.random() ** 2 for _ in hours]
    total = sum(weights) or 1.0
    out = []
    for hour, weight in zip(hours, weights, strict=True):
        steps = int(spread * weight / total)
        if steps:
            start = base + timedelta(hours=hour)
            out.append(Interval(start, start + timedelta(hours=1), steps))
    if day.night_burst:
        burst_hours = max(1, day.night_burst // 5000)
        for hour in range(2, 2 + burst_hours):
            start = base + timedelta(hours=hour)
            out.append(Interval(start, start + timedelta(hours=1), day.night_burst // burst_hours))
    return tuple(out)


def is_inflated(day: Day) -> bool:
    """The claim is well above what was walked that day (or typed in by hand)."""
    if day.claimed == day.walked:
        return False
    return day.manual or (day.claimed >= 1.5 * day.walked and day.claimed - day.walked >= 3000)


def is_cheat_day(day: Day, usual: float) -> bool:
    """Inflated, and above the walker's usual days (1.3x the median walked over the 4 weeks
    before): a claim inside the walker's own usual range on a lazy day looks like any of their
    days, and no rule over daily counts can tell it (counted apart, as `hidden`)."""
    return is_inflated(day) and (day.manual or day.claimed >= 1.3 * usual)


def _phone_away(days: list[Day]) -> frozenset[date]:
    """One walker in ten spends 7-14 days without the phone (broken, or left at home on a trip)
    somewhere in the simulated days. Drawn from its own seed, so the walkers' draws stay as
    they were."""
    rng = random.Random(days[0].day.toordinal() * 7 + days[-1].walked * 31 + days[WARMUP].walked)
    if rng.random() >= 0.1:
        return frozenset()
    first = rng.randrange(10, DAYS - 20)
    return frozenset(START + timedelta(days=first + i) for i in range(rng.randrange(7, 15)))


def judge(
    kind: str, days: list[Day], rng: random.Random, settings: Mapping[str, Any], *, new: bool
) -> Outcome:
    """Sync each day on the day itself; a reviewer approves flagged honest days only."""
    outcome = Outcome(kind)
    honest = kind in HABITS
    created = START if new else START - timedelta(days=400)
    history: dict[date, int] = {}
    away = _phone_away(days)
    for n, day in enumerate(days):
        if day.day < START:  # before the simulation: credited as walked (none for a new account)
            if not new and day.walked > 0:
                history[day.day] = day.walked
            continue
        if rng.random() < 0.05:
            continue  # the phone stayed at home: no record
        if day.day in away:
            continue  # a week or two without the phone: no records
        record = StepInput(
            day=day.day,
            steps=day.claimed,
            source="manual" if day.manual else "healthkit",
            manual=day.manual,
            device_id="phone",
            intervals=_intervals(rng, day) if day.intraday else (),
        )
        ctx = RuleContext(
            today=day.day, account_created=created, history=history, devices=frozenset({"phone"})
        )
        decision = evaluate(record, ctx, settings)
        caught = decision.status != "approved"
        usual = statistics.median(d.walked for d in days[max(0, n - 28) : n] or days[:1])
        cheat = is_cheat_day(day, usual)
        if not honest and not cheat and is_inflated(day):
            outcome.hidden += 1
            outcome.hidden_caught += caught
        if honest:
            outcome.honest_days += 1
            outcome.honest_flagged += caught
        elif cheat:
            outcome.cheat_days += 1
            outcome.cheat_caught += caught
        if caught and (honest or cheat):
            for code in decision.reasons:
                outcome.by_rule[code] = outcome.by_rule.get(code, 0) + 1
        # credited: approved days, and flagged days a reviewer approves (only honest ones)
        if (not caught or not cheat) and record.steps > 0:
            history[day.day] = record.steps
    return outcome


def simulate(
    settings: Mapping[str, Any],
    *,
    honest_per_100: int = 400,
    cheats_per_kind: int = 40,
    cheat_habits: tuple[str, ...] = CHEAT_HABITS,
    cheats: tuple[str, ...] = CHEATS,
) -> list[Outcome]:
    """honest_per_100: how many honest walkers per unit of HONEST_MIX (in hundreds)."""
    outcomes = []
    n = 0
    for habit, share in HONEST_MIX.items():
        for _ in range(share * honest_per_100 // 100):
            n += 1
            rng = random.Random(n)
            days = _walk(rng, habit, _traits(rng))
            outcomes.append(judge(habit, days, rng, settings, new=habit == "new_account"))
    for kind in cheats:
        for _ in range(cheats_per_kind):
            n += 1
            rng = random.Random(n)
            habit = rng.choice(cheat_habits)
            days = _walk(rng, habit, _traits(rng))
            _cheat(rng, kind, days)
            outcomes.append(judge(kind, days, rng, settings, new=kind == "shaker"))
    return outcomes


@dataclass(frozen=True, slots=True)
class Figures:
    honest_days: int
    honest_flagged: int
    cheat_days: int
    cheat_caught: int
    by_kind: dict[str, tuple[int, int, int, int]]  # kind -> (honest, flagged, cheat, caught)
    by_rule: dict[str, int]

    @property
    def caught_rate(self) -> float:
        return self.cheat_caught / max(self.cheat_days, 1)

    @property
    def flagged_rate(self) -> float:
        return self.honest_flagged / max(self.honest_days, 1)

    def report(self) -> str:
        lines = [
            f"cheat days caught: {self.cheat_caught}/{self.cheat_days} "
            f"({100 * self.caught_rate:.2f} %)",
            f"honest days flagged: {self.honest_flagged}/{self.honest_days} "
            f"({100 * self.flagged_rate:.3f} %)",
        ]
        for kind, (h, f, c, k) in self.by_kind.items():
            if h:
                lines.append(f"  honest {kind:<13} {f:>4}/{h:<6} flagged")
            else:
                lines.append(f"  cheat  {kind:<13} {k:>4}/{c:<6} caught")
        lines.append(
            "  hits by rule: " + ", ".join(f"{k}={v}" for k, v in sorted(self.by_rule.items()))
        )
        return "\n".join(lines)


def figures(outcomes: list[Outcome]) -> Figures:
    by_kind: dict[str, list[int]] = {}
    by_rule: dict[str, int] = {}
    for o in outcomes:
        row = by_kind.setdefault(o.kind, [0, 0, 0, 0])
        row[0] += o.honest_days
        row[1] += o.honest_flagged
        row[2] += o.cheat_days
        row[3] += o.cheat_caught
        for code, count in o.by_rule.items():
            by_rule[code] = by_rule.get(code, 0) + count
    return Figures(
        honest_days=sum(o.honest_days for o in outcomes),
        honest_flagged=sum(o.honest_flagged for o in outcomes),
        cheat_days=sum(o.cheat_days for o in outcomes),
        cheat_caught=sum(o.cheat_caught for o in outcomes),
        by_kind={k: (v[0], v[1], v[2], v[3]) for k, v in by_kind.items()},
        by_rule=by_rule,
    )
