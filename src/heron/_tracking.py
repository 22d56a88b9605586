"""Tracking: experiments, runs, params, metric series, tags, artifacts and inputs of runs.

Creating experiments and runs and changing a run's status are audited; the data logged
inside a run (params, metrics, tags, artifacts) is not, as it is the run's own content and
far too voluminous for an audit trail.

Non-finite metric values (NaN, ±inf) are refused with an error naming the metric, at the
call that logs them: JSON cannot carry them, and a silently dropped point hides a diverging
training job.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from heron._entities import (
    ArtifactEntry,
    DatasetRef,
    Experiment,
    MetricBatch,
    MetricPoint,
    Page,
    Run,
    RunContext,
    RunStatus,
)
from heron._errors import Conflict, InvalidInput, NotFound
from heron._names import (
    check_key,
    check_metric,
    check_metric_batch,
    check_name,
    check_relative_path,
)
from heron._services import Service, check_limit, next_token, page_offset
from heron._store import _tables as t
from heron._store._sql import insert_unique, upsert

MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000


class TrackingService(Service):
    # --- experiments -------------------------------------------------------------------

    def create_experiment(
        self, name: str, description: str = "", tags: dict[str, str] | None = None
    ) -> Experiment:
        check_name(name)
        with self.store.write() as conn:
            return self._create_experiment(conn, name, description, tags or {})

    def _create_experiment(
        self, conn: Connection, name: str, description: str, tags: dict[str, str]
    ) -> Experiment:
        stmt = insert(t.experiments).values(
            name=name, description=description, tags=tags, created_at=t.now()
        )
        insert_unique(conn, stmt, f"experiment {name!r}")
        experiment = self._experiment(conn, name)
        self.record(conn, "create", "experiment", name, after=experiment.model_dump(mode="json"))
        return experiment

    def get_experiment(self, name: str) -> Experiment:
        with self.store.read() as conn:
            return self._experiment(conn, name)

    def list_experiments(
        self, max_results: int = 100, page_token: str | None = None
    ) -> Page[Experiment]:
        limit, offset = check_limit(max_results), page_offset(page_token)
        query = select(t.experiments).order_by(t.experiments.c.id).offset(offset).limit(limit)
        with self.store.read() as conn:
            items = [_experiment(row) for row in conn.execute(query).mappings()]
        return Page(items=items, next_page_token=next_token(offset, len(items), limit))

    def _experiment(self, conn: Connection, name: str) -> Experiment:
        row = conn.execute(select(t.experiments).where(t.experiments.c.name == name)).mappings()
        found = row.first()
        if found is None:
            raise NotFound(f"experiment {name!r} does not exist", field="experiment")
        return _experiment(found)

    # --- runs --------------------------------------------------------------------------

    def create_run(
        self,
        experiment: str,
        name: str | None = None,
        context: RunContext | None = None,
        tags: dict[str, str] | None = None,
    ) -> Run:
        """Start a run in ``experiment``, creating the experiment on first use."""
        check_name(experiment, "experiment")
        if name is not None:
            check_name(name)
        tags = _check_tags(tags or {})
        context = context or RunContext()
        run_id = t.new_id()
        with self.store.write() as conn:
            exp_id = conn.execute(
                select(t.experiments.c.id).where(t.experiments.c.name == experiment)
            ).scalar()
            if exp_id is None:
                exp_id = int(self._create_experiment(conn, experiment, "", {}).id)
            conn.execute(
                insert(t.runs).values(
                    id=run_id,
                    experiment_id=exp_id,
                    name=name or f"run-{run_id[-8:]}",
                    status=RunStatus.RUNNING.value,
                    start_time=t.now(),
                    **context.model_dump(),
                )
            )
            upsert(conn, t.run_tags, _kv_rows(run_id, tags), ["run_id", "key"], ["value"])
            run = self._runs(conn, [run_id])[0]
            self.record(conn, "create", "run", run_id, after={"experiment": experiment})
        return run

    def get_run(self, run_id: str) -> Run:
        with self.store.read() as conn:
            return self._run(conn, run_id)

    def end_run(self, run_id: str, status: RunStatus = RunStatus.FINISHED) -> Run:
        if status == RunStatus.RUNNING:
            raise InvalidInput("a run cannot be ended as running", field="status")
        with self.store.write() as conn:
            before = self._run(conn, run_id).status
            conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id)
                .values(status=status.value, end_time=t.now())
            )
            self.record(
                conn, "end", "run", run_id, before={"status": before}, after={"status": status}
            )
            return self._run(conn, run_id)

    def search_runs(
        self,
        experiments: list[str] | None = None,
        filter: str = "",
        order_by: list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[Run]:
        """Runs matching a filter such as ``metrics.accuracy > 0.9 and params.C = '1.0'``."""
        from heron._search import compile_filter, order_by_clauses, parse_filter

        limit, offset = check_limit(max_results), page_offset(page_token)
        query = select(t.runs.c.id)
        where = compile_filter(parse_filter(filter))
        if where is not None:
            query = query.where(where)
        with self.store.read() as conn:
            if experiments:
                ids = [self._experiment(conn, name).id for name in experiments]
                query = query.where(t.runs.c.experiment_id.in_([int(i) for i in ids]))
            ordering = order_by_clauses(order_by or ["start_time DESC"])
            run_ids = (
                conn.execute(query.order_by(*ordering).offset(offset).limit(limit)).scalars().all()
            )
            items = self._runs(conn, list(run_ids))
        return Page(items=items, next_page_token=next_token(offset, len(items), limit))

    # --- data logged inside a run --------------------------------------------------------

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        """Params are immutable: logging a key again with another value is a conflict."""
        rows = []
        for key, value in params.items():
            check_key(key, f"params.{key}")
            if len(str(value)) > MAX_PARAM_VALUE:
                raise InvalidInput(
                    f"param {key!r} is longer than {MAX_PARAM_VALUE} characters",
                    field=f"params.{key}",
                )
            rows.append({"run_id": run_id, "key": key, "value": str(value)})
        with self.store.write() as conn:
            self._require_run(conn, run_id)
            existing = dict(
                conn.execute(
                    select(t.params.c.key, t.params.c.value).where(
                        t.params.c.run_id == run_id, t.params.c.key.in_(list(params))
                    )
                ).all()
            )
            for row in rows:
                old = existing.get(row["key"])
                if old is not None and old != row["value"]:
                    raise Conflict(
                        f"param {row['key']!r} is already {old!r} in run {run_id}; params "
                        "cannot change once logged",
                        field=f"params.{row['key']}",
                    )
            new = [row for row in rows if row["key"] not in existing]
            if new:
                conn.execute(insert(t.params), new)

    def log_metrics(self, run_id: str, metrics: list[MetricPoint] | MetricBatch) -> None:
        """Append points to metric series and keep each key's latest value current."""
        stamp = _millis(t.now())
        if isinstance(metrics, MetricBatch):
            rows = _batch_rows(run_id, check_metric_batch(metrics), stamp)
        else:
            rows = _point_rows(run_id, metrics, stamp)
        if not rows:
            return
        latest: dict[str, tuple[str, str, float, int, int]] = {}
        for row in rows:
            best = latest.get(row[1])
            if best is None or (row[3], row[4]) >= (best[3], best[4]):
                latest[row[1]] = row
        with self.store.write() as conn:
            self._require_run(conn, run_id)
            # Plain tuples through the driver: SQLAlchemy's per-row parameter processing
            # was a fifth of the time of logging a batch of 1,000 points.
            _insert_rows(conn, _INSERT_METRICS, rows)
            _insert_rows(conn, _UPSERT_LATEST, list(latest.values()))

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        query = (
            select(t.metrics.c.key, t.metrics.c.value, t.metrics.c.step, t.metrics.c.timestamp)
            .where(t.metrics.c.run_id == run_id, t.metrics.c.key == key)
            .order_by(t.metrics.c.step, t.metrics.c.timestamp, t.metrics.c.id)
        )
        with self.store.read() as conn:
            self._require_run(conn, run_id)
            return [MetricPoint.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        rows = _kv_rows(run_id, _check_tags(tags))
        with self.store.write() as conn:
            self._require_run(conn, run_id)
            upsert(conn, t.run_tags, rows, ["run_id", "key"], ["value"])

    def record_artifact(
        self, run_id: str, path: str, digest: str, size: int, is_folder: bool = False
    ) -> ArtifactEntry:
        """Attach content already in the artifact store to a run under ``path``."""
        check_relative_path(path)
        store = self.services.artifacts
        if not store.exists(digest):
            raise NotFound(f"artifact {digest} is not in the artifact store", field="digest")
        entry = ArtifactEntry(path=path, digest=digest, size=size, is_folder=is_folder)
        with self.store.write() as conn:
            self._require_run(conn, run_id)
            upsert(
                conn,
                t.run_artifacts,
                [{"run_id": run_id, **entry.model_dump()}],
                ["run_id", "path"],
                ["digest", "size", "is_folder"],
            )
        return entry

    def list_artifacts(self, run_id: str) -> list[ArtifactEntry]:
        query = select(
            t.run_artifacts.c.path,
            t.run_artifacts.c.digest,
            t.run_artifacts.c.size,
            t.run_artifacts.c.is_folder,
        ).where(t.run_artifacts.c.run_id == run_id)
        with self.store.read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(query.order_by(t.run_artifacts.c.path)).mappings()
            return [ArtifactEntry.model_validate(dict(r)) for r in rows]

    def get_artifact(self, run_id: str, path: str) -> ArtifactEntry:
        check_relative_path(path)
        for entry in self.list_artifacts(run_id):
            if entry.path == path:
                return entry
        raise NotFound(f"run {run_id} has no artifact {path!r}", field="path")

    def log_inputs(self, run_id: str, datasets: list[DatasetRef]) -> None:
        """Record that a run used these dataset versions."""
        with self.store.write() as conn:
            self._require_run(conn, run_id)
            ids = [
                self.services.datasets.version_id(conn, ref.name, ref.version) for ref in datasets
            ]
            existing = set(
                conn.execute(
                    select(t.run_inputs.c.dataset_version_id).where(t.run_inputs.c.run_id == run_id)
                ).scalars()
            )
            new = [{"run_id": run_id, "dataset_version_id": i} for i in set(ids) - existing]
            if new:
                conn.execute(insert(t.run_inputs), new)

    # --- loading -----------------------------------------------------------------------

    def _require_run(self, conn: Connection, run_id: str) -> None:
        # Plain SQL: this runs before every write, and building the statement each time
        # cost more than the lookup itself.
        if (
            conn.exec_driver_sql(_sql(conn, "SELECT 1 FROM runs WHERE id = ?"), (run_id,)).first()
            is None
        ):
            raise NotFound(f"run {run_id!r} does not exist", field="run_id")

    def _run(self, conn: Connection, run_id: str) -> Run:
        runs = self._runs(conn, [run_id])
        if not runs:
            raise NotFound(f"run {run_id!r} does not exist", field="run_id")
        return runs[0]

    def _runs(self, conn: Connection, run_ids: Sequence[str]) -> list[Run]:
        """Load runs with their params, latest metrics, tags and inputs in five queries.

        The queries are plain SQL with one placeholder per id: building and compiling an
        ``IN`` of 100 ids through SQLAlchemy costs more than running it (a page of search
        results spent 60 % of its time there).
        """
        if not run_ids:
            return []
        ids = tuple(run_ids)
        by_id = {row[0]: row for row in _in(conn, _SELECT_RUNS, ids)}
        params, metrics, tags = (_grouped(conn, table, ids) for table in _KEY_VALUE_TABLES)
        inputs: dict[str, list[DatasetRef]] = defaultdict(list)
        for run_id, name, version, digest in _in(conn, _SELECT_INPUTS, ids):
            inputs[run_id].append(DatasetRef(name=name, version=version, digest=digest))
        result = []
        for run_id in run_ids:
            row = by_id.get(run_id)
            if row is None:
                continue
            fields = dict(zip(_RUN_COLUMNS, row, strict=True))
            fields["experiment_id"] = str(fields["experiment_id"])
            fields["start_time"] = t.from_millis(fields["start_time"])
            fields["end_time"] = t.from_millis(fields["end_time"])
            if fields["git_dirty"] is not None:
                fields["git_dirty"] = bool(fields["git_dirty"])
            result.append(
                Run(
                    **fields,
                    params=params[run_id],
                    metrics=metrics[run_id],
                    tags=tags[run_id],
                    inputs=inputs[run_id],
                )
            )
        return result


_RUN_COLUMNS = (
    "id",
    "experiment_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "user",
    "host",
    "entry_point",
    "git_commit",
    "git_dirty",
    "experiment",
)
_SELECT_RUNS = (
    "SELECT "
    + ", ".join(f'runs."{c}"' for c in _RUN_COLUMNS[:-1])
    + ", experiments.name FROM runs JOIN experiments ON experiments.id = runs.experiment_id "
    "WHERE runs.id IN ({ids})"
)
_SELECT_INPUTS = (
    "SELECT run_inputs.run_id, datasets.name, dataset_versions.version, dataset_versions.digest "
    "FROM run_inputs "
    "JOIN dataset_versions ON dataset_versions.id = run_inputs.dataset_version_id "
    "JOIN datasets ON datasets.id = dataset_versions.dataset_id "
    "WHERE run_inputs.run_id IN ({ids})"
)
_KEY_VALUE_TABLES = ("params", "latest_metrics", "run_tags")

_INSERT_METRICS = 'INSERT INTO metrics (run_id, key, value, step, "timestamp") VALUES {values}'
# The newest point wins: the highest step, then the latest time (as MLflow decides it).
_UPSERT_LATEST = (
    'INSERT INTO latest_metrics (run_id, key, value, step, "timestamp") VALUES {values} '
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
    '"timestamp" = excluded."timestamp" WHERE excluded.step > latest_metrics.step OR '
    '(excluded.step = latest_metrics.step AND excluded."timestamp" >= latest_metrics."timestamp")'
)


def _sql(conn: Connection, statement: str) -> str:
    """SQLite takes ``?`` placeholders, psycopg ``%s``; the statements are written with ``?``."""
    return statement if conn.dialect.paramstyle == "qmark" else statement.replace("?", "%s")


_MetricRow = tuple[str, str, float, int, int]
_ROWS_PER_STATEMENT = 200  # 1,000 parameters: far under SQLite's and PostgreSQL's limits


def _insert_rows(conn: Connection, statement: str, rows: list[_MetricRow]) -> None:
    """``statement`` with ``VALUES (…), (…), …`` for many rows at once: SQLite upserts the
    latest values 40 % faster than with one execution a row. The chunks have a fixed size,
    so their statement text repeats and its compiled form is reused.

    (PostgreSQL refuses an upsert that touches a row twice in one statement: upserted rows
    must have distinct keys.)"""
    row = "(" + ", ".join("?" * len(rows[0])) + ")"
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        sql = _sql(conn, statement.format(values=", ".join([row] * len(chunk))))
        conn.exec_driver_sql(sql, tuple(itertools.chain.from_iterable(chunk)))


def _point_rows(run_id: str, points: list[MetricPoint], stamp: int) -> list[_MetricRow]:
    # A batch nearly always shares one timestamp: convert each distinct one once.
    millis: dict[datetime | None, int] = {None: stamp}
    rows = []
    for point in points:
        check_metric(point)
        ms = millis.get(point.timestamp)
        if ms is None:
            ms = millis[point.timestamp] = _millis(point.timestamp) or stamp
        rows.append((run_id, point.key, point.value, point.step, ms))
    return rows


def _batch_rows(run_id: str, batch: MetricBatch, stamp: int) -> list[_MetricRow]:
    stamps = batch.timestamps or itertools.repeat(stamp)
    return list(
        zip(itertools.repeat(run_id), batch.keys, batch.values, batch.steps, stamps, strict=False)
    )


def _millis(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:  # naive times are UTC, as everywhere in the store
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _in(conn: Connection, statement: str, ids: tuple[str, ...]) -> list[Any]:
    """Runs ``statement`` with its ``{ids}`` filled by one placeholder per id."""
    marks = ", ".join(["?"] * len(ids))
    return conn.exec_driver_sql(_sql(conn, statement.format(ids=marks)), ids).all()


def _grouped(conn: Connection, table: str, run_ids: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    statement = f'SELECT run_id, "key", value FROM {table} WHERE run_id IN ({{ids}})'
    for run_id, key, value in _in(conn, statement, run_ids):
        out[run_id][key] = value
    return out


def _kv_rows(run_id: str, values: dict[str, str]) -> list[dict[str, str]]:
    return [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()]


def _check_tags(tags: dict[str, str]) -> dict[str, str]:
    for key, value in tags.items():
        check_key(key, f"tags.{key}")
        if len(str(value)) > MAX_TAG_VALUE:
            raise InvalidInput(f"tag {key!r} is too long", field=f"tags.{key}")
    return {k: str(v) for k, v in tags.items()}


def _experiment(row: Any) -> Experiment:
    return Experiment(
        id=str(row["id"]),
        name=row["name"],
        description=row["description"],
        tags=row["tags"] or {},
        created_at=row["created_at"],
    )
