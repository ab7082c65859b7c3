"""The social statements of a walker's requests, groups and account deletion read their rows by
an index, never the whole table (migration 0059: a sender's requests, the requests to an
address and the groups a walker created had none). Every statement that these paths ran,
planned against tables holding 20,000 requests and 5,000 groups of other walkers."""

from __future__ import annotations

from sqlalchemy import text

from tests.accounts.helpers import delete_me
from tests.fixtures.plans import plan_with, recorded, rows_of_walkers
from tests.social.helpers import walker

OTHERS = 20_000


async def test_request_group_and_deletion_paths_read_by_index(client, engine):
    async with engine.begin() as conn:
        await conn.execute(
            text(
                rows_of_walkers(
                    "friend_requests (from_id, to_email, status)",
                    "walker, 'someone-' || n || '@example.com', "
                    "CASE WHEN n % 3 = 0 THEN 'pending' ELSE 'cancelled' END",
                    walkers=OTHERS // 4,
                    rows=OTHERS,
                    label="requests",
                )
            )
        )
        await conn.execute(
            text(
                rows_of_walkers(
                    "groups (name, kind, created_by)",
                    "'Group ' || n, 'club', walker",
                    walkers=1000,
                    rows=5000,
                    label="groups",
                )
            )
        )
        for table in ("friend_requests", "groups", "users"):
            await conn.execute(text(f"ANALYZE {table}"))
    with (
        recorded(engine, "friend_requests") as requests,
        recorded(engine, "groups") as groups,
    ):
        ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
        for email in (bob["email"], "nobody-yet@example.com"):
            sent = await client.post(
                "/v1/friends/requests", json={"email": email}, headers=ada["headers"]
            )
            assert sent.status_code in (200, 201, 202), sent.text
        assert (await client.get("/v1/friends/requests", headers=ada["headers"])).status_code == 200
        assert (await client.get("/v1/friends/requests", headers=bob["headers"])).status_code == 200
        made = await client.post(
            "/v1/groups", json={"name": "Ada's club", "kind": "club"}, headers=ada["headers"]
        )
        assert made.status_code == 201, made.text
        gone = await delete_me(client, ada["access_token"], password=ada["password"])
        assert gone.status_code in (200, 204), gone.text
    assert len(requests) >= 5 and groups, (requests, groups)
    scanning = []
    async with engine.connect() as conn:
        for statement, parameters in [*requests, *groups]:
            plan = await plan_with(conn, statement, parameters)
            if "Seq Scan on friend_requests" in plan or "Seq Scan on groups" in plan:
                scanning.append(f"{statement}\n{plan}")
    assert scanning == [], "\n\n".join(scanning)
