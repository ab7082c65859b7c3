"""Driving the console over HTTP as a browser would: cookies, the CSRF token in each form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TEST_PASSWORD, register, unique_email

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF_RE.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


async def make_staff(
    client: httpx.AsyncClient, engine: AsyncEngine, role: str = "admin", **extra: Any
) -> dict[str, Any]:
    """A registered account with `role` (admin, support or user); returns the token answer
    with `email` and `password` added."""
    email = unique_email(role)
    account = await register(client, email=email, **extra)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET role = :role WHERE id = :id"),
            {"role": role, "id": account["user"]["id"]},
        )
    account["email"] = email
    account["password"] = TEST_PASSWORD
    return account


@asynccontextmanager
async def browser_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with its own cookie jar over https (console cookies are Secure)."""
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://console.test", follow_redirects=False
    ) as client:
        yield client


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = TEST_PASSWORD
) -> httpx.Response:
    """Open the sign-in page (for its CSRF cookie and field) and post the credentials."""
    page = await client.get("/admin/login")
    assert page.status_code == 200
    return await client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
    )


async def post_form(
    client: httpx.AsyncClient, page_url: str, action: str, data: dict[str, Any]
) -> httpx.Response:
    """Load `page_url`, take its CSRF token and post `data` to `action` like its form would."""
    page = await client.get(page_url)
    assert page.status_code == 200, page.text
    return await client.post(action, data={**data, "csrf_token": csrf_of(page.text)})
