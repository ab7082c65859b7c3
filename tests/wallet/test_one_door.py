"""Money has one door: nothing but the wallet writes wallets or the coin ledger.

Greps every Python and SQL file of the product for statements that write those tables; only
the wallet package may hold them. Migrations up to 0007 are history (they ran before the door
existed) and stay as they were.
"""

from __future__ import annotations

import re
from pathlib import Path

import stepcoin

SRC = Path(stepcoin.__file__).parent
WRITES = re.compile(
    r"(insert\s+into\s+coin_transactions"
    r"|update\s+coin_transactions"
    r"|delete\s+from\s+coin_transactions"
    r"|update\s+wallets\b"
    r"|delete\s+from\s+wallets\b)",
    re.IGNORECASE,
)
# A wallet is born with its user, empty: `INSERT INTO wallets (user_id)` moves no coin; an
# insert that names any other column would.
WALLET_INSERT = re.compile(r"insert\s+into\s+wallets\s*\(([^)]*)\)", re.IGNORECASE)
HISTORY = {f"000{n}_" for n in range(1, 8)}


def _is_history(path: Path) -> bool:
    return path.parent.name == "versions" and path.name[:5] in HISTORY


def _writers() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*")):
        if path.suffix not in {".py", ".sql"} or _is_history(path):
            continue
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith("wallet/"):
            continue
        source = path.read_text(encoding="utf-8")
        hits = [m.group(0) for m in WRITES.finditer(source)]
        hits += [
            m.group(0)
            for m in WALLET_INSERT.finditer(source)
            if m.group(1).strip().lower() != "user_id"
        ]
        if hits:
            found[relative] = hits
    return found


def test_only_the_wallet_writes_wallets_and_the_ledger():
    assert _writers() == {}


def test_the_check_would_see_a_writer(tmp_path, monkeypatch):
    """The grep itself works: a file with a direct ledger insert is reported."""
    fake = tmp_path / "shop"
    fake.mkdir()
    (fake / "sneaky.py").write_text('SQL = "INSERT INTO coin_transactions (amount) VALUES (1)"')
    (fake / "update.sql").write_text("UPDATE  wallets SET available_coins = 0;")
    (fake / "born.py").write_text('SQL = "INSERT INTO wallets (user_id) VALUES (1)"')
    (fake / "rich.py").write_text('SQL = "INSERT INTO wallets (user_id, available_coins)"')
    monkeypatch.setitem(globals(), "SRC", tmp_path)
    assert set(_writers()) == {"shop/sneaky.py", "shop/update.sql", "shop/rich.py"}
