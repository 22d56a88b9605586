"""External inputs: data a step reads from outside the artifact store.

Their digest joins the step's cache key, so changed source data is never served from the
cache. Declare them on the step (``@heron.step(external=[heron.File("raw.csv")])``, or a
function of the step's arguments) or pass one as an argument (the step receives the object
and reads ``.path`` / ``.url`` itself).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron._errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from heron._client import Client


class Uncacheable(Exception):
    """An external input whose version cannot be known: the step runs every time."""


class ExternalInput:
    """Something outside Heron a step depends on; ``digest`` says which version it is."""

    @property
    def label(self) -> str:
        raise NotImplementedError

    def digest(self, client: Client) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class File(ExternalInput):
    path: str | os.PathLike[str]

    @property
    def label(self) -> str:
        return f"file:{os.fspath(self.path)}"

    def digest(self, client: Client) -> str:
        from heron._artifacts import digest_file

        if not Path(self.path).is_file():
            raise NotFound(f"external input {self.label} does not exist", field="external")
        return digest_file(self.path)


@dataclass(frozen=True)
class Folder(ExternalInput):
    path: str | os.PathLike[str]

    @property
    def label(self) -> str:
        return f"folder:{os.fspath(self.path)}"

    def digest(self, client: Client) -> str:
        from heron._artifacts import digest_file

        root = Path(self.path)
        if not root.is_dir():
            raise NotFound(f"external input {self.label} does not exist", field="external")
        sha = hashlib.sha256()
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = file.relative_to(root).as_posix()
            sha.update(f"{rel}\0{digest_file(file)}\n".encode())
        return sha.hexdigest()


@dataclass(frozen=True)
class Url(ExternalInput):
    """A URL, versioned by its ETag (or Last-Modified) from a HEAD request."""

    url: str
    timeout: float = 10.0

    @property
    def label(self) -> str:
        return f"url:{self.url}"

    def digest(self, client: Client) -> str:
        import httpx

        try:
            response = httpx.head(self.url, timeout=self.timeout, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise InvalidInput(f"external input {self.url}: {exc}", field="external") from exc
        if response.status_code >= 400:
            raise InvalidInput(
                f"external input {self.url} answered HTTP {response.status_code}",
                field="external",
            )
        version = response.headers.get("etag") or response.headers.get("last-modified")
        if not version:
            raise Uncacheable(f"{self.url} sends neither ETag nor Last-Modified")
        return hashlib.sha256(f"{self.url}\0{version}".encode()).hexdigest()


@dataclass(frozen=True)
class DatasetSource(ExternalInput):
    """A dataset version (the latest when ``version`` is None), by its content digest."""

    name: str
    version: int | None = None

    @property
    def label(self) -> str:
        return f"dataset:{self.name}" + (f"@{self.version}" if self.version else "")

    def digest(self, client: Client) -> str:
        return client.get_dataset_version(self.name, self.version).digest


def external_inputs(step: Any, args: dict[str, Any]) -> list[ExternalInput]:
    """The step's declared external inputs plus any passed as arguments."""
    declared = step.external(args) if callable(step.external) else list(step.external)
    passed = [v for v in args.values() if isinstance(v, ExternalInput)]
    for item in declared:
        if not isinstance(item, ExternalInput):
            raise InvalidInput(
                f"step {step.step_name!r}: external inputs must be File, Folder, Url or "
                f"DatasetSource, not {type(item).__name__}",
                field="external",
            )
    return [*declared, *passed]
