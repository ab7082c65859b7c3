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


async def test_metrics_show_the_named_series_after_some_requests(client, engine, monkeypatch):
    monkeypatch.setattr(metrics, "LEDGER_SETTLE_SECONDS", 0)
    metrics.DATABASE_COLLECTOR.snapshot.taken = float("-inf")
    walker = await register(client)
    token = walker["access_token"]
    before = _me_count((await client.get("/metrics")).text)
    for _ in range(3):
        assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    missing = "/v1/orders/00000000-0000-0000-0000-000000000000"
    assert (await client.get(missing, headers=bearer(token))).status_code == 404
    assert (await client.get("/no/such/path")).status_code == 404

    response = await client.get("/metrics")
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
