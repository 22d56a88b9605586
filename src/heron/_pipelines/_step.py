"""Steps: a function with typed inputs and outputs, and how it runs.

``@heron.step`` builds a ``Step``; a ``Step`` can also be built directly
(``Step(fn, retries=2)``) or subclassed with a ``run`` method::

    class Scale(heron.Step):
        def run(self, xs: list[int], factor: int = 2) -> list[int]:
            return [x * factor for x in xs]

Called inside a ``@heron.pipeline`` function a step returns output handles (the graph is
being built); called anywhere else it simply calls the function.
"""

from __future__ import annotations

import contextvars
import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from heron._client import Client
    from heron._pipelines._external import ExternalInput

F = TypeVar("F", bound=Callable[..., Any])

# The pipeline graph being built by the pipeline function running now, if any.
current_builder: contextvars.ContextVar[Any] = contextvars.ContextVar("heron_builder", default=None)
_current_step: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "heron_step", default=None
)


class Step:
    """A unit of work in a pipeline.

    - ``cache``: reuse stored outputs when code, inputs, params and libraries are unchanged
    - ``retries`` and ``retry_backoff``: attempts after a failure, waiting
      ``retry_backoff * 2**n`` seconds before the n-th retry
    - ``timeout``: seconds an attempt may take before it is stopped and counts as failed
    - ``cpus``, ``memory`` (bytes): resources asked of Ray for this step
    - ``libraries``: distribution names whose installed versions join the cache key
    - ``external``: external inputs (``File``, ``Folder``, ``Url``, ...) whose digests join
      the cache key, or a function of the step's arguments returning them
    - ``outputs``: names of the outputs when the step returns a tuple of several
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        cache: bool = True,
        retries: int = 0,
        retry_backoff: float = 1.0,
        timeout: float | None = None,
        cpus: float | None = None,
        memory: int | None = None,
        libraries: Sequence[str] = (),
        external: Sequence[ExternalInput] | Callable[[dict[str, Any]], Any] = (),
        outputs: Sequence[str] | None = None,
    ) -> None:
        self.fn = fn
        self.name = name
        self.cache = cache
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.timeout = timeout
        self.cpus = cpus
        self.memory = memory
        self.libraries = tuple(libraries)
        self.external = external
        self.outputs = tuple(outputs) if outputs is not None else None
        if fn is not None:
            self.__doc__ = fn.__doc__
            self.__wrapped__ = fn

    # -- what the step is --------------------------------------------------------------

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """The work; subclasses override this instead of passing a function."""
        if self.fn is None:
            raise NotImplementedError(f"{type(self).__name__} has no function and no run()")
        return self.fn(*args, **kwargs)

    @property
    def function(self) -> Callable[..., Any]:
        return self.fn if self.fn is not None else self.run

    @property
    def code_object(self) -> Any:
        """What the code digest is taken of: the function, or the subclass."""
        return self.fn if self.fn is not None else type(self)

    @property
    def step_name(self) -> str:
        return self.name or getattr(self.code_object, "__name__", type(self).__name__)

    @property
    def identity(self) -> str:
        obj = self.code_object
        return f"{obj.__module__}:{obj.__qualname__}"

    def signature(self) -> inspect.Signature:
        return inspect.signature(self.function)

    def output_names(self) -> list[str]:
        if self.outputs is not None:
            return list(self.outputs)
        try:
            hints = typing.get_type_hints(self.function)
        except Exception:  # unresolvable annotations: one output
            hints = {}
        returns = hints.get("return")
        if typing.get_origin(returns) is tuple:
            args = typing.get_args(returns)
            if args and args[-1] is not Ellipsis:
                return [f"output_{i}" for i in range(len(args))]
        return ["output"]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = current_builder.get()
        if builder is None:
            return self.function(*args, **kwargs)
        return builder.add(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<Step {self.step_name}>"

    # -- shipping to other processes ---------------------------------------------------

    def __reduce__(self) -> Any:
        """Module-level steps travel by reference; others (``__main__``, closures) by value."""
        obj = self.code_object
        module, qualname = obj.__module__, obj.__qualname__
        if module != "__main__" and "<locals>" not in qualname and _resolves_to(self):
            return (_import_step, (module, qualname))
        from heron._pipelines._task import dumps_by_value

        return (_loads_step, (dumps_by_value((type(self), self.__dict__)),))


def _resolves_to(step: Step) -> bool:
    import importlib

    obj = step.code_object
    try:
        found: Any = importlib.import_module(obj.__module__)
        for part in obj.__qualname__.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return False
    return found is step or (step.fn is None and found is type(step))


def _import_step(module: str, qualname: str) -> Step:
    import importlib

    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found if isinstance(found, Step) else found()


def _loads_step(payload: bytes) -> Step:
    import pickle

    cls, state = pickle.loads(payload)
    step = object.__new__(cls)
    step.__dict__.update(state)
    return step


@overload
def step(fn: F, /) -> Step: ...
@overload
def step(
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_backoff: float = 1.0,
    timeout: float | None = None,
    cpus: float | None = None,
    memory: int | None = None,
    libraries: Sequence[str] = (),
    external: Any = (),
    outputs: Sequence[str] | None = None,
    cls: type[Step] = Step,
) -> Callable[[F], Step]: ...
def step(fn: Any = None, /, *, cls: type[Step] = Step, **options: Any) -> Any:
    """Make a function a pipeline step: ``@heron.step`` or ``@heron.step(retries=2)``."""
    if fn is not None:
        return cls(fn, **options)
    return lambda f: cls(f, **options)


# --- the step context ---------------------------------------------------------------------


@dataclass
class StepContext:
    """What a running step can know and record: ``heron.current_step()`` inside a step."""

    name: str
    pipeline_run_id: str
    run_id: str | None  # the tracking run of the pipeline run
    attempt: int
    client_factory: Callable[[], Client] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    _client: Client | None = None

    def log_metric(self, key: str, value: float) -> None:
        """A metric of this step, logged to the pipeline's tracking run when the step ends."""
        self.metrics[key] = float(value)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value)

    @property
    def client(self) -> Client:
        """A client on the same store as the pipeline run (to register models, ...)."""
        if self._client is None:
            if self.client_factory is None:
                from heron._fluent import get_client

                self._client = get_client()
            else:
                self._client = self.client_factory()
        return self._client


def current_step() -> StepContext:
    """The context of the step running now; an error outside a step."""
    ctx = _current_step.get()
    if ctx is None:
        from heron._errors import InvalidInput

        raise InvalidInput("heron.current_step() is only available inside a running step")
    return ctx
