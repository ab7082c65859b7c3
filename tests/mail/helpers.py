"""Running the mail jobs in tests: the worker on the mail queue, with the test's settings."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from stepcoin.auth import tasks as auth_tasks
from stepcoin.config import Settings
from stepcoin.mail import tasks as mail_tasks
from stepcoin.worker import open_jobs
from tests.fixtures.smtp import smtp_server


def with_smtp(settings: Settings, url: str | None, **more: Any) -> Settings:
    secret = SecretStr(url) if url is not None else None
    return settings.model_copy(update={"smtp_url": secret, **more})


async def run_mail_jobs(app: Any, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Run every job of the mail queue due now (password-reset links, then the mails they
    write, then sending), as the worker does, with these settings."""
    monkeypatch.setattr(mail_tasks, "get_settings", lambda: settings)
    monkeypatch.setattr(auth_tasks, "get_settings", lambda: settings)
    async with open_jobs(app.state.database) as jobs:
        await jobs.run_worker_async(wait=False, install_signal_handlers=False, queues=["mail"])


@pytest.fixture
async def mailbox(app: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A real SMTP server, and `await mailbox.deliver(n)`: run the mail jobs due now into it
    and wait for n mails in all."""
    with smtp_server() as box:

        async def deliver(count: int) -> list[Any]:
            await run_mail_jobs(app, monkeypatch, with_smtp(settings, box.url))
            return box.wait_for(count)

        box.deliver = deliver  # type: ignore[attr-defined]
        yield box
