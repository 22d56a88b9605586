"""The public namespace: exactly these names, each resolvable, and a light ``import heron``.

A new public name is a promise kept for a deprecation cycle: adding one means adding it
here, on purpose.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import heron

PUBLIC_NAMES = [
    "ActiveRun",
    "AliasChange",
    "AlreadyExists",
    "ArtifactEntry",
    "AuditEvent",
    "Client",
    "ColumnSchema",
    "Conflict",
    "Dataset",
    "DatasetRef",
    "DatasetVersion",
    "Experiment",
    "File",
    "Folder",
    "HeronError",
    "IntegrityError",
    "InvalidInput",
    "Lineage",
    "Materializer",
    "MetricBatch",
    "MetricPoint",
    "ModelCardFields",
    "ModelVersion",
    "ModelVersionStatus",
    "NotFound",
    "Page",
    "PermissionDenied",
    "Pipeline",
    "PipelineRun",
    "RegisteredModel",
    "Run",
    "RunStatus",
    "Settings",
    "Step",
    "StepRun",
    "Unauthenticated",
    "Unavailable",
    "Url",
    "__version__",
    "active_run",
    "current_step",
    "get_client",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "pipeline",
    "register_materializer",
    "run_pipeline",
    "search_runs",
    "set_alias",
    "set_client",
    "set_tag",
    "start_run",
    "step",
]


def test_public_names_are_pinned() -> None:
    assert sorted(heron.__all__) == PUBLIC_NAMES
    assert heron.__all__ == sorted(heron.__all__), "keep __all__ sorted"
    assert len(set(heron.__all__)) == len(heron.__all__)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_public_name_resolves(name: str) -> None:
    value = getattr(heron, name)
    assert value is not None
    if name != "__version__":
        # Defined in a private module and re-exported, never a module itself.
        assert not isinstance(value, type(heron))
        assert getattr(value, "__module__", "heron").startswith("heron")


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from heron import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == PUBLIC_NAMES


def test_errors_are_heron_errors() -> None:
    errors = [getattr(heron, n) for n in PUBLIC_NAMES if n[0].isupper()]
    errors = [e for e in errors if isinstance(e, type) and issubclass(e, Exception)]
    assert {e.__name__ for e in errors} == {
        "AlreadyExists",
        "Conflict",
        "HeronError",
        "IntegrityError",
        "InvalidInput",
        "NotFound",
        "PermissionDenied",
        "Unauthenticated",
        "Unavailable",
    }
    assert all(issubclass(e, heron.HeronError) for e in errors)


HEAVY = ["pandas", "sklearn", "fastapi", "uvicorn", "starlette", "pyarrow", "scipy"]


def test_import_heron_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, json, heron\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout) == []
