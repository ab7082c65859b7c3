"""Console pages: overview (placeholder until the economy figures land)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stepcoin.console.web import PREFIX, ConsoleUserDep, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/")
async def overview(request: Request, user: ConsoleUserDep) -> Response:
    return render(request, user, "overview.html", {}, section="overview")
