"""Anti-cheat rules: plain functions over (record, the user's context, settings).

Each rule returns a RuleHit (code, observed value, threshold, action) or None. No database, no
clock: everything a rule needs is passed in, so every rule is tested in microseconds.
All thresholds are runtime settings (stepcoin.runtime_settings.registry, `anticheat.*`).
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

Action = Literal["reject", "flag"]
Status = Literal["approved", "flagged", "rejected"]

# Risk added by each rule (0-100 in total); a rejecting rule makes the risk 100.
RISK_WEIGHTS: dict[str, int] = {
    "manual_entry": 25,
    "above_baseline": 40,
    "cadence_too_high": 60,
    "sources_disagree": 30,
    "too_many_devices": 30,
    "new_account_extreme": 35,
    "sudden_jump": 40,
    "steady_climb": 40,
    "high_without_baseline": 35,
    "too_regular": 40,
    "night_burst": 40,
    "intervals_short": 40,
    "repeated_highs": 40,
    "held_level": 40,
    "rising_run": 40,
    "high_after_gap": 35,
    "shared_device": 40,
    "signup_burst": 40,
    "same_series": 50,
}


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime
    end: datetime
    steps: int


@dataclass(slots=True)
class StepInput:
    """One daily record as the phone sent it (already schema-valid). Built per record of a
    batch, so not frozen (a frozen dataclass sets each field through object.__setattr__);
    no rule changes it."""

    day: date
    steps: int
    source: str
    manual: bool = False
    device_id: str | None = None
    intervals: Sequence[Interval] = ()


@dataclass(frozen=True, slots=True)
class OtherSource:
    source: str
    steps: int


@dataclass(frozen=True, slots=True)
class LinkFacts:
    """What the sync knows of the walker's links to other accounts (stepcoin.fairplay), each
    count including the walker: the accounts on the busiest device they or this batch used
    within `fairplay.device_window_days`, the accounts of their sign-up burst, their same-series
    group; and, per link code, the count a reviewer cleared (the rule is quiet up to it)."""

    device_accounts: int = 0
    signup_burst: int = 0
    same_series: int = 0
    cleared: Mapping[str, int] = field(default_factory=dict)


NO_LINKS = LinkFacts()


@dataclass(slots=True)
class RuleContext:
    """What the rules know about the user when judging one record."""

    today: date  # in the user's time zone
    account_created: date  # in the user's time zone
    history: Mapping[date, int]  # credited (approved) steps per earlier day
    other_sources: Sequence[OtherSource] = ()  # the same day's live records from other sources
    devices: frozenset[str] = frozenset()  # every device seen for the day, this one included
    links: LinkFacts = NO_LINKS  # links to other accounts (the last three rules)
    # what the rules of one record derive from the history once (the windows, the baseline's
    # median): several rules read the same window of the same record
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    # the history's credited days in date order, as two lists (dates, steps): built once per
    # sync by the caller (history_index) and shared by its records; built here when not given
    index: tuple[list[date], list[int]] | None = field(default=None, repr=False, compare=False)


def history_index(history: Mapping[date, int]) -> tuple[list[date], list[int]]:
    """The credited days (steps > 0) of a history in date order, as (dates, steps)."""
    days = sorted((d, steps) for d, steps in history.items() if steps > 0)
    return [d for d, _ in days], [steps for _, steps in days]


@dataclass(frozen=True, slots=True)
class RuleHit:
    code: str
    action: Action
    observed: float | int | str
    threshold: float | int | str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "action": self.action,
            "observed": self.observed,
            "threshold": self.threshold,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    status: Status
    hits: tuple[RuleHit, ...] = field(default_factory=tuple)
    risk_score: int = 0

    @property
    def reasons(self) -> list[str]:
        return [hit.code for hit in self.hits]


Rule = Callable[[StepInput, RuleContext, Mapping[str, Any]], RuleHit | None]


def hard_daily_maximum(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    limit = s["anticheat.hard_daily_max_steps"]
    if record.steps > limit:
        return RuleHit(
            "over_daily_max",
            "reject",
            record.steps,
            limit,
            "More steps than a person can walk in one day.",
        )
    return None


def future_day(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    if record.day > ctx.today:
        return RuleHit(
            "future_day",
            "reject",
            record.day.isoformat(),
            ctx.today.isoformat(),
            "This day has not happened yet in your time zone.",
        )
    return None


def outside_sync_window(
    record: StepInput, ctx: RuleContext, s: Mapping[str, Any]
) -> RuleHit | None:
    window = s["anticheat.sync_window_days"]
    age = (ctx.today - record.day).days
    if age > window:
        return RuleHit(
            "outside_sync_window",
            "reject",
            age,
            window,
            f"Days older than {window} days can no longer be synced.",
        )
    return None


def manual_entry(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    action = s["anticheat.manual_entry_action"]
    if action == "allow" or not (record.manual or record.source == "manual"):
        return None
    return RuleHit(
        "manual_entry",
        "reject" if action == "reject" else "flag",
        1,
        0,
        "Steps typed in by hand need a review.",
    )


def above_baseline(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """Far above the user's own trailing median (of days with steps, before this day)."""
    if record.steps <= s["anticheat.baseline_floor_steps"]:
        return None  # the limit is at least the floor: no look at the history
    days = s["anticheat.baseline_days"]
    if len(_earlier(record, ctx, days)) < s["anticheat.baseline_min_history_days"]:
        return None
    limit = max(
        _median_before(record, ctx, days) * s["anticheat.baseline_multiplier"],
        s["anticheat.baseline_floor_steps"],
    )
    if record.steps > limit:
        return RuleHit(
            "above_baseline", "flag", record.steps, round(limit), "Far above your usual days."
        )
    return None


def cadence(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """Steps per minute in any intraday sample above what people can sustain."""
    limit = s["anticheat.max_steps_per_minute"]
    fastest = 0.0
    for interval in record.intervals:
        seconds = (interval.end - interval.start).total_seconds()
        if seconds > 0:
            fastest = max(fastest, interval.steps * 60.0 / max(seconds, 60.0))
    if fastest > limit:
        return RuleHit(
            "cadence_too_high",
            "flag",
            round(fastest, 1),
            limit,
            "Faster than human walking or running cadence.",
        )
    return None


def sources_disagree(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    ratio_limit = s["anticheat.source_disagreement_ratio"]
    min_steps = s["anticheat.source_disagreement_min_steps"]
    for other in ctx.other_sources:
        high, low = max(record.steps, other.steps), min(record.steps, other.steps)
        if high > min_steps and high > ratio_limit * max(low, 1):
            return RuleHit(
                "sources_disagree",
                "flag",
                round(high / max(low, 1), 2),
                ratio_limit,
                f"{other.source} reports {other.steps} steps for the same day.",
            )
    return None


def too_many_devices(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    limit = s["anticheat.max_devices_per_day"]
    if len(ctx.devices) > limit:
        return RuleHit(
            "too_many_devices",
            "flag",
            len(ctx.devices),
            limit,
            "Too many devices reported this day.",
        )
    return None


def new_account_extreme(
    record: StepInput, ctx: RuleContext, s: Mapping[str, Any]
) -> RuleHit | None:
    age_days = (ctx.today - ctx.account_created).days
    limit = s["anticheat.new_account_max_steps"]
    if age_days < s["anticheat.new_account_days"] and record.steps > limit:
        return RuleHit(
            "new_account_extreme",
            "flag",
            record.steps,
            limit,
            "A very high day on a brand-new account needs a review.",
        )
    return None


def _earlier(record: StepInput, ctx: RuleContext, days: int) -> list[tuple[date, int]]:
    """The credited days (with steps) among the `days` days before the record's day (in the
    history's order; compared as dates: no timedelta per history day). Made once per record
    and window (ctx.memo); callers never change the list."""
    key = ("earlier", record.day, days)
    found: list[tuple[date, int]] | None = ctx.memo.get(key)
    if found is None:
        dates, steps = _window(record, ctx, days)
        found = ctx.memo[key] = list(zip(dates, steps, strict=True))
    return found


def _window(record: StepInput, ctx: RuleContext, days: int) -> tuple[list[date], list[int]]:
    """The dates and steps of _earlier, sliced from the history's index (two bisections)."""
    if ctx.index is None:
        ctx.index = history_index(ctx.history)
    dates, steps = ctx.index
    last = record.day
    try:
        first = last - timedelta(days=days)
    except OverflowError:
        first = date.min
    lo, hi = bisect_left(dates, first), bisect_left(dates, last)
    return dates[lo:hi], steps[lo:hi]


def _median_before(record: StepInput, ctx: RuleContext, days: int) -> float:
    """The median steps of _earlier(record, ctx, days) (not empty), once per record and window."""
    key = ("median", record.day, days)
    found: float | None = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = statistics.median(_window(record, ctx, days)[1])
    return found


def sudden_jump(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """Well above both the user's own highest day and twice their median (over the baseline
    window): a day unlike any the walker had lately. A walker whose own highs are hikes or long
    runs is judged against those."""
    floor = s["anticheat.jump_floor_steps"]
    if record.steps <= floor:
        return None  # most days: no look at the history
    earlier = [steps for _, steps in _earlier(record, ctx, s["anticheat.baseline_days"])]
    if len(earlier) < s["anticheat.baseline_min_history_days"]:
        return None
    rank = s["anticheat.jump_high_rank"]
    high = sorted(earlier)[-rank] if len(earlier) >= rank else max(earlier)
    limit = max(
        high * s["anticheat.jump_high_multiplier"],
        _median_before(record, ctx, s["anticheat.baseline_days"])
        * s["anticheat.jump_median_multiplier"],
        floor,
    )
    if record.steps > limit:
        return RuleHit(
            "sudden_jump", "flag", record.steps, round(limit), "Far above your highest days lately."
        )
    return None


def steady_climb(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """A slow ramp: this day is a new high over the baseline window, so were several of the
    days just before it (each above every day before it), and it is well above the median of
    the days before the climb. People set a new high now and then; a ramp sets one every day."""
    floor = s["anticheat.climb_floor_steps"]
    if record.steps <= floor:
        return None
    climb_days = s["anticheat.climb_days"]
    last = record.day
    high = 0
    highs = 0  # new highs among the climb days
    before: list[int] = []  # the days before the climb
    for d, steps in sorted(_earlier(record, ctx, s["anticheat.baseline_days"])):
        if (last - d).days > climb_days:
            before.append(steps)
        elif steps > high:
            highs += 1
        high = max(high, steps)
    if record.steps <= high or highs < s["anticheat.climb_min_highs"]:
        return None
    if len(before) < s["anticheat.baseline_min_history_days"]:
        return None
    limit = max(statistics.median(before) * s["anticheat.climb_ratio"], floor)
    if record.steps > limit:
        return RuleHit(
            "steady_climb",
            "flag",
            record.steps,
            round(limit),
            "Your days keep setting new highs far above your usual days.",
        )
    return None


def high_without_baseline(
    record: StepInput, ctx: RuleContext, s: Mapping[str, Any]
) -> RuleHit | None:
    """A high day when the user has too few credited days lately to judge it against (a new
    account, a return after a long break, or days refused on review)."""
    limit = s["anticheat.no_baseline_max_steps"]
    if record.steps <= limit:
        return None
    days = s["anticheat.baseline_days"]
    credited = len(_earlier(record, ctx, days))
    if credited >= s["anticheat.baseline_min_history_days"]:
        return None
    return RuleHit(
        "high_without_baseline",
        "flag",
        record.steps,
        limit,
        "A high day before you have enough usual days to compare it with.",
    )


def too_regular(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """High days that hardly vary from one day to the next (a phone on a shaker, or a count
    held just under the cap): people's days vary by a fifth or more."""
    floor = s["anticheat.regular_floor_steps"]
    if record.steps <= floor:
        return None
    recent = [steps for _, steps in _earlier(record, ctx, s["anticheat.regular_days"])]
    if len(recent) < s["anticheat.regular_min_days"] or min(recent) <= floor:
        return None
    series = [*recent, record.steps]
    mean = statistics.fmean(series)
    variation = statistics.pstdev(series, mean) / mean
    limit = s["anticheat.regular_max_variation"]
    if variation < limit:
        return RuleHit(
            "too_regular",
            "flag",
            round(variation, 3),
            limit,
            "Your high days are almost exactly the same every day.",
        )
    return None


def night_burst(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """An intraday sample in the night hours (by the clock the phone sent, its own UTC offset)
    at a sustained pace people rarely keep at night: a phone shaken while its owner sleeps.
    Night-shift walking spreads over the shift and stays below it."""
    start_hour = s["anticheat.night_start_hour"]
    end_hour = s["anticheat.night_end_hour"]
    if start_hour == end_hour:
        return None  # no night: the rule is off
    limit = s["anticheat.night_max_steps_per_minute"]
    fastest = 0.0
    for interval in record.intervals:
        hour = interval.start.hour
        night = (
            start_hour <= hour < end_hour
            if start_hour < end_hour
            else not end_hour <= hour < start_hour
        )
        if night:
            seconds = (interval.end - interval.start).total_seconds()
            if seconds > 0:
                fastest = max(fastest, interval.steps * 60.0 / max(seconds, 3600.0))
    if fastest > limit:
        return RuleHit(
            "night_burst",
            "flag",
            round(fastest, 1),
            limit,
            "A long stretch of fast steps in the middle of the night.",
        )
    return None


def intervals_short(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """The day's intervals hold far fewer steps than its count: the count was raised without
    the samples that make it up (a cheap tool sets the total). A phone's samples add up to its
    count, give or take a watch's steps merged without their samples; a record without
    intervals is not judged."""
    if not record.intervals:
        return None
    gap = s["anticheat.intervals_gap_steps"]
    if record.steps <= gap:
        return None
    covered = 0
    for interval in record.intervals:
        covered += interval.steps
    share = covered / record.steps
    limit = s["anticheat.intervals_min_share"]
    if share < limit and record.steps - covered > gap:
        return RuleHit(
            "intervals_short",
            "flag",
            round(share, 3),
            limit,
            "The day's intervals hold far fewer steps than its count.",
        )
    return None


def repeated_highs(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """High days that keep coming back on no fixed weekday: this day and the days in several
    separate runs of the last `highs_days` days are far above the walker's median and above
    their own weekday's usual (a hiker's Saturday is compared with their Saturdays, a shift
    worker's shift with their shifts). People have a big day now and then, a week of holiday
    is one run; jumps on every other day are many."""
    floor = s["anticheat.highs_floor_steps"]
    if record.steps <= floor:
        return None
    days = s["anticheat.baseline_days"]
    if len(_window(record, ctx, days)[1]) < s["anticheat.baseline_min_history_days"]:
        return None
    limit = max(_median_before(record, ctx, days) * s["anticheat.highs_multiplier"], floor)
    if record.steps <= limit:
        return None
    window = _earlier(record, ctx, days)
    weekday_factor = s["anticheat.highs_weekday_multiplier"]
    by_weekday: dict[int, list[tuple[date, int]]] = {}
    for d, steps in window:
        by_weekday.setdefault(d.weekday(), []).append((d, steps))

    def surprising(day: date, steps: int) -> bool:
        if steps <= limit:
            return False
        same = [other for d, other in by_weekday.get(day.weekday(), ()) if d != day]
        return not same or steps > statistics.median(same) * weekday_factor

    if not surprising(record.day, record.steps):
        return None
    runs, in_run = 1, True  # this day's run; a day without a record does not end a run
    for day, count in sorted(_earlier(record, ctx, s["anticheat.highs_days"]), reverse=True):
        if not surprising(day, count):
            in_run = False
        elif not in_run:
            runs, in_run = runs + 1, True
    needed = s["anticheat.highs_min_runs"]
    if runs >= needed:
        return RuleHit(
            "repeated_highs",
            "flag",
            runs,
            needed,
            "Days far above your usual ones keep coming back lately.",
        )
    return None


def held_level(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """A high count held day after day: several of the last `held_days` days within a few
    percent of this one (a ramp that reached the cap and stays there; a shaker left on).
    People's days vary by a fifth or more; the too-regular rule needs the whole fortnight."""
    floor = s["anticheat.held_floor_steps"]
    if record.steps <= floor:
        return None
    tolerance = record.steps * s["anticheat.held_tolerance"]
    close = 0
    for _, steps in _earlier(record, ctx, s["anticheat.held_days"]):
        if abs(steps - record.steps) <= tolerance:
            close += 1
    needed = s["anticheat.held_min_days"]
    if close >= needed:
        return RuleHit(
            "held_level",
            "flag",
            close,
            needed,
            "Your high days have been almost the same count for days.",
        )
    return None


def rising_run(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """A ramp: this day tops a run of credited days each above the one before (days without a
    record skipped), and is well above the median of the baseline days before the run. People's
    days go up and down; a count dialled up a little each day goes only up."""
    floor = s["anticheat.rising_floor_steps"]
    if record.steps <= floor:
        return None
    try:
        yesterday = ctx.history.get(record.day - timedelta(days=1), 0)
    except OverflowError:
        yesterday = 0
    if yesterday >= record.steps:
        return None  # not above yesterday: no run, no look at the history (half the days)
    _, earlier = _window(record, ctx, s["anticheat.baseline_days"])  # in date order
    if not earlier or earlier[-1] >= record.steps:
        return None  # not above the latest credited day: no run
    run, above = 0, record.steps  # the credited days of the run before this day
    for steps in reversed(earlier):
        if steps >= above:
            break
        run, above = run + 1, steps
    needed = s["anticheat.rising_min_days"]
    before = earlier[: len(earlier) - run]
    if run < needed or len(before) < s["anticheat.baseline_min_history_days"]:
        return None
    limit = max(statistics.median(before) * s["anticheat.rising_ratio"], floor)
    if record.steps > limit:
        return RuleHit(
            "rising_run",
            "flag",
            run,
            needed,
            "Your days have gone up day after day, far above your usual days.",
        )
    return None


def high_after_gap(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """A high day (above `no_baseline_max_steps`) when fewer than `gap_min_days` of the last
    `gap_days` days were credited: the recent days are missing or were refused on review (a
    cheat whose days keep being refused), while the baseline window held at least that many:
    the record thins out, so the month's baseline says little about now. A day near the usual
    of its own weekday passes (a hiker back from a week without the phone, hiking on their
    hiking day). A walker without such a month is high_without_baseline's, not this rule's."""
    limit = s["anticheat.no_baseline_max_steps"]
    if record.steps <= limit:
        return None
    needed = s["anticheat.gap_min_days"]
    month = _earlier(record, ctx, s["anticheat.baseline_days"])
    if len(month) < max(needed, s["anticheat.baseline_min_history_days"]):
        return None
    credited = len(_earlier(record, ctx, s["anticheat.gap_days"]))
    if credited >= needed:
        return None
    weekday = record.day.weekday()
    same = [steps for d, steps in month if d.weekday() == weekday]
    usual = s["anticheat.gap_weekday_multiplier"]
    if len(same) >= 2 and record.steps <= statistics.median(same) * usual:
        return None  # this weekday's usual: a hiker back with their phone, hiking
    return RuleHit(
        "high_after_gap",
        "flag",
        credited,
        needed,
        "A high day after days that were not credited needs a review.",
    )


def _linked(code: str, observed: int, limit: int, ctx: RuleContext) -> bool:
    return observed > limit and observed > ctx.links.cleared.get(code, 0)


def shared_device(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """One phone paying several accounts: the busiest device the walker (or this batch) used
    in the window synced for more accounts than `fairplay.device_max_accounts`."""
    observed, limit = ctx.links.device_accounts, s["fairplay.device_max_accounts"]
    if _linked("shared_device", observed, limit, ctx):
        return RuleHit(
            "shared_device",
            "flag",
            observed,
            limit,
            "This phone synced steps for other accounts too.",
        )
    return None


def signup_burst(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """Accounts made in a burst from one address: more than
    `fairplay.signup_burst_max_accounts` within `fairplay.signup_burst_hours` of this one's."""
    observed, limit = ctx.links.signup_burst, s["fairplay.signup_burst_max_accounts"]
    if _linked("signup_burst", observed, limit, ctx):
        return RuleHit(
            "signup_burst",
            "flag",
            observed,
            limit,
            "This account was made together with many others from one address.",
        )
    return None


def same_series(record: StepInput, ctx: RuleContext, s: Mapping[str, Any]) -> RuleHit | None:
    """Several accounts sent the same daily step counts (found by fairplay:scan_series)."""
    observed = ctx.links.same_series
    if _linked("same_series", observed, 1, ctx):
        return RuleHit(
            "same_series",
            "flag",
            observed,
            1,
            "Other accounts sent exactly the same steps as this one.",
        )
    return None


RULES: tuple[Rule, ...] = (
    hard_daily_maximum,
    future_day,
    outside_sync_window,
    manual_entry,
    above_baseline,
    cadence,
    sources_disagree,
    too_many_devices,
    new_account_extreme,
    sudden_jump,
    steady_climb,
    high_without_baseline,
    too_regular,
    night_burst,
    intervals_short,
    repeated_highs,
    held_level,
    rising_run,
    high_after_gap,
    # links to other accounts (stepcoin.fairplay)
    shared_device,
    signup_burst,
    same_series,
)

# Refusals that mean the day is not a day we can accept at all: such records are not stored.
UNSTORABLE = frozenset({"future_day", "outside_sync_window"})


_APPROVED = Decision("approved", (), 0)  # immutable: one for every clean record


def decide(hits: Sequence[RuleHit]) -> Decision:
    """Any rejecting hit rejects; otherwise any hit flags; no hit approves."""
    if not hits:
        return _APPROVED
    if any(hit.action == "reject" for hit in hits):
        return Decision("rejected", tuple(hits), 100)
    if hits:
        risk = min(100, sum(RISK_WEIGHTS.get(hit.code, 25) for hit in hits))
        return Decision("flagged", tuple(hits), risk)
    return _APPROVED


def evaluate(record: StepInput, ctx: RuleContext, settings: Mapping[str, Any]) -> Decision:
    hits = [hit for rule in RULES if (hit := rule(record, ctx, settings)) is not None]
    return decide(hits)
