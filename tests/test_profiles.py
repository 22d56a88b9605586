import functools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron import _column_stats, _profiles
from heron._errors import InvalidInput
from heron._profiles import CategoricalProfile, DatasetProfile, NumericProfile

# --- merging: algebra ------------------------------------------------------------------------

numbers = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.integers(min_value=-5, max_value=5).map(float),  # ties and repeated values
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
labels = st.one_of(st.sampled_from(["a", "b", "c", "d", "e"]), st.none())


@st.composite
def frames(draw, min_rows=0):
    n = draw(st.integers(min_value=min_rows, max_value=40))
    return pd.DataFrame(
        {
            "x": pd.Series(draw(st.lists(numbers, min_size=n, max_size=n)), dtype="float64"),
            "c": pd.Series(draw(st.lists(labels, min_size=n, max_size=n)), dtype=object),
        }
    )


def assert_same_profile(merged: DatasetProfile, whole: DatasetProfile) -> None:
    """Counts, extremes and histograms exactly; moments and bin sums to rounding."""
    rounded = {"mean", "m2", "sums"}
    assert merged.rows == whole.rows
    assert merged.columns.keys() == whole.columns.keys()
    for name, col in whole.columns.items():
        got = merged.columns[name]
        assert got.model_dump(exclude=rounded) == col.model_dump(exclude=rounded), name
        if isinstance(col, NumericProfile):
            scale = max(abs(col.min or 0.0), abs(col.max or 0.0), 1.0)
            assert got.mean == pytest.approx(col.mean, rel=1e-9, abs=1e-12 * scale)
            tolerance = 1e-12 * scale * scale * max(col.count, 1)
            assert got.m2 == pytest.approx(col.m2, rel=1e-9, abs=tolerance)
            assert got.sums == pytest.approx(col.sums, rel=1e-9, abs=1e-9 * scale)


@settings(max_examples=150, deadline=None)
@given(reference=frames(), data=frames(), cut=st.floats(0, 1))
def test_merging_parts_equals_profiling_the_concatenation(reference, data, cut):
    ref = DatasetProfile.from_frame(reference, bins=5)
    k = int(cut * len(data))
    parts = [DatasetProfile.from_frame(part, ref) for part in (data.iloc[:k], data.iloc[k:])]
    assert_same_profile(parts[0].merge(parts[1]), DatasetProfile.from_frame(data, ref))


@settings(max_examples=100, deadline=None)
@given(data=frames(min_rows=1), cut=st.floats(0, 1))
def test_merging_against_itself_as_reference(data, cut):
    ref = DatasetProfile.from_frame(data, bins=7)
    k = int(cut * len(data))
    a, b = (DatasetProfile.from_frame(part, ref) for part in (data.iloc[:k], data.iloc[k:]))
    whole = DatasetProfile.from_frame(data, ref)
    assert_same_profile(a.merge(b), whole)
    assert whole.columns["x"].underflow == whole.columns["x"].overflow == 0


@settings(max_examples=100, deadline=None)
@given(reference=frames(), a=frames(), b=frames(), c=frames())
def test_merge_is_commutative_exactly_and_associative(reference, a, b, c):
    ref = DatasetProfile.from_frame(reference, bins=4)
    pa, pb, pc = (DatasetProfile.from_frame(df, ref) for df in (a, b, c))
    assert pa.merge(pb) == pb.merge(pa)
    assert_same_profile(pa.merge(pb).merge(pc), pa.merge(pb.merge(pc)))


@settings(max_examples=50, deadline=None)
@given(data=frames())
def test_profiles_survive_json(data):
    profile = DatasetProfile.from_frame(data, bins=3)
    again = DatasetProfile.model_validate_json(profile.model_dump_json())
    assert again == profile


def test_merge_treats_a_column_missing_on_one_side_as_nulls():
    ref = DatasetProfile.from_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}))
    a = DatasetProfile.from_frame(pd.DataFrame({"x": [1.0, 5.0], "c": ["a", "z"]}), ref)
    b = DatasetProfile.from_frame(pd.DataFrame({"x": [2.0, 2.5, 3.0]}), ref)
    whole = DatasetProfile.from_frame(
        pd.DataFrame({"x": [1.0, 5.0, 2.0, 2.5, 3.0], "c": ["a", "z", None, None, None]}), ref
    )
    merged = a.merge(b)
    assert merged.columns == whole.columns
    assert b.merge(a).columns == whole.columns


# --- building --------------------------------------------------------------------------------


def test_reference_profile_shape_and_json():
    df = pd.DataFrame(
        {"age": [21, 30, 35, 50, 64], "city": ["Oslo", "Rome", "Oslo", "Rome", "Oslo"]}
    )
    profile = DatasetProfile.from_frame(df, bins=2)
    assert profile.model_dump(mode="json") == {
        "format": 1,
        "rows": 5,
        "dtypes": {"age": "integer", "city": "string"},
        "columns": {
            "age": {
                "kind": "numeric",
                "count": 5,
                "nulls": 0,
                "non_finite": 0,
                "invalid": 0,
                "min": 21.0,
                "max": 64.0,
                "mean": 40.0,
                "m2": 1162.0,
                "edges": [21.0, 35.0, 64.0],
                "counts": [2, 3],
                "underflow": 0,
                "overflow": 0,
                "sums": [0.0, 51.0, 149.0, 0.0],
            },
            "city": {
                "kind": "categorical",
                "count": 5,
                "nulls": 0,
                "categories": ["Oslo", "Rome"],
                "counts": [3, 2],
                "other": 0,
                "other_examples": [],
            },
        },
    }


def test_quantile_edges_and_histogram():
    x = np.arange(1000, dtype=float)
    col = DatasetProfile.from_frame(pd.DataFrame({"x": x}), bins=20).columns["x"]
    assert len(col.edges) == 21
    assert col.edges[0] == 0.0 and col.edges[-1] == 999.0
    assert sum(col.counts) == 1000 and max(col.counts) - min(col.counts) <= 2
    assert col.variance == pytest.approx(np.var(x, ddof=1))


def test_values_outside_reference_edges_go_to_underflow_and_overflow():
    ref = DatasetProfile.from_frame(pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}), bins=3)
    col = DatasetProfile.from_frame(pd.DataFrame({"x": [-1.0, 0.0, 3.0, 3.5, 9.0]}), ref)
    x = col.columns["x"]
    assert (x.underflow, sum(x.counts), x.overflow) == (1, 2, 2)
    assert x.counts[-1] == 1  # the last bin is closed: 3.0 is in it
    assert x.sums == [-1.0, 0.0, 0.0, 3.0, 12.5]


def test_binary_column_keeps_its_two_values_apart():
    col = DatasetProfile.from_frame(pd.DataFrame({"y": [0, 1, 1, 0, 1, 1]})).columns["y"]
    assert col.edges == [0.0, 1.0, 1.0]
    assert col.counts == [2, 4]


def test_categories_are_capped_with_an_other_bucket():
    values = [f"v{i:03d}" for i in range(30) for _ in range(30 - i)]
    col = DatasetProfile.from_frame(pd.DataFrame({"c": values}), max_categories=5).columns["c"]
    assert col.categories == ["v000", "v001", "v002", "v003", "v004"]
    assert col.counts == [30, 29, 28, 27, 26]
    assert col.other == len(values) - sum(col.counts)
    assert col.other_examples == [f"v{i:03d}" for i in range(5, 15)]


def test_category_order_does_not_depend_on_row_order():
    df = pd.DataFrame({"c": ["b", "a", "c", "a", "b", "c"]})
    assert DatasetProfile.from_frame(df) == DatasetProfile.from_frame(df.iloc[::-1])


def test_profile_building_is_fast_enough_for_a_million_values():
    # not a benchmark (bench/monitoring is); a guard against a per-row Python loop
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"x": rng.normal(size=1_000_000), "c": rng.choice(list("abcde"), 1_000_000)})
    import time

    start = time.perf_counter()
    ref = DatasetProfile.from_frame(df)
    DatasetProfile.from_frame(df, ref)
    assert time.perf_counter() - start < 5.0


@st.composite
def mixed_frames(draw):
    """Columns of every kind a frame brings: floats with nulls and infinities, integers,
    booleans, numbers as text, labels with nulls, datetimes with NaT."""
    n = draw(st.integers(min_value=0, max_value=30))

    def column(strategy):
        return draw(st.lists(strategy, min_size=n, max_size=n))

    makers = {
        "float": lambda: pd.Series(column(numbers), dtype="float64"),
        "int": lambda: pd.Series(column(st.integers(-50, 50)), dtype="int64"),
        "bool": lambda: pd.Series(column(st.booleans()), dtype=bool),
        "text-numbers": lambda: pd.Series(
            column(st.sampled_from(["1.5", "x", None])), dtype=object
        ),
        "label": lambda: pd.Series(column(labels), dtype=object),
        "time": lambda: pd.to_datetime(
            pd.Series(column(st.sampled_from(["2024-01-01", None, "2024-03-05"]))), utc=True
        ),
    }
    kinds = draw(st.lists(st.sampled_from(sorted(makers)), min_size=1, max_size=7))
    return pd.DataFrame({f"{kind}{i}": makers[kind]() for i, kind in enumerate(kinds)})


@settings(max_examples=150, deadline=None)
@given(reference=mixed_frames(), data=mixed_frames(), chunk=st.sampled_from([2, 5, 1 << 16]))
def test_columns_profiled_together_equal_each_column_profiled_alone(reference, data, chunk):
    # Numeric columns are profiled together in groups, chunk by chunk; each must come out
    # bit for bit as it would alone. Small chunks and groups exercise every boundary.
    # The window's first columns take the reference's names, whatever their kind; the rest
    # are unknown to it.
    names = [*reference.columns, *data.columns[reference.shape[1] :]][: data.shape[1]]
    data = data.set_axis(names, axis=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_column_stats, "CHUNK", chunk)
        patch.setattr(_column_stats, "GROUP_VALUES", 3 * chunk)
        ref = DatasetProfile.from_frame(reference, bins=4)
        for frame, against in ((reference, None), (data, ref)):
            whole = DatasetProfile.from_frame(frame, against, bins=4)
            for name in frame.columns:
                alone = DatasetProfile.from_frame(frame[[name]], against, bins=4)
                assert alone.dtypes[name] == whole.dtypes[name]
                if name in alone.columns:
                    got, expected = whole.columns[name], alone.columns[name]
                    assert got.model_dump_json() == expected.model_dump_json(), name


edge_values = st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0])  # bounds, between and beyond


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.one_of(edge_values, numbers, st.floats(-5, 5, allow_nan=False)), max_size=60
    ),
    edges=st.lists(edge_values, min_size=2, max_size=6).map(sorted),
    chunk=st.sampled_from([3, 1 << 16]),
    one_comparison=st.sampled_from([0, 1 << 20]),
)
def test_histograms_count_as_numpy_histogram(values, edges, chunk, one_comparison):
    # Bins are [e_i, e_i+1) and the last one closed, as numpy.histogram has them (repeated
    # edges included); NaN are nulls, infinities non-finite, the rest of the finite values
    # under- or overflow. Sums are those of the values in each slot. Values find their slot
    # in one comparison with all bounds (small batches) or bound by bound: both count alike.
    x = np.array(values, dtype=np.float64)
    empty = NumericProfile(
        count=0, edges=edges, counts=[0] * (len(edges) - 1), sums=[0.0] * (len(edges) + 1)
    )
    ref = DatasetProfile(rows=0, columns={"x": empty})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_column_stats, "CHUNK", chunk)
        patch.setattr(_column_stats, "_ONE_COMPARISON", one_comparison)
        col = DatasetProfile.from_frame(pd.DataFrame({"x": x}), ref).columns["x"]
    finite = x[np.isfinite(x)]
    inside = finite[(finite >= edges[0]) & (finite <= edges[-1])]
    below, above = finite[finite < edges[0]], finite[finite > edges[-1]]
    counts, _ = np.histogram(inside, bins=edges)
    sums, _ = np.histogram(inside, bins=edges, weights=inside)
    assert col.counts == counts.tolist()
    assert col.sums[1:-1] == pytest.approx(sums.tolist())
    assert (col.nulls, col.non_finite) == (np.isnan(x).sum(), np.isinf(x).sum())
    assert (col.underflow, col.overflow, col.count) == (below.size, above.size, finite.size)
    assert col.sums[0] == pytest.approx(below.sum()) and col.sums[-1] == pytest.approx(above.sum())


def test_a_reference_column_without_edges_counts_every_value_as_overflow():
    ref = DatasetProfile.from_frame(pd.DataFrame({"x": [np.nan, np.nan]}))
    col = DatasetProfile.from_frame(pd.DataFrame({"x": [1.0, -2.0, np.inf]}), ref).columns["x"]
    assert (col.edges, col.counts, col.overflow, col.sums) == ([], [], 2, [0.0, -1.0])
    empty = DatasetProfile.from_frame(pd.DataFrame({"x": pd.Series([], dtype=float)}), REF)
    assert empty.columns["x"].counts == [0, 0] and empty.columns["x"].count == 0


@st.composite
def numeric_columns(draw, n=None):
    """Columns as a validated serving batch holds them: numpy numbers of each width."""
    n = draw(st.integers(min_value=0, max_value=30)) if n is None else n
    makers = {
        "f8": lambda: np.array(draw(st.lists(numbers, min_size=n, max_size=n)), dtype=float),
        "f4": lambda: np.array(
            draw(st.lists(st.floats(-1e3, 1e3, width=32), min_size=n, max_size=n)), np.float32
        ),
        "i8": lambda: np.array(draw(st.lists(st.integers(-9, 9), min_size=n, max_size=n))),
        "i4": lambda: np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), np.int32),
        "b": lambda: np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool),
    }
    kinds = draw(st.lists(st.sampled_from(sorted(makers)), min_size=1, max_size=6))
    return {f"{kind}_{i}": makers[kind]() for i, kind in enumerate(kinds)}


@settings(max_examples=150, deadline=None)
@given(reference=numeric_columns(), data=st.data(), labels=st.sets(st.integers(0, 5)))
def test_a_running_profile_is_the_merge_of_its_batches_profiles(reference, data, labels):
    # The prediction server folds batches of validated arrays (numpy columns by name, no
    # DataFrame) into running profiles: the same, bit for bit, as merging the profiles of
    # the frames in turn, including columns the reference holds as categories and a batch
    # of another shape (a column missing) that ends the fast merge.
    names = list(reference)
    batches = []
    for _ in range(data.draw(st.integers(1, 4))):
        columns = data.draw(numeric_columns(n=data.draw(st.integers(0, 30))))
        keys = [names[i] if i < len(names) else k for i, k in enumerate(columns)]
        batches.append(dict(zip(keys, columns.values(), strict=True)))
    if data.draw(st.booleans()) and len(batches[-1]) > 1:
        batches.append(dict(list(batches[-1].items())[1:]))
    forced = [name for i, name in enumerate(names) if i in labels]
    ref = DatasetProfile.from_frame(pd.DataFrame(reference), bins=4, categorical=forced)
    # Without a reference, each batch has edges of its own: one batch, nothing to merge.
    for against, run in ((None, batches[:1]), (ref, batches)):
        running = _profiles.RunningProfile()
        for i, batch in enumerate(run):
            rows = running.add(batch if i % 2 else pd.DataFrame(batch), against)
            assert rows == len(next(iter(batch.values())))
        profiles = [DatasetProfile.from_frame(pd.DataFrame(b), against) for b in run]
        expected = functools.reduce(DatasetProfile.merge, profiles)
        assert running.profile().model_dump_json() == expected.model_dump_json()


@settings(max_examples=80, deadline=None)
@given(data=st.data(), k=st.integers(1, 6))
def test_columns_that_are_rows_of_one_array_are_profiled_without_a_copy(data, k):
    # The prediction server hands a batch over as the columns of one transposed array
    # (rows of it): profiling takes them as they are, with the profile copies would give.
    records = data.draw(st.lists(st.lists(numbers, min_size=k, max_size=k), max_size=30))
    joined = np.array(records, dtype=np.float64).reshape(-1, k)
    shared = np.ascontiguousarray(joined.T).T
    names = [f"c{i}" for i in range(k)]
    as_rows = {name: shared[:, i] for i, name in enumerate(names)}
    copies = {name: joined[:, i].copy() for i, name in enumerate(names)}
    if len(joined) > 1:
        (_, values, _), *_ = _column_stats.ArrayColumns(as_rows).numbers(names)
        assert np.shares_memory(values, shared)
    ref = DatasetProfile.from_frame(pd.DataFrame(copies), bins=4)
    for against in (None, ref):
        profiles = []
        for columns in (as_rows, copies):
            running = _profiles.RunningProfile()
            running.add(columns, against)
            profiles.append(running.profile().model_dump_json())
        assert profiles[0] == profiles[1]


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.one_of(st.integers(-3, 3), st.integers(2**62, 2**63 - 1))),
    flags=st.lists(st.booleans()),
)
def test_integer_and_boolean_labels_count_as_their_text(values, flags):
    # Plain integers and booleans are counted in numpy; as Python objects they take pandas'
    # path: the same categories, counts and examples.
    for column in (np.array(values, dtype=np.int64), np.array(flags, dtype=bool)):
        ref = DatasetProfile.from_frame(
            pd.DataFrame({"c": column[: len(column) // 2]}), categorical=["c"], max_categories=3
        )
        for against in (None, ref):
            fast = DatasetProfile.from_frame(
                pd.DataFrame({"c": column}), against, categorical=["c"], max_categories=3
            )
            slow = DatasetProfile.from_frame(
                pd.DataFrame({"c": column.astype(object)}),
                against,
                categorical=["c"],
                max_categories=3,
            )
            assert fast.columns == slow.columns


# --- bad input: defined outcomes -------------------------------------------------------------

REF = DatasetProfile.from_frame(
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "b"]}), bins=2
)


@pytest.mark.parametrize(
    ("frame", "column", "expected"),
    [
        (pd.DataFrame({"x": pd.Series([], dtype=float)}), "x", {"count": 0, "min": None}),
        (pd.DataFrame({"x": [np.nan, np.nan]}), "x", {"count": 0, "nulls": 2, "edges": []}),
        (pd.DataFrame({"x": [7.0, 7.0, 7.0]}), "x", {"edges": [7.0, 7.0], "counts": [3]}),
        (
            pd.DataFrame({"x": [1.0, np.nan, np.inf, -np.inf, None]}),
            "x",
            {"count": 1, "nulls": 2, "non_finite": 2, "m2": 0.0},
        ),
        (pd.DataFrame({"c": [None, None]}, dtype=object), "c", {"count": 0, "nulls": 2}),
        (pd.DataFrame({"b": [True, False, True]}), "b", {"categories": ["True", "False"]}),
        (
            pd.DataFrame({"t": pd.to_datetime(["2024-01-01", None], utc=True)}),
            "t",
            {"count": 1, "nulls": 1, "min": 1704067200.0},
        ),
        (pd.DataFrame({"m": [1, "1", 2]}, dtype=object), "m", {"categories": ["1", "2"]}),
    ],
    ids=[
        "empty-frame",
        "all-null",
        "single-value",
        "nan-and-inf",
        "all-null-text",
        "booleans-are-categories",
        "datetimes-as-seconds",
        "mixed-object-by-text",
    ],
)
def test_reference_profiles_of_awkward_columns(frame, column, expected):
    col = DatasetProfile.from_frame(frame).columns[column]
    assert {k: getattr(col, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("frame", "column", "expected"),
    [
        (
            pd.DataFrame({"x": ["1.5", "oops", None, "9"]}),
            "x",
            {"count": 2, "invalid": 1, "nulls": 1, "overflow": 1},
        ),
        (pd.DataFrame({"c": ["a", "zz", "zz", "yy"]}), "c", {"other": 3, "counts": [1, 0]}),
        (pd.DataFrame({"c": [1, 2, 1.0]}), "c", {"other": 3, "other_examples": ["1", "2"]}),
        (pd.DataFrame({"x": [True, False]}), "x", {"count": 2, "underflow": 1}),
        (pd.DataFrame({"x": pd.Series([], dtype=object)}), "x", {"count": 0, "counts": [0, 0]}),
    ],
    ids=[
        "numbers-as-strings",
        "unseen-categories",
        "categories-as-numbers",
        "booleans-in-numeric",
        "empty-window",
    ],
)
def test_windows_with_mismatched_or_unseen_values(frame, column, expected):
    col = DatasetProfile.from_frame(frame, REF).columns[column]
    assert {k: getattr(col, k) for k in expected} == expected


def test_columns_unknown_to_the_reference_are_recorded_in_the_schema_only():
    profile = DatasetProfile.from_frame(pd.DataFrame({"x": [1.0], "extra": ["q"]}), REF)
    assert profile.dtypes == {"x": "float", "extra": "string"}
    assert set(profile.columns) == {"x"}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: DatasetProfile.from_frame([1, 2, 3]), "data"),
        (lambda: DatasetProfile.from_frame(pd.DataFrame({"x": [1]}), bins=0), "bins"),
        (lambda: DatasetProfile.from_frame(pd.DataFrame({"x": [1]}), bins="5"), "bins"),
        (
            lambda: DatasetProfile.from_frame(pd.DataFrame({"x": [1]}), max_categories=0),
            "max_categories",
        ),
        (lambda: DatasetProfile.from_frame(pd.DataFrame([[1, 2]], columns=["a", "a"])), "data"),
        (lambda: DatasetProfile.from_frame(pd.DataFrame({"x": [1]}), reference={}), "reference"),
        (lambda: DatasetProfile.for_predictions([1, 2], kind="probabilities"), "kind"),
        (lambda: DatasetProfile.for_predictions(np.zeros((2, 2, 2))), "predictions"),
    ],
    ids=[
        "not-a-frame",
        "zero-bins",
        "bins-not-int",
        "zero-categories",
        "duplicate-columns",
        "reference-not-a-profile",
        "unknown-prediction-kind",
        "3d-predictions",
    ],
)
def test_bad_arguments_raise_invalid_input(call, field):
    with pytest.raises(InvalidInput) as info:
        call()
    assert info.value.field == field


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (
            DatasetProfile.from_frame(pd.DataFrame({"x": [1.0, 2.0]})),
            DatasetProfile.from_frame(pd.DataFrame({"x": [1.0, 3.0]})),
        ),
        (
            DatasetProfile.from_frame(pd.DataFrame({"x": [1.0, 2.0]})),
            DatasetProfile.from_frame(pd.DataFrame({"x": ["a", "b"]})),
        ),
        (
            DatasetProfile.from_frame(pd.DataFrame({"c": ["a"]})),
            DatasetProfile.from_frame(pd.DataFrame({"c": ["b"]})),
        ),
    ],
    ids=["different-edges", "numeric-vs-categorical", "different-categories"],
)
def test_merging_profiles_of_different_references_raises(left, right):
    with pytest.raises(InvalidInput):
        left.merge(right)


def test_invalid_stored_profiles_are_rejected():
    with pytest.raises(ValueError, match="one entry per bin"):
        NumericProfile(count=1, edges=[0.0, 1.0], counts=[1, 2])
    with pytest.raises(ValueError, match="one entry per category"):
        CategoricalProfile(count=1, categories=["a"], counts=[])


# --- predictions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predictions", "kind", "expected"),
    [
        (np.array([0, 1, 1, 2]), "auto", {"prediction": "categorical"}),
        (np.array([0.1, 0.9, 0.4]), "auto", {"prediction": "numeric"}),
        (["yes", "no", "yes"], "auto", {"prediction": "categorical"}),
        (np.array([[0.2, 0.8], [0.6, 0.4]]), "auto", {"score_0": "numeric", "score_1": "numeric"}),
        (pd.Series([1.0, 2.0], name="price"), "auto", {"price": "numeric"}),
        (np.array([1.0, 0.0, 1.0]), "labels", {"prediction": "categorical"}),
        (np.array([3, 4, 5]), "scores", {"prediction": "numeric"}),
    ],
    ids=[
        "int-labels",
        "scores",
        "text-labels",
        "probabilities",
        "named-series",
        "forced-labels",
        "forced-scores",
    ],
)
def test_predictions_are_profiled_like_features(predictions, kind, expected):
    profile = DatasetProfile.for_predictions(predictions, kind=kind)
    assert {name: col.kind for name, col in profile.columns.items()} == expected


def test_prediction_windows_use_the_reference_kinds():
    ref = DatasetProfile.for_predictions(np.array([0, 1, 1, 0]))
    window = DatasetProfile.for_predictions(np.array([1, 1, 2]), ref)
    col = window.columns["prediction"]
    assert (col.categories, col.counts, col.other) == (
        ref.columns["prediction"].categories,
        [0, 2],
        1,
    )
