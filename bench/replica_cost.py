"""What read-replica routing costs a request in the API process (docs/replicas.md).

    python bench/replica_cost.py --database-url postgresql://postgres@127.0.0.1:5432/DB

On a migrated StepCoin database (it registers a few walkers), in one process over ASGI (no
network, so the API's own cost is what moves): serial `GET /v1/me` and `GET /v1/wallet` (the
hot reads) and `PATCH /v1/me` (a write), alternated between three apps:

- `none`: no replica configured (the code path of every deployment without standbys);
- `routed`: one replica configured that is the primary itself: the check finds it not in
  recovery, so every read is routed (marker, remembered writes, choice) and lands on the
  primary: the routing's whole overhead, without a second server's different latency;
- the write's extra cost (routed): the WAL position read after each write for its marker.

Reports the median wall time and the process CPU per request of each.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from typing import Any

import httpx

from stepcoin.config import Settings
from stepcoin.main import create_app


async def _measure(client: httpx.AsyncClient, method: str, path: str, token: str, n: int) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    body = {"full_name": "Bench Walker"} if method == "PATCH" else None
    walls: list[float] = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        response = await client.request(method, path, headers=headers, json=body)
        walls.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.text
    cpu = (time.process_time() - cpu0) / n
    return statistics.median(walls) * 1e6, cpu * 1e6


async def main_async(url: str, n: int, rounds: int) -> None:
    base = Settings(
        env="test",
        database_url=url,
        access_log=False,
        jwt_secret=secrets.token_urlsafe(48),
        password_hashing="test",
    )
    apps = {
        "none": create_app(base, run_worker=False),
        "routed": create_app(
            base.model_copy(update={"database_replica_urls": [url]}), run_worker=False
        ),
    }
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for app in apps.values():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
                email = f"bench-{secrets.token_hex(6)}@example.com"
                reg = await c.post(
                    "/v1/auth/register",
                    json={"email": email, "password": "bench-password-1", "full_name": "B"},
                )
                assert reg.status_code == 201, reg.text
                token = reg.json()["access_token"]
                app.state.token = token
    for _ in range(rounds):
        for name, app in apps.items():
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
                    for method, path in (("GET", "/v1/me"), ("GET", "/v1/wallet")):
                        await _measure(c, method, path, app.state.token, 200)  # warm up
                        results.setdefault((name, f"{method} {path}"), []).append(
                            await _measure(c, method, path, app.state.token, n)
                        )
                    results.setdefault((name, "PATCH /v1/me"), []).append(
                        await _measure(c, "PATCH", "/v1/me", app.state.token, max(n // 5, 50))
                    )
    print("| request | app | median wall µs (per round) | CPU µs per request (per round) |")
    print("|---|---|---|---|")
    for (name, request), rows in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        walls = ", ".join(f"{w:.0f}" for w, _ in rows)
        cpus = ", ".join(f"{c:.0f}" for _, c in rows)
        print(f"| {request} | {name} | {walls} | {cpus} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("-n", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main_async(args.database_url, args.n, args.rounds))


if __name__ == "__main__":
    main()
