"""The audit trail: hash-chained, verified, and tampering with the database shows, on both
backends; ``heron audit log`` answers who did what, as JSON lines too."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, delete, func, insert, select, update
from typer.testing import CliRunner

import heron
from heron._cli import app
from heron._services import Caller, Services
from heron._settings import Settings
from heron._store import _tables as t

ev = t.audit_events


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    s = Services(settings)
    source = s.artifacts.put_bytes(b"model").digest
    for _ in range(3):
        s.registry.create_model_version("churn", source=source, flavor="python")
    s.as_caller(Caller("alice", "10.1.2.3")).registry.set_alias("churn", "champion", 2)
    s.as_caller(Caller("bob", "10.9.9.9")).registry.set_alias("churn", "champion", 3)
    s.tracking.create_experiment("other")
    yield s
    s.close()


def ids(services: Services) -> list[int]:
    with services.metadata.read() as conn:
        return list(conn.execute(select(ev.c.id).order_by(ev.c.id)).scalars())


def tamper(services: Services, change: Callable[[Connection, list[int]], Any]) -> None:
    all_ids = ids(services)
    with services.metadata.write() as conn:
        change(conn, all_ids)


def test_untouched_trail_verifies(services: Services) -> None:
    report = services.audit.verify_audit_chain()
    assert report.ok and report.events_checked == len(ids(services)) >= 7
    assert report.first_bad_event_id is None


TAMPERING: dict[str, tuple[Callable[[Connection, list[int]], Any], Callable[[list[int]], int]]] = {
    "edit-actor": (
        lambda c, i: c.execute(update(ev).where(ev.c.id == i[3]).values(actor="mallory")),
        lambda i: i[3],
    ),
    "edit-after": (
        lambda c, i: c.execute(update(ev).where(ev.c.id == i[-2]).values(after={"version": 9})),
        lambda i: i[-2],
    ),
    "edit-time": (
        lambda c, i: c.execute(update(ev).where(ev.c.id == i[1]).values(time=0)),
        lambda i: i[1],
    ),
    "edit-source": (
        lambda c, i: c.execute(update(ev).where(ev.c.id == i[2]).values(source="1.1.1.1")),
        lambda i: i[2],
    ),
    "delete-middle": (lambda c, i: c.execute(delete(ev).where(ev.c.id == i[2])), lambda i: i[3]),
    "delete-first": (lambda c, i: c.execute(delete(ev).where(ev.c.id == i[0])), lambda i: i[1]),
    "delete-last": (lambda c, i: c.execute(delete(ev).where(ev.c.id == i[-1])), lambda i: i[-1]),
    "delete-all": (lambda c, i: c.execute(delete(ev)), lambda i: i[-1]),
    "insert-unhashed": (
        lambda c, i: c.execute(
            insert(ev).values(
                time=1, actor="mallory", action="create", object_type="x", object_id="y"
            )
        ),
        lambda i: i[-1] + 1,
    ),
    "swap-hashes": (
        lambda c, i: c.execute(update(ev).where(ev.c.id == i[4]).values(hash="0" * 64)),
        lambda i: i[4],
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING), ids=list(TAMPERING))
def test_tampering_with_the_database_is_detected(services: Services, case: str) -> None:
    change, first_bad = TAMPERING[case]
    before = ids(services)
    tamper(services, change)
    report = services.audit.verify_audit_chain()
    assert not report.ok
    assert report.first_bad_event_id == first_bad(before), report.problem
    assert report.problem


def test_a_rehashed_edit_still_breaks_the_next_link(services: Services) -> None:
    from heron._audit import event_hash

    all_ids = ids(services)
    with services.metadata.write() as conn:
        row = dict(
            conn.execute(select(ev).where(ev.c.id == all_ids[2])).mappings().one(),
        )
        row["actor"] = "mallory"
        row["time"] = int(row["time"].timestamp() * 1000 + 0.5)
        conn.execute(
            update(ev)
            .where(ev.c.id == all_ids[2])
            .values(actor="mallory", hash=event_hash(row, row["prev_hash"]))
        )
    report = services.audit.verify_audit_chain()
    assert not report.ok and report.first_bad_event_id == all_ids[3]


def test_concurrent_writers_keep_one_chain(services: Services) -> None:
    def work(n: int) -> None:
        s = services.as_caller(Caller(f"w{n}"))
        for k in range(5):
            s.tracking.create_experiment(f"exp-{n}-{k}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = services.audit.verify_audit_chain()
    assert report.ok and report.events_checked == len(ids(services))
    with services.metadata.read() as conn:
        prevs = conn.execute(select(func.count(func.distinct(ev.c.prev_hash)))).scalar_one()
    assert prevs == len(ids(services))  # no two events claim the same predecessor


def test_rolled_back_change_leaves_the_chain_intact(services: Services) -> None:
    with pytest.raises(heron.NotFound):
        services.registry.create_model_version(
            "new-model",
            source=services.artifacts.put_bytes(b"m").digest,
            flavor="python",
            run_id="0" * 32,
        )
    assert services.audit.verify_audit_chain().ok


def test_model_filter_answers_who_moved_champion(services: Services) -> None:
    events = services.audit.list_audit_events(model="churn").items
    assert {e.object_type for e in events} == {"registered_model", "model_version", "model_alias"}
    moves = [e for e in events if e.action == "set_alias"]
    assert [(m.actor, m.before, m.after, m.source) for m in moves] == [
        ("alice", {"version": None}, {"version": 2}, "10.1.2.3"),
        ("bob", {"version": 2}, {"version": 3}, "10.9.9.9"),
    ]
    # Another model whose name starts the same is not included; LIKE wildcards are literal.
    services.registry.create_registered_model("churn_v2")
    services.registry.create_registered_model("churnXv2")
    names = {e.object_id for e in services.audit.list_audit_events(model="churn_v2").items}
    assert names == {"churn_v2"}


# --- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def cli_env(services: Services, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    settings = services.settings
    if settings.resolved_db_url.startswith("postgresql"):
        # A CLI process keeps its client open until it exits; the database-level tests
        # above cover PostgreSQL.
        pytest.skip("CLI tests run on SQLite")
    monkeypatch.setenv("HERON_HOME", str(settings.home))
    monkeypatch.setenv("HERON_DB_URL", settings.resolved_db_url)
    monkeypatch.setenv("HERON_ARTIFACTS", settings.resolved_artifacts)
    return {}


def test_cli_verify_exit_codes(services: Services, cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    target = ids(services)[4]
    tamper(services, lambda c, i: c.execute(update(ev).where(ev.c.id == target).values(actor="x")))
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 8
    assert f"#{target}" in broken.output
    as_json = runner.invoke(app, ["audit", "verify", "--json"])
    assert as_json.exit_code == 8
    assert json.loads(as_json.stdout)["first_bad_event_id"] == target


def test_cli_log_prints_json_lines(services: Services, cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "log", "--json"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(ids(services))
    for line in lines:
        event = json.loads(line)
        assert {"actor", "action", "object_type", "object_id", "time"} <= set(event)
    moves = runner.invoke(
        app, ["audit", "log", "--model", "churn", "--actor", "bob", "--since", "1h", "--json"]
    )
    [move] = [json.loads(line) for line in moves.stdout.strip().splitlines()]
    assert move["action"] == "set_alias" and move["after"] == {"version": 3}
    table = runner.invoke(app, ["audit", "log", "--model", "churn", "--limit", "2"])
    assert table.exit_code == 0 and "Audit events" in table.output
    bad = runner.invoke(app, ["audit", "log", "--since", "yesterday-ish"])
    assert bad.exit_code == 2


def test_migration_chains_events_written_before_it(tmp_path: Any) -> None:
    from sqlalchemy import create_engine

    from heron._store._migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        for n in range(3):  # rows as 0001 wrote them: no hash columns yet
            conn.execute(_raw_insert(n))
    engine.dispose()
    services = Services(Settings(home=tmp_path, db_url=url, artifacts=str(tmp_path / "a")))
    try:
        report = services.audit.verify_audit_chain()
        assert report.ok and report.events_checked == 3
        services.tracking.create_experiment("after")
        assert services.audit.verify_audit_chain().events_checked == 4
    finally:
        services.close()


def _raw_insert(n: int) -> Any:
    from sqlalchemy import text

    return text(
        "INSERT INTO audit_events (time, actor, action, object_type, object_id, before, after,"
        " source) VALUES (:t, 'old', 'create', 'x', :o, NULL, '{\"a\": 1}', NULL)"
    ).bindparams(t=1000 + n, o=str(n))
