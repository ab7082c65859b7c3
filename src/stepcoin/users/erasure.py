"""Account deletion's part in the users domain: the user row becomes a tombstone.

The row stays, because the ledger, orders and audit rows point at its id; what named a person
goes: the email becomes deleted+<id>@deleted.invalid (so the real one can register again), the
name "Deleted walker", and phone, password, second factor and verification are cleared. The
linked Google/Apple identities are removed so that they can sign up again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import global_keys

TOMBSTONE_NAME = "Deleted walker"
TOMBSTONE_DOMAIN = "deleted.invalid"  # RFC 2606: .invalid never resolves, no mail can leave


def tombstone_email(user_id: uuid.UUID) -> str:
    return f"deleted+{user_id}@{TOMBSTONE_DOMAIN}"


@dataclass(frozen=True, slots=True)
class Account:
    id: uuid.UUID
    email: str
    role: str
    auth_method: str
    password_hash: str | None
    providers: tuple[str, ...]


async def lock_account(session: AsyncSession, user_id: uuid.UUID) -> Account | None:
    """The active, not deleted account, its row locked; None otherwise."""
    row = (
        await session.execute(
            text(
                "SELECT id, email, role, auth_method, password_hash, "
                "ARRAY(SELECT provider FROM user_identities i WHERE i.user_id = u.id "
                "      ORDER BY provider) AS providers "
                "FROM users u WHERE id = :id AND is_active AND deleted_at IS NULL FOR UPDATE"
            ),
            {"id": user_id},
        )
    ).first()
    if row is None:
        return None
    return Account(
        row.id, row.email, row.role, row.auth_method, row.password_hash, tuple(row.providers)
    )


async def tombstone(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Erase the personal data and mark the account deleted and inactive, in one statement;
    then drop the linked identities."""
    await session.execute(
        text(
            """
            UPDATE users SET email = :email, full_name = :name, phone = NULL,
                   password_hash = NULL, totp_secret = NULL, totp_enabled_at = NULL,
                   totp_last_step = NULL, email_verified_at = NULL, timezone = 'UTC',
                   role = 'user', is_active = false, deleted_at = now(), updated_at = now(),
                   signup_address = NULL
            WHERE id = :id
            """
        ),
        {"id": user_id, "email": tombstone_email(user_id), "name": TOMBSTONE_NAME},
    )
    await session.execute(text("DELETE FROM user_identities WHERE user_id = :id"), {"id": user_id})
    # the email and the Google/Apple subjects are free again (global_keys, issue 19 item 4);
    # the tombstone's address is claimed like any other
    await session.execute(
        text("DELETE FROM global_keys WHERE user_id = :id AND kind IN ('email', 'identity')"),
        {"id": user_id},
    )
    await global_keys.claim(session, "email", tombstone_email(user_id), user_id)


async def identities(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, object]]:
    """The linked Google/Apple accounts (no secret is stored for them)."""
    rows = await session.execute(
        text(
            "SELECT provider, subject, email, created_at FROM user_identities "
            "WHERE user_id = :id ORDER BY created_at, id"
        ),
        {"id": user_id},
    )
    return [dict(row) for row in rows.mappings()]
