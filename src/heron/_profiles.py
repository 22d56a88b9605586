"""Mergeable column profiles: what monitoring keeps of a window instead of its rows.

    DatasetProfile                 one window (or one dataset version)
    ├── rows                       row count
    ├── dtypes                     {column: "integer" | "float" | "boolean" | "string" |
    │                               "category" | "datetime" | "timedelta" | "object" | "mixed"}
    └── columns                    {column: NumericProfile | CategoricalProfile}
        ├── NumericProfile         count (finite values), nulls, non_finite (±inf), invalid
        │                          (values that are not numbers), min, max, mean, m2 (sum of
        │                          squared deviations), a histogram on fixed bin edges plus
        │                          underflow/overflow counts, and the sum of the values in
        │                          each of those slots (so drift can place each bin's mass
        │                          at its mean)
        └── CategoricalProfile     count (non-null), nulls, counts per category (at most
                                   ``max_categories``), ``other`` for the rest, and up to ten
                                   ``other_examples`` (the alphabetically first such values)

JSON (``profile.model_dump_json()``), one column of each kind::

    {"format": 1, "rows": 5, "dtypes": {"age": "integer", "city": "string"},
     "columns": {
       "age": {"kind": "numeric", "count": 5, "nulls": 0, "non_finite": 0, "invalid": 0,
               "min": 21.0, "max": 64.0, "mean": 40.0, "m2": 1162.0,
               "edges": [21.0, 35.0, 64.0], "counts": [2, 3], "underflow": 0, "overflow": 0,
               "sums": [0.0, 51.0, 149.0, 0.0]},
       "city": {"kind": "categorical", "count": 5, "nulls": 0, "categories": ["Oslo", "Rome"],
                "counts": [3, 2], "other": 0, "other_examples": []}}}

A profile built without a reference *is* a reference: numeric bin edges are the data's
quantiles (``bins`` quantile bins, deduplicated, so the first edge is the minimum and the last
the maximum; past 200k values the interior ones come from an evenly strided subsample; a
maximum that occurs more than once gets a bin ``[max, max]`` of its own, so a 0/1 column
keeps its two values apart), and the categories are the ``max_categories`` most
frequent values. A profile built against a reference reuses the reference's edges and
categories and kind per column, so two windows built against one reference merge exactly:
counts, histograms, min and max are sums and extremes, and mean/m2 merge with Chan's parallel
formula and bin sums by addition (commutative bit for bit, associative to rounding). Columns
of the data that the reference does not know are recorded in ``dtypes`` only (the schema
check reports them).

Bins are half-open ``[e_i, e_{i+1})`` except the last, which is closed. Defined outcomes for
bad input, never a crash:

- empty frame or all-null column: count 0, ``min``/``max`` None, no edges when it is a
  reference (every later value then counts as overflow: nothing is in range);
- a single distinct value: edges ``[v, v]``, one bin;
- NaN and None are nulls; ±inf are counted in ``non_finite`` and kept out of the moments;
- a numeric column arriving as strings: parsed where possible, the rest counted in ``invalid``;
- a categorical column arriving as numbers: compared by their text (1.0 as "1");
- unseen categories: counted in ``other``; merging profiles built on different edges or
  categories raises ``InvalidInput`` (build both against the same reference).

``RunningProfile`` folds batches into one profile as they come (the prediction server's
per-minute windows): the same profile, bit for bit, as merging the batches' profiles in
turn, kept as arrays in between; it also takes a batch as numpy columns by name.
"""

from __future__ import annotations

import functools
import heapq
import operator
from collections.abc import Iterable, Iterator
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from heron._errors import InvalidInput
from heron._lazy import LazyModule

pd: Any = LazyModule("pandas")  # imported on first use (see heron._lazy)


PROFILE_FORMAT = 1
DEFAULT_BINS = 20
DEFAULT_MAX_CATEGORIES = 100
OTHER_EXAMPLES = 10
QUANTILE_SAMPLE = 100_000
CHUNK = 1 << 16  # values per column and step: temporaries stay in cache
GROUP_VALUES = 1 << 17  # columns are profiled together in groups of about this many values

_NUMERIC_DTYPES = frozenset({"integer", "float", "datetime", "timedelta"})
_MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")


class NumericProfile(BaseModel):
    """Summary of a numeric column: moments, extremes and a histogram on fixed edges."""

    model_config = _MODEL_CONFIG

    kind: Literal["numeric"] = "numeric"
    count: int = Field(ge=0, description="finite values")
    nulls: int = Field(0, ge=0)
    non_finite: int = Field(0, ge=0, description="+inf and -inf")
    invalid: int = Field(0, ge=0, description="values that are not numbers")
    min: float | None = None
    max: float | None = None
    mean: float = 0.0
    m2: float = Field(0.0, description="sum of squared deviations from the mean")
    edges: list[float] = Field(default_factory=list)
    counts: list[int] = Field(default_factory=list)
    underflow: int = Field(0, ge=0)
    overflow: int = Field(0, ge=0)
    sums: list[float] = Field(
        default_factory=lambda: [0.0, 0.0],
        description="sum of the values in [underflow, bin_0, ..., bin_k, overflow]",
    )

    @model_validator(mode="after")
    def _check_shape(self) -> NumericProfile:
        if len(self.counts) != max(len(self.edges) - 1, 0):
            raise ValueError("counts must have one entry per bin (len(edges) - 1)")
        if len(self.sums) != len(self.counts) + 2:
            raise ValueError("sums must have one entry per bin plus underflow and overflow")
        if any(map(operator.gt, self.edges, self.edges[1:])):  # runs for every profile built
            raise ValueError("edges must be sorted")
        return self

    @property
    def rows(self) -> int:
        return self.count + self.nulls + self.non_finite + self.invalid

    @property
    def variance(self) -> float | None:
        """Sample variance (ddof=1); None below two values."""
        return self.m2 / (self.count - 1) if self.count > 1 else None

    @property
    def std(self) -> float | None:
        var = self.variance
        return None if var is None else float(np.sqrt(max(var, 0.0)))

    def histogram(self) -> np.ndarray:
        """Counts as ``[underflow, bin_0, ..., bin_k, overflow]``."""
        return np.array([self.underflow, *self.counts, self.overflow], dtype=np.float64)

    def empty_like(self, nulls: int = 0) -> NumericProfile:
        """A profile on the same edges holding ``nulls`` missing values and nothing else."""
        return NumericProfile(
            count=0,
            nulls=nulls,
            edges=self.edges,
            counts=[0] * len(self.counts),
            sums=[0.0] * len(self.sums),
        )

    def merge(self, other: NumericProfile) -> NumericProfile:
        if not isinstance(other, NumericProfile):
            raise InvalidInput("cannot merge a numeric profile with a categorical one")
        if self.edges != other.edges:
            raise InvalidInput(
                "profiles have different bin edges; build both against the same reference"
            )
        mean, m2 = _merge_moments(self.count, self.mean, self.m2, other.count, other.mean, other.m2)
        return NumericProfile(
            count=self.count + other.count,
            nulls=self.nulls + other.nulls,
            non_finite=self.non_finite + other.non_finite,
            invalid=self.invalid + other.invalid,
            min=_extreme(min, self.min, other.min),
            max=_extreme(max, self.max, other.max),
            mean=mean,
            m2=m2,
            edges=self.edges,
            counts=[a + b for a, b in zip(self.counts, other.counts, strict=True)],
            underflow=self.underflow + other.underflow,
            overflow=self.overflow + other.overflow,
            sums=[a + b for a, b in zip(self.sums, other.sums, strict=True)],
        )


class CategoricalProfile(BaseModel):
    """Summary of a categorical column: counts per category on a fixed category list."""

    model_config = _MODEL_CONFIG

    kind: Literal["categorical"] = "categorical"
    count: int = Field(ge=0, description="non-null values")
    nulls: int = Field(0, ge=0)
    categories: list[str] = Field(default_factory=list)
    counts: list[int] = Field(default_factory=list)
    other: int = Field(0, ge=0, description="values outside ``categories``")
    other_examples: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_shape(self) -> CategoricalProfile:
        if len(self.counts) != len(self.categories):
            raise ValueError("counts must have one entry per category")
        return self

    @property
    def rows(self) -> int:
        return self.count + self.nulls

    def histogram(self) -> np.ndarray:
        """Counts as ``[category_0, ..., category_k, other]``."""
        return np.array([*self.counts, self.other], dtype=np.float64)

    def empty_like(self, nulls: int = 0) -> CategoricalProfile:
        return CategoricalProfile(
            count=0, nulls=nulls, categories=self.categories, counts=[0] * len(self.counts)
        )

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        if not isinstance(other, CategoricalProfile):
            raise InvalidInput("cannot merge a categorical profile with a numeric one")
        if self.categories != other.categories:
            raise InvalidInput(
                "profiles have different categories; build both against the same reference"
            )
        examples = set(self.other_examples) | set(other.other_examples)
        return CategoricalProfile(
            count=self.count + other.count,
            nulls=self.nulls + other.nulls,
            categories=self.categories,
            counts=[a + b for a, b in zip(self.counts, other.counts, strict=True)],
            other=self.other + other.other,
            other_examples=heapq.nsmallest(OTHER_EXAMPLES, examples),
        )


ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class DatasetProfile(BaseModel):
    """Profile of one frame: row count, schema and one profile per column."""

    model_config = _MODEL_CONFIG

    format: int = PROFILE_FORMAT
    rows: int = Field(ge=0)
    dtypes: dict[str, str] = Field(default_factory=dict)
    columns: dict[str, ColumnProfile] = Field(default_factory=dict)

    @classmethod
    def from_frame(
        cls,
        df: Any,
        reference: DatasetProfile | None = None,
        bins: int = DEFAULT_BINS,
        *,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        categorical: Iterable[str] = (),
    ) -> DatasetProfile:
        """Profile ``df``; against ``reference``'s edges and categories when given.

        ``categorical`` names columns to profile as categories even though they hold numbers
        (codes, class labels); it only matters when there is no reference.
        """
        frame = _as_frame(df)
        _check_options(reference, bins, max_categories)
        return _parts(frame, reference, bins, max_categories, set(categorical)).profile()

    @classmethod
    def for_predictions(
        cls,
        predictions: Any,
        reference: DatasetProfile | None = None,
        bins: int = DEFAULT_BINS,
        *,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        kind: Literal["auto", "labels", "scores"] = "auto",
    ) -> DatasetProfile:
        """Profile model outputs the way features are profiled.

        A 1-D output becomes the column ``prediction`` (or the Series' name), a 2-D array the
        columns ``score_0..k``, a DataFrame keeps its columns. With ``kind="auto"`` floats are
        scores (numeric) and integers, booleans and strings are class labels (categorical).
        """
        if kind not in ("auto", "labels", "scores"):
            raise InvalidInput(f"unknown prediction kind {kind!r}", field="kind")
        frame = _prediction_frame(predictions)
        if kind == "labels":
            labels = list(frame.columns)
        elif kind == "auto":
            labels = [c for c in frame.columns if not pd.api.types.is_float_dtype(frame[c])]
        else:
            labels = []
        return cls.from_frame(
            frame, reference, bins, max_categories=max_categories, categorical=labels
        )

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        """Exact merge; a column absent from one side counts as nulls for that side's rows."""
        if not isinstance(other, DatasetProfile):
            raise InvalidInput("can only merge a DatasetProfile with another DatasetProfile")
        dtypes = dict(self.dtypes)
        for name, dtype in other.dtypes.items():
            dtypes[name] = _join_dtypes(dtypes[name], dtype) if name in dtypes else dtype
        columns: dict[str, NumericProfile | CategoricalProfile] = {}
        for name in sorted(set(self.columns) | set(other.columns)):
            mine = self._column_or_nulls(name, other)
            theirs = other._column_or_nulls(name, self)
            columns[name] = mine.merge(theirs)  # type: ignore[arg-type]
        return DatasetProfile(rows=self.rows + other.rows, dtypes=dtypes, columns=columns)

    def _column_or_nulls(
        self, name: str, other: DatasetProfile
    ) -> NumericProfile | CategoricalProfile:
        if name in self.columns:
            return self.columns[name]
        if name in self.dtypes:
            raise InvalidInput(
                f"column {name!r} is profiled on one side only; "
                "build both profiles against the same reference",
                field=name,
            )
        return other.columns[name].empty_like(nulls=self.rows)


class RunningProfile:
    """Profiles of batches against one reference, merged as they come: the profile, bit for
    bit, that ``DatasetProfile.merge`` makes of the batches' profiles in turn, held as arrays
    until :meth:`profile` asks for it. The prediction server merges every flushed batch into
    its open windows, where building and merging thirty validated column profiles per batch
    cost as much as the histograms."""

    def __init__(self) -> None:
        self._parts: _Parts | None = None
        self._merged: DatasetProfile | None = None  # once a batch of another shape came

    def add(self, data: Any, reference: DatasetProfile | None) -> int:
        """Fold in a DataFrame, or a frame given as 1-D numpy columns of numbers or
        booleans by name (what the frame would hold, without building it); returns its
        rows."""
        if isinstance(data, dict):
            parts = _parts(_ArrayColumns(data), reference)
        else:
            parts = _parts(_as_frame(data), reference)
        if self._merged is not None:
            self._merged = self._merged.merge(parts.profile())
        elif self._parts is None:
            self._parts = parts
        elif not self._parts.merge(parts):
            self._merged = self._parts.profile().merge(parts.profile())
            self._parts = None
        return parts.rows

    def profile(self) -> DatasetProfile | None:
        """The merged profile; None before the first batch."""
        if self._merged is not None:
            return self._merged
        return None if self._parts is None else self._parts.profile()


class _Parts:
    """A profile in the making: rows, dtypes, the categorical columns' profiles and the
    numeric columns' stats (``_NumericStats``)."""

    __slots__ = ("categorical", "dtypes", "merged", "numeric", "rows", "stats")

    def __init__(
        self,
        rows: int,
        dtypes: dict[str, str],
        categorical: dict[str, CategoricalProfile],
        numeric: list[str],
        stats: _NumericStats,
    ) -> None:
        self.rows, self.dtypes, self.categorical = rows, dtypes, categorical
        self.numeric, self.stats = numeric, stats
        self.merged = False

    def profile(self) -> DatasetProfile:
        columns: dict[str, NumericProfile | CategoricalProfile] = dict(self.categorical)
        columns |= zip(self.numeric, self.stats.profiles(), strict=True)
        # A merged profile lists its columns by name (DatasetProfile.merge), one profile as
        # its data does.
        names = sorted(columns) if self.merged else [n for n in self.dtypes if n in columns]
        return DatasetProfile(
            rows=self.rows, dtypes=self.dtypes, columns={n: columns[n] for n in names}
        )

    def merge(self, other: _Parts) -> bool:
        """Merge ``other`` into this in place, as ``DatasetProfile.merge`` merges their
        profiles, when both have the same columns, dtypes, edges and categories; False (and
        nothing merged) otherwise."""
        mine, theirs = self.categorical, other.categorical
        if (
            self.dtypes != other.dtypes
            or self.numeric != other.numeric
            or self.stats.edges != other.stats.edges
            or mine.keys() != theirs.keys()
            or any(mine[n].categories != theirs[n].categories for n in mine)
        ):
            return False
        for name, column in theirs.items():
            mine[name] = mine[name].merge(column)
        self.stats.merge(other.stats)
        self.rows += other.rows
        self.merged = True
        return True


def _parts(
    source: pd.DataFrame | _ArrayColumns,
    reference: DatasetProfile | None,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    forced: set[str] | frozenset[str] = frozenset(),
) -> _Parts:
    """What ``from_frame`` makes of a checked frame (or numpy columns), before it is one."""
    columns = _FrameColumns(source) if isinstance(source, pd.DataFrame) else source
    categorical: dict[str, CategoricalProfile] = {}
    numeric: dict[str, list[float] | None] = {}  # column: the reference's edges
    for name, dtype in columns.dtypes.items():
        known = None if reference is None else reference.columns.get(name)
        if reference is not None and known is None:
            continue  # unknown to the reference: in the schema only
        if isinstance(known, NumericProfile):
            numeric[name] = known.edges
        elif known is None and dtype in _NUMERIC_DTYPES and name not in forced:
            numeric[name] = None
        else:
            categories = known.categories if isinstance(known, CategoricalProfile) else None
            categorical[name] = _categorical_profile(columns[name], categories, max_categories)
    stats = _numeric_stats(columns, numeric, bins)
    return _Parts(columns.rows, columns.dtypes, categorical, list(numeric), stats)


# --- building -------------------------------------------------------------------------------


def _as_frame(df: Any) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame) and hasattr(df, "to_pandas"):
        df = df.to_pandas()  # pyarrow tables, polars frames
    if not isinstance(df, pd.DataFrame):
        raise InvalidInput(f"expected a pandas DataFrame, got {type(df).__name__}", field="data")
    names = [str(c) for c in df.columns]
    if len(set(names)) != len(names):
        raise InvalidInput("column names must be unique", field="data")
    if names != list(df.columns):
        df = df.set_axis(names, axis=1)
    return df


def _check_options(reference: Any, bins: Any, max_categories: Any) -> None:
    if reference is not None and not isinstance(reference, DatasetProfile):
        raise InvalidInput("reference must be a DatasetProfile", field="reference")
    for field, value in (("bins", bins), ("max_categories", max_categories)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InvalidInput(f"{field} must be a positive integer, got {value!r}", field=field)


def _prediction_frame(predictions: Any) -> pd.DataFrame:
    if isinstance(predictions, pd.DataFrame):
        return predictions
    if isinstance(predictions, pd.Series):
        name = "prediction" if predictions.name is None else str(predictions.name)
        return predictions.to_frame(name)
    try:
        values = np.asarray(predictions)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("predictions must be array-like", field="predictions") from exc
    if values.ndim == 0:
        values = values.reshape(1)
    if values.ndim == 1:
        return pd.DataFrame({"prediction": values})
    if values.ndim == 2:
        return pd.DataFrame(values, columns=[f"score_{i}" for i in range(values.shape[1])])
    raise InvalidInput("predictions must be 1-D labels or 2-D scores", field="predictions")


class _FrameColumns:
    """The columns of a DataFrame, as profiling reads them."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.rows = len(frame)
        names = frame.columns.tolist()  # once: iterating an Index of text is slow
        self.dtypes = {
            n: _dtype_name(d, frame, n) for n, d in zip(names, frame.dtypes, strict=True)
        }

    def __getitem__(self, name: str) -> pd.Series:
        return self.frame[name]

    def numbers(self, names: list[str]) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
        """Groups of the columns ``names`` as (names, rows of float64 values with NaN for
        nulls, per column how many non-null values were not numbers)."""
        whole = _plain_numbers(self.frame, names)
        start = 0
        for group in _groups(names, self.rows):
            if whole is not None:  # rows of one array: each group is a view of them
                invalid = np.zeros(len(group), dtype=np.int64)
                yield group, whole[start : start + len(group)], invalid
            else:
                yield group, *_numeric_matrix(self.frame, group)
            start += len(group)


class _ArrayColumns:
    """Columns given as 1-D numpy arrays of numbers or booleans, as profiling reads them."""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        if not all(isinstance(v, np.ndarray) and v.dtype.kind in "biuf" for v in columns.values()):
            raise InvalidInput("columns must be 1-D numpy arrays of numbers or booleans")
        self.columns = columns
        self.rows = len(next(iter(columns.values()), ()))
        self.dtypes = {name: _NUMPY_KINDS[values.dtype.kind] for name, values in columns.items()}

    def __getitem__(self, name: str) -> pd.Series:
        return pd.Series(self.columns[name], name=name, copy=False)

    def numbers(self, names: list[str]) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
        """As ``_FrameColumns.numbers``: the values cast to float64 as pandas casts them."""
        for group in _groups(names, self.rows):
            values = np.empty((len(group), self.rows), dtype=np.float64)
            for i, name in enumerate(group):
                values[i] = self.columns[name]
            yield group, values, np.zeros(len(group), dtype=np.int64)


def _groups(names: list[str], rows: int) -> list[list[str]]:
    """Columns are profiled together in groups of about ``GROUP_VALUES`` values."""
    size = max(GROUP_VALUES // max(rows, 1), 1)  # columns per group: one when long
    return [names[start : start + size] for start in range(0, len(names), size)]


def _numeric_stats(
    source: _FrameColumns | _ArrayColumns, columns: dict[str, list[float] | None], bins: int
) -> _NumericStats:
    """Stats of the numeric ``columns`` (name: reference edges, None for quantile edges),
    worked on together: a few whole-array numpy calls per group of columns instead of a
    dozen per column (serving profiles thousands of small frames). Each column gets exactly
    what it would alone: the same chunks, the same reductions on the same values."""
    known = list(columns.values())
    # Reference edges are the same batch after batch, while groups follow the batch's
    # length: the slot bounds of all columns, once (cached), and each group's rows of them.
    shared = _slot_bounds(known) if all(e is not None for e in known) else None  # type: ignore[arg-type]
    parts, start = [], 0
    for group, values, invalid in source.numbers(list(columns)):
        end = start + len(group)
        edges = [
            e if e is not None else _quantile_edges(v, bins)
            for e, v in zip(known[start:end], values, strict=True)
        ]
        if shared is None:
            bounds, first = _slot_bounds(edges)
        else:  # padded to the widest column of all: +inf bounds no finite value reaches
            bounds, first = shared[0][start:end], shared[1][start : end + 1] - shared[1][start]
        parts.append(_column_stats(values, invalid, edges, bounds, first))
        start = end
    return _NumericStats.joined(parts)


def _plain_numbers(frame: pd.DataFrame, names: list[str]) -> np.ndarray | None:
    """All of ``frame`` as rows of one float64 array (one per column), when ``names`` are
    all its columns and they hold plain numbers only, as validated serving inputs do; else
    None. One conversion for the frame, not one per group of columns, and a view of pandas'
    own (columns, rows) block when the frame has one float64 block."""
    if names != frame.columns.tolist() or not all(
        isinstance(d, np.dtype) and d.kind in "biuf" for d in frame.dtypes
    ):
        return None
    return np.ascontiguousarray(frame.to_numpy(dtype=np.float64).T)


def _numeric_matrix(frame: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The columns as rows of one float64 array (NaN for nulls), and per column how many
    non-null values were not numbers."""
    invalid = np.zeros(len(names), dtype=np.int64)
    if len(names) == 1:  # a long column on its own: its values as they are, not a copy
        values, invalid[0] = _numeric_values(frame[names[0]])
        return values[np.newaxis, :], invalid
    values = np.empty((len(names), len(frame)), dtype=np.float64)
    for i, name in enumerate(names):
        values[i], invalid[i] = _numeric_values(frame[name])
    return values, invalid


def _numeric_values(series: pd.Series) -> tuple[np.ndarray, int]:
    """float64 values with NaN for nulls, and how many non-null values were not numbers."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    ):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), 0
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return _seconds(series), 0
    parsed = pd.to_numeric(series.astype(object), errors="coerce")
    values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    invalid = int((np.isnan(values) & series.notna().to_numpy()).sum())
    return values, invalid


def _seconds(series: pd.Series) -> np.ndarray:
    """Datetimes as seconds since the epoch, timedeltas as seconds; NaT as NaN."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    raw = series.to_numpy()
    unit = "datetime64[ns]" if raw.dtype.kind == "M" else "timedelta64[ns]"
    raw = raw.astype(unit)
    values = raw.view(np.int64).astype(np.float64) / 1e9
    values[np.isnat(raw)] = np.nan
    return values


class _NumericStats:
    """What the NumericProfiles of some columns are made of: per column ``[count, nulls,
    non_finite, invalid, min, max, mean, m2]`` (Python numbers; min and max None without
    values), and every column's histogram slots side by side in ``counts`` and ``sums``
    (column i's ``[underflow, bin_0, ..., overflow]`` at ``first[i]:first[i + 1]``).
    ``merge`` does in place what ``NumericProfile.merge`` does, column by column."""

    __slots__ = ("columns", "counts", "edges", "first", "sums")

    def __init__(
        self,
        edges: list[list[float]],
        first: np.ndarray,
        counts: np.ndarray,
        sums: np.ndarray,
        columns: list[list[Any]],
    ) -> None:
        self.edges, self.first, self.counts, self.sums = edges, first, counts, sums
        self.columns = columns

    @classmethod
    def joined(cls, parts: list[_NumericStats]) -> _NumericStats:
        """The stats of several groups of columns as one, their columns in turn."""
        if len(parts) == 1:
            return parts[0]
        starts = np.cumsum([0] + [int(p.first[-1]) for p in parts])
        first = [p.first[:-1] + at for p, at in zip(parts, starts.tolist(), strict=False)]
        return cls(
            [e for p in parts for e in p.edges],
            np.concatenate([*first, starts[-1:]]),
            np.concatenate([np.zeros(0, dtype=np.int64)] + [p.counts for p in parts]),
            np.concatenate([np.zeros(0)] + [p.sums for p in parts]),
            [c for p in parts for c in p.columns],
        )

    def merge(self, other: _NumericStats) -> None:
        """Add ``other`` (the same columns on the same edges) to these stats."""
        for mine, theirs in zip(self.columns, other.columns, strict=True):
            count, nulls, non_finite, invalid, low, high, mean, m2 = mine
            mean, m2 = _merge_moments(count, mean, m2, theirs[0], theirs[6], theirs[7])
            mine[:] = [
                count + theirs[0],
                nulls + theirs[1],
                non_finite + theirs[2],
                invalid + theirs[3],
                _extreme(min, low, theirs[4]),
                _extreme(max, high, theirs[5]),
                mean,
                m2,
            ]
        # Slot by slot, as the profiles' lists add: the same float additions.
        self.counts = self.counts + other.counts
        self.sums = self.sums + other.sums

    def profiles(self) -> list[NumericProfile]:
        first, counts, sums = self.first.tolist(), self.counts.tolist(), self.sums.tolist()
        profiles = []
        for i, (column_edges, column) in enumerate(zip(self.edges, self.columns, strict=True)):
            count, nulls, non_finite, invalid, low, high, mean, m2 = column
            c, s = counts[first[i] : first[i + 1]], sums[first[i] : first[i + 1]]
            profiles.append(
                NumericProfile(
                    count=count,
                    nulls=nulls,
                    non_finite=non_finite,
                    invalid=invalid,
                    min=low,
                    max=high,
                    mean=mean,
                    m2=m2,
                    edges=column_edges,
                    counts=c[1:-1],
                    underflow=c[0],
                    overflow=c[-1],
                    sums=s,
                )
            )
        return profiles


def _column_stats(
    values: np.ndarray,
    invalid: np.ndarray,
    edges: list[list[float]],
    bounds: np.ndarray,
    first: np.ndarray,
) -> _NumericStats:
    """One pass over the rows of ``values`` (one column each) in cache-sized chunks of
    ``CHUNK`` values per column: moments merge chunk by chunk, as windows do.

    All columns' histogram slots ``[underflow, bin_0, ..., overflow]`` sit side by side in
    one array (``bounds`` and ``first``: see ``_slot_bounds``), so a chunk's counts and sums
    are two ``bincount`` calls for all columns; non-finite values go to one extra slot at
    the end, which is dropped."""
    k, n = values.shape
    trash = int(first[-1])
    counts = np.zeros(trash + 1, dtype=np.int64)
    sums = np.zeros(trash + 1, dtype=np.float64)
    nan = np.zeros(k, dtype=np.int64)
    # Moments and extremes merge in Python ints and floats, exactly as windows merge them.
    count, mean, m2 = [0] * k, [0.0] * k, [0.0] * k
    low, high = [np.inf] * k, [-np.inf] * k
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n, CHUNK):
            chunk = values[:, start : start + CHUNK]
            finite = np.isfinite(chunk)
            clean = finite.all(axis=1)
            for i, size, lo, hi, chunk_mean, squares in _chunk_moments(chunk, finite, clean):
                mean[i], m2[i] = _merge_moments(count[i], mean[i], m2[i], size, chunk_mean, squares)
                count[i] += size
                low[i], high[i] = min(low[i], lo), max(high[i], hi)
            slot = _slots(bounds, chunk) + first[:-1, None]
            if not clean.all():
                slot[~finite] = trash
                for i in np.flatnonzero(~clean).tolist():
                    nan[i] += np.count_nonzero(np.isnan(chunk[i]))
            counts += np.bincount(slot.ravel(), minlength=trash + 1)
            sums += np.bincount(slot.ravel(), weights=chunk.ravel(), minlength=trash + 1)
    columns = [
        [
            count[i],
            int(nan[i] - invalid[i]),
            n - int(nan[i]) - count[i],
            int(invalid[i]),
            low[i] if count[i] else None,
            high[i] if count[i] else None,
            mean[i],
            m2[i],
        ]
        for i in range(k)
    ]
    return _NumericStats(edges, first, counts[:trash], sums[:trash], columns)


def _chunk_moments(
    chunk: np.ndarray, finite: np.ndarray, clean: np.ndarray
) -> list[tuple[int, int, float, float, float, float]]:
    """Per row with finite values: (row, their number, min, max, mean, sum of squared
    deviations). Rows that are all finite are reduced together; the others one by one on
    their finite values (the same reductions on the same contiguous values: same rounding)."""
    out = []
    rows = np.flatnonzero(clean)
    if rows.size and chunk.shape[1]:
        block = chunk if rows.size == len(chunk) else chunk[rows]
        means = block.mean(axis=1)
        # square and sum in numpy, not BLAS: a threaded ddot stalls on a busy machine; in
        # place, so the chunk needs one temporary, not two (each a fresh mapping to fault in)
        deviations = block - means[:, None]
        squares = np.square(deviations, out=deviations).sum(axis=1)
        size = block.shape[1]
        lows, highs = block.min(axis=1).tolist(), block.max(axis=1).tolist()
        for i, lo, hi, m, q in zip(
            rows.tolist(), lows, highs, means.tolist(), squares.tolist(), strict=True
        ):
            out.append((i, size, lo, hi, m, q))
    for i in np.flatnonzero(~clean).tolist():
        kept = chunk[i][finite[i]]
        if kept.size:
            m = float(kept.mean())
            squares = float(np.square(kept - m).sum())
            out.append((i, kept.size, float(kept.min()), float(kept.max()), m, squares))
    return out


def _slot_bounds(edges: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Each column's bounds as a row, padded with +inf (no finite value reaches it), and
    where each column's slots start in the shared slot array (plus the end).

    The last bin is closed, so its upper bound moves up by one ulp. A column without edges
    (a reference column that was empty) has one bound, -inf: every value is overflow.

    Serving profiles every batch against the same reference edges: the bounds are kept for
    the last few edge lists (read-only), which costs a tenth of building them."""
    return _bounds_of(tuple(map(tuple, edges)))


@functools.lru_cache(maxsize=32)
def _bounds_of(edges: tuple[tuple[float, ...], ...]) -> tuple[np.ndarray, np.ndarray]:
    width = max((len(e) for e in edges), default=1) or 1
    bounds = np.full((len(edges), width), np.inf)
    slots = np.empty(len(edges), dtype=np.int64)
    for i, column_edges in enumerate(edges):
        if column_edges:
            bounds[i, : len(column_edges)] = column_edges
            bounds[i, len(column_edges) - 1] = np.nextafter(column_edges[-1], np.inf)
        else:
            bounds[i, 0] = -np.inf
        slots[i] = max(len(column_edges), 1) + 1
    first = np.concatenate(([0], np.cumsum(slots)))
    bounds.flags.writeable = first.flags.writeable = False  # shared by later calls
    return bounds, first


def _slots(bounds: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each value, how many bounds of its row are <= it (``searchsorted(side="right")``)."""
    if bounds.shape[1] > 64:
        return np.stack(
            [np.searchsorted(b, v, side="right") for b, v in zip(bounds, values, strict=True)]
        )
    # A few vectorized comparisons beat a binary search per value by about 6x; into one
    # buffer, added as bytes (adding booleans to bytes casts them on every call).
    slot = np.zeros(values.shape, dtype=np.uint8)
    above = np.empty(values.shape, dtype=bool)
    for j in range(bounds.shape[1]):
        np.greater_equal(values, bounds[:, j : j + 1], out=above)
        slot += above.view(np.uint8)
    return slot


def _quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    finite = np.isfinite(values)
    if not finite.any():
        return []
    low = float(values.min(where=finite, initial=np.inf))
    high = float(values.max(where=finite, initial=-np.inf))
    # Interior edges come from at most ~2 * QUANTILE_SAMPLE evenly strided values (their
    # error is far below a bin's width); the outer edges are the exact min and max.
    step = max(values.size // QUANTILE_SAMPLE, 1)
    sample = values[::step][finite[::step]]
    if sample.size == 0:
        sample = values[finite]
    # inverted_cdf puts every edge on an observed value, so integer data bins as [k, k+1).
    quantiles = np.quantile(sample, np.linspace(0.0, 1.0, bins + 1), method="inverted_cdf")
    quantiles[0], quantiles[-1] = low, high
    edges = np.unique(quantiles)
    if edges.size == 1 or np.count_nonzero(values == high) > 1:
        edges = np.append(edges, high)  # the maximum gets a closed bin [max, max] of its own
    return edges.tolist()


def _categorical_profile(
    series: pd.Series, categories: list[str] | None, max_categories: int
) -> CategoricalProfile:
    plain = isinstance(series.dtype, np.dtype) and series.dtype.kind in "biu"
    nulls = 0 if plain else int(series.isna().sum())
    keys, counts = _plain_value_counts(series.to_numpy()) if plain else _value_counts(series)
    if categories is None:
        # most frequent first, ties by name, so the choice does not depend on row order
        by_name = np.argsort(np.asarray(keys, dtype=str), kind="stable")
        order = by_name[np.argsort(-counts[by_name], kind="stable")]
        kept, rest = order[:max_categories], order[max_categories:]
        categories = [keys[i] for i in kept]
        kept_counts = counts[kept].tolist()
        unseen = [keys[i] for i in rest]
        other = int(counts[rest].sum())
    else:
        where = {c: i for i, c in reversed(list(enumerate(categories)))}  # the first of equals
        positions = np.array([where.get(k, -1) for k in keys], dtype=np.intp)
        known = positions >= 0
        kept_counts = np.bincount(
            positions[known], weights=counts[known], minlength=len(categories)
        )
        kept_counts = kept_counts.astype(np.int64).tolist()
        unseen = [k for k, ok in zip(keys, known, strict=True) if not ok]
        other = int(counts[~known].sum())
    return CategoricalProfile(
        count=len(series) - nulls,
        nulls=nulls,
        categories=categories,
        counts=kept_counts,
        other=other,
        other_examples=heapq.nsmallest(OTHER_EXAMPLES, unseen),
    )


def _plain_value_counts(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """``_value_counts`` of integers or booleans (no nulls, each value its own text, as
    pandas writes it: "1", "True"), in numpy: class labels are profiled per batch served,
    where pandas' value_counts and text conversion cost ten times the counting."""
    uniques, counts = np.unique(values, return_counts=True)
    return [str(v) for v in uniques.tolist()], counts.astype(np.int64, copy=False)


def _value_counts(series: pd.Series) -> tuple[list[str], np.ndarray]:
    """Non-null values as text with their counts; values with equal text are added up."""
    counted = series.value_counts(dropna=True, sort=False)
    counted = counted[counted.to_numpy() > 0]  # categorical dtypes list unused categories
    index = counted.index
    if isinstance(index, pd.CategoricalIndex):
        index = pd.Index(index.to_numpy())
    if pd.api.types.is_float_dtype(index.dtype) and len(index):
        values = index.to_numpy(dtype=np.float64)
        if np.all(np.isfinite(values) & (values == np.round(values))):
            index = pd.Index(values.astype(np.int64))  # 1.0 is the category "1"
    keys = pd.Index(index.astype(str), dtype=object)
    counts = counted.to_numpy(dtype=np.int64)
    if keys.has_duplicates:
        summed = pd.Series(counts, index=keys).groupby(level=0, sort=False).sum()
        keys, counts = summed.index, summed.to_numpy(dtype=np.int64)
    return list(keys), counts


# --- schema ---------------------------------------------------------------------------------


_NUMPY_KINDS = {
    "b": "boolean",
    "i": "integer",
    "u": "integer",
    "f": "float",
    "M": "datetime",
    "m": "timedelta",
}


def _dtype_name(dtype: Any, frame: pd.DataFrame, name: str) -> str:
    """The schema's name for a column's dtype (the column is read only for object ones)."""
    if isinstance(dtype, np.dtype) and dtype.kind in _NUMPY_KINDS:
        return _NUMPY_KINDS[dtype.kind]  # the common case, without pandas' dtype checks
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta"
    if pd.api.types.is_string_dtype(dtype) and dtype.kind != "O":
        return "string"
    inferred = pd.api.types.infer_dtype(frame[name], skipna=True)
    return {"string": "string", "boolean": "boolean", "integer": "integer"}.get(inferred, "object")


def _join_dtypes(a: str, b: str) -> str:
    """The dtype of two windows together: equal stays, integer+float is float, else mixed."""
    if a == b:
        return a
    if {a, b} == {"integer", "float"}:
        return "float"
    return "mixed"


def _merge_moments(
    na: int, mean_a: float, m2_a: float, nb: int, mean_b: float, m2_b: float
) -> tuple[float, float]:
    """Chan et al.'s parallel update, written symmetrically so a+b == b+a bit for bit."""
    if na == 0:
        return mean_b, m2_b
    if nb == 0:
        return mean_a, m2_a
    n = na + nb
    delta = mean_b - mean_a
    mean = mean_a * (na / n) + mean_b * (nb / n)
    return mean, m2_a + m2_b + delta * delta * (na * nb / n)


def _extreme(pick: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return pick(a, b)
