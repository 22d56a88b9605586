"""The ``sklearn`` flavor: scikit-learn estimators and pipelines.

Two serializations: ``joblib`` (default; a pickle, so it runs code when loaded) and ``skops``
(``pip install heron[safe]``), which loads only types skops trusts and so is safe for models
from untrusted sources. A model saved with skops must consist of trusted types only; that is
checked when saving, so a model that saves also loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heron._errors import InvalidInput, PermissionDenied
from heron._models._flavors import SaveResult, comes_from, model_file
from heron._models._python import ObjectPredictor

_FILES = {"joblib": "model.joblib", "skops": "model.skops"}
_LIBRARIES = ["scikit-learn", "numpy", "scipy", "pandas"]


class SklearnFlavor:
    name = "sklearn"

    def can_save(self, obj: Any) -> bool:
        return comes_from(obj, "sklearn") and callable(getattr(obj, "predict", None))

    def save(self, obj: Any, folder: Path, **options: Any) -> SaveResult:
        serialization = options.pop("serialization", "joblib")
        if options:
            raise InvalidInput(f"unknown sklearn options {sorted(options)}", field="options")
        if serialization not in _FILES:
            raise InvalidInput(
                f"sklearn serialization must be 'joblib' or 'skops', not {serialization!r}",
                field="serialization",
            )
        path = folder / _FILES[serialization]
        if serialization == "joblib":
            import joblib

            joblib.dump(obj, path, compress=3)
        else:
            _dump_skops(obj, path)
        return {
            "serialization": serialization,
            "options": {"file": path.name},
            "libraries": [*_LIBRARIES, serialization],
        }

    def load(self, folder: Path, manifest: Any) -> ObjectPredictor:
        serialization = manifest.serialization
        path = model_file(folder, manifest.flavor_options.get("file", _FILES.get(serialization)))
        if serialization == "skops":
            model = _load_skops(path)
        elif serialization == "joblib":
            import joblib

            model = joblib.load(path)
        else:
            raise InvalidInput(
                f"unknown sklearn serialization {serialization!r}", field="serialization"
            )
        # A model fitted on a DataFrame wants one back (and warns on arrays); others want arrays.
        if hasattr(model, "feature_names_in_"):
            return ObjectPredictor(model, "frame")
        return ObjectPredictor(model, "array")


def _skops() -> Any:
    try:
        import skops.io
    except ImportError as exc:
        raise InvalidInput(
            "serialization='skops' needs skops: pip install 'heron[safe]'", field="serialization"
        ) from exc
    return skops.io


def _dump_skops(obj: Any, path: Path) -> None:
    sio = _skops()
    sio.dump(obj, path)
    untrusted = sio.get_untrusted_types(file=path)
    if untrusted:
        raise InvalidInput(
            f"the model holds types skops does not trust ({', '.join(untrusted)}); "
            "save it with serialization='joblib' or convert it to ONNX",
            field="serialization",
        )


def _load_skops(path: Path) -> Any:
    sio = _skops()
    untrusted = sio.get_untrusted_types(file=path)
    if untrusted:
        raise PermissionDenied(
            f"{path.name} holds types skops does not trust: {', '.join(untrusted)}"
        )
    return sio.load(path)
