"""The JSON stepcoin_apply_sync reads (steps.payload): every row an object with the fields the
function reads by name, dates as YYYY-MM-DD, in the rows' order; and its answer read back."""

from __future__ import annotations

from datetime import date

import orjson

from stepcoin.steps.payload import (
    DayOutcome,
    DayRow,
    RecordRow,
    SyncPayload,
    ValidationRow,
    parse_outcome,
)

DAY = date(2026, 12, 5)


def test_the_payload_names_every_field_of_every_row():
    payload = SyncPayload(
        [
            RecordRow(
                DAY, "healthkit", 9000, 9000, ["phone"], "r1", 3, False, False, None, "approved", []
            )
        ],
        [ValidationRow(DAY, "healthkit", 9000, "flagged", [{"code": "x"}], 40, True)],
        [DayRow(DAY, "healthkit", 9000, 90, 0)],
        None,
        ["phone"],
        DAY,
        2,
    )
    assert orjson.loads(payload.to_json()) == {
        "records": [
            {
                "day": "2026-12-05",
                "source": "healthkit",
                "steps": 9000,
                "approved_steps": 9000,
                "device_ids": ["phone"],
                "client_record_id": "r1",
                "client_record_version": 3,
                "manual": False,
                "deleted": False,
                "intervals": None,
                "status": "approved",
                "reasons": [],
            }
        ],
        "validations": [
            {
                "day": "2026-12-05",
                "source": "healthkit",
                "steps": 9000,
                "status": "flagged",
                "rule_hits": [{"code": "x"}],
                "risk_score": 40,
                "stored": True,
            }
        ],
        "days": [
            {
                "day": "2026-12-05",
                "credited_source": "healthkit",
                "credited_steps": 9000,
                "coins_paid": 90,
                "coins_pending": 0,
            }
        ],
        "budget": None,
        "devices": ["phone"],
        "device_since": "2026-12-05",
        "device_accounts": 2,
    }


def test_the_answer_is_read_into_day_outcomes():
    answer = {
        "days": [
            {
                "day": "2026-12-05",
                "credited_source": None,
                "coins_delta": -3,
                "pending_delta": 4,
                "coins_paid": 5,
                "coins_pending": 6,
            }
        ],
        "available": 7,
        "version": 8,
    }
    outcome = parse_outcome(orjson.dumps(answer).decode())
    assert outcome.days == [DayOutcome(DAY, None, -3, 4, 5, 6)]
    assert (outcome.available, outcome.version, outcome.conflict) == (7, 8, False)
