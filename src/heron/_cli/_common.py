"""What every command module shares: the client it talks through."""

from __future__ import annotations

from heron._client import Client


def client() -> Client:
    """A client from ``HERON_*`` settings: embedded unless ``HERON_URL`` names a server."""
    return Client()
