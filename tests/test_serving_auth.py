"""Bearer tokens on the prediction server: who gets in, what refusals record, the cache."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import update

import heron
from heron._serving import PredictionServer, ServeOptions
from heron._store import _tables as t
from heron.testing import embedded_client, heron_settings, serve_in_thread

ROWS = [{"a": 0.5, "b": 1.5}, {"a": -1.0, "b": 0.25}]


def _store(path: Path) -> heron.Client:
    client = embedded_client(heron_settings(path))
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = (X["a"] + X["b"] > 0).astype(int)
    client.log_model(LogisticRegression().fit(X, y), "clf", input_example=X.head(3))
    client.set_alias("clf", "champion", 1)
    client.create_endpoint("guarded", ["clf@champion"])
    return client


class Guarded:
    def __init__(self, client: heron.Client, server: PredictionServer, url: str) -> None:
        self.client, self.server, self.url = client, server, url
        self.services: Any = client.transport.services  # type: ignore[attr-defined]
        self.tokens: dict[str, str] = {}

    def user(self, name: str, role: str) -> str:
        self.services.security.create_user(name, role)
        self.tokens[name] = self.services.security.create_token(name).token
        return self.tokens[name]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    client = _store(tmp_path_factory.mktemp("serving-auth"))
    services: Any = client.transport.services  # type: ignore[attr-defined]
    services.security.create_user("alice", "viewer")
    server = PredictionServer(client, ServeOptions("guarded", poll_interval=0.05))
    server.start()
    assert server.tokens is not None  # the store has users: auth is on by default
    server.tokens.limiter.max_failures = 10_000
    with serve_in_thread(server) as url:
        g = Guarded(client, server, url)
        g.tokens["alice"] = services.security.create_token("alice").token
        g.user("nobody", "none")
        g.user("granted", "none")
        services.security.grant_role("endpoint", "guarded", "granted", "viewer")
        g.user("revoked", "viewer")
        services.security.revoke_token("revoked", services.security.list_tokens("revoked")[0].id)
        expiring = g.user("expired", "viewer")
        with services.metadata.write() as conn:
            conn.execute(
                update(t.api_tokens)
                .where(t.api_tokens.c.token_hash == _hash(expiring))
                .values(expires_at=t.now() - timedelta(seconds=1))
            )
        yield g
    server.close()
    client.close()


def _hash(token: str) -> str:
    from heron._security._service import hash_token

    return hash_token(token)


def _predict(g: Guarded, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{g.url}/predict", json={"instances": ROWS}, headers=headers)


@pytest.mark.parametrize("user", ["alice", "granted"], ids=["viewer", "endpoint-grant"])
def test_a_valid_token_predicts(guarded: Guarded, user: str) -> None:
    headers = {"authorization": f"Bearer {guarded.tokens[user]}"}
    r = _predict(guarded, headers)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 2
    assert httpx.get(f"{guarded.url}/metrics", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("header", "status", "reason"),
    [
        (None, 401, "missing"),
        ("Basic dXNlcjpwdw==", 401, "missing"),
        ("Bearer", 401, "missing"),
        ("Bearer heron_not-a-token", 401, "unknown"),
        ("Bearer <revoked>", 401, "revoked"),
        ("Bearer <expired>", 401, "expired"),
        ("Bearer <nobody>", 403, None),
    ],
    ids=["none", "basic", "empty-bearer", "unknown", "revoked", "expired", "no-role"],
)
def test_refusals_are_json_and_audited(
    guarded: Guarded, header: str | None, status: int, reason: str | None
) -> None:
    for name, token in guarded.tokens.items():
        header = header.replace(f"<{name}>", token) if header else header
    headers = {"authorization": header} if header is not None else {}
    before = _denials(guarded)
    for path in ("/predict", "/feedback", "/metrics"):
        method = "GET" if path == "/metrics" else "POST"
        r = httpx.request(method, guarded.url + path, json={"instances": ROWS}, headers=headers)
        assert r.status_code == status, (path, r.text)
        assert r.json()["error"]["code"] == ("unauthenticated" if status == 401 else
                                             "permission_denied")  # fmt: skip
    events = _denials(guarded)[len(before) :]
    assert len(events) == 3
    assert {e.object_type for e in events} == {"endpoint"}
    if reason is not None:
        assert {e.action for e in events} == {"auth_failed"}
        assert {e.after["reason"] for e in events} == {reason}
    else:
        assert {(e.action, e.actor) for e in events} == {("denied", "nobody")}


def _denials(g: Guarded) -> list[Any]:
    page = g.client.list_audit_events(object_type="endpoint", object_id="guarded", max_results=1000)
    return [e for e in page.items if e.action in ("auth_failed", "denied")]


def test_health_stays_public(guarded: Guarded) -> None:
    assert httpx.get(f"{guarded.url}/health/live").status_code == 200
    assert httpx.get(f"{guarded.url}/health/ready").status_code == 200


def test_failures_raise_signals(guarded: Guarded) -> None:
    httpx.post(f"{guarded.url}/predict", json={"instances": ROWS})
    kinds = {s.kind for s in guarded.client.list_security_signals()}
    assert {"auth_failure", "revoked_token", "expired_token"} <= kinds


def test_a_passed_token_is_cached_until_the_ttl(guarded: Guarded) -> None:
    token = guarded.user("carol", "viewer")
    headers = {"authorization": f"Bearer {token}"}
    assert _predict(guarded, headers).status_code == 200
    security = guarded.services.security
    security.revoke_token("carol", security.list_tokens("carol")[0].id)
    assert _predict(guarded, headers).status_code == 200  # cached: no store read
    assert guarded.server.tokens is not None
    guarded.server.tokens._valid.clear()  # as when the ttl has passed
    assert _predict(guarded, headers).status_code == 401


def test_repeated_failures_from_one_address_wait(tmp_path: Path) -> None:
    client = _store(tmp_path)
    server = PredictionServer(client, ServeOptions("guarded", auth=True))
    server.start()
    try:
        assert server.tokens is not None
        server.tokens.limiter.max_failures = 2
        with serve_in_thread(server) as url:
            codes = [httpx.post(f"{url}/predict", json={}).status_code for _ in range(3)]
            assert codes == [401, 401, 429]
        signals = client.list_security_signals(kind="rate_limited")
        assert [s.subject for s in signals] == ["127.0.0.1"]
    finally:
        server.close()
        client.close()


@pytest.mark.parametrize(
    ("auth", "users", "expected"),
    [(None, False, False), (None, True, True), (False, True, False), (True, False, True)],
    ids=["default-no-users", "default-users", "off", "on"],
)
def test_auth_default_follows_the_store(
    tmp_path: Path, auth: bool | None, users: bool, expected: bool
) -> None:
    client = _store(tmp_path)
    if users:
        client.create_user("someone")
    server = PredictionServer(client, ServeOptions("guarded", auth=auth, log_predictions=False))
    server.start()
    try:
        assert (server.tokens is not None) is expected
    finally:
        server.close()
        client.close()
