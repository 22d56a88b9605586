"""Heron's exception tree.

    HeronError                      500  exit 1   something went wrong inside Heron
    ├── NotFound                    404  exit 3   the named object does not exist
    ├── AlreadyExists               409  exit 4   a name or version is taken
    ├── InvalidInput                422  exit 2   a field is malformed; ``field`` names it
    ├── Conflict                    409  exit 5   the change clashes with current state
    ├── Unauthenticated             401  exit 6   no valid credentials were given
    ├── PermissionDenied            403  exit 7   the caller may not do this
    ├── IntegrityError              500  exit 8   stored content does not match its digest
    └── Unavailable                 503  exit 9   a backend (server, database) cannot be reached

Every error knows its HTTP status, its CLI exit code and its wire ``code``; the server and
the CLI each have one handler that turns an error into output, and the HTTP client turns the
wire ``code`` back into the same class, so callers catch by type on both transports.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HeronError(Exception):
    """Base of every error Heron raises on purpose."""

    status_code: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field}

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only ``field`` would be lost by the default pickling (Ray, processes).
        return (_rebuild, (type(self), self.message, self.field))


def _rebuild(cls: type[HeronError], message: str, field: str | None) -> HeronError:
    return cls(message, field=field)


class NotFound(HeronError):
    status_code = 404
    exit_code = 3
    code = "not_found"


class AlreadyExists(HeronError):
    status_code = 409
    exit_code = 4
    code = "already_exists"


class InvalidInput(HeronError):
    status_code = 422
    exit_code = 2
    code = "invalid_input"


class Conflict(HeronError):
    status_code = 409
    exit_code = 5
    code = "conflict"


class Unauthenticated(HeronError):
    status_code = 401
    exit_code = 6
    code = "unauthenticated"


class PermissionDenied(HeronError):
    status_code = 403
    exit_code = 7
    code = "permission_denied"


class IntegrityError(HeronError):
    status_code = 500
    exit_code = 8
    code = "integrity_error"


class Unavailable(HeronError):
    status_code = 503
    exit_code = 9
    code = "unavailable"


ERRORS_BY_CODE: dict[str, type[HeronError]] = {
    cls.code: cls
    for cls in (
        HeronError,
        NotFound,
        AlreadyExists,
        InvalidInput,
        Conflict,
        Unauthenticated,
        PermissionDenied,
        IntegrityError,
        Unavailable,
    )
}


def error_from_dict(payload: dict[str, Any]) -> HeronError:
    """Rebuild the error a server sent (``{"code", "message", "field"}``)."""
    cls = ERRORS_BY_CODE.get(str(payload.get("code")), HeronError)
    return cls(str(payload.get("message", "")), field=payload.get("field"))
