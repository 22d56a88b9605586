"""Model signatures: what a model takes and returns, and validation of inputs against it.

Validation is on the prediction hot path, so it works per column (vectorized), never per row,
and :meth:`Signature.to_array` skips pandas entirely for all-numeric signatures when the input
is clean, falling back to the full validation only to build a precise error.

Input forms accepted everywhere: a pandas DataFrame, a list of records (``[{"a": 1}, ...]``),
a dict of columns (``{"a": [1, 2]}``, or a single record of scalars ``{"a": 1}``), the
columnar form ``{"columns": [...], "data": [[...], ...]}`` and a 2-D numpy array whose width
matches the signature. Request bodies are unpacked by :func:`unpack_payload`.
"""

from __future__ import annotations

import itertools
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from heron._errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

ColumnType = Literal["double", "float", "long", "integer", "boolean", "string", "datetime"]
FLOAT_TYPES = frozenset({"double", "float"})
INT_TYPES = frozenset({"long", "integer"})
NUMERIC_TYPES = FLOAT_TYPES | INT_TYPES

# pandas.api.types.infer_dtype results that may go into a numeric column.
_NUMBER_KINDS = frozenset({"integer", "floating", "mixed-integer-float", "decimal", "empty"})
_INT32 = (-(2**31), 2**31 - 1)


class ColumnSpec(BaseModel):
    """One input column. ``nullable`` columns accept missing values (null/NaN); infinities
    are never accepted."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    type: ColumnType
    nullable: bool = False


class OutputSpec(BaseModel):
    """One output: ``predictions`` or ``probabilities``. ``shape`` uses -1 for the row axis;
    ``classes`` names the probability columns in order, when known."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    type: Literal["double", "float", "long", "integer", "boolean", "string"]
    shape: list[int] = Field(default_factory=lambda: [-1])
    classes: list[str | int | float | bool] | None = None


class Signature(BaseModel):
    """Input columns and outputs of a model.

    :meth:`validate` returns a DataFrame with exactly the declared columns, in declared order,
    coerced to the declared types. Extra columns are dropped silently, so clients may send
    more fields (ids, timestamps) than the model uses.
    """

    model_config = ConfigDict(extra="forbid")

    inputs: list[ColumnSpec]
    outputs: list[OutputSpec] = Field(default_factory=list)

    @field_validator("inputs")
    @classmethod
    def _unique_names(cls, inputs: list[ColumnSpec]) -> list[ColumnSpec]:
        names = [c.name for c in inputs]
        if len(set(names)) != len(names):
            raise ValueError("input column names must be unique")
        return inputs

    @cached_property
    def column_names(self) -> list[str]:
        return [c.name for c in self.inputs]

    @cached_property
    def is_numeric(self) -> bool:
        """True when every input is a number, so :meth:`to_array` can take its fast path."""
        return bool(self.inputs) and all(c.type in NUMERIC_TYPES for c in self.inputs)

    @cached_property
    def _frame_fast_path(self) -> bool:
        # 32-bit integer columns go the slow way, which checks for overflow.
        return self.is_numeric and all(c.type != "integer" for c in self.inputs)

    @cached_property
    def _int_positions(self) -> list[int]:
        return [i for i, c in enumerate(self.inputs) if c.type in INT_TYPES]

    def validate(self, data: Any) -> pd.DataFrame:  # type: ignore[override]
        """Coerce ``data`` to the declared columns or raise InvalidInput naming the column."""
        import pandas as pd

        if self._frame_fast_path:
            array = _fast_array(data, self.column_names)
            if array is not None and self._clean(array):
                return self._frame_from_array(array)
        frame = to_frame(data, self.column_names)
        missing = [name for name in self.column_names if name not in frame.columns]
        if missing:
            raise InvalidInput(f"missing input column {missing[0]!r}", field=missing[0])
        columns = {spec.name: _coerce_column(frame[spec.name], spec) for spec in self.inputs}
        return pd.DataFrame(columns, index=frame.index, copy=False)

    def _frame_from_array(self, array: np.ndarray) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        if all(c.type == "double" for c in self.inputs):
            # One float64 block: the cheapest DataFrame pandas can build.
            return pd.DataFrame(array.astype(np.float64, copy=False), columns=self.column_names)
        return pd.DataFrame(self._columns_from_array(array), copy=False)

    def _columns_from_array(self, array: np.ndarray) -> dict[str, np.ndarray]:
        """The columns of a 2-D array of numeric inputs, each typed as the signature says:
        what a frame of them holds, without the frame (a double column is a view)."""
        import numpy as np

        dtypes = {"double": np.float64, "float": np.float32, "long": np.int64, "integer": np.int32}
        return {
            spec.name: array[:, i].astype(dtypes[spec.type], copy=False)
            for i, spec in enumerate(self.inputs)
        }

    def to_array(self, data: Any) -> np.ndarray:
        """A 2-D float64 array of the inputs, for all-numeric signatures.

        Clean records or columnar payloads are turned into an array directly; anything
        unusual (a missing key, None, a string) goes through :meth:`validate` for its error.
        """
        import numpy as np

        if not self.is_numeric:
            raise InvalidInput("to_array needs a signature whose inputs are all numeric")
        array = _fast_array(data, self.column_names)
        if array is not None and self._clean(array):
            return array.astype(np.float64, copy=False)
        return self.validate(data).to_numpy(dtype=np.float64)

    def _clean(self, array: np.ndarray) -> bool:
        import numpy as np

        if array.ndim != 2 or array.shape[1] != len(self.inputs) or array.shape[0] == 0:
            return False
        if array.dtype.kind in "iu":
            return True
        if array.dtype.kind != "f" or not np.isfinite(array).all():
            return False
        ints = array[:, self._int_positions]
        return bool((ints == np.floor(ints)).all())


def _fast_array(data: Any, names: list[str]) -> np.ndarray | None:
    """The inputs as an array without pandas, or None when the input needs the slow path.

    numpy turns ``True``/``False`` among numbers into 1/0 without a trace, so where the
    array holds an exact 0 or 1 those cells are looked up in ``data``: a boolean there is
    refused (InvalidInput naming the column). Real-valued inputs rarely hold exact 0/1, so
    the check costs two vectorized comparisons.
    """
    import numpy as np

    try:
        if type(data) is list and data and type(data[0]) is dict:
            rows = [[row[name] for name in names] for row in data]
            array = np.array(rows)
            _refuse_booleans(array, rows, names, lambda i, j: rows[i][j])
            return array
        if type(data) is dict and _is_columnar(data):
            positions = [data["columns"].index(name) for name in names]
            array = np.array(data["data"])
            if array.ndim != 2:
                return None
            array = array[:, positions]
            rows = data["data"]
            _refuse_booleans(array, rows, names, lambda i, j: rows[i][positions[j]])
            return array
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return None


_SMALL = 512  # values


def _refuse_booleans(array: np.ndarray, rows: list[Any], names: list[str], value: Any) -> None:
    import numpy as np

    if array.dtype.kind not in "fiu" or array.ndim != 2:
        return
    if array.size <= _SMALL and bool not in set(map(type, itertools.chain.from_iterable(rows))):
        return  # small inputs: one C-level pass over the values beats the array checks
    suspects = (array == 0) | (array == 1)
    if not suspects.any():
        return
    for i, j in np.argwhere(suspects):
        if type(value(int(i), int(j))) is bool:
            name = names[int(j)]
            raise InvalidInput(
                f"column {name!r} must hold numbers, got a boolean (row {int(i)})", field=name
            )


def _is_columnar(data: dict[str, Any]) -> bool:
    return "columns" in data and "data" in data and set(data) <= {"columns", "data", "index"}


def to_frame(data: Any, names: list[str] | None = None) -> pd.DataFrame:
    """Build a DataFrame from any accepted input form (see the module docstring)."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, list):
        if not all(isinstance(row, dict) for row in data):
            raise InvalidInput("a list input must hold records (objects)", field="data")
        frame = pd.DataFrame(data)
    elif isinstance(data, dict):
        frame = _frame_from_dict(data)
    elif isinstance(data, np.ndarray) and data.ndim == 2:
        if names is None or data.shape[1] != len(names):
            raise InvalidInput(f"an array input must have {len(names or [])} columns", field="data")
        frame = pd.DataFrame(data, columns=names)
    else:
        raise InvalidInput(f"unsupported input type {type(data).__name__}", field="data")
    if len(frame) == 0:
        raise InvalidInput("the input has no rows", field="data")
    return frame


def _frame_from_dict(data: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    if _is_columnar(data):
        return _frame_from_split(data, field="data")
    try:
        if data and all(_is_scalar(v) for v in data.values()):
            return pd.DataFrame([data])
        return pd.DataFrame(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot read the columns: {exc}", field="data") from exc


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _frame_from_split(split: Any, field: str) -> pd.DataFrame:
    import pandas as pd

    _check_split(split, field)
    return pd.DataFrame(split["data"], columns=split["columns"])


def _check_split(split: Any, field: str) -> None:
    """Refuse a columnar ``{"columns", "data"}`` object that is not a clean rectangle."""
    if not isinstance(split, dict) or "columns" not in split or "data" not in split:
        raise InvalidInput(f"{field} needs 'columns' and 'data'", field=field)
    columns, rows = split["columns"], split["data"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput(f"{field}.columns must be a list of column names", field=field)
    if len(set(columns)) != len(columns):
        raise InvalidInput(f"{field}.columns has duplicate names", field=field)
    if not isinstance(rows, list) or not rows:
        raise InvalidInput(f"{field}.data must be a non-empty list of rows", field=field)
    width = len(columns)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise InvalidInput(f"{field}.data[{i}] must be a list of {width} values", field=field)


def unpack_payload(payload: Any) -> list[dict[str, Any]] | dict[str, Any]:
    """Check a prediction request body's shape and return its data, without copying it.

    Accepts ``{"instances": [records]}`` (returns the records) and
    ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` (returns the split).
    The result can be given to :meth:`Signature.to_array` or :meth:`Signature.validate`.
    """
    if not isinstance(payload, dict):
        raise InvalidInput("the request body must be a JSON object", field="instances")
    if "instances" in payload:
        records = payload["instances"]
        if not isinstance(records, list) or not records:
            raise InvalidInput("instances must be a non-empty list of records", field="instances")
        if not all(isinstance(row, dict) for row in records):
            raise InvalidInput(
                "every instance must be an object of column values", field="instances"
            )
        return records
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        _check_split(split, "dataframe_split")
        return split
    raise InvalidInput("the body needs 'instances' or 'dataframe_split'", field="instances")


def frame_from_payload(payload: Any) -> pd.DataFrame:
    """The DataFrame of a request body (see :func:`unpack_payload` for the accepted forms)."""
    import pandas as pd

    data = unpack_payload(payload)
    if isinstance(data, list):
        return pd.DataFrame(data)
    return pd.DataFrame(data["data"], columns=data["columns"])


# -- coercion, one column at a time ---------------------------------------------------------


def _coerce_column(series: pd.Series, spec: ColumnSpec) -> Any:
    if spec.type in FLOAT_TYPES:
        return _coerce_float(series, spec)
    if spec.type in INT_TYPES:
        return _coerce_int(series, spec)
    if spec.type == "boolean":
        return _coerce_bool(series, spec)
    if spec.type == "string":
        return _coerce_string(series, spec)
    return _coerce_datetime(series, spec)


def _wrong_type(series: pd.Series, spec: ColumnSpec, found: str | None = None) -> InvalidInput:
    import pandas as pd

    found = found or pd.api.types.infer_dtype(series, skipna=True)
    return InvalidInput(
        f"column {spec.name!r} must hold {spec.type} values, got {found}", field=spec.name
    )


def _as_float(series: pd.Series, spec: ColumnSpec) -> np.ndarray:
    import numpy as np
    import pandas as pd

    kind = series.dtype.kind
    if kind in "fiu" and not isinstance(series.dtype, pd.CategoricalDtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if kind == "b":
        raise _wrong_type(series, spec, "boolean")
    found = pd.api.types.infer_dtype(series, skipna=True)
    if found not in _NUMBER_KINDS:
        # Numeric strings ("1.5") are refused on purpose: they hide client bugs.
        raise _wrong_type(series, spec, found)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _check_finite(values: np.ndarray, spec: ColumnSpec) -> None:
    import numpy as np

    finite = np.isfinite(values)
    if finite.all():
        return
    if np.isinf(values).any():
        raise InvalidInput(f"column {spec.name!r} has infinite values", field=spec.name)
    if not spec.nullable:
        raise InvalidInput(f"column {spec.name!r} has missing (null/NaN) values", field=spec.name)


def _coerce_float(series: pd.Series, spec: ColumnSpec) -> np.ndarray:
    import numpy as np

    values = _as_float(series, spec)
    _check_finite(values, spec)
    return values.astype(np.float32) if spec.type == "float" else values


def _coerce_int(series: pd.Series, spec: ColumnSpec) -> np.ndarray:
    import numpy as np

    if series.dtype.kind in "iu":
        values = series.to_numpy()
    else:
        values = _as_float(series, spec)
        _check_finite(values, spec)
        present = values[~np.isnan(values)]
        if (present != np.floor(present)).any():
            raise _wrong_type(series, spec, "non-integer numbers")
        if len(present) < len(values):
            return values  # nullable and missing: kept as float64 with NaN
    if (
        spec.type == "integer"
        and len(values)
        and (values.min() < _INT32[0] or values.max() > _INT32[1])
    ):
        raise InvalidInput(f"column {spec.name!r} overflows a 32-bit integer", field=spec.name)
    return values.astype(np.int32 if spec.type == "integer" else np.int64)


def _coerce_bool(series: pd.Series, spec: ColumnSpec) -> Any:
    import pandas as pd

    if series.dtype.kind == "b":
        return series.to_numpy()
    found = pd.api.types.infer_dtype(series, skipna=True)
    if found not in ("boolean", "empty"):
        raise _wrong_type(series, spec, found)
    if series.isna().any():
        if not spec.nullable:
            raise InvalidInput(f"column {spec.name!r} has missing values", field=spec.name)
        return series.to_numpy(dtype=object)
    return series.to_numpy(dtype=bool)


def _coerce_string(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    import pandas as pd

    found = pd.api.types.infer_dtype(series, skipna=True)
    if found not in ("string", "empty"):
        raise _wrong_type(series, spec, found)
    if not spec.nullable and series.isna().any():
        raise InvalidInput(f"column {spec.name!r} has missing values", field=spec.name)
    return series


def _coerce_datetime(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    import pandas as pd

    if series.dtype.kind != "M":
        found = pd.api.types.infer_dtype(series, skipna=True)
        if found not in ("datetime", "datetime64", "date", "string", "empty"):
            raise _wrong_type(series, spec, found)
        try:
            series = pd.to_datetime(series, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                f"column {spec.name!r} must hold ISO 8601 datetimes: {exc}", field=spec.name
            ) from exc
    if not spec.nullable and series.isna().any():
        raise InvalidInput(f"column {spec.name!r} has missing values", field=spec.name)
    return series


# -- inference ------------------------------------------------------------------------------


def infer_signature(
    example: Any,
    predictions: Any = None,
    probabilities: Any = None,
    classes: list[Any] | None = None,
) -> Signature:
    """A signature from an input example and, optionally, the model's outputs on it."""
    frame = to_frame(example)
    inputs = [_infer_column(str(name), frame[name]) for name in frame.columns]
    outputs = []
    if predictions is not None:
        outputs.append(output_spec("predictions", predictions))
    if probabilities is not None:
        spec = output_spec("probabilities", probabilities)
        spec.classes = classes
        outputs.append(spec)
    return Signature(inputs=inputs, outputs=outputs)


def _infer_column(name: str, series: pd.Series) -> ColumnSpec:
    import pandas as pd

    nullable = bool(series.isna().any())
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        series = series.astype(object)
        dtype = series.dtype
    kind = dtype.kind
    ctype: ColumnType | None
    if kind == "f":
        ctype = "float" if dtype.itemsize == 4 else "double"
    elif kind in "iu":
        ctype = "integer" if dtype.itemsize <= 4 and kind == "i" else "long"
    elif kind == "b":
        ctype = "boolean"
    elif kind == "M":
        ctype = "datetime"
    else:
        ctype = _OBJECT_TYPES.get(pd.api.types.infer_dtype(series, skipna=True))
        if ctype is None:
            raise InvalidInput(f"cannot infer a type for column {name!r}", field=name)
    return ColumnSpec(name=name, type=ctype, nullable=nullable)


_OBJECT_TYPES: dict[str, ColumnType] = {
    "string": "string",
    "empty": "string",
    "integer": "long",
    "floating": "double",
    "mixed-integer-float": "double",
    "decimal": "double",
    "boolean": "boolean",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
}


def output_spec(name: str, values: Any) -> OutputSpec:
    """Describe one model output from its value on the input example."""
    import numpy as np

    array = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
    kind = array.dtype.kind
    otype: Literal["double", "float", "long", "boolean", "string"]
    if kind == "f":
        otype = "float" if array.dtype.itemsize == 4 else "double"
    elif kind in "iu":
        otype = "long"
    elif kind == "b":
        otype = "boolean"
    else:
        otype = "string"
    return OutputSpec(name=name, type=otype, shape=[-1, *array.shape[1:]])
