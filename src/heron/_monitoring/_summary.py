"""From rows to window summaries: where the data is (the client, for batch checks) or in the
service (serving logs). Only profiles and figures leave this module, never rows.

A frame is cut into the monitor's windows: by its ``time_column`` into hours or days when
the monitor has one and the frame holds it, into chunks of ``size`` rows for count windows,
else it is one window. Per window: the feature profile against the reference, the model's
outputs and their profile against the reference outputs, realized performance where the
label column is present, CBPE where the model gives probabilities, and the domain-classifier
check when the monitor asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from heron._errors import HeronError, InvalidInput
from heron._monitoring._entities import (
    Monitor,
    MonitorReference,
    Performance,
    Task,
    WindowSpec,
    WindowSummary,
)
from heron._monitoring._performance import (
    estimated_performance,
    infer_task,
    realized_performance,
)
from heron._profiles import DatasetProfile

if TYPE_CHECKING:
    from heron._models import LoadedModel


@dataclass
class Outputs:
    """A model's answers on some rows: labels or values, and class probabilities if any."""

    predictions: np.ndarray
    proba: np.ndarray | None = None
    classes: list[Any] | None = None


def as_frame(data: Any) -> pd.DataFrame:
    """A DataFrame from a DataFrame, an Arrow table or a .parquet/.csv path."""
    from pathlib import Path

    from heron._dataset_io import read_table
    from heron._errors import NotFound

    if isinstance(data, str | Path):
        path = Path(data)
        if not path.is_file():
            raise NotFound(f"no file at {path}", field="data")
        try:
            data = read_table(path)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read {path.name}: {exc}", field="data") from None
    if not isinstance(data, pd.DataFrame) and hasattr(data, "to_pandas"):
        data = data.to_pandas()
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(
            f"data must be a DataFrame or a .parquet/.csv path, got {type(data).__name__}",
            field="data",
        )
    return data


# --- reference ------------------------------------------------------------------------------


def reference_outputs(
    frame: pd.DataFrame, model: LoadedModel, label_column: str | None, task: Task | None
) -> tuple[DatasetProfile | None, Performance | None, list[str]]:
    """The model's outputs on the reference data: their profile (the baseline of prediction
    drift) and the performance there (the baseline of performance)."""
    notes: list[str] = []
    features = frame.drop(columns=[label_column], errors="ignore") if label_column else frame
    outputs = predict(model, features, notes)
    if outputs is None:
        return None, None, notes
    profile = DatasetProfile.for_predictions(pd.Series(outputs.predictions, name="prediction"))
    performance = None
    if label_column and label_column in frame.columns:
        chosen = task or infer_task(outputs.predictions, outputs.proba is not None)
        performance = realized_performance(
            chosen, frame[label_column].to_numpy(), outputs.predictions, outputs.proba,
            outputs.classes,
        )  # fmt: skip
    return profile, performance, notes


# --- batch ----------------------------------------------------------------------------------


def summarize_frame(
    data: Any,
    monitor: Monitor,
    reference: MonitorReference,
    *,
    model: LoadedModel | None = None,
    model_name: str | None = None,
    model_version: int | None = None,
    reference_frame: pd.DataFrame | None = None,
    now: datetime | None = None,
) -> list[WindowSummary]:
    """Batch monitoring: one summary per window of ``data``."""
    frame = as_frame(data)
    summaries = []
    for start, end, rows in split_windows(frame, monitor, now or datetime.now(UTC)):
        notes: list[str] = []
        features = _features(rows, monitor)
        outputs = predict(model, features, notes) if model is not None else None
        labels = _labels(rows, monitor)
        summaries.append(
            window_summary(
                features, reference, monitor, outputs, labels,
                start=start, end=end, model=model_name, version=model_version,
                reference_frame=reference_frame, notes=notes,
            )
        )  # fmt: skip
    return summaries


def split_windows(
    frame: pd.DataFrame, monitor: Monitor, now: datetime
) -> Iterator[tuple[datetime, datetime, pd.DataFrame]]:
    window = monitor.window
    column = monitor.time_column
    if column and column in frame.columns and window.seconds and len(frame):
        times = _as_utc(frame[column], column)
        if times.isna().any():
            raise InvalidInput(
                f"time column {column!r} has {int(times.isna().sum())} missing values",
                field=column,
            )
        starts = times.dt.floor("h" if window.kind == "hour" else "D")
        for start, rows in frame.groupby(starts.to_numpy(), sort=True):
            begin = pd.Timestamp(start).tz_localize(UTC).to_pydatetime()
            yield begin, begin + timedelta(seconds=window.seconds), rows
        return
    if window.kind == "count" and len(frame) > window.size:
        for offset in range(0, len(frame), window.size):
            yield now, now, frame.iloc[offset : offset + window.size]
        return
    yield now, now, frame


def _as_utc(series: pd.Series, column: str) -> pd.Series:
    try:
        times = pd.to_datetime(series, utc=True)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"time column {column!r} does not hold times", field=column) from exc
    return times.dt.tz_convert(UTC).dt.tz_localize(None)


def _features(rows: pd.DataFrame, monitor: Monitor) -> pd.DataFrame:
    drop = [c for c in (monitor.label_column, monitor.time_column) if c]
    drop = [c for c in drop if c in rows.columns and c not in monitor.features]
    return rows.drop(columns=drop) if drop else rows


def _labels(rows: pd.DataFrame, monitor: Monitor) -> np.ndarray | None:
    column = monitor.label_column
    if column and column in rows.columns:
        return rows[column].to_numpy(dtype=object)
    return None


def predict(model: LoadedModel | None, features: pd.DataFrame, notes: list[str]) -> Outputs | None:
    """The model's outputs, or None with a note when the rows cannot be predicted (a missing
    column, values of the wrong type): monitoring still reports drift and quality then."""
    if model is None or len(features) == 0:
        return None
    try:
        predictions = np.asarray(model.predict(features))
    except HeronError as exc:
        notes.append(f"no predictions: {exc.message}")
        return None
    except (ValueError, TypeError) as exc:
        notes.append(f"no predictions: the model failed on this data ({exc})")
        return None
    proba = None
    if model.supports_proba:
        try:
            proba = np.asarray(model.predict_proba(features), dtype=np.float64)
        except (HeronError, ValueError, TypeError, AttributeError, NotImplementedError):
            proba = None
    return Outputs(predictions.reshape(len(features), -1)[:, 0], proba, _classes(model))


def _classes(model: LoadedModel) -> list[Any] | None:
    signature = model.signature
    if signature is not None:
        for output in signature.outputs:
            if output.classes:
                return list(output.classes)
    raw_classes = getattr(getattr(model, "raw", None), "classes_", None)
    return None if raw_classes is None else list(np.asarray(raw_classes).tolist())


# --- one window -----------------------------------------------------------------------------


def window_summary(
    features: pd.DataFrame,
    reference: MonitorReference,
    monitor: Monitor,
    outputs: Outputs | None,
    labels: np.ndarray | None,
    *,
    start: datetime,
    end: datetime,
    model: str | None,
    version: int | None,
    reference_frame: pd.DataFrame | None = None,
    notes: list[str] | None = None,
) -> WindowSummary:
    notes = list(notes or [])
    profile = DatasetProfile.from_frame(features, reference=reference.profile)
    predictions = performance = estimated = multivariate = None
    if outputs is not None:
        series = pd.Series(outputs.predictions, name="prediction")
        predictions = DatasetProfile.for_predictions(series, reference=reference.predictions)
        task = monitor.task or infer_task(outputs.predictions, outputs.proba is not None)
        if labels is not None:
            performance = realized_performance(
                task, labels, outputs.predictions, outputs.proba, outputs.classes
            )
        if task == "classification" and outputs.proba is not None:
            estimated = estimated_performance(outputs.predictions, outputs.proba, outputs.classes)
    elif labels is not None:
        notes.append("labels present but no predictions: performance not computed")
    if monitor.multivariate and reference_frame is not None:
        from heron._multivariate import domain_classifier_drift

        columns = [c for c in monitor.features if c in features.columns]
        multivariate = domain_classifier_drift(reference_frame, features, columns=columns or None)
    return WindowSummary(
        window_start=start,
        window_end=end,
        rows=len(features),
        model=model,
        version=version,
        profile=profile,
        predictions=predictions,
        performance=performance,
        estimated_performance=estimated,
        multivariate=multivariate,
        notes=notes,
    )


# --- serving logs ---------------------------------------------------------------------------


def log_outputs(column: pd.Series) -> Outputs:
    """Outputs as the prediction log keeps them: one value per row, or a list of class
    probabilities per row (then the prediction is the most likely column)."""
    values = column.to_list()
    if values and all(isinstance(v, list | tuple) for v in values):
        proba = np.asarray(values, dtype=np.float64)
        if proba.ndim == 2 and proba.shape[1] >= 2:
            return Outputs(proba.argmax(axis=1), proba, list(range(proba.shape[1])))
    return Outputs(np.asarray(values, dtype=object if _mixed(values) else None))


def _mixed(values: list[Any]) -> bool:
    return len({type(v) for v in values}) > 1


def window_bounds(window: WindowSpec, time: datetime) -> tuple[datetime, datetime]:
    """The time window holding ``time``."""
    seconds = window.seconds or 86400
    epoch = int(time.timestamp()) // seconds * seconds
    start = datetime.fromtimestamp(epoch, tz=UTC)
    return start, start + timedelta(seconds=seconds)
