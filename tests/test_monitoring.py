"""Monitors over both transports and both backends: create, batch checks per window, history,
reports, live checks from the prediction log with late labels, and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import heron
from heron._predictions import PredictionRecord

SHIFTED = {"mean radius", "worst texture"}


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    return load_breast_cancer(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def model(data: Any) -> LogisticRegression:
    X, y = data
    return LogisticRegression(max_iter=5000).fit(X, y)


@pytest.fixture
def quickstart(client: heron.Client, data: Any, model: LogisticRegression) -> heron.Client:
    X, y = data
    client.log_dataset(X.assign(target=y), name="breast-cancer")
    mv = client.log_model(model, name="cancer-clf", input_example=X.head(3))
    client.set_alias("cancer-clf", "champion", mv.version)
    return client


def shifted(X: pd.DataFrame, y: pd.Series | None = None) -> pd.DataFrame:
    out = X.copy() if y is None else X.assign(target=y)
    out["mean radius"] = out["mean radius"] * 1.3
    out["worst texture"] = out["worst texture"] + 8
    return out


def test_create_check_history_report(quickstart: heron.Client, data: Any, tmp_path: Path) -> None:
    X, y = data
    client = quickstart
    monitor = client.create_monitor("cancer-batch", "breast-cancer", model="cancer-clf@champion")
    assert monitor.label_column == "target"  # the one column the signature does not take
    assert monitor.has_reference_predictions and len(monitor.features) == 30
    assert monitor.reference.dataset == "breast-cancer" and monitor.reference.version == 1

    path = tmp_path / "current.parquet"
    shifted(X, y).to_parquet(path)
    outcome = client.check_monitor("cancer-batch", path)
    assert set(outcome.drifted_names()) == SHIFTED
    assert outcome.drift_share == pytest.approx(2 / 30) and not outcome.drifted
    assert {c.test for c in outcome.columns} == {"wasserstein"}
    assert (outcome.model, outcome.version, outcome.rows) == ("cancer-clf", 1, len(X))
    assert outcome.prediction_drift is not None
    perf, estimated = outcome.performance, outcome.estimated_performance
    assert perf is not None and estimated is not None and estimated.estimated
    assert set(perf.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    assert all(v is not None and np.isfinite(v) for v in perf.metrics.values())
    assert abs(estimated.metrics["accuracy"] - perf.metrics["accuracy"]) < 0.1
    failing = {(q.check, q.column) for q in outcome.quality.checks if q.verdict == "fail"}
    assert ("out_of_range", "mean radius") in failing

    client.check_monitor("cancer-batch", X.assign(target=y))  # a clean window
    history = client.list_monitor_checks("cancer-batch").items
    assert [len(c.drifted_names()) for c in history] == [2, 0]
    assert history[0].profile is None
    one = client.get_monitor_check("cancer-batch", history[0].id)
    assert one.profile is not None and one.profile.rows == len(X)
    shares = client.get_series("monitor:cancer-batch", "drift_share")
    assert [p.value for p in shares[0].points] == [pytest.approx(2 / 30), 0.0]

    report = client.write_monitor_report("cancer-batch", tmp_path / "report.html")
    page = report.read_text()
    assert page.count("<svg") > 30 and "<script" not in page and "http" not in page
    assert "mean radius" in page and "Performance over time" in page
    content = json.loads(report.with_suffix(".json").read_text())
    assert len(content["history"]) == 2
    assert set(content["history"][0]["drifted_columns"]) == SHIFTED

    events = client.list_audit_events(object_type="monitor", object_id="cancer-batch").items
    assert [e.action for e in events] == ["create_monitor"]


def test_windows_by_count_and_by_time(quickstart: heron.Client, data: Any) -> None:
    X, y = data
    client = quickstart
    client.create_monitor("by-count", "breast-cancer", model="cancer-clf/1", window="200")
    outcome = client.check_monitor("by-count", X.assign(target=y))
    assert [w.rows for w in outcome.windows] == [200, 200, 169]
    assert outcome.rows == len(X) and not outcome.drifted_names()  # merged: the reference

    client.create_monitor(
        "by-day", "breast-cancer", model="cancer-clf@champion", window="day", time_column="at"
    )
    frame = X.assign(target=y)
    frame["at"] = pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(
        np.arange(len(frame)) % 3, unit="D"
    ) + pd.Timedelta(hours=5)  # fmt: skip
    outcome = client.check_monitor("by-day", frame)
    starts = [w.window_start for w in outcome.windows]
    assert starts == [datetime(2026, 3, d, tzinfo=UTC) for d in (1, 2, 3)]
    assert all(w.window_end - w.window_start == timedelta(days=1) for w in outcome.windows)
    assert not any(q.check == "column_added" for q in outcome.quality.checks)
    history = client.list_monitor_checks("by-day", start=datetime(2026, 3, 2, tzinfo=UTC))
    assert len(history.items) == 2


def test_per_column_tests_thresholds_and_skips(quickstart: heron.Client, data: Any) -> None:
    X, y = data
    drift = {
        "columns": {
            "mean radius": {"test": "psi", "threshold": 5.0},
            "worst texture": {"skip": True},
            "mean texture": {"test": "ks"},
        }
    }
    quickstart.create_monitor("tuned", "breast-cancer", model="cancer-clf@champion", drift=drift)
    outcome = quickstart.check_monitor("tuned", shifted(X, y))
    by_name = {c.column: c for c in outcome.columns}
    assert by_name["mean radius"].test == "psi" and by_name["mean radius"].threshold == 5.0
    assert not by_name["mean radius"].drifted  # the raised threshold holds
    assert by_name["mean texture"].test == "ks"
    assert outcome.skipped["worst texture"] == "skipped by configuration"
    updated = quickstart.update_monitor("tuned", drift={"columns": {}})
    assert updated.drift.columns == {}
    assert set(quickstart.check_monitor("tuned", shifted(X, y)).drifted_names()) == SHIFTED


def test_rebaseline_on_an_earlier_window(quickstart: heron.Client, data: Any) -> None:
    X, y = data
    quickstart.create_monitor("rebased", "breast-cancer", model="cancer-clf@champion")
    first = quickstart.check_monitor("rebased", shifted(X, y)).windows[0]
    monitor = quickstart.update_monitor("rebased", reference_check=first.id)
    assert monitor.reference.kind == "window" and monitor.reference.check_id == first.id
    again = quickstart.check_monitor("rebased", shifted(X, y))
    assert again.drifted_names() == []  # the shifted window is now the baseline


def test_data_only_monitor_and_delete(client: heron.Client) -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=2000), "city": rng.choice(["a", "b"], 2000)})
    client.log_dataset(ref, name="cities")
    monitor = client.create_monitor("cities", "cities/1")
    assert monitor.model is None and monitor.label_column is None
    current = ref.assign(city=rng.choice(["a", "b", "c"], 2000, p=[0.2, 0.2, 0.6]))
    outcome = client.check_monitor("cities", current)
    assert outcome.drifted_names() == ["city"]
    assert outcome.performance is None and outcome.prediction_drift is None
    new = [q for q in outcome.quality.checks if q.check == "new_categories"]
    assert new[0].verdict == "fail" and "'c'" in new[0].message
    with pytest.raises(heron.InvalidInput, match="watches no model"):
        client.run_monitor("cities")
    client.delete_monitor("cities")
    with pytest.raises(heron.NotFound):
        client.get_monitor("cities")
    assert client.list_monitors().items == []


# --- live traffic from the prediction log ------------------------------------------------------


def _log(client: heron.Client, X: pd.DataFrame, model: Any, start: datetime, *, version: int = 1):
    """Requests of 10 rows each, one per minute from ``start``, as a prediction server logs."""
    records = []
    for i in range(0, len(X), 10):
        rows = X.iloc[i : i + 10]
        records.append(
            PredictionRecord(
                request_id=f"{version}-{i:030d}"[:32], endpoint="cancer", revision=1,
                model="cancer-clf", version=version, time=start + timedelta(minutes=i // 10),
                latency_ms=2.0, rows=len(rows),
                inputs={"instances": rows.to_dict(orient="records")},
                outputs=model.predict(rows).tolist(),
            )
        )  # fmt: skip
    client._call("log_predictions", records=records)
    return records


def test_live_windows_per_version_with_late_labels(
    quickstart: heron.Client, data: Any, model: LogisticRegression
) -> None:
    X, y = data
    client = quickstart
    client.create_endpoint("cancer", ["cancer-clf@champion"])
    monitor = client.create_monitor("live", "breast-cancer", endpoint="cancer", window="hour")
    assert monitor.label_column == "target"
    start = datetime(2026, 3, 1, 10, tzinfo=UTC)
    records = _log(client, X.iloc[:300], model, start)  # 30 requests, 10:00 to 10:29
    _log(client, shifted(X.iloc[300:400]), model, start + timedelta(hours=1), version=2)

    assert client.run_monitor("live", until=start + timedelta(minutes=59)) == []  # not closed
    checks = client.run_monitor("live", until=start + timedelta(hours=3))
    windows = [(c.window_start.hour, c.version, c.rows) for c in checks]
    assert windows == [(10, 1, 300), (11, 2, 100)]
    assert checks[0].drifted_names() == [] and set(checks[1].drifted_names()) >= SHIFTED
    assert all(c.source == "live" and c.performance is None for c in checks)
    assert checks[0].estimated_performance is None  # labels only: no probabilities logged
    assert client.run_monitor("live", until=start + timedelta(hours=3)) == []  # checked once

    labels = y.iloc[:300].tolist()
    feedback = [
        {"request_id": r.request_id, "label": labels[i * 10 : i * 10 + 10]}
        for i, r in enumerate(records)
    ]
    assert client.log_feedback("cancer", feedback).accepted == 30
    client.run_monitor("live", until=start + timedelta(hours=3))  # refreshes late labels
    stored = client.list_monitor_checks("live", version=1).items
    perf = stored[0].performance
    assert perf is not None and perf.rows == 300
    expected = float((model.predict(X.iloc[:300]) == y.iloc[:300]).mean())
    assert perf.metrics["accuracy"] == pytest.approx(expected)
    series = client.get_series("monitor:live", "performance.accuracy")
    assert [s.key for s in series] == ["cancer-clf/1"]
    volume = client.get_series("endpoint:cancer", "predictions")
    assert {s.key: sum(p.value for p in s.points) for s in volume} == {
        "cancer-clf/1": 30, "cancer-clf/2": 10,
    }  # fmt: skip


def test_live_count_windows(quickstart: heron.Client, data: Any, model: Any) -> None:
    X, _ = data
    quickstart.create_endpoint("cancer", ["cancer-clf@champion"])
    quickstart.create_monitor("counted", "breast-cancer", endpoint="cancer", window="100")
    _log(quickstart, X.iloc[:250], model, datetime(2026, 3, 1, tzinfo=UTC))
    checks = quickstart.run_monitor("counted")
    assert [c.rows for c in checks] == [100, 100]  # the last 50 rows wait for more
    _log(quickstart, X.iloc[250:300], model, datetime(2026, 3, 2, tzinfo=UTC), version=1)
    assert [c.rows for c in quickstart.run_monitor("counted")] == [100]  # 50 waiting + 50 new
