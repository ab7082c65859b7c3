"""Deleting an account, in one transaction.

Order of work (every step in the request's one transaction, so it all happens or nothing):
1. the wallet row, then the user row, are locked (the wallet first, as every order and posting
   locks it: an order placed at the same moment waits, then finds the account gone);
2. the walker proves it is them (password, or a fresh Google/Apple ID token of a linked
   identity); a wrong credential changes nothing but the failure counter;
3. orders not yet sent to Shopify are cancelled and refunded through the shop's own
   refund_order (the wallet's one posting function, a unique refund reference: once);
   orders Shopify already has stay as they are (Shopify is fulfilling them);
4. every order's shipping address is erased to its country, the step records lose their
   device identifiers; referrals not yet paid end (`cancelled`) and the referral code goes;
   friendships, friend invitations, friend requests and blocks go (reports made stay);
   the walker leaves every open challenge (the entry fee refunded before the start, left in
   the pool after it) and their challenge invitations go;
   push devices, notifications and notification preferences go;
   every session ends (refresh families revoked, console sessions refused), and their devices
   and addresses are erased;
5. the user row becomes a tombstone (users.erasure), its identities removed;
6. an Apple account's tokens are revoked with Apple by a job deferred in this transaction;
7. the audit log gets `account.deleted`, with counts and ids but nothing personal.
The ledger (append-only), the orders and the audit rows stay, pointing at the tombstone id.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.accounts.schemas import DeleteAccountIn
from stepcoin.auth import credentials
from stepcoin.auth import service as auth_service
from stepcoin.auth import sessions as auth_sessions
from stepcoin.challenges import service as challenges
from stepcoin.config import Settings
from stepcoin.errors import Conflict, InvalidInput, account_gone
from stepcoin.fairplay import links as fairplay_links
from stepcoin.notify import service as notify
from stepcoin.queue import AUTH_REVOKE_APPLE_TOKEN, defer_in_transaction
from stepcoin.referrals import service as referrals
from stepcoin.shop import orders as shop_orders
from stepcoin.shop import privacy as shop_privacy
from stepcoin.social import groups as social_groups
from stepcoin.social import service as social
from stepcoin.steps import reports as step_reports
from stepcoin.users import erasure
from stepcoin.wallet import repository as wallet_repository

logger = logging.getLogger("stepcoin.accounts")

SENT_STATUSES = ("submitted", "fulfilled", "shipped", "delivered")
CANCEL_REASON = "the walker deleted the account"


@dataclass
class Deletion:
    user_id: uuid.UUID
    orders_cancelled: list[uuid.UUID] = field(default_factory=list)
    coins_refunded: int = 0
    orders_kept: list[uuid.UUID] = field(default_factory=list)
    sessions_ended: int = 0
    referrals_cancelled: int = 0
    friends_removed: int = 0
    challenges_left: int = 0
    apple_revocation: str | None = None


def _provider_for(account: erasure.Account, asked: str | None) -> str:
    if asked is not None:
        return asked
    if account.auth_method in ("google", "apple"):
        return account.auth_method
    if len(account.providers) == 1:
        return account.providers[0]
    raise InvalidInput(
        "Say which provider the id_token is from (provider: google or apple).",
        code="provider_required",
    )


async def delete_account(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, body: DeleteAccountIn
) -> Deletion:
    await wallet_repository.lock_wallet(session, user_id)
    account = await erasure.lock_account(session, user_id)
    if account is None:
        raise account_gone()
    if account.role != "user":
        raise Conflict(
            "A staff account cannot delete itself here; an administrator must first make it "
            "a plain walker.",
            code="staff_account",
        )
    apple_client_id: str | None = None
    if body.password is not None:
        method = "password"
        await credentials.check_current_password(
            session, user_id, account.password_hash, body.password
        )
    else:
        assert body.id_token is not None
        method = _provider_for(account, body.provider)
        linked = await credentials.check_identity_token(
            session, settings, user_id, method, body.id_token
        )
        if linked.provider == "apple":
            apple_client_id = linked.audience

    deletion = Deletion(user_id)
    by_status = await shop_privacy.orders_by_status(session, user_id)
    unsent = [
        (status, order_id)
        for status in (shop_privacy.UNSENT, shop_privacy.HELD)
        for order_id in by_status.get(status, [])
    ]
    for status, order_id in unsent:
        order = await shop_orders.refund_order(
            session,
            order_id,
            new_status="cancelled",
            reason=CANCEL_REASON,
            allowed_from={status},
            user_id=user_id,
        )
        deletion.orders_cancelled.append(order_id)
        deletion.coins_refunded += int(order["total_coins"])
    deletion.orders_kept = [i for status in SENT_STATUSES for i in by_status.get(status, [])]
    await shop_privacy.erase_shipping_addresses(session, user_id)
    await step_reports.forget_devices(session, user_id)
    await fairplay_links.forget(session, user_id)
    deletion.referrals_cancelled = await referrals.forget(session, user_id)
    forgotten = await social.forget(session, user_id, account.email)
    deletion.friends_removed = forgotten["friendships"] // 2
    deletion.challenges_left = await challenges.forget(session, user_id)
    await notify.forget(session, user_id)
    # owned groups go to their oldest admin (else member), or away when alone (docs/groups.md)
    await social_groups.forget(session, user_id)

    deletion.sessions_ended = await auth_service.end_sessions(session, user_id, "account_deleted")
    await auth_sessions.forget_devices(session, user_id, account.email)
    await erasure.tombstone(session, user_id)

    if "apple" in account.providers:
        deletion.apple_revocation = await _revoke_with_apple(
            session, settings, apple_client_id, body.authorization_code
        )

    await audit.record(
        session,
        admin_id=None,
        action="account.deleted",
        entity_type="user",
        entity_id=str(user_id),
        before={"is_active": True},
        after={"is_active": False, "deleted": True},
        extra={
            "by": "the walker",
            "reauthenticated_with": method,
            "orders_cancelled": [str(i) for i in deletion.orders_cancelled],
            "coins_refunded": deletion.coins_refunded,
            "orders_kept": [str(i) for i in deletion.orders_kept],
            "sessions_ended": deletion.sessions_ended,
            "referrals_cancelled": deletion.referrals_cancelled,
            "friends_removed": deletion.friends_removed,
            "challenges_left": deletion.challenges_left,
            "apple_revocation": deletion.apple_revocation,
        },
    )
    return deletion


async def _revoke_with_apple(
    session: AsyncSession,
    settings: Settings,
    client_id: str | None,
    authorization_code: str | None,
) -> str:
    """Queue the revocation of the Apple tokens; the outcome word goes to the audit log."""
    if not settings.apple_revocation_configured:
        logger.warning("apple account deleted without revocation: not configured")
        return "not_configured"
    if not authorization_code:
        return "no_authorization_code"
    client_id = client_id or next(iter(settings.apple_client_ids), None)
    if client_id is None:
        return "not_configured"
    await defer_in_transaction(
        session,
        AUTH_REVOKE_APPLE_TOKEN,
        {"client_id": client_id, "authorization_code": authorization_code},
        queue="auth",
    )
    return "queued"
