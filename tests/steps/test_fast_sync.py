"""main.HotSync (issue 13): POST /v1/steps without FastAPI's routing answers byte for byte what
the FastAPI route answers, and everything but a clean success falls through to that route."""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from stepcoin import main
from stepcoin.db import session_scope
from stepcoin.steps import service
from stepcoin.steps.schemas import StepSyncIn, StepSyncOut
from stepcoin.users.service import set_active
from tests.conftest import bearer, register
from tests.steps.helpers import day, ledger_ok, rec, today
from tests.test_fast_pool import assert_no_leftovers


@pytest.fixture
def fast_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For every request that reached HotSync._answer: whether it answered there."""
    calls: list[bool] = []
    real = main.HotSync._answer

    async def counting(self: Any, scope: Any, user_id: uuid.UUID, body: bytes) -> bytes | None:
        answer = await real(self, scope, user_id, body)
        calls.append(answer is not None)
        return answer

    monkeypatch.setattr(main.HotSync, "_answer", counting)
    return calls


def _route_only(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(self: Any, scope: Any, user_id: uuid.UUID, body: bytes) -> None:
        return None

    monkeypatch.setattr(main.HotSync, "_answer", never)


async def _post(client: Any, token: str, records: list[dict[str, Any]]) -> Any:
    return await client.post("/v1/steps", json={"records": records}, headers=bearer(token))


STEPS: list[tuple[str, list[dict[str, Any]]]] = [
    ("first sync", [rec(2, 6000), rec(1, 7000), rec(0, 3000, device_id="phone-1")]),
    ("a higher re-sync and a new source", [rec(1, 9000), rec(1, 8000, "google_fit")]),
    (
        "duplicates in a batch",
        [
            rec(0, 4000, client_record_id="r", client_record_version=2),
            rec(0, 4500, client_record_id="r", client_record_version=1),
            rec(3, 5000),
            rec(3, 5100),
        ],
    ),
    ("an idempotent resend", [rec(3, 5100), rec(2, 6000)]),
    ("a stale version", [rec(0, 9999, client_record_id="r", client_record_version=1)]),
    ("held for review, refused, withdrawn", [rec(4, 3000, "manual", manual=True)]),
    ("refused days", [rec(-1, 100), rec(30, 100), rec(5, 150_000)]),
    ("a deletion and a lower re-sync", [rec(2, 0, deleted=True), rec(1, 2000)]),
]


async def test_fast_answers_are_byte_for_byte_the_routes_answers(
    app, client, engine, fast_calls, monkeypatch
):
    fast_walker = (await register(client))["access_token"]
    routed_walker = (await register(client))["access_token"]
    fast = []
    for _name, records in STEPS:
        fast.append(await _post(client, fast_walker, records))
    assert fast_calls == [True] * len(STEPS)
    _route_only(monkeypatch)
    for (name, records), answer in zip(STEPS, fast, strict=True):
        # the same answers from the walker's own phone (one phone for both would link them:
        # the shared_device rule)
        own_phone = [
            {**r, "device_id": r["device_id"] + "-b"} if "device_id" in r else r for r in records
        ]
        routed = await _post(client, routed_walker, own_phone)
        assert routed.status_code == answer.status_code == 200, name
        assert routed.content == answer.content, name
        for header in ("content-type", "content-length"):
            assert routed.headers[header] == answer.headers[header], name
        assert len(answer.headers["x-request-id"]) == 32
    paid = [r["coins_awarded"] for r in orjson.loads(fast[0].content)["results"]]
    assert paid == [60, 70, 30]
    duplicates = orjson.loads(fast[2].content)["results"]
    assert ["duplicate_in_batch" in r["reasons"] for r in duplicates] == [
        False,
        True,
        True,
        False,
    ]
    await ledger_ok(engine)


async def test_a_conflict_is_retried_on_the_fast_path_as_on_the_route(
    app, client, engine, fast_calls, monkeypatch
):
    """The snapshot's version is made stale once: the apply function answers `conflict`, the
    batch is judged again on a fresh snapshot and paid once."""
    real = service._parse_snapshot

    def stale_once() -> Any:
        state = {"left": 1}

        def parse(row: Any) -> service.Snapshot:
            snapshot = real(row)
            if state["left"]:
                state["left"] -= 1
                snapshot.version -= 1
            return snapshot

        return parse

    records = [rec(1, 5000), rec(0, 2500)]
    answers = []
    for fall_through in (False, True):
        if fall_through:
            _route_only(monkeypatch)
        monkeypatch.setattr(service, "_parse_snapshot", stale_once())
        walker = (await register(client))["access_token"]
        answers.append(await _post(client, walker, records))
    assert fast_calls == [True]
    assert answers[0].status_code == answers[1].status_code == 200
    assert answers[0].content == answers[1].content
    assert [r["coins_awarded"] for r in answers[0].json()["results"]] == [50, 25]
    await ledger_ok(engine)


def test_the_answer_is_what_the_response_model_writes():
    """service.results_json writes the bytes FastAPI wrote through StepSyncOut."""
    results = [
        {
            "date": date(2026, 1, 2),
            "source": "healthkit",
            "status": "approved",
            "coins_awarded": -7,
            "coins_pending": 0,
            "reasons": [],
        },
        {
            "date": date(2026, 12, 31),
            "source": "manual",
            "status": "flagged",
            "coins_awarded": 0,
            "coins_pending": 40,
            "reasons": ["manual_entry", "above_baseline", "duplicate_in_batch"],
        },
    ]
    model = StepSyncOut.model_validate({"results": results})
    assert service.results_json(results) == model.model_dump_json().encode()


@pytest.mark.parametrize(
    ("auth", "content_type", "body", "status", "code"),
    [
        ("none", "application/json", {"records": [{"steps": 1}]}, 401, "missing_token"),
        ("forged", "application/json", {"records": []}, 401, "invalid_token"),
        ("token", "application/json", {"records": []}, 422, "validation_error"),
        ("token", "application/json", {"records": [rec(0, -1)]}, 422, None),
        ("token", "application/json", {"records": [rec(0, 1, "fitbit")]}, 422, None),
        ("token", "application/json", {"records": [rec(0, 1, x=1)]}, 422, None),
        ("token", "application/json", {"records": [rec(10_000, 1)]}, 422, None),
        ("token", "application/json", {"records": [rec(0, 1)] * 501}, 422, None),
        ("token", "application/json", {"record": []}, 422, None),
        ("token", "application/json", [], 422, None),
        ("token", "application/json", b"{not json", 422, "malformed_json"),
        ("token", "application/json", b"", 422, None),
        ("token", "text/plain", {"records": [rec(0, 1)]}, 422, None),
    ],
)
async def test_what_is_not_a_clean_success_falls_through_to_the_route(
    client, fast_calls, monkeypatch, auth, content_type, body, status, code
):
    token = (await register(client))["access_token"]
    headers = {"Content-Type": content_type}
    if auth == "token":
        headers.update(bearer(token))
    elif auth == "forged":
        headers.update(bearer(token[:-4] + "AAAA"))
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    answer = await client.post("/v1/steps", content=content, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    if code:
        assert answer.json()["code"] == code
    assert not any(fast_calls)
    _route_only(monkeypatch)
    routed = await client.post("/v1/steps", content=content, headers=headers)
    assert (routed.status_code, routed.json()) == (answer.status_code, answer.json())


async def test_a_deactivated_account_falls_through_and_is_refused(app, client, fast_calls):
    account = await register(client)
    async with session_scope(app.state.database) as session:
        await set_active(session, uuid.UUID(account["user"]["id"]), False, admin_id=None)
    answer = await _post(client, account["access_token"], [rec(0, 1000)])
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_token"
    assert fast_calls == [False]


async def test_a_database_failure_on_the_fast_path_falls_through(app, client, monkeypatch):
    token = (await register(client))["access_token"]
    database = app.state.database
    real = database.fast_pool
    calls = [0]

    async def failing_once() -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise ConnectionError("the fast pool is gone")
        return await real()

    monkeypatch.setattr(database, "fast_pool", failing_once)
    answer = await _post(client, token, [rec(0, 2000)])
    assert answer.status_code == 200  # the FastAPI route answered it
    assert answer.json()["results"][0]["coins_awarded"] == 20
    assert calls[0] == 2


def _steps_count(body: str) -> float:
    match = re.search(
        r'stepcoin_http_requests_total\{method="POST",route="/v1/steps",status="200"\} '
        r"([0-9.e+]+)",
        body,
    )
    return float(match.group(1)) if match else 0.0


async def test_request_id_and_metrics_are_kept_on_the_fast_path(client, scraper, fast_calls):
    token = (await register(client))["access_token"]
    before = _steps_count((await scraper.get("/metrics")).text)
    answer = await client.post(
        "/v1/steps",
        json={"records": [rec(0, 1000)]},
        headers={**bearer(token), "X-Request-ID": "sync-123"},
    )
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == "sync-123"
    assert fast_calls == [True]
    assert _steps_count((await scraper.get("/metrics")).text) == before + 1


async def test_the_input_guard_still_stands_in_front(client, fast_calls):
    token = (await register(client))["access_token"]
    body = (
        b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit", "device_id": "a\\u0000"}]}'
    )
    answer = await client.post(
        "/v1/steps",
        content=body % day(0).encode(),
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["type"] == "string_nul"
    assert fast_calls == []


async def test_syncs_leave_no_session_state_on_the_fast_pool(app, client):
    tokens = [(await register(client))["access_token"] for _ in range(3)]
    for token in tokens:
        assert (await _post(client, token, [rec(1, 3000), rec(0, 4000)])).status_code == 200
        assert (await _post(client, token, [rec(0, 4000)])).status_code == 200
    await assert_no_leftovers(app)


_TODAY = today().isoformat()
_PARSE_CASES = [
    b'{"records": [{"date": "%s", "steps": 1e3, "source": "healthkit"}]}',
    b'{"records": [{"date": "%s", "steps": 1000.0, "source": "healthkit"}]}',
    b'{"records": [{"date": "%s", "steps": 1000.5, "source": "healthkit"}]}',
    b'{"records": [{"date": "%s", "steps": "1000", "source": "healthkit"}]}',
    b'{"records": [{"date": "%s", "steps": NaN, "source": "healthkit"}]}',
    b'{"records": [{"date": "%s", "steps": Infinity, "source": "healthkit"}]}',
    b'{"records": [{"date": "%s", "steps": 1, "steps": 2, "source": "healthkit"}]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit", "manual": "true"}]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit", "manual": 1}]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit", "deleted": "no"}]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "HealthKit"}]}',
    b'{"records": [{"date": "%sT00:00:00", "steps": 1, "source": "healthkit"}]}',
    b'{"records": [{"date": "%sT10:00:00", "steps": 1, "source": "healthkit"}]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit", "device_id": ""}]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit", "device_id": 5}]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit",'
    b' "client_record_version": -1}]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit", "intervals": [{"start":'
    b' "2026-01-01T10:00:00Z", "end": "2026-01-01T10:05:00+01:00", "steps": 5}]}]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit", "intervals": [{"start":'
    b' "2026-01-01T10:00:00", "end": "2026-01-01T11:00:00", "steps": 5}]}]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit", "intervals": [{"start":'
    b' 1767261600, "end": 1767265200, "steps": 5}]}]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit", "intervals": null}]}',
    b'  {"records": [{"date": "%s", "steps": 1, "source": "healthkit"}]}  \n',
    b'\xef\xbb\xbf{"records": [{"date": "%s", "steps": 1, "source": "healthkit"}]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit"}]} x',
    b'{"records": [{"date": "%s", "steps": 1, "source": "healthkit"},]}',
    b'{"records": [{"date": "%s", "steps": 1, "source": "heal\\u0074hkit"}]}',
    b'{"records": [{"date": "%s", "steps": true, "source": "healthkit"}]}',
    b'{"records": {"0": {"date": "%s", "steps": 1, "source": "healthkit"}}}',
]


@pytest.mark.parametrize("template", _PARSE_CASES)
def test_the_fast_parse_accepts_exactly_what_the_route_accepts(template: bytes):
    """The route reads the body with json.loads and validates it in Python mode; the fast path
    validates the bytes in JSON mode. Whatever the fast path accepts, the route accepts with
    the same values (what it refuses falls through, so the route may accept more)."""
    body = template.replace(b"%s", _TODAY.encode())
    try:
        fast = StepSyncIn.model_validate_json(body)
    except ValidationError:
        return
    routed = StepSyncIn.model_validate(json.loads(body))
    assert fast == routed


def test_the_cached_latest_day_is_tomorrow_in_utc():
    from stepcoin.steps import schemas

    assert schemas._latest_step_day() == today() + timedelta(days=1)
