"""Cache keys, and the reason a step was or was not served from the cache.

A key is the SHA-256 of its parts::

    step       the step's identity (module:qualname)
    code       digest of the step's source and the source of the project functions and
               classes it refers to, followed transitively (libraries are left out: their
               versions are what ``libraries`` records)
    inputs     {argument: artifact digest} of upstream outputs and stored values
    params     {argument: value} of plain (JSON) arguments
    libraries  {distribution: installed version} of declared libraries, and Heron's own
    external   {label: digest} of external inputs

The parts are stored with each step run, so a miss can say which part changed since the
last run of the same step of the same pipeline.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import sys
import sysconfig
import types
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from heron._pipelines._step import Step


def key_of(parts: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(parts).encode()).hexdigest()


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def library_versions(names: tuple[str, ...]) -> dict[str, str]:
    return {name: installed_version(name) for name in (*names, "heron")}


@functools.cache
def installed_version(name: str) -> str:
    """Read once per process: what is imported cannot change version under a running run."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


# --- code digest ---------------------------------------------------------------------------


def code_digest(step: Step) -> str:
    return _code_digest(step.code_object)


@functools.lru_cache(maxsize=1024)
def _code_digest(obj: Any) -> str:
    sha = hashlib.sha256()
    for name, source in _sources(obj):
        sha.update(f"{name}\n{source}\n".encode())
    return sha.hexdigest()


def _sources(root: Any) -> Iterator[tuple[str, str]]:
    """The root's source, then the sources of project code it refers to, depth first."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield f"{obj.__module__}:{obj.__qualname__}", _source(obj)
        stack.extend(reversed(list(_referenced(obj))))


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        # No source file (defined at a prompt): the compiled code stands in for it.
        code = getattr(obj, "__code__", None)
        if code is None:
            return repr(sorted(vars(obj)))
        return repr(_code_fingerprint(code))


def _code_fingerprint(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(
        _code_fingerprint(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts
    )
    return (code.co_code, consts, code.co_names)


def _referenced(obj: Any) -> Iterator[Any]:
    """Project functions and classes that ``obj``'s code names in its module's globals."""
    for fn, names in _functions_and_names(obj):
        module_globals = getattr(fn, "__globals__", {})
        for name in names:
            value = module_globals.get(name)
            if isinstance(value, types.ModuleType):
                if _is_project_module(value):
                    for attr in names:
                        found = getattr(value, attr, None)
                        if _is_project_code(found):
                            yield _unwrap(found)
                continue
            if _is_project_code(value):
                yield _unwrap(value)


def _functions_and_names(obj: Any) -> Iterator[tuple[Any, set[str]]]:
    if isinstance(obj, type):
        for member in vars(obj).values():
            fn = getattr(member, "__func__", member)
            if isinstance(fn, types.FunctionType):
                yield fn, _names(fn.__code__)
    elif isinstance(obj, types.FunctionType):
        yield obj, _names(obj.__code__)


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _unwrap(value: Any) -> Any:
    if isinstance(value, Step):
        return value.code_object
    return value


def _is_project_code(value: Any) -> bool:
    if isinstance(value, Step):
        return True
    if not isinstance(value, types.FunctionType | type):
        return False
    module = sys.modules.get(getattr(value, "__module__", "") or "")
    return module is not None and _is_project_module(module)


@functools.cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {p for p in sys.path if "site-packages" in p or "dist-packages" in p}
    return tuple(str(Path(r).resolve()) for r in roots)


def _is_project_module(module: types.ModuleType) -> bool:
    """The user's code: not the standard library, not installed packages, not Heron."""
    name = module.__name__
    if name == "heron" or name.startswith("heron.") or name in sys.builtin_module_names:
        return False
    file = getattr(module, "__file__", None)
    if file is None:
        return name == "__main__"
    resolved = str(Path(file).resolve())
    return not resolved.startswith(_library_roots())


# --- why -----------------------------------------------------------------------------------


def miss_reason(parts: dict[str, Any], previous: dict[str, Any] | None) -> str:
    """Which part of the key changed since the step's previous run."""
    if not previous:
        return "first run of this step"
    changes = []
    if parts.get("step") != previous.get("step"):
        changes.append("the step's function changed")
    if parts.get("code") != previous.get("code"):
        changes.append("code changed")
    changes += _dict_changes("input", parts.get("inputs", {}), previous.get("inputs", {}), True)
    changes += _dict_changes("param", parts.get("params", {}), previous.get("params", {}))
    changes += _dict_changes("library", parts.get("libraries", {}), previous.get("libraries", {}))
    changes += _dict_changes(
        "external input", parts.get("external", {}), previous.get("external", {}), True
    )
    if not changes:
        return "same key as the previous run, which did not succeed"
    return "; ".join(changes)


def _dict_changes(
    what: str, now: dict[str, Any], before: dict[str, Any], digests: bool = False
) -> list[str]:
    out = []
    for key in sorted(set(now) | set(before)):
        if key not in before:
            out.append(f"{what} {key!r} added")
        elif key not in now:
            out.append(f"{what} {key!r} removed")
        elif now[key] != before[key]:
            if digests:
                out.append(f"{what} {key!r} changed ({_short(before[key])} → {_short(now[key])})")
            else:
                out.append(f"{what} {key!r} changed: {_short(before[key])} → {_short(now[key])}")
    return out


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else canonical(value)
    if isinstance(value, str) and len(value) == 64:
        return value[:10]
    return text if len(text) <= 40 else text[:37] + "..."
