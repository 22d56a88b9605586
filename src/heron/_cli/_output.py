"""How CLI commands print: Rich tables for people, ``--json`` for scripts, one error handler."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from heron._errors import HeronError

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")


def handle_errors(fn: F) -> F:
    """Turn a HeronError into one line on stderr and its exit code: no stack trace."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HeronError as exc:
            where = f" (field: {exc.field})" if exc.field else ""
            # soft_wrap: one line however narrow the terminal, so scripts can grep it.
            err_console.print(
                f"[red]error:[/red] {exc.message}{where}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, default=str) + "\n")


def print_table(title: str, rows: Sequence[BaseModel], columns: Sequence[str]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        data = row.model_dump(mode="json")
        table.add_row(*[_cell(data.get(c)) for c in columns])
    console.print(table)


def print_entity(entity: BaseModel, *, as_json: bool) -> None:
    if as_json:
        print_json(entity)
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in entity.model_dump(mode="json").items():
        table.add_row(key, _cell(value))
    console.print(table)


def emit(title: str, rows: Sequence[BaseModel], columns: Sequence[str], *, as_json: bool) -> None:
    if as_json:
        print_json(list(rows))
    else:
        print_table(title, rows, columns)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_short(v) for v in value)
    return _short(value)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return json.dumps(value)[:80]
    return str(value)
