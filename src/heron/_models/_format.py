"""The model folder: what ``save_model`` writes and ``load_model`` reads.

    my-model/
    ├── heron-model.yaml      manifest: flavor, signature, versions, requirements, digests
    ├── model.joblib          the flavor's files (model.pkl, model.skops, model.onnx, ...)
    └── input_example.json    up to EXAMPLE_ROWS records, when an example was given

The manifest lists the SHA-256 of every other file. ``load_model`` checks them all (and that
no file was added) before a flavor reads anything, so a tampered pickle is never unpickled.
The folder is written beside its destination and renamed into place, so a failed save
leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import uuid
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from heron._errors import AlreadyExists, IntegrityError, InvalidInput, NotFound, PermissionDenied
from heron._models._flavors import (
    PICKLE_SERIALIZATIONS,
    Flavor,
    Predictor,
    get_flavor,
    infer_flavor,
    model_file,
)
from heron._models._signature import Signature, infer_signature, to_frame

FORMAT_VERSION = 1
MANIFEST_NAME = "heron-model.yaml"
EXAMPLE_NAME = "input_example.json"
EXAMPLE_ROWS = 20


class ModelManifest(BaseModel):
    """The contents of ``heron-model.yaml``."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    flavor: str
    serialization: str
    flavor_options: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    signature: Signature | None = None
    input_example: str | None = None
    library_versions: dict[str, str] = Field(default_factory=dict)
    requirements: list[str] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class LoadedModel:
    """A model read from its folder, ready to predict.

    ``predict`` and ``predict_proba`` take a DataFrame, a list of records, a dict of columns
    or a columnar ``{"columns", "data"}`` dict; with a signature, inputs are validated
    (InvalidInput naming the column) and extra columns are dropped.
    """

    def __init__(self, manifest: ModelManifest, predictor: Predictor, path: Path | None = None):
        self.manifest = manifest
        self.path = path
        self._predictor = predictor

    @property
    def flavor(self) -> str:
        return self.manifest.flavor

    @property
    def signature(self) -> Signature | None:
        return self.manifest.signature

    @property
    def raw(self) -> Any:
        return self._predictor.raw

    @property
    def supports_proba(self) -> bool:
        return callable(getattr(self._predictor, "predict_proba", None))

    @property
    def input_example(self) -> list[dict[str, Any]] | None:
        if self.path is None or self.manifest.input_example is None:
            return None
        return json.loads(model_file(self.path, self.manifest.input_example).read_text())

    def predict(self, data: Any) -> Any:
        return _plain(self._predictor.predict(self._prepare(data)))

    def predict_proba(self, data: Any) -> Any:
        if not self.supports_proba:
            raise InvalidInput(
                f"this {self.flavor} model does not give probabilities", field="predict_proba"
            )
        return _plain(self._predictor.predict_proba(self._prepare(data)))  # type: ignore[attr-defined]

    def _prepare(self, data: Any) -> Any:
        signature, kind = self.signature, self._predictor.input_kind
        if signature is not None and signature.inputs:
            if kind == "array" and signature.is_numeric:
                return signature.to_array(data)
            frame = signature.validate(data)
        else:
            frame = to_frame(data)
        return frame.to_numpy() if kind == "array" else frame

    def __repr__(self) -> str:
        return f"<LoadedModel flavor={self.flavor!r} path={str(self.path)!r}>"


def _plain(result: Any) -> Any:
    return result.to_numpy() if hasattr(result, "to_numpy") else result


# -- saving ---------------------------------------------------------------------------------


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: Signature | dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    **flavor_options: Any,
) -> ModelManifest:
    """Write ``model`` as a model folder at ``path`` (which must not exist or be empty).

    ``flavor`` is inferred when None. ``flavor_options`` go to the flavor, e.g.
    ``serialization="skops"`` for sklearn. Without ``signature``, one is inferred from
    ``input_example`` and the saved model's output on it.
    """
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AlreadyExists(f"{target} already exists and is not an empty folder", field="path")
    chosen = get_flavor(flavor) if flavor is not None else infer_flavor(model)
    _check_json(metadata, "metadata")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    staging.mkdir()
    try:
        manifest = _write_folder(chosen, model, staging, flavor_options, input_example, signature)
        manifest.metadata = dict(metadata or {})
        _write_manifest(staging, manifest)
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _write_folder(
    flavor: Flavor,
    model: Any,
    folder: Path,
    options: dict[str, Any],
    example: Any,
    signature: Signature | dict[str, Any] | None,
) -> ModelManifest:
    saved = flavor.save(model, folder, **options)
    if not saved.get("serialization"):
        raise InvalidInput(f"flavor {flavor.name!r} did not name its serialization", field="flavor")
    libraries = saved.get("libraries", [])
    manifest = ModelManifest(
        flavor=flavor.name,
        serialization=saved["serialization"],
        flavor_options=saved.get("options", {}),
        created_at=datetime.now(UTC),
        library_versions=library_versions(libraries),
        requirements=pinned_requirements(libraries),
    )
    declared = (
        _parse(Signature, signature, "signature") if isinstance(signature, dict) else signature
    )
    manifest.signature = declared
    if example is not None:
        frame = to_frame(example).head(EXAMPLE_ROWS)
        if declared is None:
            manifest.signature = _infer_signature(flavor, folder, manifest, frame)
        else:
            declared.validate(frame)
        text = frame.to_json(orient="records", date_format="iso", double_precision=15)
        (folder / EXAMPLE_NAME).write_text(text)
        manifest.input_example = EXAMPLE_NAME
    manifest.files = file_digests(folder)
    return manifest


def _infer_signature(
    flavor: Flavor, folder: Path, manifest: ModelManifest, frame: Any
) -> Signature:
    """Infer the inputs from the example, then run the saved model on it for the outputs."""
    manifest.signature = infer_signature(frame)
    # Reading back what was just written also proves the saved files load.
    loaded = LoadedModel(manifest, flavor.load(folder, manifest), folder)
    try:
        predictions = loaded.predict(frame)
        probabilities = loaded.predict_proba(frame) if loaded.supports_proba else None
    except InvalidInput:
        raise
    except Exception as exc:  # the user's model may raise anything
        raise InvalidInput(
            f"the model failed on the input example: {exc}", field="input_example"
        ) from exc
    found = getattr(loaded.raw, "classes_", None)
    classes = found.tolist() if found is not None and hasattr(found, "tolist") else None
    return infer_signature(frame, predictions, probabilities, classes)


def _check_json(value: Any, field: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field} must be plain JSON data: {exc}", field=field) from exc


def _write_manifest(folder: Path, manifest: ModelManifest) -> None:
    text = yaml.safe_dump(manifest.model_dump(mode="json"), sort_keys=False)
    (folder / MANIFEST_NAME).write_text(text)


def library_versions(libraries: list[str]) -> dict[str, str]:
    """Python's version and the installed versions of ``libraries`` (and Heron's)."""
    versions = {"python": platform.python_version()}
    for name in ["heron", *libraries]:
        version = _installed_version(name)
        if version is not None:
            versions[name] = version
    return versions


def pinned_requirements(libraries: list[str]) -> list[str]:
    """pip lines pinning each installed library to its installed version."""
    lines = []
    for name in dict.fromkeys(libraries):
        version = _installed_version(name)
        if version is not None:
            lines.append(f"{name}=={version}")
    return lines


def _installed_version(name: str) -> str | None:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


# -- digests --------------------------------------------------------------------------------


def file_digests(folder: Path) -> dict[str, str]:
    """SHA-256 (hex) of every file in ``folder`` but the manifest, by POSIX relative path."""
    digests = {}
    for name in _folder_files(folder):
        with open(folder / name, "rb") as f:
            digests[name] = hashlib.file_digest(f, "sha256").hexdigest()
    return digests


def _folder_files(folder: Path) -> list[str]:
    names = []
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            raise IntegrityError(f"{name} is a symbolic link; model folders hold files", field=name)
        if path.is_file() and name != MANIFEST_NAME:
            names.append(name)
    return names


def verify_model(path: str | os.PathLike[str]) -> ModelManifest:
    """Check every file against the manifest's digests; raise IntegrityError naming a file
    that was changed, removed or added."""
    folder = Path(path)
    manifest = read_manifest(folder)
    _verify_files(folder, manifest)
    return manifest


def _verify_files(folder: Path, manifest: ModelManifest) -> None:
    present = set(_folder_files(folder))
    for name, expected in manifest.files.items():
        if name not in present:
            raise IntegrityError(f"model file {name} is missing", field=name)
        with open(model_file(folder, name), "rb") as f:
            actual = hashlib.file_digest(f, "sha256").hexdigest()
        if actual != expected:
            raise IntegrityError(
                f"model file {name} does not match its SHA-256 in {MANIFEST_NAME}: "
                f"expected {expected}, found {actual}",
                field=name,
            )
    extra = sorted(present - set(manifest.files))
    if extra:
        raise IntegrityError(f"model file {extra[0]} is not listed in the manifest", field=extra[0])


# -- loading --------------------------------------------------------------------------------


# libyaml's parser where PyYAML was built with it: a manifest of a 30-column signature took
# 20 ms to parse in Python, a cost every prediction server pays before it is ready.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_manifest(path: str | os.PathLike[str]) -> ModelManifest:
    """The manifest of the model folder at ``path``, without loading the model."""
    manifest_path = Path(path) / MANIFEST_NAME
    try:
        raw = yaml.load(manifest_path.read_text(), Loader=_SAFE_LOADER)
    except FileNotFoundError:
        raise NotFound(f"no model at {path}: {MANIFEST_NAME} is missing", field="path") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{MANIFEST_NAME} is not valid YAML: {exc}", field="manifest") from exc
    manifest = _parse(ModelManifest, raw, "manifest")
    if manifest.format_version > FORMAT_VERSION:
        raise InvalidInput(
            f"model format version {manifest.format_version} is newer than this Heron reads "
            f"({FORMAT_VERSION}); upgrade Heron",
            field="format_version",
        )
    return manifest


def _parse(model: type[Any], raw: Any, field: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(f"invalid {field}: {exc}", field=field) from exc


def load_model(
    path: str | os.PathLike[str], *, verify: bool = True, allow_pickle: bool = True
) -> LoadedModel:
    """Read the model folder at ``path``.

    With ``verify`` every file is checked against its digest before the flavor reads
    anything. ``allow_pickle=False`` refuses formats that run code when read (joblib,
    pickle, cloudpickle) with PermissionDenied; use skops or ONNX for untrusted models.
    """
    folder = Path(path)
    manifest = read_manifest(folder)
    flavor = get_flavor(manifest.flavor)
    if not allow_pickle and manifest.serialization in PICKLE_SERIALIZATIONS:
        raise PermissionDenied(
            f"this {manifest.flavor} model is stored with {manifest.serialization}, which can "
            "run arbitrary code when loaded, and allow_pickle=False; save it with "
            "serialization='skops' (scikit-learn) or as ONNX to load it safely"
        )
    if verify:
        _verify_files(folder, manifest)
    return LoadedModel(manifest, flavor.load(folder, manifest), folder)
