"""The `stepcoin` command line.

Commands import what they use inside their function, on purpose: PostgreSQL runs
`stepcoin backup archive-wal` for every WAL segment and `stepcoin --help` should answer at
once; the app, the worker and SQLAlchemy at the top would cost about 3 s per call (0.4 s now).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import typer

from stepcoin import terminal
from stepcoin.backup.cli import backup_app
from stepcoin.backup.command_database import database_url
from stepcoin.retention.cli import retention_app
from stepcoin.terminal import JsonOption

# lazy imports: each command imports what it uses (start-up time, see the docstring above)

app = typer.Typer(
    help=(
        "StepCoin: the walk-to-earn backend.\n\n"
        "Configuration comes from STEPCOIN_* environment variables and DATABASE_URL. Without "
        "DATABASE_URL, commands use the embedded PostgreSQL kept in STEPCOIN_DATA_DIR."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(backup_app, name="backup")
app.add_typer(retention_app, name="retention")
db_app = typer.Typer(help="The database's layout.", no_args_is_help=True)
app.add_typer(db_app, name="db")


class _Stopped(Exception):
    """SIGTERM arrived: unwind normally so the embedded PostgreSQL is stopped on the way out."""


@contextlib.contextmanager
def _graceful_signals() -> Iterator[None]:
    """uvicorn re-raises the stop signal after its own shutdown; turn it into an exception
    (instead of the default instant death) so every `finally` below still runs."""

    def on_term(signum: int, frame: object) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except (_Stopped, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _setup_logging() -> None:
    from stepcoin.config import get_settings
    from stepcoin.observability import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


def _require_shopify_standin() -> None:
    """With no shop configured (development, demo), the stand-in must be installed: say how,
    before anything starts, instead of a traceback in the first catalogue sync."""
    from stepcoin.config import get_settings
    from stepcoin.shop.runtime import StandInNotInstalled, require_standin

    try:
        require_standin(get_settings())
    except StandInNotInstalled as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _require_signing_secret() -> None:
    """STEPCOIN_JWT_SECRET, or the data directory's generated one (made here, once, before
    any API process starts); no usable data directory stops the start with the reason."""
    from stepcoin.config import SecretFileError, get_settings

    try:
        get_settings().signing_secret()
    except SecretFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def without_password(url: str) -> str:
    """The database URL to show a person: the password (in the authority or the query
    string) replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = urlencode(
        [
            (k, "***" if k == "password" else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="/*",
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _command_name() -> str:
    """How this shell reaches `stepcoin`: the bare name when it is on PATH, otherwise the
    script next to this Python (e.g. .venv/bin/stepcoin, as scripts/start.sh installs it)."""
    if shutil.which("stepcoin"):
        return "stepcoin"
    script = os.path.join(os.path.dirname(sys.executable), "stepcoin")
    if not os.path.exists(script):
        return f"{sys.executable} -m stepcoin.cli"
    relative = os.path.relpath(script)
    return relative if not relative.startswith("..") else script


def serve_banner(host: str, port: int, database: str, *, embedded_in: str | None) -> str:
    """What a newcomer needs once the server is up: where the API, its docs and the console
    are, which database it uses (never its password), and how to make the first admin."""
    shown = "localhost" if host in {"0.0.0.0", "::", ""} else host
    base = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    where = f" (embedded, in {embedded_in})" if embedded_in else ""
    listening = f" (listening on every address, {host})" if shown != host else ""
    return "\n".join(
        [
            "StepCoin is ready",
            f"  API        {base}{listening}",
            f"  API docs   {base}/docs",
            f"  console    {base}/admin",
            f"  database   {without_password(database)}{where}",
            "  first admin (once; asks for a password):",
            f"    {_command_name()} create-admin --email you@example.com",
        ]
    )


def _announce_when_listening(host: str, port: int, banner: str) -> None:
    """Print the banner once the server accepts connections, below the start-up logs where a
    newcomer sees it (nothing when something else already held the port)."""
    target = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)

    def listening() -> bool:
        try:
            with socket.create_connection((target, port), timeout=1):
                return True
        except OSError:
            return False

    if listening():
        return  # not ours: uvicorn will say the address is in use

    def wait() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if listening():
                typer.echo(banner)
                return
            time.sleep(0.2)

    threading.Thread(target=wait, name="stepcoin-banner", daemon=True).start()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="API processes.")] = 1,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Also run the job worker in-process.")
    ] = True,
    migrate: Annotated[bool, typer.Option(help="Apply migrations before serving.")] = True,
) -> None:
    """Run the HTTP API (and, by default, the job worker) — starts the embedded DB if needed."""
    import uvicorn

    from stepcoin import migrate as migrations
    from stepcoin.config import get_settings

    _setup_logging()
    _require_shopify_standin()
    _require_signing_secret()
    embedded_in = None
    if not get_settings().database_url:
        from stepcoin.embedded import default_data_dir

        embedded_in = get_settings().data_dir or str(default_data_dir())
    with database_url() as url:
        if migrate:
            migrations.upgrade(url)
        settings = get_settings()
        listen_host, listen_port = host or settings.host, port or settings.port
        _announce_when_listening(
            listen_host,
            listen_port,
            serve_banner(listen_host, listen_port, url, embedded_in=embedded_in),
        )
        os.environ["STEPCOIN_RUN_WORKER_IN_SERVE"] = "true" if worker else "false"
        get_settings.cache_clear()
        with _graceful_signals():
            uvicorn.run(
                "stepcoin.main:create_served_app",
                factory=True,
                host=host or settings.host,
                port=port or settings.port,
                workers=workers,
                loop="stepcoin.serving:new_event_loop",
                http="stepcoin.serving:OneWriteHttpToolsProtocol",
                log_config=None,
                access_log=False,
                proxy_headers=True,
                forwarded_allow_ips=settings.forwarded_allow_ips,
                server_header=False,
            )


@app.command("worker")
def worker_command() -> None:
    """Run the background job worker (queued jobs and the periodic schedule)."""
    from stepcoin.config import get_settings
    from stepcoin.db import Database
    from stepcoin.worker import open_jobs, supervise_worker

    _setup_logging()
    _require_shopify_standin()

    async def main(url: str) -> None:
        database = Database(url, pool_size=get_settings().db_pool_size)
        try:
            async with open_jobs(database) as jobs:
                # SIGTERM / Ctrl-C cancel the supervisor: the worker stops gracefully; anything
                # else that stops it (the database went away) starts it again
                supervisor = asyncio.create_task(supervise_worker(jobs), name="job-worker")
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, supervisor.cancel)
                with contextlib.suppress(asyncio.CancelledError):
                    await supervisor
        finally:
            await database.dispose()

    with database_url() as url:
        asyncio.run(main(url))


@app.command("migrate")
def migrate_command(
    check: Annotated[bool, typer.Option(help="Then verify models and database agree.")] = False,
) -> None:
    """Apply all database migrations (idempotent)."""
    from stepcoin import migrate as migrations

    with database_url() as url:
        migrations.upgrade(url)
        typer.echo("migrations applied")
        if check:
            migrations.check(url)
            typer.echo("models and database agree")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters."
        ),
    ],
    full_name: Annotated[str, typer.Option(help="Display name.")] = "Administrator",
    role: Annotated[str, typer.Option(help="admin or support.")] = "admin",
) -> None:
    """Create an admin account, or promote an existing account and set its password."""
    from stepcoin.users.admin_accounts import create_or_promote_admin

    if role not in {"admin", "support"}:
        raise typer.BadParameter("role must be admin or support")
    with database_url() as url:
        try:
            created = asyncio.run(create_or_promote_admin(url, email, password, full_name, role))
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    typer.echo(f"{'created' if created else 'promoted'} {role} {email.strip().lower()}")


@app.command("reset-totp")
def reset_totp_command(
    email: Annotated[str, typer.Option(help="The staff account's email.")],
) -> None:
    """Turn off an account's two-step sign-in (lost device, or the TOTP keys changed)."""
    from stepcoin.console.sessions import reset_totp
    from stepcoin.db import Database, session_scope

    async def main(url: str) -> bool:
        database = Database(url, pool_size=1)
        try:
            async with session_scope(database) as session:
                return await reset_totp(session, email)
        finally:
            await database.dispose()

    with database_url() as url:
        found = asyncio.run(main(url))
    if not found:
        typer.echo(f"error: no account {email.strip().lower()}", err=True)
        raise typer.Exit(1)
    typer.echo(f"two-step sign-in is off for {email.strip().lower()}")


@app.command("check-ledger")
def check_ledger_command(as_json: JsonOption = False) -> None:
    """Verify that every wallet equals its ledger, no award was paid twice, held coins equal the
    days in review and the lifetime counters follow the ledger (exit 1 if not)."""
    from stepcoin.db import Database, session_scope
    from stepcoin.wallet.service import LedgerReport, check_ledger

    async def main(url: str) -> LedgerReport:
        database = Database(url, pool_size=1)
        try:
            async with session_scope(database) as session:
                return await check_ledger(session)
        finally:
            await database.dispose()

    with database_url() as url, terminal.working("checking every wallet against its ledger"):
        report = asyncio.run(main(url))
    if as_json:
        terminal.print_json({**terminal.to_jsonable(report), "ok": report.ok})
        if not report.ok:
            raise typer.Exit(1)
        return
    typer.echo(f"wallets checked: {report.wallets_checked}")
    for row in report.mismatches:
        typer.echo(
            f"MISMATCH user {row['user_id']}: wallet {row['available_coins']} "
            f"ledger {row['ledger_total']}"
        )
    for row in report.duplicate_awards:
        typer.echo(
            f"DUPLICATE user {row['user_id']}: {row['transaction_type']} "
            f"{row['reference_id']} x{row['n']}"
        )
    for row in report.bad_balance_chains:
        typer.echo(
            f"BALANCE_AFTER user {row['user_id']}: wallet {row['available_coins']} "
            f"last balance_after {row['balance_after']}"
        )
    for row in report.pending_mismatches:
        typer.echo(
            f"PENDING user {row['user_id']}: wallet {row['pending_coins']} "
            f"days in review {row['days_pending']}"
        )
    for row in report.counter_mismatches:
        typer.echo(
            f"COUNTERS user {row['user_id']}: earned {row['lifetime_earned']} "
            f"(ledger {row['ledger_earned']}), spent {row['lifetime_spent']} "
            f"(ledger {row['ledger_spent']})"
        )
    if report.ok:
        typer.echo("ledger OK")
        return
    raise typer.Exit(1)


@db_app.command("distribution")
def distribution_command(as_json: JsonOption = False) -> None:
    """Where every table goes on Citus (issue 19 item 4): the placement, the statements that
    distribute this database in a valid order, and every key that breaks Citus's rules (exit 1
    if any). Reads the catalog of DATABASE_URL; changes nothing."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from stepcoin.db import sqlalchemy_url
    from stepcoin.distribution import Catalog, check, ddl, read_catalog, table_rows

    async def main(url: str) -> Catalog:
        engine = create_async_engine(sqlalchemy_url(url))
        try:
            async with engine.connect() as conn:
                return await read_catalog(conn)
        finally:
            await engine.dispose()

    with database_url() as url, terminal.working("reading the catalog"):
        catalog = asyncio.run(main(url))
    problems = check(catalog)
    statements = ddl(foreign_keys=catalog.foreign_keys)
    rows = table_rows()
    if as_json:
        terminal.print_json(
            {
                "placement": [
                    {"table": table, "placement": placed, "reason": reason}
                    for table, placed, reason in rows
                ],
                "statements": statements,
                "problems": problems,
            }
        )
    else:
        typer.echo("| table | placement | why |\n|---|---|---|")
        for table, placed, reason in rows:
            typer.echo(f"| {table} | {placed} | {reason} |")
        typer.echo("")
        typer.echo("\n".join(statements))
        for problem in problems:
            typer.echo(f"PROBLEM {problem}")
        typer.echo(f"{len(problems)} problem(s)" if problems else "every table can be placed")
    if problems:
        raise typer.Exit(1)


@app.command("demo")
def demo_command(
    walkers: Annotated[int, typer.Option(min=1, max=1000, help="How many demo walkers.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed (the same seed, the same walkers).")] = 7,
) -> None:
    """Fill the database with demo walkers (a week of steps, some in review) and products."""
    from stepcoin import migrate as migrations
    from stepcoin.config import get_settings
    from stepcoin.db import Database
    from stepcoin.demo import DEMO_PASSWORD, DemoReport, fill

    _require_shopify_standin()

    async def main(url: str) -> DemoReport:
        database = Database(url, pool_size=2)
        try:
            return await fill(database, get_settings(), walkers=walkers, seed=seed)
        finally:
            await database.dispose()

    with database_url() as url, terminal.working(f"filling the demo: {walkers} walkers"):
        migrations.upgrade(url)
        report = asyncio.run(main(url))
    typer.echo(
        f"walkers: {report.walkers_created} created, {report.walkers_existing} already there; "
        f"{report.records_synced} days synced ({report.flagged} waiting for review); "
        f"{report.products} products"
    )
    typer.echo(f"sign in as walker001@demo.stepcoin.app with the password {DEMO_PASSWORD!r}")


def main() -> None:
    app(prog_name="stepcoin")


if __name__ == "__main__":
    main()
