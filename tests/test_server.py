"""The REST server: JSON errors for every kind of bad request, the OpenAPI contract,
streamed artifact bytes, and a real ``heron server`` process."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import heron
from heron._api import API_PREFIX, OPERATIONS
from heron._server import create_app
from heron._services import Services
from heron._settings import Settings
from heron.testing import admin_token, http_client, serve_in_thread

MISSING_DIGEST = "0" * 64


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    """Raw HTTP against a real server (uvicorn in a thread) with one model and experiment."""
    services = Services(settings)
    try:
        registry = services.registry
        source = services.artifacts.put_bytes(b"a model folder stand-in").digest
        registry.create_model_version("clf", source=source, flavor="python")
        registry.create_model_version("clf", source=source, flavor="python")
        registry.set_alias("clf", "champion", 1)
        services.tracking.create_experiment("exp")
        auth = {"authorization": f"Bearer {admin_token(services)}"}
        with (
            serve_in_thread(create_app(services)) as url,
            httpx.Client(base_url=url + API_PREFIX, headers=auth) as http,
        ):
            yield http
    finally:
        services.close()


def assert_error(response: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == code
    assert body["error"]["field"] == field
    assert body["error"]["message"]
    assert "Traceback" not in response.text


NOT_FOUND = (404, "not_found")
INVALID = (422, "invalid_input")
JSON_TYPE = {"content-type": "application/json"}

# id: (method, path, request kwargs, status, code, field)
BAD_REQUESTS: dict[str, tuple[str, str, dict[str, Any], int, str, str | None]] = {
    "unknown-experiment": ("GET", "/experiments/nope", {}, *NOT_FOUND, "experiment"),
    "unknown-model": ("GET", "/models/nope", {}, *NOT_FOUND, "name"),
    "unknown-version": ("GET", "/models/clf/versions/9", {}, *NOT_FOUND, "version"),
    "unknown-alias": ("GET", "/models/clf/aliases/nope", {}, *NOT_FOUND, "alias"),
    "unknown-run": ("GET", "/runs/" + "0" * 32, {}, *NOT_FOUND, "run_id"),
    "unknown-blob": ("GET", f"/blobs/{MISSING_DIGEST}", {}, *NOT_FOUND, None),
    "version-not-int": ("GET", "/models/clf/versions/abc", {}, *INVALID, "version"),
    "version-float": ("GET", "/models/clf/versions/1.5", {}, *INVALID, "version"),
    "digest-malformed": ("GET", "/blobs/not-a-digest", {}, *INVALID, "digest"),
    "max-results-not-int": (
        "GET", "/experiments", {"params": {"max_results": "many"}}, *INVALID, "max_results"
    ),
    "max-results-zero": (
        "GET", "/experiments", {"params": {"max_results": 0}}, *INVALID, "max_results"
    ),
    "page-token-junk": (
        "GET", "/experiments", {"params": {"page_token": "%%%"}}, *INVALID, "page_token"
    ),
    "body-missing-field": ("POST", "/experiments", {"json": {}}, *INVALID, "name"),
    "body-wrong-type": ("POST", "/experiments", {"json": {"name": 7}}, *INVALID, "name"),
    "body-not-object": ("POST", "/experiments", {"json": ["name"]}, *INVALID, None),
    "body-not-json": (
        "POST", "/experiments", {"content": b"{not json", "headers": JSON_TYPE}, *INVALID, None
    ),
    "name-traversal": ("POST", "/experiments", {"json": {"name": "../etc"}}, *INVALID, "name"),
    "name-slash": ("POST", "/experiments", {"json": {"name": "a/b"}}, *INVALID, "name"),
    "name-control-char": ("POST", "/experiments", {"json": {"name": "bell\x07"}}, *INVALID, "name"),
    "name-too-long": ("POST", "/experiments", {"json": {"name": "x" * 201}}, *INVALID, "name"),
    "duplicate-experiment": (
        "POST", "/experiments", {"json": {"name": "exp"}}, 409, "already_exists", "name"
    ),
    "filter-truncated": (
        "POST", "/runs/search", {"json": {"filter": "metrics.acc >"}}, *INVALID, "filter"
    ),
    "filter-bad-operator": (
        "POST", "/runs/search", {"json": {"filter": "metrics.acc ~ 1"}}, *INVALID, "filter"
    ),
    "alias-version-not-int": (
        "PUT", "/models/clf/aliases/champion", {"json": {"version": "one"}}, *INVALID, "version"
    ),
    "alias-version-missing": (
        "PUT", "/models/clf/aliases/champion", {"json": {}}, *INVALID, "version"
    ),
    "alias-numeric": ("PUT", "/models/clf/aliases/7", {"json": {"version": 1}}, *INVALID, "alias"),
    "alias-unknown-version": (
        "PUT", "/models/clf/aliases/champion", {"json": {"version": 9}}, *NOT_FOUND, "version"
    ),
    "delete-aliased-version": ("DELETE", "/models/clf/versions/1", {}, 409, "conflict", "version"),
    "unknown-route": ("GET", "/no-such-route", {}, *NOT_FOUND, None),
    "unknown-subroute": ("GET", "/models/clf/versions/1/no-such-thing", {}, *NOT_FOUND, None),
    "wrong-method": ("DELETE", "/experiments", {}, 405, "method_not_allowed", None),
    "wrong-method-on-post-route": (
        "PATCH", "/runs/search", {"json": {}}, 405, "method_not_allowed", None
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code", "field"),
    list(BAD_REQUESTS.values()),
    ids=list(BAD_REQUESTS),
)
def test_bad_request_is_a_json_error(
    api: httpx.Client,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    assert_error(api.request(method, path, **kwargs), status, code, field)


def test_non_finite_metric_over_http_is_refused_naming_the_metric(api: httpx.Client) -> None:
    run = api.post("/runs", json={"experiment": "exp"}).json()
    # Python's json writes NaN, which some clients send; it must not be stored or crash.
    response = api.post(
        f"/runs/{run['id']}/metrics",
        content=b'{"metrics": [{"key": "loss", "value": NaN}]}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
    assert api.get(f"/runs/{run['id']}/metrics/loss").json() == []


def test_metric_columns_over_http(api: httpx.Client) -> None:
    run = api.post("/runs", json={"experiment": "exp"}).json()
    path = f"/runs/{run['id']}/metrics"
    columns = {"keys": ["loss", "loss"], "values": [0.5, 0.25], "steps": [0, 1]}
    assert api.post(path, json={"metrics": columns}).status_code == 204
    history = api.get(f"/runs/{run['id']}/metrics/loss").json()
    assert [(p["step"], p["value"]) for p in history] == [(0, 0.5), (1, 0.25)]
    # Columns of different lengths, or a NaN among the values: refused, nothing stored.
    short = {**columns, "values": [1.0]}
    assert_error(api.post(path, json={"metrics": short}), 422, "invalid_input", "metrics.values")
    nan = b'{"metrics": {"keys": ["acc"], "values": [NaN], "steps": [2]}}'
    response = api.post(path, content=nan, headers={"content-type": "application/json"})
    assert_error(response, 422, "invalid_input", "metrics.acc")
    assert api.get(f"/runs/{run['id']}/metrics/acc").json() == []


def test_head_of_missing_blob_is_404_without_a_body(api: httpx.Client) -> None:
    response = api.head(f"/blobs/{MISSING_DIGEST}")
    assert response.status_code == 404
    assert response.content == b""


def test_client_raises_the_same_errors_over_http(settings: Settings) -> None:
    with http_client(settings) as client:
        client.create_experiment("dup")
        with pytest.raises(heron.AlreadyExists):
            client.create_experiment("dup")
        with pytest.raises(heron.NotFound) as info:
            client.get_registered_model("nope")
        assert info.value.field == "name"
        with pytest.raises(heron.InvalidInput) as bad:
            client.create_experiment("../up")
        assert bad.value.field == "name"


# --- the OpenAPI contract --------------------------------------------------------------


def test_openapi_lists_every_operation_with_its_permission(settings: Settings) -> None:
    services = Services(settings)
    auth = {"authorization": f"Bearer {admin_token(services)}"}
    try:
        with (
            serve_in_thread(create_app(services)) as url,
            httpx.Client(base_url=url, headers=auth) as http,
        ):
            spec = http.get("/openapi.json").json()
    finally:
        services.close()
    by_id = {
        operation["operationId"]: (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }
    for op in OPERATIONS.values():
        assert op.name in by_id, f"{op.name} is missing from /openapi.json"
        method, path, operation = by_id[op.name]
        assert method == op.method
        assert path == API_PREFIX + op.path.replace(":path", "")
        assert operation["x-heron-permission"] == op.permission
        assert str(op.status_code) in operation["responses"]
    # Every route declares a permission, hand-written ones included.
    undeclared = [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if not operation.get("x-heron-permission")
    ]
    assert undeclared == []
    assert spec["paths"][f"{API_PREFIX}/health"]["get"]["x-heron-permission"] == "public"


# --- artifact bytes --------------------------------------------------------------------

STREAMING = textwrap.dedent(
    """
    import hashlib, resource, sys
    from pathlib import Path

    import heron
    from heron.testing import heron_settings, http_client

    MB = 1024 * 1024
    root = Path(sys.argv[1])
    size = int(sys.argv[2]) * MB
    big = root / "big.bin"
    sha = hashlib.sha256()
    block = bytes(range(256)) * (MB // 256)
    with open(big, "wb") as out:
        for i in range(size // MB):
            chunk = block[i % 256 :] + block[: i % 256]  # no two MiB alike
            sha.update(chunk)
            out.write(chunk)
    with http_client(heron_settings(root / "store")) as client:
        run = client.start_run(experiment="big")
        client.get_run(run.id)  # warm up imports and connections before measuring
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        entry = client.log_artifact(run.id, big, path="data/big.bin")
        back = client.download_artifact(run.id, "data/big.bin", root / "back")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run.end()
    got = hashlib.sha256()
    with open(back, "rb") as f:
        while chunk := f.read(MB):
            got.update(chunk)
    print(entry.digest, sha.hexdigest(), got.hexdigest(), entry.size, (peak - baseline) // 1024)
    """
)


@pytest.mark.slow
def test_200mb_artifact_streams_up_and_down_in_bounded_memory(tmp_path: Path) -> None:
    script = tmp_path / "stream.py"
    script.write_text(STREAMING)
    size_mb = 200
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERON_")}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(size_mb)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    stored, written, downloaded, size, growth_mb = done.stdout.split()
    assert stored == written == downloaded
    assert int(size) == size_mb * 1024 * 1024
    # Client and server share the process: neither may hold the file in memory.
    assert int(growth_mb) < 100, f"peak RSS grew by {growth_mb} MB"


def blob_file(settings: Settings, digest: str) -> Path:
    return Path(settings.resolved_artifacts) / "blobs" / digest[:2] / digest[2:]


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


@pytest.mark.parametrize(
    "tamper",
    [flip_last_byte, lambda data: data[: len(data) // 2], lambda data: data + b"extra"],
    ids=["flipped-byte", "truncated", "appended"],
)
def test_tampered_blob_fails_download_instead_of_returning_wrong_bytes(
    settings: Settings, tmp_path: Path, tamper: Any
) -> None:
    original = b"the real content, " * 1000
    (tmp_path / "weights.bin").write_bytes(original)
    with http_client(settings) as client:
        run = client.start_run(experiment="tamper")
        entry = client.log_artifact(run.id, tmp_path / "weights.bin")
        assert entry.digest == hashlib.sha256(original).hexdigest()
        stored = blob_file(settings, entry.digest)
        os.chmod(stored, 0o644)
        stored.write_bytes(tamper(stored.read_bytes()))
        with pytest.raises(heron.IntegrityError):
            client.download_artifact(run.id, "weights.bin", tmp_path / "out")
    # Nothing, not even a partial file, is left where the download was going.
    assert not (tmp_path / "out" / "weights.bin").exists()


# --- a real `heron server` process -----------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    home = tmp_path / "server-home"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERON_")}
    # Harmless while the server has no auth; the token it will need once it does.
    env.update(HERON_HOME=str(home), HERON_ADMIN_TOKEN="test-admin")
    heron_cli = Path(sys.executable).with_name("heron")
    proc = subprocess.Popen(
        [str(heron_cli), "server", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"heron server exited with {proc.returncode}: {proc.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}{API_PREFIX}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("heron server did not answer /api/v1/health")
            time.sleep(0.1)
        yield url, home
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]


def test_real_server_process_serves_a_client(
    server_process: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, home = server_process
    health = httpx.get(f"{url}{API_PREFIX}/health")
    assert health.json() == {"status": "ok", "version": heron.__version__}
    monkeypatch.setenv("HERON_TOKEN", "test-admin")
    with heron.Client(url=url) as client:
        with client.start_run(experiment="over-the-wire") as run:
            run.log_params({"lr": 0.1})
            run.log_metric("loss", 0.5, step=1)
            run.log_metric("loss", 0.25, step=2)
        stored = client.get_run(run.id)
        history = client.get_metric_history(run.id, "loss")
    assert stored.status == heron.RunStatus.FINISHED
    assert stored.params == {"lr": "0.1"}
    assert [(p.step, p.value) for p in history] == [(1, 0.5), (2, 0.25)]
    # It landed in the server's store, not in one of this process's.
    assert not (Path.cwd() / ".heron").exists()
    with heron.Client(settings=Settings(home=home)) as local:
        assert local.get_run(run.id).params == {"lr": "0.1"}


def test_result_types_are_the_services_own() -> None:
    """The operation table names each result type so the HTTP client needs no service
    module; each must be what the service method is annotated to return."""
    import typing

    for op in OPERATIONS.values():
        assert op.returns == typing.get_type_hints(op.function).get("return"), op.name


def test_http_client_loads_a_model_without_the_store() -> None:
    """A fresh process that only talks to a server imports neither SQLAlchemy nor a
    service module to resolve a model version (its time to first prediction)."""
    code = textwrap.dedent(
        """
        import sys
        from heron._api import OPERATIONS
        for name in ("get_model_version_by_alias", "get_model_version", "search_runs"):
            OPERATIONS[name].result_adapter
        print(sorted(m for m in sys.modules if m.startswith(("sqlalchemy", "heron._registry"))))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
