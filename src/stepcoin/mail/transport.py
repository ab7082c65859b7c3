"""How a mail leaves: SMTP (aiosmtplib) when STEPCOIN_SMTP_URL is set; otherwise, outside
production, the log and a folder of .eml files a newcomer can open (<data dir>/mail).

STEPCOIN_SMTP_URL, exactly:

- ``smtp://[user[:password]@]host[:port]`` — plain SMTP (port 25 by default), for a relay on
  the same machine or network;
- ``smtp://user:password@host:587?starttls=true`` — STARTTLS after connecting (required: a
  server that does not offer it is an error, never a silent plain-text login);
- ``smtps://user:password@host[:465]`` — implicit TLS from the first byte;
- ``?timeout=<seconds>`` (default 15) on any of them. User and password are URL-encoded
  (``%40`` for ``@``).

Production without STEPCOIN_SMTP_URL does not refuse to start (the app works; mails wait):
it says so loudly at start and on every attempt, and keeps every mail unsent in the outbox
until SMTP is configured, when the outbox sweep sends them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from stepcoin.config import Settings
from stepcoin.embedded import default_data_dir

logger = logging.getLogger("stepcoin.mail")

DEFAULT_TIMEOUT = 15.0
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class MailNotConfigured(RuntimeError):
    """Production without STEPCOIN_SMTP_URL: the mail stays in the outbox."""


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool
    timeout: float


def parse_smtp_url(url: str) -> SmtpTarget:
    """STEPCOIN_SMTP_URL as connection settings; ValueError names what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("STEPCOIN_SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("STEPCOIN_SMTP_URL names no host")
    query = {key: values[-1].lower() for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"starttls", "timeout"}
    if unknown:
        raise ValueError(f"STEPCOIN_SMTP_URL has unknown options: {', '.join(sorted(unknown))}")
    starttls = query.get("starttls", "false")
    if starttls not in TRUE | FALSE:
        raise ValueError("STEPCOIN_SMTP_URL: starttls must be true or false")
    use_tls = parts.scheme == "smtps"
    if use_tls and starttls in TRUE:
        raise ValueError("STEPCOIN_SMTP_URL: smtps:// is TLS already; drop ?starttls=true")
    try:
        timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
        port = parts.port or (465 if use_tls else 25)
    except ValueError as exc:
        raise ValueError(f"STEPCOIN_SMTP_URL: {exc}") from exc
    if not 0 < timeout <= 300:
        raise ValueError("STEPCOIN_SMTP_URL: timeout must be between 0 and 300 seconds")
    return SmtpTarget(
        hostname=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        use_tls=use_tls,
        start_tls=starttls in TRUE,
        timeout=timeout,
    )


def mail_folder(settings: Settings) -> Path:
    """Where development mails are written: <data dir>/mail (STEPCOIN_DATA_DIR, else the
    embedded PostgreSQL's default data dir)."""
    base = Path(settings.data_dir).expanduser() if settings.data_dir else default_data_dir()
    return base / "mail"


def describe(settings: Settings) -> str:
    """Where mails go, in one line (logged at start)."""
    if settings.smtp_url is not None:
        target = parse_smtp_url(settings.smtp_url.get_secret_value())
        security = "TLS" if target.use_tls else "STARTTLS" if target.start_tls else "no TLS"
        return f"mail: SMTP {target.hostname}:{target.port} ({security})"
    if settings.env == "production":
        return "mail: NO SMTP configured (STEPCOIN_SMTP_URL): mails wait in the outbox"
    return f"mail: no SMTP configured; mails go to the log and to {mail_folder(settings)}"


def announce(settings: Settings) -> None:
    """Say at start where mails go; production without SMTP is said loudly. A malformed
    STEPCOIN_SMTP_URL stops the start (ValueError)."""
    line = describe(settings)
    if settings.smtp_url is not None:
        target = parse_smtp_url(settings.smtp_url.get_secret_value())
        plain = not (target.use_tls or target.start_tls)
        if plain and target.password and target.hostname not in LOOPBACK:
            logger.warning(
                line + ": the SMTP password crosses the network unencrypted; use "
                "?starttls=true or smtps://"
            )
    if settings.smtp_url is None and settings.env == "production":
        logger.error(
            line + ": verification and password-reset mails are NOT sent until "
            "STEPCOIN_SMTP_URL is set"
        )
    else:
        logger.info(line)


def build_message(
    settings: Settings,
    *,
    outbox_id: int,
    recipient: str,
    subject: str,
    text_body: str,
    html_body: str | None,
) -> EmailMessage:
    """A MIME message: the plain-text part always (it carries the link), HTML as alternative."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "stepcoin.localhost"
    # an explicit domain: make_msgid would otherwise ask DNS for this host's name
    message["Message-ID"] = make_msgid(idstring=f"outbox.{outbox_id}", domain=domain)
    message.set_content(text_body)
    if html_body:
        message.add_alternative(html_body, subtype="html")
    return message


async def deliver(settings: Settings, message: EmailMessage, *, name: str) -> str:
    """Send the message; answers where it went. Raises on any failure (the caller records it)."""
    if settings.smtp_url is not None:
        target = parse_smtp_url(settings.smtp_url.get_secret_value())
        await aiosmtplib.send(
            message,
            hostname=target.hostname,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.use_tls,
            start_tls=target.start_tls,
            timeout=target.timeout,
        )
        return f"smtp://{target.hostname}:{target.port}"
    if settings.env == "production":
        raise MailNotConfigured("STEPCOIN_SMTP_URL is not set: the mail waits in the outbox")
    return write_eml(settings, message, name=name)


def write_eml(settings: Settings, message: EmailMessage, *, name: str) -> str:
    """Development without SMTP: the mail as a file (open it with any mail program) and its
    text in the log, link included."""
    folder = mail_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.eml"
    path.write_bytes(message.as_bytes())
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    logger.info(
        "mail to %s: %s (no SMTP configured; saved as %s)\n%s",
        message["To"],
        message["Subject"],
        path,
        text,
        extra={"mail_to": str(message["To"]), "mail_file": str(path)},
    )
    return str(path)
