"""What the command line prints: a table for a person at a terminal, whole values (one
tab-separated line per row) in a pipe or a log, and JSON with `--json` for scripts.

Built on rich (already a dependency, and typer's own): it knows whether a stream is a
terminal, draws the tables and the progress bars, and prints nothing animated in a pipe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

# soft_wrap: a long line is never cut or folded at 80 columns when the output is not a
# terminal (a script reads the whole id); a terminal folds it itself.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document (for scripts) instead of text.")
]
Step = Callable[[str, float | None], None]  # (what is happening, fraction done or None)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, dates, decimals, ids and paths as JSON values (dates as ISO 8601)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):  # SQL sums of coins: whole numbers stay JSON numbers
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, Path | UUID):
        return str(value)
    return value


def print_json(document: Any) -> None:
    """One JSON document on stdout, plain (no colours, no wrapping), for `--json`."""
    sys.stdout.write(json.dumps(to_jsonable(document), indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table on a terminal; otherwise a header line and one line per row, the cells
    whole and separated by tabs (cells may hold rich markup: a pipe gets the plain text)."""
    if out.is_terminal:
        table = Table(*headers)
        for row in rows:
            table.add_row(*row)
        out.print(table)
        return
    for cells in [headers, *rows]:
        line = "\t".join(Text.from_markup(cell).plain for cell in cells)
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def progress(first_step: str = "starting") -> Iterator[Step]:
    """A progress bar on stderr while a long command works, on a terminal only: in a pipe or
    a log nothing is drawn (the command's result on stdout is all there is)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(first_step, total=1.0)

        def update(step: str, fraction: float | None) -> None:
            bar.update(task, description=step, completed=fraction if fraction is not None else 0)

        yield update


@contextlib.contextmanager
def working(what: str) -> Iterator[None]:
    """A spinner with a word of what is happening, for steps without a known fraction."""
    if not err.is_terminal:
        yield
        return
    with err.status(what):
        yield
