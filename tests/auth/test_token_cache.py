"""The verified-access-token cache (issue 13): a hit is only ever what a fresh decode would say.

The clock is faked for both the cache and PyJWT so the expiry boundary is tested to the second.
"""

from __future__ import annotations

import gc
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from stepcoin.auth import tokens
from stepcoin.auth.tokens import (
    LEEWAY_SECONDS,
    AccessClaims,
    InvalidToken,
    _VerifiedTokens,
    clear_token_cache,
    create_access_token,
    decode_access_token,
    token_cache_size,
)
from stepcoin.config import Settings
from stepcoin.db import session_scope
from stepcoin.users.service import set_active
from tests.conftest import bearer, register


def _settings(secret: str | None = None) -> Settings:
    return Settings(env="test", jwt_secret=secret or secrets.token_urlsafe(48))


class FakeClock:
    """One clock for the cache (time.time) and PyJWT (datetime.now)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: float) -> None:
        self.now = start
        clock = self

        class _Time:
            @staticmethod
            def time() -> float:
                return clock.now

        class _DateTime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return datetime.fromtimestamp(clock.now, tz or UTC)

        monkeypatch.setattr(tokens, "time", _Time)
        monkeypatch.setattr(jwt.api_jwt, "datetime", _DateTime)


@pytest.fixture(autouse=True)
def _empty_cache() -> Any:
    clear_token_cache()
    yield
    clear_token_cache()


def _mint(settings: Settings, *, iat: int, exp: int, **extra: Any) -> str:
    payload: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "role": "user",
        "typ": "access",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "jti": secrets.token_hex(8),
        **extra,
    }
    return jwt.encode(payload, settings.signing_secret(), algorithm="HS256")


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = jwt.decode

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counting)
    return calls


def test_a_hit_gives_the_same_claims_without_decoding_again(monkeypatch):
    settings = _settings()
    sid = uuid.uuid4()
    user = uuid.uuid4()
    token = create_access_token(settings, user, "support", session_id=sid)
    calls = _count_decodes(monkeypatch)
    first = decode_access_token(settings, token)
    second = decode_access_token(settings, token)
    assert first == second == AccessClaims(user_id=user, role="support", session_id=sid)
    assert calls[0] == 1
    assert token_cache_size() == 1


def test_expiry_is_respected_to_the_second_exactly_like_a_fresh_decode(monkeypatch):
    settings = _settings()
    clock = FakeClock(monkeypatch, 1_900_000_000.0)
    token = _mint(settings, iat=1_900_000_000, exp=1_900_000_900)
    decode_access_token(settings, token)  # verified and cached
    last_valid = 1_900_000_900 + LEEWAY_SECONDS - 0.001
    clock.now = last_valid
    assert decode_access_token(settings, token).role == "user"  # from the cache
    clear_token_cache()
    assert decode_access_token(settings, token).role == "user"  # fresh: PyJWT agrees
    clock.now = 1_900_000_900 + LEEWAY_SECONDS  # the first second PyJWT refuses it
    with pytest.raises(InvalidToken):
        decode_access_token(settings, token)
    assert token_cache_size() == 0  # the expired entry is gone, nothing new stored


def test_a_token_not_yet_valid_is_not_served_before_its_time(monkeypatch):
    settings = _settings()
    clock = FakeClock(monkeypatch, 1_900_000_000.0)
    token = _mint(settings, iat=1_900_000_000, exp=1_900_000_900)
    decode_access_token(settings, token)
    clock.now = 1_900_000_000 - LEEWAY_SECONDS - 1  # the clock stepped back
    with pytest.raises(InvalidToken):
        decode_access_token(settings, token)


def test_a_forged_or_altered_token_is_never_served_from_the_cache():
    settings = _settings()
    token = create_access_token(settings, uuid.uuid4(), "user")
    decode_access_token(settings, token)
    header, payload, signature = token.split(".")
    # the same claims signed with another key
    other = _settings()
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, other.signing_secret(), algorithm="HS256")
    assert forged.split(".")[1] == payload
    with pytest.raises(InvalidToken):
        decode_access_token(settings, forged)
    # the cached token's signature on elevated claims
    elevated = jwt.encode({**claims, "role": "admin"}, "x" * 64, algorithm="HS256").split(".")[1]
    with pytest.raises(InvalidToken):
        decode_access_token(settings, f"{header}.{elevated}.{signature}")
    # a changed signature character
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(InvalidToken):
        decode_access_token(settings, f"{header}.{payload}.{flipped}")
    assert token_cache_size() == 1  # only the genuine token; refusals are never stored


def test_a_new_signing_secret_empties_the_cache():
    old = _settings()
    token = create_access_token(old, uuid.uuid4(), "user")
    decode_access_token(old, token)
    rotated = _settings()
    with pytest.raises(InvalidToken):
        decode_access_token(rotated, token)
    assert token_cache_size() == 0
    # and a changed audience is a different context too
    same_secret_other_audience = Settings(
        env="test", jwt_secret=old.signing_secret(), jwt_audience="someone-else"
    )
    decode_access_token(old, token)
    with pytest.raises(InvalidToken):
        decode_access_token(same_secret_other_audience, token)


def test_the_cache_is_bounded_and_evicts_the_least_recently_used():
    cache = _VerifiedTokens(2)
    context = ("secret", "iss", "aud")
    claims = AccessClaims(user_id=uuid.uuid4(), role="user")
    cache.get(context, "a", 0)  # sets the context
    for name in ("a", "b"):
        cache.put(context, name, claims, 0, 100)
    assert cache.get(context, "a", 1) == claims  # a is now the most recent
    cache.put(context, "c", claims, 0, 100)
    assert list(cache.entries) == ["a", "c"]
    cache.put(context, "x" * (tokens.MAX_CACHED_TOKEN_LENGTH + 1), claims, 0, 100)
    assert len(cache.entries) == 2


def test_a_cached_token_gives_its_claims_and_costs_the_collector_nothing():
    """The same claims back (session included); the entries are not tracked by the cyclic
    garbage collector, so a full collection of a serving process does not walk them."""
    cache = _VerifiedTokens(10)
    context = ("secret", "iss", "aud")
    cache.get(context, "t", 0)
    for claims in (
        AccessClaims(user_id=uuid.uuid4(), role="admin", session_id=uuid.uuid4()),
        AccessClaims(user_id=uuid.uuid4(), role="user"),
    ):
        cache.put(context, "t", claims, 0, 100)
        assert cache.get(context, "t", 1) == claims
    gc.collect()
    assert not any(gc.is_tracked(entry) for entry in cache.entries.values())


async def test_a_deactivated_user_with_a_cached_token_is_still_refused(app, client):
    account = await register(client)
    headers = bearer(account["access_token"])
    for path in ("/v1/me", "/v1/wallet", "/v1/wallet/transactions"):
        assert (await client.get(path, headers=headers)).status_code == 200
    assert token_cache_size() >= 1
    async with session_scope(app.state.database) as session:
        await set_active(session, uuid.UUID(account["user"]["id"]), False, admin_id=None)
    for path in ("/v1/me", "/v1/wallet", "/v1/wallet/transactions", "/v1/achievements"):
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 401, path
        assert answer.json()["code"] == "invalid_token"
