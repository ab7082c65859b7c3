"""The OpenAPI document tells the whole truth (issue 14): every answer a route can give.

FastAPI documents the success and its own 422; everything else a route answers is added here,
in one place, from the same codes the services raise (stepcoin.errors):

- `PROBLEM_STATUS`: every stable `code` with its HTTP status;
- `problems(...)`: the `responses=` of a route from its codes (one problem+json response per
  status, the codes as an enum), usable in a decorator or in `ROUTE_PROBLEMS` below;
- `install_openapi(app)`: the document's finishing pass, adding what every operation of a kind
  answers (401 for bearer routes, 403 for staff routes, 422 problem+json instead of FastAPI's
  HTTPValidationError, 413 for bodies), each route's own codes, operation ids a client
  generator turns into good method names, the links of the stateful tests, request examples,
  and the text/plain of `/metrics`.

tests/test_openapi_contract.py holds the document to it: schemathesis, every check, against a
live server.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from stepcoin.errors import PROBLEM_MEDIA_TYPE, TYPE_BASE

Responses = dict[int | str, dict[str, Any]]

# Every stable `code` the API answers with, and its status. A code answered with two statuses
# (by different routes) is given as (status, code) where it is used.
PROBLEM_STATUS: dict[str, int] = {
    # any route
    "validation_error": 422,
    "malformed_json": 422,
    "payload_too_large": 413,
    "app_update_required": 426,
    "missing_token": 401,
    "invalid_token": 401,
    "forbidden": 403,
    "bad_request": 400,
    # sign-in, sign-up, mails
    "invalid_credentials": 401,
    "invalid_refresh_token": 401,
    "invalid_id_token": 401,
    "account_disabled": 403,
    "account_unverified": 409,
    "email_required": 422,
    "email_taken": 409,
    "retry": 409,
    "weak_password": 422,
    "signup_throttled": 429,
    "login_throttled": 429,
    "too_many_verification_mails": 429,
    "too_many_reset_requests": 429,
    "rate_limited": 429,
    "invalid_as_of": 422,
    "budget_not_found": 404,
    "issuance_budget_reached": 409,
    "invalid_budget": 422,
    "invalid_token_link": 400,
    "token_used": 410,
    "token_expired": 410,
    # the account
    "wrong_password": 403,
    "no_password": 409,
    "reauth_throttled": 429,
    "password_unchanged": 422,
    "provider_required": 422,
    "staff_account": 409,
    "session_not_found": 404,
    # steps and their review
    "sync_conflict": 409,
    "invalid_range": 422,
    "invalid_cursor": 422,
    "validation_not_found": 404,
    "own_record": 403,
    "own_account": 403,
    "own_order": 403,
    "superseded": 409,
    "already_reviewed": 409,
    "review_conflict": 409,
    # appeals of rejected days
    "step_day_not_found": 404,
    "not_rejected": 409,
    "already_appealed": 409,
    "appeal_window_closed": 422,
    # earn rules
    "invalid_earn_rule": 422,
    "earn_rule_backdated": 422,
    "earn_rule_overlaps": 422,
    "earn_rule_not_found": 404,
    "earn_rule_withdrawn": 409,
    "earn_rule_in_force": 409,
    # shop
    "product_not_found": 404,
    "conflicting_changes": 422,
    "idempotency_key_required": 422,
    "idempotency_key_reused": 422,
    "email_unverified": 403,
    "too_many_items": 422,
    "quantity_too_large": 422,
    "insufficient_stock": 409,
    "insufficient_coins": 409,
    "insufficient_stock_and_coins": 409,
    "order_not_found": 404,
    "order_not_cancellable": 409,
    "invalid_status_change": 409,
    "shopify_unavailable": 502,
    "shopify_error": 502,
    "invalid_signature": 401,
    "missing_webhook_id": 400,
    "wrong_shop_domain": 403,
    # staff
    "user_not_found": 404,
    "account_deleted": 409,
    "cannot_change_self": 409,
    "own_wallet": 403,
    "own_request": 403,
    "adjustment_request_not_found": 404,
    "adjustment_already_decided": 409,
    "unknown_setting": 404,
    "invalid_setting": 422,
    "achievement_not_found": 404,
    "achievement_code_taken": 409,
    # campaigns and prizes (issue 15)
    "campaign_not_found": 404,
    "own_campaign": 403,
    "campaign_already_run": 409,
    "campaign_needs_approval": 409,
    "broadcast_not_found": 404,
    "own_broadcast": 403,
    "broadcast_already_run": 409,
    "broadcast_needs_approval": 409,
    "invalid_prizes": 422,
    # referrals (issue 16, item 3)
    "referral_code_unknown": 404,
    "referral_already_claimed": 409,
    "referral_claim_window_closed": 409,
    "self_referral": 422,
    "referral_not_found": 404,
    "referral_not_in_review": 409,
    "own_referral": 403,
    # friends by consent (issue 17, item 1)
    "invitation_not_found": 404,
    "too_many_open_invitations": 409,
    "friend_limit_reached": 409,
    "own_invitation": 422,
    "friend_not_found": 404,
    # a path that names no route (/v1/friends/<not a uuid>)
    "not_found": 404,
    "friend_request_not_found": 404,
    "self_block": 422,
    "self_report": 422,
    "report_not_found": 404,
    "own_report": 403,
    "report_already_resolved": 409,
    # challenges (issue 17, item 4)
    "unknown_template": 422,
    "invalid_params": 422,
    "invalid_timezone": 422,
    "invalid_date_range": 422,
    "starts_too_soon": 422,
    "challenge_too_long": 422,
    "entry_fee_too_high": 422,
    "house_prize_too_high": 422,
    "house_prize_not_allowed": 422,
    "group_required": 422,
    "group_not_expected": 422,
    "invitees_required": 422,
    "invitees_not_expected": 422,
    "too_many_invitees": 422,
    "not_friends": 422,
    "min_participants_too_low": 422,
    "admin_only": 403,
    "own_challenge": 403,
    "staff_excluded": 403,
    "challenge_not_found": 404,
    "not_a_draft": 409,
    "draft_start_passed": 409,
    "joining_closed": 409,
    "not_participating": 409,
    "challenge_started": 409,
    "not_cancellable": 409,
    # notifications (issue 18)
    "invalid_push_token": 422,
    "device_not_found": 404,
    "notification_not_found": 404,
    "unknown_notification_type": 422,
    "notification_mandatory": 422,
    # groups (issue 17, item 2)
    "group_not_found": 404,
    "not_group_member": 403,
    "group_role_required": 403,
    "group_banned": 403,
    "company_domain_not_set": 409,
    "company_email_required": 403,
    "group_full": 409,
    "group_limit_reached": 409,
    "owned_group_limit_reached": 409,
    "owner_must_transfer": 409,
    "transfer_target_not_member": 409,
    "join_request_not_found": 404,
    "group_member_not_found": 404,
    "own_membership": 422,
    "group_name_required": 422,
    "invalid_email_domain": 422,
    "not_a_company_group": 409,
    # leaderboards
    "invalid_period_start": 422,
    "board_not_found": 404,
    # operations
    "metrics_forbidden": 403,
    "database_unavailable": 503,
    "migrations_pending": 503,
    # raised by services only the console calls (a bulk review, a staff resend) or behind a
    # schema that refuses first (a review note's length): listed so the registry is whole
    "email_already_verified": 409,
    "invalid_ids": 422,
    "note": 422,
}

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    410: "Gone",
    413: "Request body too large",
    426: "Update required",
    422: "Invalid input",
    429: "Too many requests",
    502: "Bad gateway",
    503: "Service unavailable",
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is stable, branch on it.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": f"{TYPE_BASE}<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "For people; do not parse."},
        "code": {"type": "string", "description": "The machine-readable reason."},
        "instance": {"type": "string", "description": "The request's path."},
        "errors": {
            "type": "array",
            "description": "Validation errors: one per refused field.",
            "items": {
                "type": "object",
                "required": ["loc", "message", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
        "retry_after": {"type": "integer", "description": "429: seconds to wait."},
        "current_status": {
            "type": "string",
            "description": "409 on an order or a request: the status it is in now.",
        },
    },
    "additionalProperties": True,
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "string"},
        }
    },
}
_RATE_LIMIT_HEADERS = {  # stepcoin.ratelimit: the IETF draft's fields naming the limit
    "RateLimit-Policy": {
        "description": 'The limit that refused: `"<policy>";q=<limit>;w=<seconds>` (a rate '
        "limited route's other answers carry it too, for its closest limit).",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'What is left of it: `"<policy>";r=<left>;t=<seconds until full>`.',
        "schema": {"type": "string"},
    },
}
_CODE_HEADERS = dict.fromkeys(
    (
        "login_throttled",
        "signup_throttled",
        "rate_limited",
        "too_many_verification_mails",
        "too_many_reset_requests",
    ),
    _RATE_LIMIT_HEADERS,
)

Code = str | tuple[int, str]

INPUT_RULES = (
    "\n\nEvery error is `application/problem+json` (RFC 9457) with a stable `code`. Every "
    "request is checked before any route runs: no string (body, query or path) may hold NUL "
    "(U+0000) or a lone surrogate, integers fit in 64 bits, dates lie in years 1 to 9999; "
    "anything else is a 422 `validation_error` naming the field. The app sends its version in "
    "`X-App-Version` (digits and dots) with `X-App-Platform: ios|android`; an app older than "
    "the lowest supported version of its platform (runtime settings `app.min_version_ios`, "
    "`app.min_version_android`) gets 426 `app_update_required` with `minimum_version`. While "
    "the database cannot be reached (a restart or failover), an operation answers 503 "
    "`database_unavailable` with `Retry-After`: nothing changed, send the request again."
)


def problems(*codes: Code) -> Responses:
    """`responses=` for these codes: one problem+json response per status, codes as an enum.
    A code not in PROBLEM_STATUS fails here, at import, not in a client's hands."""
    by_status: dict[int, list[str]] = {}
    for item in codes:
        status, code = item if isinstance(item, tuple) else (PROBLEM_STATUS[item], item)
        by_status.setdefault(status, [])
        if code not in by_status[status]:
            by_status[status].append(code)
    return {status: _problem_response(status, found) for status, found in by_status.items()}


def _problem_response(status: int, codes: Iterable[str]) -> dict[str, Any]:
    listed = sorted(set(codes))
    response: dict[str, Any] = {
        "description": f"{_TITLES.get(status, 'Error')}: "
        + ", ".join(f"`{code}`" for code in listed),
        "content": {
            PROBLEM_MEDIA_TYPE: {
                "schema": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Problem"},
                        {
                            "type": "object",
                            "properties": {
                                "status": {"type": "integer", "enum": [status]},
                                "code": {"type": "string", "enum": listed},
                            },
                        },
                    ]
                }
            }
        },
    }
    headers = copy.deepcopy(_HEADERS.get(status, {}))
    for code in listed:
        headers |= copy.deepcopy(_CODE_HEADERS.get(code, {}))
    if headers:
        response["headers"] = headers
    return response


def _codes_of(response: dict[str, Any]) -> list[str]:
    try:
        schema = response["content"][PROBLEM_MEDIA_TYPE]["schema"]
        return list(schema["allOf"][1]["properties"]["code"]["enum"])
    except (KeyError, IndexError, TypeError):
        return []


# The codes of each operation beyond what its kind answers (see _kind_problems), read from its
# service code. Keyed by operation id.
_CURSOR = ("invalid_cursor",)
_GROUP_MANAGER: tuple[str, ...] = ("group_not_found", "not_group_member", "group_role_required")
# what getting into a group can meet (joining, an approval)
_ADMIT = (
    "group_banned",
    "company_domain_not_set",
    "company_email_required",
    "group_full",
    "group_limit_reached",
    "user_not_found",
)
_REVIEW = (
    "validation_not_found",
    "own_record",
    "superseded",
    "already_reviewed",
    "issuance_budget_reached",
    "review_conflict",
)
_APPROVAL = ("adjustment_request_not_found", "adjustment_already_decided", "own_request")
_SOCIAL = (
    "invalid_id_token",
    "account_disabled",
    "account_unverified",
    "email_required",
    "email_taken",
    "retry",
)
_TOKEN_LINK = ("invalid_token_link", "token_used", "token_expired")
_REAUTH = ("no_password", "wrong_password", "reauth_throttled")
_NEW_CHALLENGE: tuple[Code, ...] = (
    "unknown_template",
    "invalid_params",
    "invalid_timezone",
    "invalid_date_range",
    "starts_too_soon",
    "challenge_too_long",
    "entry_fee_too_high",
    "house_prize_too_high",
    "house_prize_not_allowed",
    "group_required",
    "group_not_expected",
    "group_not_found",
    "not_group_member",
    "not_a_company_group",
    "invitees_required",
    "invitees_not_expected",
    "too_many_invitees",
    "not_friends",
    "min_participants_too_low",
    "admin_only",
    "insufficient_coins",
)

ROUTE_PROBLEMS: dict[str, tuple[Code, ...]] = {
    "economy_report": ("invalid_as_of",),
    "remove_budget": ("budget_not_found",),
    "register": ("weak_password", "email_taken", "signup_throttled"),
    "login": ("invalid_credentials", "account_disabled", "login_throttled"),
    "refresh": ("invalid_refresh_token",),
    "sign_in_with_google": _SOCIAL,
    "sign_in_with_apple": _SOCIAL,
    "verify_email": (*_TOKEN_LINK, "invalid_token"),  # invalid_token: the account is gone
    "reset_password": (*_TOKEN_LINK, "weak_password", "account_disabled"),
    "delete_account": (
        *_REAUTH,
        "staff_account",
        "provider_required",
        (403, "invalid_id_token"),
    ),
    "change_password": (*_REAUTH, "weak_password", "password_unchanged"),
    "end_session": ("session_not_found",),
    "sync_steps": ("sync_conflict",),
    "list_steps": ("invalid_range",),
    "appeal_day": (
        "step_day_not_found",
        "not_rejected",
        "already_appealed",
        "appeal_window_closed",
        "note",
    ),
    "list_validations": _CURSOR,
    "approve_validation": _REVIEW,
    "reject_validation": _REVIEW,
    "create_earn_rule": ("invalid_earn_rule", "earn_rule_backdated", "earn_rule_overlaps"),
    "preview_earn_rule": ("invalid_earn_rule",),
    "withdraw_earn_rule": ("earn_rule_not_found", "earn_rule_withdrawn", "earn_rule_in_force"),
    "list_products": _CURSOR,
    "get_product": ("product_not_found",),
    "create_order": (
        "idempotency_key_required",
        "idempotency_key_reused",
        "email_unverified",
        "too_many_items",
        "quantity_too_large",
        "insufficient_stock",
        "insufficient_coins",
        "insufficient_stock_and_coins",
        "retry",
    ),
    "list_orders": _CURSOR,
    "get_order": ("order_not_found",),
    "cancel_order": ("order_not_found", "order_not_cancellable", "retry"),
    "update_product": ("product_not_found", "conflicting_changes"),
    "sync_shopify_now": ("shopify_unavailable", "shopify_error"),
    "admin_list_orders": _CURSOR,
    "update_order": (
        "order_not_found",
        "order_not_cancellable",
        "invalid_status_change",
        (422, "invalid_status_change"),
        "own_order",
    ),
    "fair_play_of": ("user_not_found",),
    "clear_links": ("user_not_found", "own_account"),
    "shopify_webhook": (
        "invalid_signature",
        "missing_webhook_id",
        "wrong_shop_domain",
        (400, "malformed_json"),
        "payload_too_large",
    ),
    "list_transactions": _CURSOR,
    "search_users": _CURSOR,
    "get_user": ("user_not_found",),
    "update_user": ("user_not_found", "account_deleted", "cannot_change_self"),
    "adjust_coins": (
        "user_not_found",
        "own_wallet",
        "idempotency_key_reused",
        "insufficient_coins",
    ),
    "approve_adjustment": (*_APPROVAL, "own_wallet", "user_not_found", "insufficient_coins"),
    "reject_adjustment": (*_APPROVAL, "own_wallet"),
    "list_audit_logs": _CURSOR,
    "put_setting": ("unknown_setting", "invalid_setting"),
    "get_achievement": ("achievement_not_found",),
    "create_achievement": ("achievement_code_taken",),
    "update_achievement": ("achievement_not_found",),
    "get_leaderboard": ("invalid_period_start", "board_not_found"),
    "get_campaign": ("campaign_not_found",),
    "preview_campaign": ("campaign_not_found",),
    "approve_campaign": ("campaign_not_found", "own_campaign", "campaign_already_run"),
    "run_campaign": ("campaign_not_found", "campaign_already_run", "campaign_needs_approval"),
    "get_broadcast": ("broadcast_not_found",),
    "preview_broadcast": ("broadcast_not_found",),
    "approve_broadcast": ("broadcast_not_found", "own_broadcast", "broadcast_already_run"),
    "run_broadcast": ("broadcast_not_found", "broadcast_already_run", "broadcast_needs_approval"),
    "put_prizes": ("invalid_prizes",),
    "claim_referral": (
        "referral_code_unknown",
        "referral_already_claimed",
        "referral_claim_window_closed",
        "self_referral",
    ),
    "list_my_referrals": _CURSOR,
    "list_referrals": _CURSOR,
    "approve_referral": ("referral_not_found", "referral_not_in_review", "own_referral"),
    "reject_referral": ("referral_not_found", "referral_not_in_review", "own_referral"),
    "get_readiness": ("database_unavailable", "migrations_pending"),
    "create_invitation": ("too_many_open_invitations",),
    "view_invitation": ("invitation_not_found",),
    "accept_invitation": ("invitation_not_found", "own_invitation", "friend_limit_reached"),
    "revoke_invitation": ("invitation_not_found",),
    "remove_friend": ("friend_not_found", "not_found"),
    "set_friend_alias": ("friend_not_found", "not_found"),
    "accept_friend_request": ("friend_request_not_found", "friend_limit_reached"),
    "decline_friend_request": ("friend_request_not_found",),
    "block_walker": ("self_block", "user_not_found"),
    "report_walker": ("self_report", "user_not_found"),
    "list_reports": _CURSOR,
    "resolve_report": ("report_not_found", "own_report", "report_already_resolved"),
    "create_challenge": _NEW_CHALLENGE,
    "get_challenge": ("challenge_not_found",),
    "publish_challenge": (
        "challenge_not_found",
        "not_a_draft",
        "draft_start_passed",
        "insufficient_coins",
    ),
    "join_challenge": (
        "challenge_not_found",
        "own_challenge",
        "staff_excluded",
        "joining_closed",
        "insufficient_coins",
    ),
    "leave_challenge": ("challenge_not_found", "not_participating", "challenge_started"),
    "cancel_challenge": ("challenge_not_found", "not_cancellable"),
    "challenge_leaderboard": ("challenge_not_found",),
    "admin_get_challenge": ("challenge_not_found",),
    "admin_cancel_challenge": ("challenge_not_found", "not_cancellable"),
    "register_push_device": ("invalid_push_token", "invalid_timezone"),
    "delete_push_device": ("device_not_found",),
    "list_notifications": _CURSOR,
    "mark_notification_read": ("notification_not_found",),
    "set_notification_preferences": ("unknown_notification_type", "notification_mandatory"),
    "create_group": ("group_name_required", "group_limit_reached", "owned_group_limit_reached"),
    "get_group": ("group_not_found",),
    "update_group": (*_GROUP_MANAGER, "group_name_required"),
    "delete_group": _GROUP_MANAGER,
    "join_group": ("group_not_found", *_ADMIT),
    "leave_group": ("group_not_found", "not_group_member", "owner_must_transfer"),
    "transfer_group": (
        *_GROUP_MANAGER,
        "own_membership",
        "transfer_target_not_member",
        "owned_group_limit_reached",
    ),
    "list_members": ("group_not_found", "not_group_member", *_CURSOR),
    "list_requests": _GROUP_MANAGER,
    "list_bans": _GROUP_MANAGER,
    "approve_member": (*_GROUP_MANAGER, "join_request_not_found", *_ADMIT),
    "decline_member": (*_GROUP_MANAGER, "join_request_not_found"),
    "kick_member": (*_GROUP_MANAGER, "own_membership", "group_member_not_found"),
    "ban_member": (*_GROUP_MANAGER, "own_membership", "user_not_found"),
    "set_member_role": (*_GROUP_MANAGER, "own_membership", "group_member_not_found"),
    "unban_member": _GROUP_MANAGER,
    "admin_get_group": ("group_not_found",),
    "bind_domain": ("group_not_found", "not_a_company_group", "invalid_email_domain"),
    "group_leaderboard": (
        "group_not_found",
        "not_group_member",
        "invalid_period_start",
        "board_not_found",
    ),
}

# Operation ids: the route function's name, unless it says too little or repeats another's.
OPERATION_IDS: dict[tuple[str, str], str] = {
    ("POST", "/v1/auth/google"): "sign_in_with_google",
    ("POST", "/v1/auth/apple"): "sign_in_with_apple",
    ("POST", "/v1/auth/verify-email/request"): "request_verification_mail",
    ("PATCH", "/v1/me"): "update_me",
    ("GET", "/v1/me/export"): "export_my_data",
    ("GET", "/v1/admin/validations"): "list_validations",
    ("POST", "/v1/admin/validations/{validation_id}/approve"): "approve_validation",
    ("POST", "/v1/admin/validations/{validation_id}/reject"): "reject_validation",
    ("GET", "/v1/admin/products"): "admin_list_products",
    ("POST", "/v1/admin/shopify/sync"): "sync_shopify_now",
    ("GET", "/v1/admin/orders"): "admin_list_orders",
    ("PATCH", "/v1/admin/users/{user_id}"): "update_user",
    ("GET", "/v1/admin/achievements"): "list_achievements",
    ("GET", "/v1/achievements"): "list_my_achievements",
    ("GET", "/v1/leaderboards/{period}"): "get_leaderboard",
    ("GET", "/metrics"): "get_metrics",
    ("GET", "/healthz"): "get_health",
    ("GET", "/readyz"): "get_readiness",
}

# OpenAPI links: what one answer lets a client (and schemathesis' stateful phase) call next.
_ITEM0 = "$response.body#/items/0"
_GROUP_ID = {"path.group_id": "$response.body#/id"}
LINKS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "create_group": {
        "201": {
            "GetGroup": {"operationId": "get_group", "parameters": _GROUP_ID},
            "ListMembers": {"operationId": "list_members", "parameters": _GROUP_ID},
            "GroupLeaderboard": {
                "operationId": "group_leaderboard",
                "parameters": {**_GROUP_ID, "path.period": "daily"},
            },
        }
    },
    "register": {
        "201": {
            "Login": {
                "operationId": "login",
                "requestBody": {
                    "email": "$request.body#/email",
                    "password": "$request.body#/password",
                },
            },
            "Refresh": {
                "operationId": "refresh",
                "requestBody": {"refresh_token": "$response.body#/refresh_token"},
            },
        }
    },
    "login": {
        "200": {
            "Refresh": {
                "operationId": "refresh",
                "requestBody": {"refresh_token": "$response.body#/refresh_token"},
            },
            "Logout": {
                "operationId": "logout",
                "requestBody": {"refresh_token": "$response.body#/refresh_token"},
            },
        }
    },
    "refresh": {
        "200": {
            "Logout": {
                "operationId": "logout",
                "requestBody": {"refresh_token": "$response.body#/refresh_token"},
            }
        }
    },
    "list_products": {
        "200": {
            "GetProduct": {
                "operationId": "get_product",
                "parameters": {"path.product_id": f"{_ITEM0}/id"},
            }
        }
    },
    "create_order": {
        "201": {
            "GetOrder": {
                "operationId": "get_order",
                "parameters": {"path.order_id": "$response.body#/id"},
            },
            "CancelOrder": {
                "operationId": "cancel_order",
                "parameters": {"path.order_id": "$response.body#/id"},
            },
        }
    },
    "list_orders": {
        "200": {
            "GetOrder": {
                "operationId": "get_order",
                "parameters": {"path.order_id": f"{_ITEM0}/id"},
            },
        }
    },
    "get_order": {
        "200": {
            "CancelOrder": {
                "operationId": "cancel_order",
                "parameters": {"path.order_id": "$response.body#/id"},
            }
        }
    },
    "list_sessions": {
        "200": {
            "EndSession": {
                "operationId": "end_session",
                "parameters": {"path.session_id": f"{_ITEM0}/id"},
            }
        }
    },
    "search_users": {
        "200": {
            "GetUser": {
                "operationId": "get_user",
                "parameters": {"path.user_id": f"{_ITEM0}/id"},
            },
            "AdjustCoins": {
                "operationId": "adjust_coins",
                "parameters": {"path.user_id": f"{_ITEM0}/id"},
            },
        }
    },
    "adjust_coins": {
        "202": {
            "ApproveAdjustment": {
                "operationId": "approve_adjustment",
                "parameters": {"path.request_id": "$response.body#/id"},
            },
            "RejectAdjustment": {
                "operationId": "reject_adjustment",
                "parameters": {"path.request_id": "$response.body#/id"},
            },
        }
    },
    "create_product": {
        "201": {
            "UpdateProduct": {
                "operationId": "update_product",
                "parameters": {"path.product_id": "$response.body#/id"},
            }
        }
    },
    "create_achievement": {
        "201": {
            "GetAchievement": {
                "operationId": "get_achievement",
                "parameters": {"path.achievement_id": "$response.body#/id"},
            },
            "UpdateAchievement": {
                "operationId": "update_achievement",
                "parameters": {"path.achievement_id": "$response.body#/id"},
            },
        }
    },
    "list_settings": {
        "200": {
            "PutSetting": {  # the value it holds: valid for its key by construction
                "operationId": "put_setting",
                "parameters": {"path.key": f"{_ITEM0}/key"},
                "requestBody": {"value": f"{_ITEM0}/value"},
            }
        }
    },
    "create_earn_rule": {
        "201": {
            "WithdrawEarnRule": {
                "operationId": "withdraw_earn_rule",
                "parameters": {"path.rule_id": "$response.body#/id"},
            }
        }
    },
    "list_validations": {
        "200": {
            "ApproveValidation": {
                "operationId": "approve_validation",
                "parameters": {"path.validation_id": f"{_ITEM0}/id"},
            },
            "RejectValidation": {
                "operationId": "reject_validation",
                "parameters": {"path.validation_id": f"{_ITEM0}/id"},
            },
        }
    },
    "list_adjustment_requests": {
        "200": {
            "ApproveAdjustment": {
                "operationId": "approve_adjustment",
                "parameters": {"path.request_id": f"{_ITEM0}/id"},
            },
            "RejectAdjustment": {
                "operationId": "reject_adjustment",
                "parameters": {"path.request_id": f"{_ITEM0}/id"},
            },
        }
    },
}

# Examples of the main request bodies (what the app sends).
EXAMPLES: dict[str, Any] = {
    "register": {
        "email": "ada@example.com",
        "password": "correct horse battery staple",
        "full_name": "Ada Walker",
    },
    "login": {"email": "ada@example.com", "password": "correct horse battery staple"},
    "sync_steps": {
        "records": [
            {
                "date": "2026-12-03",
                "steps": 8421,
                "source": "healthkit",
                "device_id": "iphone-15-ada",
                "client_record_id": "hk-2026-12-03",
                "client_record_version": 3,
            }
        ]
    },
    "create_order": {
        "items": [{"product_id": 1, "quantity": 1}],
        "shipping_address": {
            "name": "Ada Walker",
            "line1": "1 Step Street",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
    },
    "update_me": {"timezone": "Europe/Berlin"},
    "change_password": {
        "current_password": "correct horse battery staple",
        "new_password": "another correct horse battery",
    },
    "adjust_coins": {"amount": 50, "reason": "goodwill credit for a lost parcel"},
}


# Header parameters the route reads as optional to answer its own `code`, yet requires.
REQUIRED_HEADERS: dict[str, dict[str, dict[str, Any]]] = {
    "create_order": {"Idempotency-Key": {"type": "string", "minLength": 1, "maxLength": 200}},
}


CURSOR_PATTERN = "^[A-Za-z0-9_=-]*$"  # base64url, as stepcoin.pagination writes it


def _cursor_format(parameter: dict[str, Any]) -> None:
    """A cursor is opaque but has a format: base64url; anything else is `invalid_cursor`."""
    for branch in parameter["schema"].get("anyOf", [parameter["schema"]]):
        if branch.get("type") == "string":
            branch["pattern"] = CURSOR_PATTERN
    parameter.setdefault(
        "description", "The `next_cursor` of the previous page; omit for the first page."
    )


def _kind_problems(method: str, path: str, operation: dict[str, Any]) -> Responses:
    """What every operation of its kind answers."""
    codes: list[Code] = ["validation_error"]  # stepcoin.validation.InputGuard: any query string
    codes.append("app_update_required")  # stepcoin.app_versions: an app older than supported
    if path != "/healthz":  # every other operation reads the database (errors: 503, Retry-After)
        codes.append("database_unavailable")
    if operation.get("requestBody"):
        codes += ["malformed_json", "payload_too_large", "bad_request"]  # bad_request: unparsable
    if operation.get("security"):
        codes += ["missing_token", "invalid_token"]
    if path.startswith("/v1/admin/"):
        codes.append("forbidden")
    return problems(*codes)


def _merge(responses: dict[str, Any], extra: Responses) -> None:
    for status, response in extra.items():
        key = str(status)
        present = responses.get(key)
        if present is None or PROBLEM_MEDIA_TYPE not in present.get("content", {}):
            responses[key] = response
            continue
        responses[key] = _problem_response(int(key), _codes_of(present) + _codes_of(response))


_BOUNDS = ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum")
_INT64 = {float(2**63): 2**63 - 1, float(-(2**63)): -(2**63)}


def _integer_bounds(node: Any) -> None:
    """FastAPI's OpenAPI model holds bounds as floats: 2**63 - 1 came out as 9.2e18, which is
    2**63, one more than a bigint holds. Integral bounds are integers again (the bigint limits
    exactly, as stepcoin.validation.Int64 declares them)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = _INT64.get(value, int(value))
            else:
                _integer_bounds(value)
    elif isinstance(node, list):
        for item in node:
            _integer_bounds(item)


def _operation_id(method: str, path: str, generated: str) -> str:
    """The route function's name (FastAPI's id is name + path + method), or OPERATION_IDS'."""
    suffix = re.sub(r"\W", "_", path) + "_" + method
    return OPERATION_IDS.get((method.upper(), path), generated.removesuffix(suffix))


def complete(
    document: dict[str, Any], limited: Iterable[tuple[str, str, str]] = ()
) -> dict[str, Any]:
    """The finishing pass over FastAPI's document (see the module's docstring); `limited`:
    the rate limited routes as (method, path template, code of their 429)."""
    limits = {(method.lower(), path): code for method, path, code in limited}
    _integer_bounds(document)
    info = document.setdefault("info", {})
    info["description"] = (info.get("description") or "") + INPUT_RULES
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    seen: set[str] = set()
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            operation_id = _operation_id(method, path, operation["operationId"])
            operation["operationId"] = operation_id
            assert operation_id not in seen, f"operation id {operation_id} twice"
            seen.add(operation_id)
            responses = operation.setdefault("responses", {})
            if "422" in responses and PROBLEM_MEDIA_TYPE not in responses["422"].get("content", {}):
                del responses["422"]  # FastAPI's HTTPValidationError: ours is problem+json
            words = {  # a route's own description of an error (auth.router's 429s, say)
                status: responses.pop(status)["description"]
                for status in list(responses)
                if int(status) >= 400 and "content" not in responses[status]
            }
            _merge(responses, _kind_problems(method, path, operation))
            _merge(responses, problems(*ROUTE_PROBLEMS.get(operation_id, ())))
            if (method, path) in limits:
                _merge(responses, problems(limits[method, path]))
            for status, text in words.items():
                codes = ", ".join(f"`{code}`" for code in _codes_of(responses[status]))
                responses[status]["description"] = f"{text} Codes: {codes}."
            for status, links in LINKS.get(operation_id, {}).items():
                responses[status]["links"] = links
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["name"] == "cursor":
                    _cursor_format(parameter)
                declared = REQUIRED_HEADERS.get(operation_id, {}).get(parameter["name"])
                if parameter["in"] == "header" and declared is not None:
                    parameter["required"] = True
                    parameter["schema"] = declared
            if operation_id in EXAMPLES:
                content = operation["requestBody"]["content"]["application/json"]
                content["example"] = EXAMPLES[operation_id]
    targets = {
        link["operationId"]
        for by_status in LINKS.values()
        for links in by_status.values()
        for link in links.values()
    }
    named = set(ROUTE_PROBLEMS) | set(LINKS) | set(EXAMPLES) | set(REQUIRED_HEADERS) | targets
    unknown = named - seen
    assert not unknown, f"no such operation: {sorted(unknown)}"
    metrics = document["paths"]["/metrics"]["get"]["responses"]
    metrics["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    _merge(metrics, problems("metrics_forbidden"))
    return document


def install_openapi(app: FastAPI, limited: Iterable[tuple[str, str, str]] = ()) -> None:
    """Serve the completed document at app.openapi_url (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                servers=app.servers,
            )
            app.openapi_schema = complete(document, limited)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
