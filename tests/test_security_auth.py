"""Authentication and roles: every route declares a permission, every route x role gets the
right 2xx/401/403, tokens expire and are revoked, grants work per object, refusals and
security signals are recorded, and a real ``heron server`` needs a token."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

import heron
from heron._api import API_PREFIX
from heron._security._middleware import SecurityOptions, flat_routes, route_permission
from heron._server import create_app
from heron._services import Services
from heron._settings import Settings
from heron._store import _tables as t
from heron.testing import serve_in_thread

ROLES = ["none", "viewer", "editor", "admin"]
RANK = {"none": 0, "viewer": 1, "editor": 2, "admin": 3}
NEEDS = {"read": 1, "edit": 2, "admin": 3}
PATH_VALUES = {
    "run_id": "0" * 32,
    "version": "1",
    "token_id": "1",
    "digest": "0" * 64,
    "key": "loss",
    "object_type": "registered_model",
    "check_id": "1",
}


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    s = Services(settings)
    yield s
    s.close()


@contextlib.contextmanager
def served(app: Any) -> Iterator[httpx.Client]:
    """An HTTP client on ``app`` served by uvicorn on a loopback port of this process."""
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as http:
        yield http


@pytest.fixture
def app_client(services: Services) -> Iterator[httpx.Client]:
    app = create_app(services, security=SecurityOptions(max_failures=100_000))
    with served(app) as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


def user_token(services: Services, name: str, role: str) -> str:
    services.security.create_user(name, role)  # type: ignore[arg-type]
    return services.security.create_token(name).token


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def concrete_path(path: str) -> str:
    out = path
    for part in path.split("/"):
        if part.startswith("{"):
            name = part.strip("{}").split(":")[0]
            out = out.replace(part, PATH_VALUES.get(name, "nosuch"), 1)
    return out


# --- every route declares a permission ---------------------------------------------------


def test_every_route_declares_a_permission(services: Services) -> None:
    app = create_app(services)
    routes = list(flat_routes(app.router.routes))
    assert len(routes) > 40
    undeclared = [getattr(r, "path", repr(r)) for r in routes if route_permission(r) is None]
    assert undeclared == []
    # Nothing is hidden from the walk: every documented operation is one of its routes.
    walked = {getattr(r, "path_format", None) for r in routes}
    assert set(app.openapi()["paths"]) <= walked


def test_a_route_without_a_permission_is_refused(services: Services) -> None:
    app = create_app(services)

    @app.get("/api/v1/undeclared")
    def undeclared() -> dict[str, str]:
        return {"leaked": "yes"}

    token = user_token(services, "root", "admin")
    with served(app) as http:
        response = http.get("/api/v1/undeclared", headers=bearer(token))
    assert response.status_code == 403
    assert "leaked" not in response.text


def test_every_route_for_every_role(services: Services, app_client: httpx.Client) -> None:
    tokens = {role: user_token(services, f"user-{role}", role) for role in ROLES}
    checked = 0
    for route in flat_routes(app_client.app.router.routes):  # type: ignore[attr-defined]
        permission = route_permission(route)
        for method in sorted(route.methods - {"HEAD"} or route.methods):
            url = concrete_path(route.path)
            body = {} if method in ("POST", "PUT", "PATCH") else None
            anonymous = app_client.request(method, url, json=body)
            if permission == "public":
                assert anonymous.status_code not in (401, 403), (method, url)
                continue
            assert anonymous.status_code == 401, (method, url, anonymous.text)
            for role, token in tokens.items():
                response = app_client.request(method, url, json=body, headers=bearer(token))
                allowed = permission == "authenticated" or RANK[role] >= NEEDS[permission]
                if allowed:
                    assert response.status_code not in (401, 403), (role, method, url)
                else:
                    assert response.status_code == 403, (role, method, url, response.text)
                    if method != "HEAD":  # a HEAD answer has no body
                        assert response.json()["error"]["code"] == "permission_denied"
                checked += 1
    assert checked > 150


# --- tokens --------------------------------------------------------------------------------


def test_token_is_shown_once_and_only_its_hash_is_stored(services: Services) -> None:
    services.security.create_user("alice")
    created = services.security.create_token("alice", "laptop", expires_in_days=30)
    assert created.token.startswith("heron_") and len(created.token) > 40
    listed = services.security.list_tokens("alice")
    assert [tok.id for tok in listed] == [created.id]
    assert "token" not in listed[0].model_dump()
    with services.metadata.read() as conn:
        stored = conn.execute(select(t.api_tokens)).mappings().one()
    assert created.token not in {str(v) for v in stored.values()}
    assert stored["prefix"] == created.token[:10]


def test_revoked_expired_and_disabled_tokens_are_refused(
    services: Services, app_client: httpx.Client
) -> None:
    token = user_token(services, "bob", "viewer")
    assert app_client.get(f"{API_PREFIX}/models", headers=bearer(token)).status_code == 200
    token_id = services.security.list_tokens("bob")[0].id

    services.security.revoke_token("bob", token_id)
    refused = app_client.get(f"{API_PREFIX}/models", headers=bearer(token))
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    assert refused.headers["www-authenticate"] == "Bearer"

    expiring = services.security.create_token("bob", "short", expires_in_days=1)
    with services.metadata.write() as conn:
        conn.execute(
            update(t.api_tokens)
            .where(t.api_tokens.c.id == expiring.id)
            .values(expires_at=t.now() - timedelta(seconds=1))
        )
    expired = app_client.get(f"{API_PREFIX}/models", headers=bearer(expiring.token))
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]

    fresh = services.security.create_token("bob", "again").token
    services.security.update_user("bob", disabled=True)
    disabled = app_client.get(f"{API_PREFIX}/models", headers=bearer(fresh))
    assert disabled.status_code == 401 and "disabled" in disabled.json()["error"]["message"]

    kinds = {s.kind for s in services.security.list_security_signals()}
    assert {"auth_failure", "revoked_token", "expired_token"} <= kinds


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-token",
        "bearer x y",
        "Token x",
        "Bearer  x",
    ],
    ids=["empty", "no-token", "basic", "unknown", "extra-part", "other-scheme", "double-space"],
)
def test_bad_credentials_are_401_and_audited(
    services: Services, app_client: httpx.Client, authorization: str
) -> None:
    response = app_client.get(f"{API_PREFIX}/models", headers={"authorization": authorization})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    events = services.audit.list_audit_events(action="auth_failed").items
    assert len(events) == 1
    assert events[0].actor == "anonymous" and events[0].source == "127.0.0.1"
    assert events[0].after is not None and events[0].after["path"] == f"{API_PREFIX}/models"


def test_last_use_and_new_address_are_recorded(services: Services) -> None:
    token = user_token(services, "carol", "viewer")
    principal = services.security.authenticate(token, "10.0.0.1")
    first = services.security.list_tokens("carol")[0]
    assert first.last_used_from == "10.0.0.1" and first.last_used_at is not None
    services.security.authenticate(token, "10.0.0.1")
    assert services.security.list_security_signals(kind="new_address") == []
    services.security.authenticate(token, "203.0.113.9")
    signals = services.security.list_security_signals(kind="new_address")
    assert [(s.subject, s.count) for s in signals] == [("carol", 1)]
    events = services.audit.list_audit_events(action="token_new_address").items
    assert events[0].object_id == str(principal.token_id)
    assert events[0].after == {"user": "carol", "source": "203.0.113.9"}


def test_users_manage_their_own_tokens_only(services: Services, app_client: httpx.Client) -> None:
    dave = bearer(user_token(services, "dave", "none"))
    user_token(services, "erin", "editor")
    mine = app_client.post(f"{API_PREFIX}/users/dave/tokens", json={}, headers=dave)
    assert mine.status_code == 201 and mine.json()["token"].startswith("heron_")
    theirs = app_client.post(f"{API_PREFIX}/users/erin/tokens", json={}, headers=dave)
    assert theirs.status_code == 403
    assert (
        app_client.patch(
            f"{API_PREFIX}/users/dave", json={"role": "admin"}, headers=dave
        ).status_code
        == 403
    )
    assert app_client.get(f"{API_PREFIX}/whoami", headers=dave).json()["role"] == "none"


# --- roles per object ------------------------------------------------------------------------


def test_grants_on_one_model_one_experiment(services: Services, app_client: httpx.Client) -> None:
    source = services.artifacts.put_bytes(b"model").digest
    services.registry.create_model_version("churn", source=source, flavor="python")
    services.registry.create_model_version("fraud", source=source, flavor="python")
    run = services.tracking.create_run("team-a")
    services.tracking.create_run("team-b")
    frank = bearer(user_token(services, "frank", "none"))
    services.security.grant_role("registered_model", "churn", "frank", "editor")  # type: ignore[arg-type]
    services.security.grant_role("experiment", "team-a", "frank", "viewer")  # type: ignore[arg-type]

    def status(method: str, path: str, **kw: Any) -> int:
        return app_client.request(method, API_PREFIX + path, headers=frank, **kw).status_code

    assert status("GET", "/models/churn") == 200
    assert status("PATCH", "/models/churn", json={"description": "mine"}) == 200
    assert status("PUT", "/models/churn/aliases/champion", json={"version": 1}) == 200
    assert status("GET", "/models/fraud") == 403
    assert status("PATCH", "/models/fraud", json={"description": "x"}) == 403
    assert status("GET", "/models") == 403  # lists need a global role
    assert status("GET", f"/runs/{run.id}") == 200  # a run is its experiment's
    assert status("POST", f"/runs/{run.id}/tags", json={"tags": {"a": "b"}}) == 403
    assert status("POST", "/runs", json={"experiment": "team-a"}) == 403
    assert status("POST", "/runs/search", json={"experiments": ["team-a"]}) == 200
    assert status("POST", "/runs/search", json={"experiments": ["team-a", "team-b"]}) == 403
    assert status("POST", "/blobs", content=b"bytes") == 201  # an editor somewhere may upload
    # An object admin may grant on that object, and only there.
    services.security.grant_role("registered_model", "churn", "frank", "admin")  # type: ignore[arg-type]
    user_token(services, "gina", "none")
    assert status("PUT", "/permissions/registered_model/churn/gina", json={"role": "viewer"}) == 200
    assert status("PUT", "/permissions/registered_model/fraud/gina", json={"role": "viewer"}) == 403
    denied = services.audit.list_audit_events(action="denied").items
    assert {(e.object_type, e.object_id) for e in denied} >= {("registered_model", "fraud")}
    assert all(e.actor == "frank" for e in denied)


@pytest.mark.parametrize(
    ("object_type", "object_id", "field"),
    [
        ("run", "x", "object_type"),
        ("user", "x", "object_type"),
        ("registered_model", "../x", "object_id"),
    ],
    ids=["run", "user", "traversal"],
)
def test_grants_only_on_grantable_objects(
    services: Services, object_type: str, object_id: str, field: str
) -> None:
    services.security.create_user("hal")
    with pytest.raises(heron.InvalidInput) as info:
        services.security.grant_role(object_type, object_id, "hal", "viewer")  # type: ignore[arg-type]
    assert info.value.field == field


# --- limits ----------------------------------------------------------------------------------


def test_failed_logins_are_rate_limited_per_address(services: Services) -> None:
    app = create_app(services, security=SecurityOptions(max_failures=3, failure_window=60))
    good = user_token(services, "ivy", "viewer")
    with served(app) as http:
        codes = [
            http.get(f"{API_PREFIX}/models", headers=bearer(f"guess-{i}")).status_code
            for i in range(5)
        ]
        blocked = http.get(f"{API_PREFIX}/models", headers=bearer(good))
    assert codes == [401, 401, 401, 429, 429]
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    signals = {s.kind: s.count for s in services.security.list_security_signals()}
    assert signals["auth_failure"] == 3 and signals["rate_limited"] == 1


@pytest.mark.parametrize(
    ("path", "limit_field", "size"),
    [("/experiments", "max_json_body", 2048), ("/blobs", "max_upload", 4096)],
    ids=["json", "upload"],
)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_request_bodies_over_the_limit_are_413(
    services: Services, path: str, limit_field: str, size: int, chunked: bool
) -> None:
    options = SecurityOptions(**{limit_field: 1024})  # type: ignore[arg-type]
    app = create_app(services, security=options)
    token = user_token(services, "jo", "admin")
    payload = b'{"name": "' + b"x" * size + b'"}'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 256):
            yield payload[i : i + 256]

    with served(app) as http:
        content: Any = chunks() if chunked else payload
        response = http.post(API_PREFIX + path, content=content, headers=bearer(token))
        small = http.post(API_PREFIX + "/blobs", content=b"tiny", headers=bearer(token))
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "too_large"
    assert small.status_code == 201
    assert services.tracking.list_experiments().items == []


def test_bulk_downloads_raise_a_signal(services: Services) -> None:
    app = create_app(services, security=SecurityOptions(bulk_downloads=5))
    token = user_token(services, "kim", "viewer")
    digest = services.artifacts.put_bytes(b"data").digest
    with served(app) as http:
        for _ in range(7):
            assert (
                http.get(f"{API_PREFIX}/blobs/{digest}", headers=bearer(token)).content == b"data"
            )
    signals = services.security.list_security_signals(kind="bulk_download")
    assert [(s.subject, s.count) for s in signals] == [("kim", 1)]
    assert services.audit.list_audit_events(action="bulk_download").items[0].actor == "kim"


def test_no_auth_serves_anonymous(services: Services) -> None:
    with served(create_app(services, auth=False)) as http:
        assert http.post(f"{API_PREFIX}/experiments", json={"name": "open"}).status_code == 201
    assert services.audit.list_audit_events().items[-1].actor == "anonymous"


# --- bootstrap ---------------------------------------------------------------------------


def test_admin_token_bootstrap_is_idempotent_and_restores(services: Services) -> None:
    services.security.ensure_admin_token("s3cret-admin-token")
    services.security.ensure_admin_token("s3cret-admin-token")
    [admin] = services.security.list_users()
    assert admin.name == "admin" and admin.role == "admin"
    [token] = services.security.list_tokens("admin")
    services.security.revoke_token("admin", token.id)
    services.security.update_user("admin", role="viewer", disabled=True)  # type: ignore[arg-type]
    services.security.ensure_admin_token("s3cret-admin-token")
    principal = services.security.authenticate("s3cret-admin-token", "127.0.0.1")
    assert principal.role == "admin"
    assert services.security.bootstrap_first_admin() is None  # users exist


def test_first_admin_is_created_once(services: Services) -> None:
    token = services.security.bootstrap_first_admin()
    assert token is not None
    assert services.security.authenticate(token, None).name == "admin"
    assert services.security.bootstrap_first_admin() is None


# --- the acceptance, with a real `heron server` -----------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(tmp_path: Path, env_extra: dict[str, str], *args: str) -> tuple[Any, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERON_")}
    env.update(HERON_HOME=str(tmp_path / "home"), **env_extra)
    heron_cli = Path(sys.executable).with_name("heron")
    proc = subprocess.Popen(
        [str(heron_cli), "server", "--port", str(port), *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"heron server exited: {proc.stdout.read()}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}{API_PREFIX}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("heron server did not start")
        time.sleep(0.1)


def stop(proc: Any) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return str(out)


def test_acceptance_heron_server_requires_a_token(tmp_path: Path) -> None:
    proc, url = start_server(tmp_path, {"HERON_ADMIN_TOKEN": "secret"})
    try:
        anonymous = httpx.get(f"{url}{API_PREFIX}/models")
        wrong = httpx.get(f"{url}{API_PREFIX}/models", headers=bearer("guess"))
        admin = httpx.get(f"{url}{API_PREFIX}/models", headers=bearer("secret"))
    finally:
        stop(proc)
    assert anonymous.status_code == 401
    assert wrong.status_code == 401
    assert admin.status_code == 200 and admin.json()["items"] == []


def test_first_start_prints_an_admin_token_and_no_auth_warns(tmp_path: Path) -> None:
    proc, url = start_server(tmp_path, {})
    output = stop(proc)
    token = next(line for line in output.splitlines() if line.startswith("heron_"))
    with heron.Client(settings=Settings(home=tmp_path / "home")) as local:
        assert [u.name for u in local.list_users()] == ["admin"]
    proc, url = start_server(tmp_path, {})
    try:
        ok = httpx.get(f"{url}{API_PREFIX}/whoami", headers=bearer(token))
    finally:
        second = stop(proc)
    assert ok.json()["name"] == "admin"
    assert "heron_" not in second  # shown once only
    proc, url = start_server(tmp_path, {}, "--no-auth")
    try:
        open_access = httpx.get(f"{url}{API_PREFIX}/models")
    finally:
        output = stop(proc)
    assert open_access.status_code == 200
    assert "authentication is OFF" in output
