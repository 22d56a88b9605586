"""Schema migrations (Alembic), applied when a store is opened and by ``heron db upgrade``.

Opening a store must stay cheap (time to first prediction is measured), so the current
revision is compared with ``HEAD_REVISION`` first and Alembic is imported only when the
schema is behind.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

HEAD_REVISION = "0001"
SCRIPT_LOCATION = str(Path(__file__).resolve().parent.parent / "migrations")


def current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ensure_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        if current_revision(conn) == HEAD_REVISION:
            return
    upgrade(engine)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to ``revision`` under a lock, so concurrent first opens migrate once."""
    from alembic import command

    with engine.connect().execution_options(heron_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(742301)"))
        if current_revision(conn) == HEAD_REVISION and revision == "head":
            return
        command.upgrade(alembic_config(conn), revision)


def alembic_config(conn: Connection | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = conn
    return cfg
