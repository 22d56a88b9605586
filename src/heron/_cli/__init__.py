"""The ``heron`` command: ``heron <plural noun> <verb>``, a few verbs standing alone.

Commands are thin: they parse, call ``heron.Client`` (embedded, or ``HERON_URL``), print.
"""

from __future__ import annotations

import typer

from heron._cli import (
    _endpoints,
    _monitoring,
    _pipelines,
    _predictions,
    _registry,
    _security,
    _server,
    _tracking,
)

app = typer.Typer(
    name="heron",
    help="Heron: track, version, register, serve and monitor ML models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for module in (
    _tracking,
    _registry,
    _server,
    _pipelines,
    _endpoints,
    _predictions,
    _monitoring,
    _security,
):
    module.register(app)


def main() -> None:
    app()
