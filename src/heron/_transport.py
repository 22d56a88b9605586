"""The client's two transports: embedded (services in this process) and HTTP (a server).

Both take an operation name from ``heron._api.OPERATIONS`` and its keyword arguments, and
return the same entities or raise the same exceptions, so every ``Client`` method is
written once, over ``Transport``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from heron._errors import HeronError, IntegrityError, Unavailable, error_from_dict

if TYPE_CHECKING:
    import httpx

    from heron._services import Services

_CHUNK = 1024 * 1024


class Transport(Protocol):
    def call(self, op: str, **kwargs: Any) -> Any: ...
    def put_blob(self, path: Path) -> str: ...
    def has_blob(self, digest: str) -> bool: ...
    def fetch_blob(self, digest: str, dest: Path) -> Path: ...
    def close(self) -> None: ...


class EmbeddedTransport:
    """Calls the services directly, on the stores this process opened."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def call(self, op: str, **kwargs: Any) -> Any:
        from heron._api import OPERATIONS

        operation = OPERATIONS[op]
        return getattr(getattr(self.services, operation.service), op)(**kwargs)

    def put_blob(self, path: Path) -> str:
        return self.services.artifacts.put_file(path).digest

    def has_blob(self, digest: str) -> bool:
        return self.services.artifacts.exists(digest)

    def fetch_blob(self, digest: str, dest: Path) -> Path:
        return self.services.artifacts.copy_to(digest, dest, verify=True)

    def close(self) -> None:
        self.services.close()


class HttpTransport:
    """Talks to ``heron server`` over HTTP, with the same operations and errors."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
    ) -> None:
        import httpx

        headers = {"user-agent": "heron-client"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        # ``http`` lets tests pass an in-process client (Starlette's TestClient is one).
        # A plain-HTTP server never needs TLS (redirects are not followed), so the CA
        # bundle, ~60 ms of a fresh process's first call, is loaded only for https.
        https = self.url.lower().startswith("https:")
        self.http = http or httpx.Client(base_url=self.url, timeout=timeout, verify=https)
        self.http.headers.update(headers)

    def call(self, op: str, **kwargs: Any) -> Any:
        from heron._api import API_PREFIX, OPERATIONS

        operation = OPERATIONS[op]
        path = API_PREFIX + _fill_path(operation.path, kwargs)
        if operation.has_body:
            response = self._send(operation.method, path, content=_json_body(kwargs), headers=_JSON)
        else:
            query = {k: v for k, v in _jsonable(kwargs).items() if v is not None}
            response = self._send(operation.method, path, params=query)
        if response.status_code == 204:
            return None
        return operation.result_adapter.validate_json(response.content)

    def put_blob(self, path: Path) -> str:
        def chunks() -> Any:
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    yield chunk

        response = self._send("POST", "/api/v1/blobs", content=chunks())
        return str(response.json()["digest"])

    def has_blob(self, digest: str) -> bool:
        response = self._request("HEAD", f"/api/v1/blobs/{quote(digest, safe='')}")
        return response.status_code == 200

    def fetch_blob(self, digest: str, dest: Path) -> Path:
        """Download to ``dest`` atomically, checking the digest of what arrived."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".heron-")
        sha = hashlib.sha256()
        try:
            with (
                os.fdopen(fd, "wb") as out,
                self.http.stream("GET", f"/api/v1/blobs/{quote(digest, safe='')}") as response,
            ):
                if response.status_code >= 400:
                    response.read()
                    _raise_for(response)
                for chunk in response.iter_bytes(_CHUNK):
                    sha.update(chunk)
                    out.write(chunk)
            if sha.hexdigest() != digest:
                raise IntegrityError(f"downloaded content does not match digest {digest}")
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    def close(self) -> None:
        self.http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach Heron server at {self.url}: {exc}") from exc

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._request(method, path, **kwargs)
        if response.status_code >= 400:
            _raise_for(response)
        return response


def _raise_for(response: httpx.Response) -> None:
    try:
        payload = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise HeronError(f"HTTP {response.status_code}: {response.text[:200]}") from None
    raise error_from_dict(payload)


def _fill_path(template: str, kwargs: dict[str, Any]) -> str:
    def replace(match: Any) -> str:
        name, is_path = match.group(1), match.group(2)
        value = str(kwargs.pop(name))
        return quote(value, safe="/" if is_path else "")

    import re

    return re.sub(r"{(\w+)(:path)?}", replace, template)


_JSON = {"content-type": "application/json"}


def _json_body(kwargs: dict[str, Any]) -> bytes:
    """The request body in one pass through pydantic-core (twice as fast as plain json on a
    batch of metric points). NaN and infinities go out as JSON5-style constants, as
    ``json.dumps`` writes them, so the server names the bad value instead of seeing null."""
    from pydantic_core import to_json

    return to_json(kwargs, inf_nan_mode="constants")


def _jsonable(kwargs: dict[str, Any]) -> dict[str, Any]:
    from pydantic_core import to_jsonable_python

    return {k: to_jsonable_python(v) for k, v in kwargs.items()}
