"""What every command module shares: the client it talks through."""

from __future__ import annotations

import click

from heron._client import Client


def client() -> Client:
    """A client from ``HERON_*`` settings: embedded unless ``HERON_URL`` names a server.

    It is closed when the command ends, so no database connection outlives the command.
    """
    c = Client()
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(c.close)
    return c
