"""Fixtures: every store test runs on SQLite and PostgreSQL, every client test over the
embedded and the HTTP transport."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

import heron
from heron._server import create_app
from heron._services import Services
from heron._settings import Settings
from heron._store._db import MetadataStore
from heron._transport import HttpTransport
from heron.testing import (
    admin_token,
    embedded_client,
    heron_settings,
    migrated_sqlite,
    postgres_schema,
    serve_in_thread,
    truncate_all,
)

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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied per test: migrating each test's store costs more."""
    return migrated_sqlite(tmp_path_factory.mktemp("template") / "heron.db")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """One migrated PostgreSQL schema for the session; each test empties it first."""
    if not PG_URL:
        yield None
        return
    with postgres_schema(PG_URL) as url:
        store = MetadataStore(url)
        _ = store.engine
        yield url
        store.dispose()


@pytest.fixture(scope="session")
def http_server() -> Iterator[tuple[FastAPI, str]]:
    """One REST server for the session; each test points it at its own services."""
    app = create_app(Services(heron_settings(Path("/nonexistent"))))
    with serve_in_thread(app) as url:
        yield app, url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Settings]:
    """Settings of an empty store, on each metadata backend."""
    if request.param == "sqlite":
        db = tmp_path / ".heron" / "heron.db"
        db.parent.mkdir(parents=True)
        shutil.copyfile(sqlite_template, db)
        yield heron_settings(tmp_path)
        return
    url = request.getfixturevalue("postgres_url")
    if url is None:
        pytest.skip(PG_SKIP)
    truncate_all(_pg_engine(url))
    yield heron_settings(tmp_path, url)


_PG_ENGINES: dict[str, Engine] = {}


def _pg_engine(url: str) -> Engine:
    if url not in _PG_ENGINES:
        _PG_ENGINES[url] = create_engine(url, poolclass=NullPool)
    return _PG_ENGINES[url]


@pytest.fixture(params=["embedded", "http"])
def client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[heron.Client]:
    """A client over each transport, on each backend."""
    if request.param == "embedded":
        c = embedded_client(settings)
        yield c
        c.close()
        return
    app, url = request.getfixturevalue("http_server")
    services = Services(settings)
    app.state.services = services
    token = admin_token(services)  # the server requires a token, as `heron server` does
    c = heron.Client(url=url, settings=settings, transport=HttpTransport(url, token=token))
    yield c
    c.close()
    services.close()


@pytest.fixture
def fluent(client: heron.Client) -> heron.Client:
    """The module-level API bound to ``client``."""
    heron.set_client(client)
    return client
