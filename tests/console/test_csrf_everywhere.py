"""Every form handler of the console refuses a post without its session's CSRF token."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import text

from stepcoin.console import page_modules

# the sign-in form has no session yet: it is checked with its own double-submit token
OWN_CHECK = {"/admin/login"}


def post_paths() -> list[str]:
    paths = []
    for module in page_modules():
        for route in module.router.routes:
            if "POST" in getattr(route, "methods", set()) and route.path not in OWN_CHECK:
                paths.append(route.path)
    return paths


def concrete(path: str) -> str:
    return re.sub(
        r"\{(\w+)\}",
        lambda m: (
            "anticheat.baseline_floor_steps"
            if m.group(1) == "key"
            else str(uuid.uuid4())
            if m.group(1) in ("user_id", "order_id")
            else "1"
        ),
        path,
    )


async def test_there_are_form_handlers_to_check():
    assert len(post_paths()) >= 15


async def test_no_form_handler_accepts_a_post_without_its_csrf_token(console, engine):
    async with engine.connect() as conn:
        logs_before = (await conn.execute(text("SELECT count(*) FROM admin_logs"))).scalar_one()
    for path in post_paths():
        url = concrete(path)
        for data in ({}, {"csrf_token": "not-the-token"}):
            response = await console.post(url, data=data)
            assert response.status_code == 403, (url, response.status_code)
            assert "CSRF" in response.text, url
    async with engine.connect() as conn:
        logs_after = (await conn.execute(text("SELECT count(*) FROM admin_logs"))).scalar_one()
    assert logs_after == logs_before
