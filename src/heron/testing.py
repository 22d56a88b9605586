"""Public test helpers: isolated Heron stores and clients over both transports.

``heron_settings(tmp_path, db_url)`` makes settings for a throwaway store; ``http_client``
wraps a services container in an in-process HTTP client, so a test drives the real REST
server without a socket. Heron's own suite uses these, and so can plug-in authors.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron._client import Client
from heron._services import Services
from heron._settings import Settings
from heron._transport import EmbeddedTransport, HttpTransport

if TYPE_CHECKING:
    from sqlalchemy import Engine


def heron_settings(root: Path, db_url: str | None = None) -> Settings:
    return Settings(
        home=root / ".heron",
        db_url=db_url or f"sqlite:///{root / '.heron' / 'heron.db'}",
        artifacts=str(root / ".heron" / "artifacts"),
    )


def embedded_client(settings: Settings) -> Client:
    return Client(settings=settings, transport=EmbeddedTransport(Services(settings)))


class _ServedClient(Client):
    """A client that also stops the server it talks to when closed."""

    def __init__(
        self, settings: Settings, url: str, stop: contextlib.ExitStack, token: str | None = None
    ) -> None:
        super().__init__(url=url, settings=settings, transport=HttpTransport(url, token=token))
        self._stop = stop

    def close(self) -> None:
        super().close()
        self._stop.close()


def http_client(
    settings: Settings, services: Services | None = None, *, auth: bool = True
) -> Client:
    """A client talking HTTP to a real REST server on a free loopback port of this process.

    With ``auth`` (the default, like ``heron server``) the server requires a token and the
    client holds an admin's, made for it (``admin_token(services)``)."""
    from heron._server import create_app

    stack = contextlib.ExitStack()
    if services is None:
        services = Services(settings)
        stack.callback(services.close)
    token = admin_token(services) if auth else None
    url = stack.enter_context(serve_in_thread(create_app(services, auth=auth)))
    return _ServedClient(settings, url, stack, token=token)


def admin_token(services: Services) -> str:
    """A new token of the store's ``admin`` user (created when missing)."""
    from heron._security._service import new_token_secret

    token = new_token_secret()
    services.security.ensure_admin_token(token)
    return token


@contextlib.contextmanager
def serve_in_thread(app: object) -> Iterator[str]:
    """Run an ASGI app under uvicorn on 127.0.0.1 (a free port) in a thread; yields its URL."""
    import threading
    import time

    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def prediction_server(client: Client, endpoint: str, **options: Any) -> Iterator[tuple[str, Any]]:
    """``heron serve ENDPOINT`` in a thread (fast polling and log flushes for tests); yields
    its URL and the ``PredictionServer``, closed (log flushed) on exit."""
    from heron._serving import PredictionServer, ServeOptions

    opts = {"poll_interval": 0.05, "log_interval": 0.05, **options}
    server = PredictionServer(client, ServeOptions(endpoint, **opts))
    server.start()
    try:
        with serve_in_thread(server) as url:
            yield url, server
    finally:
        server.close()


@contextlib.contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test; yields a URL that uses it, drops it after."""
    from sqlalchemy import create_engine, text

    schema = f"heron_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def migrated_sqlite(path: Path) -> Path:
    """A SQLite file at the newest schema, to copy for each test instead of migrating."""
    from heron._store._db import MetadataStore

    store = MetadataStore(f"sqlite:///{path}")
    with store.write() as conn:
        conn.exec_driver_sql("SELECT 1")
    store.dispose()  # the last connection checkpoints the WAL into the file
    return path


def truncate_all(engine: Engine) -> None:
    """Empty every Heron table of a migrated schema (fast per-test isolation).

    DELETE, children first: on the few rows a test leaves, it is far cheaper than TRUNCATE.
    """
    from heron._store._tables import metadata

    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
