"""``heron.run_pipeline``: build the graph, decide per step whether the cache serves it,
run the rest on an executor with retries and timeouts, and record everything.

A run that fails keeps every output its succeeded steps stored (they are cached), so
``resume`` reruns only from the failed step. Validation (unknown params, a cycle, a missing
input) happens before anything is recorded: bad input leaves no run behind.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron._errors import HeronError, InvalidInput
from heron._pipelines._cache import code_digest, key_of, library_versions, miss_reason
from heron._pipelines._entities import (
    OutputRef,
    PipelineRun,
    PipelineRunStatus,
    StepRun,
    StepStatus,
)
from heron._pipelines._executors import Executor, TaskHandle, make_executor
from heron._pipelines._external import ExternalInput, Uncacheable, external_inputs
from heron._pipelines._materializers import _is_json, for_value
from heron._pipelines._pipeline import Graph, Handle, Node, Pipeline, load_target
from heron._pipelines._task import (
    Artifacts,
    ClientArtifacts,
    LocalArtifacts,
    StepTask,
    StoreAccess,
    TaskResult,
    load_output,
)

if TYPE_CHECKING:
    from heron._client import Client

CANCEL_POLL_SECONDS = 0.25


def run_pipeline(
    pipeline: Pipeline | str,
    params: dict[str, Any] | None = None,
    *,
    executor: str | Executor = "inprocess",
    client: Client | None = None,
    resume: str | None = None,
    progress: bool | None = None,
    ray_address: str | None = None,
    max_workers: int | None = None,
    trigger: str | None = None,
) -> PipelineRun:
    """Run ``pipeline`` (or ``"module:attribute"``) and return its run, ``output`` loaded.

    ``executor`` is ``"inprocess"``, ``"local"`` (processes; ``max_workers``) or ``"ray"``
    (``ray_address``, else a local cluster). ``resume`` names a failed or cancelled run:
    its params are reused (``params`` override them) and its succeeded steps are not rerun.
    ``progress`` shows a live table of steps on the terminal (default: when on a TTY).
    """
    from heron._fluent import get_client

    client = client or get_client()
    if isinstance(pipeline, str):
        pipeline = load_target(pipeline)
    previous = None
    if resume is not None:
        previous = client.get_pipeline_run(resume)
        if previous.pipeline != pipeline.pipeline_name:
            raise InvalidInput(
                f"run {resume} is of pipeline {previous.pipeline!r}, not "
                f"{pipeline.pipeline_name!r}",
                field="resume",
            )
        params = {**previous.params, **(params or {})}
    resolved = pipeline.resolve_params(params)
    graph = pipeline.build(resolved)
    order = graph.validate()
    if isinstance(executor, str):
        options = {"local": {"max_workers": max_workers}, "ray": {"address": ray_address}}
        runner_executor = make_executor(executor, **options.get(executor, {}))
    else:
        runner_executor = executor
    runner = _Runner(client, pipeline, graph, order, runner_executor, resolved, previous)
    return runner.run(progress=progress, trigger=trigger)


def read_step_log(client: Client, run_id: str, step: str) -> str:
    from heron._errors import NotFound

    run = client.get_pipeline_run(run_id)
    state = run.steps.get(step)
    if state is None:
        raise NotFound(
            f"pipeline run {run_id} has no step {step!r} (steps: {', '.join(run.steps)})",
            field="step",
        )
    if not state.log_digest:
        return ""
    with tempfile.TemporaryDirectory(prefix="heron-log-") as scratch:
        path = client.transport.fetch_blob(state.log_digest, Path(scratch) / "log")
        return path.read_text(encoding="utf-8", errors="replace")


# --- the runner ----------------------------------------------------------------------------


@dataclass
class _Prepared:
    constants: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, OutputRef] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Attempt:
    handle: TaskHandle
    started: float
    number: int


class _Runner:
    def __init__(
        self,
        client: Client,
        pipeline: Pipeline,
        graph: Graph,
        order: list[str],
        executor: Executor,
        params: dict[str, Any],
        previous: PipelineRun | None,
    ) -> None:
        self.client = client
        self.pipeline = pipeline
        self.graph = graph
        self.order = order
        self.executor = executor
        self.params = params
        self.previous = previous
        self.access = _access(client)
        self.artifacts = _parent_artifacts(client)
        self.states: dict[str, StepRun] = {}
        self.outputs: dict[str, list[OutputRef]] = {}
        self.values: dict[str, list[Any]] = {}
        self.prepared: dict[str, _Prepared] = {}
        self.run_id = ""
        self.tracking_id: str | None = None
        self._last_cancel_check = 0.0
        self.view: Any = None

    # -- the run --------------------------------------------------------------------------

    def run(self, *, progress: bool | None, trigger: str | None) -> PipelineRun:
        from heron._pipelines._progress import ProgressView
        from heron._run import caller_context

        steps = [
            StepRun(
                name=name,
                step=self.graph.nodes[name].step.identity,
                upstream=self.graph.nodes[name].upstream(),
            )
            for name in self.order
        ]
        run = self.client._call(
            "create_pipeline_run",
            pipeline=self.pipeline.pipeline_name,
            steps=steps,
            params=_jsonable(self.params),
            executor=self.executor.name,
            target=self.pipeline.target,
            resumed_from=self.previous.id if self.previous else None,
            trigger=trigger,
            context=caller_context(),
        )
        self.run_id, self.tracking_id = run.id, run.run_id
        self.states = dict(run.steps)
        interrupted = False
        with ProgressView(run, enabled=progress) as view:
            self.view = view
            try:
                status, error = self._loop()
            except KeyboardInterrupt:
                interrupted = True
                status, error = PipelineRunStatus.CANCELLED, "interrupted"
                self._stop_all(StepStatus.CANCELLED, "the run was interrupted")
            finally:
                self.executor.close()
            result = None
            if status == PipelineRunStatus.SUCCEEDED:
                result = _jsonable(self._result_refs(self.graph.output))
            final = self.client._call(
                "finish_pipeline_run",
                run_id=self.run_id,
                status=status,
                result=result,
                error=error,
            )
            view.finish(final)
        if interrupted:
            raise KeyboardInterrupt
        if status == PipelineRunStatus.SUCCEEDED:
            final._output = self._resolve(self.graph.output)
        return final

    def _loop(self) -> tuple[PipelineRunStatus, str | None]:
        pending = list(self.order)
        running: dict[str, _Attempt] = {}
        retry_at: dict[str, float] = {}
        failed: str | None = None
        cancelled = False
        self._last_cancel_check = time.monotonic()
        while True:
            cancelled = cancelled or self._cancel_requested()
            if cancelled:
                self._stop(running, StepStatus.CANCELLED, "the run was cancelled")
                break
            if failed is None:
                failed = self._launch(pending, running, retry_at)
            if not running and (failed is not None or not retry_at):
                break
            handles = [a.handle for a in running.values()]
            self.executor.wait(handles, self._wait_time(running, retry_at))
            for node, attempt in list(running.items()):
                result = self._poll(node, attempt)
                if result is None:
                    continue
                del running[node]
                if result.error is None:
                    self._succeeded(node, result)
                elif result.retryable and attempt.number <= self.graph.nodes[node].step.retries:
                    retry_at[node] = time.monotonic() + self._backoff(node, attempt.number)
                    pending.insert(0, node)
                    self._attempt_failed(node, result, retry_at[node] - time.monotonic())
                else:
                    self._failed(node, result)
                    failed = failed or node
        leftover = StepStatus.CANCELLED if cancelled else StepStatus.SKIPPED
        why = "the run was cancelled" if cancelled else f"step {failed!r} failed first"
        for node in pending:
            self._set(node, status=leftover, error=why, cache_reason=self.states[node].cache_reason)
        if cancelled:
            return PipelineRunStatus.CANCELLED, "cancelled"
        if failed is not None:
            return PipelineRunStatus.FAILED, f"step {failed!r} failed: {self.states[failed].error}"
        return PipelineRunStatus.SUCCEEDED, None

    def _launch(
        self, pending: list[str], running: dict[str, _Attempt], retry_at: dict[str, float]
    ) -> str | None:
        """Start (or serve from cache) every ready step there is room for."""
        progressed = True
        while progressed:
            progressed = False
            for node in list(pending):
                if len(running) >= self.executor.parallelism:
                    return None
                if node in retry_at:
                    if retry_at[node] > time.monotonic():
                        continue
                    del retry_at[node]
                    pending.remove(node)
                    self._start(node, running, self.states[node].attempts + 1)
                    progressed = True
                    continue
                upstream = self.graph.nodes[node].upstream()
                if any(self.states[u].status != StepStatus.SUCCEEDED for u in upstream):
                    continue
                pending.remove(node)
                progressed = True
                try:
                    if self._from_cache(node):
                        continue
                except HeronError as exc:  # an external input that cannot be read, ...
                    self._failed(node, TaskResult(error=f"{type(exc).__name__}: {exc.message}"))
                    return node
                self._start(node, running, 1)
        return None

    def _poll(self, node: str, attempt: _Attempt) -> TaskResult | None:
        result = attempt.handle.result()
        timeout = self.graph.nodes[node].step.timeout
        if result is None and timeout is not None and time.monotonic() - attempt.started > timeout:
            attempt.handle.kill()
            now = time.time()
            return TaskResult(
                error=f"TimeoutError: step {node!r} ran longer than its timeout of {timeout:g}s",
                started_at=now - (time.monotonic() - attempt.started),
                ended_at=now,
            )
        return result

    def _wait_time(self, running: dict[str, _Attempt], retry_at: dict[str, float]) -> float:
        now = time.monotonic()
        wait = CANCEL_POLL_SECONDS
        for node, attempt in running.items():
            timeout = self.graph.nodes[node].step.timeout
            if timeout is not None:
                wait = min(wait, attempt.started + timeout - now)
        for when in retry_at.values():
            wait = min(wait, when - now)
        return max(wait, 0.0)

    def _backoff(self, node: str, attempt: int) -> float:
        return float(self.graph.nodes[node].step.retry_backoff * 2 ** (attempt - 1))

    def _cancel_requested(self) -> bool:
        """Polled at most every CANCEL_POLL_SECONDS: ``heron pipelines cancel`` sets a flag."""
        now = time.monotonic()
        if now - self._last_cancel_check < CANCEL_POLL_SECONDS:
            return False
        self._last_cancel_check = now
        run = self.client._call("get_pipeline_run", run_id=self.run_id)
        return bool(run.cancel_requested)

    # -- caching --------------------------------------------------------------------------

    def _from_cache(self, name: str) -> bool:
        """Compute the step's key and serve it from the cache if a verified entry exists."""
        node = self.graph.nodes[name]
        prepared, parts, uncacheable = self._prepare(node)
        self.prepared[name] = prepared
        key = None if uncacheable else key_of(parts)
        self.states[name] = self.states[name].model_copy(
            update={
                "cache_key": key,
                "key_parts": parts,
                "inputs": {a: r.digest for a, r in prepared.refs.items()},
            }
        )
        reused = self._reusable(name, key)
        if reused is not None:
            return True
        if uncacheable:
            self.states[name].cache_reason = f"not cacheable: {uncacheable}"
            return False
        if not node.step.cache:
            self.states[name].cache_reason = "caching is off for this step (cache=False)"
            return False
        hit = self.client._call("find_cached_step", cache_key=key)
        if hit is not None:
            problem = self._check_outputs(hit.outputs)
            if problem is None:
                self._serve(name, hit, f"cache hit: same key as in run {hit.pipeline_run_id}")
                return True
            self.states[
                name
            ].cache_reason = (
                f"cache entry from run {hit.pipeline_run_id} is unusable ({problem}); running"
            )
            return False
        previous = self.client._call(
            "previous_step_run",
            pipeline=self.pipeline.pipeline_name,
            name=name,
            before=self.run_id,
        )
        self.states[name].cache_reason = miss_reason(
            parts, previous.key_parts if previous else None
        )
        return False

    def _reusable(self, name: str, key: str | None) -> StepRun | None:
        """On resume: the earlier run's step, if it succeeded with the same key."""
        if self.previous is None or key is None:
            return None
        before = self.previous.steps.get(name)
        if before is None or before.status != StepStatus.SUCCEEDED or before.cache_key != key:
            return None
        if self._check_outputs(before.outputs) is not None:
            return None
        self._serve(name, before, f"reused from run {self.previous.id} (resumed)")
        return before

    def _check_outputs(self, outputs: list[OutputRef]) -> str | None:
        for out in outputs:
            problem = self.artifacts.check(out.digest)
            if problem is not None:
                return f"output {out.name!r}: {problem}"
        return None

    def _serve(self, name: str, source: StepRun, reason: str) -> None:
        now = datetime.now(UTC)
        self.outputs[name] = list(source.outputs)
        self._set(
            name,
            status=StepStatus.SUCCEEDED,
            cached=True,
            cached_from=source.pipeline_run_id,
            cache_reason=reason,
            outputs=list(source.outputs),
            log_digest=source.log_digest,
            started_at=now,
            ended_at=now,
        )

    def _prepare(self, node: Node) -> tuple[_Prepared, dict[str, Any], str | None]:
        """The step's arguments and the parts of its cache key."""
        prepared = _Prepared()
        params: dict[str, Any] = {}
        for arg, value in node.inputs.items():
            if isinstance(value, Handle):
                index = node_outputs(self.graph, value)
                prepared.refs[arg] = self.outputs[value.node][index]
                if self.executor.in_memory and value.node in self.values:
                    prepared.values[arg] = self.values[value.node][index]
            elif isinstance(value, ExternalInput) or _is_json(value):
                prepared.constants[arg] = value
                if not isinstance(value, ExternalInput):
                    params[arg] = value
            else:  # a value JSON cannot hold (a DataFrame param): stored like an output
                prepared.refs[arg] = self._store_value(node.name, arg, value)
                if self.executor.in_memory:
                    prepared.values[arg] = value
        external: dict[str, str] = {}
        uncacheable = None
        for item in external_inputs(node.step, prepared.constants):
            try:
                external[item.label] = item.digest(self.client)
            except Uncacheable as exc:
                uncacheable = str(exc)
        parts = {
            "step": node.step.identity,
            "code": code_digest(node.step),
            "inputs": {a: r.digest for a, r in prepared.refs.items()},
            "params": params,
            "libraries": library_versions(node.step.libraries),
            "external": external,
        }
        return prepared, parts, uncacheable

    def _store_value(self, node: str, arg: str, value: Any) -> OutputRef:
        from heron._pipelines._step import Step
        from heron._pipelines._task import save_outputs

        holder = Step(lambda: None, outputs=[arg])
        with tempfile.TemporaryDirectory(prefix="heron-value-") as scratch:
            for_value(value, f"step {node!r} argument {arg!r}")
            return save_outputs(self.artifacts, holder, node, [value], Path(scratch))[0]

    # -- step state -----------------------------------------------------------------------

    def _start(self, name: str, running: dict[str, _Attempt], attempt: int) -> None:
        node = self.graph.nodes[name]
        prepared = self.prepared[name]
        first = self.states[name].started_at is None or attempt == 1
        self._set(
            name,
            status=StepStatus.RUNNING,
            attempts=attempt,
            error=None if attempt == 1 else self.states[name].error,
            started_at=datetime.now(UTC) if first else self.states[name].started_at,
        )
        task = StepTask(
            node=name,
            step=node.step,
            constants=prepared.constants,
            refs=prepared.refs,
            access=self.access,
            pipeline_run_id=self.run_id,
            run_id=self.tracking_id,
            attempt=attempt,
            values=prepared.values if self.executor.in_memory else {},
        )
        running[name] = _Attempt(self.executor.start(task), time.monotonic(), attempt)

    def _succeeded(self, name: str, result: TaskResult) -> None:
        self.outputs[name] = result.outputs or []
        if result.values is not None:
            self.values[name] = result.values
        self._set(
            name,
            status=StepStatus.SUCCEEDED,
            outputs=self.outputs[name],
            metrics=result.metrics,
            error=None,
            log_digest=self._store_log(result.log),
            ended_at=_time(result.ended_at),
        )

    def _attempt_failed(self, name: str, result: TaskResult, wait: float) -> None:
        attempts = self.states[name].attempts
        self._set(
            name,
            status=StepStatus.PENDING,
            error=f"attempt {attempts} failed ({result.error}); retrying in {wait:.2g}s",
            log_digest=self._store_log(result.log),
        )

    def _failed(self, name: str, result: TaskResult) -> None:
        self._set(
            name,
            status=StepStatus.FAILED,
            error=result.error,
            metrics=result.metrics,
            log_digest=self._store_log(result.log),
            ended_at=_time(result.ended_at or time.time()),
        )

    def _stop(self, running: dict[str, _Attempt], status: StepStatus, why: str) -> None:
        for name, attempt in list(running.items()):
            attempt.handle.kill()
            self._set(name, status=status, error=why, ended_at=datetime.now(UTC))
            del running[name]

    def _stop_all(self, status: StepStatus, why: str) -> None:
        for name, state in self.states.items():
            if state.status in (StepStatus.PENDING, StepStatus.RUNNING):
                self._set(name, status=status, error=why)

    def _set(self, name: str, **changes: Any) -> None:
        state = self.states[name].model_copy(update=changes)
        self.states[name] = state
        self.client._call("record_step_run", run_id=self.run_id, step=state)
        if self.view is not None:
            self.view.update(state)

    def _store_log(self, text: str) -> str | None:
        if not text:
            return None
        if isinstance(self.artifacts, LocalArtifacts):
            return self.artifacts.store.put_bytes(text.encode()).digest
        with tempfile.TemporaryDirectory(prefix="heron-log-") as scratch:
            path = Path(scratch) / "log.txt"
            path.write_text(text)
            return self.client.transport.put_blob(path)

    # -- the pipeline's output ------------------------------------------------------------

    def _result_refs(self, value: Any) -> Any:
        if isinstance(value, Handle):
            ref = self.outputs[value.node][node_outputs(self.graph, value)]
            return {"$step": value.node, **ref.model_dump()}
        if isinstance(value, list | tuple):
            return [self._result_refs(v) for v in value]
        if isinstance(value, dict):
            return {k: self._result_refs(v) for k, v in value.items()}
        return value

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, Handle):
            index = node_outputs(self.graph, value)
            if value.node in self.values:
                return self.values[value.node][index]
            with tempfile.TemporaryDirectory(prefix="heron-output-") as scratch:
                ref = self.outputs[value.node][index]
                return load_output(self.artifacts, ref, Path(scratch) / "out")
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._resolve(v) for v in value)
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        return value


def node_outputs(graph: Graph, handle: Handle) -> int:
    return graph.nodes[handle.node].step.output_names().index(handle.output)


def _access(client: Client) -> StoreAccess:
    """What a worker needs to reach the same stores, the caller's token included."""
    from heron._transport import HttpTransport

    settings = client.settings
    transport = client.transport
    if isinstance(transport, HttpTransport):
        auth = transport.http.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            settings = settings.with_(token=auth.removeprefix("Bearer "))
    return StoreAccess(settings, client.url)


def _parent_artifacts(client: Client) -> Artifacts:
    from heron._transport import EmbeddedTransport

    if isinstance(client.transport, EmbeddedTransport):
        return LocalArtifacts(client.transport.services.artifacts)
    return ClientArtifacts(client)


def _time(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, tz=UTC)


def _jsonable(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value, fallback=repr)
