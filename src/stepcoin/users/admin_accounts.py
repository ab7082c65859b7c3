"""Creating the first admins from the command line."""

from __future__ import annotations

from sqlalchemy import text

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
            row = (
                await session.execute(
                    text(
                        """
                        WITH upserted AS (
                            INSERT INTO users (email, password_hash, full_name, role, auth_method)
                            VALUES (:email, :hash, :full_name, :role, 'email')
                            ON CONFLICT (email) DO UPDATE
                                SET role = EXCLUDED.role, password_hash = EXCLUDED.password_hash,
                                    is_active = true, updated_at = now()
                            RETURNING id, (xmax = 0) AS created
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
                    {"email": email, "hash": password_hash, "full_name": full_name, "role": role},
                )
            ).one()
            if not row.created:  # a new password: every earlier session of the account ends
                await end_sessions(session, row.id, "password_changed")
            return bool(row.created)
    finally:
        await database.dispose()
