"""Heron's model format: a folder with a ``heron-model.yaml`` manifest, and its flavors.

Importing this package is cheap: scikit-learn, pandas and onnxruntime are imported only
when a model is saved, loaded or validated.
"""

from heron._models._flavors import (
    FLAVORS,
    PICKLE_SERIALIZATIONS,
    Flavor,
    Predictor,
    SaveResult,
    get_flavor,
    register_flavor,
)
from heron._models._format import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    LoadedModel,
    ModelManifest,
    load_model,
    read_manifest,
    save_model,
    verify_model,
)
from heron._models._onnx import OnnxFlavor
from heron._models._python import ObjectPredictor, PythonFlavor
from heron._models._signature import (
    ColumnSpec,
    OutputSpec,
    Signature,
    frame_from_payload,
    infer_signature,
    unpack_payload,
)
from heron._models._sklearn import SklearnFlavor

# Registered like any plugin. Inference tries the latest first, so ``python`` is the fallback.
for _flavor in (PythonFlavor(), OnnxFlavor(), SklearnFlavor()):
    register_flavor(_flavor)

__all__ = [
    "FLAVORS",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "PICKLE_SERIALIZATIONS",
    "ColumnSpec",
    "Flavor",
    "LoadedModel",
    "ModelManifest",
    "ObjectPredictor",
    "OutputSpec",
    "Predictor",
    "SaveResult",
    "Signature",
    "frame_from_payload",
    "get_flavor",
    "infer_signature",
    "load_model",
    "read_manifest",
    "register_flavor",
    "save_model",
    "unpack_payload",
    "verify_model",
]
