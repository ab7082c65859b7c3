"""The layers as import contracts (pyproject.toml's [tool.importlinter]; docs/architecture.md).

The contracts run on the real import graph, and each kind of wrong arrow is added to that
graph once to prove that a contract catches it. Every import counts, also one inside a
function; a function-local import of stepcoin is allowed only with a `# lazy:` reason.
"""

from __future__ import annotations

import ast
import copy
import functools
import re
from pathlib import Path

import grimp
import pytest
from importlinter import Contract
from importlinter.api import read_configuration
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
SRC = ROOT / "src" / "stepcoin"
CONTRACT_TYPES: dict[str, type[Contract]] = {
    "layers": LayersContract,
    "forbidden": ForbiddenContract,
    "acyclic_siblings": AcyclicSiblingsContract,
}


@functools.cache
def _contracts() -> dict[str, Contract]:
    """The contracts of pyproject.toml by id, as `lint-imports` reads them."""
    config = read_configuration(str(PYPROJECT))
    return {
        options["id"]: CONTRACT_TYPES[options["type"]](
            name=options["name"],
            session_options=config["session_options"],
            contract_options=options,
        )
        for options in config["contracts_options"]
    }


@functools.cache
def _graph() -> grimp.ImportGraph:
    """The import graph of the code, every import included (also inside functions)."""
    packages = read_configuration(str(PYPROJECT))["session_options"]["root_packages"]
    return grimp.build_graph(*packages, cache_dir=None)


def broken_contracts(
    imports: list[tuple[str, str]] | None = None, modules: list[str] | None = None
) -> set[str]:
    """The ids of the contracts that the code's graph, plus the given imports, breaks."""
    graph = copy.deepcopy(_graph())
    for module in modules or []:
        graph.add_module(module)
    for importer, imported in imports or []:
        graph.add_import(importer=importer, imported=imported)
    return {
        contract_id
        for contract_id, contract in _contracts().items()
        if not contract.check(copy.deepcopy(graph), verbose=False).kept
    }


def test_the_code_keeps_every_contract() -> None:
    assert _contracts().keys() >= {"layers", "domains", "core", "faces", "routers", "acyclic"}
    broken = broken_contracts()
    assert not broken, f"run `lint-imports` for the offending imports: {sorted(broken)}"


@pytest.mark.parametrize(
    ("importer", "imported", "expected"),
    [
        # the core knows no domain (the queue, the audit log)
        ("stepcoin.queue", "stepcoin.shop.orders", {"core", "layers", "acyclic"}),
        ("stepcoin.audit", "stepcoin.wallet.service", {"core", "layers"}),
        # a domain never reaches up into the console, the admin API or an entry point
        ("stepcoin.wallet.service", "stepcoin.console.web", {"faces", "layers"}),
        ("stepcoin.users.service", "stepcoin.admin.schemas", {"faces", "layers"}),
        ("stepcoin.shop.orders", "stepcoin.worker", {"faces", "layers"}),
        # the console and the admin API are two faces over the services, not over each other
        ("stepcoin.console.pages.users", "stepcoin.admin.router", {"layers", "routers"}),
        # domains: features are independent and sit above the wallet, users and auth
        ("stepcoin.shop.orders", "stepcoin.steps.service", {"domains"}),
        ("stepcoin.wallet.service", "stepcoin.shop.orders", {"domains"}),
        ("stepcoin.users.service", "stepcoin.wallet.service", {"domains"}),
        ("stepcoin.auth.service", "stepcoin.users.service", {"domains", "acyclic"}),
        # a router is a leaf: services do not call HTTP handlers
        ("stepcoin.shop.catalogue", "stepcoin.shop.admin_router", {"routers"}),
        # no cycle inside a package either, even through an import inside a function
        ("stepcoin.steps.rules", "stepcoin.steps.service", {"acyclic"}),
        # the Shopify stand-in stays out of the product, and the product out of the stand-in
        ("stepcoin.shop.sync", "shopify_standin.store", {"standin"}),
        ("shopify_standin.app", "stepcoin.shop.shopify", {"standin_alone"}),
    ],
)
def test_a_wrong_arrow_breaks_a_contract(importer: str, imported: str, expected: set[str]) -> None:
    assert expected <= broken_contracts([(importer, imported)])


def test_a_new_top_level_module_must_be_given_a_layer() -> None:
    assert "layers" in broken_contracts(modules=["stepcoin.newcomer"])


INDENTED_STEPCOIN_IMPORT = re.compile(r"^[ \t]+(from|import)[ \t]+stepcoin\b", re.MULTILINE)
WHOLE_MODULE_LAZY = re.compile(r"^# lazy imports: \S", re.MULTILINE)


def unmarked_lazy_imports(source: str) -> list[int]:
    """Lines of function-local stepcoin imports without a `# lazy:` comment above their block
    of imports (or at the end of the line). A module whose every command is lazy on purpose
    (the `stepcoin` command line) says so once, in a top-level `# lazy imports:` line."""
    if not INDENTED_STEPCOIN_IMPORT.search(source) or WHOLE_MODULE_LAZY.search(source):
        return []
    tree = ast.parse(source)
    lines = source.splitlines()
    block_start = {
        node.end_lineno: node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
    }
    unmarked = []
    local_imports = [
        node
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for statement in function.body
        for node in ast.walk(statement)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    for node in local_imports:
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        else:
            names = [alias.name for alias in node.names]
        if not any(name.split(".")[0] == "stepcoin" for name in names):
            continue
        first = node.lineno
        while first - 1 in block_start:
            first = block_start[first - 1]
        above = lines[first - 2].strip() if first >= 2 else ""
        if not above.startswith("# lazy:") and "# lazy:" not in lines[node.lineno - 1]:
            unmarked.append(node.lineno)
    return sorted(set(unmarked))


def test_an_import_inside_a_function_says_why_it_is_lazy() -> None:
    """A lazy import has a reason (start-up time, an optional tool), never a cycle to dodge
    (the `acyclic` contract sees imports inside functions too)."""
    unmarked = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        source = path.read_text()
        lines = source.splitlines()
        unmarked += [
            f"{relative}:{n}: {lines[n - 1].strip()}" for n in unmarked_lazy_imports(source)
        ]
    assert not unmarked, "move these imports to the top, or say why they are lazy:\n" + "\n".join(
        unmarked
    )


def test_the_lazy_import_check_sees_a_bare_import_and_accepts_a_reason() -> None:
    bare = "def f():\n    import os\n    from stepcoin.db import Database\n"
    assert unmarked_lazy_imports(bare) == [3]
    block = "def f():\n    # lazy: start-up time\n    import os\n    from stepcoin import db\n"
    assert unmarked_lazy_imports(block) == []
    multi = (
        "def f():\n    # lazy: why\n    from stepcoin.a import (\n        b,\n    )\n"
        "    import stepcoin.c\n"
    )
    assert unmarked_lazy_imports(multi) == []
    at_top = "from stepcoin.db import Database\n\ndef f():\n    return Database\n"
    assert unmarked_lazy_imports(at_top) == []
    assert unmarked_lazy_imports("# lazy imports: start-up time\n" + bare) == []
