"""Every known runtime setting: its type, range, default and meaning, in one table.

The seed migration writes these defaults; the reader falls back to them for a key that is not
stored yet, so a new key needs no data migration to take effect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from limits import parse
from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict


@dataclass(frozen=True)
class SettingSpec:
    key: str
    default: Any
    description: str
    adapter: TypeAdapter[Any]
    # (stored value, new value) -> None; raises ValueError when the change itself is refused
    # (a value valid on its own but not as a successor of the stored one)
    check_change: Callable[[Any, Any], None] | None = None

    def validate(self, value: Any, *, strict: bool = False) -> Any:
        """Return the value in its canonical JSON type; raise ValueError with a readable reason.

        strict=True (what an admin's input gets) refuses coercions: true for a number, "10"
        for 10, 10.0 for an integer; an integer is still a valid float.
        """
        try:
            return self.adapter.validate_python(value, strict=strict)
        except ValidationError as exc:
            reason = "; ".join(err["msg"] for err in exc.errors())
            raise ValueError(f"{self.key}: {reason}") from exc


def _spec(
    key: str,
    type_: Any,
    default: Any,
    description: str,
    check_change: Callable[[Any, Any], None] | None = None,
) -> SettingSpec:
    adapter: TypeAdapter[Any] = TypeAdapter(type_)
    spec = SettingSpec(key, default, description, adapter, check_change)
    spec.validate(default)
    return spec


def _limit(value: str) -> str:
    """A rate limit as `<amount>/<period>` (the `limits` library's notation, which
    stepcoin.ratelimit parses): `60/minute`, `5/hour`, `20/15 minutes`."""
    value = value.strip()
    try:
        item = parse(value)
    except ValueError:
        raise ValueError(
            "not a limit: write <amount>/<period>, such as 60/minute, 5/hour or 20/15 minutes"
        ) from None
    if item.amount < 1 or not 1 <= item.get_expiry() <= 31 * 86_400:
        raise ValueError("the amount must be at least 1 and the period 1 second to 31 days")
    return value


Limit = Annotated[str, Field(max_length=40), AfterValidator(_limit)]


def _limits(policy: str, per_account: str | None, per_address: str, what: str) -> list[SettingSpec]:
    """A policy's two limits (stepcoin.ratelimit): per signed-in account and per address."""
    specs = [
        _spec(
            f"ratelimit.{policy}_per_address",
            Limit,
            per_address,
            f"{what} from one client address (an IPv6 /64), as <amount>/<period>; beyond it, "
            "429 with Retry-After.",
        )
    ]
    if per_account is not None:
        specs.insert(
            0,
            _spec(
                f"ratelimit.{policy}_per_account",
                Limit,
                per_account,
                f"{what} by one signed-in account, as <amount>/<period>; beyond it, 429 with "
                "Retry-After.",
            ),
        )
    return specs


@with_config(ConfigDict(extra="forbid"))
class ReferralTerms(TypedDict):
    """The referral programme's terms (stepcoin.referrals): a claim keeps a copy of them."""

    version: Annotated[int, Field(ge=1, le=1_000_000)]
    referrer_coins: Annotated[int, Field(ge=0, le=1_000_000)]
    invitee_coins: Annotated[int, Field(ge=0, le=1_000_000)]
    qualifying_days: Annotated[int, Field(ge=1, le=365)]
    qualifying_window_days: Annotated[int, Field(ge=1, le=365)]
    claim_window_days: Annotated[int, Field(ge=0, le=365)]
    hold_days: Annotated[int, Field(ge=0, le=365)]
    monthly_cap: Annotated[int, Field(ge=0, le=100_000)]


def _coherent_terms(terms: ReferralTerms) -> ReferralTerms:
    if terms["qualifying_days"] > terms["qualifying_window_days"]:
        raise ValueError("qualifying_days cannot exceed qualifying_window_days")
    return terms


def _terms_change(before: Any, after: Any) -> None:
    """New terms need a higher version: a claim names the version it holds, so one number
    never stands for two sets of terms (and a version never goes back)."""
    if not isinstance(before, dict) or before == after:
        return
    old, new = int(before.get("version", 0)), int(after["version"])
    if new <= old:
        raise ValueError(
            f"changed terms need a higher version than {old} (claimed referrals keep the "
            "terms of their version)"
        )


PositiveInt = Annotated[int, Field(ge=1, le=10_000_000)]
NonNegativeInt = Annotated[int, Field(ge=0, le=10_000_000)]

SPECS: dict[str, SettingSpec] = {
    s.key: s
    for s in [
        # the app (stepcoin.app_versions: older apps get 426 app_update_required)
        _spec(
            "app.min_version_ios",
            Annotated[str, Field(pattern=r"^\d{1,9}(\.\d{1,9}){0,3}$")],
            "0",
            "Lowest supported iOS app version (X-App-Version, e.g. 2.4.0); older apps get 426. "
            "0: every version.",
        ),
        _spec(
            "app.min_version_android",
            Annotated[str, Field(pattern=r"^\d{1,9}(\.\d{1,9}){0,3}$")],
            "0",
            "Lowest supported Android app version (X-App-Version, e.g. 2.4.0); older apps get "
            "426. 0: every version.",
        ),
        # coins: the earn rate and caps are versioned earn rules now (stepcoin.steps.earn_rules)
        # anti-cheat
        _spec(
            "anticheat.hard_daily_max_steps",
            PositiveInt,
            100_000,
            "A day above this many steps is rejected as impossible.",
        ),
        _spec(
            "anticheat.sync_window_days",
            Annotated[int, Field(ge=1, le=365)],
            7,
            "Records for days older than this many days are rejected.",
        ),
        _spec(
            "anticheat.manual_entry_action",
            Literal["flag", "reject", "allow"],
            "flag",
            "What happens to manually entered steps: flag for review, reject, or allow.",
        ),
        _spec(
            "anticheat.baseline_multiplier",
            Annotated[float, Field(gt=1, le=100)],
            6.0,
            "A day above this multiple of the user's trailing median is flagged.",
        ),
        _spec(
            "anticheat.baseline_days",
            Annotated[int, Field(ge=7, le=365)],
            28,
            "Length of the trailing window for the user's baseline (days).",
        ),
        _spec(
            "anticheat.baseline_floor_steps",
            NonNegativeInt,
            15_000,
            "The baseline rule only fires above this many steps.",
        ),
        _spec(
            "anticheat.baseline_min_history_days",
            Annotated[int, Field(ge=1, le=365)],
            7,
            "The baseline rule needs at least this many days of history.",
        ),
        _spec(
            "anticheat.max_steps_per_minute",
            Annotated[int, Field(ge=60, le=1000)],
            250,
            "Intraday cadence above this many steps per minute is flagged.",
        ),
        _spec(
            "anticheat.source_disagreement_ratio",
            Annotated[float, Field(gt=1, le=100)],
            2.0,
            "Sources for one day differing by more than this ratio are flagged.",
        ),
        _spec(
            "anticheat.source_disagreement_min_steps",
            NonNegativeInt,
            5_000,
            "The disagreement rule only fires when the larger count is above this.",
        ),
        _spec(
            "anticheat.max_devices_per_day",
            Annotated[int, Field(ge=1, le=100)],
            3,
            "More distinct devices than this for one day is flagged.",
        ),
        _spec(
            "anticheat.new_account_days",
            Annotated[int, Field(ge=0, le=365)],
            7,
            "Accounts younger than this many days are 'new'.",
        ),
        _spec(
            "anticheat.new_account_max_steps",
            PositiveInt,
            40_000,
            "A new account's day above this many steps is flagged.",
        ),
        _spec(
            "anticheat.jump_high_multiplier",
            Annotated[float, Field(gt=1, le=100)],
            1.4,
            "A day above this multiple of the user's highest day in the baseline window (and "
            "above anticheat.jump_median_multiplier times the median) is flagged.",
        ),
        _spec(
            "anticheat.jump_high_rank",
            Annotated[int, Field(ge=1, le=30)],
            1,
            "The sudden-jump rule's 'highest day': the user's n-th highest day in the baseline "
            "window (1: the highest; higher ranks are not raised by one slipped-through day).",
        ),
        _spec(
            "anticheat.jump_median_multiplier",
            Annotated[float, Field(gt=1, le=100)],
            2.0,
            "The sudden-jump rule only fires above this multiple of the user's trailing median.",
        ),
        _spec(
            "anticheat.jump_floor_steps",
            NonNegativeInt,
            10_000,
            "The sudden-jump rule only fires above this many steps.",
        ),
        _spec(
            "anticheat.climb_days",
            Annotated[int, Field(ge=2, le=60)],
            14,
            "The steady-climb rule counts the new highs among this many days before the day.",
        ),
        _spec(
            "anticheat.climb_min_highs",
            Annotated[int, Field(ge=1, le=60)],
            4,
            "The steady-climb rule needs at least this many new highs among its climb days.",
        ),
        _spec(
            "anticheat.climb_ratio",
            Annotated[float, Field(gt=1, le=100)],
            1.5,
            "A steady climb ending above this multiple of the median before the climb is flagged.",
        ),
        _spec(
            "anticheat.climb_floor_steps",
            NonNegativeInt,
            10_000,
            "The steady-climb rule only fires above this many steps.",
        ),
        _spec(
            "anticheat.no_baseline_max_steps",
            PositiveInt,
            15_000,
            "A day above this many steps is flagged while the user has fewer credited days in "
            "the baseline window than anticheat.baseline_min_history_days.",
        ),
        _spec(
            "anticheat.regular_days",
            Annotated[int, Field(ge=2, le=60)],
            14,
            "The too-regular rule looks at the credited days among this many days before the day.",
        ),
        _spec(
            "anticheat.regular_min_days",
            Annotated[int, Field(ge=2, le=60)],
            3,
            "The too-regular rule needs at least this many credited days in its window.",
        ),
        _spec(
            "anticheat.regular_floor_steps",
            NonNegativeInt,
            12_000,
            "Too-regular only judges a day when it and the window's days exceed this many steps.",
        ),
        _spec(
            "anticheat.regular_max_variation",
            Annotated[float, Field(gt=0, le=1)],
            0.05,
            "High days whose spread (standard deviation / mean) is below this are flagged.",
        ),
        _spec(
            "anticheat.night_start_hour",
            Annotated[int, Field(ge=0, le=23)],
            0,
            "The night-burst rule's night starts at this hour (the phone's own clock).",
        ),
        _spec(
            "anticheat.night_end_hour",
            Annotated[int, Field(ge=1, le=24)],
            5,
            "The night-burst rule's night ends at this hour (the phone's own clock).",
        ),
        _spec(
            "anticheat.night_max_steps_per_minute",
            Annotated[int, Field(ge=1, le=1000)],
            60,
            "A night sample above this pace (averaged over at least an hour) is flagged.",
        ),
        _spec(
            "anticheat.intervals_min_share",
            Annotated[float, Field(gt=0, le=1)],
            0.8,
            "A day whose intervals hold less than this share of its count (and "
            "anticheat.intervals_gap_steps fewer steps) is flagged.",
        ),
        _spec(
            "anticheat.intervals_gap_steps",
            NonNegativeInt,
            3_000,
            "The intervals-short rule only fires when the count exceeds its intervals by more "
            "than this many steps.",
        ),
        _spec(
            "anticheat.highs_floor_steps",
            NonNegativeInt,
            6_000,
            "The repeated-highs rule only fires above this many steps.",
        ),
        _spec(
            "anticheat.highs_multiplier",
            Annotated[float, Field(gt=1, le=100)],
            1.8,
            "The repeated-highs rule's high day: above this multiple of the user's trailing "
            "median.",
        ),
        _spec(
            "anticheat.highs_weekday_multiplier",
            Annotated[float, Field(gt=1, le=100)],
            1.5,
            "The repeated-highs rule's high day is also above this multiple of the median of the "
            "same weekday's days in the baseline window.",
        ),
        _spec(
            "anticheat.highs_days",
            Annotated[int, Field(ge=2, le=60)],
            14,
            "The repeated-highs rule counts the runs of high days among this many days before "
            "the day.",
        ),
        _spec(
            "anticheat.highs_min_runs",
            Annotated[int, Field(ge=2, le=60)],
            3,
            "The repeated-highs rule fires at this many separate runs of high days, the day's "
            "own included.",
        ),
        _spec(
            "anticheat.held_days",
            Annotated[int, Field(ge=2, le=60)],
            7,
            "The held-level rule looks at the credited days among this many days before the day.",
        ),
        _spec(
            "anticheat.held_min_days",
            Annotated[int, Field(ge=1, le=60)],
            4,
            "The held-level rule fires when at least this many of its days are within "
            "anticheat.held_tolerance of the day.",
        ),
        _spec(
            "anticheat.held_tolerance",
            Annotated[float, Field(gt=0, le=1)],
            0.04,
            "The held-level rule's 'same count': within this share of the day's steps.",
        ),
        _spec(
            "anticheat.held_floor_steps",
            NonNegativeInt,
            12_000,
            "The held-level rule only judges a day above this many steps.",
        ),
        _spec(
            "anticheat.rising_min_days",
            Annotated[int, Field(ge=2, le=60)],
            6,
            "The rising-run rule fires when the day tops at least this many credited days, each "
            "above the one before.",
        ),
        _spec(
            "anticheat.rising_ratio",
            Annotated[float, Field(gt=1, le=100)],
            1.45,
            "The rising-run rule fires above this multiple of the median of the days before the "
            "run.",
        ),
        _spec(
            "anticheat.rising_floor_steps",
            NonNegativeInt,
            6_000,
            "The rising-run rule only fires above this many steps.",
        ),
        _spec(
            "anticheat.gap_days",
            Annotated[int, Field(ge=2, le=60)],
            14,
            "The high-after-gap rule counts the credited days among this many days before the day.",
        ),
        _spec(
            "anticheat.gap_min_days",
            Annotated[int, Field(ge=1, le=60)],
            7,
            "A day above anticheat.no_baseline_max_steps is flagged when fewer of the "
            "anticheat.gap_days days before it were credited.",
        ),
        _spec(
            "anticheat.gap_weekday_multiplier",
            Annotated[float, Field(gt=1, le=100)],
            1.3,
            "The high-after-gap rule lets a day pass that is within this multiple of the median "
            "of the same weekday's credited days in the baseline window (two or more of them).",
        ),
        # fair play across accounts (stepcoin.fairplay; the link rules in stepcoin.steps.rules)
        _spec(
            "fairplay.device_window_days",
            Annotated[int, Field(ge=1, le=365)],
            30,
            "Accounts that synced from one device within this many days are linked by it.",
        ),
        _spec(
            "fairplay.device_max_accounts",
            Annotated[int, Field(ge=1, le=100)],
            1,
            "A day synced from a device that more accounts than this synced from (within "
            "fairplay.device_window_days) is flagged for review (shared_device).",
        ),
        _spec(
            "fairplay.signup_burst_hours",
            Annotated[int, Field(ge=1, le=24 * 30)],
            24,
            "Accounts made from one client address within this many hours of each other are a "
            "sign-up burst when there are more than fairplay.signup_burst_max_accounts.",
        ),
        _spec(
            "fairplay.signup_burst_max_accounts",
            Annotated[int, Field(ge=1, le=1000)],
            5,
            "More accounts than this made from one address within fairplay.signup_burst_hours: "
            "their days are flagged for review (signup_burst).",
        ),
        _spec(
            "fairplay.household_max_accounts",
            Annotated[int, Field(ge=1, le=1000)],
            4,
            "Accounts made from one address, at any time, that are still a household: two of "
            "them referring each other is not a self-referral signal unless the address made "
            "more accounts than this (shared_address).",
        ),
        _spec(
            "fairplay.series_days",
            Annotated[int, Field(ge=3, le=60)],
            7,
            "The job fairplay:scan_series compares each walker's daily steps over this many "
            "most recent days with every other walker's.",
        ),
        _spec(
            "fairplay.series_min_days",
            Annotated[int, Field(ge=2, le=60)],
            5,
            "A series is compared only when it has at least this many days of at least "
            "fairplay.series_min_steps steps (short or empty series match by chance).",
        ),
        _spec(
            "fairplay.series_min_steps",
            Annotated[int, Field(ge=0, le=100_000)],
            1_000,
            "Days below this many steps do not count toward fairplay.series_min_days.",
        ),
        _spec(
            "fairplay.redemption_hold_below",
            Annotated[int, Field(ge=0, le=101)],
            30,
            "An order by a walker whose trust score is below this is held for a reviewer "
            "before it is sent to the shop (0: never).",
        ),
        # sign-in (stepcoin.auth.throttle: attempts are counted before the check; a success
        # gives its attempt back)
        _spec(
            "auth.login_max_failures_per_account_and_address",
            Annotated[int, Field(ge=1, le=1000)],
            5,
            "Failed sign-ins for one email from one client address within the window before "
            "that address is refused for that email.",
        ),
        _spec(
            "auth.login_max_failures_per_account",
            Annotated[int, Field(ge=1, le=100_000)],
            50,
            "Failed sign-ins for one email from all addresses together within the window "
            "before the email is refused everywhere (wider than per address, so an attack from "
            "elsewhere does not lock the owner out at once).",
        ),
        _spec(
            "auth.login_max_failures_per_ip",
            Annotated[int, Field(ge=1, le=100_000)],
            50,
            "Failed logins from one client address within the window before it is throttled.",
        ),
        _spec(
            "auth.login_failure_window_seconds",
            Annotated[int, Field(ge=10, le=86_400)],
            900,
            "Window in which failed sign-ins and second-factor codes are counted; a key at its "
            "limit is refused until its window ends.",
        ),
        _spec(
            "auth.totp_max_failures",
            Annotated[int, Field(ge=1, le=1000)],
            5,
            "Wrong console TOTP codes for one account within the window before codes are "
            "refused (only a passed code clears the count, never a correct password).",
        ),
        _spec(
            "auth.signup_max_per_address",
            Annotated[int, Field(ge=1, le=100_000)],
            50,
            "Sign-ups (each hashes a password) from one client address within the sign-up window.",
        ),
        _spec(
            "auth.signup_max_per_email",
            Annotated[int, Field(ge=1, le=1000)],
            5,
            "Sign-up attempts for one email within the sign-up window.",
        ),
        _spec(
            "auth.signup_window_seconds",
            Annotated[int, Field(ge=10, le=86_400)],
            3600,
            "Window in which sign-ups are counted.",
        ),
        # rate limits (stepcoin.ratelimit; sign-up and sign-in count with the auth.* above)
        *_limits("sync", "30/minute", "600/minute", "Step syncs (POST /v1/steps)"),
        *_limits("orders", "10/minute", "300/minute", "Orders placed or cancelled"),
        *_limits("exports", "5/hour", "60/hour", "Data exports (GET /v1/me/export)"),
        *_limits(
            "appeals",
            "10/hour",
            "100/hour",
            "Appeals of rejected days (POST /v1/steps/{date}/appeal)",
        ),
        *_limits(
            "referrals",
            "10/hour",
            "100/hour",
            "Referral claims (POST /v1/referrals/claim)",
        ),
        *_limits(
            "friend_codes",
            "30/hour",
            "300/hour",
            "Friend invitation look-ups and accepts, and friend requests by email",
        ),
        *_limits(
            "mails",
            "5/hour",
            "20/15 minutes",
            "Mail requests (verification mail, password reset)",
        ),
        *_limits(
            "sessions",
            None,
            "300/minute",
            "Token refreshes and Google or Apple sign-ins",
        ),
        # shop
        _spec(
            "shop.coins_per_currency_unit",
            Annotated[int, Field(ge=1, le=100_000)],
            100,
            "Default coin price of a product: its Shopify price times this, rounded up.",
        ),
        _spec(
            "shop.currency_code",
            Annotated[str, Field(pattern=r"^[A-Z]{3}$")],
            "USD",
            "The shop's currency (ISO 4217, as in Shopify): the economy report values coins "
            "in it (one coin = 1 / shop.coins_per_currency_unit of a unit).",
        ),
        _spec(
            "shop.sync_interval_minutes",
            Annotated[int, Field(ge=1, le=1440)],
            15,
            "Minutes between catalogue syncs from Shopify.",
        ),
        _spec(
            "shop.max_items_per_order",
            Annotated[int, Field(ge=1, le=100)],
            20,
            "Most distinct products in one order.",
        ),
        _spec(
            "shop.max_quantity_per_item",
            Annotated[int, Field(ge=1, le=1000)],
            10,
            "Most units of one product in one order.",
        ),
        _spec(
            "shop.submit_gather_ms",
            Annotated[int, Field(ge=0, le=10_000)],
            1000,
            "Milliseconds an order placed while no sweep waits lets others gather before the "
            "sweep that takes them to Shopify runs (0: at once).",
        ),
        _spec(
            "shop.order_submit_max_attempts",
            Annotated[int, Field(ge=1, le=50)],
            8,
            "Attempts to create an order in Shopify before it fails and is refunded.",
        ),
        # jobs
        _spec(
            "steps.partition_months_ahead",
            Annotated[int, Field(ge=1, le=24)],
            3,
            "Monthly partitions of step_records kept ready ahead of today.",
        ),
        _spec(
            "leaderboards.rebuild_interval_minutes",
            Annotated[int, Field(ge=1, le=1440)],
            1440,
            "Minutes between full leaderboard rebuilds (a safety net: the live refresh brings "
            "every change into the boards within seconds).",
        ),
        _spec(
            "leaderboards.finalize_after_hours",
            Annotated[int, Field(ge=0, le=72)],
            12,
            "Hours a closed day, week or month (UTC) stays live before its final snapshot.",
        ),
        _spec(
            "leaderboards.daily_retention_days",
            Annotated[int, Field(ge=2, le=3660)],
            35,
            "Days a closed daily board stays readable before it is deleted.",
        ),
        _spec(
            "leaderboards.retention_days",
            Annotated[int, Field(ge=14, le=36600)],
            400,
            "Days a closed weekly or monthly board stays readable before it is deleted.",
        ),
        # admin console
        _spec(
            "console.idle_timeout_minutes",
            Annotated[int, Field(ge=1, le=1440)],
            30,
            "Minutes without a request after which a console session ends.",
        ),
        _spec(
            "console.session_max_hours",
            Annotated[int, Field(ge=1, le=168)],
            12,
            "Hours after sign-in when a console session ends however active it is.",
        ),
        # backups
        _spec(
            "backup.incremental_interval_minutes",
            Annotated[int, Field(ge=5, le=1440)],
            60,
            "Minutes between incremental backups (PostgreSQL 17+; older servers rely on WAL).",
        ),
        _spec(
            "backup.full_hour_utc",
            Annotated[int, Field(ge=0, le=23)],
            2,
            "Hour (UTC) of the daily full backup, followed by the retention run.",
        ),
        _spec(
            "backup.cold_copy_weekday",
            Annotated[int, Field(ge=1, le=7)],
            7,
            "ISO weekday (1 = Monday, 7 = Sunday) of the weekly copy to the cold repository.",
        ),
        _spec(
            "backup.region_copy_day",
            Annotated[int, Field(ge=1, le=31)],
            1,
            "Day of the month of the monthly copy to the second-region repository.",
        ),
        _spec(
            "backup.copy_hour_utc",
            Annotated[int, Field(ge=0, le=23)],
            4,
            "Hour (UTC) of the weekly and monthly copies.",
        ),
        _spec(
            "backup.incremental_retention_days",
            Annotated[int, Field(ge=1, le=3660)],
            30,
            "Days incremental backups are kept (with the full backups they depend on).",
        ),
        _spec(
            "backup.full_retention_days",
            Annotated[int, Field(ge=1, le=3660)],
            30,
            "Days full backups are kept in the main repository (the newest good one always).",
        ),
        _spec(
            "backup.cold_retention_days",
            Annotated[int, Field(ge=7, le=36600)],
            90,
            "Days weekly copies are kept in the cold repository.",
        ),
        _spec(
            "backup.monthly_retention_days",
            Annotated[int, Field(ge=28, le=36600)],
            365,
            "Days monthly copies are kept in the second-region repository.",
        ),
        _spec(
            "backup.retry_minutes",
            Annotated[int, Field(ge=1, le=1440)],
            15,
            "Minutes before a failed scheduled backup, copy or prune is tried again.",
        ),
        # staff
        _spec(
            "admin.adjustment_approval_threshold_coins",
            Annotated[int, Field(ge=0, le=1_000_000)],
            10_000,
            "A wallet adjustment of more coins than this (either way) waits for a second "
            "admin's approval (issue 12, hole 7).",
        ),
        # economy: campaigns (issue 15, item 3)
        _spec(
            "economy.campaign_approval_threshold_coins",
            Annotated[int, Field(ge=0, le=10_000_000_000)],
            100_000,
            "A campaign paying more coins than this in total (walkers x coins) runs only once "
            "a second admin has approved it (issue 15).",
        ),
        _spec(
            "economy.campaign_chunk_walkers",
            Annotated[int, Field(ge=100, le=10_000)],
            2_000,
            "Walkers a campaign pays per transaction (each chunk holds their wallet locks "
            "until it commits; the run resumes after the last committed chunk).",
        ),
        # referrals (issue 16, item 3; stepcoin.referrals)
        _spec(
            "referrals.terms",
            Annotated[ReferralTerms, AfterValidator(_coherent_terms)],
            {
                "version": 1,
                "referrer_coins": 500,
                "invitee_coins": 250,
                "qualifying_days": 5,
                "qualifying_window_days": 30,
                "claim_window_days": 7,
                "hold_days": 7,
                "monthly_cap": 10,
            },
            "The referral programme: coins for the referrer and the invitee, the approved days "
            "the invitee needs within the window from the claim, the days after sign-up a code "
            "may be claimed, the hold before paying and the referrer rewards paid per calendar "
            "month. A claim keeps the terms of its time; a change needs a higher version.",
            _terms_change,
        ),
        _spec(
            "referrals.review_below_trust",
            Annotated[int, Field(ge=0, le=101)],
            40,
            "A referral whose referrer or invitee has a trust score (0-100) below this goes to "
            "the referral review queue (reason low_trust); 0: never.",
        ),
        _spec(
            "referrals.burst_claims_per_day",
            Annotated[int, Field(ge=1, le=100_000)],
            5,
            "More claims than this of one referrer's code within 24 hours send the new ones to "
            "the referral review queue (reason referral_burst).",
        ),
        # friends by consent (issue 17, item 1; stepcoin.social)
        _spec(
            "friends.invitation_days",
            Annotated[int, Field(ge=1, le=90)],
            7,
            "Days a friend invitation code stays valid.",
        ),
        _spec(
            "friends.max_friends",
            Annotated[int, Field(ge=1, le=100_000)],
            500,
            "Most friends a walker can have; an accept beyond it on either side is refused "
            "(409 friend_limit_reached).",
        ),
        _spec(
            "friends.max_open_invitations",
            Annotated[int, Field(ge=1, le=10_000)],
            20,
            "Most open (unexpired, unrevoked, unused) friend invitations per walker.",
        ),
        # challenges (issue 17, item 4; stepcoin.challenges)
        _spec(
            "challenges.grace_hours",
            Annotated[int, Field(ge=0, le=168)],
            24,
            "Hours after a challenge's last day during which late syncs still count; then it "
            "settles. A challenge keeps the value of its creation.",
        ),
        _spec(
            "challenges.min_participants",
            Annotated[int, Field(ge=1, le=1_000)],
            2,
            "Fewest participants a challenge needs at its start (a creator may ask more); "
            "fewer: it is cancelled and every entry fee refunded.",
        ),
        _spec(
            "challenges.max_days",
            Annotated[int, Field(ge=1, le=366)],
            92,
            "Longest challenge, in days.",
        ),
        _spec(
            "challenges.max_entry_fee_coins",
            Annotated[int, Field(ge=0, le=1_000_000)],
            10_000,
            "Highest entry fee of a challenge (0: no fees).",
        ),
        _spec(
            "challenges.max_house_prize_coins",
            Annotated[int, Field(ge=0, le=100_000_000)],
            1_000_000,
            "Highest house prize an admin adds to a challenge (issued through the prizes budget).",
        ),
        _spec(
            "challenges.max_invitees",
            Annotated[int, Field(ge=1, le=500)],
            50,
            "Most friends invited to one challenge.",
        ),
        _spec(
            "challenges.payout_chunk_walkers",
            Annotated[int, Field(ge=1, le=10_000)],
            500,
            "Walkers a settlement pays per transaction (the run resumes after the last "
            "committed chunk).",
        ),
        # notifications (issue 18; stepcoin.notify)
        _spec(
            "notify.daily_cap_per_type",
            Annotated[int, Field(ge=0, le=1000)],
            5,
            "Most pushes of one type a walker gets in one local day (security and orders have "
            "no cap); beyond it the notification stays in the inbox only.",
        ),
        _spec(
            "notify.streak_hours_before_midnight",
            Annotated[int, Field(ge=1, le=12)],
            3,
            "Hours before the walker's local midnight at which the streak reminder goes out "
            "when today's step goal is not met yet.",
        ),
        _spec(
            "notify.default_daily_step_goal",
            Annotated[int, Field(ge=1, le=100_000)],
            6000,
            "The daily step goal of a walker who has not set one (the streak reminder).",
        ),
        _spec(
            "notify.pushes_per_second_per_platform",
            Annotated[int, Field(ge=1, le=100_000)],
            5_000,
            "Most pushes one worker process sends per second to each push service (FCM, "
            "APNs); FCM allows 600,000 a minute per project (10,000/s): keep workers x this "
            "below it.",
        ),
        _spec(
            "notify.broadcast_approval_threshold_walkers",
            Annotated[int, Field(ge=0, le=100_000_000)],
            10_000,
            "A broadcast to more walkers than this runs only once a second admin has approved it.",
        ),
        # retention and archival (issue 19, item 2; stepcoin.retention, docs/retention.md)
        _spec(
            "retention.decisions_days",
            Annotated[int, Field(ge=90, le=36600)],
            180,
            "Days after which the superseded anti-cheat decisions of approved step records are "
            "deleted (the final decision, staff decisions and appeals stay).",
        ),
        _spec(
            "retention.webhook_events_days",
            Annotated[int, Field(ge=7, le=36600)],
            30,
            "Days a handled Shopify webhook delivery is kept (an unhandled one stays).",
        ),
        _spec(
            "retention.refresh_tokens_days",
            Annotated[int, Field(ge=1, le=36600)],
            30,
            "Days after its expiry a refresh token of a finished sign-in is kept.",
        ),
        _spec(
            "retention.step_records_months",
            Annotated[int, Field(ge=3, le=1200)],
            25,
            "Months of step records kept online; older months whose rows are all settled are "
            "archived to the backup repository (when retention.archive_enabled).",
        ),
        _spec(
            "retention.archive_enabled",
            bool,
            True,
            "Whether the daily job archives step_records months past retention."
            "step_records_months (`stepcoin retention archive-month` works either way).",
        ),
        _spec(
            "retention.batch_rows",
            Annotated[int, Field(ge=100, le=100_000)],
            10_000,
            "Rows a pruning job examines or deletes per transaction.",
        ),
        # groups (issue 17, item 2; stepcoin.social.groups)
        _spec(
            "groups.max_members",
            Annotated[int, Field(ge=2, le=1_000_000)],
            10_000,
            "Most members a group can have; a join or an approval beyond it is refused "
            "(409 group_full).",
        ),
        _spec(
            "groups.max_memberships",
            Annotated[int, Field(ge=1, le=10_000)],
            50,
            "Most groups a walker can belong to (owned ones included); beyond it, 409 "
            "group_limit_reached.",
        ),
        _spec(
            "groups.max_owned",
            Annotated[int, Field(ge=1, le=1_000)],
            10,
            "Most groups a walker can own; creating or taking over one more is refused "
            "(409 owned_group_limit_reached).",
        ),
    ]
}


def get_spec(key: str) -> SettingSpec | None:
    return SPECS.get(key)


def defaults() -> dict[str, Any]:
    return {key: spec.default for key, spec in SPECS.items()}
