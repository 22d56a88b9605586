"""The monitoring service: monitors, their checks per window, and live checks from serving logs.

    monitor "cancer-batch"  (model cancer-clf@champion, reference breast-cancer/1, by day)
    ├── reference          feature profile of the dataset version, the model's outputs on it
    └── checks             one per window (and model version): drift per column, drift share,
                           data quality, prediction drift, performance realized and estimated

Batch checks arrive as window summaries (profiles and figures built where the data is:
``Client.check_monitor``); live checks are built here from the prediction log
(``run_monitor``). Both are evaluated by the same code against the stored reference.
Creating, changing and deleting a monitor are audited; check results are data, like metrics.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, delete, func, insert, select, update

from heron._drift import DEFAULT_DRIFT_TESTS, DriftConfig, drift_report
from heron._entities import Page
from heron._errors import InvalidInput, NotFound
from heron._monitoring._entities import (
    CheckOutcome,
    CheckResult,
    Monitor,
    MonitorCheck,
    MonitorReference,
    Performance,
    ReferenceInfo,
    Task,
    WindowSpec,
    WindowSummary,
)
from heron._monitoring._operations import OperationsMixin
from heron._names import check_name
from heron._profiles import DatasetProfile, NumericProfile
from heron._quality import QualityConfig, quality_report
from heron._services import Service, check_limit, next_token, page_offset
from heron._store import _tables as t
from heron._store._sql import insert_unique

_DATASET_REF = re.compile(r"^(?P<name>[^/@:]+)(?:/(?P<version>\d+))?$")
_MODEL_REF = re.compile(r"^(?P<model>[^/@:]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@:]+))$")
_LABEL_NAMES = ("target", "label", "y", "class")
MAX_WINDOWS = 1000


class MonitoringService(OperationsMixin, Service):
    # --- monitors -----------------------------------------------------------------------

    def create_monitor(
        self,
        name: str,
        reference: str,
        model: str | None = None,
        endpoint: str | None = None,
        window: WindowSpec | str = "day",
        time_column: str | None = None,
        label_column: str | None = None,
        task: Task | None = None,
        drift: DriftConfig | None = None,
        quality: QualityConfig | None = None,
        multivariate: bool = False,
        description: str = "",
        reference_predictions: DatasetProfile | None = None,
        reference_performance: Performance | None = None,
    ) -> Monitor:
        """A monitor of ``model`` (NAME@ALIAS, NAME/VERSION) or ``endpoint`` against a dataset
        version (``reference``: NAME or NAME/VERSION), over windows by hour, day or count."""
        check_name(name)
        if model and endpoint:
            raise InvalidInput("a monitor watches a model or an endpoint, not both", field="model")
        window = _window(window)
        drift, quality = (
            _parse(DriftConfig, drift, "drift"),
            _parse(QualityConfig, quality, "quality"),
        )
        preds = _parse(DatasetProfile, reference_predictions, "reference_predictions", None)
        perf = _parse(Performance, reference_performance, "reference_performance", None)
        info, profile = self._dataset_reference(reference)
        inputs = self._model_inputs(model, endpoint)
        label_column = label_column or _guess_label(profile, inputs)
        if label_column is not None and label_column not in profile.dtypes:
            raise InvalidInput(
                f"label column {label_column!r} is not in the reference", field="label_column"
            )
        features = [c for c in profile.columns if c not in (label_column, time_column)]
        _check_drift_config(drift, profile, features)
        spec = {
            "description": description,
            "model": model,
            "endpoint": endpoint,
            "reference": info.model_dump(mode="json"),
            "window": window.model_dump(mode="json"),
            "time_column": time_column,
            "label_column": label_column,
            "task": task,
            "drift": drift.model_dump(mode="json"),
            "quality": quality.model_dump(mode="json"),
            "multivariate": bool(multivariate),
            "features": features,
        }
        stamp = t.now()
        with self.store.write() as conn:
            insert_unique(
                conn,
                insert(t.monitors).values(
                    name=name,
                    spec=spec,
                    reference_profile=_features_only(profile, features).model_dump(mode="json"),
                    reference_predictions=None if preds is None else preds.model_dump(mode="json"),
                    reference_performance=None if perf is None else perf.model_dump(mode="json"),
                    created_at=stamp,
                    created_by=self.caller.actor,
                    updated_at=stamp,
                ),
                f"monitor {name!r}",
            )
            self.record(conn, "create_monitor", "monitor", name, after=spec)
            return self._monitor(conn, name)

    def get_monitor(self, name: str) -> Monitor:
        with self.store.read() as conn:
            return self._monitor(conn, name)

    def list_monitors(self, max_results: int = 100, page_token: str | None = None) -> Page[Monitor]:
        limit, offset = check_limit(max_results), page_offset(page_token)
        with self.store.read() as conn:
            rows = conn.execute(
                select(t.monitors).order_by(t.monitors.c.name).offset(offset).limit(limit)
            ).mappings()
            items = [_monitor_entity(row) for row in rows]
        return Page(items=items, next_page_token=next_token(offset, len(items), limit))

    def update_monitor(
        self,
        name: str,
        description: str | None = None,
        drift: DriftConfig | None = None,
        quality: QualityConfig | None = None,
        window: WindowSpec | str | None = None,
        multivariate: bool | None = None,
        reference_check: int | None = None,
    ) -> Monitor:
        """Change settings; ``reference_check`` re-baselines on an earlier window's profile."""
        with self.store.write() as conn:
            row = self._row(conn, name)
            spec = dict(row["spec"])
            values: dict[str, Any] = {}
            if description is not None:
                spec["description"] = description
            if window is not None:
                spec["window"] = _window(window).model_dump(mode="json")
            if multivariate is not None:
                spec["multivariate"] = bool(multivariate)
            if quality is not None:
                spec["quality"] = _parse(QualityConfig, quality, "quality").model_dump(mode="json")
            profile = DatasetProfile.model_validate(row["reference_profile"])
            if reference_check is not None:
                profile, predictions = self._window_reference(conn, row["id"], reference_check)
                spec["reference"] = ReferenceInfo(
                    kind="window", check_id=reference_check, rows=profile.rows
                ).model_dump(mode="json")
                values.update(
                    reference_profile=profile.model_dump(mode="json"),
                    reference_predictions=predictions,
                )
            if drift is not None:
                config = _parse(DriftConfig, drift, "drift")
                _check_drift_config(config, profile, spec["features"])
                spec["drift"] = config.model_dump(mode="json")
            conn.execute(
                update(t.monitors)
                .where(t.monitors.c.id == row["id"])
                .values(spec=spec, updated_at=t.now(), **values)
            )
            self.record(conn, "update_monitor", "monitor", name, before=row["spec"], after=spec)
            return self._monitor(conn, name)

    def delete_monitor(self, name: str) -> None:
        """Delete a monitor and its stored checks."""
        with self.store.write() as conn:
            row = self._row(conn, name)
            conn.execute(delete(t.monitor_checks).where(t.monitor_checks.c.monitor_id == row["id"]))
            conn.execute(delete(t.monitors).where(t.monitors.c.id == row["id"]))
            self.record(conn, "delete_monitor", "monitor", name, before=row["spec"])

    def get_monitor_reference(self, name: str) -> MonitorReference:
        with self.store.read() as conn:
            return _reference(self._row(conn, name))

    # --- checks -------------------------------------------------------------------------

    def record_monitor_check(
        self, name: str, windows: list[WindowSummary], source: str = "batch"
    ) -> CheckOutcome:
        """Evaluate window summaries against the monitor's reference and store each result;
        the outcome covers all windows together (their profiles merged)."""
        if source not in ("batch", "live"):
            raise InvalidInput("source is 'batch' or 'live'", field="source")
        summaries = [_parse(WindowSummary, w, "windows") for w in windows]
        if not summaries:
            raise InvalidInput("no windows to check", field="windows")
        if len(summaries) > MAX_WINDOWS:
            raise InvalidInput(f"at most {MAX_WINDOWS} windows at once", field="windows")
        with self.store.write() as conn:
            row = self._row(conn, name)
            monitor, reference = _monitor_entity(row), _reference(row)
            results = [evaluate(monitor, reference, s, source) for s in summaries]  # type: ignore[arg-type]
            stored = [
                self._store_check(conn, row["id"], r, s)
                for r, s in zip(results, summaries, strict=True)
            ]
        overall = _overall(monitor, reference, summaries, results, source)
        return CheckOutcome(**overall.model_dump(), windows=stored)

    def list_monitor_checks(
        self,
        name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        model: str | None = None,
        version: int | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[MonitorCheck]:
        """Stored window results, oldest window first (the history a chart draws)."""
        limit, offset = check_limit(max_results), page_offset(page_token)
        c = t.monitor_checks.c
        with self.store.read() as conn:
            monitor_id = self._row(conn, name)["id"]
            query = select(t.monitor_checks).where(c.monitor_id == monitor_id)
            for column, value in ((c.model, model), (c.version, version)):
                if value is not None:
                    query = query.where(column == value)
            if start is not None:
                query = query.where(c.window_start >= start)
            if end is not None:
                query = query.where(c.window_start < end)
            query = query.order_by(c.window_start, c.id).offset(offset).limit(limit)
            items = [_check_entity(r) for r in conn.execute(query).mappings()]
        return Page(items=items, next_page_token=next_token(offset, len(items), limit))

    def get_monitor_check(self, name: str, check_id: int) -> MonitorCheck:
        """One stored window result, with its feature profile."""
        c = t.monitor_checks.c
        with self.store.read() as conn:
            monitor_id = self._row(conn, name)["id"]
            row = (
                conn.execute(
                    select(t.monitor_checks).where(c.monitor_id == monitor_id, c.id == check_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"monitor {name!r} has no check {check_id}", field="check_id")
        return _check_entity(row, with_profile=True)

    # --- live traffic ---------------------------------------------------------------------

    def run_monitor(self, name: str, until: datetime | None = None) -> list[MonitorCheck]:
        """Check the windows of live traffic closed since the last run (from the prediction
        log), one result per window and model version; then refresh realized performance of
        earlier live windows whose labels arrived since."""
        from heron._monitoring._live import live_windows, refresh_performance

        monitor = self.get_monitor(name)
        if monitor.model is None and monitor.endpoint is None:
            raise InvalidInput(
                f"monitor {name!r} watches no model or endpoint: check it with data instead",
                field="name",
            )
        summaries, cursor = live_windows(self, monitor, until or t.now())
        stored: list[MonitorCheck] = []
        if summaries:
            stored = self.record_monitor_check(name, summaries, source="live").windows
        with self.store.write() as conn:
            row = self._row(conn, name)
            if cursor is not None:
                conn.execute(
                    update(t.monitors)
                    .where(t.monitors.c.id == row["id"])
                    .values(live_cursor=cursor)
                )
            refresh_performance(self, conn, row)
        return stored

    # --- helpers ------------------------------------------------------------------------

    def _row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(t.monitors).where(t.monitors.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"monitor {name!r} does not exist", field="name")
        return row

    def _monitor(self, conn: Connection, name: str) -> Monitor:
        return _monitor_entity(self._row(conn, name))

    def _dataset_reference(self, reference: str) -> tuple[ReferenceInfo, DatasetProfile]:
        match = _DATASET_REF.match(reference.strip()) if isinstance(reference, str) else None
        if match is None:
            raise InvalidInput(
                f"{reference!r} is not a dataset reference (NAME or NAME/VERSION)",
                field="reference",
            )
        datasets = self.services.datasets
        version = match["version"]
        if version is None:
            latest = datasets.get_dataset(match["name"]).latest_version
            if latest is None:
                raise NotFound(f"dataset {match['name']!r} has no versions", field="reference")
            version = latest
        dv = datasets.get_dataset_version(match["name"], int(version))
        if not dv.profile:
            raise InvalidInput(
                f"dataset {dv.name!r} version {dv.version} has no profile", field="reference"
            )
        profile = DatasetProfile.model_validate(dv.profile)
        info = ReferenceInfo(kind="dataset", dataset=dv.name, version=dv.version, rows=profile.rows)
        return info, profile

    def _model_inputs(self, model: str | None, endpoint: str | None) -> list[str] | None:
        """The model's input columns (from its signature), to tell features from the label."""
        signature: dict[str, Any] | None = None
        if model is not None:
            signature = self._model_version(model).signature
        elif endpoint is not None:
            self.services.deployments.get_endpoint(endpoint)
            try:
                targets = self.services.deployments.resolve_endpoint(endpoint).targets
            except (NotFound, InvalidInput):
                targets = []
            signature = targets[0].signature if targets else None
        if not signature:
            return None
        return [c["name"] for c in signature.get("inputs", []) if "name" in c]

    def _model_version(self, model: str) -> Any:
        match = _MODEL_REF.match(model.strip())
        if match is None:
            raise InvalidInput(
                f"{model!r} is not a model reference (NAME@ALIAS or NAME/VERSION)", field="model"
            )
        registry = self.services.registry
        if match["alias"]:
            return registry.get_model_version_by_alias(match["model"], match["alias"])
        return registry.get_model_version(match["model"], int(match["version"]))

    def _window_reference(
        self, conn: Connection, monitor_id: int, check_id: int
    ) -> tuple[DatasetProfile, Any]:
        c = t.monitor_checks.c
        row = (
            conn.execute(
                select(c.profile, c.prediction_profile).where(
                    c.monitor_id == monitor_id, c.id == check_id
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no check {check_id} of this monitor", field="reference_check")
        profile = DatasetProfile.model_validate(row["profile"])
        if profile.rows == 0:
            raise InvalidInput("an empty window cannot be a reference", field="reference_check")
        return profile, row["prediction_profile"]

    def _store_check(
        self, conn: Connection, monitor_id: int, result: CheckResult, summary: WindowSummary
    ) -> MonitorCheck:
        stamp = t.now()
        payload = result.model_dump(mode="json")
        check_id = conn.execute(
            insert(t.monitor_checks).values(
                monitor_id=monitor_id,
                window_start=result.window_start,
                window_end=result.window_end,
                source=result.source,
                model=result.model,
                version=result.version,
                rows=result.rows,
                drift_share=result.drift_share,
                drifted=result.drifted,
                result=payload,
                profile=summary.profile.model_dump(mode="json"),
                prediction_profile=None
                if summary.predictions is None
                else summary.predictions.model_dump(mode="json"),
                created_at=stamp,
            )
        ).inserted_primary_key[0]
        return MonitorCheck(**result.model_dump(), id=int(check_id), created_at=stamp)

    def _count_checks(self, conn: Connection, monitor_id: int) -> int:
        c = t.monitor_checks.c
        return int(
            conn.execute(select(func.count()).where(c.monitor_id == monitor_id)).scalar_one()
        )


# --- evaluation -------------------------------------------------------------------------------


def evaluate(
    monitor: Monitor, reference: MonitorReference, summary: WindowSummary, source: str
) -> CheckResult:
    """Drift per column and share, data quality, prediction drift of one window summary."""
    notes = list(summary.notes)
    drift = drift_report(reference.profile, summary.profile, monitor.drift)
    quality = quality_report(reference.profile, summary.profile, monitor.quality)
    prediction_drift = None
    if summary.predictions is not None:
        if reference.predictions is None:
            notes.append("no reference predictions: prediction drift not computed")
        else:
            prediction_drift = drift_report(reference.predictions, summary.predictions)
    if summary.rows != summary.profile.rows:
        raise InvalidInput("rows does not match the profile's row count", field="windows")
    return CheckResult(
        monitor=monitor.name,
        source=source,  # type: ignore[arg-type]
        window_start=summary.window_start,
        window_end=summary.window_end,
        model=summary.model,
        version=summary.version,
        rows=summary.rows,
        columns=drift.columns,
        skipped=drift.skipped,
        tested_columns=drift.tested_columns,
        drifted_columns=drift.drifted_columns,
        drift_share=drift.drift_share,
        share_threshold=drift.share_threshold,
        drifted=drift.drifted,
        prediction_drift=prediction_drift,
        quality=quality,
        performance=summary.performance,
        estimated_performance=summary.estimated_performance,
        multivariate=summary.multivariate,
        notes=notes,
    )


def _overall(
    monitor: Monitor,
    reference: MonitorReference,
    summaries: list[WindowSummary],
    results: list[CheckResult],
    source: str,
) -> CheckResult:
    if len(summaries) == 1:
        return results[0]
    profile = summaries[0].profile
    for s in summaries[1:]:
        profile = profile.merge(s.profile)
    predictions = None
    if all(s.predictions is not None for s in summaries):
        predictions = summaries[0].predictions
        for s in summaries[1:]:
            predictions = predictions.merge(s.predictions)  # type: ignore[union-attr,arg-type]
    merged = WindowSummary(
        window_start=min(s.window_start for s in summaries),
        window_end=max(s.window_end for s in summaries),
        rows=profile.rows,
        model=summaries[0].model if len({s.model for s in summaries}) == 1 else None,
        version=summaries[0].version if len({s.version for s in summaries}) == 1 else None,
        profile=profile,
        predictions=predictions,
        notes=[f"{len(summaries)} windows merged; performance is per window"],
    )
    return evaluate(monitor, reference, merged, source)


# --- rows and entities -------------------------------------------------------------------------


def _monitor_entity(row: Any) -> Monitor:
    spec = row["spec"]
    cursor = row["live_cursor"] or {}
    return Monitor(
        name=row["name"],
        description=spec.get("description", ""),
        model=spec.get("model"),
        endpoint=spec.get("endpoint"),
        reference=ReferenceInfo.model_validate(spec["reference"]),
        window=WindowSpec.model_validate(spec["window"]),
        time_column=spec.get("time_column"),
        label_column=spec.get("label_column"),
        task=spec.get("task"),
        drift=DriftConfig.model_validate(spec.get("drift") or {}),
        quality=QualityConfig.model_validate(spec.get("quality") or {}),
        multivariate=spec.get("multivariate", False),
        features=spec.get("features", []),
        has_reference_predictions=row["reference_predictions"] is not None,
        live_cursor=None
        if cursor.get("time") is None
        else datetime.fromtimestamp(cursor["time"] / 1000, tz=UTC),
        created_at=row["created_at"],
        created_by=row["created_by"],
        updated_at=row["updated_at"],
    )


def _reference(row: Any) -> MonitorReference:
    predictions = row["reference_predictions"]
    performance = row["reference_performance"]
    return MonitorReference(
        profile=DatasetProfile.model_validate(row["reference_profile"]),
        predictions=None if predictions is None else DatasetProfile.model_validate(predictions),
        performance=None if performance is None else Performance.model_validate(performance),
    )


def _check_entity(row: Any, *, with_profile: bool = False) -> MonitorCheck:
    profile = DatasetProfile.model_validate(row["profile"]) if with_profile else None
    return MonitorCheck(
        **row["result"], id=row["id"], created_at=row["created_at"], profile=profile
    )


def _features_only(profile: DatasetProfile, features: list[str]) -> DatasetProfile:
    keep = set(features)
    return DatasetProfile(
        rows=profile.rows,
        dtypes={k: v for k, v in profile.dtypes.items() if k in keep},
        columns={k: v for k, v in profile.columns.items() if k in keep},
    )


def _guess_label(profile: DatasetProfile, inputs: list[str] | None) -> str | None:
    """The label column when the model's signature leaves exactly one reference column over,
    or, without a signature, a column named like a label (target, label, y, class)."""
    if inputs is not None:
        extra = [c for c in profile.dtypes if c not in set(inputs)]
        return extra[0] if len(extra) == 1 else None
    named = [c for c in profile.dtypes if c.lower() in _LABEL_NAMES]
    return named[0] if len(named) == 1 else None


def _check_drift_config(config: DriftConfig, profile: DatasetProfile, features: list[str]) -> None:
    for test in (config.numeric_test, config.categorical_test, *config.thresholds):
        DEFAULT_DRIFT_TESTS.get(test)
    for column, settings in config.columns.items():
        if column not in features:
            raise InvalidInput(
                f"drift settings name column {column!r}, which the reference does not have",
                field="drift",
            )
        if settings.test is not None:
            test = DEFAULT_DRIFT_TESTS.get(settings.test)
            kind = (
                "numeric" if isinstance(profile.columns[column], NumericProfile) else "categorical"
            )
            if kind not in test.kinds:
                raise InvalidInput(
                    f"drift test {test.name!r} does not apply to {kind} column {column!r}",
                    field="drift",
                )


def _window(value: Any) -> WindowSpec:
    return _parse(WindowSpec, value, "window")


_MISSING = object()


def _parse(model: Any, value: Any, field: str, default: Any = _MISSING) -> Any:
    """An entity from an entity or plain data (the embedded transport passes either)."""
    if value is None:
        return model() if default is _MISSING else default
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidInput(
            f"{field}{'.' + where if where else ''}: {first['msg']}", field=field
        ) from None
