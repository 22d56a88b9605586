"""Numeric statistics of many columns at once: what a ``NumericProfile`` is made of.

Profiling reads a batch as columns (``FrameColumns`` of a DataFrame, ``ArrayColumns`` of
numpy arrays by name) and works on its numeric columns together, in groups of about
``GROUP_VALUES`` values and chunks of ``CHUNK`` values per column: counts, nulls, extremes,
mean and m2 (merged chunk by chunk with Chan's formula, as windows merge), and every
column's histogram slots side by side in one array (``NumericStats``), so a chunk costs a
few whole-array numpy calls rather than a dozen per column. The prediction server profiles
every batch it logs with this, in a thread that shares the interpreter with the requests.
Bin edges of a column without a reference are its quantiles (``_quantile_edges``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

from heron._errors import InvalidInput
from heron._lazy import LazyModule

pd: Any = LazyModule("pandas")  # imported on first use (see heron._lazy)

QUANTILE_SAMPLE = 100_000
CHUNK = 1 << 16  # values per column and step: temporaries stay in cache
_ONE_COMPARISON = 1 << 20  # values x bounds that _slots compares in one call (1 MB of bools)
GROUP_VALUES = 1 << 17  # columns are profiled together in groups of about this many values


class FrameColumns:
    """The columns of a DataFrame, as profiling reads them."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.rows = len(frame)
        names = frame.columns.tolist()  # once: iterating an Index of text is slow
        self.dtypes = {n: dtype_name(d, frame, n) for n, d in zip(names, frame.dtypes, strict=True)}

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


class ArrayColumns:
    """Columns given as 1-D numpy arrays of numbers or booleans, as profiling reads them."""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        if not all(isinstance(v, np.ndarray) and v.dtype.kind in "biuf" for v in columns.values()):
            raise InvalidInput("columns must be 1-D numpy arrays of numbers or booleans")
        self.columns = columns
        self.rows = len(next(iter(columns.values()), ()))
        self.dtypes = {name: NUMPY_KINDS[values.dtype.kind] for name, values in columns.items()}

    def __getitem__(self, name: str) -> pd.Series:
        return pd.Series(self.columns[name], name=name, copy=False)

    def numbers(self, names: list[str]) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
        """As ``FrameColumns.numbers``: the values cast to float64 as pandas casts them.
        Columns that are rows of one array (how the prediction server hands its batches
        over) are taken as they are: copying them one by one released the GIL each time."""
        for group in _groups(names, self.rows):
            values = _rows_of_one_array([self.columns[name] for name in group])
            if values is None:
                values = np.empty((len(group), self.rows), dtype=np.float64)
                for i, name in enumerate(group):
                    values[i] = self.columns[name]
            yield group, values, np.zeros(len(group), dtype=np.int64)


def _rows_of_one_array(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The float64 ``arrays`` as the view of the consecutive rows of the one C-ordered
    array they are views of (one contiguous array: itself as a row), or None when they are
    not that."""
    first = arrays[0]
    if len(arrays) == 1 and first.dtype == np.float64 and first.flags.c_contiguous:
        return first[None, :]
    owner = first.base
    if not (
        isinstance(owner, np.ndarray)
        and owner.ndim == 2
        and owner.dtype == np.float64
        and owner.flags.c_contiguous
        and owner.shape[1] > 0
    ):
        return None
    start = _address(first) - _address(owner)
    if start % owner.strides[0]:
        return None
    rows = owner[start // owner.strides[0] :][: len(arrays)]
    if len(rows) == len(arrays) and all(
        a.base is owner
        and a.dtype == np.float64
        and a.shape == row.shape
        and a.strides == row.strides
        and _address(a) == _address(row)
        for a, row in zip(arrays, rows, strict=True)
    ):
        return rows
    return None


def _address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


def _groups(names: list[str], rows: int) -> list[list[str]]:
    """Columns are profiled together in groups of about ``GROUP_VALUES`` values."""
    size = max(GROUP_VALUES // max(rows, 1), 1)  # columns per group: one when long
    return [names[start : start + size] for start in range(0, len(names), size)]


def numeric_stats(
    source: FrameColumns | ArrayColumns, columns: dict[str, list[float] | None], bins: int
) -> NumericStats:
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
    return NumericStats.joined(parts)


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


class NumericStats:
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
    def joined(cls, parts: list[NumericStats]) -> NumericStats:
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

    def merge(self, other: NumericStats) -> None:
        """Add ``other`` (the same columns on the same edges) to these stats."""
        for mine, theirs in zip(self.columns, other.columns, strict=True):
            count, nulls, non_finite, invalid, low, high, mean, m2 = mine
            mean, m2 = merge_moments(count, mean, m2, theirs[0], theirs[6], theirs[7])
            mine[:] = [
                count + theirs[0],
                nulls + theirs[1],
                non_finite + theirs[2],
                invalid + theirs[3],
                extreme(min, low, theirs[4]),
                extreme(max, high, theirs[5]),
                mean,
                m2,
            ]
        # Slot by slot, as the profiles' lists add: the same float additions.
        self.counts = self.counts + other.counts
        self.sums = self.sums + other.sums

    def fields(self) -> list[dict[str, Any]]:
        """Each column's ``NumericProfile`` fields, in column order."""
        first, counts, sums = self.first.tolist(), self.counts.tolist(), self.sums.tolist()
        out = []
        for i, (column_edges, column) in enumerate(zip(self.edges, self.columns, strict=True)):
            count, nulls, non_finite, invalid, low, high, mean, m2 = column
            c, s = counts[first[i] : first[i + 1]], sums[first[i] : first[i + 1]]
            out.append(
                {
                    "count": count,
                    "nulls": nulls,
                    "non_finite": non_finite,
                    "invalid": invalid,
                    "min": low,
                    "max": high,
                    "mean": mean,
                    "m2": m2,
                    "edges": column_edges,
                    "counts": c[1:-1],
                    "underflow": c[0],
                    "overflow": c[-1],
                    "sums": s,
                }
            )
        return out


def _column_stats(
    values: np.ndarray,
    invalid: np.ndarray,
    edges: list[list[float]],
    bounds: np.ndarray,
    first: np.ndarray,
) -> NumericStats:
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
                mean[i], m2[i] = merge_moments(count[i], mean[i], m2[i], size, chunk_mean, squares)
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
    return NumericStats(edges, first, counts[:trash], sums[:trash], columns)


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
    if values.size * bounds.shape[1] <= _ONE_COMPARISON:
        # One comparison of every value with every bound, summed: 2 numpy calls instead of
        # 2 per bound. Each call over many values releases the GIL, and in a prediction
        # server the request thread takes it then, so the log flusher (which profiles small
        # batches) waits its turn again after every call.
        above = np.greater_equal(values[:, None, :], bounds[:, :, None])
        return above.view(np.uint8).sum(axis=1, dtype=np.uint8)
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


NUMPY_KINDS = {
    "b": "boolean",
    "i": "integer",
    "u": "integer",
    "f": "float",
    "M": "datetime",
    "m": "timedelta",
}


def dtype_name(dtype: Any, frame: pd.DataFrame, name: str) -> str:
    """The schema's name for a column's dtype (the column is read only for object ones)."""
    if isinstance(dtype, np.dtype) and dtype.kind in NUMPY_KINDS:
        return NUMPY_KINDS[dtype.kind]  # the common case, without pandas' dtype checks
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


def merge_moments(
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


def extreme(pick: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return pick(a, b)
