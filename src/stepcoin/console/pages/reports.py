"""Console page: the moderation queue of reports of walkers (admins and support).

The page calls the same service as /v1/admin/reports (stepcoin.social.service.resolve_report:
the resolution and its audit row in one transaction; never a report about or by oneself)."""

from __future__ import annotations

from typing import Annotated, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.console.web import PREFIX, ConsoleUserDep, CsrfFormDep, perform, render
from stepcoin.db import ReadSessionDep
from stepcoin.errors import InvalidInput
from stepcoin.pagination import MAX_CURSOR_LENGTH
from stepcoin.social import service
from stepcoin.social.schemas import ReportStatus

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 25
STATUSES: tuple[str, ...] = get_args(ReportStatus)
CursorParam = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]
StatusParam = Annotated[str, Query(max_length=16)]


@router.get("/reports")
async def reports_page(
    request: Request,
    user: ConsoleUserDep,
    session: ReadSessionDep,
    status: StatusParam = "open",
    cursor: CursorParam = None,
) -> Response:
    """Reports of a status (the open queue first), oldest first."""
    chosen = None if status == "all" else (status if status in STATUSES else "open")
    result = await service.admin_reports(session, status=chosen, limit=PAGE_SIZE, cursor=cursor)
    return render(
        request,
        user,
        "reports.html",
        {
            "items": result["items"],
            "next_cursor": result["next_cursor"],
            "status": chosen or "all",
            "statuses": STATUSES,
        },
        section="reports",
    )


def _report_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise InvalidInput(f"{raw!r} is not a report id.", code="invalid_ids")
    return int(raw)


@router.post("/reports/{report_id}/resolve")
async def resolve(request: Request, report_id: str, form: CsrfFormDep) -> Response:
    """Resolve one open report with an optional note (audited)."""
    back = f"{PREFIX}/reports?{urlencode({'status': form.get('status') or 'open'})}"

    async def action(session: AsyncSession) -> str:
        resolution = service.Resolution(staff_id=form.user.id, note=form.get("note") or None)
        item = await service.resolve_report(session, _report_id(report_id), resolution)
        return f"Resolved report {item['id']}."

    return await perform(request, action, back=back)
