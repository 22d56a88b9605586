"""Executors: where step attempts run.

An executor is two methods and a handle::

    class Executor:
        parallelism: int                       # how many steps may run at once
        def start(self, task) -> TaskHandle    # begin one attempt
        def wait(self, handles, timeout)       # return when one is done, or at the timeout
    class TaskHandle:
        def result(self) -> TaskResult | None  # None while running
        def kill(self) -> None                 # stop it (timeout, cancel)

- ``InProcessExecutor``: the caller's process, one step at a time, for debugging (a
  breakpoint in a step just works). A step with a timeout runs in a thread; one that
  times out is abandoned, as a thread cannot be killed: use the local executor for steps
  that may hang.
- ``LocalExecutor``: a forked child process per attempt (cheap: the parent's imports are
  shared copy-on-write), up to ``max_workers`` at once (default: the CPU count), so
  independent branches run in parallel; a timed-out or cancelled step is killed.
- ``RayExecutor``: a Ray task per attempt with the step's ``cpus`` and ``memory``, on a
  local cluster (started on first use) or ``address``.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import threading
from typing import Any

from heron._errors import InvalidInput
from heron._pipelines._task import StepTask, TaskResult, capture_fds, execute


class TaskHandle:
    def result(self) -> TaskResult | None:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError


class Executor:
    name = ""
    parallelism = 1
    in_memory = False  # whether upstream values can be handed over without the store

    def start(self, task: StepTask) -> TaskHandle:
        raise NotImplementedError

    def wait(self, handles: list[TaskHandle], timeout: float) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


# --- in-process ----------------------------------------------------------------------------


class _Done(TaskHandle):
    def __init__(self, result: TaskResult) -> None:
        self._result = result

    def result(self) -> TaskResult | None:
        return self._result

    def kill(self) -> None:
        pass


class _Thread(TaskHandle):
    def __init__(self, task: StepTask) -> None:
        self._result: TaskResult | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(task,), daemon=True)
        self.thread.start()

    def _run(self, task: StepTask) -> None:
        self._result = execute(task)
        self.done.set()

    def result(self) -> TaskResult | None:
        return self._result if self.done.is_set() else None

    def kill(self) -> None:
        pass  # a thread cannot be stopped; it is abandoned (documented above)


class InProcessExecutor(Executor):
    name = "inprocess"
    in_memory = True

    def start(self, task: StepTask) -> TaskHandle:
        task.keep_values = True
        if task.step.timeout is None:
            return _Done(execute(task))
        return _Thread(task)

    def wait(self, handles: list[TaskHandle], timeout: float) -> None:
        threads = [h for h in handles if isinstance(h, _Thread)]
        if threads and not any(h.result() for h in handles):
            threads[0].done.wait(timeout)


# --- local processes -----------------------------------------------------------------------


class _Child(TaskHandle):
    def __init__(self, task: StepTask, context: Any) -> None:
        reader, writer = context.Pipe(duplex=False)
        self.conn = reader
        self.process = context.Process(target=_child_main, args=(writer, task), daemon=True)
        self.process.start()
        writer.close()
        self._result: TaskResult | None = None

    def result(self) -> TaskResult | None:
        if self._result is None:
            if self.conn.poll():
                try:
                    self._result = pickle.loads(self.conn.recv_bytes())
                except (EOFError, OSError):
                    self._result = self._died()
                self.process.join(timeout=5)
            elif not self.process.is_alive():
                self._result = self._died()
        return self._result

    def _died(self) -> TaskResult:
        self.process.join(timeout=5)
        return TaskResult(
            error=f"the step's process ended without a result (exit code {self.process.exitcode})"
        )

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


def _child_main(writer: Any, task: StepTask) -> None:
    try:
        result = execute(task, capture=capture_fds)
        try:
            payload = pickle.dumps(result)
        except Exception as exc:  # an unpicklable metric or log: report, do not hang
            payload = pickle.dumps(TaskResult(error=f"cannot send the step's result: {exc}"))
        writer.send_bytes(payload)
    finally:
        writer.close()
        os._exit(0)  # no atexit handlers or finalizers of the parent's objects


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        self.parallelism = max_workers or os.cpu_count() or 1
        # fork: the child has the caller's imports and definitions (also in __main__).
        self._context = multiprocessing.get_context("fork")

    def start(self, task: StepTask) -> TaskHandle:
        return _Child(task, self._context)

    def wait(self, handles: list[TaskHandle], timeout: float) -> None:
        from multiprocessing.connection import wait

        waitables: list[Any] = []
        for h in handles:
            if isinstance(h, _Child) and h._result is None:
                waitables += [h.conn, h.process.sentinel]
        if waitables:
            wait(waitables, timeout)


# --- Ray -----------------------------------------------------------------------------------


class _RayTask(TaskHandle):
    def __init__(self, ref: Any) -> None:
        self.ref = ref
        self._result: TaskResult | None = None

    def result(self) -> TaskResult | None:
        import ray

        if self._result is None:
            ready, _ = ray.wait([self.ref], timeout=0)
            if ready:
                try:
                    self._result = pickle.loads(ray.get(self.ref))
                except Exception as exc:  # the worker died or the task was cancelled
                    self._result = TaskResult(error=f"Ray task failed: {exc}")
        return self._result

    def kill(self) -> None:
        import ray

        ray.cancel(self.ref, force=True)


def _ray_main(payload: bytes, sys_path: list[str]) -> bytes:
    import sys

    for entry in sys_path:  # so steps in the caller's modules import by reference
        if entry not in sys.path:
            sys.path.append(entry)
    task = pickle.loads(payload)
    return pickle.dumps(execute(task, capture=_ray_capture))


def _ray_capture(buffer: io.StringIO) -> Any:
    from heron._pipelines._task import _capture_sys

    return _capture_sys(buffer)


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self._remote: Any = None

    @property
    def parallelism(self) -> int:  # type: ignore[override]
        import ray

        self._ensure()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def _ensure(self) -> Any:
        try:
            import ray
        except ImportError as exc:
            raise InvalidInput(
                "the ray executor needs Ray: pip install 'heron[ray]'", field="executor"
            ) from exc
        if not ray.is_initialized():
            ray.init(
                address=self.address,
                num_cpus=None if self.address else self.num_cpus,
                include_dashboard=False,
                logging_level="warning",
                log_to_driver=False,
            )
        if self._remote is None:
            self._remote = ray.remote(max_retries=0)(_ray_main)
        return ray

    def start(self, task: StepTask) -> TaskHandle:
        import sys

        self._ensure()
        options: dict[str, Any] = {"num_cpus": task.step.cpus or 1}
        if task.step.memory:
            options["memory"] = task.step.memory
        ref = self._remote.options(**options).remote(pickle.dumps(task), list(sys.path))
        return _RayTask(ref)

    def wait(self, handles: list[TaskHandle], timeout: float) -> None:
        import ray

        refs = [h.ref for h in handles if isinstance(h, _RayTask) and h._result is None]
        if refs:
            ray.wait(refs, num_returns=1, timeout=timeout)


EXECUTORS = {"inprocess": InProcessExecutor, "local": LocalExecutor, "ray": RayExecutor}


def make_executor(executor: str | Executor, **options: Any) -> Executor:
    if isinstance(executor, Executor):
        return executor
    cls = EXECUTORS.get(executor)
    if cls is None:
        raise InvalidInput(
            f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}", field="executor"
        )
    return cls(**{k: v for k, v in options.items() if v is not None})
