"""Console pages: campaigns (segment builder, preview, second admin's approval, run, progress)
and the leaderboards' prize tables.

Every action goes through the same services as the API (campaigns.service, leaderboards.prizes),
which audit it in the action's transaction; the forms are checked by the API's own request
models, so the console refuses exactly what the API refuses.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.campaigns import broadcasts
from stepcoin.campaigns import service as campaigns
from stepcoin.campaigns.schemas import MAX_COINS_PER_WALKER, CampaignIn
from stepcoin.console.web import (
    PREFIX,
    AdminFormDep,
    ConsoleUserDep,
    perform,
    redirect,
    render,
)
from stepcoin.db import ReadSessionDep, session_scope
from stepcoin.errors import InvalidInput, NotFound
from stepcoin.leaderboards import prizes
from stepcoin.leaderboards.schemas import PrizeLine

router = APIRouter(prefix=PREFIX, include_in_schema=False)

SEGMENT_FIELDS = ("min_steps", "steps_from", "steps_to", "joined_before")
FORM_FIELDS = ("name", "message", "coins_per_walker", "user_ids", *SEGMENT_FIELDS)
PRIZE_PERIODS = ("daily", "weekly", "monthly")
UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
PRIZE_LINE_RE = re.compile(r"^\s*(\d{1,6})\s*(?:-\s*(\d{1,6}))?\s*[:=]?\s*(\d{1,9})\s*$")


def _campaign_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("No such campaign.", code="campaign_not_found") from None


def payload_of(values: dict[str, Any]) -> dict[str, Any]:
    """The API body the segment builder's values stand for (empty inputs left out)."""
    segment: dict[str, Any] = {}
    ids = UUID_RE.findall(values.get("user_ids") or "")
    if ids:
        segment["user_ids"] = ids
    elif (values.get("user_ids") or "").strip():
        segment["user_ids"] = (values["user_ids"] or "").split()  # the schema names the problem
    for name in SEGMENT_FIELDS:
        if values.get(name):
            segment[name] = _number(values[name]) if name == "min_steps" else values[name]
    if values.get("has_not_ordered"):
        segment["has_not_ordered"] = True
    if values.get("all_walkers"):
        segment["all_walkers"] = True
    return {
        "name": values.get("name") or "",
        "message": values.get("message") or "",
        "coins_per_walker": _number(values.get("coins_per_walker") or ""),
        "segment": segment,
    }


def _number(raw: str) -> int | str:
    """A whole number as int; anything else stays text so the schema names the problem."""
    cleaned = raw.replace(",", "").replace(" ", "")
    return int(cleaned) if cleaned.isdigit() and len(cleaned) <= 18 else raw


def explain(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts)


async def _list_page(
    request: Request,
    user: Any,
    session: AsyncSession,
    *,
    values: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    rows = await campaigns.list_recent(session, limit=100)
    return render(
        request,
        user,
        "campaigns.html",
        {
            "campaigns": rows,
            "broadcasts": await broadcasts.list_recent(session, limit=20),
            "values": values or {"coins_per_walker": "10"},
            "error": error,
            "max_coins": MAX_COINS_PER_WALKER,
        },
        status=status,
        section="campaigns",
    )


@router.get("/campaigns")
async def campaign_list(
    request: Request, user: ConsoleUserDep, session: ReadSessionDep
) -> Response:
    """Campaigns with their progress, the segment builder (admins), and the push broadcasts
    with their delivery figures (made and run through the API: /v1/admin/broadcasts)."""
    return await _list_page(request, user, session)


@router.post("/campaigns")
async def create_campaign(request: Request, form: AdminFormDep) -> Response:
    """Create a draft through campaigns.service.create (audited); then its page to preview."""
    values: dict[str, Any] = {name: form.get(name) for name in FORM_FIELDS}
    values["has_not_ordered"] = form.get("has_not_ordered") == "1"
    values["all_walkers"] = form.get("all_walkers") == "1"
    database = request.app.state.database
    try:
        body = CampaignIn.model_validate(payload_of(values))
    except ValidationError as exc:
        async with session_scope(database) as session:
            return await _list_page(
                request, form.user, session, values=values, error=explain(exc), status=422
            )
    async with session_scope(database) as session:
        row = await campaigns.create(session, body, admin_id=form.user.id)
    return redirect(
        request,
        f"{PREFIX}/campaigns/{row['id']}",
        flash=("ok", f"Campaign “{row['name']}” created: preview it, then run it."),
    )


async def _detail_page(
    request: Request,
    user: Any,
    session: AsyncSession,
    campaign_id: uuid.UUID,
    *,
    preview: dict[str, Any] | None = None,
) -> Response:
    row = await campaigns.get(session, campaign_id)
    total = row["walkers_total"] or 0
    percent = (
        100 if row["status"] == "done" else (100 * row["walkers_paid"] // total if total else 0)
    )
    return render(
        request,
        user,
        "campaigns_detail.html",
        {"campaign": row, "preview": preview, "percent": percent},
        section="campaigns",
    )


@router.get("/campaigns/{campaign_id}")
async def campaign_page(
    request: Request, campaign_id: str, user: ConsoleUserDep, session: ReadSessionDep
) -> Response:
    """One campaign: its segment, approval, progress (the page reloads itself while running)."""
    return await _detail_page(request, user, session, _campaign_id(campaign_id))


@router.post("/campaigns/{campaign_id}/preview")
async def preview_campaign(request: Request, campaign_id: str, form: AdminFormDep) -> Response:
    """Walkers, total coins and a sample, shown on the campaign's page (audited)."""
    key = _campaign_id(campaign_id)
    async with session_scope(request.app.state.database) as session:
        seen = await campaigns.preview(session, key, admin_id=form.user.id)
        return await _detail_page(request, form.user, session, key, preview=seen)


@router.post("/campaigns/{campaign_id}/approve")
async def approve_campaign(request: Request, campaign_id: str, form: AdminFormDep) -> Response:
    """A second admin approves the total as it is now (never the creator)."""
    key = _campaign_id(campaign_id)

    async def action(session: AsyncSession) -> str:
        row = await campaigns.approve(session, key, admin_id=form.user.id)
        return f"Approved: up to {row['approved_coins']:,} coins."

    return await perform(request, action, back=f"{PREFIX}/campaigns/{key}")


@router.post("/campaigns/{campaign_id}/run")
async def run_campaign(request: Request, campaign_id: str, form: AdminFormDep) -> Response:
    """Start the run in the background; the page follows its progress."""
    key = _campaign_id(campaign_id)

    async def action(session: AsyncSession) -> str:
        row = await campaigns.start(session, key, admin_id=form.user.id)
        return f"Running: {row['walkers_total']:,} walkers, each paid once."

    return await perform(request, action, back=f"{PREFIX}/campaigns/{key}")


# --- prizes -----------------------------------------------------------------------------------


def table_text(lines: list[dict[str, Any]]) -> str:
    """A prize table as the form's text: one `from-to coins` line per range."""
    return "\n".join(
        f"{line['from_rank']} {line['coins']}"
        if line["from_rank"] == line["to_rank"]
        else f"{line['from_rank']}-{line['to_rank']} {line['coins']}"
        for line in lines
    )


def parse_table(raw: str) -> list[PrizeLine]:
    """`1 500` / `2-10 100` lines (rank or rank range, then coins); blank lines ignored."""
    lines = []
    for number, text_line in enumerate(raw.splitlines(), start=1):
        if not text_line.strip():
            continue
        found = PRIZE_LINE_RE.match(text_line)
        if found is None:
            raise InvalidInput(
                f"Line {number}: write a rank or a range and the coins, e.g. `1 500` or "
                "`2-10 100`.",
                code="invalid_prizes",
            )
        low, high, coins = found.groups()
        try:
            lines.append(PrizeLine(from_rank=int(low), to_rank=int(high or low), coins=int(coins)))
        except ValidationError as exc:
            raise InvalidInput(f"Line {number}: {explain(exc)}", code="invalid_prizes") from None
    return lines


@router.get("/prizes")
async def prizes_page(request: Request, user: ConsoleUserDep, session: ReadSessionDep) -> Response:
    """Each closing period's prize table, and its latest awards (waiting or paid)."""
    tables = []
    for period in PRIZE_PERIODS:
        lines = await prizes.get_table(session, period)
        tables.append(
            {
                "period": period,
                "lines": lines,
                "text": table_text(lines),
                "awards": await prizes.list_awards(session, period, limit=20),
            }
        )
    return render(request, user, "prizes.html", {"tables": tables}, section="prizes")


@router.post("/prizes/{period}")
async def save_prizes(request: Request, period: str, form: AdminFormDep) -> Response:
    """Replace one period's table through leaderboards.prizes.put_table (audited)."""
    if period not in PRIZE_PERIODS:
        raise NotFound("No such board period.", code="not_found")

    async def action(session: AsyncSession) -> str:
        lines = parse_table(form.get("table"))
        saved = await prizes.put_table(session, period, lines, admin_id=form.user.id)
        return f"The {period} prizes are saved ({len(saved)} lines)."

    return await perform(request, action, back=f"{PREFIX}/prizes")
