"""Shared fixtures: a migrated real PostgreSQL per xdist worker, an app, a client, factories."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepcoin.config import Settings
from stepcoin.leaderboards import service as boards
from stepcoin.main import create_app
from stepcoin.runtime_settings.registry import SPECS
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.steps.earn_rules import earn_rules
from stepcoin.wallet.budgets import steps_budgets
from tests.fixtures.apple import AppleStandIn, apple_server
from tests.fixtures.database import TestRun, clean_script
from tests.fixtures.live import LiveServer
from tests.fixtures.oidc import KeySet, jwks_server
from tests.mail.helpers import mailbox  # noqa: F401 - the fixture: a real SMTP server

TEST_PASSWORD = "correct horse battery staple"
GOOGLE_CLIENT_ID = "test-google-client.apps.googleusercontent.com"
APPLE_CLIENT_ID = "app.stepcoin.test"
TEST_RUN = pytest.StashKey[TestRun]()


def pytest_configure(config: pytest.Config) -> None:
    """The process that starts the run (xdist's controller, or pytest without -n) owns it."""
    if not hasattr(config, "workerinput"):
        config.stash[TEST_RUN] = TestRun.new()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker learns the run (its name prefix and, embedded, its one server)."""
    node.config.stash[TEST_RUN].prepare_in_background()
    node.workerinput["stepcoin_test_run"] = node.config.stash[TEST_RUN].to_json()


# Modules that one xdist worker runs whole and in order: their tests share a module-scoped
# server or database (made once, not once per worker), or build on each other's state.
WHOLE_MODULES = {
    "tests/backup/test_backup_restore.py",
    "tests/console/browser/test_console_in_browser.py",
    "tests/test_cli.py",
    "tests/test_embedded.py",
    "tests/test_migrations.py",
    "tests/test_pgbouncer.py",
    "tests/test_replicas.py",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's default (load) spreads single tests; this keeps WHOLE_MODULES together and
    hands them out first (largest units first). Not xdist_group: with pytest 9.2, xdist 3.8
    can no longer rename node ids, so its loadgroup silently splits the groups."""
    if config.getvalue("dist") != "load":
        return None  # an explicit --dist other than the default wins
    from xdist.scheduler import LoadScopeScheduling

    class WholeModulesScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in WHOLE_MODULES else nodeid

    return WholeModulesScheduling(config, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Drop the run's databases and stop its server: at the end, after a failure or Ctrl-C."""
    run = config.stash.get(TEST_RUN, None)
    if run is not None:
        run.close()


@pytest.fixture(scope="session")
def database_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """This worker's own migrated database (a clone of the run's template)."""
    workerinput = getattr(pytestconfig, "workerinput", None)
    if workerinput is None:
        run, worker = pytestconfig.stash[TEST_RUN], "main"
    else:
        run, worker = TestRun.from_json(workerinput["stepcoin_test_run"]), workerinput["workerid"]
    with run.worker_database(worker) as url:
        yield url


@pytest.fixture(scope="session")
def keyset() -> Iterator[KeySet]:
    with jwks_server() as keys:
        yield keys


@pytest.fixture(scope="session")
def apple_standin() -> Iterator[AppleStandIn]:
    """Apple's /auth/token and /auth/revoke on 127.0.0.1 (account deletion revokes there)."""
    with apple_server((APPLE_CLIENT_ID,)) as standin:
        yield standin


@pytest.fixture(scope="session")
def settings(database_url: str, keyset: KeySet, apple_standin: AppleStandIn) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        access_log=False,
        jwt_secret=secrets.token_urlsafe(48),  # random per run: no published secret
        google_client_ids=[GOOGLE_CLIENT_ID],
        google_jwks_url=keyset.url,
        apple_client_ids=[APPLE_CLIENT_ID],
        apple_jwks_url=keyset.url,
        apple_team_id=apple_standin.team_id,
        apple_key_id=apple_standin.key_id,
        apple_private_key=apple_standin.private_key_pem,
        apple_auth_url=apple_standin.url,
        max_body_bytes=256 * 1024,
        password_hashing="test",  # argon2's minimum: see tests/auth/test_tokens.py for owasp
        cancel_wait_seconds=0,  # no worker runs beside the tests: jobs run when a test says
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings, run_worker=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The app over real HTTP on a free port (same database and settings as `app`)."""
    with LiveServer(settings) as server:
        yield server


@pytest.fixture(scope="session")
def engine(app: Any) -> AsyncEngine:
    engine: AsyncEngine = app.state.database.engine
    return engine


@pytest.fixture(scope="session")
def clean_sql(database_url: str) -> str:
    return clean_script(database_url, SPECS.values())


# A test that starts this close to midnight UTC waits for the new day first: the steps, boards
# and budgets take "today" from the clock (the app's and PostgreSQL's), and a test that computed
# its dates before midnight and sent them after would see yesterday's day as the app does.
MIDNIGHT_MARGIN = timedelta(seconds=30)


def until_clear_of_midnight(now: datetime) -> float:
    """Seconds to wait so that a test starting at `now` (UTC) has MIDNIGHT_MARGIN before the
    next midnight: 0 when it already has, else until just after midnight."""
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    left = midnight - now
    return 0.0 if left > MIDNIGHT_MARGIN else left.total_seconds() + 0.5


@pytest.fixture(autouse=True)
def clear_of_midnight() -> None:
    wait = until_clear_of_midnight(datetime.now(UTC))
    if wait:
        time.sleep(wait)


@pytest.fixture(autouse=True)
async def clean_database(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test that touches the database starts from empty tables and default settings."""
    if "app" not in request.fixturenames and "engine" not in request.fixturenames:
        yield
        return
    engine: AsyncEngine = request.getfixturevalue("engine")
    script: str = request.getfixturevalue("clean_sql")
    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute(script)  # one round trip, several statements
    runtime_settings.invalidate()
    earn_rules.invalidate()
    steps_budgets.invalidate()
    boards.top_cache.clear()  # per-process caches of what the tables held
    yield


CLIENT_ADDRESS_HEADER = "x-test-client-address"


class AddressedTransport(httpx.ASGITransport):
    """The app in process, seen from 203.0.113.7, or from the address a request names in
    CLIENT_ADDRESS_HEADER (a test's stand-in for another phone's network; the app never reads
    the header)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        address = request.headers.get(CLIENT_ADDRESS_HEADER)
        if address is None:
            return await super().handle_async_request(request)
        other = httpx.ASGITransport(app=self.app, client=(address, 50000))
        return await other.handle_async_request(request)


def fresh_address() -> str:
    """An address of the documentation range no other walker of the run signs up from."""
    return f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::1"


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = AddressedTransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://stepcoin.test") as c:
        yield c


@pytest.fixture
async def scraper(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the loopback address, like the operator's Prometheus beside the process."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://stepcoin.test") as c:
        yield c


async def lift_rate_limits(engine: AsyncEngine) -> None:
    """For tests that send many requests as one walker from one address about something else
    (input validation, the OpenAPI contract): every limit out of reach. The gate still counts."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE settings SET value = to_jsonb(CAST('1000000/second' AS text)) "
                "WHERE key LIKE 'ratelimit.%'"
            )
        )
    runtime_settings.invalidate()


@pytest.fixture
async def no_rate_limits(engine: AsyncEngine) -> AsyncIterator[None]:
    await lift_rate_limits(engine)
    yield
    runtime_settings.invalidate()


def unique_email(prefix: str = "walker") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def register(
    client: httpx.AsyncClient,
    email: str | None = None,
    password: str = TEST_PASSWORD,
    *,
    verified: bool = True,
    address: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Factory: a registered walker; returns the token answer (with `user`). The email is
    marked verified in the database (orders need it) unless `verified=False`; the real link
    flow is tested in tests/auth/test_email_links.py. Each walker signs up from an address of
    their own (like phones on their own networks: stepcoin.fairplay links accounts made from
    one address) unless `address` names one; later requests come from the client's address."""
    body = {"email": email or unique_email(), "password": password, "full_name": "Test Walker"}
    body.update(extra)
    headers = {CLIENT_ADDRESS_HEADER: address or fresh_address()}
    if isinstance(client._transport, AddressedTransport) is False:
        headers = {}
    response = await client.post("/v1/auth/register", json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    data["password"] = password
    if verified:
        await mark_email_verified(client, data["user"]["id"])
        data["user"]["email_verified"] = True
    return data


async def mark_email_verified(client: httpx.AsyncClient, user_id: str) -> None:
    """What the verification link does, straight in the database of the client's app."""
    app = getattr(client._transport, "app", None)  # an ASGITransport's app
    assert app is not None, "register(verified=True) needs a client on the app in process"
    engine: AsyncEngine = app.state.database.engine
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET email_verified_at = now() WHERE id = :id"), {"id": user_id}
        )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
