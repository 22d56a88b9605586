"""The flavor extension point: how one kind of model is written to and read from a folder.

A flavor is a small object (see :class:`Flavor`); :func:`register_flavor` adds it to
``FLAVORS``. Heron's own flavors (``python``, ``onnx``, ``sklearn``) are registered in
``heron._models.__init__`` exactly as a third-party one would be. When ``save_model`` is not
told a flavor it asks each registered flavor's ``can_save``, the most recently registered
first, so a plugin can claim objects a built-in would also accept (``python`` takes anything
with ``predict`` and is registered first, so it is the last resort).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict

from heron._errors import AlreadyExists, InvalidInput

if TYPE_CHECKING:
    from heron._models._format import ModelManifest

# Serializations that run code when read; ``load_model(allow_pickle=False)`` refuses them.
PICKLE_SERIALIZATIONS = frozenset({"pickle", "cloudpickle", "joblib"})


class SaveResult(TypedDict, total=False):
    """What :meth:`Flavor.save` reports.

    ``serialization`` (required) names the on-disk format, e.g. ``"joblib"`` or ``"onnx"``;
    ``options`` is stored in the manifest and given back to ``load``; ``libraries`` are the
    distributions the model needs at load time, pinned into the manifest's requirements.
    """

    serialization: str
    options: dict[str, Any]
    libraries: list[str]


class Predictor(Protocol):
    """What a flavor's ``load`` returns.

    ``input_kind`` says what ``predict`` takes: ``"frame"`` (a validated DataFrame) or
    ``"array"`` (a 2-D numpy array, the fast path for all-numeric signatures). A predictor
    that can give class probabilities also has ``predict_proba(data)``.
    """

    raw: Any
    input_kind: Literal["frame", "array"]

    def predict(self, data: Any) -> Any: ...


class Flavor(Protocol):
    name: str

    def can_save(self, obj: Any) -> bool: ...

    def save(self, obj: Any, folder: Path, **options: Any) -> SaveResult: ...

    def load(self, folder: Path, manifest: ModelManifest) -> Predictor: ...


FLAVORS: dict[str, Flavor] = {}


def register_flavor(flavor: Flavor, *, replace: bool = False) -> Flavor:
    """Make ``flavor`` available to save_model and load_model under ``flavor.name``."""
    if flavor.name in FLAVORS and not replace:
        raise AlreadyExists(f"a flavor named {flavor.name!r} is already registered", field="flavor")
    FLAVORS[flavor.name] = flavor
    return flavor


def get_flavor(name: str) -> Flavor:
    try:
        return FLAVORS[name]
    except KeyError:
        known = ", ".join(sorted(FLAVORS))
        raise InvalidInput(f"unknown flavor {name!r} (known: {known})", field="flavor") from None


def infer_flavor(obj: Any) -> Flavor:
    for flavor in reversed(FLAVORS.values()):
        if flavor.can_save(obj):
            return flavor
    raise InvalidInput(
        f"cannot tell how to save a {type(obj).__name__}: give flavor= or an object with "
        "a predict method",
        field="flavor",
    )


def comes_from(obj: Any, package: str) -> bool:
    """True if ``obj``'s class or one of its bases is defined in ``package``.

    Lets a flavor recognise its objects without importing the library.
    """
    return any(cls.__module__.split(".")[0] == package for cls in type(obj).__mro__)


def model_file(folder: Path, name: str) -> Path:
    """``folder / name``, refusing names (read from a manifest) that leave the folder."""
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()) or path == folder.resolve():
        raise InvalidInput(f"model file {name!r} is outside the model folder", field="file")
    return path
