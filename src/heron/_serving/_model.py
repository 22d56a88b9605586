"""One model version as a prediction server holds it: loaded, warmed, ready to predict.

The request path is validate → predict, so :class:`ServedModel` picks the cheapest correct
way once, at load time. For an all-numeric signature and a scikit-learn model it validates
into a float64 array (``Signature.to_array``, no pandas) and calls the estimator on that
array. An estimator fitted on a DataFrame would check and warn about feature names on every
call (the DataFrame path costs ~10x the prediction itself), so it gets a shallow copy without
``feature_names_in_`` — only when the signature's columns are exactly its feature names, in
order, which ``to_array`` guarantees. Everything else goes through ``LoadedModel.predict``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from heron._errors import InvalidInput

if TYPE_CHECKING:
    from heron._client import Client
    from heron._deployments import ResolvedTarget
    from heron._models import LoadedModel

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


@dataclass(eq=False)
class ServedModel:
    model: str
    version: int
    loaded: LoadedModel
    load_seconds: float = 0.0
    version_label: str = field(init=False)
    # Whether class probabilities can be computed from prepared inputs.
    has_proba: bool = field(init=False)
    # Whether :meth:`inputs_columns` can name the columns of prepared inputs: a validated
    # DataFrame, or an array of an all-numeric signature. Otherwise the log keeps the body
    # for monitor profiles.
    frames_prepared: bool = field(init=False)

    def __post_init__(self) -> None:
        self.version_label = str(self.version)
        self._fast = _fast_estimator(self.loaded)
        signature = self.loaded.signature
        self._to_array = signature.to_array if signature is not None else None
        self._settle()

    def _settle(self) -> None:
        """Decide what the request path asks of every request once, when the way to predict
        is chosen: asking per request cost ~1 us (scikit-learn's ``available_if`` descriptor
        behind ``predict_proba``, the signature's kinds)."""
        if self._fast is not None:
            self.has_proba = callable(getattr(self._fast, "predict_proba", None))
        else:
            self.has_proba = self.loaded.supports_proba
        signature = self.loaded.signature
        self.frames_prepared = (
            self._fast is not None
            or self.loaded._predictor.input_kind == "frame"
            or (signature is not None and signature.is_numeric)
        )

    def prepare(self, data: Any, body: bytes = b"") -> Any:
        """Validate ``data`` (records or a columnar split, parsed from ``body``) into what
        ``predict_prepared`` takes; raises InvalidInput naming the column (booleans in
        number columns included: ``Signature.to_array`` refuses them)."""
        if self._fast is not None and self._to_array is not None:
            return self._to_array(data)
        return self.loaded._prepare(data)

    def predict_prepared(self, prepared: Any) -> Any:
        if self._fast is not None:
            return self._fast.predict(prepared)
        return _plain(self.loaded._predictor.predict(prepared))

    def predict(self, data: Any) -> Any:
        return self.predict_prepared(self.prepare(data))

    def inputs_columns(self, parts: list[Any]) -> Any:
        """Prepared inputs of several requests together, named: one DataFrame where
        validation makes frames, else the columns of the joined arrays as 1-D numpy arrays
        typed as the signature says (what a frame of them holds, without building one). The
        flusher profiles these, never the request path."""
        joined = concat_prepared(parts)
        if hasattr(joined, "iloc"):
            return joined
        signature = self.loaded.signature
        assert signature is not None, "frames_prepared is False without a signature"
        # Transposed in one copy, so each column is a row of one array, which profiling
        # takes without copying the columns one by one (each copy released the GIL).
        import numpy as np

        return signature._columns_from_array(np.ascontiguousarray(joined.T).T)

    def proba_prepared(self, prepared: Any) -> tuple[list[Any], Any]:
        """The classes and class probabilities of prepared inputs (for live CBPE; the log
        flusher calls this, never the request path)."""
        from heron._monitoring._summary import _classes

        if self._fast is not None:
            proba = self._fast.predict_proba(prepared)
            classes = list(getattr(self._fast, "classes_", range(proba.shape[1])))
        else:
            proba = _plain(self.loaded._predictor.predict_proba(prepared))  # type: ignore[attr-defined]
            classes = _classes(self.loaded) or list(range(proba.shape[1]))
        return [c.item() if hasattr(c, "item") else c for c in classes], proba

    def warm(self) -> None:
        """Predict the input example a few times so the first request pays no first-call
        costs (lazy imports, allocator, caches)."""
        example = self.loaded.input_example
        self._check_fast_path(example)
        if not example:
            return
        for _ in range(3):
            self.predict(example)
            self.predict(example[:1])

    def _check_fast_path(self, example: list[dict[str, Any]] | None) -> None:
        """Keep the array path only where it agrees with the general one on the example
        (a pipeline may select columns by name, which an array cannot do)."""
        if self._fast is None:
            return
        if not example:
            if hasattr(self._fast, "steps"):
                self._fast = None
                self._settle()
            return
        import numpy as np

        try:
            fast = np.asarray(self._fast.predict(self._to_array(example)))  # type: ignore[misc]
            agrees = bool(np.array_equal(fast, np.asarray(self.loaded.predict(example))))
        except Exception:
            agrees = False
        if not agrees:
            self._fast = None
            self._settle()


def load_served_model(client: Client, target: ResolvedTarget) -> ServedModel:
    """Fetch (cached, digest-verified), load and warm one version."""
    from heron._models import load_model

    started = time.perf_counter()
    mv = client.get_model_version(target.model, target.version)
    folder = client.model_folder(mv)
    loaded = load_model(folder, verify=True, allow_pickle=client.settings.allow_pickle)
    served = ServedModel(target.model, target.version, loaded)
    served.warm()
    served.load_seconds = time.perf_counter() - started
    return served


def dump_predictions(predictions: Any) -> bytes:
    """JSON of a prediction array (numbers directly from numpy; anything else via lists)."""
    try:
        return orjson.dumps(predictions, option=_NUMPY)
    except TypeError:
        values = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
        try:
            return orjson.dumps(values, option=_NUMPY)
        except TypeError as exc:
            raise InvalidInput(f"the model returned values JSON cannot hold: {exc}") from exc


def rows_of(data: Any) -> int:
    return len(data) if isinstance(data, list) else len(data["data"])


def concat_prepared(parts: list[Any]) -> Any:
    """Join prepared inputs of several requests into one (micro-batching)."""
    first = parts[0]
    if hasattr(first, "iloc"):
        import pandas as pd

        return pd.concat(parts, ignore_index=True, copy=False)
    import numpy as np

    return np.concatenate(parts, axis=0)


def _plain(result: Any) -> Any:
    return result.to_numpy() if hasattr(result, "to_numpy") else result


def _fast_estimator(loaded: LoadedModel) -> Any:
    """The scikit-learn estimator to call on a float64 array, or None for the general path."""
    from heron._models._flavors import comes_from

    signature = loaded.signature
    if loaded.flavor != "sklearn" or signature is None or not signature.is_numeric:
        return None
    raw = loaded.raw
    if not comes_from(raw, "sklearn"):
        return None
    names = getattr(raw, "feature_names_in_", None)
    if names is None:
        return raw if loaded._predictor.input_kind == "array" else None
    if [str(n) for n in names] != signature.column_names:
        return None
    return _without_feature_names(raw)


def _without_feature_names(estimator: Any) -> Any:
    """A shallow copy that takes arrays silently (a Pipeline: its first step stripped)."""
    stripped = copy.copy(estimator)
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        name, first = steps[0]
        stripped.steps = [(name, _without_feature_names(first)), *steps[1:]]
        return stripped
    if "feature_names_in_" in vars(stripped):
        del stripped.feature_names_in_
    return stripped
