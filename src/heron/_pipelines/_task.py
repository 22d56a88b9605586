"""One attempt of one step, wherever it runs: load inputs, call, store outputs, keep logs.

The same ``execute`` runs in the caller's thread (in-process executor), in a forked child
(local executor) and in a Ray worker; only artifact digests cross process boundaries, so
a step's inputs and outputs always go through the artifact store and are verified there.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron._errors import HeronError, IntegrityError, InvalidInput, NotFound
from heron._pipelines._entities import OutputRef
from heron._pipelines._materializers import by_name, for_value
from heron._pipelines._step import Step, StepContext, _current_step

if TYPE_CHECKING:
    from heron._artifacts import ArtifactStore
    from heron._client import Client
    from heron._settings import Settings


def dumps_by_value(obj: Any) -> bytes:
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - joblib ships a copy
        from joblib.externals import cloudpickle  # type: ignore[no-redef]
    return bytes(cloudpickle.dumps(obj))


# --- artifact access -----------------------------------------------------------------------


@dataclass(frozen=True)
class StoreAccess:
    """How a step reaches the stores; picklable, so workers can open their own."""

    settings: Settings
    url: str | None = None  # a Heron server, when the caller talks HTTP

    def client(self) -> Client:
        from heron._client import Client

        return Client(self.url, settings=self.settings)

    def artifacts(self) -> Artifacts:
        if self.url:
            return ClientArtifacts(self.client())
        from heron._artifacts import ArtifactStore

        return LocalArtifacts(
            ArtifactStore(
                self.settings.resolved_artifacts, encryption_key=self.settings.encryption_key
            )
        )


class Artifacts:
    """Folders in the artifact store, by digest."""

    def put_folder(self, folder: Path) -> str:
        raise NotImplementedError

    def get_folder(self, digest: str, dest: Path) -> Path:
        raise NotImplementedError

    def check(self, digest: str) -> str | None:
        """None when the folder is complete and every file matches its digest."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalArtifacts(Artifacts):
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    def put_folder(self, folder: Path) -> str:
        return self.store.put_folder(folder).digest

    def get_folder(self, digest: str, dest: Path) -> Path:
        return self.store.get_folder(digest, dest, verify=True)

    def check(self, digest: str) -> str | None:
        """Verify every file; a blob that fails its digest is removed, so that running the
        step again stores it anew (the store never overwrites a blob it has)."""
        blob = digest
        try:
            for entry in self.store.read_manifest(digest).files:
                blob = entry.digest
                with self.store.open(blob, verify=True) as reader:
                    while reader.read(1 << 20):
                        pass
        except IntegrityError as exc:
            with contextlib.suppress(NotFound):
                self.store.delete(blob)
            return exc.message
        except (NotFound, InvalidInput) as exc:
            return exc.message
        return None


class ClientArtifacts(Artifacts):
    """Over a client's transport (a Heron server): uploads skip content it already has."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def close(self) -> None:
        self.client.close()

    def put_folder(self, folder: Path) -> str:
        return self.client._put_folder(folder)

    def get_folder(self, digest: str, dest: Path) -> Path:
        return self.client._get_folder(digest, dest)

    def check(self, digest: str) -> str | None:
        # Verified where the blobs are: nothing is downloaded, and the server can repair.
        problem: str | None = self.client._call("check_output", digest=digest)
        return problem


# --- tasks ---------------------------------------------------------------------------------


@dataclass
class StepTask:
    node: str
    step: Step
    constants: dict[str, Any]  # argument -> plain value (or external input object)
    refs: dict[str, OutputRef]  # argument -> upstream output in the store
    access: StoreAccess
    pipeline_run_id: str
    run_id: str | None
    attempt: int = 1
    values: dict[str, Any] = field(default_factory=dict)  # in-process: upstream values
    keep_values: bool = False  # in-process: hand the values back as well


@dataclass
class TaskResult:
    outputs: list[OutputRef] | None = None
    values: list[Any] | None = None
    log: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    retryable: bool = True
    started_at: float = 0.0
    ended_at: float = 0.0


def execute(task: StepTask, capture: Callable[[], Any] | None = None) -> TaskResult:
    """Run one attempt; never raises: a failure is described in the result."""
    started = time.time()
    ctx = StepContext(
        name=task.node,
        pipeline_run_id=task.pipeline_run_id,
        run_id=task.run_id,
        attempt=task.attempt,
        client_factory=task.access.client,
    )
    log = io.StringIO()
    token = _current_step.set(ctx)
    artifacts = task.access.artifacts()
    try:
        with (
            (capture or _capture_sys)(log),
            tempfile.TemporaryDirectory(prefix="heron-step-") as scratch,
        ):
            kwargs = dict(task.constants)
            for arg, ref in task.refs.items():
                kwargs[arg] = (
                    task.values[arg]
                    if arg in task.values
                    else load_output(artifacts, ref, Path(scratch) / "in" / arg)
                )
            value = task.step.function(**kwargs)
            values = split_outputs(task.step, task.node, value)
            outputs = save_outputs(artifacts, task.step, task.node, values, Path(scratch))
        return TaskResult(
            outputs=outputs,
            values=values if task.keep_values else None,
            log=log.getvalue(),
            metrics=ctx.metrics,
            started_at=started,
            ended_at=time.time(),
        )
    except BaseException as exc:  # the step's own errors, KeyboardInterrupt included
        if isinstance(exc, KeyboardInterrupt | SystemExit) and capture is None:
            raise
        return TaskResult(
            log=log.getvalue() + traceback.format_exc(),
            error=describe_error(exc),
            retryable=not isinstance(exc, _OutputError),
            metrics=ctx.metrics,
            started_at=started,
            ended_at=time.time(),
        )
    finally:
        _current_step.reset(token)
        artifacts.close()
        if ctx._client is not None:
            ctx._client.close()


class _OutputError(InvalidInput):
    """An output no materializer can store: retrying cannot help."""


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, HeronError):
        return f"{type(exc).__name__}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def split_outputs(step: Step, node: str, value: Any) -> list[Any]:
    names = step.output_names()
    if len(names) == 1:
        return [value]
    if not isinstance(value, tuple | list) or len(value) != len(names):
        raise _OutputError(
            f"step {node!r} declares {len(names)} outputs {names} but returned "
            f"{type(value).__name__}",
            field=f"steps.{node}",
        )
    return list(value)


def save_outputs(
    artifacts: Artifacts, step: Step, node: str, values: list[Any], scratch: Path
) -> list[OutputRef]:
    refs = []
    for name, value in zip(step.output_names(), values, strict=True):
        where = f"step {node!r} output {name!r}"
        try:
            materializer = for_value(value, where)
        except InvalidInput as exc:
            raise _OutputError(exc.message, field=f"steps.{node}.{name}") from None
        folder = scratch / "out" / name
        folder.mkdir(parents=True)
        materializer.save(value, folder)
        digest = artifacts.put_folder(folder)
        refs.append(
            OutputRef(
                name=name,
                digest=digest,
                materializer=materializer.name,
                type=f"{type(value).__module__}.{type(value).__qualname__}",
            )
        )
    return refs


def load_output(artifacts: Artifacts, ref: OutputRef, scratch: Path) -> Any:
    folder = artifacts.get_folder(ref.digest, scratch)
    try:
        return by_name(ref.materializer).load(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- log capture ---------------------------------------------------------------------------


@contextlib.contextmanager
def _capture_sys(buffer: io.StringIO) -> Iterator[None]:
    """Python-level capture (in-process and Ray): sys.stdout, sys.stderr and logging."""
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield
    finally:
        root.removeHandler(handler)


@contextlib.contextmanager
def capture_fds(buffer: io.StringIO) -> Iterator[None]:
    """Descriptor-level capture (forked children): output of C code and subprocesses too."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(1), os.dup(2)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        # Fresh Python streams: the parent's may have been locked by another thread at fork.
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        try:
            with _capture_sys_logging(buffer):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            sink.seek(0)
            buffer.write(sink.read().decode("utf-8", "replace"))


@contextlib.contextmanager
def _capture_sys_logging(buffer: io.StringIO) -> Iterator[None]:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
