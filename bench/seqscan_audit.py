"""Which statements no index can serve (issue 13): run test suites against a server where
sequential scans are priced out and every plan is logged, then list the plans that still read
a whole table that grows with the walkers.

With `enable_seqscan = off` the planner takes any index that can serve a scan; a `Seq Scan`
left in a plan means none can. Tables are small in tests, so the plans of a normal run say
nothing about a million walkers; these do. BENCHMARKS.md run 24 found five statements this
way (a sender's friend requests, the requests to an address, a walker's groups and order
webhooks at account deletion, and the devices of a push).

    python bench/seqscan_audit.py [--admin-url URL] [--log FILE] [-- pytest arguments]

    # the default suites; ~5 minutes and ~2 GB of server log on 2 cores
    python bench/seqscan_audit.py
    python bench/seqscan_audit.py -- tests/social -q

It needs a PostgreSQL server it may create a role on (superuser, trust auth) whose log it can
read (`--log`, by default Debian's `/var/log/postgresql/postgresql-15-main.log`) with a
`log_line_prefix` that carries `%u` (Debian's default: `%m [%p] %q%u@%d `). The settings
live on a role of its own (`stepcoin_seqscan_audit`, dropped at the end), so other sessions
of the server are not touched. The tables looked at are those `stepcoin.distribution`
places by walker plus `--also` (by default the webhook and job tables). Each statement is
listed with how often it was planned; `(tests)` and `(migration)` mark text found only under
tests/ or in a migration (a test's own query, a one-off backfill), left for a reader to skip.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg

from stepcoin.distribution import PLACEMENT

ROLE = "stepcoin_seqscan_audit"
ROOT = Path(__file__).resolve().parent.parent
SUITES = [
    "tests/auth",
    "tests/notify",
    "tests/shop",
    "tests/steps",
    "tests/wallet",
    "tests/social",
    "tests/challenges",
    "tests/referrals",
    "tests/achievements",
    "tests/leaderboards",
    "tests/users",
    "tests/accounts",
    "tests/fairplay",
]
SETTINGS = {
    "enable_seqscan": "off",
    "session_preload_libraries": "auto_explain",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_nested_statements": "on",
}
ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
PLAN_NODE = re.compile(
    r"\n\t(?:Insert|Update|Delete|Result|Limit|Seq|Index|Nested|Hash|Sort|Aggregate|Append|"
    r"Merge|Subquery|CTE|Unique|WindowAgg|ProjectSet|Bitmap|Gather|LockRows|Function|Values|"
    r"Materialize|GroupAggregate|HashAggregate|ModifyTable|SetOp|Custom|Incremental|Memoize)"
)


def configure(admin_url: str, on: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("LOAD 'auto_explain'")  # its settings are known to ALTER ROLE only then
        if on:
            conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
            conn.execute(f"CREATE ROLE {ROLE} SUPERUSER LOGIN")
            for name, value in SETTINGS.items():
                conn.execute(f"ALTER ROLE {ROLE} SET {name} = '{value}'")
        else:
            conn.execute(f"DROP ROLE IF EXISTS {ROLE}")


def role_url(admin_url: str) -> str:
    return re.sub(r"://[^@/]*@", f"://{ROLE}@", admin_url, count=1)


def read_plans(log: Path, offset: int) -> list[str]:
    """The logged plans of the role's sessions, from `offset` on."""
    plans: list[str] = []
    entry: list[str] = []
    marker = f" {ROLE}@"
    with log.open("rb") as f:
        f.seek(offset)
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if ENTRY.match(line):
                if entry:
                    plans.append("\n".join(entry))
                entry = [line] if marker in line and "plan:" in line else []
            elif entry:
                entry.append(line)
    if entry:
        plans.append("\n".join(entry))
    return plans


def statement_of(plan: str) -> str:
    head = plan.split("Query Text:", 1)[-1]
    found = PLAN_NODE.search(head)
    text = head[: found.start()] if found else head[:400]
    return re.sub(r"\s+", " ", text).strip()


def origin(statement: str, sources: dict[str, str]) -> str:
    """ " (tests)" or " (migration)" when the statement's text is found only there."""
    probe = re.sub(r"\s+", " ", statement)[:40]
    if probe in sources["app"]:
        return ""
    for where in ("migration", "tests"):
        if probe in sources[where]:
            return f" ({where})"
    return ""


def flattened(folder: Path, *, skip: Path | None = None) -> str:
    return " ".join(
        re.sub(r"\s+", " ", p.read_text(errors="replace"))
        for p in [*folder.rglob("*.py"), *folder.rglob("*.sql")]
        if skip is None or skip not in p.parents
    )


def report(plans: list[str], tables: set[str], limit: int) -> str:
    found: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for plan in plans:
        scanned = set(re.findall(r"Seq Scan on (\w+)", plan)) & tables
        if scanned:
            statement = statement_of(plan)
            for table in scanned:
                found[table][statement] += 1
    migrations = ROOT / "src" / "stepcoin" / "migrations"
    sources = {
        "app": flattened(ROOT / "src", skip=migrations),
        "migration": flattened(migrations),
        "tests": flattened(ROOT / "tests"),
    }
    lines = [f"{len(plans)} plans read; tables scanned: {len(found)}"]
    for table in sorted(found):
        lines.append(f"\n== {table}")
        for statement, n in found[table].most_common(limit):
            lines.append(f"  {n:6d}{origin(statement, sources)}  {statement[:220]}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--log", default="/var/log/postgresql/postgresql-15-main.log")
    parser.add_argument(
        "--also",
        nargs="*",
        default=["webhook_events", "procrastinate_jobs", "admin_logs", "groups"],
        help="tables besides those placed by walker",
    )
    parser.add_argument("--statements", type=int, default=20, help="per table, at most")
    parser.add_argument("pytest", nargs="*", help="pytest arguments (after --)")
    args = parser.parse_args()
    log = Path(args.log)
    tables = {t for t, p in PLACEMENT.items() if p.kind == "distributed"} | set(args.also)
    configure(args.admin_url, True)
    try:
        offset = log.stat().st_size
        env = {**os.environ, "STEPCOIN_TEST_DATABASE_URL": role_url(args.admin_url)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"]
        subprocess.run([*command, *(args.pytest or SUITES)], cwd=ROOT, env=env, check=False)
    finally:
        configure(args.admin_url, False)
    print(report(read_plans(log, offset), tables, args.statements))
    return 0


if __name__ == "__main__":
    sys.exit(main())
