"""Routers and console pages call domain services: no SQL, no execute, no commit of their own.

Read from the source (the AST, so comments and docstrings do not count): a handler that runs a
query or commits fails here, naming the file and line. Queries belong in a domain's
repository/queries/reports module, rules in its service, the one commit in db.session_scope.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "stepcoin"

# Calls that run SQL or end a transaction, whatever object they are called on (a session, a
# connection, a bare asyncpg driver).
FORBIDDEN_METHODS = {
    "execute",
    "executemany",
    "exec_driver_sql",
    "scalar",
    "scalars",
    "stream",
    "stream_scalars",
    "fetch",
    "fetchrow",
    "fetchval",
    "commit",
    "rollback",
}
# SQLAlchemy's statement builders and raw text.
FORBIDDEN_SQLALCHEMY_NAMES = {"text", "select", "insert", "update", "delete", "literal_column"}
SQL_IN_STRING = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
)


def http_layer_modules() -> list[Path]:
    """Every router module and every console page (and the console's plumbing)."""
    modules = set(SRC.glob("*/router.py")) | set(SRC.glob("*/*_router.py"))
    modules |= set((SRC / "console" / "pages").glob("*.py"))
    modules |= {
        SRC / "shop" / "webhooks.py",
        SRC / "console" / "web.py",
        SRC / "console" / "economy.py",
        SRC / "console" / "auth_pages.py",
    }
    return sorted(path for path in modules if path.name != "__init__.py")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def sql_in(source: str, filename: str = "<source>") -> list[str]:
    """Every place in `source` that runs SQL, builds it, or commits: 'line: what'."""
    tree = ast.parse(source, filename)
    docstrings = _docstrings(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for alias in node.names:
                if alias.name in FORBIDDEN_SQLALCHEMY_NAMES:
                    found.append(f"{node.lineno}: imports sqlalchemy's {alias.name}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_METHODS:
                found.append(f"{node.lineno}: calls .{func.attr}(...)")
            elif isinstance(func, ast.Name) and func.id == "text":
                found.append(f"{node.lineno}: calls text(...)")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and SQL_IN_STRING.search(node.value)
        ):
            found.append(f"{node.lineno}: a string of SQL")
    return found


@pytest.mark.parametrize("path", http_layer_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_router_or_console_page_has_no_sql(path: Path) -> None:
    found = sql_in(path.read_text(encoding="utf-8"), str(path))
    assert not found, f"{path.relative_to(SRC)} runs SQL itself; call a domain service:\n" + (
        "\n".join(found)
    )


def test_the_scan_covers_the_routers_and_pages() -> None:
    names = {str(p.relative_to(SRC)) for p in http_layer_modules()}
    for expected in (
        "steps/router.py",
        "shop/admin_router.py",
        "shop/webhooks.py",
        "console/pages/orders.py",
        "console/pages/users.py",
        "console/pages/review.py",
        "console/economy.py",
        "console/web.py",
    ):
        assert expected in names


@pytest.mark.parametrize(
    "snippet",
    [
        "from sqlalchemy import text\n",
        "async def f(session):\n    await session.execute(q)\n",
        "async def f(conn):\n    return await conn.scalar(q)\n",
        "async def f(driver):\n    return await driver.fetchrow(q)\n",
        "async def f(session):\n    await session.commit()\n",
        "def f():\n    return text('x')\n",
        "Q = 'SELECT id FROM users WHERE id = :id'\n",
        "Q = '''UPDATE orders SET status = :s'''\n",
    ],
)
def test_the_scan_finds_sql(snippet: str) -> None:
    assert sql_in(snippet)


def test_the_scan_ignores_docstrings_and_prose() -> None:
    source = (
        '"""Reads SELECT x FROM y through the repository."""\n'
        "def f():\n"
        '    """UPDATE orders SET nothing: only words."""\n'
        '    return "Select at least one record from the list."\n'
    )
    assert sql_in(source) == []
