"""Validation of user-given names and relative paths.

Names end up in URLs, file names and CLI arguments, so they are kept to a safe alphabet;
paths inside artifact folders are checked so nothing can escape the folder they belong to.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from typing import Any
from urllib.parse import unquote

from heron._errors import InvalidInput

MAX_NAME_LENGTH = 200
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$")


def check_name(value: str, field: str = "name") -> str:
    """Return ``value`` if it is a valid object name, else raise InvalidInput naming ``field``."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field} must be a non-empty string", field=field)
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{field} is longer than {MAX_NAME_LENGTH} characters", field=field)
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise InvalidInput(f"{field} contains control characters", field=field)
    if ".." in value or not _NAME.match(value) or value != value.strip():
        raise InvalidInput(
            f"{field} {value!r} may hold only letters, digits, '_', '-', '.', spaces "
            "(not at the ends) and must not contain '..'",
            field=field,
        )
    return value


def check_key(value: str, field: str = "key") -> str:
    """Param, metric and tag keys: like names, but '/' is allowed to group them."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field} must be a non-empty string", field=field)
    for part in value.split("/"):
        check_name(part, field)
    return value


def check_relative_path(value: str, field: str = "path") -> str:
    """A path inside a folder: relative, no '..', no backslashes, no NUL, even once decoded."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field} must be a non-empty string", field=field)
    decoded = value
    for _ in range(3):  # double- and triple-encoded forms decode to the same traversal
        decoded = unquote(decoded)
    for candidate in (value, decoded):
        if "\x00" in candidate or "\\" in candidate:
            raise InvalidInput(f"{field} {value!r} contains a NUL or a backslash", field=field)
        if candidate.startswith("/") or re.match(r"^[A-Za-z]:", candidate):
            raise InvalidInput(f"{field} {value!r} must be relative", field=field)
        parts = candidate.split("/")
        if any(p in ("..", "") for p in parts) or any(ord(c) < 32 for c in candidate):
            raise InvalidInput(
                f"{field} {value!r} must not contain '..' or empty parts", field=field
            )
    if len(value) > 1000:
        raise InvalidInput(f"{field} is longer than 1000 characters", field=field)
    return value


def check_metric(point: Any) -> Any:
    """A metric point (``.key``, ``.value``) Heron can store: a valid key, a finite value."""
    check_metric_value(point.key, point.value)
    return point


def check_metric_value(key: str, value: float) -> None:
    _check_any_metric_key(key)
    if not math.isfinite(value):
        raise _non_finite(key, value)


def check_metric_batch(batch: Any) -> Any:
    """``check_metric`` for points given as columns (a ``MetricBatch``), at C speed for the
    usual batch: each distinct key is checked once, the values in one pass."""
    keys, values = batch.keys, batch.values
    for name in ("values", "steps", "timestamps"):
        column = getattr(batch, name)
        if column is not None and len(column) != len(keys):
            raise InvalidInput(
                f"metrics.{name} has {len(column)} items for {len(keys)} keys",
                field=f"metrics.{name}",
            )
    for key in set(keys):
        _check_any_metric_key(key)
    if not all(map(math.isfinite, values)):
        index = next(i for i, value in enumerate(values) if not math.isfinite(value))
        raise _non_finite(keys[index], values[index])
    return batch


def _non_finite(key: str, value: float) -> InvalidInput:
    return InvalidInput(
        f"metric {key!r} has a non-finite value ({value}); Heron stores finite values only",
        field=f"metrics.{key}",
    )


def _check_any_metric_key(key: Any) -> None:
    if isinstance(key, str):
        _check_metric_key(key)
    else:  # not cacheable, and never valid: check_key says why
        check_key(key, "metrics.key")


@functools.lru_cache(maxsize=4096)
def _check_metric_key(key: str) -> str:
    # A run logs the same few keys over and over; checking each point's key character by
    # character cost a third of the time of logging a batch. Only valid keys are cached.
    return check_key(key, "metrics.key")
