"""Every table, imported in one place so that Alembic sees the whole schema."""

from stepcoin.achievements.models import Achievement, UserAchievement
from stepcoin.admin.models import AdminLog
from stepcoin.auth.email_models import EmailToken, PasswordResetRequest
from stepcoin.auth.models import LoginThrottle, RefreshToken
from stepcoin.campaigns.models import Broadcast, Campaign
from stepcoin.challenges.models import (
    Challenge,
    ChallengeInvitee,
    ChallengeParticipant,
    ChallengeScore,
)
from stepcoin.console.models import AdminSession
from stepcoin.db import Base
from stepcoin.fairplay.models import AccountFlag, LinkClearance, LinkMark, TrustScore
from stepcoin.global_keys import GlobalKey
from stepcoin.leaderboards.models import LeaderboardEntry, LeaderboardGroupEntry
from stepcoin.mail.models import MailOutbox
from stepcoin.notify.models import (
    Notification,
    NotificationDelivery,
    NotificationPreference,
    PushDevice,
)
from stepcoin.ratelimit import RateLimitBucket
from stepcoin.referrals.models import Referral, ReferralCode
from stepcoin.retention.models import RetentionArchive, RetentionRun
from stepcoin.runtime_settings.models import RuntimeSetting
from stepcoin.shop.models import Order, OrderItem, RewardProduct, ShopSyncRun, WebhookEvent
from stepcoin.social.models import (
    Block,
    FriendInvitation,
    FriendRequest,
    Friendship,
    Group,
    GroupBan,
    GroupJoinRequest,
    GroupMember,
    Report,
)
from stepcoin.steps.models import (
    DeviceAccount,
    EarnRuleRow,
    StepDay,
    StepRecord,
    StepValidation,
)
from stepcoin.users.models import User, UserIdentity
from stepcoin.wallet.models import (
    CoinTransaction,
    EconomyDayTotal,
    IssuanceBudget,
    IssuanceHold,
    IssuanceUsage,
    Wallet,
)

__all__ = [
    "AccountFlag",
    "Achievement",
    "AdminLog",
    "AdminSession",
    "Base",
    "Block",
    "Broadcast",
    "Campaign",
    "Challenge",
    "ChallengeInvitee",
    "ChallengeParticipant",
    "ChallengeScore",
    "CoinTransaction",
    "DeviceAccount",
    "EarnRuleRow",
    "EconomyDayTotal",
    "EmailToken",
    "FriendInvitation",
    "FriendRequest",
    "Friendship",
    "GlobalKey",
    "Group",
    "GroupBan",
    "GroupJoinRequest",
    "GroupMember",
    "IssuanceBudget",
    "IssuanceHold",
    "IssuanceUsage",
    "LeaderboardEntry",
    "LeaderboardGroupEntry",
    "LinkClearance",
    "LinkMark",
    "LoginThrottle",
    "MailOutbox",
    "Notification",
    "NotificationDelivery",
    "NotificationPreference",
    "Order",
    "OrderItem",
    "PasswordResetRequest",
    "PushDevice",
    "RateLimitBucket",
    "Referral",
    "ReferralCode",
    "RefreshToken",
    "Report",
    "RetentionArchive",
    "RetentionRun",
    "RewardProduct",
    "RuntimeSetting",
    "ShopSyncRun",
    "StepDay",
    "StepRecord",
    "StepValidation",
    "TrustScore",
    "User",
    "UserAchievement",
    "UserIdentity",
    "Wallet",
    "WebhookEvent",
]
