"""``heron.Client`` methods for the model registry: logging, registering, aliases, loading."""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron._client_base import ClientBase
from heron._entities import (
    AliasChange,
    Lineage,
    ModelCardFields,
    ModelVersion,
    Page,
    RegisteredModel,
)
from heron._errors import InvalidInput

if TYPE_CHECKING:
    from heron._client import Client
    from heron._models import LoadedModel

_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@]+))$")


class RegistryMethods(ClientBase):
    """Registered models, versions, aliases, lineage and loading; ``Client`` inherits these."""

    # --- registry ----------------------------------------------------------------------

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        run_id: str | None = None,
        input_example: Any = None,
        signature: Any = None,
        flavor: str | None = None,
        card: ModelCardFields | None = None,
        pipeline_run_id: str | None = None,
        **save_options: Any,
    ) -> ModelVersion:
        """Save ``model`` in Heron's model format and register it as a new version."""
        from heron._models import save_model

        with tempfile.TemporaryDirectory(prefix="heron-model-") as scratch:
            folder = Path(scratch) / "model"
            manifest = save_model(
                model,
                folder,
                flavor=flavor,
                input_example=input_example,
                signature=signature,
                **save_options,
            )
            return self.register_model(
                folder,
                name,
                run_id=run_id,
                card=card,
                pipeline_run_id=pipeline_run_id,
                _manifest=manifest,
            )

    def register_model(
        self,
        path: str | Path,
        name: str,
        *,
        run_id: str | None = None,
        card: ModelCardFields | None = None,
        pipeline_run_id: str | None = None,
        _manifest: Any = None,
    ) -> ModelVersion:
        """Register a model folder already in Heron's format (``heron-model.yaml``)."""
        from heron._models import read_manifest

        folder = Path(path)
        manifest = _manifest or read_manifest(folder)
        source = self._put_folder(folder)
        signature = manifest.signature.model_dump(mode="json") if manifest.signature else None
        return self._call(
            "create_model_version",
            name=name,
            source=source,
            flavor=manifest.flavor,
            signature=signature,
            run_id=run_id,
            card=card,
            pipeline_run_id=pipeline_run_id,
        )

    def create_registered_model(
        self, name: str, description: str = "", tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        return self._call("create_registered_model", name=name, description=description, tags=tags)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._call("get_registered_model", name=name)

    def list_registered_models(
        self, max_results: int = 100, page_token: str | None = None
    ) -> Page[RegisteredModel]:
        return self._call("list_registered_models", max_results=max_results, page_token=page_token)

    def update_registered_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        return self._call("update_registered_model", name=name, description=description, tags=tags)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return self._call("get_model_version", name=name, version=version)

    def list_model_versions(
        self, name: str, max_results: int = 100, page_token: str | None = None
    ) -> Page[ModelVersion]:
        return self._call(
            "list_model_versions", name=name, max_results=max_results, page_token=page_token
        )

    def update_model_version(
        self,
        name: str,
        version: int,
        tags: dict[str, str] | None = None,
        card: ModelCardFields | None = None,
    ) -> ModelVersion:
        return self._call("update_model_version", name=name, version=version, tags=tags, card=card)

    def archive_model_version(self, name: str, version: int) -> ModelVersion:
        return self._call("archive_model_version", name=name, version=version)

    def delete_model_version(self, name: str, version: int) -> None:
        self._call("delete_model_version", name=name, version=version)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        return self._call("set_alias", name=name, alias=alias, version=int(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self._call("delete_alias", name=name, alias=alias)

    def list_alias_changes(self, name: str, alias: str | None = None) -> list[AliasChange]:
        return self._call("list_alias_changes", name=name, alias=alias)

    def get_lineage(self, name: str, version: int) -> Lineage:
        return self._call("get_lineage", name=name, version=version)

    def get_model_card(self, name: str, version: int) -> str:
        return self._call("get_model_card", name=name, version=version)

    def resolve_model(self, uri: str) -> ModelVersion:
        """``models:/name/3`` or ``models:/name@champion`` → the model version."""
        match = _MODEL_URI.match(uri)
        if match is None:
            raise InvalidInput(
                f"{uri!r} is not a model URI (models:/NAME/VERSION or models:/NAME@ALIAS)",
                field="uri",
            )
        if match["alias"]:
            return self._call(
                "get_model_version_by_alias", name=match["name"], alias=match["alias"]
            )
        return self.get_model_version(match["name"], int(match["version"]))

    def load_model(self, uri: str) -> LoadedModel:
        """Load a registered model; its files are verified against their digests first."""
        from heron._models import load_model

        mv = self.resolve_model(uri)
        return load_model(
            self.model_folder(mv), verify=True, allow_pickle=self.settings.allow_pickle
        )

    def model_folder(self: Client, mv: ModelVersion) -> Path:
        """A local copy of a version's folder, fetched once into the cache and reused.

        A cached copy is checked against the artifact store's manifest every time (not
        only against its own ``heron-model.yaml``, which an edit could change too)."""
        cache = (self.settings.home / "cache" / "models" / mv.source).resolve()
        if cache.exists():
            from heron._security._integrity import verify_cached_folder

            verify_cached_folder(self, cache, mv.source)
        else:
            cache.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache.parent))
            try:
                fetched = self._get_folder(mv.source, staging / "model")
                # Another process may have cached it first: then theirs is used.
                with contextlib.suppress(OSError):
                    fetched.rename(cache)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return cache
