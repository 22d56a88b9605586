"""Schema migrations (Alembic), applied when a store is opened and by ``heron db upgrade``.

Opening a store must stay cheap (time to first prediction is measured), so the current
revisions are compared with the heads read off the migration files first, and Alembic is
imported only when the schema is behind. Each area of Heron (serving, monitoring,
pipelines, security) adds its tables in its own migration branch from ``0001``; the store
upgrades to all heads, so branches never have to be ordered against each other. A test
keeps ``head_revisions()`` equal to Alembic's own idea of the heads.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

SCRIPT_LOCATION = str(Path(__file__).resolve().parent.parent / "migrations")
_REVISION = re.compile(r"^revision\s*=\s*['\"](\w+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*=\s*(.+)$", re.M)


@functools.cache
def head_revisions() -> frozenset[str]:
    """Revisions no other migration builds on, read from the files without Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (Path(SCRIPT_LOCATION) / "versions").glob("*.py"):
        source = path.read_text()
        rev = _REVISION.search(source)
        if rev is None:
            continue
        revisions.add(rev.group(1))
        down = _DOWN.search(source)
        if down:
            parents.update(re.findall(r"['\"](\w+)['\"]", down.group(1)))
    return frozenset(revisions - parents)


def current_revisions(conn: Connection) -> frozenset[str]:
    if not inspect(conn).has_table("alembic_version"):
        return frozenset()
    return frozenset(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def ensure_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        if current_revisions(conn) == head_revisions():
            return
    upgrade(engine)


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Migrate to ``revision`` under a lock, so concurrent first opens migrate once."""
    from alembic import command

    with engine.connect().execution_options(heron_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(742301)"))
        if current_revisions(conn) == head_revisions() and revision == "heads":
            return
        command.upgrade(alembic_config(conn), revision)


def alembic_config(conn: Connection | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = conn
    return cfg
