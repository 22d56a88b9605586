"""The metadata store: one SQLAlchemy engine, write and read transactions, migrations.

SQLite is the embedded default. Several processes may write to it at once (a training
script, ``heron serve`` logging predictions, the CLI), so every write transaction starts
with ``BEGIN IMMEDIATE``: the write lock is taken up front and waited for (busy timeout),
instead of a read transaction failing half-way when it tries to upgrade to a write lock,
which is what surfaces "database is locked" in naive set-ups. WAL lets readers go on while
one process writes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from heron._errors import InvalidInput, Unavailable

_BUSY_TIMEOUT_MS = 30_000
_CACHE_KIB = 16_384  # per connection, allocated only as pages are read
_WAL_PAGES = 10_000


class MetadataStore:
    """SQLAlchemy engine over SQLite or PostgreSQL, migrated to the newest schema on open."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    engine = self._create_engine()
                    from heron._store._migrate import ensure_schema

                    try:
                        ensure_schema(engine)
                    except OperationalError as exc:
                        engine.dispose()
                        raise _unavailable(exc) from exc
                    self._engine = engine
        return self._engine

    @property
    def dialect(self) -> str:
        return make_url(self.url).get_backend_name()

    def _create_engine(self) -> Engine:
        try:
            url = make_url(self.url)
        except Exception as exc:  # sqlalchemy raises ArgumentError on junk
            raise InvalidInput(f"not a database URL: {self.url!r}", field="db_url") from exc
        backend = url.get_backend_name()
        if backend == "sqlite":
            return _sqlite_engine(url)
        if backend == "postgresql":
            return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        raise InvalidInput(
            f"unsupported database {backend!r}: use sqlite:// or postgresql+psycopg://",
            field="db_url",
        )

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that may write. On SQLite it waits up to the busy timeout for the
        write lock (``BEGIN IMMEDIATE``) rather than failing at the first contention."""
        try:
            with self._connect(write=True) as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise _unavailable(exc) from exc

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self._connect(write=False) as conn, conn.begin():
            yield conn

    def _connect(self, *, write: bool) -> Connection:
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            raise _unavailable(exc) from exc
        return conn.execution_options(heron_write=write)

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _unavailable(exc: OperationalError) -> Unavailable:
    return Unavailable(f"metadata store unavailable: {str(exc.orig or exc).splitlines()[0]}")


def _sqlite_engine(url: Any) -> Engine:
    database = url.database or ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    memory = database in ("", ":memory:")
    engine = create_engine(
        url,
        poolclass=NullPool if memory else None,
        connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        # SQLite drops a connection's page cache whenever another connection has written,
        # so a pool that rotates over its connections reads every hot page again each
        # write. The last connection returned is the one whose cache is current.
        **({} if memory else {"pool_use_lifo": True}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN IMMEDIATE is ours to emit.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        # A batch of metrics lands on ~1,000 leaf pages of the (run, key, step) index, one
        # per series. With the default 2 MB page cache those pages are re-read every batch,
        # and with the default 1,000-page WAL the checkpoint (copying pages back into the
        # database, then fsync) ran on almost every commit: half the time of a batch. A
        # larger cache and a 40 MB WAL write each hot page back once per many batches.
        cur.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        cur.execute(f"PRAGMA wal_autocheckpoint={_WAL_PAGES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("heron_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def ping(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))
