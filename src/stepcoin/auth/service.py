"""Sign-in rules: register, login, refresh-token rotation with reuse detection, social sign-in."""

from __future__ import annotations

import hmac
import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from stepcoin import global_keys
from stepcoin.auth import throttle, verification
from stepcoin.auth.oidc import IdTokenError, VerifiedIdentity, id_token_verifier
from stepcoin.auth.passwords import DUMMY_HASH, hash_password, password_problem, verify_password
from stepcoin.auth.tokens import create_access_token, hash_refresh_token, new_refresh_token
from stepcoin.config import Settings
from stepcoin.distribution import routed_token, walker_condition
from stepcoin.errors import AppError, Conflict, Forbidden, InvalidInput, Unauthorized
from stepcoin.ratelimit import address_bucket

USER_COLUMNS = (
    "id, email, email_verified_at IS NOT NULL AS email_verified, full_name, phone, auth_method, "
    "timezone, role, created_at, is_active"
)


@dataclass(frozen=True, slots=True)
class ClientInfo:
    address: str | None
    user_agent: str | None


def invalid_credentials() -> Unauthorized:
    return Unauthorized(
        "The email or password is wrong.", code="invalid_credentials", keep_changes=True
    )


def invalid_refresh_token(keep_changes: bool = False) -> Unauthorized:
    return Unauthorized(
        "The refresh token is expired, revoked or unknown; sign in again.",
        code="invalid_refresh_token",
        keep_changes=keep_changes,
    )


def account_unverified() -> Conflict:
    return Conflict(
        "An account with this email exists but its email is not verified; sign in with its "
        "password and verify the email, or reset the password.",
        code="account_unverified",
    )


def account_disabled() -> Forbidden:
    return Forbidden("This account is deactivated.", code="account_disabled")


async def _issue_tokens(
    session: AsyncSession,
    settings: Settings,
    user: dict[str, Any],
    client: ClientInfo,
    *,
    family_id: uuid.UUID | None = None,
    family_expires_at: datetime | None = None,
) -> tuple[dict[str, Any], uuid.UUID]:
    """A fresh access token and refresh token; a new family unless one is being rotated."""
    now = datetime.now(UTC)
    family_id = family_id or uuid.uuid4()
    family_expires_at = family_expires_at or now + timedelta(
        seconds=settings.refresh_token_absolute_ttl_seconds
    )
    expires_at = min(
        now + timedelta(seconds=settings.refresh_token_idle_ttl_seconds), family_expires_at
    )
    raw = routed_token(user["id"], new_refresh_token())  # names its walker: one shard
    token_id = (
        await session.execute(
            text(
                """
                INSERT INTO refresh_tokens
                    (user_id, token_hash, family_id, expires_at, family_expires_at, user_agent, ip)
                VALUES (:user_id, :token_hash, :family_id, :expires_at, :family_expires_at,
                        :user_agent, CAST(:ip AS inet))
                RETURNING id
                """
            ),
            {
                "user_id": user["id"],
                "token_hash": hash_refresh_token(raw),
                "family_id": family_id,
                "expires_at": expires_at,
                "family_expires_at": family_expires_at,
                "user_agent": (client.user_agent or "")[:512] or None,
                "ip": inet_or_none(client.address),
            },
        )
    ).scalar_one()
    pair = {
        "user": _public_user(user),
        "access_token": create_access_token(settings, user["id"], user["role"], family_id),
        "refresh_token": raw,
        "token_type": "bearer",
        "expires_in": settings.access_token_ttl_seconds,
    }
    return pair, token_id


def signup_address(settings: Settings, address: str | None) -> str | None:
    """What an account keeps of the address it was made from (stepcoin.fairplay links the
    accounts made from one address): a digest keyed with the server's signing secret, of the
    address as the rate limits count it (an IPv6 address by its /64), never the address itself.
    None for an unknown address and for the server's own (loopback: no proxy told us the
    client's, so it is not the client's)."""
    inet = inet_or_none(address)
    if inet is None or ipaddress.ip_address(inet).is_loopback:
        return None
    key = settings.signing_secret().encode()
    return hmac.new(key, b"signup-address:" + address_bucket(inet).encode(), "sha256").hexdigest()[
        :32
    ]


def inet_or_none(address: str | None) -> str | None:
    """A client address as PostgreSQL's inet takes it, or None (unknown or not an address)."""
    if not address:
        return None
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _public_user(user: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in user.items() if key != "is_active"}


async def register(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password: str,
    full_name: str,
    phone: str | None,
    client: ClientInfo,
    email_verified: bool = False,
) -> dict[str, Any]:
    """A new account and its first tokens; a verification mail goes out in the same
    transaction unless the caller vouches for the email (`email_verified`: the demo's walkers,
    whose made-up addresses nobody reads)."""
    problem = password_problem(password)
    if problem:
        raise InvalidInput(f"password {problem}.", code="weak_password")
    email = email.strip().lower()
    await throttle.reserve_signup(session, email, client.address)  # before the argon2 hash
    password_hash = await run_in_threadpool(hash_password, password, settings.password_hashing)
    user = await _insert_user(
        session,
        email=email,
        password_hash=password_hash,
        full_name=full_name,
        phone=phone,
        auth_method="email",
        email_verified=email_verified,
        signup_address=signup_address(settings, client.address),
    )
    if user is None:
        raise Conflict("An account with this email already exists.", code="email_taken")
    if not email_verified:  # same transaction: no new account without its mail
        await verification.send_verification_mail(
            session, settings, user_id=user["id"], email=user["email"]
        )
    pair, _ = await _issue_tokens(session, settings, user, client)
    return pair


async def _insert_user(
    session: AsyncSession,
    *,
    email: str,
    password_hash: str | None,
    full_name: str,
    phone: str | None,
    auth_method: str,
    email_verified: bool = False,
    signup_address: str | None = None,
) -> dict[str, Any] | None:
    """Claim the email (global_keys: issue 19 item 4), then insert the user and its wallet in
    one statement; None when the email is taken. Two sign-ups with one email at once: the
    second claim waits for the first transaction and then finds the email taken."""
    user_id = uuid.uuid4()
    if not await global_keys.claim(session, "email", email, user_id):
        return None
    row = (
        (
            await session.execute(
                text(
                    f"""
                    WITH new_user AS (
                        INSERT INTO users (id, email, password_hash, full_name, phone,
                                           auth_method, email_verified_at, signup_address)
                        VALUES (:id, :email, :password_hash, :full_name, :phone, :auth_method,
                                CASE WHEN :email_verified THEN now() END, :signup_address)
                        RETURNING {USER_COLUMNS}
                    ), new_wallet AS (
                        INSERT INTO wallets (user_id) SELECT id FROM new_user
                    )
                    SELECT * FROM new_user
                    """
                ),
                {
                    "id": user_id,
                    "email": email,
                    "password_hash": password_hash,
                    "full_name": full_name,
                    "phone": phone,
                    "auth_method": auth_method,
                    "email_verified": email_verified,
                    "signup_address": signup_address,
                },
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def _user_by_email(session: AsyncSession, email: str) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                text(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = :email"),
                {"email": email},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def login(
    session: AsyncSession, settings: Settings, *, email: str, password: str, client: ClientInfo
) -> dict[str, Any]:
    email = email.strip().lower()
    # counted (and committed) before the password is checked: parallel guesses see each other
    reservation, keys = await throttle.reserve_login(session, email, client.address)
    user = await _user_by_email(session, email)
    stored_hash = user["password_hash"] if user and user["password_hash"] else DUMMY_HASH
    ok = await run_in_threadpool(verify_password, stored_hash, password)
    if not ok or user is None or not user["password_hash"]:
        raise invalid_credentials()  # the reservation stays: it is the failure's count
    if not user["is_active"]:
        raise account_disabled()
    await throttle.password_accepted(session, reservation, keys)
    user.pop("password_hash")
    pair, _ = await _issue_tokens(session, settings, user, client)
    return pair


async def refresh(
    session: AsyncSession, settings: Settings, *, refresh_token: str, client: ClientInfo
) -> dict[str, Any]:
    """Rotate: the presented token is spent; a spent token presented again kills its family."""
    token_hash = hash_refresh_token(refresh_token)
    where, params = _token_lookup(refresh_token, token_hash)
    spent = (
        (
            await session.execute(
                text(
                    f"""
                    UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = 'rotated'
                    WHERE {where} AND revoked_at IS NULL
                      AND expires_at > now() AND family_expires_at > now()
                    RETURNING id, user_id, family_id, family_expires_at
                    """
                ),
                params,
            )
        )
        .mappings()
        .first()
    )
    if spent is None:
        await _revoke_family_if_reused(session, refresh_token, token_hash)
        raise invalid_refresh_token(keep_changes=True)
    user_row = (
        (
            await session.execute(
                text(f"SELECT {USER_COLUMNS} FROM users WHERE id = :user_id"),
                {"user_id": spent["user_id"]},
            )
        )
        .mappings()
        .first()
    )
    if user_row is None or not user_row["is_active"]:
        await revoke_family(session, spent["family_id"], "user_inactive")
        raise invalid_refresh_token(keep_changes=True)
    pair, new_id = await _issue_tokens(
        session,
        settings,
        dict(user_row),
        client,
        family_id=spent["family_id"],
        family_expires_at=spent["family_expires_at"],
    )
    await session.execute(
        text(
            "UPDATE refresh_tokens SET replaced_by = :new_id "
            "WHERE user_id = :user_id AND id = :old_id"
        ),
        {"new_id": new_id, "old_id": spent["id"], "user_id": spent["user_id"]},
    )
    return pair


def _token_lookup(token: str, token_hash: bytes) -> tuple[str, dict[str, Any]]:
    """The WHERE clause that finds a refresh token: by (user_id, token_hash), one shard, when
    the token names its walker (issue 19 item 4); by its hash alone for one issued before."""
    walker, user_id = walker_condition(token)
    return f"{walker}token_hash = :token_hash", {"token_hash": token_hash, "user_id": user_id}


async def _revoke_family_if_reused(session: AsyncSession, token: str, token_hash: bytes) -> None:
    """RFC 9700 reuse detection: an already-rotated token means the family is compromised."""
    where, params = _token_lookup(token, token_hash)
    row = (
        await session.execute(
            text(f"SELECT family_id, revoked_reason FROM refresh_tokens WHERE {where}"), params
        )
    ).first()
    if row is not None and row.revoked_reason == "rotated":
        await revoke_family(session, row.family_id, "reuse_detected")


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, reason: str) -> None:
    await session.execute(
        text(
            "UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = :reason "
            "WHERE family_id = :family_id AND revoked_at IS NULL"
        ),
        {"family_id": family_id, "reason": reason},
    )


async def revoke_all_sessions(session: AsyncSession, user_id: uuid.UUID, reason: str) -> int:
    """Ends every session of a user (deactivation, password change)."""
    result = await session.execute(
        text(
            "UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = :reason "
            "WHERE user_id = :user_id AND revoked_at IS NULL"
        ),
        {"user_id": user_id, "reason": reason},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def end_sessions(
    session: AsyncSession, user_id: uuid.UUID, reason: str, *, keep_family: uuid.UUID | None = None
) -> int:
    """Ends every session of a user but `keep_family` (the device that asked): the refresh
    families are revoked, and console sessions begun before now stop being accepted
    (`users.sessions_valid_after`). For password changes and resets, deletion, create-admin."""
    await session.execute(
        text("UPDATE users SET sessions_valid_after = now(), updated_at = now() WHERE id = :id"),
        {"id": user_id},
    )
    result = await session.execute(
        text(
            "UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = :reason "
            "WHERE user_id = :user_id AND revoked_at IS NULL "
            "AND family_id IS DISTINCT FROM CAST(:keep AS uuid)"
        ),
        {"user_id": user_id, "reason": reason, "keep": keep_family},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def logout(session: AsyncSession, *, refresh_token: str) -> None:
    """Ends the session the token belongs to; unknown tokens are accepted silently."""
    where, params = _token_lookup(refresh_token, hash_refresh_token(refresh_token))
    row = (
        await session.execute(text(f"SELECT family_id FROM refresh_tokens WHERE {where}"), params)
    ).first()
    if row is not None:
        await revoke_family(session, row.family_id, "logout")


async def social_login(
    session: AsyncSession,
    settings: Settings,
    *,
    provider: str,
    id_token: str,
    nonce: str | None,
    full_name: str | None,
    client: ClientInfo,
) -> dict[str, Any]:
    try:
        identity = await id_token_verifier.verify(settings, provider, id_token, nonce)
    except IdTokenError as exc:
        raise Unauthorized(f"The ID token was refused: {exc}", code="invalid_id_token") from exc
    user = await _user_for_identity(
        session, identity, full_name, signup_address(settings, client.address)
    )
    if not user["is_active"]:
        raise account_disabled()
    pair, _ = await _issue_tokens(session, settings, user, client)
    return pair


async def _user_for_identity(
    session: AsyncSession,
    identity: VerifiedIdentity,
    full_name: str | None,
    address: str | None = None,
) -> dict[str, Any]:
    """The linked user; else link a verified email's account; else create one."""
    linked = (
        (
            await session.execute(
                text(
                    f"""
                    SELECT {", ".join("u." + c.strip() for c in USER_COLUMNS.split(","))}
                    FROM user_identities i JOIN users u ON u.id = i.user_id
                    WHERE i.provider = :provider AND i.subject = :subject
                    """
                ),
                {"provider": identity.provider, "subject": identity.subject},
            )
        )
        .mappings()
        .first()
    )
    if linked is not None:
        return dict(linked)
    user: dict[str, Any] | None = None
    if identity.email and identity.email_verified:
        user = await _user_by_email(session, identity.email)
        if user is not None:
            user.pop("password_hash")
            if not user["email_verified"]:
                # issue 12 hole 1: whoever registered this email with a password may not own
                # it; joining the identity would let their password into the owner's account
                raise account_unverified()
    if user is None:
        if not identity.email:
            raise AppError(
                "The ID token carries no email address.", code="email_required", status=422
            )
        user = await _insert_user(
            session,
            email=identity.email,
            password_hash=None,
            full_name=(full_name or identity.name or identity.email.split("@")[0])[:200],
            phone=None,
            auth_method=identity.provider,
            email_verified=identity.email_verified,
            signup_address=address,
        )
        if user is None:  # an unverified email that belongs to someone else
            raise Conflict(
                "An account with this email exists; sign in with its password first.",
                code="email_taken",
            )
    # the (provider, subject) pair's one owner is in global_keys (issue 19 item 4)
    key = global_keys.identity_key(identity.provider, identity.subject)
    if not await global_keys.claim(session, "identity", key, user["id"]):
        raise Conflict("This sign-in is being linked by another request; retry.", code="retry")
    inserted = (
        await session.execute(
            text(
                "INSERT INTO user_identities (user_id, provider, subject, email) "
                "VALUES (:user_id, :provider, :subject, :email) "
                "ON CONFLICT (user_id, provider, subject) DO NOTHING RETURNING user_id"
            ),
            {
                "user_id": user["id"],
                "provider": identity.provider,
                "subject": identity.subject,
                "email": identity.email,
            },
        )
    ).first()
    if inserted is None:
        raise Conflict("This sign-in is being linked by another request; retry.", code="retry")
    return user


async def recent_app_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int
) -> list[dict[str, Any]]:
    """A user's latest app sessions (refresh tokens), newest first, for staff to read."""
    rows = await session.execute(
        text(
            "SELECT issued_at, expires_at, revoked_at, revoked_reason, user_agent, "
            "host(ip) AS ip FROM refresh_tokens WHERE user_id = :u "
            "ORDER BY issued_at DESC, id DESC LIMIT :limit"
        ),
        {"u": user_id, "limit": limit},
    )
    return [dict(r) for r in rows.mappings()]
