"""Fuzzing the REST API with schemathesis: every operation of the server's OpenAPI, with an
admin token, valid and invalid inputs. No 5xx, and no response that breaks its documented
schema. Bounded (a few examples per operation) so it runs in CI in well under 2 minutes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, openapi
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from heron._server import create_app
from heron._services import Services
from heron._settings import Settings
from heron.testing import admin_token, heron_settings, serve_in_thread

EXAMPLES = 6


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str, str]]:
    settings: Settings = heron_settings(Path(tmp_path_factory.mktemp("fuzz")))
    services = Services(settings)
    # Something to find, so lookups also hit the found paths.
    source = services.artifacts.put_bytes(b"model").digest
    services.registry.create_model_version("m", source=source, flavor="python")
    services.tracking.create_run("e")
    token = admin_token(services)
    app = create_app(services)
    try:
        with serve_in_thread(app) as url:
            yield app, url, token
    finally:
        services.close()


def operations(app: Any) -> list[Any]:
    schema = openapi.from_dict(app.openapi())
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_and_responses_match_the_schema(
    served: tuple[Any, str, str], mode: GenerationMode
) -> None:
    app, url, token = served
    failures: dict[str, str] = {}
    ops = operations(app)
    assert len(ops) > 40
    for operation in ops:
        try:
            _fuzz(operation, mode, url, token)
        except Unsatisfiable:  # nothing to make invalid (e.g. only free-text path params)
            continue
        except Exception as exc:  # collect every operation's failure, not just the first
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def _fuzz(operation: Any, mode: GenerationMode, url: str, token: str) -> None:
    headers = {"authorization": f"Bearer {token}"}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        response = case.call(base_url=url, headers=headers, timeout=30)
        checks = [not_a_server_error]
        if mode == GenerationMode.POSITIVE:
            checks.append(response_schema_conformance)
        case.validate_response(response, checks=checks)

    check()
