"""Liveness, readiness (database and migrations), and metrics."""

from __future__ import annotations

from sqlalchemy import text


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_ready_then_not_when_migrations_differ(client, engine):
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    async with engine.begin() as conn:
        current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        stale = await client.get("/readyz")
        assert stale.status_code == 503
        assert stale.json()["code"] == "migrations_pending"
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})


async def test_metrics_is_prometheus_text(scraper):
    response = await scraper.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "python_info" in response.text
