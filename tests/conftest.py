"""Fixtures: every store test runs on SQLite and PostgreSQL, every client test over the
embedded and the HTTP transport."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import heron
from heron._settings import Settings
from heron.testing import embedded_client, heron_settings, http_client, postgres_schema

PG_URL = os.environ.get("HERON_TEST_POSTGRES_URL")
PG_SKIP = "PostgreSQL tests need HERON_TEST_POSTGRES_URL (CI sets it; see README)"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No HERON_* setting leaks in from the machine; the default client starts fresh."""
    for key in list(os.environ):
        if key.startswith("HERON_") and key != "HERON_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    heron.set_client(None)
    yield
    heron.set_client(None)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings of an empty store, on each metadata backend."""
    if request.param == "sqlite":
        yield heron_settings(tmp_path)
        return
    if not PG_URL:
        pytest.skip(PG_SKIP)
    with postgres_schema(PG_URL) as url:
        yield heron_settings(tmp_path, url)


@pytest.fixture(params=["embedded", "http"])
def client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[heron.Client]:
    """A client over each transport, on each backend."""
    c = embedded_client(settings) if request.param == "embedded" else http_client(settings)
    yield c
    c.close()


@pytest.fixture
def fluent(client: heron.Client) -> heron.Client:
    """The module-level API bound to ``client``."""
    heron.set_client(client)
    return client
