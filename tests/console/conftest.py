"""Fixtures for the console: signed-in admin and support clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.console.helpers import browser_client, make_staff, sign_in


@pytest.fixture
async def admin_account(client: httpx.AsyncClient, engine: Any) -> dict[str, Any]:
    return await make_staff(client, engine, "admin")


@pytest.fixture
async def console(app: Any, admin_account: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in to the console as an admin (`console.account` is the account)."""
    async with browser_client(app) as c:
        response = await sign_in(c, admin_account["email"])
        assert response.status_code == 303, response.text
        c.account = admin_account  # type: ignore[attr-defined]
        yield c


@pytest.fixture
async def support_console(
    app: Any, client: httpx.AsyncClient, engine: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as a support agent."""
    account = await make_staff(client, engine, "support")
    async with browser_client(app) as c:
        response = await sign_in(c, account["email"])
        assert response.status_code == 303, response.text
        c.account = account  # type: ignore[attr-defined]
        yield c
