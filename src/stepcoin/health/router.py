"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from stepcoin import metrics as prometheus_metrics
from stepcoin.errors import problem_response
from stepcoin.migrate import applied_heads, expected_heads

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(request: Request) -> Any:
    """Ready for traffic: the database answers and its migrations are current."""
    database = request.app.state.database
    try:
        current = await applied_heads(database.engine)
    except Exception as exc:
        return problem_response(
            503, "database_unavailable", "Not ready", f"database unreachable: {type(exc).__name__}"
        )
    expected = expected_heads()
    if current != expected:
        return problem_response(
            503,
            "migrations_pending",
            "Not ready",
            f"database at {sorted(current)}, code expects {sorted(expected)}: "
            "run `stepcoin migrate`",
        )
    return {"status": "ready", "database": "ok", "migrations": sorted(current)}


@router.get("/metrics", include_in_schema=True)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition (see stepcoin.metrics for the series)."""
    body, content_type = await prometheus_metrics.render(request.app)
    return Response(body, media_type=content_type)
