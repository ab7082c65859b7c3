"""Sign-in, second-factor and sign-up throttling, kept in PostgreSQL (issue 12, holes 2, 3, 10).

Each attempt is RESERVED before the password or code is checked: one statement counts it on
every key it belongs to and answers the counts, and it is committed at once on a connection of
its own, so requests arriving together see each other's reservations and at most the limit is
ever checked, however many arrive at once. The count is the attempts of the current fixed
window (it starts with the window's first attempt); a key at its limit refuses until the window
ends. A failure simply keeps its reservation; a success clears or gives it back.

Keys (the limits are runtime settings):
- sign-in (API and console alike): the account and the client address together (a narrow
  limit), the account alone (a wide one, so an attack from other addresses does not lock the
  owner out of their own), and the address alone;
- the console's second factor: the account's own `totp:` key, cleared only by a passed code
  (never by a correct password);
- sign-up: the client address and the email, reserved before the argon2 hash; not given back.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from stepcoin.errors import TooManyRequests
from stepcoin.ratelimit import Quota, address_bucket, headers
from stepcoin.runtime_settings.service import runtime_settings

LOGIN_WINDOW = "auth.login_failure_window_seconds"
SIGNUP_WINDOW = "auth.signup_window_seconds"
_MAX_KEY_CHARS = 400  # login_throttle.key


def _key(prefix: str, *parts: str) -> str:
    """`prefix:part|part`; a digest instead when the parts are long or hold a NUL (which
    PostgreSQL text refuses), so any input makes a storable key."""
    body = "|".join(parts)
    if len(prefix) + 1 + len(body) > _MAX_KEY_CHARS or "\x00" in body:
        body = "sha256=" + hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{prefix}:{body}"


def account_key(email: str) -> str:
    return _key("account", email)


def address_key(address: str | None) -> str:
    return _key("address", address_bucket(address))


def account_address_key(email: str, address: str | None) -> str:
    return _key("account_address", email, address_bucket(address))


def totp_key(user_id: uuid.UUID) -> str:
    return _key("totp", str(user_id))


def signup_address_key(address: str | None) -> str:
    return _key("signup_address", address_bucket(address))


def signup_email_key(email: str) -> str:
    return _key("signup_email", email)


async def forget_email(session: AsyncSession, email: str) -> None:
    """Account deletion: the counts keyed by the email (sign-in, sign-up) name a person."""
    pair_prefix = account_address_key(email, "").removesuffix("unknown")
    await session.execute(
        text(
            "DELETE FROM login_throttle WHERE key = ANY(:keys) "
            "OR (left(key, length(:prefix)) = :prefix)"
        ),
        {"keys": [account_key(email), signup_email_key(email)], "prefix": pair_prefix},
    )


# One statement: count the attempt on every key (a new window when the last one is over) and
# answer each key's count with its limit. Keys come sorted, so two requests lock the rows in
# the same order and never deadlock.
_RESERVE = """
WITH asked AS (
    SELECT * FROM unnest($1::text[], $2::int[]) AS a(key, max_attempts)
), counted AS (
    INSERT INTO login_throttle AS t (key, failures, window_started_at)
    SELECT key, 1, now() FROM asked ORDER BY key
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN t.window_started_at <= now() - make_interval(secs => $3)
                        THEN 1 ELSE t.failures + 1 END,
        window_started_at = CASE WHEN t.window_started_at <= now() - make_interval(secs => $3)
                                 THEN now() ELSE t.window_started_at END
    RETURNING t.key, t.failures, t.window_started_at,
              extract(epoch FROM t.window_started_at + make_interval(secs => $3) - now())
                  AS seconds_left
)
SELECT c.key, c.failures <= a.max_attempts AS within_limit, c.window_started_at, c.seconds_left
FROM counted c JOIN asked a USING (key)
"""

# Give back one reservation per key, in the window it was taken in (a window started since
# holds other attempts only).
# The rows are locked in key order first, as _RESERVE locks them (an UPDATE ... FROM locks
# in whatever order its join returns: against a reservation of the same keys, a deadlock).
_GIVE_BACK_SQL = """
WITH locked AS (
    SELECT t.key FROM login_throttle t WHERE t.key = ANY({keys}) ORDER BY t.key FOR UPDATE
)
UPDATE login_throttle AS t SET failures = greatest(t.failures - 1, 0)
FROM unnest({keys}, {started}) AS r(key, started)
WHERE t.key = r.key AND t.window_started_at = r.started
  AND t.key IN (SELECT key FROM locked)
"""
_GIVE_BACK = _GIVE_BACK_SQL.format(
    keys="CAST(:keys AS text[])", started="CAST(:started AS timestamptz[])"
)


@dataclass(frozen=True, slots=True)
class Reservation:
    """The attempt counted on its keys (key -> the window it was counted in)."""

    windows: dict[str, datetime] = field(default_factory=dict)

    async def give_back(self, session: AsyncSession, keys: Sequence[str]) -> None:
        """Uncount the attempt on these keys (in the caller's transaction)."""
        held = [k for k in keys if k in self.windows]
        if held:
            await session.execute(
                text(_GIVE_BACK), {"keys": held, "started": [self.windows[k] for k in held]}
            )

    async def clear(self, session: AsyncSession, keys: Sequence[str]) -> None:
        """Forget these keys' counts (in the caller's transaction): a proven owner."""
        if keys:
            await session.execute(
                text("DELETE FROM login_throttle WHERE key = ANY(:keys)"), {"keys": list(keys)}
            )


def _engine(session: AsyncSession) -> AsyncEngine:
    bind = session.bind
    if not isinstance(bind, AsyncEngine):
        raise TypeError("the throttle needs a session bound to an AsyncEngine")
    return bind


async def reserve(
    session: AsyncSession,
    limits: Sequence[tuple[str, str]],
    *,
    window_setting: str,
    code: str = "login_throttled",
    detail: str = "Too many sign-in attempts; try again later.",
) -> Reservation:
    """Count one attempt on each (key, limit setting) or refuse with 429 `code` and
    Retry-After when any key is at its limit (then nothing stays counted).

    Runs on a pooled connection of its own, outside the caller's transaction, so the count is
    committed (seen by every parallel request) before the caller does the slow check; call it
    before the caller's session runs its first statement, so no request ever holds two
    connections while waiting for one.
    """
    async with _engine(session).connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection  # asyncpg, outside any transaction: autocommit
        values = await runtime_settings.all_raw(driver)
        ordered = sorted({key: values[setting] for key, setting in limits}.items())
        rows = await driver.fetch(
            _RESERVE,
            [key for key, _ in ordered],
            [int(limit) for _, limit in ordered],
            float(values[window_setting]),
        )
        refused = [row for row in rows if not row["within_limit"]]
        if not refused:
            return Reservation({row["key"]: row["window_started_at"] for row in rows})
        await driver.execute(
            _GIVE_BACK_SQL.format(keys="$1::text[]", started="$2::timestamptz[]"),
            [row["key"] for row in rows],
            [row["window_started_at"] for row in rows],
        )
    longest = max(refused, key=lambda row: float(row["seconds_left"]))
    retry_after = max(1, math.ceil(float(longest["seconds_left"])))
    quota = Quota(  # the limit that refused, named by its key's kind
        policy=str(longest["key"]).split(":", 1)[0],
        amount=int(dict(ordered)[longest["key"]]),
        window=int(values[window_setting]),
        allowed=False,
        remaining=0,
        reset=retry_after,
        retry_after=retry_after,
    )
    raise TooManyRequests(  # Retry-After, and the IETF RateLimit fields (as ratelimit.py's)
        detail, code=code, retry_after=retry_after, headers=dict(headers(quota))
    )


@dataclass(frozen=True, slots=True)
class SignInKeys:
    """The three counts a password attempt is reserved on."""

    pair: str
    account: str
    address: str


async def reserve_login(
    session: AsyncSession, email: str, address: str | None
) -> tuple[Reservation, SignInKeys]:
    """A sign-in attempt with a password (the API's and the console's, on shared counts)."""
    keys = SignInKeys(
        pair=account_address_key(email, address),
        account=account_key(email),
        address=address_key(address),
    )
    reservation = await reserve(
        session,
        [
            (keys.pair, "auth.login_max_failures_per_account_and_address"),
            (keys.account, "auth.login_max_failures_per_account"),
            (keys.address, "auth.login_max_failures_per_ip"),
        ],
        window_setting=LOGIN_WINDOW,
        detail="Too many failed sign-in attempts; try again later.",
    )
    return reservation, keys


async def password_accepted(
    session: AsyncSession, reservation: Reservation, keys: SignInKeys
) -> None:
    """The right password: this address's count for the account starts over; the attempt is
    given back on the account's and the address's (other addresses' failures stay counted)."""
    await reservation.clear(session, [keys.pair])
    await reservation.give_back(session, [keys.account, keys.address])


async def reserve_second_factor(session: AsyncSession, user_id: uuid.UUID) -> Reservation:
    """A TOTP code about to be checked, counted on the account's own second-factor key."""
    return await reserve(
        session,
        [(totp_key(user_id), "auth.totp_max_failures")],
        window_setting=LOGIN_WINDOW,
        detail="Too many wrong codes; try again later.",
    )


async def second_factor_passed(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Only a passed second factor clears its failures."""
    await Reservation().clear(session, [totp_key(user_id)])


async def reserve_signup(session: AsyncSession, email: str, address: str | None) -> Reservation:
    """A registration about to hash its password, counted per address and per email."""
    return await reserve(
        session,
        [
            (signup_address_key(address), "auth.signup_max_per_address"),
            (signup_email_key(email), "auth.signup_max_per_email"),
        ],
        window_setting=SIGNUP_WINDOW,
        code="signup_throttled",
        detail="Too many sign-ups from here or for this email; try again later.",
    )


async def prune(session: AsyncSession) -> int:
    """Delete the counts whose window started over a day ago (no window is longer: the
    settings cap them at 86,400 s), so guesses at random emails do not pile up rows."""
    result = await session.execute(
        text("DELETE FROM login_throttle WHERE window_started_at < now() - interval '1 day'")
    )
    return int(getattr(result, "rowcount", 0) or 0)
