"""Where every table goes on Citus (issue 19 item 4): the placement and the checker of its rules.

Each table of the schema is declared once, with a one-line reason:

- ``distributed``: sharded by hash of one column. The per-user tables are sharded by their
  walker's id and co-located with ``users`` (sharded by ``id``), so everything one walker
  touches in a request (their sync, wallet, ledger, orders, inbox) lives on one shard and stays
  one local transaction. A table sharded by another key says so (``colocate_with``).
- ``reference``: small, read everywhere, written rarely: one copy on every node.
- ``local``: stays on the coordinator (the job queue, the admin and ops tables, cross-user
  records): never joined on a worker.

Partitions follow their parent. ``check`` holds the catalog against Citus's documented rules
(docs.citusdata.com, "Creating and Modifying Distributed Objects (DDL)": primary keys and
uniqueness constraints must include the distribution column; foreign keys only between two
local tables, two co-located distributed tables on their distribution columns, or from a
distributed or local table to a reference table), and ``ddl`` prints the statements that
distribute an existing database in a valid order. tests/test_distribution.py runs the check
on the migrated test database; ``stepcoin db distribution`` prints the plan.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["distributed", "reference", "local"]


@dataclass(frozen=True, slots=True)
class Placement:
    kind: Kind
    reason: str
    column: str | None = None  # the distribution column (distributed only)
    colocate_with: str = "users"  # the co-location group (distributed only)


def _walker(reason: str, column: str = "user_id") -> Placement:
    return Placement("distributed", reason, column)


def _reference(reason: str) -> Placement:
    return Placement("reference", reason)


def _local(reason: str) -> Placement:
    return Placement("local", reason)


PLACEMENT: Mapping[str, Placement] = {
    # --- the walker and what only they touch: sharded by the walker, co-located with users
    "users": _walker("the walker; every per-user table is co-located with it", "id"),
    "wallets": _walker("the balance, locked with the ledger row in one shard-local transaction"),
    "coin_transactions": _walker("the ledger: written and paged per walker"),
    "step_records": _walker("the sync's upsert target (monthly partitions follow it)"),
    "step_days": _walker("the day's payment state, read and written by the sync"),
    "step_validations": _walker("the sync's decisions; the review queue scans it by status"),
    "orders": _walker("a walker's orders, placed with the wallet in one transaction"),
    "order_items": _walker("the order's lines, next to their order"),
    "issuance_holds": _walker("coins held back for one walker by an exhausted budget"),
    "adjustment_requests": _walker("an admin's proposed adjustment of one walker's coins"),
    "notifications": _walker("the walker's inbox"),
    "notification_deliveries": _walker("the pushes of one walker's notification"),
    "notification_preferences": _walker("one row per walker"),
    "push_devices": _walker("the walker's phones; a token's owner is found in global_keys"),
    "refresh_tokens": _walker("sessions; the token carries its walker's id (routed lookup)"),
    "email_tokens": _walker("mailed tokens; the token carries its walker's id"),
    "admin_sessions": _walker("console sessions of staff; the cookie carries the user id"),
    "user_identities": _walker("Google/Apple links; (provider, subject) owned via global_keys"),
    "user_achievements": _walker("a walker's unlocks, paid through their wallet"),
    "achievements_dirty": _walker("the walkers whose achievements the batch re-evaluates"),
    "achievement_history": _walker("a walker's closed days summarised for the achievements"),
    "leaderboard_dirty": _walker("the walkers whose board rows the worker refreshes"),
    "leaderboard_cache": _walker("a walker's board rows; a board is a per-shard top-N merge"),
    "leaderboard_prize_awards": _walker("a walker's prize, paid through their wallet"),
    "device_accounts": _walker("the devices a walker synced from (fair play's links)"),
    "account_flags": _walker("fair-play flags of one walker"),
    "link_clearances": _walker("a staff clearance of one walker's flag"),
    "link_marks": _walker("one row per walker: the links' summary"),
    "trust_scores": _walker("one row per walker"),
    "referral_codes": _walker("a walker's code; the code's owner is found in global_keys"),
    "friendships": _walker("both directions are stored: each walker's friends on their shard"),
    "blocks": _walker("who this walker blocked, read when they act", "blocker_id"),
    # --- lookups of globally unique keys, sharded by the key itself
    "global_keys": Placement(
        "distributed",
        "the owner of a globally unique key (email, identity, push token, referral code)",
        "key",
        colocate_with="global_keys",
    ),
    # --- small, read everywhere: one copy per node
    "reward_products": _reference("the catalogue, read by every order"),
    "achievements": _reference("the achievement definitions, read by every evaluation"),
    "settings": _reference("runtime settings, read by every node through a short cache"),
    "earn_rules": _reference("the coin rate by day, read by every sync"),
    "leaderboard_prizes": _reference("the prize table of each period"),
    "issuance_budgets": _reference("the caps per source and period"),
    # --- stays on the coordinator
    "alembic_version": _local("the migration state"),
    "procrastinate_jobs": _local("the job queue (procrastinate)"),
    "procrastinate_events": _local("the job queue's history"),
    "procrastinate_periodic_defers": _local("the job queue's schedule"),
    "procrastinate_workers": _local("the job queue's workers"),
    "admin_logs": _local("the audit log: staff actions, read by the console"),
    "campaigns": _local("an admin's campaign; it pays walkers in per-shard batches"),
    "broadcasts": _local("an admin's broadcast; it fans out in per-shard batches"),
    "webhook_events": _local("Shopify deliveries, de-duplicated by their id"),
    "shop_sync_runs": _local("the catalogue sync's runs"),
    "mail_outbox": _local("mails waiting for SMTP"),
    "password_reset_requests": _local("reset requests by address, for throttling"),
    "login_throttle": _local("failed sign-ins by email and address"),
    "rate_limit_buckets": _local("the rate limiter's buckets (UNLOGGED)"),
    "retention_runs": _local("the retention jobs' progress"),
    "retention_archives": _local("the archived step_records months"),
    "economy_days": _local("the daily economy report: a cross-user aggregate"),
    "issuance_usage": _local("the budgets' counters: a cross-user aggregate"),
    "leaderboard_builds": _local("when each board was computed"),
    "leaderboard_rank_counts": _local("walkers per step bucket: the boards' rank index"),
    "leaderboard_names": _local("the generation of the boards' display names"),
    "leaderboard_prize_rounds": _local("a period's paid prize round"),
    "referrals": _local("invitee and referrer are two walkers; the admin reviews them all"),
    "reports": _local("one walker reporting another: the moderation queue"),
    "friend_invitations": _local("found by their code from anyone; short-lived"),
    "friend_requests": _local("between two walkers, one of them maybe without an account"),
    "groups": _local("a group spans walkers; its pages and boards read it by id"),
    "group_members": _local("members of a group, read by group (one owner per group)"),
    "group_join_requests": _local("requests to join a group, read by its admins"),
    "group_bans": _local("bans of a group"),
    "leaderboard_group_entries": _local("a group's board rows, read by group"),
    "challenges": _local("a challenge spans walkers; the tick reads it"),
    "challenge_participants": _local("a challenge's walkers, read by challenge"),
    "challenge_invitees": _local("a challenge's invitations"),
    "challenge_scores": _local("a challenge's daily scores, recomputed by the tick"),
}


# --- the catalog, as the checker needs it -------------------------------------------------


@dataclass(frozen=True, slots=True)
class UniqueKey:
    """A primary key, unique constraint, unique index (partial ones too) or exclusion
    constraint; a column None is an expression."""

    table: str
    name: str
    kind: str  # "primary key", "unique", "unique index", "exclusion"
    columns: tuple[str | None, ...]
    operators: tuple[str, ...] = ()  # an exclusion constraint's operator per column


@dataclass(frozen=True, slots=True)
class ForeignKey:
    table: str
    name: str
    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]
    on_delete: str  # pg_constraint.confdeltype: a(no action), r(estrict), c(ascade), n, d
    on_update: str


@dataclass(slots=True)
class Catalog:
    tables: set[str] = field(default_factory=set)
    columns: dict[str, dict[str, bool]] = field(default_factory=dict)  # table -> col -> NOT NULL
    keys: list[UniqueKey] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)


# Partitions are read as their root table (they follow their parent's placement).
_TABLES_SQL = """
SELECT c.relname AS name
FROM pg_class c
WHERE c.relnamespace = CAST(:schema AS regnamespace) AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition
"""
_COLUMNS_SQL = """
SELECT root.relname AS table_name, a.attname AS column_name, a.attnotnull AS not_null
FROM pg_class c
JOIN pg_class root ON root.oid = coalesce(pg_partition_root(c.oid), c.oid)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = CAST(:schema AS regnamespace) AND c.relkind IN ('r', 'p')
"""
_KEYS_SQL = """
SELECT root.relname AS table_name, ic.relname AS name,
       CASE WHEN con.contype = 'p' THEN 'primary key'
            WHEN con.contype = 'u' THEN 'unique'
            WHEN con.contype = 'x' THEN 'exclusion'
            ELSE 'unique index' END AS kind,
       ARRAY(SELECT CASE WHEN k.attnum = 0 THEN NULL ELSE a.attname END
             FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, n)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             ORDER BY k.n) AS columns,
       ARRAY(SELECT o.oprname FROM unnest(con.conexclop) WITH ORDINALITY AS x(op, n)
             JOIN pg_operator o ON o.oid = x.op ORDER BY x.n) AS operators
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class root ON root.oid = coalesce(pg_partition_root(c.oid), c.oid)
JOIN pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
    AND con.contype IN ('p', 'u', 'x')
WHERE c.relnamespace = CAST(:schema AS regnamespace) AND c.relkind IN ('r', 'p')
  AND (i.indisunique OR con.contype = 'x')
ORDER BY c.relispartition, root.relname, ic.relname  -- a parent's key before its partitions'
"""
_FOREIGN_KEYS_SQL = """
SELECT root.relname AS table_name, con.conname AS name,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.n) AS columns,
       troot.relname AS target,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.n) AS target_columns,
       CAST(con.confdeltype AS text) AS on_delete, CAST(con.confupdtype AS text) AS on_update
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_class root ON root.oid = coalesce(pg_partition_root(c.oid), c.oid)
JOIN pg_class t ON t.oid = con.confrelid
JOIN pg_class troot ON troot.oid = coalesce(pg_partition_root(t.oid), t.oid)
WHERE con.contype = 'f' AND c.relnamespace = CAST(:schema AS regnamespace)
  AND con.conparentid = 0
"""


async def read_catalog(connection: Any, schema: str = "public") -> Catalog:
    """The tables, NOT NULL columns, unique keys and foreign keys of `schema` (an SQLAlchemy
    AsyncConnection or AsyncSession)."""
    from sqlalchemy import text  # lazy: the module's plan is printed without SQLAlchemy loaded

    async def rows(sql: str) -> Sequence[Any]:
        result = await connection.execute(text(sql), {"schema": schema})
        return list(result.mappings())

    catalog = Catalog()
    catalog.tables = {r["name"] for r in await rows(_TABLES_SQL)}
    for r in await rows(_COLUMNS_SQL):
        columns = catalog.columns.setdefault(r["table_name"], {})
        columns[r["column_name"]] = columns.get(r["column_name"], True) and r["not_null"]
    seen: set[tuple[str, tuple[str | None, ...], str]] = set()
    for r in await rows(_KEYS_SQL):
        key = UniqueKey(
            r["table_name"], r["name"], r["kind"], tuple(r["columns"]), tuple(r["operators"])
        )
        if (key.table, key.columns, key.kind) not in seen:  # a partition's copy of its parent's
            seen.add((key.table, key.columns, key.kind))
            catalog.keys.append(key)
    catalog.foreign_keys = [
        ForeignKey(
            r["table_name"],
            r["name"],
            tuple(r["columns"]),
            r["target"],
            tuple(r["target_columns"]),
            str(r["on_delete"]),
            str(r["on_update"]),
        )
        for r in await rows(_FOREIGN_KEYS_SQL)
    ]
    return catalog


# --- the rules ------------------------------------------------------------------------------

_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def check(catalog: Catalog, placement: Mapping[str, Placement] = PLACEMENT) -> list[str]:
    """Every way the schema breaks the placement's rules on Citus, one line each, naming the
    table, the key and the rule; empty when the schema can be distributed as declared."""
    problems: list[str] = []
    for table in sorted(catalog.tables - placement.keys()):
        problems.append(f"{table}: not declared in stepcoin.distribution.PLACEMENT")
    for table in sorted(placement.keys() - catalog.tables):
        problems.append(f"{table}: declared in PLACEMENT but no such table")
    for table in sorted(catalog.tables & placement.keys()):
        where = placement[table]
        if where.kind != "distributed":
            continue
        if where.column is None:
            problems.append(f"{table}: distributed without a distribution column")
            continue
        columns = catalog.columns.get(table, {})
        if where.column not in columns:
            problems.append(f"{table}: distribution column {where.column} does not exist")
        elif not columns[where.column]:
            problems.append(
                f"{table}: distribution column {where.column} must be NOT NULL "
                "(Citus refuses a row without a shard)"
            )
    for key in catalog.keys:
        keyed = placement.get(key.table)
        if keyed is None or keyed.kind != "distributed":
            continue
        if keyed.column not in key.columns:
            shown = ", ".join(c or "<expression>" for c in key.columns)
            problems.append(
                f"{key.table}: {key.kind} {key.name} ({shown}) does not include the "
                f"distribution column {keyed.column} (Citus enforces uniqueness per shard only)"
            )
        elif key.kind == "exclusion":
            operator = key.operators[key.columns.index(keyed.column)]
            if operator != "=":
                problems.append(
                    f"{key.table}: exclusion {key.name} compares the distribution column "
                    f"{keyed.column} with {operator}, not = (Citus checks it per shard only)"
                )
    for fk in catalog.foreign_keys:
        problems += _check_foreign_key(fk, placement)
    return problems


def _check_foreign_key(fk: ForeignKey, placement: Mapping[str, Placement]) -> list[str]:
    source, target = placement.get(fk.table), placement.get(fk.target)
    if source is None or target is None:
        return []  # reported as undeclared
    name = (
        f"{fk.table}: foreign key {fk.name} ({', '.join(fk.columns)}) -> "
        f"{fk.target} ({', '.join(fk.target_columns)})"
    )
    allowed = {
        "distributed": {"distributed", "reference"},
        "reference": {"reference"},
        "local": {"reference", "local"},
    }
    if target.kind not in allowed[source.kind]:
        return [
            f"{name}: a {source.kind} table may not reference a {target.kind} table "
            f"(allowed: {' or '.join(sorted(allowed[source.kind]))})"
        ]
    if source.kind == "distributed" and target.kind == "distributed":
        if source.colocate_with != target.colocate_with:
            return [
                f"{name}: distributed tables of different co-location groups "
                f"({source.colocate_with}, {target.colocate_with}) cannot reference each other"
            ]
        pairs = list(zip(fk.columns, fk.target_columns, strict=True))
        if (source.column, target.column) not in pairs:
            return [
                f"{name}: a foreign key between distributed tables must match the "
                f"distribution columns position for position ({source.column} -> "
                f"{target.column})"
            ]
    cascades = fk.on_delete not in "ar" or fk.on_update not in "ar"
    to_reference = source.kind == "distributed" and target.kind == "reference"
    if to_reference and cascades and source.column in fk.columns:
        return [
            f"{name}: ON DELETE {_ACTIONS[fk.on_delete]} / ON UPDATE "
            f"{_ACTIONS[fk.on_update]} through a key that holds the distribution column "
            f"{source.column} is not supported by Citus"
        ]
    return []


# --- the plan -----------------------------------------------------------------------------


def ddl(
    placement: Mapping[str, Placement] = PLACEMENT,
    foreign_keys: Iterable[ForeignKey] = (),
) -> list[str]:
    """The Citus statements that distribute an existing (migrated) database, in a valid
    order: reference tables first, referenced before referencing; then each co-location
    group, its anchor first (users for the walkers' tables), referenced before referencing."""
    depends: dict[str, set[str]] = {}
    for fk in foreign_keys:
        if fk.target != fk.table:
            depends.setdefault(fk.table, set()).add(fk.target)

    def ordered(tables: list[str], first: str | None = None) -> list[str]:
        done: list[str] = []

        def visit(table: str, path: tuple[str, ...]) -> None:
            if table in done or table in path:
                return
            for target in sorted(depends.get(table, ())):
                if target in tables:
                    visit(target, (*path, table))
            done.append(table)

        if first is not None and first in tables:
            visit(first, ())
        for table in sorted(tables):
            visit(table, ())
        return done

    lines = ["-- issue 19 item 4: run on the coordinator, after CREATE EXTENSION citus"]
    reference = [t for t, p in placement.items() if p.kind == "reference"]
    lines += [f"SELECT create_reference_table('{t}');" for t in ordered(reference)]
    groups: dict[str, list[str]] = {}
    for table, where in placement.items():
        if where.kind == "distributed":
            groups.setdefault(where.colocate_with, []).append(table)
    for group in sorted(groups, key=lambda g: (g != "users", g)):
        tables = ordered(groups[group], first=group if group in groups[group] else None)
        anchor = tables[0]
        for table in tables:
            column = placement[table].column
            colocate = "'none'" if table == anchor else f"'{anchor}'"
            lines.append(
                f"SELECT create_distributed_table('{table}', '{column}', "
                f"colocate_with => {colocate});"
            )
    local = sorted(t for t, p in placement.items() if p.kind == "local")
    lines.append(f"-- stay on the coordinator ({len(local)} tables): " + ", ".join(local))
    return lines


def table_rows(placement: Mapping[str, Placement] = PLACEMENT) -> list[tuple[str, str, str]]:
    """(table, placement, reason) for the documentation's table, distributed first."""
    order = {"distributed": 0, "reference": 1, "local": 2}
    rows = []
    for table, where in sorted(placement.items(), key=lambda i: (order[i[1].kind], i[0])):
        shown: str = where.kind
        if where.kind == "distributed":
            shown = f"distributed by {where.column}"
            if where.colocate_with != "users":
                shown += f" (own group: {where.colocate_with})"
        rows.append((table, shown, where.reason))
    return rows


# --- keys that carry their walker -----------------------------------------------------------

_ROUTE_SEPARATOR = "-"  # in the URL-safe alphabet: links and cookies carry it as before


def routed_token(user_id: uuid.UUID, secret: str) -> str:
    """An opaque token that names its walker, so its lookup is (user_id, token_hash): one
    shard: 32 hex digits, a dash, then `secret` (URL-safe base64)."""
    return f"{user_id.hex}{_ROUTE_SEPARATOR}{secret}"


def route_of(token: str) -> uuid.UUID | None:
    """The walker a routed token names; None for a token issued before tokens were routed
    (looked up by its hash alone)."""
    head, separator, _ = token.partition(_ROUTE_SEPARATOR)
    if not separator or len(head) != 32 or not all(c in "0123456789abcdef" for c in head):
        return None
    try:
        return uuid.UUID(hex=head)
    except ValueError:
        return None


def walker_condition(token: str, column: str = "user_id") -> tuple[str, uuid.UUID | None]:
    """The look-up of a token by its walker: (`"<column> = :user_id AND "`, the walker) when
    the token names one, so the statement goes to one shard; ("", None) for a token issued
    before tokens were routed, found by its hash alone. Prefix the hash condition with it and
    pass the walker as `user_id`."""
    walker = route_of(token)
    return ("", None) if walker is None else (f"{column} = :user_id AND ", walker)


# --- the walkers in turn --------------------------------------------------------------------


def key_slice(n: int, slices: int) -> tuple[uuid.UUID, uuid.UUID]:
    """The first and last walker id of slice `n` (mod `slices`) of the uuid space: a job that
    visits every walker's rows over a cycle reads one range of a (user_id, ...) key a run."""
    step = 2**128 // slices
    n %= slices
    last = 2**128 - 1 if n == slices - 1 else (n + 1) * step - 1
    return uuid.UUID(int=n * step), uuid.UUID(int=last)
