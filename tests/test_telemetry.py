"""FastAPI's native OpenTelemetry: only when the operator asks for it (STEPCOIN_OPENTELEMETRY)."""

from __future__ import annotations

import httpx
import pytest

from stepcoin.main import create_app


async def test_providers_are_looked_for_only_when_asked(settings, monkeypatch):
    pytest.importorskip("fastapi.telemetry")  # FastAPI before its native telemetry: no check
    from opentelemetry import trace

    looked: list[int] = []
    real = trace.get_tracer_provider

    def counting() -> trace.TracerProvider:
        looked.append(1)
        return real()

    monkeypatch.setattr(trace, "get_tracer_provider", counting)
    seen = {}
    for wanted in (False, True):
        looked.clear()
        app = create_app(settings.model_copy(update={"opentelemetry": wanted}), run_worker=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                for _ in range(3):
                    assert (await c.get("/healthz")).status_code == 200
        seen[wanted] = len(looked)
    assert seen[False] == 0  # off (the default): no look on any request
    assert seen[True] >= 3  # on: FastAPI's own check, once a request at least
