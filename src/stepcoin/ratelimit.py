"""Rate limits of the routes that cost work or can be abused (issue 14, item 4).

Each limited route belongs to a policy (`sync`, `orders`, `exports`, `appeals`, `referrals`,
`friend_codes`, `mails`, `sessions`), counted per account (the signed-in caller) and per
client address; the limits are runtime settings `ratelimit.<policy>_per_account` and
`ratelimit.<policy>_per_address`, written as `<amount>/<period>` (`60/minute`, `5/hour`,
`20/15 minutes`: the notation of the `limits` library, which parses them). Sign-up and
sign-in have their own counts (auth/throttle.py).

The counting is a token bucket in the form of GCRA (the generic cell rate algorithm): a key
holds one timestamp, the "theoretical arrival time" up to which its quota is spent. A limit
of N per W seconds lets N requests through at once, then one every W/N seconds: never more
than N in a burst, on average never more than N per W. One statement takes a request on all
of its keys (the account's and the address's) and answers for each whether it fit, what is
left and when the bucket is full again; a refusal on any key gives the others back (a second
statement, on refusals only). The buckets live in an UNLOGGED table: shared by every API
process, no WAL and so no flush at commit (a counter is not worth one; a crash or a restore
empties them, which merely forgives). A bucket whose timestamp has passed is full, exactly as
if it were absent, which is what `prune` deletes.

Answers (the fields of the IETF draft "RateLimit header fields for HTTP"): a refused request
gets 429 problem+json with `Retry-After` and, like every answer of a limited route,
`RateLimit-Policy: "<policy>";q=<amount>;w=<seconds>` and `RateLimit: "<policy>";r=<left>;
t=<seconds until full>` for the key with the least left.

`RateLimitGate` is the ASGI middleware that applies the table of limited routes before any
route (or fast path) runs. It knows no domain: main.py gives it the routes, declared beside
each domain's router, and how to tell the caller's account from a request.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from sqlalchemy import Boolean, Double, Text
from sqlalchemy.orm import Mapped, mapped_column
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepcoin.db import Base
from stepcoin.errors import problem_response
from stepcoin.runtime_settings.service import runtime_settings

logger = logging.getLogger("stepcoin.ratelimit")

_MAX_KEY_CHARS = 200


class RateLimitBucket(Base):
    """One key's bucket (UNLOGGED: see the module's docstring)."""

    __tablename__ = "rate_limit_buckets"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    spent_until: Mapped[float] = mapped_column(Double)  # epoch seconds
    step: Mapped[float] = mapped_column(Double)  # seconds one request costs: period / amount
    span: Mapped[float] = mapped_column(Double)  # the period, in seconds
    allowed: Mapped[bool] = mapped_column(Boolean)  # whether the last request fit


@dataclass(frozen=True, slots=True)
class LimitedRoute:
    """A route under a policy (`sync`: the settings `ratelimit.sync_per_account` and
    `ratelimit.sync_per_address`); `code` is the problem code of its 429 (a route whose
    clients know an older code keeps it)."""

    method: str
    path: str  # a path template: `/v1/orders/{order_id}/cancel`
    policy: str
    code: str = "rate_limited"
    # True: a signed-in route, counted per account and per address (a request without a valid
    # token is not counted: the route answers 401); False: a route for callers not signed in,
    # counted per address only
    per_account: bool = True


@dataclass(frozen=True, slots=True)
class Quota:
    """One key's answer: whether the request fit, what is left, seconds until full."""

    policy: str
    amount: int
    window: int
    allowed: bool
    remaining: int
    reset: float
    retry_after: float


def setting_key(policy: str, scope: str) -> str:
    """`ratelimit.sync_per_account` (scope `account`) or `..._per_address`."""
    return f"ratelimit.{policy}_per_{scope}"


@functools.lru_cache(maxsize=256)
def parse_limit(value: str) -> RateLimitItem:
    """`60/minute` → the limits library's item (amount, period); ValueError when not one."""
    item = parse(value)
    if item.amount < 1:
        raise ValueError(f"{value!r}: the amount must be at least 1")
    return item


@functools.lru_cache(maxsize=4096)
def address_bucket(address: str | None) -> str:
    """The client address as counted: an IPv6 address by its /64 (one subscriber's network,
    whose 2^64 addresses would otherwise each get their own count), IPv4 as it is.

    Cached (a pure function of the string): parsing and printing the address cost 4-10 µs
    an IPv4 and ~50 µs an IPv6 request, on every limited request."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def bucket_key(policy: str, scope: str, who: str) -> str:
    """`sync:account:<id>`; a digest when long, so any input makes a storable key."""
    key = f"{policy}:{scope}:{who}"
    if len(key) > _MAX_KEY_CHARS or "\x00" in key:
        key = (
            f"{policy}:{scope}:sha256=" + hashlib.sha256(who.encode("utf-8", "replace")).hexdigest()
        )
    return key


def headers(quota: Quota) -> list[tuple[str, str]]:
    """The IETF draft's fields for one key's quota (and Retry-After when refused)."""
    fields = [
        ("RateLimit-Policy", f'"{quota.policy}";q={quota.amount};w={quota.window}'),
        ("RateLimit", f'"{quota.policy}";r={quota.remaining};t={max(0, math.ceil(quota.reset))}'),
    ]
    if not quota.allowed:
        fields.insert(0, ("Retry-After", str(max(1, math.ceil(quota.retry_after)))))
    return fields


# Take one request on every key at once. `step` is the seconds one request costs (period /
# amount), `span` the period: a request fits when the bucket's spent-until time, moved by one
# step, is at most one period ahead of now. Keys come sorted, so two requests lock the rows in
# the same order and never deadlock. The row keeps the step and span it was last taken with,
# which is also how ON CONFLICT reads them (EXCLUDED).
_TAKE = """
INSERT INTO rate_limit_buckets AS b (key, spent_until, step, span, allowed)
SELECT a.key, extract(epoch FROM now()) + a.step, a.step, a.span, a.step <= a.span
FROM unnest($1::text[], $2::float8[], $3::float8[]) AS a(key, step, span)
ORDER BY a.key
ON CONFLICT (key) DO UPDATE SET
    allowed = greatest(b.spent_until, extract(epoch FROM now())) + excluded.step
              <= extract(epoch FROM now()) + excluded.span + 1e-6,
    spent_until = CASE
        WHEN greatest(b.spent_until, extract(epoch FROM now())) + excluded.step
             <= extract(epoch FROM now()) + excluded.span + 1e-6
        THEN greatest(b.spent_until, extract(epoch FROM now())) + excluded.step
        ELSE b.spent_until END,
    step = excluded.step,
    span = excluded.span
RETURNING b.key, b.allowed, b.spent_until - extract(epoch FROM now()) AS ahead
"""

# A refusal on one key: give the request back on the keys it fit (one step each, never below
# now: a bucket is never fuller than full). The rows are locked in key order first, as _TAKE
# locks them (an UPDATE ... FROM locks in its join's order: a deadlock against a take).
_GIVE_BACK = """
WITH locked AS (
    SELECT b.key FROM rate_limit_buckets b WHERE b.key = ANY($1::text[])
    ORDER BY b.key FOR UPDATE
)
UPDATE rate_limit_buckets AS b
SET spent_until = greatest(extract(epoch FROM now()), b.spent_until - r.step)
FROM unnest($1::text[], $2::float8[]) AS r(key, step)
WHERE b.key = r.key AND b.key IN (SELECT key FROM locked)
"""


@dataclass(frozen=True, slots=True)
class _Ask:
    key: str
    policy: str  # as the headers name it: `sync_per_account` (the setting's last part)
    item: RateLimitItem

    @property
    def span(self) -> float:
        return float(self.item.get_expiry())

    @property
    def step(self) -> float:
        return self.span / self.item.amount


async def take(driver: Any, asks: Sequence[_Ask]) -> list[Quota]:
    """Take one request on each key (over a bare asyncpg connection, autocommit)."""
    ordered = sorted(asks, key=lambda a: a.key)
    rows = await driver.fetch(
        _TAKE, [a.key for a in ordered], [a.step for a in ordered], [a.span for a in ordered]
    )
    by_key = {row["key"]: row for row in rows}
    quotas = []
    for ask in ordered:
        row = by_key[ask.key]
        ahead = max(0.0, float(row["ahead"]))
        quotas.append(
            Quota(
                policy=ask.policy,
                amount=ask.item.amount,
                window=round(ask.span),
                allowed=bool(row["allowed"]),
                remaining=max(0, math.floor((ask.span - ahead) / ask.step + 1e-9)),
                reset=ahead,
                retry_after=ahead + ask.step - ask.span,
            )
        )
    if not all(q.allowed for q in quotas):
        fitted = [(a.key, a.step) for a, q in zip(ordered, quotas, strict=True) if q.allowed]
        if fitted:
            await driver.execute(_GIVE_BACK, [k for k, _ in fitted], [s for _, s in fitted])
    return quotas


def binding(quotas: Iterable[Quota]) -> Quota:
    """The quota to report: a refusing one with the longest wait, else the least left."""
    listed = list(quotas)
    refused = [q for q in listed if not q.allowed]
    if refused:
        return max(refused, key=lambda q: q.retry_after)
    return min(listed, key=lambda q: (q.remaining, -q.reset))


async def prune(driver: Any) -> int:
    """Delete the full buckets (their spent-until time has passed: the same as absent)."""
    status = await driver.execute(
        "DELETE FROM rate_limit_buckets WHERE spent_until < extract(epoch FROM now())"
    )
    return int(str(status).rsplit(" ", 1)[-1] or 0)


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^/{}]+\})", template)
    body = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{body}$")


def _problem(route: LimitedRoute, quota: Quota, path: str) -> Any:
    seconds = max(1, math.ceil(quota.retry_after))
    whose = "this account" if quota.policy.endswith("_per_account") else "this address"
    return problem_response(
        429,
        route.code,
        "Too many requests",
        f"Too many requests of this kind from {whose} (at most {quota.amount} in "
        f"{quota.window} s); try again in {seconds} s.",
        instance=path,
        extra={"retry_after": seconds, "policy": quota.policy},
        headers=dict(headers(quota)),
    )


AccountOf = Callable[[Scope], str | None]


class RateLimitGate:
    """ASGI middleware: count each request of a limited route on its keys; 429 when a key is
    at its limit, else the RateLimit fields on the route's own answer.

    If the buckets cannot be reached (the database is down, the table is missing), the request
    goes on unlimited: the route answers, and its own failure, if any, is the one reported.
    """

    def __init__(
        self, app: ASGIApp, *, routes: Sequence[LimitedRoute], account_of: AccountOf
    ) -> None:
        self.app = app
        self.account_of = account_of
        self.exact: dict[tuple[str, str], LimitedRoute] = {}
        self.templated: list[tuple[str, re.Pattern[str], LimitedRoute]] = []
        for route in routes:
            if "{" in route.path:
                self.templated.append((route.method, _pattern(route.path), route))
            else:
                self.exact[(route.method, route.path)] = route

    def _route(self, scope: Scope) -> LimitedRoute | None:
        method, path = scope["method"], scope["path"]
        route = self.exact.get((method, path))
        if route is None:
            for wanted, pattern, candidate in self.templated:
                if wanted == method and pattern.match(path):
                    return candidate
        return route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        quota = await self._take(scope, route)
        if quota is None:
            await self.app(scope, receive, send)
            return
        if not quota.allowed:
            await _problem(route, quota, scope["path"])(scope, receive, send)
            return
        fields = [(k.lower().encode(), v.encode()) for k, v in headers(quota)]

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *fields]}
            await send(message)

        await self.app(scope, receive, send_with_fields)

    async def _take(self, scope: Scope, route: LimitedRoute) -> Quota | None:
        whos = self._whos(scope, route)
        if not whos:
            return None
        try:
            pool = await scope["app"].state.database.fast_pool()
            async with pool.acquire() as driver:
                values = runtime_settings.cached() or await runtime_settings.all_raw(driver)
                asks = [
                    _Ask(
                        bucket_key(route.policy, kind, who),
                        f"{route.policy}_per_{kind}",
                        parse_limit(str(values[setting_key(route.policy, kind)])),
                    )
                    for kind, who in whos
                ]
                return binding(await take(driver, asks))
        except Exception:  # no buckets, no refusal: the route answers
            logger.warning("rate limits not applied: the buckets are not reachable", exc_info=True)
            return None

    def _whos(self, scope: Scope, route: LimitedRoute) -> list[tuple[str, str]]:
        """The keys a request counts on, as (kind, who)."""
        client = scope.get("client")
        whos = [("address", address_bucket(client[0] if client else None))]
        if route.per_account:
            account = self.account_of(scope)
            if account is None:
                return []  # not signed in: the route's 401, which costs no work, answers
            whos.append(("account", account))
        return whos
