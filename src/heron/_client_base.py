"""The plumbing every group of ``heron.Client`` methods stands on: the transport, one
generic call, and moving folders of content-addressed files in and out of the store."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from heron._settings import Settings
from heron._transport import EmbeddedTransport, HttpTransport, Transport


class ClientBase:
    """The transport and the generic call; ``Client.__init__`` sets these attributes."""

    settings: Settings
    url: str | None
    _transport: Transport | None

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            if self.url:
                self._transport = HttpTransport(self.url, token=self.settings.token)
            else:
                from heron._services import Services

                self._transport = EmbeddedTransport(Services(self.settings))
        return self._transport

    def _call(self, op: str, **kwargs: Any) -> Any:
        return self.transport.call(op, **kwargs)

    def _put_folder(self, folder: Path) -> str:
        """Upload a folder's files (skipping content the store has) and its manifest."""
        from heron._artifacts import ArtifactStore

        if isinstance(self.transport, EmbeddedTransport):
            return self.transport.services.artifacts.put_folder(folder).digest
        with tempfile.TemporaryDirectory(prefix="heron-manifest-") as scratch:
            # A throwaway local store computes the manifest exactly as the server's would.
            local = ArtifactStore(scratch)
            manifest_digest = local.put_folder(folder).digest
            for entry in local.read_manifest(manifest_digest).files:
                if not self.transport.has_blob(entry.digest):
                    self.transport.put_blob(folder / entry.path)
            manifest_path = Path(scratch) / "manifest.json"
            local.copy_to(manifest_digest, manifest_path)
            return self.transport.put_blob(manifest_path)

    def _get_folder(self, digest: str, dest: Path) -> Path:
        if isinstance(self.transport, EmbeddedTransport):
            return self.transport.services.artifacts.get_folder(digest, dest, verify=True)
        from heron._artifacts import ArtifactStore

        with tempfile.TemporaryDirectory(prefix="heron-fetch-") as scratch:
            local = ArtifactStore(scratch)
            manifest_file = self.transport.fetch_blob(digest, Path(scratch) / "manifest")
            local.put_file(manifest_file)
            for entry in local.read_manifest(digest).files:
                blob = self.transport.fetch_blob(entry.digest, Path(scratch) / "in" / entry.digest)
                local.put_file(blob)
            return local.get_folder(digest, dest, verify=True)
