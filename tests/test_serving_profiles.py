"""Profiles of serving traffic: every request within the profile row budget counts in live
drift, whatever the raw sample kept; the others are counted."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

import heron
import heron._serving._run as run
from heron._cli import app as cli
from heron._serving import PredictionServer, ServeOptions
from heron._settings import Settings
from heron.testing import embedded_client, serve_in_thread


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    return load_breast_cancer(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def model(data: Any) -> Any:
    X, y = data
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


@pytest.fixture
def store(settings: Settings, data: Any, model: Any) -> Iterator[heron.Client]:
    X, y = data
    client = embedded_client(settings)
    client.log_dataset(X.assign(target=y), name="breast-cancer")
    client.log_model(model, "cancer-clf", input_example=X.head(3))
    client.set_alias("cancer-clf", "champion", 1)
    client.create_endpoint("cancer", ["cancer-clf@champion"])
    client.create_monitor("live", "breast-cancer", endpoint="cancer", window="hour")
    yield client
    client.close()


def _serve(client: heron.Client, **options: Any) -> PredictionServer:
    opts = {"poll_interval": 0.05, "log_interval": 0.05, "auth": False, **options}
    server = PredictionServer(client, ServeOptions("cancer", **opts))
    server.start()
    return server


def _send(url: str, X: pd.DataFrame, requests: int, rows: int) -> None:
    with httpx.Client(base_url=url) as http:
        for i in range(requests):
            batch = X.iloc[i * rows : (i + 1) * rows].to_dict(orient="records")
            assert http.post("/predict", json={"instances": batch}).status_code == 200


def test_every_request_is_profiled_beyond_the_raw_sample(store: heron.Client, data: Any) -> None:
    X, _ = data
    shifted = X.iloc[:200].assign(**{"mean radius": X["mean radius"].iloc[:200] * 2})
    # A raw-log input budget of 1 byte/s keeps (almost) no inputs: the sample is empty.
    server = _serve(store, log_input_bytes_per_second=1.0)
    try:
        with serve_in_thread(server) as url:
            _send(url, X.iloc[200:], 40, 4)
            _send(url, shifted, 50, 4)
    finally:
        server.close()
    logged = store.list_predictions("cancer").items
    assert len(logged) == 90 and all(r.inputs is None for r in logged)

    checks = store.run_monitor("live", until=datetime.now(UTC) + timedelta(hours=2))
    assert sum(c.rows for c in checks) == 360  # every row sent, none from the raw sample
    assert all(any("profiled from all" in n for n in c.notes) for c in checks)
    assert "mean radius" in {name for c in checks for name in c.drifted_names()}


def test_requests_beyond_the_profile_budget_are_counted_not_profiled(
    store: heron.Client, data: Any
) -> None:
    X, _ = data
    # 20 rows a second with one second of burst: the first five 4-row requests, and about
    # one more per 200 ms the rest take; every request still reaches the raw log.
    server = _serve(store, profile_rows_per_second=20)
    try:
        with serve_in_thread(server) as url:
            _send(url, X, 40, 4)
    finally:
        server.close()
    assert len(store.list_predictions("cancer").items) == 40

    checks = store.run_monitor("live", until=datetime.now(UTC) + timedelta(hours=2))
    profiled_rows = sum(c.rows for c in checks)
    assert 20 <= profiled_rows < 160 and profiled_rows % 4 == 0
    notes = [n for c in checks for n in c.notes if n.startswith("profiled from")]
    assert notes and all(" of " in n and "profile row budget" in n for n in notes)
    # profiled + unprofiled requests, over the windows, are the 40 sent
    counts = [re.match(r"profiled from (\d+) of (\d+) requests", n) for n in notes]
    assert all(counts)
    assert sum(int(m.group(2)) for m in counts if m) == 40
    assert sum(int(m.group(1)) for m in counts if m) == profiled_rows // 4


def test_a_minute_all_beyond_the_budget_still_counts(store: heron.Client, data: Any) -> None:
    from heron._serving._log import Entry
    from heron._serving._profiling import MINUTE_MS

    X, _ = data
    server = _serve(store)  # every request of this minute profiled (well under the budget)
    try:
        with serve_in_thread(server) as url:
            _send(url, X, 6, 2)
        # Another minute of the same hour in which no request fitted the budget.
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        minute = now_ms // MINUTE_MS * MINUTE_MS
        other = minute - MINUTE_MS if minute % 3_600_000 else minute + MINUTE_MS
        late = [
            Entry(f"x{i}", 1, "cancer-clf", 1, False, (other + 1000 * i) / 1000, 1.0, 2, None,
                  b"[0, 1]")
            for i in range(3)
        ]  # fmt: skip
        assert server._profiles is not None
        server._profiles.write("cancer", late)
    finally:
        server.close()
    checks = store.run_monitor("live", until=datetime.now(UTC) + timedelta(hours=2))
    assert sum(c.rows for c in checks) == 12
    notes = [n for c in checks for n in c.notes if n.startswith("profiled from")]
    assert len(notes) == 1 and notes[0].startswith("profiled from 6 of 9 requests"), notes


def test_profiles_of_validated_inputs_equal_profiles_of_the_frame_sent(
    store: heron.Client, data: Any
) -> None:
    X, _ = data
    server = _serve(store)
    try:
        with serve_in_thread(server) as url:
            _send(url, X, 30, 5)  # 150 rows, answered from validated arrays (no parsing)
    finally:
        server.close()
    from heron._profiles import DatasetProfile
    from heron._store import _tables as t

    services: Any = store.transport.services  # type: ignore[attr-defined]
    with services.metadata.read() as conn:
        rows = conn.execute(t.serving_profiles.select()).mappings().all()
    assert sum(r["requests"] for r in rows) == 30 and sum(r["rows"] for r in rows) == 150
    merged = functools.reduce(
        DatasetProfile.merge, [DatasetProfile.model_validate(r["profile"]) for r in rows]
    )
    reference = services.monitoring.get_monitor_reference("live")
    expected = DatasetProfile.from_frame(X.iloc[:150], reference=reference.profile)
    assert merged.rows == expected.rows and merged.dtypes == expected.dtypes
    for name, column in expected.columns.items():
        got = merged.columns[name]
        assert (got.count, got.counts, got.min, got.max) == (
            column.count, column.counts, column.min, column.max
        )  # fmt: skip
        assert got.mean == pytest.approx(column.mean)


def test_inputs_without_column_names_are_profiled_from_the_bodies(
    settings: Settings, data: Any
) -> None:
    X, y = data
    client = embedded_client(settings)
    try:
        client.log_dataset(X.assign(target=y), name="breast-cancer")
        # Fitted on an array and logged without an example: no signature names its input.
        client.log_model(LogisticRegression(max_iter=5000).fit(X.to_numpy(), y), "plain")
        client.create_endpoint("cancer", ["plain/1"])
        client.create_monitor("live", "breast-cancer", endpoint="cancer", window="hour")
        server = _serve(client)
        try:
            assert not server.routing.variants[0].frames_prepared  # type: ignore[union-attr]
            with serve_in_thread(server) as url:
                _send(url, X, 10, 3)
        finally:
            server.close()
        checks = client.run_monitor("live", until=datetime.now(UTC) + timedelta(hours=2))
        assert sum(c.rows for c in checks) == 30
        assert all(any("profiled from all" in n for n in c.notes) for c in checks)
    finally:
        client.close()


def test_without_a_monitor_nothing_is_profiled(settings: Settings, data: Any, model: Any):
    X, _ = data
    client = embedded_client(settings)
    try:
        client.log_model(model, "m", input_example=X.head(3))
        client.create_endpoint("cancer", ["m/1"])
        server = _serve(client)
        try:
            with serve_in_thread(server) as url:
                _send(url, X, 3, 2)
        finally:
            server.close()
        from heron._store import _tables as t

        services: Any = client.transport.services  # type: ignore[attr-defined]
        with services.metadata.read() as conn:
            assert conn.execute(t.serving_profiles.select()).first() is None
    finally:
        client.close()


def test_class_probabilities_are_logged_for_live_cbpe(
    store: heron.Client, data: Any, model: Any
) -> None:
    X, y = data
    server = _serve(store)
    ids: list[str] = []
    try:
        with serve_in_thread(server) as url, httpx.Client(base_url=url) as http:
            for i in range(30):
                rows = X.iloc[i * 5 : i * 5 + 5].to_dict(orient="records")
                ids.append(http.post("/predict", json={"instances": rows}).json()["request_id"])
    finally:
        server.close()
    feedback = [{"request_id": r, "label": y.iloc[i * 5 : i * 5 + 5].tolist()}
                for i, r in enumerate(ids)]  # fmt: skip
    assert store.log_feedback("cancer", feedback).accepted == 30

    checks = store.run_monitor("live", until=datetime.now(UTC) + timedelta(hours=2))
    assert sum(c.rows for c in checks) == 150
    estimated = [c.estimated_performance for c in checks]
    assert all(e is not None and e.estimated for e in estimated)
    assert sum(e.rows for e in estimated if e is not None) == 150
    stored = store.list_monitor_checks("live").items  # realized once the labels joined
    realized = [c.performance for c in stored]
    assert all(p is not None and "roc_auc" in p.metrics for p in realized)
    # The model is well calibrated on data like its training data: CBPE lands near the truth.
    for e, p in zip(estimated, realized, strict=True):
        assert e is not None and p is not None
        assert abs(e.metrics["accuracy"] - p.metrics["accuracy"]) < 0.1


@pytest.mark.parametrize("budget", [0, None], ids=["zero", "off"])
def test_no_probabilities_without_a_budget(
    store: heron.Client, data: Any, budget: float | None
) -> None:
    X, _ = data
    server = _serve(store, proba_rows_per_second=budget)
    try:
        with serve_in_thread(server) as url:
            _send(url, X, 5, 3)
    finally:
        server.close()
    checks = store.run_monitor("live", until=datetime.now(UTC) + timedelta(hours=2))
    assert sum(c.rows for c in checks) == 15
    assert all(c.estimated_performance is None for c in checks)


@pytest.mark.parametrize(
    ("predictions", "expected"),
    [
        ([np.array([0, 1]), np.array([1])], np.array([0, 1, 1])),
        ([np.array([0.5, 1.0]), np.array([2], dtype=np.int32)], np.array([0.5, 1.0, 2.0])),
        ([np.array(["a", "b"]), np.array(["c"])], np.array(["a", "b", "c"])),
        ([np.array([[0.1, 0.9], [0.3, 0.7]]), np.array([[0.5, 0.5]])], None),
        ([np.array([0, 1]), np.array(1)], None),
        ([np.array([0, 1]), np.array(["c"])], np.array(["0", "1", "c"])),  # labels by text
        ([np.array([0, 1]), [1]], None),
        ([np.array([0, 1, 2]), np.array([1])], None),
        ([np.array([0, 1]), np.array([{}], dtype=object)], None),
    ],
    ids=[
        "labels",
        "scores-of-two-types",
        "text",
        "class-scores",
        "a-scalar",
        "numbers-and-text-labels",
        "a-list",
        "rows-mismatch",
        "objects",
    ],
)
def test_predictions_of_a_batch_join_into_one_array_or_none(predictions, expected) -> None:
    from heron._serving._log import Entry
    from heron._serving._profiling import _prediction_array

    rows = [2, 1]
    entries = [
        Entry("r", 1, "m", 1, False, 0.0, 1.0, n, None, b"[]", predictions=p)
        for n, p in zip(rows, predictions, strict=True)
    ]
    joined = _prediction_array(entries)
    if expected is None:
        assert joined is None
    else:
        assert joined.dtype.kind == expected.dtype.kind and joined.tolist() == expected.tolist()


@pytest.mark.parametrize(
    "types",
    [["double", "double"], ["double", "float", "long", "integer"], ["integer"]],
    ids=["doubles", "every-width", "int32"],
)
def test_validated_arrays_are_profiled_as_the_frame_validation_makes(types: list[str]) -> None:
    # The flusher profiles validated arrays by column, typed as the signature says, without
    # the DataFrame: the same profiles as of that frame, for features and predictions.
    from heron._models import ColumnSpec, Signature
    from heron._profiles import DatasetProfile, RunningProfile
    from heron._serving._profiling import _prediction_column

    def profile(data: Any, reference: DatasetProfile) -> DatasetProfile | None:
        running = RunningProfile()
        running.add(data, reference)
        return running.profile()

    signature = Signature(inputs=[ColumnSpec(name=f"c{i}", type=t) for i, t in enumerate(types)])
    rng = np.random.default_rng(3)
    array = np.round(rng.normal(size=(50, len(types))) * 1e3, 1 if "long" not in types else 0)
    frame = signature._frame_from_array(array)
    columns = signature._columns_from_array(array)
    assert list(columns) == list(frame.columns)
    assert [c.dtype for c in columns.values()] == list(frame.dtypes)
    reference = DatasetProfile.from_frame(signature._frame_from_array(array[::-2]), bins=5)
    expected = DatasetProfile.from_frame(frame, reference=reference)
    assert profile(columns, reference).model_dump_json() == expected.model_dump_json()  # type: ignore[union-attr]
    for predictions in (rng.integers(0, 3, 50), rng.random(50), rng.random(50) > 0.5):
        series = pd.Series(predictions, name="prediction")
        ref = DatasetProfile.for_predictions(series[:20])
        expected = DatasetProfile.for_predictions(series, reference=ref)
        assert profile(_prediction_column(predictions), ref) == expected
        assert profile(_prediction_column(predictions.astype(str)), ref) == (
            DatasetProfile.for_predictions(series.astype(str), reference=ref)
        )


def test_serve_passes_the_row_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[ServeOptions] = []
    monkeypatch.setattr(run, "serve", lambda settings, options, **kw: seen.append(options))
    runner = CliRunner()
    args = ["serve", "ep", "--profile-rows-per-s", "0", "--proba-rows-per-s", "50"]
    assert runner.invoke(cli, args).exit_code == 0
    assert seen[-1].profile_rows_per_second is None  # 0: every request profiled
    assert seen[-1].proba_rows_per_second == 50
    assert runner.invoke(cli, ["serve", "ep"]).exit_code == 0
    assert (seen[-1].profile_rows_per_second, seen[-1].proba_rows_per_second) == (2_000, 200)
    bad = runner.invoke(cli, ["serve", "ep", "--profile-rows-per-s", "-1"])
    assert bad.exit_code == 2 and "--profile-rows-per-s" in bad.output
