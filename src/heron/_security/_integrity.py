"""Checking a local copy of a stored folder (a cached model) against its manifest."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from heron._artifacts import Manifest
from heron._errors import IntegrityError


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
