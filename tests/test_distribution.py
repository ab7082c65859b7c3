"""The catalog test of issue 19 item 4: the migrated schema can be distributed on Citus as
stepcoin.distribution declares it (every per-user key carries user_id).

Citus is not installed here, so the rules it enforces when a table is distributed are read
from the catalog (docs.citusdata.com, "Creating and Modifying Distributed Objects (DDL)"):
primary keys, unique constraints and indexes (partial ones too) and exclusion constraints (with
`=`) of a distributed table include its distribution column, which is NOT NULL; foreign keys only
between co-located distributed tables on their distribution columns, from a distributed or
reference table to a reference table, or between tables that stay on the coordinator. The
second half of the file builds schemas that break each rule and shows the checker refuses
them, and a schema that keeps them all passes.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from stepcoin.distribution import PLACEMENT, Placement, check, ddl, read_catalog, table_rows


async def _catalog(engine, schema="public"):
    async with engine.connect() as conn:
        return await read_catalog(conn, schema)


async def test_every_table_is_declared_and_every_declaration_names_a_table(engine):
    catalog = await _catalog(engine)
    assert catalog.tables - PLACEMENT.keys() == set(), "tables without a placement"
    assert PLACEMENT.keys() - catalog.tables == set(), "placements without a table"


@pytest.mark.parametrize("table", sorted(PLACEMENT))
async def test_the_table_can_be_placed_as_declared(engine, table):
    """One test per table, so that a failure names the table; the message names the key and
    the rule."""
    catalog = await _catalog(engine)
    problems = [p for p in check(catalog) if p.startswith(f"{table}:")]
    assert problems == [], "\n".join(problems)


def test_every_placement_has_a_reason_and_a_distributed_table_its_column():
    for table, where in PLACEMENT.items():
        assert where.reason.strip(), table
        assert (where.kind == "distributed") == (where.column is not None), table
    assert PLACEMENT["users"] == Placement("distributed", PLACEMENT["users"].reason, "id")
    assert PLACEMENT["blocks"].column == "blocker_id"


async def test_the_plan_distributes_in_a_valid_order(engine):
    catalog = await _catalog(engine)
    statements = ddl(PLACEMENT, catalog.foreign_keys)
    position = {}
    for i, line in enumerate(statements):
        if line.startswith("SELECT create_"):
            position[line.split("'")[1]] = (i, line)
    placed = {t for t, p in PLACEMENT.items() if p.kind != "local"}
    assert set(position) == placed
    users_at, users_line = position["users"]
    assert users_line == (
        "SELECT create_distributed_table('users', 'id', colocate_with => 'none');"
    )
    assert position["wallets"][1] == (
        "SELECT create_distributed_table('wallets', 'user_id', colocate_with => 'users');"
    )
    for fk in catalog.foreign_keys:  # what a key points at is distributed before it
        if fk.table in placed and fk.target in placed and fk.table != fk.target:
            assert position[fk.target][0] < position[fk.table][0], fk.name
    kinds = [PLACEMENT[t].kind for t, _ in sorted(position.items(), key=lambda i: i[1][0])]
    assert kinds == sorted(kinds, key=lambda k: k != "reference")  # reference tables first
    assert users_at == min(i for t, (i, _) in position.items() if PLACEMENT[t].kind != "reference")
    rows = table_rows()
    assert rows[0][1].startswith("distributed by")
    assert ("global_keys", "distributed by key (own group: global_keys)") in [r[:2] for r in rows]


# --- the checker can fail ----------------------------------------------------------------


@pytest.fixture
async def scratch(engine):
    """A throwaway schema in the test database; dropped afterwards."""
    schema = f"placement_probe_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield schema
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


async def _build(engine, schema, ddl_text):
    async with engine.begin() as conn:
        await conn.execute(text(f"SET LOCAL search_path = {schema}"))
        for statement in ddl_text.split(";"):
            if statement.strip():
                await conn.execute(text(statement))


def _walker(column="user_id", group="users"):
    return Placement("distributed", "a test table", column, group)


REF = Placement("reference", "a test table")
LOCAL = Placement("local", "a test table")

GOOD = """
CREATE TABLE walkers (id uuid PRIMARY KEY, email text NOT NULL);
CREATE TABLE products (id bigint PRIMARY KEY, code text UNIQUE);
CREATE TABLE kinds (code text PRIMARY KEY, product_id bigint REFERENCES products (id));
CREATE TABLE orders (
    user_id uuid NOT NULL REFERENCES walkers (id) ON DELETE CASCADE,
    id bigint NOT NULL,
    code text NOT NULL,
    PRIMARY KEY (user_id, id),
    UNIQUE (user_id, code)
);
CREATE UNIQUE INDEX orders_open ON orders (user_id) WHERE code = 'open';
CREATE TABLE lines (
    user_id uuid NOT NULL,
    order_id bigint NOT NULL,
    product_id bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, order_id, product_id),
    FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id) ON DELETE CASCADE
);
CREATE TABLE days (user_id uuid NOT NULL, day date NOT NULL, PRIMARY KEY (user_id, day))
    PARTITION BY RANGE (day);
CREATE TABLE days_2026 PARTITION OF days FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE owners (key text PRIMARY KEY, user_id uuid NOT NULL);
CREATE TABLE jobs (id bigint PRIMARY KEY, kind text REFERENCES kinds (code));
CREATE TABLE job_events (job_id bigint REFERENCES jobs (id), at timestamptz);
CREATE TABLE bookings (
    user_id int4range NOT NULL, span tstzrange, EXCLUDE USING gist (user_id WITH =, span WITH &&)
)
"""
GOOD_PLACEMENT = {
    "walkers": _walker("id"),
    "products": REF,
    "kinds": REF,
    "orders": _walker(),
    "lines": _walker(),
    "days": _walker(),
    "owners": _walker("key", "owners"),
    "jobs": LOCAL,
    "job_events": LOCAL,
    "bookings": _walker(),
}


async def test_a_schema_that_keeps_every_rule_passes(engine, scratch):
    await _build(engine, scratch, GOOD)
    catalog = await _catalog(engine, scratch)
    assert catalog.tables == set(GOOD_PLACEMENT)  # the partition is read as its parent
    assert check(catalog, GOOD_PLACEMENT) == []


async def test_undeclared_and_missing_tables_are_refused(engine, scratch):
    await _build(engine, scratch, GOOD)
    placement = {k: v for k, v in GOOD_PLACEMENT.items() if k != "jobs"} | {"ghosts": LOCAL}
    assert check(await _catalog(engine, scratch), placement) == [
        "jobs: not declared in stepcoin.distribution.PLACEMENT",
        "ghosts: declared in PLACEMENT but no such table",
    ]


async def test_keys_without_the_distribution_column_are_refused(engine, scratch):
    await _build(
        engine,
        scratch,
        """
        CREATE TABLE walkers (id uuid PRIMARY KEY, email text UNIQUE);
        CREATE TABLE tokens (
            id bigint PRIMARY KEY, user_id uuid, hash bytea, code text, span tstzrange
        );
        CREATE UNIQUE INDEX tokens_hash ON tokens (hash);
        CREATE UNIQUE INDEX tokens_live_code ON tokens (code) WHERE span IS NOT NULL;
        CREATE UNIQUE INDEX tokens_lower_code ON tokens (lower(code), user_id);
        CREATE UNIQUE INDEX tokens_lower_only ON tokens (lower(code));
        ALTER TABLE tokens ADD CONSTRAINT tokens_no_overlap EXCLUDE USING gist (span WITH &&);
        CREATE TABLE days (user_id uuid NOT NULL, day date NOT NULL, PRIMARY KEY (day))
            PARTITION BY RANGE (day);
        CREATE TABLE days_2026 PARTITION OF days FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        CREATE UNIQUE INDEX days_2026_only ON days_2026 (day);
        CREATE TABLE slots (
            user_id int4range NOT NULL, EXCLUDE USING gist (user_id WITH &&)
        )
        """,
    )
    problems = check(
        await _catalog(engine, scratch),
        {"walkers": _walker("id"), "tokens": _walker(), "days": _walker(), "slots": _walker()},
    )
    assert sorted(problems) == sorted(
        [
            "tokens: distribution column user_id must be NOT NULL "
            "(Citus refuses a row without a shard)",
            "walkers: unique walkers_email_key (email) does not include the distribution "
            "column id (Citus enforces uniqueness per shard only)",
            "tokens: primary key tokens_pkey (id) does not include the distribution column "
            "user_id (Citus enforces uniqueness per shard only)",
            "tokens: unique index tokens_hash (hash) does not include the distribution column "
            "user_id (Citus enforces uniqueness per shard only)",
            "tokens: unique index tokens_live_code (code) does not include the distribution "
            "column user_id (Citus enforces uniqueness per shard only)",
            "tokens: unique index tokens_lower_only (<expression>) does not include the "
            "distribution column user_id (Citus enforces uniqueness per shard only)",
            "tokens: exclusion tokens_no_overlap (span) does not include the distribution "
            "column user_id (Citus enforces uniqueness per shard only)",
            "days: primary key days_pkey (day) does not include the distribution column "
            "user_id (Citus enforces uniqueness per shard only)",
            "days: unique index days_2026_only (day) does not include the distribution column "
            "user_id (Citus enforces uniqueness per shard only)",
            "slots: exclusion slots_user_id_excl compares the distribution column user_id with "
            "&&, not = (Citus checks it per shard only)",
        ]
    )


async def test_foreign_keys_across_placements_are_refused(engine, scratch):
    await _build(
        engine,
        scratch,
        """
        CREATE TABLE walkers (id uuid PRIMARY KEY);
        CREATE TABLE settings (key text PRIMARY KEY, updated_by uuid REFERENCES walkers (id));
        CREATE TABLE audit (id bigint PRIMARY KEY, admin_id uuid REFERENCES walkers (id));
        CREATE TABLE queue (id bigint PRIMARY KEY);
        CREATE TABLE orders (
            user_id uuid NOT NULL REFERENCES walkers (id),
            id bigint NOT NULL,
            job_id bigint REFERENCES queue (id),
            reviewer uuid REFERENCES walkers (id),
            PRIMARY KEY (user_id, id),
            UNIQUE (id, user_id)
        );
        CREATE TABLE pairs (
            user_id uuid NOT NULL, friend_id uuid NOT NULL, PRIMARY KEY (user_id, friend_id)
        );
        CREATE TABLE pair_notes (
            user_id uuid NOT NULL,
            friend_id uuid NOT NULL,
            PRIMARY KEY (user_id, friend_id),
            CONSTRAINT pair_notes_swapped FOREIGN KEY (friend_id, user_id)
                REFERENCES pairs (user_id, friend_id)
        );
        CREATE TABLE products (id bigint PRIMARY KEY, job_id bigint REFERENCES queue (id));
        CREATE TABLE picks (
            user_id bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
            PRIMARY KEY (user_id)
        );
        CREATE TABLE owners (key uuid PRIMARY KEY REFERENCES walkers (id))
        """,
    )
    problems = check(
        await _catalog(engine, scratch),
        {
            "walkers": _walker("id"),
            "settings": REF,
            "audit": LOCAL,
            "queue": LOCAL,
            "orders": _walker(),
            "pairs": _walker(),
            "pair_notes": _walker(),
            "products": REF,
            "picks": _walker(),
            "owners": _walker("key", "owners"),
        },
    )
    rules = {p.split(": ", 2)[0] + ": " + p.split(": ", 2)[2] for p in problems}
    assert rules == {
        "settings: a reference table may not reference a distributed table (allowed: reference)",
        "audit: a local table may not reference a distributed table (allowed: local or reference)",
        "orders: a distributed table may not reference a local table "
        "(allowed: distributed or reference)",
        "orders: a foreign key between distributed tables must match the distribution columns "
        "position for position (user_id -> id)",
        "pair_notes: a foreign key between distributed tables must match the distribution "
        "columns position for position (user_id -> user_id)",
        "products: a reference table may not reference a local table (allowed: reference)",
        "picks: ON DELETE CASCADE / ON UPDATE NO ACTION through a key that holds the "
        "distribution column user_id is not supported by Citus",
        "owners: distributed tables of different co-location groups (owners, users) cannot "
        "reference each other",
    }
    assert len(problems) == len(rules)
    # each message names the table, the key with its columns and what it points at
    assert any(
        p.startswith("orders: foreign key orders_reviewer_fkey (reviewer) -> walkers (id): ")
        for p in problems
    )


def test_the_documented_placement_is_the_declared_one():
    """docs/scale-out.md shows the table `stepcoin db distribution` prints."""
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "scale-out.md").read_text()
    for table, placed, reason in table_rows():
        assert f"| {table} | {placed} | {reason} |" in doc, table
