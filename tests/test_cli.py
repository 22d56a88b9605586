"""The ``heron`` command over the embedded store: listings, ``--json``, exit codes, docs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.main import get_command
from typer.testing import CliRunner

import heron
from heron._cli import app

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HERON_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def logged(home: Path) -> Iterator[dict[str, Any]]:
    """Two runs, a dataset with two versions, and a model with two versions (v1 champion)."""
    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    y = (X["a"] > 9).astype(int)
    with heron.Client() as client:
        with client.start_run(experiment="cli-exp", name="good") as good:
            good.log_params({"C": 1.0})
            good.log_metric("accuracy", 0.95)
            good.log_dataset(X.assign(target=y), name="points")
            model = LogisticRegression().fit(X, y)
            v1 = good.log_model(model, name="clf", input_example=X.head(2))
        with client.start_run(experiment="cli-exp", name="bad") as bad:
            bad.log_params({"C": 0.1})
            bad.log_metric("accuracy", 0.40)
            bad.log_dataset(X.head(10).assign(target=y.head(10)), name="points")
            v2 = bad.log_model(model, name="clf")
        client.set_alias("clf", "champion", v1.version)
        yield {"good": good.id, "bad": bad.id, "v1": v1.version, "v2": v2.version}


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    # A HeronError is handled (exit code); anything else escaping would be a crash.
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json"))


# --- listings --------------------------------------------------------------------------


def test_experiments_list_and_show(logged: dict[str, Any]) -> None:
    assert [e["name"] for e in as_json("experiments", "list")] == ["cli-exp"]
    assert as_json("experiments", "show", "cli-exp")["name"] == "cli-exp"
    assert "cli-exp" in ok("experiments", "list")


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ("metrics.accuracy > 0.9", {"good"}),
        ("params.C = '0.1'", {"bad"}),
        ("metrics.accuracy > 0.1 and params.C = '1.0'", {"good"}),
        ("metrics.accuracy > 0.1", {"good", "bad"}),
        ("metrics.accuracy > 0.99", set()),
    ],
    ids=["metric", "param", "and", "both", "none"],
)
def test_runs_list_filter_json(logged: dict[str, Any], filter: str, expected: set[str]) -> None:
    runs = as_json("runs", "list", "--filter", filter)
    assert {r["id"] for r in runs} == {logged[name] for name in expected}


def test_runs_list_order_and_show(logged: dict[str, Any]) -> None:
    runs = as_json("runs", "list", "--order-by", "metrics.accuracy DESC")
    assert [r["name"] for r in runs] == ["good", "bad"]
    shown = as_json("runs", "show", logged["good"])
    assert shown["params"] == {"C": "1.0"}
    assert shown["metrics"]["accuracy"] == pytest.approx(0.95)
    assert shown["status"] == "finished"
    assert logged["good"] in ok("runs", "show", logged["good"])


def test_datasets_list_show_versions(logged: dict[str, Any]) -> None:
    assert [(d["name"], d["latest_version"]) for d in as_json("datasets", "list")] == [
        ("points", 2)
    ]
    assert as_json("datasets", "show", "points")["row_count"] == 10
    first = as_json("datasets", "show", "points", "--version", "1")
    assert first["row_count"] == 20
    assert [c["name"] for c in first["columns"]] == ["a", "b", "target"]
    assert sorted(v["version"] for v in as_json("datasets", "versions", "points")) == [1, 2]
    assert "points" in ok("datasets", "show", "points")


def test_models_list_show_versions(logged: dict[str, Any]) -> None:
    [model] = as_json("models", "list")
    assert (model["name"], model["latest_version"], model["aliases"]) == (
        "clf",
        2,
        {"champion": 1},
    )
    assert as_json("models", "show", "clf")["name"] == "clf"
    version = as_json("models", "show", "clf", "1")
    assert (version["version"], version["run_id"], version["aliases"]) == (
        1,
        logged["good"],
        ["champion"],
    )
    assert [v["version"] for v in as_json("models", "versions", "clf")] == [2, 1]


def test_models_alias_moves_and_history(logged: dict[str, Any]) -> None:
    assert "version 2" in ok("models", "alias", "clf", "champion", "2")
    assert as_json("models", "show", "clf")["aliases"] == {"champion": 2}
    history = as_json("models", "aliases", "clf")
    assert [(h["alias"], h["from_version"], h["to_version"]) for h in history] == [
        ("champion", None, 1),
        ("champion", 1, 2),
    ]


def test_models_card_and_lineage(logged: dict[str, Any]) -> None:
    card = ok("models", "card", "clf", "1")
    assert card.startswith("#")
    assert "| C | 1.0 |" in card and "points" in card
    lineage = as_json("models", "lineage", "clf", "1")
    assert lineage["run"]["id"] == logged["good"]
    assert [d["name"] for d in lineage["datasets"]] == ["points"]


def test_models_archive_and_delete(logged: dict[str, Any]) -> None:
    assert "archived" in ok("models", "archive", "clf", "2")
    assert as_json("models", "show", "clf", "2")["status"] == "archived"
    assert "deleted" in ok("models", "delete", "clf", "2")
    assert [v["version"] for v in as_json("models", "versions", "clf")] == [1]


def test_db_upgrade(home: Path) -> None:
    assert "newest schema" in ok("db", "upgrade")
    assert (home / "heron.db").exists()
    assert "newest schema" in ok("db", "upgrade")


# --- errors: one line on stderr, the error's exit code ---------------------------------


@pytest.mark.parametrize(
    ("args", "error", "mentions"),
    [
        (["models", "show", "nope"], heron.NotFound, "nope"),
        (["models", "show", "clf", "9"], heron.NotFound, "9"),
        (["models", "card", "nope", "1"], heron.NotFound, "nope"),
        (["runs", "show", "0" * 32], heron.NotFound, "0" * 32),
        (["experiments", "show", "nope"], heron.NotFound, "nope"),
        (["datasets", "show", "nope"], heron.NotFound, "nope"),
        (["runs", "list", "--filter", "metrics.accuracy >"], heron.InvalidInput, "end of filter"),
        (["runs", "list", "--filter", "metrics.accuracy > 0.9 andd x"], heron.InvalidInput, "andd"),
        (["runs", "list", "--filter", "bogus.x = '1'"], heron.InvalidInput, "bogus"),
        (["runs", "list", "--max", "0"], heron.InvalidInput, "max_results"),
        (["models", "alias", "clf", "7", "1"], heron.InvalidInput, "alias"),
        (["models", "alias", "clf", "../x", "1"], heron.InvalidInput, "alias"),
        (["models", "delete", "clf", "1"], heron.Conflict, "champion"),
        (["models", "archive", "clf", "1"], heron.Conflict, "champion"),
    ],
    ids=[
        "unknown-model",
        "unknown-version",
        "unknown-model-card",
        "unknown-run",
        "unknown-experiment",
        "unknown-dataset",
        "filter-truncated",
        "filter-bad-keyword",
        "filter-bad-prefix",
        "max-zero",
        "alias-numeric",
        "alias-traversal",
        "delete-aliased-version",
        "archive-aliased-version",
    ],
)
def test_errors_are_one_line_with_the_exit_code(
    logged: dict[str, Any], args: list[str], error: type[heron.HeronError], mentions: str
) -> None:
    result = invoke(*args)
    assert result.exit_code == error.exit_code, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert mentions in lines[0]
    assert "Traceback" not in result.output


def test_exit_codes_are_the_documented_ones() -> None:
    assert (heron.NotFound.exit_code, heron.InvalidInput.exit_code, heron.Conflict.exit_code) == (
        3,
        2,
        5,
    )


def test_usage_errors_exit_2_without_a_traceback(home: Path) -> None:
    for args in (["models", "show"], ["models", "alias", "clf", "champion", "one"], ["nope"]):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


# --- every command has help and is documented ------------------------------------------


def commands() -> list[tuple[str, Any]]:
    """Every leaf command of the app as ('group verb', command), walked from Typer's tree."""

    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                yield from walk(child, [*path, name])
        else:
            yield " ".join(path), command

    return list(walk(get_command(app), []))


def test_the_app_has_the_foundation_commands() -> None:
    names = {path for path, _ in commands()}
    assert {
        "server",
        "db upgrade",
        "experiments list",
        "runs list",
        "runs show",
        "datasets versions",
        "models alias",
        "models card",
        "models delete",
    } <= names


@pytest.mark.parametrize(("path", "command"), commands(), ids=[p for p, _ in commands()])
def test_command_has_help(path: str, command: Any) -> None:
    assert (command.help or "").strip(), f"`heron {path}` has no help text"
    result = invoke(*path.split(), "--help")
    assert result.exit_code == 0
    assert command.help.strip().splitlines()[0][:40] in " ".join(result.stdout.split())


@pytest.mark.parametrize("path", [p for p, _ in commands()], ids=[p for p, _ in commands()])
def test_command_is_in_the_readme(path: str) -> None:
    readme = README.read_text()
    assert re.search(rf"heron {re.escape(path)}\b", readme), f"`heron {path}` is not in README.md"
