"""The OpenAPI document's own rules (issue 14), checked without a server: every code the
services raise has its status in stepcoin.openapi, every error answer is problem+json with its
codes, operation ids make good method names. tests/test_openapi_contract.py then holds the
document against a live server with schemathesis."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from stepcoin.errors import PROBLEM_MEDIA_TYPE
from stepcoin.openapi import PROBLEM_STATUS

SRC = Path(__file__).resolve().parents[1] / "src" / "stepcoin"
RAISED = re.compile(r'\bcode="([a-z_]+)"')


def raised_codes() -> set[str]:
    """Every `code="..."` of the API's code (the console answers HTML, not problem+json)."""
    codes: set[str] = set()
    for path in SRC.rglob("*.py"):
        if "console" not in path.relative_to(SRC).parts:
            codes |= set(RAISED.findall(path.read_text()))
    return codes


def test_every_code_raised_has_its_status() -> None:
    missing = raised_codes() - set(PROBLEM_STATUS)
    assert not missing, f"add to stepcoin.openapi.PROBLEM_STATUS: {sorted(missing)}"


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


async def test_operation_ids_are_method_names(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", operation_id), operation_id
        assert "v1" not in operation_id, operation_id
    assert {"sync_steps", "get_wallet", "create_order", "cancel_order", "register"} <= set(ids)


async def test_every_error_is_problem_json_with_its_codes(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        responses = operation["responses"]
        assert "422" in responses, (method, path)
        if operation.get("security"):
            assert "401" in responses, (method, path)
        if path.startswith("/v1/admin/"):
            assert "403" in responses, (method, path)
        for status, response in responses.items():
            if int(status) < 400:
                continue
            schema = response["content"][PROBLEM_MEDIA_TYPE]["schema"]
            assert schema["allOf"][0] == {"$ref": "#/components/schemas/Problem"}
            codes = schema["allOf"][1]["properties"]["code"]["enum"]
            assert codes and all(PROBLEM_STATUS.get(c, int(status)) for c in codes)


async def test_metrics_is_text_and_bounds_are_integers(document: dict[str, Any]) -> None:
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    item = document["components"]["schemas"]["OrderItemIn"]["properties"]["product_id"]
    assert item["maximum"] == 2**63 - 1 and isinstance(item["maximum"], int)


async def test_links_and_examples_are_declared(document: dict[str, Any]) -> None:
    create_order = document["paths"]["/v1/orders"]["post"]
    links = create_order["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == {"get_order", "cancel_order"}
    assert create_order["requestBody"]["content"]["application/json"]["example"]["items"]
