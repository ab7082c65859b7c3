"""Friends by consent (issue 17, item 1; docs/friends.md): invitations, friendships, requests,
blocks and reports of a walker to the moderation queue; groups (item 2; docs/groups.md)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

REQUEST_STATUSES = ("pending", "accepted", "declined", "cancelled")
REPORT_STATUSES = ("open", "resolved")


def _user(ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey("users.id", ondelete=ondelete)


class FriendInvitation(Base):
    """An invitation link; only the SHA-256 of its code is kept. Open: not revoked, not
    accepted, not expired."""

    __tablename__ = "friend_invitations"
    __table_args__ = (
        Index(
            "ix_friend_invitations_open",
            "inviter_id",
            "expires_at",
            postgresql_where=text("revoked_at IS NULL AND accepted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    inviter_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Friendship(Base):
    """One direction of a friendship (both are stored); the alias is the owner's private name
    for the friend."""

    __tablename__ = "friendships"
    __table_args__ = (
        CheckConstraint("user_id <> friend_id", name="not_self"),
        Index("ix_friendships_friend", "friend_id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), _user(), primary_key=True)
    friend_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    alias: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FriendRequest(Base):
    """A request by exact email. `to_id` is NULL when no walker had that email: the sender
    sees the same as for a real one, so a request reveals no account."""

    __tablename__ = "friend_requests"
    __table_args__ = (
        CheckConstraint(f"status IN {REQUEST_STATUSES}", name="status"),
        CheckConstraint("from_id <> to_id", name="not_self"),
        # one open request per sender and address
        Index(
            "uq_friend_requests_open",
            "from_id",
            "to_email",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_friend_requests_to", "to_id", "status"),
        # a sender's requests: their latest to an address, their outgoing list (migration 0059)
        Index("ix_friend_requests_from", "from_id", "to_email", "id"),
        # requests to an address: those no account had, found by the walker who verifies it
        # later; all of them, erased with the account (migration 0059; a partial index of the
        # open unattached ones before)
        Index("ix_friend_requests_to_email", "to_email"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    from_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    to_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    to_email: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Block(Base):
    """The blocker and the blocked no longer see each other."""

    __tablename__ = "blocks"
    __table_args__ = (
        CheckConstraint("blocker_id <> blocked_id", name="not_self"),
        Index("ix_blocks_blocked", "blocked_id"),
    )

    blocker_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), _user(), primary_key=True)
    blocked_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Report(Base):
    """A walker's report of another walker, for the moderation queue."""

    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint(f"status IN {REPORT_STATUSES}", name="status"),
        CheckConstraint("reporter_id <> reported_id", name="not_self"),
        Index("ix_reports_queue", "status", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # a report outlives its reporter's account (the moderation history), not the reported's
    reporter_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reported_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)


# ---- groups (issue 17, item 2; docs/groups.md) -----------------------------------------------

GROUP_KINDS = ("friends", "club", "team", "company")
GROUP_ROLES = ("owner", "admin", "member")


class Group(Base):
    """A group of walkers. Its owner is the member with the role `owner` (exactly one while the
    group exists); a company group admits only verified emails of its bound domain."""

    __tablename__ = "groups"
    __table_args__ = (
        CheckConstraint(f"kind IN {GROUP_KINDS}", name="kind"),
        CheckConstraint("email_domain IS NULL OR kind = 'company'", name="domain_for_company"),
        # account deletion forgets the walker as creator (migration 0059)
        Index(
            "ix_groups_created_by", "created_by", postgresql_where=text("created_by IS NOT NULL")
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    is_open: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    description: Mapped[str | None] = mapped_column(String(500))
    # set by an admin only (the console, the admin API): lower case, without the @
    email_domain: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def _group(ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey("groups.id", ondelete=ondelete)


class GroupMember(Base):
    """A walker in a group, with a role. The primary key leads with the group: a group board
    reads its members as one index range."""

    __tablename__ = "group_members"
    __table_args__ = (
        CheckConstraint(f"role IN {GROUP_ROLES}", name="role"),
        Index("ix_group_members_user", "user_id"),
        Index(
            "uq_group_members_owner",
            "group_id",
            unique=True,
            postgresql_where=text("role = 'owner'"),
        ),
    )

    group_id: Mapped[int] = mapped_column(BigInteger, _group(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    role: Mapped[str] = mapped_column(String(8), server_default="member")
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class GroupJoinRequest(Base):
    """A walker waiting to be let into a group that is not open (removed when answered)."""

    __tablename__ = "group_join_requests"
    __table_args__ = (Index("ix_group_join_requests_user", "user_id"),)

    group_id: Mapped[int] = mapped_column(BigInteger, _group(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class GroupBan(Base):
    """A walker banned from a group: cannot join nor ask to until unbanned."""

    __tablename__ = "group_bans"
    __table_args__ = (Index("ix_group_bans_user", "user_id"),)

    group_id: Mapped[int] = mapped_column(BigInteger, _group(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    banned_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
