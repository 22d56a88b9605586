"""Model performance on a window: realized from labels, estimated from confidence (CBPE).

Realized, on the rows that have a label:

- classification: accuracy, precision, recall, F1 (binary: of the positive class, the
  second of the model's classes; more classes: macro averages), ROC AUC and log loss
  (both need class probabilities);
- regression: MAE, RMSE, R².

Estimated before labels come (confidence-based performance estimation, as NannyML's CBPE):
a calibrated classifier that says 0.8 is right 80% of the time, so each row contributes its
probabilities to an *expected* confusion matrix, from which accuracy, precision, recall and
F1 follow; ROC AUC comes from the expected true and false positive rates over thresholds.
The estimate is only as good as the model's calibration on the current data, which is why
realized figures are shown beside it once labels arrive.

A figure that cannot be computed (one class only, fewer than two rows, no probabilities) is
``None`` with a note saying why, never NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from heron._monitoring._entities import Performance, Task

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def infer_task(predictions: Any, has_proba: bool) -> Task:
    """Classification when there are probabilities or the outputs are labels (whole numbers,
    text, booleans); regression when they are fractional numbers."""
    if has_proba:
        return "classification"
    values = np.asarray(predictions)
    if values.dtype.kind == "f":
        finite = values[np.isfinite(values)]
        if finite.size and not np.all(finite == np.round(finite)):
            return "regression"
    return "classification"


def realized_performance(
    task: Task,
    labels: Any,
    predictions: Any,
    proba: np.ndarray | None = None,
    classes: list[Any] | None = None,
) -> Performance | None:
    """Figures on the rows with a label; None when no row has one."""
    y_true = np.asarray(labels, dtype=object)
    known = np.array([not _missing(v) for v in y_true], dtype=bool)
    if not known.any():
        return None
    y_pred = np.asarray(predictions, dtype=object)[known]
    y_true = y_true[known]
    if task == "regression":
        return _regression(y_true, y_pred)
    return _classification(y_true, y_pred, None if proba is None else proba[known], classes)


def estimated_performance(
    predictions: Any, proba: np.ndarray, classes: list[Any] | None
) -> Performance:
    """CBPE: expected accuracy, precision, recall, F1 and ROC AUC from probabilities."""
    proba = np.asarray(proba, dtype=np.float64)
    notes: list[str] = []
    if proba.ndim == 1:
        proba = np.column_stack([1 - proba, proba])
    rows = len(proba)
    if rows == 0:
        return Performance(task="classification", rows=0, estimated=True, notes=["no rows"])
    proba = _normalized(proba)
    n_classes = proba.shape[1]
    classes = list(classes) if classes is not None and len(classes) == n_classes else None
    chosen = _chosen_columns(predictions, proba, classes)
    confidence = proba[np.arange(rows), chosen]
    metrics: dict[str, float | None] = {"accuracy": float(confidence.mean())}
    if n_classes == 2:
        p = proba[:, 1]
        said_positive = chosen == 1
        tp = float(p[said_positive].sum())
        fp = float((1 - p)[said_positive].sum())
        fn = float(p[~said_positive].sum())
        metrics.update(_prf(tp, fp, fn))
        metrics["roc_auc"] = _expected_auc(p)
    else:
        per_class = []
        for k in range(n_classes):
            p = proba[:, k]
            said = chosen == k
            per_class.append(
                _prf(float(p[said].sum()), float((1 - p)[said].sum()), float(p[~said].sum()))
            )
        for name in ("precision", "recall", "f1"):
            values = [m[name] for m in per_class if m[name] is not None]
            metrics[name] = float(np.mean(values)) if values else None
        aucs = [_expected_auc(proba[:, k]) for k in range(n_classes)]
        known = [a for a in aucs if a is not None]
        metrics["roc_auc"] = float(np.mean(known)) if known else None
    notes.append("estimated from the model's confidence; assumes calibrated probabilities")
    return Performance(
        task="classification", rows=rows, metrics=metrics, estimated=True, notes=notes
    )


# --- realized ------------------------------------------------------------------------------


def _classification(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: list[Any] | None
) -> Performance:
    from sklearn import metrics as skm

    notes: list[str] = []
    y_true, y_pred = _same_kind(y_true, y_pred)
    labels = _class_list(classes, y_true, y_pred)
    binary = len(labels) == 2
    average = "binary" if binary else "macro"
    kwargs: dict[str, Any] = {"average": average, "zero_division": 0}
    if binary:
        kwargs["pos_label"] = labels[1]
    else:
        kwargs["labels"] = labels
    values: dict[str, float | None] = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, **kwargs)),
        "recall": float(skm.recall_score(y_true, y_pred, **kwargs)),
        "f1": float(skm.f1_score(y_true, y_pred, **kwargs)),
        "roc_auc": None,
        "log_loss": None,
    }
    if proba is None:
        notes.append("ROC AUC and log loss need class probabilities")
    else:
        values.update(_probability_metrics(y_true, proba, labels, notes))
    return Performance(task="classification", rows=len(y_true), metrics=values, notes=notes)


def _probability_metrics(
    y_true: np.ndarray, proba: np.ndarray, labels: list[Any], notes: list[str]
) -> dict[str, float | None]:
    from sklearn import metrics as skm

    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim == 1:
        proba = np.column_stack([1 - proba, proba])
    if proba.shape[1] != len(labels):
        notes.append(f"{proba.shape[1]} probability columns for {len(labels)} classes")
        return {}
    proba = _normalized(proba)
    out: dict[str, float | None] = {}
    present = set(y_true.tolist())
    if len(present) < 2:
        notes.append("ROC AUC needs labels of at least two classes")
    else:
        try:
            score = proba[:, 1] if len(labels) == 2 else proba
            multi = {} if len(labels) == 2 else {"multi_class": "ovr", "labels": labels}
            out["roc_auc"] = float(skm.roc_auc_score(y_true, score, **multi))
        except ValueError as exc:
            notes.append(f"ROC AUC: {exc}")
    if not present <= set(labels):
        notes.append("log loss: labels the model does not know")
    else:
        out["log_loss"] = float(skm.log_loss(y_true, proba, labels=labels))
    return out


def _regression(y_true: np.ndarray, y_pred: np.ndarray) -> Performance:
    notes: list[str] = []
    try:
        truth = y_true.astype(np.float64)
        guess = y_pred.astype(np.float64)
    except (TypeError, ValueError):
        return Performance(
            task="regression", rows=len(y_true), notes=["labels or predictions are not numbers"]
        )
    finite = np.isfinite(truth) & np.isfinite(guess)
    if not finite.all():
        notes.append(f"{int((~finite).sum())} rows with NaN or inf left out")
        truth, guess = truth[finite], guess[finite]
    n = len(truth)
    if n == 0:
        return Performance(task="regression", rows=0, notes=[*notes, "no finite rows"])
    error = guess - truth
    values: dict[str, float | None] = {
        "mae": float(np.abs(error).mean()),
        "rmse": float(math.sqrt(float(np.square(error).mean()))),
        "r2": None,
    }
    spread = float(np.square(truth - truth.mean()).sum())
    if n < 2 or spread == 0:
        notes.append("R² needs at least two different labels")
    else:
        values["r2"] = 1 - float(np.square(error).sum()) / spread
    return Performance(task="regression", rows=n, metrics=values, notes=notes)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN
    except (TypeError, ValueError):
        return False


def _same_kind(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels from JSON or Parquet and predictions from the model may differ in type (1 vs
    1.0 vs "1"): compare as numbers when both sides are numbers, else as text."""
    try:
        a, b = y_true.astype(np.float64), y_pred.astype(np.float64)
        return a, b
    except (TypeError, ValueError):
        return y_true.astype(str), y_pred.astype(str)


def _class_list(classes: list[Any] | None, y_true: np.ndarray, y_pred: np.ndarray) -> list[Any]:
    if classes is not None:
        try:
            if y_true.dtype.kind == "f":
                return [float(c) for c in classes]
            return [str(c) for c in classes]
        except (TypeError, ValueError):
            pass
    return sorted(set(y_true.tolist()) | set(y_pred.tolist()), key=str)


# --- estimated -----------------------------------------------------------------------------


def _normalized(proba: np.ndarray) -> np.ndarray:
    proba = np.clip(np.nan_to_num(proba, nan=0.0), 0.0, 1.0)
    total = proba.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    return proba / total


def _chosen_columns(predictions: Any, proba: np.ndarray, classes: list[Any] | None) -> np.ndarray:
    """Which probability column each prediction is (the argmax when labels do not map)."""
    argmax = proba.argmax(axis=1)
    if predictions is None or classes is None:
        return argmax
    lookup = {str(c): i for i, c in enumerate(classes)}
    lookup.update({str(float(c)): i for i, c in enumerate(classes) if _is_number(c)})
    chosen = np.array([lookup.get(str(p), -1) for p in np.asarray(predictions)], dtype=np.int64)
    return np.where(chosen < 0, argmax, chosen)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _prf(tp: float, fp: float, fn: float) -> dict[str, float | None]:
    precision = tp / (tp + fp) if tp + fp > 0 else None
    recall = tp / (tp + fn) if tp + fn > 0 else None
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _expected_auc(p: np.ndarray) -> float | None:
    """AUC of the expected ROC curve: each row is positive with probability p."""
    positives, negatives = float(p.sum()), float((1 - p).sum())
    if positives <= 0 or negatives <= 0:
        return None
    order = np.argsort(-p, kind="stable")
    ranked = p[order]
    ends = np.r_[np.flatnonzero(np.diff(ranked) != 0), len(ranked) - 1]  # tied scores step together
    tpr = np.r_[0.0, np.cumsum(ranked)[ends] / positives]
    fpr = np.r_[0.0, np.cumsum(1 - ranked)[ends] / negatives]
    return float(np.trapezoid(tpr, fpr))
