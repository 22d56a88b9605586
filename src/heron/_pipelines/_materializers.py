"""Materializers: how a step output becomes an artifact and comes back.

A materializer has a ``name`` (stored with the output, to find it again on load) and three
methods::

    class Materializer:
        name = "my-format"
        def can_save(self, value) -> bool: ...      # does this materializer store value?
        def save(self, value, folder: Path) -> None: ...   # write files into empty folder
        def load(self, folder: Path) -> Any: ...    # read them back (folder is removed after)

``register_materializer(m)`` puts one before the built-ins, which are tried in this order:
models (Heron's model format: scikit-learn estimators, ONNX), DataFrames (Parquet), NumPy
arrays (``.npy``, no pickle) and JSON values (None, bools, numbers, strings, and lists and
dicts of them). The folder is stored with ``put_folder``, so an output is addressed by
the digest of its manifest and every file is verified when read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

from heron._errors import InvalidInput


class Materializer:
    name: ClassVar[str] = ""

    def can_save(self, value: Any) -> bool:
        raise NotImplementedError

    def save(self, value: Any, folder: Path) -> None:
        raise NotImplementedError

    def load(self, folder: Path) -> Any:
        raise NotImplementedError


class JsonMaterializer(Materializer):
    name = "json"

    def can_save(self, value: Any) -> bool:
        return _is_json(value)

    def save(self, value: Any, folder: Path) -> None:
        (folder / "value.json").write_text(json.dumps(value, sort_keys=True))

    def load(self, folder: Path) -> Any:
        return json.loads((folder / "value.json").read_text())


class DataFrameMaterializer(Materializer):
    name = "parquet"

    def can_save(self, value: Any) -> bool:
        import sys

        pd = sys.modules.get("pandas")
        return pd is not None and isinstance(value, pd.DataFrame)

    def save(self, value: Any, folder: Path) -> None:
        value.to_parquet(folder / "data.parquet")

    def load(self, folder: Path) -> Any:
        import pandas as pd

        return pd.read_parquet(folder / "data.parquet")


class NumpyMaterializer(Materializer):
    name = "npy"

    def can_save(self, value: Any) -> bool:
        import sys

        np = sys.modules.get("numpy")
        return np is not None and isinstance(value, np.ndarray) and value.dtype != object

    def save(self, value: Any, folder: Path) -> None:
        import numpy as np

        np.save(folder / "array.npy", value, allow_pickle=False)

    def load(self, folder: Path) -> Any:
        import numpy as np

        return np.load(folder / "array.npy", allow_pickle=False)


class ModelMaterializer(Materializer):
    """Models in Heron's model format; loading gives back the model object itself."""

    name = "heron-model"
    _flavors = ("sklearn", "onnx")

    def can_save(self, value: Any) -> bool:
        import sys

        if "sklearn" in sys.modules:
            from sklearn.base import BaseEstimator

            if isinstance(value, BaseEstimator):
                return True
        return type(value).__module__.startswith("onnx")

    def save(self, value: Any, folder: Path) -> None:
        from heron._models import save_model

        save_model(value, folder / "model")

    def load(self, folder: Path) -> Any:
        from heron._models import load_model

        return load_model(folder / "model", verify=True).raw


_REGISTERED: list[Materializer] = []
BUILTIN: tuple[Materializer, ...] = (
    ModelMaterializer(),
    DataFrameMaterializer(),
    NumpyMaterializer(),
    JsonMaterializer(),
)


def register_materializer(materializer: Materializer) -> Materializer:
    """Store some kind of value your own way; tried before the built-ins."""
    if not materializer.name:
        raise InvalidInput("a materializer needs a name", field="name")
    _REGISTERED[:] = [m for m in _REGISTERED if m.name != materializer.name]
    _REGISTERED.insert(0, materializer)
    return materializer


def materializers() -> list[Materializer]:
    return [*_REGISTERED, *BUILTIN]


def for_value(value: Any, where: str) -> Materializer:
    for materializer in materializers():
        if materializer.can_save(value):
            return materializer
    raise InvalidInput(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which no "
        "materializer stores (built in: JSON values, DataFrames, NumPy arrays, models); "
        "return one of those or register a Materializer for it",
        field=where,
    )


def by_name(name: str) -> Materializer:
    for materializer in materializers():
        if materializer.name == name:
            return materializer
    raise InvalidInput(
        f"no materializer {name!r} is registered in this process (register it before "
        "loading outputs it stored)",
        field="materializer",
    )


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return type(value) is int
    if isinstance(value, float):
        return type(value) is float and math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False
