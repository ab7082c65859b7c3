"""The mail outbox: a row and its job in the caller's transaction, delivered over real SMTP
(aiosmtpd), kept when the server is down and sent later, or written to a folder in
development."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.config import Settings
from stepcoin.mail import outbox, transport
from tests.fixtures.smtp import free_port, smtp_server, text_of
from tests.mail.helpers import run_mail_jobs, with_smtp

LINK = "http://stepcoin.test/verify-email?token=abc123"


async def write_mail(engine, recipient: str = "ada@example.com", *, rollback: bool = False) -> int:
    async with AsyncSession(engine) as session, session.begin():
        outbox_id = await outbox.enqueue(
            session,
            recipient=recipient,
            subject="Hello",
            text_body=f"Open {LINK}\n",
            html_body=f'<a href="{LINK}">open</a>',
        )
        if rollback:
            await session.rollback()
    return outbox_id


async def row(engine, outbox_id: int):
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT sent_at, attempts, last_error FROM mail_outbox WHERE id = :id"),
                {"id": outbox_id},
            )
        ).one()


async def jobs_of(engine, outbox_id: int) -> list[str]:
    async with engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    text(
                        "SELECT status FROM procrastinate_jobs WHERE task_name = 'mail:send' "
                        "AND args->>'outbox_id' = :id ORDER BY id"
                    ),
                    {"id": str(outbox_id)},
                )
            ).scalars()
        )


async def test_an_outbox_row_and_its_job_deliver_the_mail_over_smtp(
    app, engine, settings, monkeypatch
):
    with smtp_server(login=("stepcoin", "p@ss word")) as mailbox:
        outbox_id = await write_mail(engine)
        assert await jobs_of(engine, outbox_id) == ["todo"]  # queued with the row
        url = mailbox.url.replace("p@ss word", "p%40ss%20word")  # URL-encoded credentials
        await run_mail_jobs(app, monkeypatch, with_smtp(settings, url))
        [message] = mailbox.wait_for(1)
    assert mailbox.logins == ["stepcoin"]
    assert mailbox.recipients == [["ada@example.com"]]
    assert message["Subject"] == "Hello"
    assert message["From"] == settings.mail_from
    assert "token=abc123" in text_of(message)  # the text part carries the link
    assert message.get_body(preferencelist=("html",)) is not None
    sent = await row(engine, outbox_id)
    assert sent.sent_at is not None and sent.attempts == 1 and sent.last_error is None
    assert await jobs_of(engine, outbox_id) == ["succeeded"]


async def test_a_rolled_back_change_sends_no_mail(engine):
    outbox_id = await write_mail(engine, rollback=True)
    async with engine.connect() as conn:
        assert (
            await conn.execute(
                text("SELECT count(*) FROM mail_outbox WHERE id = :id"), {"id": outbox_id}
            )
        ).scalar_one() == 0
    assert await jobs_of(engine, outbox_id) == []


async def test_smtp_down_keeps_the_mail_and_a_retry_delivers_it_later(
    app, engine, settings, monkeypatch
):
    port = free_port()  # nothing listens there yet
    down = with_smtp(settings, f"smtp://127.0.0.1:{port}?timeout=2")
    outbox_id = await write_mail(engine)
    await run_mail_jobs(app, monkeypatch, down)
    failed = await row(engine, outbox_id)
    assert failed.sent_at is None and failed.attempts == 1
    assert failed.last_error  # why, for whoever looks
    assert await jobs_of(engine, outbox_id) == ["todo"]  # a retry is scheduled (backoff)

    with smtp_server(port=port) as mailbox:
        async with engine.begin() as conn:  # the backoff's wait has passed
            await conn.execute(
                text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'")
            )
        await run_mail_jobs(app, monkeypatch, down)
        [message] = mailbox.wait_for(1)
    assert "token=abc123" in text_of(message)
    delivered = await row(engine, outbox_id)
    assert delivered.sent_at is not None and delivered.attempts == 2


async def test_the_sweep_queues_unsent_mails_whose_jobs_gave_up(app, engine, settings, monkeypatch):
    outbox_id = await write_mail(engine)
    async with engine.begin() as conn:  # the job ran out of retries long ago
        await conn.execute(text("DELETE FROM procrastinate_jobs WHERE task_name = 'mail:send'"))
        await conn.execute(
            text("UPDATE mail_outbox SET created_at = now() - interval '2 hours' WHERE id = :id"),
            {"id": outbox_id},
        )
    fresh_id = await write_mail(engine, "fresh@example.com")  # has its own job: left alone
    assert await outbox.sweep(app.state.database) == 1
    assert await outbox.sweep(app.state.database) == 0  # a job waits: no second one
    assert await jobs_of(engine, outbox_id) == ["todo"]
    assert await jobs_of(engine, fresh_id) == ["todo"]
    with smtp_server() as mailbox:
        await run_mail_jobs(app, monkeypatch, with_smtp(settings, mailbox.url))
        mailbox.wait_for(2)
    assert sorted(m["To"] for m in mailbox.messages) == ["ada@example.com", "fresh@example.com"]
    assert (await row(engine, outbox_id)).sent_at is not None


async def test_a_sent_mail_is_never_sent_twice(app, engine, settings):
    outbox_id = await write_mail(engine)
    with smtp_server() as mailbox:
        smtp = with_smtp(settings, mailbox.url)
        assert await outbox.send_one(app.state.database, smtp, outbox_id) == "sent"
        assert await outbox.send_one(app.state.database, smtp, outbox_id) == "already_sent"
    assert len(mailbox.messages) == 1


async def test_without_smtp_in_development_the_mail_is_a_file_and_a_log_line(
    app, engine, settings, tmp_path, caplog
):
    dev = settings.model_copy(
        update={"env": "development", "smtp_url": None, "data_dir": str(tmp_path)}
    )
    outbox_id = await write_mail(engine)
    with caplog.at_level(logging.INFO, logger="stepcoin.mail"):
        assert await outbox.send_one(app.state.database, dev, outbox_id) == "sent"
    [eml] = list((tmp_path / "mail").glob("*.eml"))
    assert eml.name.endswith(f"-{outbox_id}.eml")
    assert "token=abc123" in eml.read_text()
    assert LINK in caplog.text
    assert "mail: no SMTP configured; mails go to the log and to " + str(tmp_path / "mail") == (
        transport.describe(dev)
    )


async def test_production_without_smtp_keeps_every_mail_and_says_so(app, engine, settings, caplog):
    production = settings.model_copy(update={"env": "production", "smtp_url": None})
    outbox_id = await write_mail(engine)
    with caplog.at_level(logging.ERROR, logger="stepcoin.mail"):
        transport.announce(production)
        with pytest.raises(outbox.MailNotSent):
            await outbox.send_one(app.state.database, production, outbox_id)
    assert "NOT sent until STEPCOIN_SMTP_URL is set" in caplog.text
    kept = await row(engine, outbox_id)
    assert kept.sent_at is None and "STEPCOIN_SMTP_URL" in kept.last_error


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:2525", ("127.0.0.1", 2525, None, None, False, False)),
        ("smtp://relay", ("relay", 25, None, None, False, False)),
        (
            "smtp://u%40x:p%3Aw@mail.example.com:587?starttls=true",
            ("mail.example.com", 587, "u@x", "p:w", False, True),
        ),
        ("smtps://u:p@mail.example.com", ("mail.example.com", 465, "u", "p", True, False)),
    ],
)
def test_the_smtp_url_forms(url, expected):
    target = transport.parse_smtp_url(url)
    got = (
        target.hostname,
        target.port,
        target.username,
        target.password,
        target.use_tls,
        target.start_tls,
    )
    assert got == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com",
        "smtp://",
        "smtp://h?starttls=maybe",
        "smtps://h?starttls=true",
        "smtp://h?tls=1",
        "smtp://h?timeout=0",
    ],
)
def test_a_malformed_smtp_url_is_refused(url, settings):
    with pytest.raises(ValueError, match="STEPCOIN_SMTP_URL"):
        transport.parse_smtp_url(url)
    with pytest.raises(ValueError, match="STEPCOIN_SMTP_URL"):
        transport.announce(settings.model_copy(update={"smtp_url": SecretStr(url)}))


def test_links_point_at_the_public_url(settings):
    assert settings.public_base_url == "http://127.0.0.1:8000"
    public = Settings(env="test", public_url="https://app.example.com/")
    assert public.public_base_url == "https://app.example.com"
    with pytest.raises(ValueError, match="STEPCOIN_PUBLIC_URL"):
        Settings(env="test", public_url="javascript:alert(1)")


def test_a_password_sent_without_tls_over_the_network_is_warned_about(settings, caplog):
    with caplog.at_level(logging.WARNING, logger="stepcoin.mail"):
        transport.announce(with_smtp(settings, "smtp://u:p@127.0.0.1:2525"))
        assert "unencrypted" not in caplog.text  # loopback: a local relay
        transport.announce(with_smtp(settings, "smtp://u:p@mail.example.com:25"))
    assert "unencrypted" in caplog.text


async def test_starttls_required_never_falls_back_to_plain_text(app, engine, settings):
    outbox_id = await write_mail(engine)
    with smtp_server(login=("stepcoin", "secret")) as mailbox:  # offers no STARTTLS
        url = mailbox.url + "?starttls=true"
        with pytest.raises(outbox.MailNotSent):
            await outbox.send_one(app.state.database, with_smtp(settings, url), outbox_id)
    assert mailbox.messages == [] and mailbox.logins == []
    kept = await row(engine, outbox_id)
    assert kept.sent_at is None and "STARTTLS" in kept.last_error.upper()
