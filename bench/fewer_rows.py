"""What fewer rows per sync would buy: a measurement for a product decision (issue 13).

    python bench/fewer_rows.py --database-url URL [--seconds 10] [--rounds 2]

URL is a database made by bench/generate.py (its 10,000 walkers, seed 42). Four forms of the
sync's database work, alternated, each measured with pgbench (c=16, the same-run ceiling) and
bench/sync_cost.py (rows, WAL per call, serial):

- today: stepcoin_apply_sync as migrated, the `sync` form of bench/sql_ceiling.sh (7 days
  re-synced higher and paid: 7 records, 7 decisions, 7 days, 7 ledger rows);
- one ledger row: the same function with its ledger entries folded into one row per sync
  (the net of its days, reference `sync:<walker>:<wallet version>`), as a temporary variant;
- no decision rows: today's function with an empty `validations` list (what "no new decision
  row when a record's outcome is unchanged" would save when every record stays approved);
- both.

The variants are throwaway prototypes (the migrated function is put back at the end); they
exist to price the two product questions in BENCHMARKS.md, not to be shipped as they are.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
from stepcoin.sqlfiles import load  # noqa: E402

CURRENT = "apply_sync.v10.sql"
ONE_ROW = """    -- PROTOTYPE (bench/fewer_rows.py): one ledger row per sync, the net of its days
    IF cardinality(amounts) > 1 THEN
        SELECT sum(a) INTO v_gross FROM unnest(amounts) AS a;
        IF v_gross = 0 THEN
            amounts := '{}'; kinds := '{}'; refs := '{}';
        ELSE
            amounts := ARRAY[v_gross];
            kinds := ARRAY[CASE WHEN v_gross > 0 THEN 'step_reward' ELSE 'reversal' END];
            refs := ARRAY[format('sync:%s:%s', p_user, v_version + 1)];
        END IF;
    END IF;
"""
POST = (
    "    PERFORM 1 FROM stepcoin_wallet_post(p_user, amounts, kinds, refs, NULL, v_pending_total,"
)


def variants() -> dict[str, str]:
    today = load("stepcoin.steps", CURRENT)
    assert today.count(POST) == 1, "the function's post call moved: update bench/fewer_rows.py"
    return {"today": today, "one_row": today.replace(POST, ONE_ROW + POST)}


def scripts(folder: Path, url: str) -> dict[str, Path]:
    out = folder / "ceiling.json"
    env = {"CEILING_FORMS": "sync_serial", "CEILING_SERIAL_SECONDS": "1", "PATH": "/usr/bin:/bin"}
    subprocess.run(
        ["bash", str(HERE / "sql_ceiling.sh"), url, str(out)],
        env=env,
        check=True,
        capture_output=True,
    )
    full = folder / "ceiling_sync.sql"
    text = full.read_text()
    nodec = re.sub(
        r"  'validations', jsonb_agg\(.*?ORDER BY x\.day\),\n",
        "  'validations', CAST('[]' AS jsonb),\n",
        text,
        count=1,
        flags=re.S,
    )
    assert nodec != text, "the ceiling's sync form changed: update bench/fewer_rows.py"
    (folder / "nodec.sql").write_text(nodec)
    return {"decisions": full, "no_decisions": folder / "nodec.sql"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    functions = variants()
    results: dict[str, list[dict[str, float]]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        psycopg.connect(args.database_url, autocommit=True) as db,
    ):
        forms = scripts(Path(tmp), args.database_url)
        try:
            for _ in range(args.rounds):
                for fn, body in functions.items():
                    for form, script in forms.items():
                        db.execute(body)
                        run = subprocess.run(
                            [
                                "pgbench",
                                "-n",
                                "-M",
                                "prepared",
                                "-c",
                                "16",
                                "-j",
                                "2",
                                "-T",
                                str(args.seconds),
                                "-D",
                                "nusers=10000",
                                "-D",
                                "seed=42",
                                "-f",
                                str(script),
                                args.database_url,
                            ],
                            check=True,
                            capture_output=True,
                            text=True,
                        )
                        tps = float(re.search(r"^tps = ([0-9.]+)", run.stdout, re.M).group(1))
                        cost_file = Path(tmp) / "cost.json"
                        subprocess.run(
                            [
                                sys.executable,
                                str(HERE / "sync_cost.py"),
                                "--database-url",
                                args.database_url,
                                "--script",
                                str(script),
                                "--calls",
                                "30",
                                "--out",
                                str(cost_file),
                            ],
                            check=True,
                            capture_output=True,
                        )
                        median = json.loads(cost_file.read_text())["median"]
                        rows = json.loads(cost_file.read_text())["rows_per_call"]
                        results.setdefault(f"{fn} / {form}", []).append(
                            {
                                "tps": tps,
                                "wal_bytes": median["wal_bytes"],
                                "wal_records": median["wal_records"],
                                "rows": sum(
                                    r["inserted"] + r["updated"] + r["deleted"]
                                    for r in rows.values()
                                ),
                            }
                        )
        finally:
            db.execute(functions["today"])
    print("| form | pgbench c=16 tx/s (each round) | rows per sync | WAL bytes | WAL records |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        rates = " / ".join(f"{r['tps']:,.0f}" for r in runs)
        last = runs[-1]
        print(
            f"| {name} | {rates} | {last['rows']:.1f} | {last['wal_bytes']:,.0f} "
            f"| {last['wal_records']:.0f} |"
        )


if __name__ == "__main__":
    main()
