"""The ``python`` flavor: any object with a ``predict`` method, pickled.

cloudpickle is used when installed (it also captures classes defined in ``__main__`` or a
notebook); plain pickle otherwise. Loading runs code from the file, so ``load_model`` checks
digests first and refuses it under ``allow_pickle=False``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Literal

from heron._errors import InvalidInput
from heron._models._flavors import SaveResult, model_file

MODEL_FILE = "model.pkl"


class ObjectPredictor:
    """A predictor over an in-memory object with ``predict`` (and maybe ``predict_proba``)."""

    def __init__(self, raw: Any, input_kind: Literal["frame", "array"] = "frame") -> None:
        self.raw = raw
        self.input_kind = input_kind

    def predict(self, data: Any) -> Any:
        return self.raw.predict(data)

    @property
    def predict_proba(self) -> Any:
        # An AttributeError here makes hasattr() false, as for sklearn's available_if.
        return self.raw.predict_proba


class PythonFlavor:
    name = "python"

    def can_save(self, obj: Any) -> bool:
        return callable(getattr(obj, "predict", None))

    def save(self, obj: Any, folder: Path, **options: Any) -> SaveResult:
        if options:
            raise InvalidInput(
                f"the python flavor takes no options, got {sorted(options)}", field="options"
            )
        try:
            import cloudpickle as pickler

            serialization = "cloudpickle"
        except ImportError:  # pragma: no cover - cloudpickle is usually installed
            pickler = pickle  # type: ignore[assignment]
            serialization = "pickle"
        with open(folder / MODEL_FILE, "wb") as f:
            pickler.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        libraries = [serialization] if serialization == "cloudpickle" else []
        return {
            "serialization": serialization,
            "options": {"file": MODEL_FILE},
            "libraries": [*libraries, "numpy", "pandas"],
        }

    def load(self, folder: Path, manifest: Any) -> ObjectPredictor:
        path = model_file(folder, manifest.flavor_options.get("file", MODEL_FILE))
        with open(path, "rb") as f:
            if manifest.serialization == "cloudpickle":
                import cloudpickle

                return ObjectPredictor(cloudpickle.load(f))
            return ObjectPredictor(pickle.load(f))
