"""Creating the first admins from the command line."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from stepcoin import global_keys
from stepcoin.auth.passwords import hash_password, password_problem
from stepcoin.auth.service import end_sessions
from stepcoin.db import Database, session_scope


async def create_or_promote_admin(
    database_url: str, email: str, password: str, full_name: str, role: str = "admin"
) -> bool:
    """Returns True when a new account was created, False when an existing one was promoted."""
    problem = password_problem(password)
    if problem:
        raise ValueError(f"password {problem}")
    email = email.strip().lower()
    password_hash = hash_password(password)
    database = Database(database_url, pool_size=1)
    try:
        async with session_scope(database) as session:
            # the email's one owner is claimed in global_keys (issue 19 item 4); an account
            # that has it already is promoted
            known = (
                await session.execute(
                    text("SELECT id FROM users WHERE email = :email"), {"email": email}
                )
            ).scalar_one_or_none()
            new_id = uuid.uuid4()
            if known is None and not await global_keys.claim(session, "email", email, new_id):
                known = await global_keys.owner(session, "email", email)
            if known is not None:
                await global_keys.claim(session, "email", email, known)  # as before 0039
            row = (
                await session.execute(
                    text(
                        """
                        WITH promoted AS (
                            UPDATE users SET role = :role, password_hash = :hash,
                                             is_active = true, updated_at = now()
                            WHERE id = :known
                            RETURNING id, false AS created
                        ), inserted AS (
                            INSERT INTO users
                                (id, email, password_hash, full_name, role, auth_method)
                            SELECT :new_id, :email, :hash, :full_name, :role, 'email'
                            WHERE CAST(:known AS uuid) IS NULL
                            RETURNING id, true AS created
                        ), upserted AS (
                            SELECT * FROM promoted UNION ALL SELECT * FROM inserted
                        ), wallet AS (
                            INSERT INTO wallets (user_id) SELECT id FROM upserted
                            ON CONFLICT (user_id) DO NOTHING
                        ), audit AS (
                            INSERT INTO admin_logs
                                (admin_id, action, entity_type, entity_id, changes)
                            SELECT NULL, 'cli.create_admin', 'user', id::text,
                                   jsonb_build_object('after', jsonb_build_object('role', :role))
                            FROM upserted
                        )
                        SELECT id, created FROM upserted
                        """
                    ),
                    {
                        "email": email,
                        "hash": password_hash,
                        "full_name": full_name,
                        "role": role,
                        "known": known,
                        "new_id": new_id,
                    },
                )
            ).one()
            if not row.created:  # a new password: every earlier session of the account ends
                await end_sessions(session, row.id, "password_changed")
            return bool(row.created)
    finally:
        await database.dispose()
