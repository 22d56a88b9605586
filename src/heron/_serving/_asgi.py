"""Small ASGI helpers of the prediction server: headers, a size-limited body, JSON in and
out, and error answers in the shape every Heron error has (``{"error": {code, message,
field}}``)."""

from __future__ import annotations

from typing import Any

import orjson

from heron._errors import HeronError, InvalidInput
from heron._models._signature import unpack_payload

JSON_HEADERS = [(b"content-type", b"application/json")]


class BodyTooLarge(HeronError):
    """A request body over the server's limit (``--max-body-mb``): a 413."""

    status_code = 413
    code = "too_large"


# Answered only once the models are loaded, and only with a token when auth is on.
GUARDED = frozenset(("/predict", "/feedback", "/metrics"))


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(scope: dict[str, Any], receive: Any, limit: int) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise InvalidInput("content-length is not a number", field="body") from None
            if declared > limit:
                raise BodyTooLarge(f"the body is larger than {limit} bytes")
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"the body is larger than {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None


def parse_payload(body: bytes) -> Any:
    return unpack_payload(parse_json(body))


async def send_json(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Any, status: int, code: str, message: str, field: str | None = None
) -> None:
    body = orjson.dumps({"error": {"code": code, "message": message, "field": field}})
    await send_json(send, status, body)
