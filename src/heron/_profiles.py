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

import heapq
import operator
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from heron._column_stats import (
    ArrayColumns,
    FrameColumns,
    NumericStats,
    extreme,
    merge_moments,
    numeric_stats,
)
from heron._errors import InvalidInput
from heron._lazy import LazyModule

pd: Any = LazyModule("pandas")  # imported on first use (see heron._lazy)


PROFILE_FORMAT = 1
DEFAULT_BINS = 20
DEFAULT_MAX_CATEGORIES = 100
OTHER_EXAMPLES = 10

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
        mean, m2 = merge_moments(self.count, self.mean, self.m2, other.count, other.mean, other.m2)
        return NumericProfile(
            count=self.count + other.count,
            nulls=self.nulls + other.nulls,
            non_finite=self.non_finite + other.non_finite,
            invalid=self.invalid + other.invalid,
            min=extreme(min, self.min, other.min),
            max=extreme(max, self.max, other.max),
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
            parts = _parts(ArrayColumns(data), reference)
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
    numeric columns' stats (``NumericStats``)."""

    __slots__ = ("categorical", "dtypes", "merged", "numeric", "rows", "stats")

    def __init__(
        self,
        rows: int,
        dtypes: dict[str, str],
        categorical: dict[str, CategoricalProfile],
        numeric: list[str],
        stats: NumericStats,
    ) -> None:
        self.rows, self.dtypes, self.categorical = rows, dtypes, categorical
        self.numeric, self.stats = numeric, stats
        self.merged = False

    def profile(self) -> DatasetProfile:
        columns: dict[str, NumericProfile | CategoricalProfile] = dict(self.categorical)
        numeric = (NumericProfile(**fields) for fields in self.stats.fields())
        columns |= zip(self.numeric, numeric, strict=True)
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
    source: pd.DataFrame | ArrayColumns,
    reference: DatasetProfile | None,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    forced: set[str] | frozenset[str] = frozenset(),
) -> _Parts:
    """What ``from_frame`` makes of a checked frame (or numpy columns), before it is one."""
    columns = FrameColumns(source) if isinstance(source, pd.DataFrame) else source
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
    stats = numeric_stats(columns, numeric, bins)
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


def _join_dtypes(a: str, b: str) -> str:
    """The dtype of two windows together: equal stays, integer+float is float, else mixed."""
    if a == b:
        return a
    if {a, b} == {"integer", "float"}:
        return "float"
    return "mixed"
