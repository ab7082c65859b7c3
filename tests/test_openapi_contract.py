"""The OpenAPI document tells the truth (issue 14): schemathesis, with every check and the
stateful phase over the declared links, finds nothing against a live server.

schemathesis runs as its command line does by hand, with the checked-in schemathesis.toml
(the few per-operation allowances live there, each with its reason), a walker's token for the
walker routes and an admin's for /v1/admin, and a product in stock so orders can be placed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.admin.helpers import make_staff
from tests.conftest import lift_rate_limits, register
from tests.fixtures.live import LiveServer
from tests.shop.helpers import product, walker_with_coins
from tests.steps.helpers import rec, sync

ROOT = Path(__file__).resolve().parents[1]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.mark.slow
async def test_schemathesis_finds_no_failure(
    client: httpx.AsyncClient, engine: AsyncEngine, live_server: LiveServer, tmp_path: Path
) -> None:
    await lift_rate_limits(engine)  # thousands of requests from one address: the contract
    walker = await walker_with_coins(client, engine, 100_000)
    admin = await make_staff(client, engine)
    for _ in range(3):
        await product(engine, price=10, stock=1000)
    # Data the links lead to: flagged records in the review queue, and adjustment requests
    # another admin made (above the approval threshold) for this admin to decide on.
    second_admin = await make_staff(client, engine)
    for _ in range(2):
        flagged = await register(client)
        results = await sync(client, flagged["access_token"], rec(1, 9000, manual=True))
        assert results[0]["status"] == "flagged"
        response = await client.post(
            f"/v1/admin/users/{flagged['user']['id']}/adjustments",
            json={"amount": 20_000, "reason": "a large goodwill credit"},
            headers=second_admin["headers"],
        )
        assert response.status_code == 202, response.text
    env: dict[str, Any] = {
        **os.environ,
        "STEPCOIN_WALKER_TOKEN": walker["access_token"],
        "STEPCOIN_ADMIN_TOKEN": admin["access_token"],
        "NO_COLOR": "1",
    }
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(ROOT / "schemathesis.toml"),
        "run",
        f"{live_server.url}/openapi.json",
        "--no-color",
        "--seed",
        os.environ.get("STEPCOIN_SCHEMATHESIS_SEED", "1"),  # another seed explores further
    ]
    result = await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # its .hypothesis and .schemathesis folders stay out of the tree
        timeout=900,
    )
    output = result.stdout + result.stderr
    (tmp_path / "schemathesis.log").write_text(output)
    assert result.returncode == 0, output[-30000:]
