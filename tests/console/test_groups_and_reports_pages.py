"""The console's reports queue (resolve with a note, audited; support too; never one's own) and
its groups pages (find, see members; an admin binds a company group's domain, support cannot)."""

from __future__ import annotations

from sqlalchemy import text

from tests.console.helpers import post_form
from tests.social.helpers import walker


async def test_reports_queue_lists_and_resolves(console, support_console, client, engine):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    made = await client.post(
        "/v1/reports", json={"user_id": bob["id"], "reason": "rude names"}, headers=ada["headers"]
    )
    report = made.json()
    page = await console.get("/admin/reports")
    assert page.status_code == 200, page.text
    assert f'data-report-id="{report["id"]}"' in page.text and "rude names" in page.text
    assert 'href="/admin/reports"' in page.text  # the nav link
    assert f'data-resolve="{report["id"]}"' in page.text

    response = await post_form(
        support_console,
        "/admin/reports",
        f"/admin/reports/{report['id']}/resolve",
        {"note": "warned", "status": "open"},
    )
    assert response.status_code == 303, response.text
    shown = await support_console.get(response.headers["location"])
    assert f"Resolved report {report['id']}." in shown.text
    assert f'data-report-id="{report["id"]}"' not in shown.text  # off the open queue
    resolved = await console.get("/admin/reports?status=resolved")
    assert f'data-report-id="{report["id"]}"' in resolved.text and "warned" in resolved.text
    again = await post_form(
        console, "/admin/reports", f"/admin/reports/{report['id']}/resolve", {"status": "open"}
    )
    assert "resolved already" in (await console.get(again.headers["location"])).text
    async with engine.connect() as conn:
        logged = (
            await conn.execute(
                text("SELECT action, admin_id::text FROM admin_logs WHERE entity_type = 'report'")
            )
        ).all()
    assert [tuple(r) for r in logged] == [
        ("report.resolved", support_console.account["user"]["id"])
    ]


async def test_groups_pages_and_the_domain_form(console, support_console, client, engine):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    company = await client.post(
        "/v1/groups", json={"name": "Acme Walkers", "kind": "company"}, headers=ada["headers"]
    )
    club = await client.post(
        "/v1/groups", json={"name": "Night Club", "kind": "club"}, headers=bob["headers"]
    )
    cid, kid = company.json()["id"], club.json()["id"]

    listing = await console.get("/admin/groups")
    assert listing.status_code == 200, listing.text
    assert f'data-group-id="{cid}"' in listing.text and f'data-group-id="{kid}"' in listing.text
    found = await console.get("/admin/groups", params={"q": "acme"})
    assert f'data-group-id="{cid}"' in found.text and f'data-group-id="{kid}"' not in found.text

    detail = await console.get(f"/admin/groups/{cid}")
    assert f'data-member="{ada["id"]}" data-role="owner"' in detail.text
    assert 'id="domain-form"' in detail.text
    assert 'id="domain-form"' not in (await console.get(f"/admin/groups/{kid}")).text
    assert (await console.get("/admin/groups/999999")).status_code == 404

    # support reads but does not bind
    assert 'id="domain-form"' not in (await support_console.get(f"/admin/groups/{cid}")).text
    refused = await post_form(
        support_console,
        f"/admin/groups/{cid}",
        f"/admin/groups/{cid}/domain",
        {"email_domain": "acme.example"},
    )
    assert refused.status_code == 403

    bad = await post_form(
        console, f"/admin/groups/{cid}", f"/admin/groups/{cid}/domain", {"email_domain": "x"}
    )
    assert "not an email domain" in (await console.get(bad.headers["location"])).text
    bound = await post_form(
        console,
        f"/admin/groups/{cid}",
        f"/admin/groups/{cid}/domain",
        {"email_domain": "Acme.Example"},
    )
    assert bound.status_code == 303
    shown = await console.get(bound.headers["location"])
    assert "admits verified emails of acme.example" in shown.text
    assert "<dd data-domain>acme.example</dd>" in shown.text
    async with engine.connect() as conn:
        logged = (
            await conn.execute(
                text("SELECT action, entity_id FROM admin_logs WHERE entity_type = 'group'")
            )
        ).all()
    assert [tuple(r) for r in logged] == [("group.domain_bound", str(cid))]
