"""Issue 4's acceptance, as written, after the foundation's quickstart: ``heron monitors``."""

from __future__ import annotations

import json
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import heron
from heron._cli import app

SHIFTED = {"mean radius", "worst texture"}


def test_acceptance(tmp_path: Path) -> None:  # the autouse fixture made tmp_path the cwd
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    with heron.Client() as client:  # the quickstart, on ./.heron
        with client.start_run(experiment="quickstart") as run:
            model = LogisticRegression(C=1.0, max_iter=5000).fit(X, y)
            run.log_dataset(X.assign(target=y), name="breast-cancer")
            mv = run.log_model(model, name="cancer-clf", input_example=X.head(3))
        client.set_alias("cancer-clf", "champion", mv.version)
    current = X.assign(target=y)
    current["mean radius"] *= 1.3
    current["worst texture"] += 8
    current.to_parquet("current.parquet")
    runner = CliRunner()

    def heron_cli(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    heron_cli("monitors", "create", "cancer-batch", "--model", "cancer-clf@champion",
              "--reference", "breast-cancer")  # fmt: skip
    out = json.loads(
        heron_cli("monitors", "check", "cancer-batch", "--data", "current.parquet", "--json")
    )
    assert len(out["columns"]) == 30
    for column in out["columns"]:
        assert {"column", "test", "statistic", "threshold", "drifted"} <= set(column)
        assert isinstance(column["drifted"], bool)
    assert {c["column"] for c in out["columns"] if c["drifted"]} == SHIFTED
    assert out["drift_share"] == 2 / 30 and out["drifted"] is False
    assert out["performance"]["metrics"]["accuracy"] > 0.8
    heron_cli("monitors", "report", "cancer-batch", "--out", "report.html")
    assert "<svg" in Path("report.html").read_text()
    assert json.loads(Path("report.json").read_text())["monitor"]["name"] == "cancer-batch"

    assert "mean radius" in heron_cli("monitors", "check", "cancer-batch", "--data",
                                      "current.parquet")  # fmt: skip
    listed = json.loads(heron_cli("monitors", "list", "--json"))
    assert [m["name"] for m in listed] == ["cancer-batch"]
    shown = json.loads(heron_cli("monitors", "show", "cancer-batch", "--json"))
    assert shown["label_column"] == "target"
    history = json.loads(heron_cli("monitors", "history", "cancer-batch", "--json"))
    assert len(history) == 2
    assert "cancer-batch" in heron_cli("monitors", "history", "cancer-batch")

    drifted = runner.invoke(app, ["monitors", "check", "cancer-batch", "--data",
                                  "current.parquet", "--fail-on-drift"])  # fmt: skip
    assert drifted.exit_code == 0  # 2 of 30 columns is below the 50% share
    missing = runner.invoke(app, ["monitors", "check", "nope", "--data", "current.parquet"])
    assert missing.exit_code == heron.NotFound.exit_code
    assert "Traceback" not in missing.output and "monitor 'nope'" in missing.output
    bad = runner.invoke(app, ["monitors", "create", "x", "--reference", "breast-cancer",
                              "--test", "mean radius"])  # fmt: skip
    assert bad.exit_code == heron.InvalidInput.exit_code
