"""The module-level API (``heron.start_run``, ``heron.log_metric``, ...).

It holds one explicit default client and the stack of runs started through it, nothing
else; ``set_client`` replaces the default (tests do this to isolate themselves).
"""

from __future__ import annotations

from typing import Any

from heron._client import Client
from heron._entities import DatasetVersion, ModelVersion
from heron._errors import InvalidInput
from heron._run import ActiveRun

_client: Client | None = None
_active: list[ActiveRun] = []


def get_client() -> Client:
    """The default client, made from ``HERON_*`` settings on first use."""
    global _client
    if _client is None:
        _client = Client()
    return _client


def set_client(client: Client | None) -> None:
    global _client
    if _client is not None and _client is not client:
        _client.close()
    _client = client
    _active.clear()


class _FluentRun(ActiveRun):
    def __exit__(self, *exc: Any) -> None:
        try:
            super().__exit__(*exc)
        finally:
            if self in _active:
                _active.remove(self)


def start_run(
    experiment: str = "default", name: str | None = None, tags: dict[str, str] | None = None
) -> ActiveRun:
    """Start a run on the default client; ``with heron.start_run(...) as run:``."""
    plain = get_client().start_run(experiment, name=name, tags=tags)
    run = _FluentRun(plain.client, plain._run)
    _active.append(run)
    return run


def active_run() -> ActiveRun | None:
    return _active[-1] if _active else None


def _require_run() -> ActiveRun:
    run = active_run()
    if run is None:
        raise InvalidInput("no active run: use `with heron.start_run(...)` first", field="run")
    return run


def log_param(key: str, value: Any) -> None:
    _require_run().log_param(key, value)


def log_params(params: dict[str, Any]) -> None:
    _require_run().log_params(params)


def log_metric(key: str, value: float, step: int = 0) -> None:
    _require_run().log_metric(key, value, step)


def log_metrics(metrics: dict[str, float], step: int = 0) -> None:
    _require_run().log_metrics(metrics, step)


def set_tag(key: str, value: Any) -> None:
    _require_run().set_tag(key, value)


def log_artifact(local_path: str, path: str | None = None) -> Any:
    return _require_run().log_artifact(local_path, path)


def log_dataset(data: Any, name: str) -> DatasetVersion:
    """Register a dataset version; inside a run, the run records it as an input."""
    run = active_run()
    return get_client().log_dataset(data, name=name, run_id=run.id if run else None)


def log_model(model: Any, name: str, **kwargs: Any) -> ModelVersion:
    run = active_run()
    if run is not None:
        return run.log_model(model, name, **kwargs)
    return get_client().log_model(model, name, **kwargs)


def set_alias(name: str, alias: str, version: int) -> ModelVersion:
    return get_client().set_alias(name, alias, version)


def load_model(uri: str) -> Any:
    return get_client().load_model(uri)


def search_runs(filter: str = "", **kwargs: Any) -> Any:
    return get_client().search_runs(filter, **kwargs)
