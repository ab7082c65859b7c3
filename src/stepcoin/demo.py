"""`stepcoin demo`: demo walkers with a week of steps and a push device each, a review queue
and a catalogue.

Everything goes through the real services (registration, the step sync with its rules, the
catalogue sync), so the demo data obeys the same invariants as real data. Idempotent: walkers
that exist are kept; their days are re-sent, which pays nothing twice.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from stepcoin.auth.service import ClientInfo, register
from stepcoin.config import Settings
from stepcoin.db import Database, session_scope
from stepcoin.errors import Conflict
from stepcoin.notify import service as notify
from stepcoin.shop.tasks import sync_catalogue
from stepcoin.steps.schemas import StepRecordIn
from stepcoin.steps.service import sync_steps

DEMO_PASSWORD = "walk-the-demo-mile"  # printed for people trying the demo
FIRST_NAMES = [
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Linus",
    "Margaret",
    "Tim",
    "Radia",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Hedy",
    "John",
    "Sophie",
]
LAST_NAMES = ["Walker", "Stepper", "Strider", "Miles", "Pace", "Trail", "Hill", "Rivers"]


@dataclass
class DemoReport:
    walkers_created: int
    walkers_existing: int
    records_synced: int
    flagged: int
    products: int


async def fill(database: Database, settings: Settings, *, walkers: int, seed: int) -> DemoReport:
    rng = random.Random(seed)  # noqa: S311 - demo data, not a secret
    created = existing = synced = flagged = 0
    today = datetime.now(UTC).date()
    for n in range(walkers):
        email = f"walker{n + 1:03d}@demo.stepcoin.app"
        name = f"{FIRST_NAMES[n % len(FIRST_NAMES)]} {LAST_NAMES[(n // 3) % len(LAST_NAMES)]}"
        user_id: uuid.UUID
        try:
            async with session_scope(database) as session:
                answer = await register(
                    session,
                    settings,
                    email=email,
                    password=DEMO_PASSWORD,
                    full_name=name,
                    phone=None,
                    client=ClientInfo(address=None, user_agent="stepcoin demo"),
                    email_verified=True,  # made-up addresses: no mail; demo walkers may order
                )
            user_id = uuid.UUID(str(answer["user"]["id"]))
            created += 1
        except Conflict:
            async with session_scope(database) as session:
                user_id = (
                    await session.execute(
                        text("SELECT id FROM users WHERE email = :e"), {"e": email}
                    )
                ).scalar_one()
            existing += 1
        # a push device each (odd walkers Android, even iOS): in development without a push
        # service, the local stand-ins take their pushes (notify.standin)
        digest = hashlib.sha256(email.encode()).hexdigest()
        async with session_scope(database) as session:
            await notify.register_device(
                session,
                user_id,
                None,
                platform="android" if n % 2 == 0 else "ios",
                environment="production",
                token=f"demo-{digest[:16]}:" + "A" * 140 if n % 2 == 0 else digest,
                app_version="demo",
                timezone=None,
            )
        base = rng.randint(4000, 12000)
        records = []
        for offset in range(6, -1, -1):
            steps = max(0, int(rng.gauss(base, base * 0.25)))
            manual = rng.random() < 0.05
            records.append(
                StepRecordIn(
                    date=today - timedelta(days=offset),
                    steps=steps * (3 if rng.random() < 0.03 else 1),
                    source=rng.choice(["healthkit", "health_connect", "google_fit"]),
                    device_id=f"demo-phone-{n}",
                    manual=manual,
                )
            )
        results = await sync_steps(database, user_id, records)
        synced += len(results)
        flagged += sum(1 for r in results if r["status"] == "flagged")
    products = 0
    if settings.uses_shopify_standin:
        outcome = await sync_catalogue(database, trigger="demo")
        products = int(outcome["created"]) + int(outcome["updated"])
    return DemoReport(created, existing, synced, flagged, products)
