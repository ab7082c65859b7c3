"""The `stepcoin` command line, run as a real process, and the API served over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest

from tests.conftest import TEST_PASSWORD
from tests.fixtures.database import server_database
from tests.fixtures.ports import free_port
from tests.fixtures.terminal import on_a_terminal

STEPCOIN = [sys.executable, "-m", "stepcoin.cli"]
pytestmark = pytest.mark.slow  # every test here starts `stepcoin` processes


def run(args, env_extra=None, **kwargs):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL"}}
    env.update({"STEPCOIN_LOG_LEVEL": "WARNING"})
    env.update(env_extra or {})
    return subprocess.run(
        STEPCOIN + args, env=env, capture_output=True, text=True, timeout=120, **kwargs
    )


@pytest.fixture(scope="module")
def cli_database(database_url):
    with server_database(database_url) as url:
        yield url


def test_help_explains_every_command():
    result = run(["--help"])
    assert result.returncode == 0
    for command in ["serve", "worker", "migrate", "create-admin", "check-ledger", "demo"]:
        assert command in result.stdout
    serve_help = run(["serve", "--help"])
    assert "--host" in serve_help.stdout and "--port" in serve_help.stdout


def test_migrate_then_check(cli_database):
    result = run(["migrate", "--check"], {"DATABASE_URL": cli_database})
    assert result.returncode == 0, result.stderr
    assert "models and database agree" in result.stdout
    again = run(["migrate"], {"DATABASE_URL": cli_database})
    assert again.returncode == 0


def test_create_admin_creates_then_promotes(cli_database):
    run(["migrate"], {"DATABASE_URL": cli_database})
    args = ["create-admin", "--email", "Boss@Example.com", "--password", "a strong admin pass"]
    created = run(args, {"DATABASE_URL": cli_database})
    assert created.returncode == 0, created.stderr
    assert "created admin boss@example.com" in created.stdout
    promoted = run(args, {"DATABASE_URL": cli_database})
    assert "promoted" in promoted.stdout
    weak = run(
        ["create-admin", "--email", "x@example.com", "--password", "password"],
        {"DATABASE_URL": cli_database},
    )
    assert weak.returncode == 2
    with psycopg.connect(cli_database) as conn:
        row = conn.execute(
            "SELECT role, password_hash LIKE '$argon2id$%' FROM users "
            "WHERE email = 'boss@example.com'"
        ).fetchone()
        logs = conn.execute(
            "SELECT count(*) FROM admin_logs WHERE action = 'cli.create_admin'"
        ).fetchone()[0]
    assert row == ("admin", True)
    assert logs == 2


def test_check_ledger_reports_a_mismatch(cli_database):
    run(["migrate"], {"DATABASE_URL": cli_database})
    ok = run(["check-ledger"], {"DATABASE_URL": cli_database})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ledger OK" in ok.stdout
    with psycopg.connect(cli_database) as conn:
        user_id = conn.execute(
            "INSERT INTO users (email, full_name) VALUES ('ledger@example.com', 'L') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO wallets (user_id, available_coins, lifetime_earned) VALUES (%s, 7, 7)",
            (user_id,),
        )
    bad = run(["check-ledger"], {"DATABASE_URL": cli_database})
    assert bad.returncode == 1
    as_json = run(["check-ledger", "--json"], {"DATABASE_URL": cli_database})
    assert as_json.returncode == 1  # the same exit code for scripts
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and report["wallets_checked"] >= 1
    mismatch = next(m for m in report["mismatches"] if m["user_id"] == str(user_id))
    assert (mismatch["available_coins"], mismatch["ledger_total"]) == (7, 0)
    assert f"MISMATCH user {user_id}: wallet 7 ledger 0" in bad.stdout
    assert f"COUNTERS user {user_id}: earned 7 (ledger 0), spent 0 (ledger 0)" in bad.stdout
    with psycopg.connect(cli_database) as conn:
        conn.execute(
            "INSERT INTO coin_transactions (user_id, amount, transaction_type, reference_id, "
            "balance_after) VALUES (%s, 7, 'admin_adjustment', 'fix-1', 7)",
            (user_id,),
        )
    fixed = run(["check-ledger"], {"DATABASE_URL": cli_database})
    assert fixed.returncode == 0
    assert "checking every wallet" not in fixed.stdout + fixed.stderr  # no spinner in a pipe
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    screen = on_a_terminal([*STEPCOIN, "check-ledger"], {**env, "DATABASE_URL": cli_database})
    assert "checking every wallet against its ledger" in screen and "ledger OK" in screen
    assert json.loads(run(["check-ledger", "--json"], {"DATABASE_URL": cli_database}).stdout)["ok"]


def test_production_refuses_the_default_secret(cli_database):
    result = run(["migrate"], {"DATABASE_URL": cli_database, "STEPCOIN_ENV": "production"})
    assert result.returncode != 0
    assert "STEPCOIN_JWT_SECRET" in result.stderr


def wait_ready(base: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"server exited: {process.output()[1] if isinstance(process, Served) else ''}"
            )
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("server did not become ready")


class Served(subprocess.Popen[str]):
    """`stepcoin serve` writing to files, not pipes: a pipe nobody reads until the end fills
    up (64 KB of start-up logs: every periodic job's start and end) and blocks the server."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.out = tempfile.TemporaryFile("w+")  # noqa: SIM115 (lives as long as the server)
        self.err = tempfile.TemporaryFile("w+")  # noqa: SIM115
        super().__init__(args, env=env, stdout=self.out, stderr=self.err, text=True)

    def output(self) -> tuple[str, str]:
        texts = []
        for stream in (self.out, self.err):
            stream.seek(0)
            texts.append(stream.read())
        return texts[0], texts[1]

    def communicate(self, input=None, timeout=None):  # type: ignore[no-untyped-def]
        self.wait(timeout=timeout)
        return self.output()


def serve(env_extra: dict[str, str], port: int, *args: str) -> Served:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(env_extra)
    return Served([*STEPCOIN, "serve", "--host", "127.0.0.1", "--port", str(port), *args], env)


def serve_api_processes(database: str, port: int, processes: int) -> Served:
    """`serve --workers N --no-worker`, once every API process has started (not only the first
    to answer /readyz); the caller stops it."""
    process = serve(
        {"DATABASE_URL": database, "STEPCOIN_RUN_WORKER_IN_SERVE": "false"},
        port,
        "--workers",
        str(processes),
        "--no-worker",
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        deadline = time.monotonic() + 60
        while process.output()[1].count("Application startup complete") < processes:
            assert time.monotonic() < deadline, process.output()[1][-2000:]
            time.sleep(0.2)
    except BaseException:
        process.kill()
        process.wait(timeout=30)
        raise
    return process


def exercise_api(base: str) -> None:
    """The mobile app's first minutes: register, sign in, read and change the profile."""
    with httpx.Client(base_url=base, timeout=10) as http:
        email = f"e2e-{time.time_ns()}@example.com"
        reg = http.post(
            "/v1/auth/register",
            json={"email": email, "password": TEST_PASSWORD, "full_name": "E2E"},
        )
        assert reg.status_code == 201, reg.text
        assert reg.headers.get("x-request-id")
        login = http.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
        assert login.status_code == 200
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        me = http.get("/v1/me", headers=headers)
        assert me.status_code == 200 and me.json()["wallet"]["available_coins"] == 0
        patched = http.patch("/v1/me", json={"timezone": "Asia/Tokyo"}, headers=headers)
        assert patched.status_code == 200 and patched.json()["timezone"] == "Asia/Tokyo"
        assert http.get("/openapi.json").status_code == 200


@pytest.mark.slow
def test_serve_over_real_http_with_database_url(cli_database):
    port = free_port()
    process = serve({"DATABASE_URL": cli_database, "STEPCOIN_RUN_WORKER_IN_SERVE": "true"}, port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        exercise_api(f"http://127.0.0.1:{port}")
        # no Shopify configured: the in-process worker syncs the stand-in's demo catalogue
        deadline = time.monotonic() + 60
        products: list = []
        while time.monotonic() < deadline and not products:
            products = httpx.get(f"http://127.0.0.1:{port}/v1/products").json()["items"]
            time.sleep(0.5)
        assert products and all(p["coin_price"] > 0 for p in products)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    # the banner: where the API, its docs and the console are, the database, the first admin
    assert f"http://127.0.0.1:{port}/docs" in stdout and f"http://127.0.0.1:{port}/admin" in stdout
    assert cli_database in stdout and "create-admin --email" in stdout
    # logs are JSON lines (stderr is a pipe here), and request lines carry the request id
    lines = [line for line in stderr.splitlines() if line.startswith("{")]
    assert lines
    parsed = [json.loads(line) for line in lines]
    assert any(p.get("logger") == "stepcoin.access" and p.get("request_id") for p in parsed)


@pytest.mark.slow
def test_every_api_process_logs_its_requests(cli_database):
    """`serve --workers 2`: uvicorn starts the API processes as new interpreters; each one
    writes JSON access lines with the request id (before, none of them logged a request)."""
    port = free_port()
    process = serve_api_processes(cli_database, port, 2)
    sent = [f"two-workers-{n}" for n in range(24)]
    try:
        for request_id in sent:  # a new connection each: both processes answer some
            answer = httpx.get(
                f"http://127.0.0.1:{port}/v1/me", headers={"X-Request-ID": request_id}
            )
            assert answer.status_code == 401 and answer.headers["x-request-id"] == request_id
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    access = [
        json.loads(line)
        for line in stderr.splitlines()
        if line.startswith("{") and '"stepcoin.access"' in line
    ]
    logged = {p["request_id"]: p for p in access if p["request_id"] in sent}
    assert sorted(logged) == sorted(sent)
    assert {(p["method"], p["path"], p["status"]) for p in logged.values()} == {
        ("GET", "/v1/me", 401)
    }


async def _burst(port: int, connections: int) -> list[tuple[asyncio.StreamReader, Any]]:
    """`connections` keep-alive connections opened at once, each answered once (so accepted)."""

    async def one() -> tuple[asyncio.StreamReader, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: stepcoin\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 200")
        return reader, writer

    return list(await asyncio.gather(*(one() for _ in range(connections))))


def _held_per_process(parent: int, port: int) -> list[int]:
    """How many established connections on `port` each of serve's processes holds."""
    held = []
    for child in psutil.Process(parent).children(recursive=True):
        listing = getattr(child, "net_connections", None) or child.connections
        mine = [c for c in listing(kind="tcp") if c.laddr and c.laddr.port == port]
        if any(c.status == psutil.CONN_LISTEN for c in mine):  # an API process
            held.append(sum(c.status == psutil.CONN_ESTABLISHED for c in mine))
    return sorted(held)


@pytest.mark.slow
def test_a_burst_of_connections_spreads_over_the_api_processes(cli_database):
    """A client that opens its keep-alive pool at once (a proxy, a load balancer, the
    benchmark's 16 connections) gets connections on every API process (stepcoin.serving).
    With uvicorn's stock loop the process that woke first took the whole burst or most of it,
    every burst of two runs: [[5, 11], [0, 16], [0, 16]] and [[1, 15], [0, 16], [0, 16]]."""
    port = free_port()
    process = serve_api_processes(cli_database, port, 2)
    try:

        async def bursts() -> list[list[int]]:
            spreads = []
            for _ in range(3):
                opened = await _burst(port, 16)
                await asyncio.sleep(0.2)
                spreads.append(_held_per_process(process.pid, port))
                for _, writer in opened:
                    writer.close()
                await asyncio.sleep(0.3)
            return spreads

        spreads = asyncio.run(bursts())
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    for spread in spreads:
        assert len(spread) == 2 and sum(spread) == 16, spreads
        assert min(spread) >= 3, spreads  # each process took a share of every burst


@pytest.mark.slow
def test_serve_with_embedded_postgres_and_clean_stop(tmp_path_factory):
    data_root = Path(tmp_path_factory.mktemp("home"))
    folder = Path("/tmp") / f"stepcoin-e2e-{os.getpid()}-{time.time_ns()}"
    folder.mkdir(mode=0o755)
    try:
        port = free_port()
        process = serve({"STEPCOIN_DATA_DIR": str(folder / "data"), "HOME": str(data_root)}, port)
        try:
            wait_ready(f"http://127.0.0.1:{port}", process, timeout=180)
            exercise_api(f"http://127.0.0.1:{port}")
        finally:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=90)
        assert process.returncode == 0, stderr
        assert f"(embedded, in {folder / 'data'})" in stdout
        # the embedded server was stopped with the service
        pid_file = folder / "data" / "pgdata" / "postmaster.pid"
        assert not pid_file.exists(), "embedded PostgreSQL still running after exit"
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def test_demo_fills_walkers_once_and_keeps_the_ledger_exact(cli_database):
    env = {"DATABASE_URL": cli_database}
    first = run(["demo", "--walkers", "3"], env)
    assert first.returncode == 0, first.stderr
    assert "3 created" in first.stdout
    # the newcomer's demo catalogue comes from the Shopify stand-in
    products = re.search(r"(\d+) products", first.stdout)
    assert products and int(products.group(1)) > 0, first.stdout
    again = run(["demo", "--walkers", "3"], env)
    assert "0 created, 3 already there" in again.stdout
    with psycopg.connect(cli_database) as conn:
        walkers = conn.execute(
            "SELECT count(*) FROM users WHERE email LIKE '%@demo.stepcoin.app'"
        ).fetchone()[0]
        days = conn.execute("SELECT count(*) FROM step_days").fetchone()[0]
        unverified = conn.execute(  # made-up addresses: verified, and never mailed
            "SELECT count(*) FROM users WHERE email LIKE '%@demo.stepcoin.app' "
            "AND email_verified_at IS NULL"
        ).fetchone()[0]
        mails = conn.execute(
            "SELECT count(*) FROM mail_outbox WHERE recipient LIKE '%@demo.stepcoin.app'"
        ).fetchone()[0]
    assert walkers == 3 and days >= 3 * 6
    assert unverified == 0 and mails == 0
    assert run(["check-ledger"], env).returncode == 0


def test_db_distribution_prints_the_plan_and_the_problems(cli_database):
    run(["migrate"], {"DATABASE_URL": cli_database})
    result = run(["db", "distribution"], {"DATABASE_URL": cli_database})
    as_json = run(["db", "distribution", "--json"], {"DATABASE_URL": cli_database})
    report = json.loads(as_json.stdout)
    # exit 1 exactly when a key breaks a rule (before the hot tables carry user_id: issue 19
    # item 4, part A), for scripts as for people
    assert result.returncode == as_json.returncode == (1 if report["problems"] else 0)
    assert "| users | distributed by id | " in result.stdout
    assert "SELECT create_reference_table('reward_products');" in result.stdout
    users = "SELECT create_distributed_table('users', 'id', colocate_with => 'none');"
    wallets = "SELECT create_distributed_table('wallets', 'user_id', colocate_with => 'users');"
    assert result.stdout.index(users) < result.stdout.index(wallets)
    assert users in report["statements"]
    assert {"table": "procrastinate_jobs", "placement": "local"} in [
        {k: row[k] for k in ("table", "placement")} for row in report["placement"]
    ]
    for problem in report["problems"]:
        assert f"PROBLEM {problem}" in result.stdout
