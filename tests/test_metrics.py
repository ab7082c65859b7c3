"""/metrics: the named series appear after some requests, with route templates as labels."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from stepcoin import metrics
from tests.conftest import bearer, register


def _me_count(body: str) -> float:
    """GET /v1/me answered 200 so far (the counter is process-wide: compare before/after)."""
    match = re.search(
        r'stepcoin_http_requests_total\{method="GET",route="/v1/me",status="200"\} ([0-9.e+]+)',
        body,
    )
    return float(match.group(1)) if match else 0.0


async def test_metrics_show_the_named_series_after_some_requests(
    client, scraper, engine, monkeypatch
):
    monkeypatch.setattr(metrics, "LEDGER_SETTLE_SECONDS", 0)
    metrics.DATABASE_COLLECTOR.snapshot.taken = float("-inf")
    walker = await register(client)
    token = walker["access_token"]
    before = _me_count((await scraper.get("/metrics")).text)
    for _ in range(3):
        assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    missing = "/v1/orders/00000000-0000-0000-0000-000000000000"
    assert (await client.get(missing, headers=bearer(token))).status_code == 404
    assert (await client.get("/no/such/path")).status_code == 404

    response = await scraper.get("/metrics")
    assert response.status_code == 200
    body = response.text
    families = {f.name: f for f in text_string_to_metric_families(body)}
    for name in (
        "stepcoin_http_requests",
        "stepcoin_http_request_duration_seconds",
        "stepcoin_db_pool_checked_out",
        "stepcoin_db_pool_size",
        "stepcoin_job_queue_depth",
        "stepcoin_jobs_failed",
        "stepcoin_orders",
        "stepcoin_mail_unsent",
        "stepcoin_mail_oldest_unsent_seconds",
        "stepcoin_coins_issued",
        "stepcoin_coins_redeemed",
        "stepcoin_step_records_written",
    ):
        assert name in families, f"{name} missing from /metrics"
    assert _me_count(body) - before == 3
    assert 'route="/v1/orders/{order_id}"' in body  # the template, never the raw path
    assert missing not in body
    assert 'route="unmatched",status="404"' in body
    assert (
        'stepcoin_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/me"}'
        in body
    )


async def test_metrics_refuse_an_outside_client(client):
    """The business figures are not for anyone who can reach the API."""
    response = await client.get("/metrics")  # 203.0.113.7, not loopback
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "metrics_forbidden"
    assert "stepcoin_" not in response.text


async def test_with_a_token_only_the_token_opens_metrics(app, client, scraper, monkeypatch):
    from pydantic import SecretStr

    token = "metrics-token-0123456789abcdef0123456789"
    monkeypatch.setattr(app.state.settings, "metrics_token", SecretStr(token))
    assert (await client.get("/metrics", headers=bearer(token))).status_code == 200
    assert (await client.get("/metrics", headers=bearer(token + "x"))).status_code == 403
    assert (await client.get("/metrics")).status_code == 403
    assert (await scraper.get("/metrics")).status_code == 403  # the token rules, also locally
