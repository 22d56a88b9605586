"""Checking a local copy of a stored folder (a cached model) against its manifest."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from heron._artifacts import Manifest
from heron._errors import IntegrityError

if TYPE_CHECKING:
    from heron._client import Client


def verify_folder(folder: Path, manifest: Manifest) -> None:
    """Raise IntegrityError naming the first file of ``folder`` that differs from the
    store's manifest: changed, missing, added, or a link."""
    expected = {entry.path: entry for entry in manifest.files}
    present = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            rel = full.relative_to(folder).as_posix()
            mode = full.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise IntegrityError(f"cached model file {rel} is a symbolic link", field=rel)
            if stat.S_ISREG(mode):
                present.add(rel)
    for rel, entry in sorted(expected.items()):
        if rel not in present:
            raise IntegrityError(f"cached model file {rel} is missing", field=rel)
        with open(folder / rel, "rb") as f:
            actual = hashlib.file_digest(f, "sha256").hexdigest()
        if actual != entry.digest:
            raise IntegrityError(
                f"cached model file {rel} does not match the artifact store: expected "
                f"SHA-256 {entry.digest}, found {actual}",
                field=rel,
            )
    extra = sorted(present - set(expected))
    if extra:
        raise IntegrityError(
            f"cached model file {extra[0]} is not in the stored model", field=extra[0]
        )


def verify_cached_folder(client: Client, folder: Path, digest: str) -> None:
    """Check a cached copy of the stored folder ``digest`` against the store's manifest
    (itself content-addressed, so a cache edit cannot forge it)."""
    verify_folder(folder, stored_manifest(client, digest))


def stored_manifest(client: Client, digest: str) -> Manifest:
    from heron._artifacts import ArtifactStore
    from heron._transport import EmbeddedTransport

    transport = client.transport
    if isinstance(transport, EmbeddedTransport):
        return transport.services.artifacts.read_manifest(digest)
    with tempfile.TemporaryDirectory(prefix="heron-manifest-") as scratch:
        local = ArtifactStore(scratch)
        local.put_file(transport.fetch_blob(digest, Path(scratch) / "manifest"))
        return local.read_manifest(digest)
