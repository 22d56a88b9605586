"""The ``onnx`` flavor: an ONNX graph (``onnx.ModelProto`` or its bytes) run by onnxruntime.

No code runs at load time, so ONNX is allowed under ``allow_pickle=False``. A graph with one
2-D input is fed the signature's columns as one matrix; a graph with one input per column is
fed the columns by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from heron._errors import InvalidInput
from heron._models._flavors import SaveResult, comes_from, model_file

MODEL_FILE = "model.onnx"
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class OnnxFlavor:
    name = "onnx"

    def can_save(self, obj: Any) -> bool:
        if isinstance(obj, bytes | bytearray):
            return True
        return comes_from(obj, "onnx") and hasattr(obj, "SerializeToString")

    def save(self, obj: Any, folder: Path, **options: Any) -> SaveResult:
        if options:
            raise InvalidInput(
                f"the onnx flavor takes no options, got {sorted(options)}", field="options"
            )
        data = bytes(obj) if isinstance(obj, bytes | bytearray) else obj.SerializeToString()
        _session(data)  # refuse what onnxruntime cannot read now, not at deployment
        (folder / MODEL_FILE).write_bytes(data)
        return {
            "serialization": "onnx",
            "options": {"file": MODEL_FILE},
            "libraries": ["onnxruntime", "numpy"],
        }

    def load(self, folder: Path, manifest: Any) -> OnnxPredictor:
        path = model_file(folder, manifest.flavor_options.get("file", MODEL_FILE))
        return OnnxPredictor(_session(path.read_bytes()))


def _session(data: bytes) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise InvalidInput("the onnx flavor needs onnxruntime: pip install 'heron[onnx]'") from exc
    try:
        return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise InvalidInput(f"not a model onnxruntime can run: {exc}", field="model") from exc


class OnnxPredictor:
    def __init__(self, session: Any) -> None:
        self.raw = session
        self._inputs = [(i.name, _DTYPES.get(i.type, "float32")) for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        self._label = outputs[0]
        self._proba = next((o for o in outputs[1:] if "prob" in o.lower()), None)
        self.input_kind: Literal["frame", "array"] = "array" if len(self._inputs) == 1 else "frame"

    def predict(self, data: Any) -> Any:
        (result,) = self.raw.run([self._label], self._feeds(data))
        if getattr(result, "ndim", 1) == 2 and result.shape[1] == 1:
            return result.ravel()  # regressors return an (n, 1) tensor
        return result

    @property
    def predict_proba(self) -> Any:
        if self._proba is None:
            raise AttributeError("this ONNX graph has no probability output")
        return self._predict_proba

    def _predict_proba(self, data: Any) -> Any:
        import numpy as np

        (result,) = self.raw.run([self._proba], self._feeds(data))
        if isinstance(result, list):  # skl2onnx's ZipMap: one {class: probability} per row
            classes = list(result[0])
            return np.array([[row[c] for c in classes] for row in result])
        return result

    def _feeds(self, data: Any) -> dict[str, Any]:
        import numpy as np

        if self.input_kind == "array":
            name, dtype = self._inputs[0]
            array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            return {name: array.astype(dtype, copy=False)}
        missing = [name for name, _ in self._inputs if name not in data.columns]
        if missing:
            raise InvalidInput(f"missing input column {missing[0]!r}", field=missing[0])
        return {
            name: data[name].to_numpy().astype(dtype, copy=False).reshape(-1, 1)
            for name, dtype in self._inputs
        }
