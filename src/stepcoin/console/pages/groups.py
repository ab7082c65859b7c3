"""Console pages: groups (admins and support read; admins bind a company group to an email
domain). They call the same service as /v1/admin/groups (stepcoin.social.groups.bind_domain:
the change and its audit row in one transaction)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.console.web import PREFIX, AdminFormDep, ConsoleUserDep, perform, render
from stepcoin.db import ReadSessionDep
from stepcoin.errors import InvalidInput
from stepcoin.social import groups as service

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 50
QueryParam = Annotated[str | None, Query(max_length=255)]
CursorParam = Annotated[int | None, Query(ge=1, lt=2**63)]


@router.get("/groups")
async def groups_page(
    request: Request,
    user: ConsoleUserDep,
    session: ReadSessionDep,
    q: QueryParam = None,
    cursor: CursorParam = None,
) -> Response:
    """Every group, newest first, found by name or bound domain."""
    query = (q or "").strip() or None
    result = await service.admin_groups(session, query=query, limit=PAGE_SIZE, cursor=cursor)
    return render(
        request,
        user,
        "groups.html",
        {"items": result["items"], "next_cursor": result["next_cursor"], "q": query or ""},
        section="groups",
    )


def _group_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise InvalidInput(f"{raw!r} is not a group id.", code="invalid_ids")
    return int(raw)


@router.get("/groups/{group_id}")
async def group_page(
    request: Request, group_id: str, user: ConsoleUserDep, session: ReadSessionDep
) -> Response:
    """One group with its first members and, for a company group, its domain form."""
    group = await service.admin_group(session, _group_id(group_id))
    return render(request, user, "groups_detail.html", {"group": group}, section="groups")


@router.post("/groups/{group_id}/domain")
async def bind_domain(request: Request, group_id: str, form: AdminFormDep) -> Response:
    """Bind a company group to an email domain (blank unbinds); admins only; audited."""
    back = f"{PREFIX}/groups/{group_id}"

    async def action(session: AsyncSession) -> str:
        raw = (form.get("email_domain") or "").strip() or None
        group = await service.bind_domain(session, form.user.id, _group_id(group_id), raw)
        if group["email_domain"]:
            return f"Group {group['id']} admits verified emails of {group['email_domain']} now."
        return f"Group {group['id']} is bound to no domain now."

    return await perform(request, action, back=back)
