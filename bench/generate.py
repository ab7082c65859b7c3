"""Fill a (migrated, empty) StepCoin database with a reproducible benchmark data set.

    python bench/generate.py --database-url postgresql://postgres@127.0.0.1:5432/stepcoin_bench \
        [--users 10000] [--days 90] [--queue 3000] [--bulk-users 1500] [--seed 42]

Everything is set-based SQL (INSERT ... SELECT over generate_series) in one transaction, then
VACUUM ANALYZE of every table that holds rows. The same seed gives the same users, steps and ledger
(ids are derived from the seed; the step counts come from setseed() + random() over a
deterministic row order).

What it writes, consistent with what the API itself would have written:
- `--users` walkers (UTC, created long before the history starts; no password: the benchmark
  mints access tokens directly), each with `--days` days of HealthKit history ending yesterday:
  one step_records row, one auto-approved step_validations row (the record's validation_id),
  one step_days row (credited source, coins_paid) and, for every day that paid, one
  `step_reward` ledger row with its running balance_after; the wallet holds the ledger sum.
- every generated user has a verified email (users.email_verified_at): orders require one.
- `--queue` flagged records waiting for review (one per walker, 8..35 days ago — 8..days-1
  when the history is shorter — so the 7-day
  sync scenario never touches them): a 40,000-step HealthKit day flagged `above_baseline`,
  nothing paid yet, 200 coins held in step_days.coins_pending and wallets.pending_coins.
  Approving one pays 200 coins (a wallet update + a ledger row): the approve scenario.
- `--bulk-users` walkers with no history at all, for the 500-record bulk-ingest scenario.
- one admin (role admin) who reviews the queue.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import psycopg

SOURCE = "healthkit"
FLAGGED_STEPS = 40_000
FLAGGED_HITS = (
    '[{"code": "above_baseline", "action": "flag", "observed": 40000, "threshold": 24000, '
    '"message": "Far above your usual days."}]'
)


def user_id_sql(kind: str) -> str:
    """A deterministic uuid for walker n of a kind ('w' walker, 'b' bulk, 'a' admin)."""
    return f"md5('stepcoin-bench:' || %(seed)s::text || ':{kind}:' || n::text)::uuid"


def generate(url: str, users: int, days: int, queue: int, bulk_users: int, seed: int) -> None:
    if days < 9 and queue:
        raise SystemExit("--days must be >= 9 when --queue > 0 (queued days are 8+ days ago)")
    queue = min(queue, users)
    # queued days are 8..35 days ago (8..days-1 for a shorter history)
    spread = max(1, min(28, days - 8))
    params = {
        "seed": seed,
        "users": users,
        "days": days,
        "queue": queue,
        "bulk": bulk_users,
        "seedf": (seed % 1000) / 1000.0,
        "flagged": FLAGGED_STEPS,
        "hits": FLAGGED_HITS,
        "spread": spread,
    }
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=False) as conn:
        cur = conn.cursor()

        def run(sql: str, args: dict[str, object] | None = None) -> None:
            """psycopg binds parameters server-side: one statement per execute."""
            for statement in sql.split(";\n"):
                if statement.strip():
                    cur.execute(statement, args)  # type: ignore[arg-type]

        (existing,) = cur.execute("SELECT count(*) FROM users").fetchone()  # type: ignore[misc]
        if existing:
            raise SystemExit(f"the database already has {existing} users: use an empty one")
        cur.execute("SET LOCAL work_mem = '256MB'")
        # the earn rule in force today (the history is priced by it: the bench makes no rules)
        rate, cap = cur.execute(  # type: ignore[misc]
            "SELECT coins_per_1000_steps, daily_coin_cap FROM earn_rules "
            "WHERE withdrawn_at IS NULL AND effective_from <= current_date "
            "ORDER BY effective_from DESC LIMIT 1"
        ).fetchone()
        params["rate"], params["cap"] = rate, cap
        # the load comes from one address (127.0.0.1) for thousands of walkers, each syncing
        # faster than a phone does: the limits are lifted, so the runs measure what counting
        # costs (every limited request still takes its buckets), not refusals
        cur.execute(
            "UPDATE settings SET value = to_jsonb(CAST('1000000/second' AS text)) "
            "WHERE key LIKE 'ratelimit.%'"
        )
        # monthly partitions for the whole history (and the months ahead), like production
        cur.execute(
            "SELECT stepcoin_ensure_step_partitions((current_date - %(days)s)::date, 3)", params
        )
        cur.execute("SELECT setseed(%(seedf)s)", params)
        # walkers: n, id, a personal mean of 4,000-12,000 steps a day
        cur.execute(
            f"""
            CREATE TEMP TABLE bench_walkers ON COMMIT DROP AS
            SELECT n, {user_id_sql("w")} AS id, 4000 + floor(random() * 8000)::int AS mean,
                   n <= %(queue)s AS queued
            FROM generate_series(1, %(users)s) AS n ORDER BY n
            """,
            params,
        )
        # one row per walker and day: day k days ago (k = days..1); the queued walkers get one
        # flagged day 8..35 days ago instead of a normal one
        cur.execute(
            """
            CREATE TEMP TABLE bench_days ON COMMIT DROP AS
            SELECT row_number() OVER (ORDER BY w.n, k DESC) AS rid, w.n, w.id AS user_id,
                   (current_date - k)::date AS day,
                   (w.queued AND k = 8 + (w.n %% %(spread)s)) AS flagged,
                   CASE WHEN w.queued AND k = 8 + (w.n %% %(spread)s) THEN %(flagged)s
                        ELSE greatest(0, round(w.mean * (0.5 + random())))::int END AS steps
            FROM bench_walkers w CROSS JOIN generate_series(%(days)s, 1, -1) AS k
            ORDER BY w.n, k DESC
            """,
            params,
        )
        run(
            """
            ALTER TABLE bench_days ADD COLUMN coins bigint;
            UPDATE bench_days SET coins = CASE WHEN flagged THEN 0
                ELSE least(%(cap)s, steps::bigint * %(rate)s / 1000) END;
            """,
            params,
        )
        created = "now() - make_interval(days => %(days)s + 60)"
        run(
            f"""
            INSERT INTO users (id, email, full_name, auth_method, role, timezone, created_at,
                               updated_at, email_verified_at)
            SELECT id, 'walker' || n || '@bench.stepcoin.test', 'Walker ' || n, 'email', 'user',
                   'UTC', {created}, now(), {created}
            FROM bench_walkers ORDER BY n;
            INSERT INTO users (id, email, full_name, auth_method, role, timezone, created_at,
                               updated_at, email_verified_at)
            SELECT {user_id_sql("b")}, 'bulk' || n || '@bench.stepcoin.test', 'Bulk ' || n,
                   'email', 'user', 'UTC', {created}, now(), {created}
            FROM generate_series(1, %(bulk)s) AS n;
            INSERT INTO users (id, email, full_name, auth_method, role, timezone, created_at,
                               updated_at, email_verified_at)
            SELECT {user_id_sql("a")}, 'admin@bench.stepcoin.test', 'Bench Admin', 'email',
                   'admin', 'UTC', {created}, now(), {created}
            FROM generate_series(1, 1) AS n;
            -- each email's one owner (global_keys, issue 19 item 4), as a sign-up claims it
            INSERT INTO global_keys (kind, key, user_id)
            SELECT 'email', email, id FROM users WHERE email LIKE '%%@bench.stepcoin.test';
            """,
            params,
        )
        t_users = time.perf_counter()
        cur.execute(
            """
            INSERT INTO step_records (user_id, recorded_date, source, id, steps, approved_steps,
                device_ids, is_manual, is_deleted, status, reasons, validation_id, synced_at,
                created_at)
            SELECT user_id, day, %(src)s, rid, steps,
                   CASE WHEN flagged THEN 0 ELSE steps END,
                   ARRAY['bench-device-' || n]::varchar[], false, false,
                   CASE WHEN flagged THEN 'flagged' ELSE 'approved' END,
                   CASE WHEN flagged THEN ARRAY['above_baseline']::varchar[]
                        ELSE '{}'::varchar[] END,
                   rid, day + time '20:00', day + time '20:00'
            FROM bench_days ORDER BY rid
            """,
            {**params, "src": SOURCE},
        )
        t_records = time.perf_counter()
        cur.execute(
            """
            INSERT INTO step_validations (id, user_id, step_record_id, recorded_date, source,
                steps, status, rule_hits, risk_score, coins_awarded, coins_pending, created_at)
            SELECT rid, user_id, rid, day, %(src)s, steps,
                   CASE WHEN flagged THEN 'flagged' ELSE 'approved' END,
                   CASE WHEN flagged THEN %(hits)s::jsonb ELSE '[]'::jsonb END,
                   CASE WHEN flagged THEN 40 ELSE 0 END,
                   coins, CASE WHEN flagged THEN least(%(cap)s, %(flagged)s::bigint
                                                       * %(rate)s / 1000) ELSE 0 END,
                   day + time '20:00'
            FROM bench_days ORDER BY rid
            """,
            {**params, "src": SOURCE},
        )
        cur.execute(
            """
            INSERT INTO step_days (user_id, recorded_date, credited_source, credited_steps,
                coins_paid, coins_pending, version, updated_at)
            SELECT user_id, day, CASE WHEN flagged OR steps = 0 THEN NULL ELSE %(src)s END,
                   CASE WHEN flagged THEN 0 ELSE steps END, coins,
                   CASE WHEN flagged THEN least(%(cap)s, %(flagged)s::bigint * %(rate)s / 1000)
                        ELSE 0 END,
                   1, day + time '20:00'
            FROM bench_days ORDER BY user_id, day
            """,
            {**params, "src": SOURCE},
        )
        cur.execute(
            """
            INSERT INTO coin_transactions (id, user_id, amount, transaction_type, reference_id,
                balance_after, created_at)
            SELECT row_number() OVER (ORDER BY n, day), user_id, coins, 'step_reward',
                   'steps:' || user_id || ':' || day || ':1',
                   sum(coins) OVER (PARTITION BY n ORDER BY day), day + time '20:00'
            FROM bench_days WHERE coins > 0 ORDER BY n, day
            """
        )
        t_ledger = time.perf_counter()
        cur.execute(
            """
            INSERT INTO wallets (user_id, available_coins, pending_coins, lifetime_earned,
                                 lifetime_spent, version, updated_at)
            SELECT u.id, coalesce(s.coins, 0), coalesce(s.pending, 0), coalesce(s.coins, 0), 0,
                   0, now()
            FROM users u LEFT JOIN (
                SELECT user_id, sum(coins) AS coins,
                       sum(CASE WHEN flagged THEN least(%(cap)s, %(flagged)s::bigint * %(rate)s
                                                        / 1000) ELSE 0 END) AS pending
                FROM bench_days GROUP BY user_id) s ON s.user_id = u.id
            """,
            params,
        )
        # the boards' change log: step_days' trigger logged every generated day (one row each),
        # but the worker's first job builds every board in full from step_days, which counts
        # them all. Left there, the first refresh drained ~1M rows (~3 s) and left the log a
        # heap of ~15,000 dead pages that every later refresh's DELETE scanned (65-75 ms every
        # 15 s instead of ~4 ms) on this machine's server, which runs without autovacuum
        run("TRUNCATE leaderboard_dirty")
        run(
            """
            SELECT setval('step_records_id_seq', (SELECT max(rid) FROM bench_days));
            SELECT setval(pg_get_serial_sequence('step_validations', 'id'),
                          (SELECT max(rid) FROM bench_days));
            SELECT setval(pg_get_serial_sequence('coin_transactions', 'id'),
                          (SELECT coalesce(max(id), 1) FROM coin_transactions));
            """
        )
        conn.commit()
        t_commit = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        # only the tables that hold rows (what it filled, and what the migrations seeded: the
        # achievements, the settings): a table analyzed while empty (orders, the job queue)
        # gets plans that scan it whole, and a session's cached generic plan keeps them until
        # the next ANALYZE (never, on a server without autovacuum: the order's were 4.3 ms of
        # PostgreSQL instead of 3.3); a table never analyzed is costed as if it had a few
        # pages, as after a fresh `stepcoin migrate` in production, where autovacuum then
        # keeps the statistics current
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT format('%I', c.relname) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"
            ).fetchall()
            if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {name})").fetchone()[0]  # type: ignore[index]
        ]
        conn.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in (
                "users",
                "wallets",
                "step_records",
                "step_validations",
                "step_days",
                "coin_transactions",
            )
        }
        (mismatch,) = conn.execute(  # type: ignore[misc]
            """
            SELECT count(*) FROM wallets w LEFT JOIN (
                SELECT user_id, sum(amount) AS total FROM coin_transactions GROUP BY user_id) l
              ON l.user_id = w.user_id
            WHERE w.available_coins <> coalesce(l.total, 0)
            """
        ).fetchone()
        # the walkers' achievements: nothing evaluated the generated history, so a walker's
        # first sync in a run unlocked 3-4 achievements at once (rewards, ledger rows,
        # notifications: ~5,000 unlocks in a 12 s half-load sync run, in the batch's bursts).
        # In production the batch has followed every sync; marked here for the worker, which
        # bench/run.sh lets drain before the first run (after the ANALYZE above: the marks
        # table is never analyzed, as after a fresh migrate)
        conn.execute(
            "INSERT INTO achievements_dirty (user_id, since) "
            "SELECT DISTINCT user_id, now() FROM step_days ON CONFLICT DO NOTHING"
        )
    done = time.perf_counter()
    print(
        f"generated in {done - started:.1f}s (users {t_users - started:.1f}s, records "
        f"{t_records - t_users:.1f}s, validations+days+ledger {t_ledger - t_records:.1f}s, "
        f"wallets+commit {t_commit - t_ledger:.1f}s, vacuum analyze {done - t_commit:.1f}s)",
        file=sys.stderr,
    )
    print(f"rows: {counts}; wallets != ledger: {mismatch}", file=sys.stderr)
    if mismatch:
        raise SystemExit("generated wallets do not match their ledger")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--queue", type=int, default=3_000, help="flagged records to review")
    parser.add_argument("--bulk-users", type=int, default=1_500, help="users with no history")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--steps-budget",
        type=int,
        default=None,
        help="a daily steps issuance budget of this many coins (every paying sync then counts "
        "on its stripe's counter: the cost of a budget; a large cap holds nothing)",
    )
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url or DATABASE_URL is required")
    url = args.database_url.replace("postgresql+asyncpg://", "postgresql://")
    generate(url, args.users, args.days, args.queue, args.bulk_users, args.seed)
    if args.steps_budget is not None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO issuance_budgets (source, period, cap_coins) VALUES ('steps', 'day', "
                "%s) ON CONFLICT (source, period) DO UPDATE SET cap_coins = EXCLUDED.cap_coins",
                (args.steps_budget,),
            )


if __name__ == "__main__":
    main()
