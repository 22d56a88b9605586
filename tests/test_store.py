"""The metadata store: migrations, atomic audit events, concurrent writers, bad URLs.

Each test that takes ``settings`` runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from typer.testing import CliRunner

import heron
from heron._cli import app
from heron._services import Services
from heron._settings import Settings
from heron._store import _tables as t
from heron._store._db import MetadataStore
from heron._store._migrate import alembic_config, current_revisions, head_revisions, upgrade
from heron.testing import embedded_client, heron_settings

CORE_TABLES = {
    "audit_events",
    "experiments",
    "runs",
    "params",
    "metrics",
    "run_tags",
    "datasets",
    "dataset_versions",
    "registered_models",
    "model_versions",
    "model_aliases",
}


def count(store: MetadataStore, table: object) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


# --- migrations ------------------------------------------------------------------------


def test_head_revisions_match_alembic() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    assert head_revisions() == frozenset(script.get_heads())
    # Every area branches from 0001, so 0001 itself is never a head once areas exist,
    # but it is always an ancestor of every head.
    for head in script.get_heads():
        assert "0001" in {rev.revision for rev in script.iterate_revisions(head, "base")}


def test_opening_a_store_creates_the_schema(settings: Settings) -> None:
    store = MetadataStore(settings.resolved_db_url)
    try:
        with store.read() as conn:
            assert current_revisions(conn) == head_revisions()
            assert set(inspect(conn).get_table_names()) >= CORE_TABLES
    finally:
        store.dispose()


def test_db_upgrade_is_idempotent(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HERON_DB_URL", settings.resolved_db_url)
    runner = CliRunner()
    for _ in range(2):  # on a fresh database, then on an up-to-date one
        result = runner.invoke(app, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert "newest schema" in result.output
    # Data written in between survives a further upgrade.
    with embedded_client(settings) as client:
        client.create_experiment("kept")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    store = MetadataStore(settings.resolved_db_url)
    try:
        with store.read() as conn:
            assert current_revisions(conn) == head_revisions()
        assert count(store, t.experiments) == 1
    finally:
        store.dispose()


def test_upgrade_on_current_schema_is_a_no_op(settings: Settings) -> None:
    store = MetadataStore(settings.resolved_db_url)
    try:
        store.engine  # noqa: B018 - opening migrates
        upgrade(store.engine)
        upgrade(store.engine)
        with store.read() as conn:
            assert current_revisions(conn) == head_revisions()
    finally:
        store.dispose()


def test_concurrent_first_opens_migrate_once(settings: Settings) -> None:
    stores = [MetadataStore(settings.resolved_db_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def open_store(store: MetadataStore) -> None:
        barrier.wait()
        try:
            store.engine  # noqa: B018 - opening migrates
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with stores[0].read() as conn:
            assert current_revisions(conn) == head_revisions()
            # One row per head: nobody stamped the version table twice.
            from sqlalchemy import text

            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            assert sorted(rows) == sorted(head_revisions())
    finally:
        for store in stores:
            store.dispose()


# --- audit events commit or roll back with their change --------------------------------


def test_audit_event_commits_with_its_change(settings: Settings) -> None:
    services = Services(settings)
    try:
        services.registry.create_registered_model("committed")
        events = services.audit.list_audit_events(object_type="registered_model").items
        assert [(e.action, e.object_id) for e in events] == [("create", "committed")]
    finally:
        services.close()


def test_failed_service_call_leaves_no_row_and_no_audit_event(settings: Settings) -> None:
    services = Services(settings)
    try:
        source = services.artifacts.put_bytes(b"not really a model").digest
        # The model row and its audit event are written first, then the run lookup fails.
        with pytest.raises(heron.NotFound) as info:
            services.registry.create_model_version(
                "half-done", source=source, flavor="python", run_id="0" * 32
            )
        assert info.value.field == "run_id" or "run" in info.value.message
        assert count(services.metadata, t.registered_models) == 0
        assert count(services.metadata, t.model_versions) == 0
        assert count(services.metadata, t.audit_events) == 0
    finally:
        services.close()


def test_write_block_that_raises_rolls_back_record_and_change(settings: Settings) -> None:
    services = Services(settings)
    registry = services.registry
    try:
        with pytest.raises(RuntimeError, match="boom"), registry.store.write() as conn:
            registry._create_model(conn, "rolled-back", "", {})
            raise RuntimeError("boom")
        assert count(services.metadata, t.registered_models) == 0
        assert count(services.metadata, t.audit_events) == 0
    finally:
        services.close()


# --- several processes writing to one SQLite file --------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from heron import MetricPoint
    from heron._services import Services
    from heron.testing import heron_settings

    root, worker, n = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    tracking = Services(heron_settings(root)).tracking
    for i in range(n):
        run = tracking.create_run(experiment="concurrent", name=f"w{worker}-{i}")
        tracking.log_metrics(run.id, [MetricPoint(key="loss", value=float(i), step=i)])
    print("done", worker)
    """
)


def test_sqlite_writers_in_several_processes_never_see_database_is_locked(
    tmp_path: Path,
) -> None:
    workers, per_worker = 4, 50
    settings = heron_settings(tmp_path)
    # Create the schema and the experiment up front, as a first `heron` call would.
    with embedded_client(settings) as client:
        client.create_experiment("concurrent")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERON_")}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), str(w), str(per_worker)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for w in range(workers)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert "locked" not in err
        assert proc.returncode == 0, err
        assert out.startswith("done")
    store = MetadataStore(settings.resolved_db_url)
    try:
        assert count(store, t.runs) == workers * per_worker
        assert count(store, t.metrics) == workers * per_worker
        # Every run's creation was audited in its own transaction, plus the experiment.
        assert count(store, t.audit_events) == workers * per_worker + 1
        with store.read() as conn:
            names = set(conn.execute(select(t.runs.c.name)).scalars())
        assert names == {f"w{w}-{i}" for w in range(workers) for i in range(per_worker)}
    finally:
        store.dispose()


# --- unreachable and malformed database URLs -------------------------------------------


def test_unreachable_postgres_is_unavailable(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    # Port 1 on loopback refuses at once: no waiting on a connect timeout.
    url = "postgresql+psycopg://heron@127.0.0.1:1/heron"
    with embedded_client(heron_settings(tmp_path, url)) as client:
        with pytest.raises(heron.Unavailable, match="metadata store unavailable"):
            client.list_experiments()
        with pytest.raises(heron.Unavailable):
            client.create_experiment("nowhere")


def test_db_upgrade_against_unreachable_postgres_exits_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("psycopg")
    monkeypatch.setenv("HERON_DB_URL", "postgresql+psycopg://heron@127.0.0.1:1/heron")
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == heron.Unavailable.exit_code, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "mysql://user@localhost/heron",
        "http://example.com/heron",
        "sqlite",
    ],
    ids=["junk", "unsupported-backend", "http-url", "bare-word"],
)
def test_bad_db_url_is_invalid_input_naming_db_url(url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / ".heron", db_url=url)
    with embedded_client(settings) as client, pytest.raises(heron.InvalidInput) as info:
        client.list_experiments()
    assert info.value.field == "db_url"


def test_junk_db_url_store_raises_invalid_input() -> None:
    with pytest.raises(heron.InvalidInput) as info:
        MetadataStore("::junk::").engine  # noqa: B018
    assert info.value.field == "db_url"
