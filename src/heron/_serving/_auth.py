"""Bearer tokens on the prediction server: the security service's check, cached briefly.

``/predict``, ``/feedback`` and ``/metrics`` need ``Authorization: Bearer <token>`` of a
user with at least the viewer role on the endpoint (globally or by a grant); the health
endpoints are public. A token is checked where the store is:

- embedded stores: ``SecurityService.authenticate`` (hash lookup, expiry, revocation,
  disabled users, last use and new-address signals) and ``effective_role`` on the endpoint;
- through a Heron server (``HERON_URL``): ``GET /api/v1/endpoints/{name}`` sent with the
  caller's token, so the server's own security layer decides and records.

A token that passed is trusted for ``ttl`` seconds (30 by default, never past its expiry):
the hot path then costs one dict lookup. Revoking a token or a grant therefore takes up to
``ttl`` seconds to reach running prediction servers. Refusals are not cached; each one is an
audit event and a security signal written by the security service (``record_denied``), and
an address with too many failures waits (429), as on the REST server.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from heron._errors import PermissionDenied, Unauthenticated
from heron._security._service import AuthFailure, hash_token

if TYPE_CHECKING:
    from heron._client import Client

TOKEN_TTL_S = 30.0
_MAX_CACHED = 10_000


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: the status, the error body's code and message."""

    status: int
    code: str
    message: str
    retry_after: int | None = None


def server_has_users(client: Client) -> bool:
    """Whether the prediction server should require tokens when not told: always through a
    Heron server (which authenticates), else when the store has any users."""
    from heron._transport import EmbeddedTransport

    transport = client.transport
    if not isinstance(transport, EmbeddedTransport):
        return True
    return bool(transport.services.security.list_users())


class TokenCheck:
    """Validates bearer tokens for one endpoint, caching the ones that passed."""

    def __init__(self, client: Client, endpoint: str, ttl: float = TOKEN_TTL_S) -> None:
        from heron._security._middleware import FailureLimiter, SecurityOptions

        self.client = client
        self.endpoint = endpoint
        self.ttl = ttl
        defaults = SecurityOptions()
        self.limiter = FailureLimiter(defaults.max_failures, defaults.failure_window)
        self._valid: dict[str, float] = {}  # token hash -> monotonic time it stays valid
        self._lock = threading.Lock()

    def cached(self, authorization: str | None) -> bool:
        """The hot path: a token that passed less than ``ttl`` seconds ago."""
        token = _bearer(authorization)
        if token is None:
            return False
        until = self._valid.get(hash_token(token))
        return until is not None and until > time.monotonic()

    def check(self, authorization: str | None, source: str, path: str) -> Refusal | None:
        """None when the request may go on, else why not (blocking: run it in a thread)."""
        if self.limiter.blocked(source):
            return Refusal(
                429,
                "too_many_requests",
                "too many failed logins; wait and retry",
                self.limiter.retry_after(source),
            )
        token = _bearer(authorization)
        try:
            expires = self._validate(token, source, path)
        except Unauthenticated as exc:
            return Refusal(401, exc.code, exc.message)
        except PermissionDenied as exc:
            return Refusal(403, exc.code, exc.message)
        until = time.monotonic() + self.ttl
        if expires is not None:
            until = min(until, time.monotonic() + max(0.0, expires - time.time()))
        with self._lock:
            if len(self._valid) >= _MAX_CACHED:
                now = time.monotonic()
                for key in [k for k, v in self._valid.items() if v <= now] or list(self._valid):
                    del self._valid[key]
            self._valid[hash_token(token or "")] = until
        return None

    # --- where the store is -----------------------------------------------------------

    def _validate(self, token: str | None, source: str, path: str) -> float | None:
        """Raise Unauthenticated / PermissionDenied; return the token's expiry (epoch s)."""
        from heron._transport import EmbeddedTransport

        transport = self.client.transport
        if isinstance(transport, EmbeddedTransport):
            return self._validate_embedded(transport.services, token, source, path)
        self._validate_remote(transport, token, source)
        return None

    def _validate_embedded(
        self, services: Any, token: str | None, source: str, path: str
    ) -> float | None:
        from heron._security._entities import ROLE_RANK, Role
        from heron._services import Caller

        details: dict[str, Any] = {"method": "POST", "path": path[:300], "server": "predict"}
        security = services.as_caller(Caller(actor="anonymous", source=source)).security
        try:
            if token is None:
                raise AuthFailure(
                    "an API token is needed: Authorization: Bearer <token>", reason="missing"
                )
            principal = security.authenticate(token, source)
        except AuthFailure as failure:
            self._refused(services, failure.user or "anonymous", source, failure.reason, details)
            raise
        role = security.effective_role(principal, [("endpoint", self.endpoint)])
        if ROLE_RANK[role] < ROLE_RANK[Role.VIEWER]:
            recorder = services.as_caller(Caller(actor=principal.name, source=source)).security
            details |= {"needed": "read", "role": role.value}
            recorder.record_denied("denied", "endpoint", self.endpoint, details)
            raise PermissionDenied(
                f"read permission is needed on endpoint {self.endpoint!r}; "
                f"{principal.name!r} has {role.value}"
            )
        return principal.expires_at.timestamp() if principal.expires_at is not None else None

    def _refused(
        self, services: Any, actor: str, source: str, reason: str, details: dict[str, Any]
    ) -> None:
        from heron._services import Caller

        blocking = self.limiter.fail(source)
        recorder = services.as_caller(Caller(actor=actor, source=source)).security
        recorder.record_denied(
            "auth_failed", "endpoint", self.endpoint, {**details, "reason": reason}
        )
        if blocking:
            recorder.record_signal("rate_limited", source, details={"address": source})

    def _validate_remote(self, transport: Any, token: str | None, source: str) -> None:
        """Ask the Heron server with the caller's token: it authenticates, authorizes (read
        on the endpoint) and records refusals itself."""
        from urllib.parse import quote

        from heron._api import API_PREFIX
        from heron._transport import _raise_for

        response = transport.http.get(
            f"{API_PREFIX}/endpoints/{quote(self.endpoint, safe='')}",
            # No token: an empty header replaces the prediction server's own.
            headers={"authorization": f"Bearer {token}" if token else ""},
        )
        if response.status_code == 401:
            self.limiter.fail(source)
        if response.is_error:
            _raise_for(response)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
