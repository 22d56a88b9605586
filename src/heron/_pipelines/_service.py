"""The pipeline service: pipeline runs, step runs, the cache index, lineage and triggers.

Pipelines execute in the caller's process (or on its Ray cluster), never in the REST
server; the executor records what happens through these methods, over either transport.
Every pipeline run is mirrored by a tracking run in the experiment named after the
pipeline: its params, each step's metrics, and each step output as an artifact
(``steps/<step>/<output>``).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from heron._entities import MetricPoint, Page, RunContext, RunStatus
from heron._errors import Conflict, InvalidInput, NotFound
from heron._names import check_name
from heron._pipelines._entities import (
    LineageEdge,
    PipelineRun,
    PipelineRunStatus,
    PipelineTrigger,
    StepRun,
    StepStatus,
    TriggerKind,
)
from heron._services import Service, check_limit, next_token, page_offset
from heron._store import _tables as t
from heron._store._sql import insert_unique, upsert

_TRACKING_STATUS = {
    PipelineRunStatus.SUCCEEDED: RunStatus.FINISHED,
    PipelineRunStatus.FAILED: RunStatus.FAILED,
    PipelineRunStatus.CANCELLED: RunStatus.KILLED,
}


class PipelineService(Service):
    # --- pipeline runs -----------------------------------------------------------------

    def create_pipeline_run(
        self,
        pipeline: str,
        steps: list[StepRun],
        params: dict[str, Any] | None = None,
        executor: str = "inprocess",
        target: str = "",
        resumed_from: str | None = None,
        trigger: str | None = None,
        context: RunContext | None = None,
    ) -> PipelineRun:
        """Start a pipeline run (its steps pending) and the tracking run that mirrors it."""
        check_name(pipeline, "pipeline")
        params = params or {}
        run_id = uuid.uuid4().hex
        tracking = self.services.tracking.create_run(
            experiment=pipeline,
            name=f"{pipeline}-{run_id[:8]}",
            context=context,
            tags={"heron.pipeline": pipeline, "heron.pipeline_run": run_id},
        )
        if params:
            self.services.tracking.log_params(
                tracking.id, {k: _param_text(v) for k, v in params.items()}
            )
        with self.store.write() as conn:
            conn.execute(
                insert(t.pipeline_runs).values(
                    id=run_id,
                    pipeline=pipeline,
                    target=target,
                    status=PipelineRunStatus.RUNNING.value,
                    executor=executor,
                    params=params,
                    run_id=tracking.id,
                    resumed_from=resumed_from,
                    trigger=trigger,
                    cancel_requested=False,
                    created_at=t.now(),
                    created_by=self.caller.actor,
                )
            )
            rows = [
                _step_row(run_id, step.model_copy(update={"pipeline_run_id": run_id}), i)
                for i, step in enumerate(steps)
            ]
            if rows:
                conn.execute(insert(t.pipeline_step_runs), rows)
            run = self._pipeline_run(conn, run_id)
            self.record(
                conn,
                "create",
                "pipeline_run",
                run_id,
                after={"pipeline": pipeline, "params": params, "executor": executor},
            )
            return run

    def get_pipeline_run(self, run_id: str) -> PipelineRun:
        with self.store.read() as conn:
            return self._pipeline_run(conn, run_id)

    def list_pipeline_runs(
        self,
        pipeline: str | None = None,
        status: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[PipelineRun]:
        """Pipeline runs, newest first."""
        limit, offset = check_limit(max_results), page_offset(page_token)
        query = select(t.pipeline_runs.c.id)
        if pipeline:
            query = query.where(t.pipeline_runs.c.pipeline == pipeline)
        if status:
            query = query.where(t.pipeline_runs.c.status == status)
        query = query.order_by(t.pipeline_runs.c.created_at.desc(), t.pipeline_runs.c.id)
        with self.store.read() as conn:
            ids = conn.execute(query.offset(offset).limit(limit)).scalars().all()
            items = [self._pipeline_run(conn, i) for i in ids]
        return Page(items=items, next_page_token=next_token(offset, len(items), limit))

    def finish_pipeline_run(
        self,
        run_id: str,
        status: PipelineRunStatus,
        result: Any = None,
        error: str | None = None,
    ) -> PipelineRun:
        """End a pipeline run and its tracking run."""
        if status == PipelineRunStatus.RUNNING:
            raise InvalidInput("a pipeline run cannot be finished as running", field="status")
        with self.store.write() as conn:
            before = self._pipeline_run(conn, run_id)
            conn.execute(
                update(t.pipeline_runs)
                .where(t.pipeline_runs.c.id == run_id)
                .values(status=status.value, result=result, error=error, ended_at=t.now())
            )
            self.record(
                conn,
                "end",
                "pipeline_run",
                run_id,
                before={"status": before.status.value},
                after={"status": status.value, "error": error},
            )
        if before.run_id:
            self.services.tracking.end_run(before.run_id, _TRACKING_STATUS[status])
        return self.get_pipeline_run(run_id)

    def cancel_pipeline_run(self, run_id: str) -> PipelineRun:
        """Ask a running pipeline run to stop; its executor kills running steps and ends it."""
        with self.store.write() as conn:
            run = self._pipeline_run(conn, run_id)
            if run.status != PipelineRunStatus.RUNNING:
                raise Conflict(
                    f"pipeline run {run_id} is {run.status.value}, not running", field="run_id"
                )
            conn.execute(
                update(t.pipeline_runs)
                .where(t.pipeline_runs.c.id == run_id)
                .values(cancel_requested=True)
            )
            self.record(conn, "cancel", "pipeline_run", run_id, after={"cancel_requested": True})
            return self._pipeline_run(conn, run_id)

    # --- step runs ---------------------------------------------------------------------

    def record_step_run(self, run_id: str, step: StepRun) -> None:
        """Store a step run's current state; a succeeded one also gets its lineage, and its
        metrics and outputs go to the tracking run."""
        step = step.model_copy(update={"pipeline_run_id": run_id})
        row = _step_row(run_id, step, 0)
        with self.store.write() as conn:
            tracking_id = conn.execute(
                select(t.pipeline_runs.c.run_id).where(t.pipeline_runs.c.id == run_id)
            ).scalar()
            if tracking_id is None:
                raise NotFound(f"pipeline run {run_id!r} does not exist", field="run_id")
            found = conn.execute(
                update(t.pipeline_step_runs)
                .where(
                    t.pipeline_step_runs.c.pipeline_run_id == run_id,
                    t.pipeline_step_runs.c.name == step.name,
                )
                .values(
                    state=row["state"],
                    status=row["status"],
                    cache_key=row["cache_key"],
                    ended_at=row["ended_at"],
                )
            ).rowcount
            if not found:
                raise NotFound(f"pipeline run {run_id} has no step {step.name!r}", field="name")
            if step.status == StepStatus.SUCCEEDED:
                _write_lineage(conn, run_id, step)
                _record_outputs(conn, tracking_id, step)
        if step.status == StepStatus.SUCCEEDED:
            self._log_step_metrics(tracking_id, step)

    def _log_step_metrics(self, tracking_id: str, step: StepRun) -> None:
        points = [MetricPoint(key=k, value=v) for k, v in step.metrics.items()]
        if step.duration is not None and not step.cached:
            points.append(MetricPoint(key=f"steps/{step.name}/seconds", value=step.duration))
        if points:
            self.services.tracking.log_metrics(tracking_id, points)

    def find_cached_step(self, cache_key: str) -> StepRun | None:
        """The newest succeeded step run with this cache key, if any."""
        query = (
            select(t.pipeline_step_runs.c.state)
            .where(
                t.pipeline_step_runs.c.cache_key == cache_key,
                t.pipeline_step_runs.c.status == StepStatus.SUCCEEDED.value,
            )
            .order_by(t.pipeline_step_runs.c.ended_at.desc())
            .limit(1)
        )
        with self.store.read() as conn:
            state = conn.execute(query).scalar()
        return None if state is None else StepRun.model_validate(state)

    def previous_step_run(self, pipeline: str, name: str, before: str) -> StepRun | None:
        """The same step in the newest earlier run of ``pipeline`` that computed a cache key:
        what a new key is compared with to say why the cache missed."""
        query = (
            select(t.pipeline_step_runs.c.state)
            .join(t.pipeline_runs, t.pipeline_runs.c.id == t.pipeline_step_runs.c.pipeline_run_id)
            .where(
                t.pipeline_runs.c.pipeline == pipeline,
                t.pipeline_runs.c.id != before,
                t.pipeline_step_runs.c.name == name,
                t.pipeline_step_runs.c.cache_key.is_not(None),
            )
            .order_by(t.pipeline_runs.c.created_at.desc())
            .limit(1)
        )
        with self.store.read() as conn:
            state = conn.execute(query).scalar()
        return None if state is None else StepRun.model_validate(state)

    def check_output(self, digest: str) -> str | None:
        """None if the stored folder is complete and intact, else what is wrong with it; a
        blob failing its digest is removed so that rerunning the step stores it anew."""
        from heron._artifacts import check_digest
        from heron._pipelines._task import LocalArtifacts

        return LocalArtifacts(self.services.artifacts).check(check_digest(digest))

    def list_lineage(self, digest: str) -> list[LineageEdge]:
        """Every step run that read or wrote the artifact ``digest``."""
        query = select(
            t.pipeline_lineage.c.pipeline_run_id,
            t.pipeline_lineage.c.step,
            t.pipeline_lineage.c.direction,
            t.pipeline_lineage.c.name,
            t.pipeline_lineage.c.digest,
        ).where(t.pipeline_lineage.c.digest == digest)
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(t.pipeline_lineage.c.id)).mappings()
            return [LineageEdge.model_validate(dict(r)) for r in rows]

    # --- triggers ----------------------------------------------------------------------

    def create_pipeline_trigger(
        self,
        name: str,
        target: str,
        kind: TriggerKind,
        spec: str,
        params: dict[str, Any] | None = None,
        executor: str = "inprocess",
        dataset_param: str | None = None,
    ) -> PipelineTrigger:
        """A cron schedule or a new-dataset-version trigger for ``heron scheduler``."""
        check_name(name)
        _check_trigger(kind, spec, target)
        last_version = None
        if kind == TriggerKind.DATASET:
            # Only versions that arrive after the trigger exists fire it.
            last_version = self.services.datasets.get_dataset(spec).latest_version
        with self.store.write() as conn:
            insert_unique(
                conn,
                insert(t.pipeline_triggers).values(
                    name=name,
                    target=target,
                    kind=kind.value,
                    spec=spec,
                    params=params or {},
                    executor=executor,
                    dataset_param=dataset_param,
                    last_dataset_version=last_version,
                    created_at=t.now(),
                ),
                f"pipeline trigger {name!r}",
            )
            trigger = self._trigger(conn, name)
            self.record(
                conn, "create", "pipeline_trigger", name, after=trigger.model_dump(mode="json")
            )
            return trigger

    def list_pipeline_triggers(self) -> list[PipelineTrigger]:
        with self.store.read() as conn:
            rows = conn.execute(select(t.pipeline_triggers).order_by(t.pipeline_triggers.c.name))
            return [PipelineTrigger.model_validate(dict(r)) for r in rows.mappings()]

    def delete_pipeline_trigger(self, name: str) -> None:
        with self.store.write() as conn:
            before = self._trigger(conn, name)
            conn.execute(delete(t.pipeline_triggers).where(t.pipeline_triggers.c.name == name))
            self.record(
                conn, "delete", "pipeline_trigger", name, before=before.model_dump(mode="json")
            )

    def mark_pipeline_trigger(
        self,
        name: str,
        fired_at: datetime | None = None,
        dataset_version: int | None = None,
        run_id: str | None = None,
    ) -> PipelineTrigger:
        """Remember when a trigger last fired (and on which dataset version)."""
        with self.store.write() as conn:
            self._trigger(conn, name)
            values: dict[str, Any] = {"last_fired_at": fired_at or t.now()}
            if dataset_version is not None:
                values["last_dataset_version"] = dataset_version
            if run_id is not None:
                values["last_run_id"] = run_id
            conn.execute(
                update(t.pipeline_triggers).where(t.pipeline_triggers.c.name == name).values(values)
            )
            return self._trigger(conn, name)

    # --- loading -----------------------------------------------------------------------

    def _pipeline_run(self, conn: Connection, run_id: str) -> PipelineRun:
        row = (
            conn.execute(select(t.pipeline_runs).where(t.pipeline_runs.c.id == run_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"pipeline run {run_id!r} does not exist", field="run_id")
        states = conn.execute(
            select(t.pipeline_step_runs.c.state)
            .where(t.pipeline_step_runs.c.pipeline_run_id == run_id)
            .order_by(t.pipeline_step_runs.c.position)
        ).scalars()
        steps = {s.name: s for s in (StepRun.model_validate(state) for state in states)}
        return PipelineRun(**dict(row), steps=steps)

    def _trigger(self, conn: Connection, name: str) -> PipelineTrigger:
        row = (
            conn.execute(select(t.pipeline_triggers).where(t.pipeline_triggers.c.name == name))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"pipeline trigger {name!r} does not exist", field="name")
        return PipelineTrigger.model_validate(dict(row))


def _step_row(run_id: str, step: StepRun, position: int) -> dict[str, Any]:
    return {
        "pipeline_run_id": run_id,
        "name": step.name,
        "position": position,
        "state": step.model_dump(mode="json"),
        "status": step.status.value,
        "cache_key": step.cache_key,
        "ended_at": step.ended_at,
    }


def _write_lineage(conn: Connection, run_id: str, step: StepRun) -> None:
    table = t.pipeline_lineage
    conn.execute(delete(table).where(table.c.pipeline_run_id == run_id, table.c.step == step.name))
    rows = [
        {"pipeline_run_id": run_id, "step": step.name, "direction": "in", "name": k, "digest": d}
        for k, d in step.inputs.items()
    ] + [
        {
            "pipeline_run_id": run_id,
            "step": step.name,
            "direction": "out",
            "name": o.name,
            "digest": o.digest,
        }
        for o in step.outputs
    ]
    if rows:
        conn.execute(insert(table), rows)


def _record_outputs(conn: Connection, tracking_id: str, step: StepRun) -> None:
    """Each output is an artifact of the tracking run, ``steps/<step>/<output>``."""
    rows = [
        {
            "run_id": tracking_id,
            "path": f"steps/{step.name}/{out.name}",
            "digest": out.digest,
            "size": 0,
            "is_folder": True,
        }
        for out in step.outputs
    ]
    upsert(conn, t.run_artifacts, rows, ["run_id", "path"], ["digest", "size", "is_folder"])


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _check_trigger(kind: TriggerKind, spec: str, target: str) -> None:
    if ":" not in target:
        raise InvalidInput(
            f"target {target!r} must name a pipeline as module:attribute", field="target"
        )
    if kind == TriggerKind.CRON:
        from croniter import croniter

        if not croniter.is_valid(spec):
            raise InvalidInput(f"{spec!r} is not a cron expression", field="spec")
    else:
        check_name(spec, "spec")
