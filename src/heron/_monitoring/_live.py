"""Live monitoring: window summaries from the prediction log the prediction servers write.

Time windows are checked once they have closed (``start + size <= until``); count windows
once they hold ``size`` input rows. The monitor's cursor remembers how far the log was read
(a time for time windows, a log row id for count windows), so each window is checked once.
Requests whose inputs the server did not sample count for performance only where a later
refresh reads them; they are left out of profiles. Labels come from feedback (joined by
request id); ``refresh_performance`` recomputes the realized figures of the live windows of
the ``LABEL_HORIZON`` before the newest one whose labels arrived after they were checked.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Connection, func, select, update

from heron._errors import HeronError
from heron._monitoring._entities import Monitor, MonitorReference, WindowSummary
from heron._monitoring._performance import (
    estimated_performance,
    infer_task,
    realized_performance,
)
from heron._monitoring._summary import Outputs, _features, log_outputs, window_summary
from heron._profiles import DatasetProfile
from heron._serving._profiling import reference_digest
from heron._store import _tables as t

if TYPE_CHECKING:
    from heron._monitoring._service import MonitoringService

MAX_LOG_ROWS = 200_000
LABEL_HORIZON = timedelta(days=7)


def live_windows(
    service: MonitoringService, monitor: Monitor, until: datetime
) -> tuple[list[WindowSummary], dict[str, int] | None]:
    """Summaries of the windows closed since the cursor, and the cursor after them."""
    from heron._monitoring._service import _reference

    with service.store.read() as conn:
        row = service._row(conn, monitor.name)
        reference = _reference(row)
        cursor = row["live_cursor"] or {}
        if monitor.window.kind == "count":
            return _count_windows(conn, monitor, reference, cursor.get("log_id", 0))
        return _time_windows(conn, monitor, reference, cursor.get("time"), until)


def _time_windows(
    conn: Connection,
    monitor: Monitor,
    reference: MonitorReference,
    cursor_ms: int | None,
    until: datetime,
) -> tuple[list[WindowSummary], dict[str, int] | None]:
    size_ms = (monitor.window.seconds or 86400) * 1000
    end_ms = int(until.timestamp() * 1000) // size_ms * size_ms
    log = t.prediction_log
    digest = reference_digest(reference)
    if cursor_ms is None:
        first = conn.execute(_filtered(select(log.c.time), monitor).order_by(log.c.time).limit(1))
        sp = t.serving_profiles
        first_profiled = conn.execute(
            _filtered(select(func.min(sp.c.window_start)), monitor, sp).where(
                sp.c.reference == digest
            )
        )
        times = [x for x in (first.scalar(), first_profiled.scalar()) if x is not None]
        if not times:
            return [], None
        cursor_ms = int(min(times).timestamp() * 1000) // size_ms * size_ms
    if end_ms <= cursor_ms:
        return [], {"time": cursor_ms}
    rows = _read(conn, monitor, _time_range(cursor_ms, end_ms))
    groups: dict[tuple[int, str, int], list[Any]] = defaultdict(list)
    for r in rows:
        start = int(r["time"].timestamp() * 1000) // size_ms * size_ms
        groups[(start, r["model"], r["version"])].append(r)
    profiled = _profiled(conn, monitor, digest, cursor_ms, end_ms, size_ms)
    summaries = []
    for key in sorted(set(groups) | set(profiled)):
        start, model, version = key
        begin = datetime.fromtimestamp(start / 1000, tz=UTC)
        end = begin + timedelta(milliseconds=size_ms)
        records = groups.get(key, [])
        if key in profiled:
            summaries.append(
                _profiled_summary(monitor, profiled[key], records, begin, end, model, version)
            )
        else:
            summaries.append(_summary(monitor, reference, records, begin, end, model, version))
    return summaries, {"time": end_ms}


def _profiled(
    conn: Connection, monitor: Monitor, digest: str, start_ms: int, end_ms: int, size_ms: int
) -> dict[tuple[int, str, int], dict[str, Any]]:
    """The serving profiles in the range, merged per window and version, with how many
    requests were profiled and how many were beyond the servers' budget. Rows of no profiled
    request (``rows`` 0: a minute all beyond the budget) add to the counts only; a window of
    such rows alone is left to the raw log."""
    sp = t.serving_profiles
    query = _filtered(select(sp), monitor, sp).where(
        sp.c.reference == digest, sp.c.window_start >= start_ms, sp.c.window_start < end_ms
    )
    merged: dict[tuple[int, str, int], dict[str, Any]] = {}
    counts: dict[tuple[int, str, int], list[int]] = defaultdict(lambda: [0, 0])
    for r in conn.execute(query.order_by(sp.c.id)).mappings():
        start = int(r["window_start"].timestamp() * 1000) // size_ms * size_ms
        key = (start, r["model"], r["version"])
        counts[key][0] += r["requests"]
        counts[key][1] += r["unprofiled"]
        if not r["rows"]:
            continue
        profile = DatasetProfile.model_validate(r["profile"])
        predictions = r["predictions"]
        out = None if predictions is None else DatasetProfile.model_validate(predictions)
        have = merged.get(key)
        if have is None:
            merged[key] = {"profile": profile, "predictions": out}
            continue
        have["profile"] = have["profile"].merge(profile)
        if out is not None:
            have["predictions"] = (
                out if have["predictions"] is None else have["predictions"].merge(out)
            )
    for key, window in merged.items():
        window["requests"], window["unprofiled"] = counts[key]
    return merged


def _profiled_summary(
    monitor: Monitor,
    stored: dict[str, Any],
    records: list[Any],
    start: datetime,
    end: datetime,
    model: str,
    version: int,
) -> WindowSummary:
    """A window from the profiles of its requests; performance from the raw log, which
    keeps every request's outputs (and feedback joins it)."""
    profile: DatasetProfile = stored["profile"]
    performance = estimated = None
    if records:
        performance = _realized(monitor, records)
        # CBPE over the requests whose probabilities were logged (a bounded share).
        answered = _answers([r for r in records if r["proba"] is not None] or records)
        task = monitor.task or infer_task(answered.predictions, answered.proba is not None)
        if task == "classification" and answered.proba is not None:
            estimated = estimated_performance(
                answered.predictions, answered.proba, answered.classes
            )
    return WindowSummary(
        window_start=start,
        window_end=end,
        rows=profile.rows,
        model=model,
        version=version,
        profile=profile,
        predictions=stored["predictions"],
        performance=performance,
        estimated_performance=estimated,
        notes=[_profiled_note(stored["requests"], stored["unprofiled"])],
    )


def _profiled_note(requests: int, unprofiled: int) -> str:
    if not unprofiled:
        return f"profiled from all {requests} requests"
    return (
        f"profiled from {requests} of {requests + unprofiled} requests (the rest were beyond "
        "the servers' profile row budget)"
    )


def _count_windows(
    conn: Connection, monitor: Monitor, reference: MonitorReference, after_id: int
) -> tuple[list[WindowSummary], dict[str, int] | None]:
    log = t.prediction_log
    rows = _read(conn, monitor, lambda q: q.where(log.c.id > after_id))
    chunks: list[list[Any]] = []
    current: list[Any] = []
    filled = 0
    for r in rows:
        current.append(r)
        filled += r["rows"]
        if filled >= monitor.window.size:
            chunks.append(current)
            current, filled = [], 0
    if not chunks:
        return [], None
    summaries = []
    for chunk in chunks:
        by_version: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for r in chunk:
            by_version[(r["model"], r["version"])].append(r)
        begin, end = chunk[0]["time"], chunk[-1]["time"]
        for (model, version), records in sorted(by_version.items()):
            summaries.append(_summary(monitor, reference, records, begin, end, model, version))
    return summaries, {"log_id": int(chunks[-1][-1]["id"])}


def _filtered(query: Any, monitor: Monitor, log: Any = t.prediction_log) -> Any:
    if monitor.endpoint is not None:
        return query.where(log.c.endpoint == monitor.endpoint)
    name, _, rest = (monitor.model or "").partition("/")
    if rest.isdigit():
        return query.where(log.c.model == name, log.c.version == int(rest))
    return query.where(log.c.model == (monitor.model or "").partition("@")[0])


def _time_range(start_ms: int, end_ms: int) -> Any:
    log = t.prediction_log
    return lambda q: q.where(log.c.time >= start_ms, log.c.time < end_ms)


def _read(conn: Connection, monitor: Monitor, where: Any) -> list[Any]:
    log, fb, pp = t.prediction_log, t.prediction_feedback, t.prediction_proba
    query = (
        select(
            log.c.id, log.c.model, log.c.version, log.c.time, log.c.rows, log.c.inputs,
            log.c.outputs, fb.c.label, fb.c.time.label("label_time"), pp.c.classes, pp.c.proba,
        )
        .outerjoin(fb, (fb.c.endpoint == log.c.endpoint) & (fb.c.request_id == log.c.request_id))
        .outerjoin(
            pp,
            (pp.c.endpoint == log.c.endpoint) & (pp.c.request_id == log.c.request_id)
            & (pp.c.model == log.c.model) & (pp.c.version == log.c.version),
        )
    )  # fmt: skip
    query = where(_filtered(query, monitor)).order_by(log.c.id).limit(MAX_LOG_ROWS)
    return list(conn.execute(query).mappings())


def _summary(
    monitor: Monitor,
    reference: MonitorReference,
    records: list[Any],
    start: datetime,
    end: datetime,
    model: str,
    version: int,
) -> WindowSummary:
    from heron._models import frame_from_payload

    frames, outputs, labels, kept = [], [], [], []
    unsampled = unreadable = 0
    for r in records:
        if r["inputs"] is None:
            unsampled += 1
            continue
        try:
            frame = frame_from_payload(orjson.loads(r["inputs"]))
        except (HeronError, ValueError, TypeError):
            unreadable += 1
            continue
        answers = orjson.loads(r["outputs"])
        if len(answers) != len(frame):
            unreadable += 1
            continue
        frames.append(frame)
        outputs.extend(answers)
        kept.append(r)
        labels.extend(_row_labels(r["label"], len(frame)))
    notes = []
    if unsampled:
        notes.append(f"{unsampled} requests without sampled inputs left out")
    if unreadable:
        notes.append(f"{unreadable} logged requests could not be read")
    features = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    features = _features(features, monitor)
    answered = _answers(kept) if outputs else None
    known = any(label is not None for label in labels)
    return window_summary(
        features, reference, monitor, answered,
        np.asarray(labels, dtype=object) if known else None,
        start=start, end=end, model=model, version=version, notes=notes,
    )  # fmt: skip


def _row_labels(label: Any, rows: int) -> list[Any]:
    if isinstance(label, list) and len(label) == rows:
        return label
    return [label] * rows


def refresh_performance(service: MonitoringService, conn: Connection, row: Any) -> int:
    """Recompute realized performance of recent live windows from the labels stored now;
    returns how many checks changed."""
    from heron._monitoring._service import _monitor_entity

    monitor = _monitor_entity(row)
    c = t.monitor_checks.c
    live = (c.monitor_id == row["id"]) & (c.source == "live")
    latest = conn.execute(select(func.max(c.window_end)).where(live)).scalar()
    if latest is None:
        return 0
    since = latest - LABEL_HORIZON  # of the newest live window: traffic may be replayed
    checks = conn.execute(
        select(
            t.monitor_checks.c.id, c.window_start, c.window_end, c.model, c.version, c.result
        ).where(c.monitor_id == row["id"], c.source == "live", c.window_end >= since)
    ).mappings()
    changed = 0
    log = t.prediction_log
    for check in list(checks):
        last = log.c.time < check["window_end"]
        if monitor.window.kind == "count":
            last = log.c.time <= check["window_end"]

        def where(q: Any, check: Any = check, last: Any = last) -> Any:
            return q.where(
                log.c.time >= check["window_start"], last,
                log.c.model == check["model"], log.c.version == check["version"],
            )  # fmt: skip

        performance = _realized(monitor, _read(conn, monitor, where))
        result = dict(check["result"])
        new = None if performance is None else performance.model_dump(mode="json")
        if new != result.get("performance"):
            result["performance"] = new
            conn.execute(update(t.monitor_checks).where(c.id == check["id"]).values(result=result))
            changed += 1
    return changed


def _answers(records: list[Any]) -> Outputs:
    """The logged outputs of ``records``, with class probabilities where every record has
    them (the prediction server logs them for a bounded number of rows per second)."""
    outputs = [a for r in records for a in orjson.loads(r["outputs"])]
    probas = [r.get("proba") for r in records]
    answered = log_outputs(pd.Series(outputs, dtype=object))
    if not records or any(p is None for p in probas) or answered.proba is not None:
        return answered
    proba = np.asarray([row for p in probas for row in p], dtype=np.float64)
    classes = records[0]["classes"]
    if proba.shape != (len(outputs), len(classes)) or any(r["classes"] != classes for r in records):
        return answered
    return Outputs(answered.predictions, proba, list(classes))


def _realized(monitor: Monitor, records: list[Any]) -> Any:
    labels: list[Any] = []
    for r in records:
        labels.extend(_row_labels(r["label"], len(orjson.loads(r["outputs"]))))
    if not any(label is not None for label in labels):
        return None
    answered: Outputs = _answers(records)
    task = monitor.task or infer_task(answered.predictions, answered.proba is not None)
    return realized_performance(
        task, np.asarray(labels, dtype=object), answered.predictions, answered.proba,
        answered.classes,
    )  # fmt: skip
