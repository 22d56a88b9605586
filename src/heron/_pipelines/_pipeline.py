"""Pipelines: a function that calls steps, and the graph (DAG) that call builds.

``@heron.pipeline`` builds a ``Pipeline``. Its parameters are the function's parameters;
they are typed by their annotations, so ``--param n=10`` from the CLI arrives as an int.
Running the function with steps being called records a ``Graph``: each call is a node,
its arguments are handles to upstream outputs, plain values (params) or external inputs.
A graph can also be given directly as nodes (``Pipeline.from_nodes``), which is where a
cycle or a reference to a missing node can come from; ``Graph.validate`` refuses both.
"""

from __future__ import annotations

import contextlib
import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from heron._errors import InvalidInput
from heron._pipelines._step import Step, current_builder


@dataclass(frozen=True)
class Handle:
    """An output of a node, as seen while the pipeline graph is being built."""

    node: str
    output: str = "output"

    def __iter__(self) -> Iterator[Any]:
        raise InvalidInput(
            f"the output of step {self.node!r} is a handle while the pipeline is built; "
            "declare several outputs (a tuple return annotation or outputs=) to unpack it"
        )

    def __bool__(self) -> bool:
        raise InvalidInput(
            f"the output of step {self.node!r} has no value while the pipeline is built: "
            "branch inside a step, not in the pipeline function"
        )


@dataclass
class Node:
    """One call of a step in a pipeline."""

    name: str
    step: Step
    inputs: dict[str, Any] = field(default_factory=dict)  # argument -> Handle or value

    def upstream(self) -> list[str]:
        seen: dict[str, None] = {}
        for value in self.inputs.values():
            for handle in _handles(value):
                seen[handle.node] = None
        return list(seen)


@dataclass
class Graph:
    """Nodes in the order they were added, and the pipeline's output (handles inside)."""

    nodes: dict[str, Node] = field(default_factory=dict)
    output: Any = None

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name = _unique(step.step_name, self.nodes)
        try:
            bound = step.signature().bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {name!r}: {exc}", field=f"steps.{name}") from exc
        self.nodes[name] = Node(name, step, dict(bound.arguments))
        outputs = step.output_names()
        if len(outputs) == 1:
            return Handle(name, outputs[0])
        return tuple(Handle(name, o) for o in outputs)

    def validate(self) -> list[str]:
        """Check every input and return the nodes in an order that runs upstream first."""
        for node in self.nodes.values():
            _check_inputs(node, self.nodes)
        for handle in _handles(self.output):
            _check_handle(handle, self.nodes, "the pipeline output")
        return _topological(self.nodes)


class Pipeline:
    """A named DAG of steps with typed parameters."""

    def __init__(self, fn: Callable[..., Any] | None = None, *, name: str | None = None) -> None:
        self.fn = fn
        self.name = name
        self._nodes: list[Node] | None = None
        self._output: Any = None
        if fn is not None:
            self.__doc__ = fn.__doc__
            self.__wrapped__ = fn

    @classmethod
    def from_nodes(cls, name: str, nodes: list[Node], output: Any = None) -> Pipeline:
        """A pipeline given as its graph: inputs refer to other nodes with ``Handle``."""
        pipeline = cls(None, name=name)
        pipeline._nodes = list(nodes)
        pipeline._output = output
        return pipeline

    @property
    def pipeline_name(self) -> str:
        return self.name or getattr(self.fn, "__name__", "pipeline")

    @property
    def target(self) -> str:
        """``module:attribute`` when the pipeline can be imported again (to resume)."""
        fn = self.fn
        if fn is None or fn.__module__ == "__main__" or "<locals>" in fn.__qualname__:
            return ""
        return f"{fn.__module__}:{fn.__qualname__}"

    def parameters(self) -> dict[str, inspect.Parameter]:
        if self.fn is None:
            return {}
        hints = _hints(self.fn)
        return {
            p.name: p.replace(annotation=hints.get(p.name, p.annotation))
            for p in inspect.signature(self.fn).parameters.values()
        }

    def resolve_params(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """Every parameter's value: given ones checked and coerced to their type, the rest
        from defaults. An unknown or missing parameter is an error naming it."""
        params = dict(params or {})
        declared = self.parameters()
        unknown = sorted(set(params) - set(declared))
        if unknown:
            known = ", ".join(declared) or "none"
            raise InvalidInput(
                f"pipeline {self.pipeline_name!r} has no parameter {unknown[0]!r} "
                f"(parameters: {known})",
                field=f"params.{unknown[0]}",
            )
        resolved = {}
        for name, p in declared.items():
            if name in params:
                resolved[name] = coerce_param(name, p.annotation, params[name])
            elif p.default is not inspect.Parameter.empty:
                resolved[name] = p.default
            else:
                raise InvalidInput(
                    f"pipeline {self.pipeline_name!r} needs parameter {name!r}",
                    field=f"params.{name}",
                )
        return resolved

    def build(self, params: dict[str, Any]) -> Graph:
        """Run the pipeline function with ``params``, recording each step call."""
        graph = Graph()
        if self.fn is None:
            graph.nodes = {n.name: n for n in self._nodes or []}
            graph.output = self._output
            return graph
        token = current_builder.set(graph)
        try:
            graph.output = self.fn(**params)
        finally:
            current_builder.reset(token)
        return graph

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Inside another pipeline: adds this one's steps. Elsewhere: runs it in-process."""
        builder = current_builder.get()
        if builder is not None and self.fn is not None:
            return self.fn(*args, **kwargs)
        from heron._pipelines._runner import run_pipeline

        if args:
            raise InvalidInput("pass pipeline parameters by name")
        return run_pipeline(self, params=kwargs).output

    def __repr__(self) -> str:
        return f"<Pipeline {self.pipeline_name}>"


def load_target(target: str) -> Pipeline:
    """``module:attribute`` (or ``path/to/file.py:attribute``) → the pipeline it names."""
    import importlib
    import importlib.util
    import sys
    from pathlib import Path

    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise InvalidInput(f"{target!r} is not module:pipeline", field="target")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path and "." not in sys.path:
                sys.path.insert(0, "")  # like python -m: the working directory's modules
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"cannot import {module_name!r}: {exc}", field="target") from exc
    found: Any = module
    for part in attr.split("."):
        found = getattr(found, part, None)
    if not isinstance(found, Pipeline):
        raise InvalidInput(f"{target!r} is not a pipeline (@heron.pipeline)", field="target")
    return found


def pipeline(fn: Any = None, /, *, name: str | None = None) -> Any:
    """Make a function a pipeline: ``@heron.pipeline`` or ``@heron.pipeline(name="...")``."""
    if fn is not None:
        return Pipeline(fn, name=name)
    return lambda f: Pipeline(f, name=name)


def coerce_param(name: str, annotation: Any, value: Any) -> Any:
    """A param value checked against its annotation; strings (from the CLI) are parsed."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return value
    from pydantic import TypeAdapter, ValidationError

    adapter = TypeAdapter(annotation)
    if isinstance(value, str) and annotation is not str:
        import json

        try:
            return adapter.validate_python(value)
        except ValidationError:
            with contextlib.suppress(ValueError):
                value = json.loads(value)
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"] if exc.errors() else str(exc)
        raise InvalidInput(
            f"parameter {name!r} must be {_type_name(annotation)}: {problem} (got {value!r})",
            field=f"params.{name}",
        ) from None


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # annotations that do not resolve are left as written
        return {}


def _unique(name: str, taken: dict[str, Node]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name}_{n}" in taken:
        n += 1
    return f"{name}_{n}"


def _handles(value: Any) -> Iterator[Handle]:
    if isinstance(value, Handle):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _handles(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _handles(item)


def _check_handle(handle: Handle, nodes: dict[str, Node], where: str) -> None:
    node = nodes.get(handle.node)
    if node is None:
        raise InvalidInput(
            f"{where} uses the output of step {handle.node!r}, which is not in the pipeline",
            field=f"steps.{handle.node}",
        )
    if handle.output not in node.step.output_names():
        raise InvalidInput(
            f"{where} uses output {handle.output!r} of step {handle.node!r}, which has "
            f"outputs {node.step.output_names()}",
            field=f"steps.{handle.node}",
        )


def _check_inputs(node: Node, nodes: dict[str, Node]) -> None:
    params = node.step.signature().parameters
    for arg, value in node.inputs.items():
        if arg not in params:
            raise InvalidInput(
                f"step {node.name!r} has no argument {arg!r}", field=f"steps.{node.name}.{arg}"
            )
        for handle in _handles(value):
            if not isinstance(value, Handle):
                raise InvalidInput(
                    f"step {node.name!r} argument {arg!r} nests a step output in a "
                    "collection; pass each output as its own argument",
                    field=f"steps.{node.name}.{arg}",
                )
            _check_handle(handle, nodes, f"step {node.name!r} argument {arg!r}")
    for arg, p in params.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if arg not in node.inputs and p.default is inspect.Parameter.empty:
            raise InvalidInput(
                f"step {node.name!r} is missing input {arg!r}", field=f"steps.{node.name}.{arg}"
            )


def _topological(nodes: dict[str, Node]) -> list[str]:
    """Kahn's algorithm in insertion order; what is left over sits on a cycle."""
    upstream = {name: set(node.upstream()) for name, node in nodes.items()}
    order: list[str] = []
    ready = [name for name, ups in upstream.items() if not ups]
    while ready:
        name = ready.pop(0)
        order.append(name)
        for other, ups in upstream.items():
            if name in ups:
                ups.discard(name)
                if not ups and other not in order and other not in ready:
                    ready.append(other)
    if len(order) < len(nodes):
        stuck = [n for n in nodes if n not in order]
        raise InvalidInput(
            f"the pipeline has a cycle: {' → '.join(map(repr, _cycle(stuck, nodes)))}",
            field="steps",
        )
    return order


def _cycle(stuck: list[str], nodes: dict[str, Node]) -> list[str]:
    """One cycle among the stuck nodes in data-flow order, from the earliest declared."""
    path: list[str] = []
    current = stuck[0]
    while current not in path:
        path.append(current)
        current = next(u for u in nodes[current].upstream() if u in stuck)
    flow = list(reversed(path[path.index(current) :]))
    order = list(nodes)
    first = min(range(len(flow)), key=lambda i: order.index(flow[i]))
    flow = flow[first:] + flow[:first]
    return [*flow, flow[0]]
