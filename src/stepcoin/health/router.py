"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import ipaddress
import secrets
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
    """Ready for traffic: the database answers and its migrations are current; with read
    replicas configured, each standby's state (ok, lagging, paused, down, not_standby)."""
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
    answer: dict[str, Any] = {"status": "ready", "database": "ok", "migrations": sorted(current)}
    if database.replicas is not None:
        # standbys never make the process unready: without one, the primary serves every read
        answer["replicas"] = database.replicas.status()
    return answer


def _may_scrape(request: Request) -> bool:
    """The business figures are for the operator's scraper: with STEPCOIN_METRICS_TOKEN set,
    only a request carrying it as a bearer token; without one, only a loopback client (behind a
    trusted proxy the client is the forwarded address, so outside callers are refused)."""
    token = request.app.state.settings.metrics_token
    if token is not None:
        sent = request.headers.get("authorization", "")
        return secrets.compare_digest(sent.encode(), f"Bearer {token.get_secret_value()}".encode())
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@router.get("/metrics", include_in_schema=True, response_model=None)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition (see stepcoin.metrics for the series); loopback or token."""
    if not _may_scrape(request):
        return problem_response(
            403,
            "metrics_forbidden",
            "Forbidden",
            "Metrics are served to loopback clients, or with STEPCOIN_METRICS_TOKEN as a "
            "bearer token.",
        )
    body, content_type = await prometheus_metrics.render(request.app)
    return Response(body, media_type=content_type)
