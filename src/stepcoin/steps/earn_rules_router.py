"""Earn rules over HTTP: walkers read the rule in force and the next one; admins announce,
withdraw and preview rules (docs/economy.md, "Earn rules")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from stepcoin.auth.dependencies import AdminDep, ClaimsDep, StaffDep
from stepcoin.db import ReadSessionDep, SessionDep
from stepcoin.steps import earn_rules
from stepcoin.steps.schemas import (
    EarnRuleAdminOut,
    EarnRuleIn,
    EarnRuleList,
    EarnRulePreviewIn,
    EarnRulePreviewOut,
    EarnRulesOut,
)
from stepcoin.validation import Int64

router = APIRouter(tags=["steps"])
admin_router = APIRouter(prefix="/v1/admin/earn-rules", tags=["admin: earn rules"])


@router.get("/v1/economy/earn-rules", response_model=EarnRulesOut)
async def get_earn_rules(claims: ClaimsDep, session: ReadSessionDep) -> Any:
    """The earn rule in force on your today and the next one announced."""
    return await earn_rules.announced(session, claims.user_id)


@admin_router.get("", response_model=EarnRuleList)
async def list_earn_rules(staff: StaffDep, session: SessionDep) -> Any:
    """Every rule (withdrawn ones too), newest day first, and the earliest day a new one may
    start."""
    return await earn_rules.list_rules(session)


@admin_router.post("", response_model=EarnRuleAdminOut, status_code=201)
async def create_earn_rule(body: EarnRuleIn, admin: AdminDep, session: SessionDep) -> Any:
    """Announce a rule from a future day (audited); a back-dated or overlapping one is 422."""
    return await earn_rules.create_rule(
        session,
        effective_from=body.effective_from,
        coins_per_1000_steps=body.coins_per_1000_steps,
        daily_step_cap=body.daily_step_cap,
        daily_coin_cap=body.daily_coin_cap,
        admin_id=admin.id,
    )


@admin_router.post("/preview", response_model=EarnRulePreviewOut)
async def preview_earn_rule(body: EarnRulePreviewIn, staff: StaffDep, session: SessionDep) -> Any:
    """What a proposed rule would have paid per day over the last 30 days, against the rules in
    force, and the walkers it would affect."""
    return await earn_rules.preview(
        session,
        coins_per_1000_steps=body.coins_per_1000_steps,
        daily_step_cap=body.daily_step_cap,
        daily_coin_cap=body.daily_coin_cap,
    )


@admin_router.post("/{rule_id}/withdraw", response_model=EarnRuleAdminOut)
async def withdraw_earn_rule(rule_id: Int64, admin: AdminDep, session: SessionDep) -> Any:
    """Withdraw an announced rule before its day begins anywhere (audited)."""
    return await earn_rules.withdraw_rule(session, rule_id, admin_id=admin.id)
