"""``heron pipelines ...`` and the scheduler (cron and dataset triggers)."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import heron
from heron._cli import app
from heron._pipelines._entities import TriggerKind
from heron._pipelines._scheduler import Scheduler

FLOW = """
import heron
from pathlib import Path

@heron.step
def load(n: int) -> list[int]:
    print("loading", n)
    return list(range(n))

@heron.step
def check(xs: list[int], flag: str) -> int:
    if flag and Path(flag).exists():
        raise RuntimeError("flag file present")
    return sum(xs)

@heron.pipeline
def flow(n: int = 3, flag: str = "", version: int = 0):
    return check(load(n), flag)
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("HERON_HOME", str(tmp_path / ".heron"))
    (tmp_path / "cli_flow.py").write_text(textwrap.dedent(FLOW))
    yield CliRunner()
    sys.modules.pop("cli_flow", None)


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_run_runs_show_logs(cli: CliRunner) -> None:
    code, out = invoke(cli, "pipelines", "run", "cli_flow:flow", "--param", "n=5", "--json")
    assert code == 0, out
    first = json.loads(out)
    assert first["status"] == "succeeded" and first["output"] == 10
    code, out = invoke(cli, "pipelines", "run", "cli_flow:flow", "-p", "n=5", "-x", "local")
    assert code == 0, out
    assert "succeeded; output: 10" in out
    code, out = invoke(cli, "pipelines", "runs", "--json")
    runs = json.loads(out)
    assert len(runs) == 2 and runs[1]["id"] == first["id"]
    code, out = invoke(cli, "pipelines", "show", runs[0]["id"])
    assert code == 0
    assert "⚡ cached" in out and "cache hit: same key as in run" in out
    code, out = invoke(cli, "pipelines", "logs", first["id"], "load")
    assert code == 0 and "loading 5" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "cli_flow:flow", "-p", "m=1"], 2, "has no parameter 'm'"),
        (["run", "cli_flow:flow", "-p", "n"], 2, "is not key=value"),
        (["run", "cli_flow:nothing"], 2, "is not a pipeline"),
        (["run", "no_such_module:flow"], 2, "cannot import 'no_such_module'"),
        (["show", "0" * 32], 3, "does not exist"),
        (["schedule", "s", "cli_flow:flow", "--cron", "every day"], 2, "not a cron expression"),
    ],
    ids=["unknown-param", "bad-param", "not-a-pipeline", "no-module", "no-run", "bad-cron"],
)
def test_cli_bad_input(cli: CliRunner, args: list[str], code: int, message: str) -> None:
    exit_code, out = invoke(cli, "pipelines", *args)
    assert exit_code == code
    assert message in out
    assert "Traceback" not in out


def test_failed_run_then_resume(cli: CliRunner, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.write_text("x")
    code, out = invoke(cli, "pipelines", "run", "cli_flow:flow", "-p", f"flag={flag}", "--json")
    assert code == 1
    failed, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
    assert failed["status"] == "failed"
    flag.unlink()
    code, out = invoke(cli, "pipelines", "resume", failed["id"], "--json")
    assert code == 0, out
    resumed = json.loads(out)
    assert resumed["steps"]["load"]["cached"] and resumed["output"] == 3


@pytest.fixture
def client(settings: heron.Settings, tmp_path: Path) -> Iterator[heron.Client]:
    from heron.testing import embedded_client

    (tmp_path / "cli_flow.py").write_text(textwrap.dedent(FLOW))
    c = embedded_client(settings)
    yield c
    c.close()
    sys.modules.pop("cli_flow", None)


def test_cron_trigger_runs_once_for_missed_times(client: heron.Client) -> None:
    trigger = client._call(
        "create_pipeline_trigger",
        name="nightly",
        target="cli_flow:flow",
        kind=TriggerKind.CRON,
        spec="*/5 * * * *",
        params={"n": "4"},
    )
    created = trigger.created_at
    clock = {"now": created + timedelta(seconds=1)}
    scheduler = Scheduler(client, now=lambda: clock["now"])
    assert scheduler.tick() == []  # the first fire time has not come yet
    clock["now"] = created + timedelta(hours=3)  # down for three hours: 36 missed times
    fired = scheduler.tick()
    assert [r.output for r in fired] == [6]
    assert fired[0].trigger == "cron:nightly"
    assert scheduler.tick() == []  # no backfill
    clock["now"] += timedelta(minutes=5)
    assert len(scheduler.tick()) == 1
    (stored,) = client._call("list_pipeline_triggers")
    assert stored.last_run_id is not None and stored.last_fired_at == clock["now"]


def test_dataset_trigger_fires_on_new_versions(client: heron.Client) -> None:
    client.log_dataset(pd.DataFrame({"a": [1, 2]}), "events")
    client._call(
        "create_pipeline_trigger",
        name="on-events",
        target="cli_flow:flow",
        kind=TriggerKind.DATASET,
        spec="events",
        dataset_param="version",
    )
    scheduler = Scheduler(client, now=lambda: datetime.now(UTC))
    assert scheduler.tick() == []  # version 1 existed before the trigger
    client.log_dataset(pd.DataFrame({"a": [1, 2, 3]}), "events")
    client.log_dataset(pd.DataFrame({"a": [1, 2, 3, 4]}), "events")
    fired = scheduler.tick()
    assert len(fired) == 1 and fired[0].params["version"] == 3
    assert scheduler.tick() == []


def test_trigger_bad_input(client: heron.Client) -> None:
    with pytest.raises(heron.NotFound):
        client._call(
            "create_pipeline_trigger",
            name="t",
            target="cli_flow:flow",
            kind=TriggerKind.DATASET,
            spec="no-such-dataset",
        )
    with pytest.raises(heron.InvalidInput, match="module:attribute"):
        client._call(
            "create_pipeline_trigger",
            name="t",
            target="flow",
            kind=TriggerKind.CRON,
            spec="* * * * *",
        )
