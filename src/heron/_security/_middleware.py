"""The server's security layer: one ASGI middleware in front of every route.

For each request it (1) refuses bodies over the size limit (413), (2) finds the route and
the permission it declares (``x-heron-permission`` in its OpenAPI extra, or
``heron_permission`` on a non-API route such as the docs); a route that declares none is
refused, so forgetting a declaration fails closed; (3) authenticates the bearer token
(401), rate-limiting addresses with repeated failures (429); (4) checks the caller's role
on the object the request names (403): the global role, or a grant on the experiment,
registered model or endpoint in the path (or, for a few create calls, in the body).
Every refusal is an audit event; failed logins, revoked or expired token use, new
addresses and bulk downloads are counted as security signals.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match

from heron._api import API_PREFIX
from heron._security._entities import PERMISSION_RANK, PERMISSIONS, ROLE_RANK, Role
from heron._security._service import AuthFailure, Principal
from heron._services import Caller, Services

log = logging.getLogger("heron.security")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MIB = 1024 * 1024
ANY_OBJECT = ("*", "*")  # "a role anywhere will do" (content-addressed blobs)

# First path segment -> the object type a ``{name}`` right after it names.
_NAMED_OBJECTS = {
    "models": "registered_model",
    "experiments": "experiment",
    "endpoints": "endpoint",
}
# Operations whose object is in the JSON body: op name -> (object type, field, default).
_BODY_OBJECTS: dict[str, tuple[str, str, str | None]] = {
    "create_run": ("experiment", "experiment", "default"),
    "create_experiment": ("experiment", "name", None),
    "create_registered_model": ("registered_model", "name", None),
    "create_endpoint": ("endpoint", "name", None),
    "search_runs": ("experiment", "experiments", None),
}


@dataclass(frozen=True)
class SecurityOptions:
    """Limits of the security layer; the defaults suit a team server."""

    max_failures: int = 10  # failed logins from one address per window before 429
    failure_window: float = 60.0
    bulk_downloads: int = 200  # blob downloads by one user per minute that raise a signal
    max_json_body: int = 64 * MIB
    max_upload: int = 10 * 1024 * MIB


def route_permission(route: Any) -> str | None:
    """The permission a route declares, or None."""
    extra = getattr(route, "openapi_extra", None) or {}
    declared = extra.get("x-heron-permission") or getattr(route, "heron_permission", None)
    return declared if declared in PERMISSIONS else None


def flat_routes(routes: Any) -> Any:
    """Every route under ``routes``, looking inside included routers (FastAPI nests them)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            if not getattr(getattr(route, "include_context", None), "prefix", ""):
                yield from flat_routes(inner.routes)
            continue
        yield route


def declare_docs_routes(app: Any) -> None:
    """FastAPI's own routes (schema and docs pages) are public documentation."""
    public = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    for route in app.router.routes:
        if getattr(route, "path", None) in public - {None}:
            route.heron_permission = "public"


class FailureLimiter:
    """Failed logins per address in a sliding window; past the limit the address waits."""

    def __init__(self, max_failures: int, window: float) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def blocked(self, address: str) -> bool:
        failures = self._prune(address)
        return len(failures) >= self.max_failures

    def fail(self, address: str) -> bool:
        """Count a failure; True when it is the one that blocks the address."""
        failures = self._prune(address)
        failures.append(time.monotonic())
        if len(self._failures) > 10_000:  # forget addresses that stopped failing
            for key in [k for k, v in self._failures.items() if not v]:
                del self._failures[key]
        return len(failures) == self.max_failures

    def retry_after(self, address: str) -> int:
        failures = self._prune(address)
        return max(1, int(self.window - (time.monotonic() - failures[0])) + 1) if failures else 1

    def _prune(self, address: str) -> deque[float]:
        failures = self._failures[address]
        horizon = time.monotonic() - self.window
        while failures and failures[0] < horizon:
            failures.popleft()
        return failures


class SecurityMiddleware:
    def __init__(
        self,
        app: Any,
        *,
        fastapi_app: Any,
        auth: bool,
        options: SecurityOptions,
    ) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.auth = auth
        self.options = options
        self.limiter = FailureLimiter(options.max_failures, options.failure_window)
        self._downloads: dict[tuple[str, int], int] = {}
        self._routes: list[Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route, path_params = self._match(scope)
        limit = self._body_limit(route)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _error(413, "too_large", f"request body is larger than {limit} bytes")(
                scope, receive, send
            )
            return
        receive = _limited(receive, limit)
        if self.auth:
            try:
                outcome = await self._authorize(scope, receive, route, path_params)
            except StarletteHTTPException as exc:  # the body we read was over the limit
                await _error(exc.status_code, "too_large", str(exc.detail))(scope, receive, send)
                return
            if isinstance(outcome, JSONResponse):
                await outcome(scope, receive, send)
                return
            receive = outcome
        await self.app(scope, receive, send)

    # --- steps -------------------------------------------------------------------------

    @property
    def services(self) -> Services:
        # Read per request: the app's services may be swapped (tests point one server at
        # each test's stores).
        return self.fastapi_app.state.services  # type: ignore[no-any-return]

    def _match(self, scope: Scope) -> tuple[Any, dict[str, Any]]:
        if self._routes is None:
            self._routes = list(flat_routes(self.fastapi_app.router.routes))
        for route in self._routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return route, child.get("path_params", {})
        return None, {}

    def _body_limit(self, route: Any) -> int:
        if route is not None and getattr(route, "name", None) == "upload_blob":
            return self.options.max_upload
        return self.options.max_json_body

    async def _authorize(
        self, scope: Scope, receive: Receive, route: Any, params: dict[str, Any]
    ) -> JSONResponse | Receive:
        # A path no known route matches still needs a valid token (then the app says 404):
        # whatever serves it was not declared here, so it is never served anonymously.
        permission = "authenticated" if route is None else route_permission(route)
        if permission is None:
            log.error("route %s declares no permission; refusing it", getattr(route, "path", "?"))
            return _error(403, "permission_denied", "this route declares no permission")
        if permission == "public":
            return receive
        source = scope["client"][0] if scope.get("client") else "unknown"
        if self.limiter.blocked(source):
            response = _error(429, "too_many_requests", "too many failed logins; wait and retry")
            response.headers["retry-after"] = str(self.limiter.retry_after(source))
            return response
        principal = await self._authenticate(scope, source)
        if isinstance(principal, JSONResponse):
            return principal
        scope.setdefault("state", {})["caller"] = Caller(actor=principal.name, source=source)
        if permission == "authenticated":
            return receive
        need = PERMISSION_RANK[permission]
        if ROLE_RANK[principal.role] < need:
            objects, receive = await self._objects(scope, receive, route, params)
            role = await run_in_threadpool(self._role, principal, objects)
            if ROLE_RANK[role] < need:
                target = objects[0] if objects and objects[0] != ANY_OBJECT else None
                await self._deny(scope, principal.name, source, permission, role, target)
                return _error(
                    403,
                    "permission_denied",
                    f"{permission} permission is needed here; {principal.name!r} has {role.value}",
                )
        if getattr(route, "name", None) == "download_blob":
            await self._count_download(principal.name)
        return receive

    async def _authenticate(self, scope: Scope, source: str) -> Principal | JSONResponse:
        authorization = _header(scope, b"authorization") or ""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        security = self.services.as_caller(Caller(actor="anonymous", source=source)).security
        try:
            if scheme.lower() != "bearer" or not token:
                raise AuthFailure(
                    "an API token is needed: Authorization: Bearer <token>", reason="missing"
                )
            return await run_in_threadpool(security.authenticate, token, source)
        except AuthFailure as failure:
            blocking = self.limiter.fail(source)
            details = {**_request_details(scope), "reason": failure.reason}
            caller = Caller(actor=failure.user or "anonymous", source=source)
            recorder = self.services.as_caller(caller).security
            await run_in_threadpool(
                recorder.record_denied, "auth_failed", "api", "request", details
            )
            if blocking:
                await run_in_threadpool(
                    recorder.record_signal, "rate_limited", source, details={"address": source}
                )
            response = _error(401, "unauthenticated", failure.message)
            response.headers["www-authenticate"] = "Bearer"
            return response

    async def _objects(
        self, scope: Scope, receive: Receive, route: Any, params: dict[str, Any]
    ) -> tuple[list[tuple[str, str]], Receive]:
        path = getattr(route, "path_format", "")[len(API_PREFIX) :].strip("/").split("/")
        first = path[0] if path else ""
        if first == "blobs":
            return [ANY_OBJECT], receive
        if first in _NAMED_OBJECTS and len(path) > 1 and path[1] in ("{name}", "{endpoint}"):
            return [(_NAMED_OBJECTS[first], str(params[path[1].strip("{}")]))], receive
        if first == "runs" and "run_id" in params:
            experiment = await run_in_threadpool(
                self.services.security.experiment_of_run, str(params["run_id"])
            )
            return ([("experiment", experiment)] if experiment else []), receive
        if first == "users" and len(path) > 2 and path[2] == "tokens":
            return [("user", str(params["name"]))], receive
        if first == "permissions" and "object_type" in params:
            return [(str(params["object_type"]), str(params["object_id"]))], receive
        spec = _BODY_OBJECTS.get(getattr(route, "name", ""))
        if spec is None:
            return [], receive
        body, receive = await _read_body(receive)
        return _body_objects(body, spec), receive

    def _role(self, principal: Principal, objects: list[tuple[str, str]]) -> Role:
        security = self.services.security
        if objects == [ANY_OBJECT]:
            return security.best_role(principal)
        return security.effective_role(principal, objects)

    async def _deny(
        self,
        scope: Scope,
        actor: str,
        source: str,
        permission: str,
        role: Role,
        target: tuple[str, str] | None,
    ) -> None:
        object_type, object_id = target or ("api", "request")
        details = {**_request_details(scope), "needed": permission, "role": role.value}
        recorder = self.services.as_caller(Caller(actor=actor, source=source)).security
        await run_in_threadpool(recorder.record_denied, "denied", object_type, object_id, details)

    async def _count_download(self, user: str) -> None:
        window = int(time.time() // 60)
        key = (user, window)
        self._downloads[key] = count = self._downloads.get(key, 0) + 1
        if len(self._downloads) > 1000:
            for old in [k for k in self._downloads if k[1] < window]:
                del self._downloads[old]
        if count == self.options.bulk_downloads:
            recorder = self.services.as_caller(Caller(actor=user)).security
            details = {"downloads": count, "window_seconds": 60}
            await run_in_threadpool(recorder.record_signal, "bulk_download", user, details=details)


# --- helpers -----------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _request_details(scope: Scope) -> dict[str, Any]:
    return {"method": scope.get("method"), "path": str(scope.get("path", ""))[:300]}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "field": None}}, status)


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise StarletteHTTPException(413, f"request body is larger than {limit} bytes")
        return message

    return limited


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole (size-limited) body, and a ``receive`` that replays it to the app."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _body_objects(body: bytes, spec: tuple[str, str, str | None]) -> list[tuple[str, str]]:
    object_type, field, default = spec
    try:
        value = json.loads(body).get(field, default) if body else default
    except (ValueError, AttributeError):
        return []
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        return []
    return [(object_type, v) for v in values]
