"""Console benchmark: how long each admin page takes on the benchmark data set.

    python bench/console_bench.py [--server-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--users 10000] [--days 90] [--queue 3000] [--requests 40] [--out FILE] [--keep]

It creates a throwaway database, fills it with bench/generate.py (10,000 walkers x 90 days by
default: 900k step records, ~900k ledger rows, 3,000 flagged records), gives the generated
admin a password, starts `stepcoin serve --no-worker` (one process, production settings,
access log off) and signs in like a browser (CSRF token of the sign-in form, session cookie).
Then, one request at a time (an admin is one person, not a crowd), it times every page
`--requests` times and reports p50 / p95 / max, the page size, and 100 approvals through the
review queue's form (each a POST + its redirect target). The server's resident memory is read
at the end. The database is dropped unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from generate import generate  # noqa: E402

from stepcoin import migrate  # noqa: E402
from stepcoin.auth.passwords import hash_password  # noqa: E402

ADMIN_EMAIL = "admin@bench.stepcoin.test"
PASSWORD = "bench console password 1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Browser:
    """httpx with a hand-kept cookie jar: the console's cookies are Secure, the bench is http."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, follow_redirects=False, timeout=60)
        self.cookies: dict[str, str] = {}

    def _keep(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in header.lower() or value in ('""', ""):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        header = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.http.request(method, url, headers={"cookie": header}, **kwargs)  # type: ignore[arg-type]
        self._keep(response)
        return response


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_page(browser: Browser, url: str, n: int) -> dict[str, object]:
    browser.request("GET", url)  # warm-up (prepared statements, caches)
    times, size = [], 0
    for _ in range(n):
        start = time.perf_counter()
        response = browser.request("GET", url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        size = len(response.content)
    return {
        "url": url,
        "n": n,
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
        "max_ms": round(max(times), 1),
        "bytes": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--queue", type=int, default=3_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--out")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    name = f"stepcoin_console_bench_{os.getpid()}"
    url = with_database(args.server_url, name)
    with psycopg.connect(args.server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    server = None
    try:
        migrate.upgrade(url)
        log(f"generating {args.users} walkers x {args.days} days")
        generate(url, args.users, args.days, args.queue, 0, 42)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE users SET password_hash = %s WHERE email = %s",
                (hash_password(PASSWORD), ADMIN_EMAIL),
            )
            walker = conn.execute(
                "SELECT id FROM users WHERE role = 'user' ORDER BY email LIMIT 1"
            ).fetchone()
        assert walker is not None
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "STEPCOIN_ENV": "production",
            "STEPCOIN_JWT_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
            "STEPCOIN_ACCESS_LOG": "false",
            "STEPCOIN_LOG_LEVEL": "WARNING",
            "STEPCOIN_RUN_WORKER_IN_SERVE": "false",
        }
        stepcoin = str(Path(sys.executable).with_name("stepcoin"))
        server = subprocess.Popen(
            [stepcoin, "serve", "--no-worker", "--no-migrate", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        browser = Browser(base)
        page = browser.request("GET", "/admin/login")
        token = CSRF.search(page.text)
        assert token
        signed_in = browser.request(
            "POST",
            "/admin/login",
            data={"email": ADMIN_EMAIL, "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert signed_in.status_code == 303, signed_in.text[:300]

        pages = [
            "/admin/",
            "/admin/review",
            "/admin/users",
            "/admin/users?q=walker42",
            f"/admin/users/{walker[0]}",
            "/admin/products",
            "/admin/orders",
            "/admin/achievements",
            "/admin/settings",
            "/admin/audit",
        ]
        results = []
        for target in pages:
            result = time_page(browser, target, args.requests)
            log(f"{target}: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms")
            results.append(result)

        log("approving 100 flagged records through the queue's form")
        approvals = []
        for _ in range(100):
            queue = browser.request("GET", "/admin/review")
            match = re.search(r'data-validation-id="(\d+)"', queue.text)
            csrf = CSRF.search(queue.text)
            assert match and csrf
            start = time.perf_counter()
            response = browser.request(
                "POST",
                "/admin/review/decide",
                data={"csrf_token": csrf.group(1), "ids": match.group(1), "decision": "approve"},
            )
            approvals.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 303
        approve = {
            "url": "POST /admin/review/decide (one approval)",
            "n": len(approvals),
            "p50_ms": round(statistics.median(approvals), 1),
            "p95_ms": round(percentile(approvals, 0.95), 1),
            "max_ms": round(max(approvals), 1),
            "bytes": 0,
        }
        results.append(approve)
        rss = sum(
            p.memory_info().rss
            for p in [
                psutil.Process(server.pid),
                *psutil.Process(server.pid).children(recursive=True),
            ]
        )
        report = {
            "users": args.users,
            "days": args.days,
            "queue": args.queue,
            "server_rss_mb": round(rss / 2**20, 1),
            "results": results,
        }
        print("\n| page | p50 ms | p95 ms | max ms | KiB |\n|---|---|---|---|---|")
        for r in results:
            kib = round(int(r["bytes"]) / 1024, 1)  # type: ignore[call-overload]
            print(f"| `{r['url']}` | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | {kib} |")
        print(f"\nserver RSS after the run: {report['server_rss_mb']} MB")
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            with psycopg.connect(args.server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
