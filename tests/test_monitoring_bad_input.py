"""Bad input to monitors: each case gives a defined verdict or a clear error, never a crash,
and a refused call leaves nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import heron
from heron._monitoring._entities import WindowSummary
from heron._profiles import DatasetProfile


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    return load_breast_cancer(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def model(data: Any) -> LogisticRegression:
    X, y = data
    return LogisticRegression(max_iter=5000).fit(X, y)


@pytest.fixture
def monitored(client: heron.Client, data: Any, model: LogisticRegression) -> heron.Client:
    X, y = data
    client.log_dataset(X.assign(target=y), name="breast-cancer")
    mv = client.log_model(model, name="cancer-clf", input_example=X.head(3))
    client.set_alias("cancer-clf", "champion", mv.version)
    client.create_monitor("m", "breast-cancer", model="cancer-clf@champion")
    return client


def _empty(X: pd.DataFrame) -> pd.DataFrame:
    return X.iloc[:0]


def _all_null(X: pd.DataFrame) -> pd.DataFrame:
    return X.assign(**{"mean radius": np.nan})


def _single_value(X: pd.DataFrame) -> pd.DataFrame:
    return X.assign(**{"mean radius": 15.0})


def _non_finite(X: pd.DataFrame) -> pd.DataFrame:
    out = X.copy()
    out.loc[out.index[:100], "mean radius"] = np.inf
    out.loc[out.index[100:150], "mean texture"] = np.nan
    return out


def _missing_column(X: pd.DataFrame) -> pd.DataFrame:
    return X.drop(columns=["mean radius"])


def _strings_in_numbers(X: pd.DataFrame) -> pd.DataFrame:
    return X.assign(**{"mean radius": ["abc"] * len(X)})


def _extra_column(X: pd.DataFrame) -> pd.DataFrame:
    return X.assign(surprise=1)


def _one_row(X: pd.DataFrame) -> pd.DataFrame:
    return X.head(1)


# (case, make current data, expected failing/warning checks, expected skipped columns)
CASES = [
    ("empty-window", _empty, {("rows", None)}, {"mean radius": "no values in the current data"}),
    (
        "all-null-column",
        _all_null,
        {("missing_rate", "mean radius")},
        {"mean radius": "no values in the current data"},
    ),
    ("single-value", _single_value, set(), {}),
    (
        "nan-and-inf",
        _non_finite,
        {("non_finite", "mean radius"), ("missing_rate", "mean texture")},
        {},
    ),
    (
        "missing-column",
        _missing_column,
        {("column_removed", "mean radius")},
        {"mean radius": "missing from the current data"},
    ),
    ("mismatched-type", _strings_in_numbers, {("type_mismatch", "mean radius")}, {}),
    (
        "extra-column",
        _extra_column,
        {("column_added", "surprise")},
        {"surprise": "not in the reference"},
    ),
    ("one-row", _one_row, set(), {}),
]


@pytest.mark.parametrize(
    ("make", "flagged", "skipped"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_current_data_gets_a_verdict(
    monitored: heron.Client, data: Any, make: Any, flagged: set[Any], skipped: dict[str, str]
) -> None:
    X, _ = data
    outcome = monitored.check_monitor("m", make(X))
    found = {(q.check, q.column) for q in outcome.quality.checks if q.verdict != "pass"}
    assert flagged <= found
    for column, reason in skipped.items():
        assert outcome.skipped[column] == reason
    assert all(np.isfinite(c.statistic) for c in outcome.columns)
    if make is _single_value:  # the whole distribution collapsed onto one value
        assert outcome.drifted_names() == ["mean radius"]
    assert 0.0 <= outcome.drift_share <= 1.0
    stored = monitored.list_monitor_checks("m").items
    assert len(stored) == 1 and stored[0].rows == len(make(X))


def test_unpredictable_rows_still_get_drift_and_quality(monitored: heron.Client, data: Any):
    X, _ = data
    outcome = monitored.check_monitor("m", _missing_column(X))
    assert outcome.performance is None and outcome.prediction_drift is None
    assert any(
        note.startswith("no predictions:") and "mean radius" in note for note in outcome.notes
    )


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (42, heron.InvalidInput),
        ("no-such-file.parquet", heron.NotFound),
        ([{"a": 1}], heron.InvalidInput),
    ],
    ids=["a-number", "missing-file", "a-list"],
)
def test_check_refuses_what_is_not_data(monitored: heron.Client, value: Any, error: type) -> None:
    with pytest.raises(error):
        monitored.check_monitor("m", value)
    assert monitored.list_monitor_checks("m").items == []


def test_check_refuses_unreadable_files(monitored: heron.Client, tmp_path: Path) -> None:
    text = tmp_path / "data.txt"
    text.write_text("hello")
    with pytest.raises(heron.InvalidInput, match="parquet"):
        monitored.check_monitor("m", text)


def test_check_of_an_unknown_monitor(monitored: heron.Client, data: Any) -> None:
    with pytest.raises(heron.NotFound, match="monitor 'nope'"):
        monitored.check_monitor("nope", data[0])


def _summary(profile: DatasetProfile, rows: int | None = None) -> WindowSummary:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return WindowSummary(
        window_start=now, window_end=now, rows=profile.rows if rows is None else rows,
        profile=profile,
    )  # fmt: skip


def test_summaries_must_be_built_against_the_reference(monitored: heron.Client, data: Any):
    X, _ = data
    own = DatasetProfile.from_frame(X.head(50))  # its own bin edges, not the reference's
    with pytest.raises(heron.InvalidInput, match="not built against this reference"):
        monitored._call("record_monitor_check", name="m", windows=[_summary(own)])
    reference = monitored.get_monitor_reference("m").profile
    good = DatasetProfile.from_frame(X.head(50), reference=reference)
    with pytest.raises(heron.InvalidInput, match="rows"):
        monitored._call("record_monitor_check", name="m", windows=[_summary(good, rows=7)])
    with pytest.raises(heron.InvalidInput, match="no windows"):
        monitored._call("record_monitor_check", name="m", windows=[])
    with pytest.raises(heron.InvalidInput, match="source"):
        monitored._call("record_monitor_check", name="m", windows=[_summary(good)], source="x")
    assert monitored.list_monitor_checks("m").items == []  # nothing half-stored


CREATE_CASES = [
    ("unknown-dataset", {"reference": "nope"}, heron.NotFound),
    ("unknown-dataset-version", {"reference": "breast-cancer/9"}, heron.NotFound),
    ("malformed-reference", {"reference": "a/b/c"}, heron.InvalidInput),
    ("model-and-endpoint", {"model": "cancer-clf@champion", "endpoint": "e"}, heron.InvalidInput),
    ("unknown-model", {"model": "nope@champion"}, heron.NotFound),
    ("unknown-alias", {"model": "cancer-clf@nope"}, heron.NotFound),
    ("malformed-model", {"model": "cancer-clf"}, heron.InvalidInput),
    ("unknown-endpoint", {"endpoint": "nope"}, heron.NotFound),
    ("unknown-label", {"label_column": "nope"}, heron.InvalidInput),
    ("window-week", {"window": "week"}, heron.InvalidInput),
    ("window-zero", {"window": "0"}, heron.InvalidInput),
    ("unknown-test", {"drift": {"columns": {"mean radius": {"test": "nope"}}}}, heron.InvalidInput),
    (
        "test-of-wrong-kind",
        {"drift": {"columns": {"mean radius": {"test": "chisquare"}}}},
        heron.InvalidInput,
    ),
    ("unknown-column", {"drift": {"columns": {"nope": {"skip": True}}}}, heron.InvalidInput),
    ("unknown-setting", {"drift": {"colums": {}}}, heron.InvalidInput),
    ("bad-share", {"drift": {"drift_share": 2}}, heron.InvalidInput),
    ("empty-name", {"name": ""}, heron.InvalidInput),
]


@pytest.mark.parametrize(
    ("kwargs", "error"), [c[1:] for c in CREATE_CASES], ids=[c[0] for c in CREATE_CASES]
)
def test_create_refuses_bad_settings(
    monitored: heron.Client, kwargs: dict[str, Any], error: type
) -> None:
    args = {"name": "new", "reference": "breast-cancer", "model": "cancer-clf@champion", **kwargs}
    if "endpoint" in kwargs and "model" not in kwargs:
        args.pop("model")
    name, reference = args.pop("name"), args.pop("reference")
    with pytest.raises(error):
        monitored.create_monitor(name, reference, **args)
    assert [m.name for m in monitored.list_monitors().items] == ["m"]
    events = monitored.list_audit_events(object_type="monitor").items
    assert [e.object_id for e in events] == ["m"]


def test_names_are_unique_and_updates_are_checked(monitored: heron.Client) -> None:
    with pytest.raises(heron.AlreadyExists):
        monitored.create_monitor("m", "breast-cancer")
    with pytest.raises(heron.InvalidInput):
        monitored.update_monitor("m", window="fortnight")
    with pytest.raises(heron.NotFound):
        monitored.update_monitor("m", reference_check=12345)
    with pytest.raises(heron.NotFound):
        monitored.update_monitor("nope", description="x")
    assert str(monitored.get_monitor("m").window) == "day"
