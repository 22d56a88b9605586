import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron._drift import (
    DEFAULT_DRIFT_TESTS,
    ColumnDriftConfig,
    DriftConfig,
    DriftOutcome,
    column_drift,
    drift_report,
    register_drift_test,
)
from heron._errors import InvalidInput
from heron._multivariate import domain_classifier_drift
from heron._profiles import DatasetProfile
from heron._quality import quality_report

NUMERIC_TESTS = ["wasserstein", "ks", "psi", "jensenshannon"]
CATEGORICAL_TESTS = ["chisquare", "psi", "jensenshannon"]


def profiles(reference: pd.DataFrame, current: pd.DataFrame, bins: int = 20):
    ref = DatasetProfile.from_frame(reference, bins=bins)
    return ref, DatasetProfile.from_frame(current, ref)


# --- not crying wolf, and catching what matters ----------------------------------------------


@pytest.fixture(scope="module")
def million_rows():
    rng = np.random.default_rng(2024)
    n = 1_000_000
    base = rng.normal(size=n)
    ref = DatasetProfile.from_frame(pd.DataFrame({"x": base}))
    noise = rng.normal(size=n)
    windows = {
        shift: DatasetProfile.from_frame(pd.DataFrame({"x": noise + shift}), ref)
        for shift in (0.0, 0.02, 0.5)
    }
    return ref, windows


@pytest.mark.parametrize("test", NUMERIC_TESTS)
def test_a_tiny_shift_at_a_million_rows_is_not_flagged(million_rows, test):
    ref, windows = million_rows
    for shift in (0.0, 0.02):
        result = column_drift("x", ref.columns["x"], windows[shift].columns["x"], test)
        assert not result.drifted, (shift, result)
    # the p-value alone would have fired: that is the trap this avoids
    tiny = column_drift("x", ref.columns["x"], windows[0.02].columns["x"], test)
    assert tiny.p_value < 1e-20


@pytest.mark.parametrize("test", NUMERIC_TESTS)
def test_a_half_sd_shift_at_a_million_rows_is_flagged(million_rows, test):
    ref, windows = million_rows
    assert column_drift("x", ref.columns["x"], windows[0.5].columns["x"], test).drifted


def test_wasserstein_is_in_reference_standard_deviations(million_rows):
    ref, windows = million_rows
    result = column_drift("x", ref.columns["x"], windows[0.5].columns["x"], "wasserstein")
    assert result.statistic == pytest.approx(0.5, abs=0.01)
    assert result.details["mean_shift_sd"] == pytest.approx(0.5, abs=0.01)


def shifted_numeric(rng, n, kind):
    """(reference, current) samples of one column: no change or a change worth flagging."""
    base = {
        "normal": lambda: rng.normal(10, 2, n),
        "lognormal": lambda: rng.lognormal(0, 0.6, n),
        "counts": lambda: rng.poisson(4, n).astype(float),
    }[kind]
    return base(), base()


@pytest.mark.parametrize("test", NUMERIC_TESTS)
@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("normal", lambda x: x + 1.0),
        ("normal", lambda x: x * 1.0 + 1.5),
        ("lognormal", lambda x: x * 1.6),
        ("counts", lambda x: x + 2),
    ],
    ids=["normal-half-sd", "normal-0.75-sd", "lognormal-scaled", "counts-plus-two"],
)
def test_known_numeric_shifts_are_detected(test, kind, change):
    rng = np.random.default_rng(11)
    before, after = shifted_numeric(rng, 5_000, kind)
    ref, cur = profiles(pd.DataFrame({"x": before}), pd.DataFrame({"x": change(after)}))
    assert column_drift("x", ref.columns["x"], cur.columns["x"], test).drifted


@pytest.mark.parametrize("test", NUMERIC_TESTS)
@pytest.mark.parametrize("kind", ["normal", "lognormal", "counts"])
@pytest.mark.parametrize("n", [30, 1_000, 100_000])
def test_unchanged_numeric_columns_are_not_flagged(test, kind, n):
    rng = np.random.default_rng(n)
    before, after = shifted_numeric(rng, n, kind)
    ref, cur = profiles(pd.DataFrame({"x": before}), pd.DataFrame({"x": after}))
    assert not column_drift("x", ref.columns["x"], cur.columns["x"], test).drifted


def categorical(rng, n, shares):
    return rng.choice(list("abcd"), size=n, p=shares)


@pytest.mark.parametrize("test", CATEGORICAL_TESTS)
def test_known_category_shift_is_detected_and_noise_is_not(test):
    rng = np.random.default_rng(5)
    before = categorical(rng, 20_000, [0.4, 0.3, 0.2, 0.1])
    same = categorical(rng, 20_000, [0.4, 0.3, 0.2, 0.1])
    moved = categorical(rng, 20_000, [0.2, 0.3, 0.2, 0.3])
    ref, cur_same = profiles(pd.DataFrame({"c": before}), pd.DataFrame({"c": same}))
    cur_moved = DatasetProfile.from_frame(pd.DataFrame({"c": moved}), ref)
    assert not column_drift("c", ref.columns["c"], cur_same.columns["c"], test).drifted
    assert column_drift("c", ref.columns["c"], cur_moved.columns["c"], test).drifted


def test_chi_square_effect_size_does_not_shrink_with_a_larger_reference():
    rng = np.random.default_rng(9)
    window = categorical(rng, 2_000, [0.25, 0.25, 0.25, 0.25])
    results = []
    for n in (2_000, 200_000):
        ref, cur = profiles(
            pd.DataFrame({"c": categorical(rng, n, [0.4, 0.3, 0.2, 0.1])}),
            pd.DataFrame({"c": window}),
        )
        results.append(column_drift("c", ref.columns["c"], cur.columns["c"], "chisquare"))
    assert results[0].statistic == pytest.approx(results[1].statistic, rel=0.1)
    assert all(r.drifted for r in results)


def test_tiny_category_changes_at_a_million_rows_are_not_flagged():
    rng = np.random.default_rng(3)
    ref, cur = profiles(
        pd.DataFrame({"c": categorical(rng, 1_000_000, [0.40, 0.30, 0.20, 0.10])}),
        pd.DataFrame({"c": categorical(rng, 1_000_000, [0.39, 0.30, 0.20, 0.11])}),
    )
    for test in CATEGORICAL_TESTS:
        result = column_drift("c", ref.columns["c"], cur.columns["c"], test)
        assert result.p_value < 1e-20 and not result.drifted, result


# --- drift from merged windows ---------------------------------------------------------------


@st.composite
def window_frames(draw):
    n = draw(st.integers(min_value=0, max_value=60))
    shift = draw(st.sampled_from([0.0, 0.3, 3.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    x[rng.random(n) < 0.1] = np.nan
    c = rng.choice(["a", "b", "c", "new"], size=n, p=[0.5, 0.2, 0.2, 0.1]).astype(object)
    return pd.DataFrame({"x": x, "c": c})


@settings(max_examples=60, deadline=None)
@given(
    data=window_frames(),
    cut=st.floats(0, 1),
    numeric_test=st.sampled_from(NUMERIC_TESTS),
    categorical_test=st.sampled_from(CATEGORICAL_TESTS),
)
def test_drift_on_merged_windows_equals_drift_on_the_concatenation(
    data, cut, numeric_test, categorical_test
):
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(["a", "b", "c"], 300)})
    ref = DatasetProfile.from_frame(reference, bins=10)
    k = int(cut * len(data))
    merged = DatasetProfile.from_frame(data.iloc[:k], ref).merge(
        DatasetProfile.from_frame(data.iloc[k:], ref)
    )
    whole = DatasetProfile.from_frame(data, ref)
    config = DriftConfig(numeric_test=numeric_test, categorical_test=categorical_test)
    got, want = drift_report(ref, merged, config), drift_report(ref, whole, config)
    assert got.skipped == want.skipped
    assert [(c.column, c.drifted, c.p_value) for c in got.columns] == [
        (c.column, c.drifted, c.p_value) for c in want.columns
    ]
    for a, b in zip(got.columns, want.columns, strict=True):
        assert a.statistic == pytest.approx(b.statistic, rel=1e-9, abs=1e-12)
    assert quality_report(ref, merged) == quality_report(ref, whole)


# --- report, configuration, registry ---------------------------------------------------------


@pytest.fixture(scope="module")
def shifted_dataset():
    rng = np.random.default_rng(1)
    n = 20_000
    reference = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.choice(list("xyz"), n),
            "d": rng.uniform(size=n),
        }
    )
    current = reference.sample(frac=1, random_state=2).reset_index(drop=True)
    current = current.assign(
        a=rng.normal(size=n) + 1.0, c=rng.choice(list("xyz"), n, p=[0.7, 0.2, 0.1])
    )
    return profiles(reference, current)


def test_report_names_each_column_with_its_test_statistic_threshold_and_verdict(shifted_dataset):
    report = drift_report(*shifted_dataset)
    assert report.drifted_names() == ["a", "c"]
    assert (report.tested_columns, report.drifted_columns, report.drift_share) == (4, 2, 0.5)
    assert report.drifted  # 0.5 >= the default share of 0.5
    payload = json.loads(report.model_dump_json())
    first = payload["columns"][0]
    assert {"column", "test", "statistic", "threshold", "p_value", "drifted"} <= first.keys()
    assert {c["column"]: c["test"] for c in payload["columns"]} == {
        "a": "wasserstein",
        "b": "wasserstein",
        "c": "chisquare",
        "d": "wasserstein",
    }


def test_per_column_tests_and_thresholds(shifted_dataset):
    config = DriftConfig(
        drift_share=0.75,
        thresholds={"chisquare": 0.99},
        columns={
            "a": ColumnDriftConfig(test="psi"),
            "b": ColumnDriftConfig(test="ks", threshold=0.0),
            "d": ColumnDriftConfig(skip=True),
        },
    )
    report = drift_report(*shifted_dataset, config)
    by_name = {c.column: c for c in report.columns}
    assert (by_name["a"].test, by_name["a"].threshold, by_name["a"].drifted) == ("psi", 0.2, True)
    assert by_name["b"].test == "ks" and by_name["b"].threshold == 0.0
    assert (by_name["c"].threshold, by_name["c"].drifted) == (0.99, False)
    assert report.skipped == {"d": "skipped by configuration"}
    assert not report.drifted


def test_third_party_drift_tests_register_the_same_way():
    registry = DEFAULT_DRIFT_TESTS.copy()

    @register_drift_test("mean_shift", kinds=["numeric"], threshold=0.25, registry=registry)
    def mean_shift(reference, current):
        """Absolute mean difference in reference standard deviations."""
        return DriftOutcome(abs(current.mean - reference.mean) / reference.std, None, {})

    ref, cur = profiles(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), pd.DataFrame({"x": [2.0, 3.0, 4.0]}))
    report = drift_report(ref, cur, DriftConfig(numeric_test="mean_shift"), registry=registry)
    assert (report.columns[0].test, report.columns[0].statistic) == ("mean_shift", 1.0)
    assert report.columns[0].drifted
    assert "mean_shift" not in DEFAULT_DRIFT_TESTS.names()
    assert registry.get("mean_shift").description.startswith("Absolute mean")


@pytest.mark.parametrize(
    "call",
    [
        lambda ref, cur: drift_report(ref, cur, DriftConfig(numeric_test="nope")),
        lambda ref, cur: drift_report(ref, cur, DriftConfig(numeric_test="chisquare")),
        lambda ref, cur: drift_report(ref, DatasetProfile.from_frame(pd.DataFrame({"x": [9.0]}))),
        lambda ref, cur: drift_report(ref, DatasetProfile.from_frame(pd.DataFrame({"x": ["q"]}))),
        lambda ref, cur: DEFAULT_DRIFT_TESTS.copy().register(DEFAULT_DRIFT_TESTS.get("ks")),
    ],
    ids=[
        "unknown-test",
        "test-of-the-wrong-kind",
        "profile-not-built-on-the-reference",
        "kind-differs-from-reference",
        "duplicate-registration",
    ],
)
def test_misuse_raises_invalid_input(call):
    ref, cur = profiles(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), pd.DataFrame({"x": [2.0]}))
    with pytest.raises(InvalidInput):
        call(ref, cur)


REFERENCE = DatasetProfile.from_frame(
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 50, "c": ["a", "b"] * 100, "n": [np.nan] * 200})
)


@pytest.mark.parametrize(
    ("current", "skipped"),
    [
        (
            pd.DataFrame({"x": [], "c": []}),
            {"x": "no values in the current data", "c": "no values in the current data"},
        ),
        (pd.DataFrame({"c": ["a"]}), {"x": "missing from the current data"}),
        (pd.DataFrame({"x": [np.nan], "c": ["a"]}), {"x": "no values in the current data"}),
        (pd.DataFrame({"x": [1.0], "c": ["a"], "extra": [1]}), {"extra": "not in the reference"}),
    ],
    ids=["empty-window", "missing-column", "all-null-window", "new-column"],
)
def test_columns_that_cannot_be_tested_are_skipped_with_a_reason(current, skipped):
    report = drift_report(REFERENCE, DatasetProfile.from_frame(current, REFERENCE))
    assert report.skipped["n"] == "no values in the reference"
    assert {k: v for k, v in report.skipped.items() if k != "n"} == skipped
    assert not report.drifted or report.tested_columns > 0


def test_an_empty_window_is_a_defined_verdict_not_a_crash():
    report = drift_report(REFERENCE, DatasetProfile.from_frame(pd.DataFrame(), REFERENCE))
    assert (report.tested_columns, report.drift_share, report.drifted) == (0, 0.0, False)


def test_single_value_reference_is_compared_unnormalized():
    ref, cur = profiles(pd.DataFrame({"x": [5.0] * 100}), pd.DataFrame({"x": [6.0] * 100}))
    result = column_drift("x", ref.columns["x"], cur.columns["x"])
    assert (result.statistic, result.details["normalized"], result.drifted) == (1.0, False, True)
    same = DatasetProfile.from_frame(pd.DataFrame({"x": [5.0] * 100}), ref)
    assert not column_drift("x", ref.columns["x"], same.columns["x"]).drifted


def test_prediction_drift_uses_the_same_tests():
    rng = np.random.default_rng(4)
    ref = DatasetProfile.for_predictions(rng.choice([0, 1], 5_000, p=[0.8, 0.2]))
    same = DatasetProfile.for_predictions(rng.choice([0, 1], 5_000, p=[0.8, 0.2]), ref)
    moved = DatasetProfile.for_predictions(rng.choice([0, 1], 5_000, p=[0.5, 0.5]), ref)
    assert not drift_report(ref, same).drifted
    assert drift_report(ref, moved).drifted_names() == ["prediction"]


def test_comparing_two_stored_profiles_is_cheap(shifted_dataset):
    ref, cur = (DatasetProfile.model_validate_json(p.model_dump_json()) for p in shifted_dataset)
    import time

    start = time.perf_counter()
    for _ in range(20):
        drift_report(ref, cur)
    assert (time.perf_counter() - start) / 20 < 0.05  # the bench measures the real figure


# --- data quality ----------------------------------------------------------------------------


def verdicts(report):
    return {(c.check, c.column): c.verdict for c in report.checks if c.verdict != "pass"}


QUALITY_REF = DatasetProfile.from_frame(
    pd.DataFrame({"x": np.linspace(0, 10, 200), "c": ["a", "b"] * 100, "i": range(200)})
)


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (
            pd.DataFrame({"x": np.linspace(0, 10, 50), "c": ["a"] * 50, "i": range(50)}),
            {},
        ),
        (
            pd.DataFrame({"x": [1.0] * 40 + [np.nan] * 10, "c": ["a"] * 50, "i": range(50)}),
            {("missing_rate", "x"): "fail"},
        ),
        (
            pd.DataFrame({"x": [1.0] * 45 + [np.inf] * 5, "c": ["a"] * 50, "i": range(50)}),
            {("non_finite", "x"): "fail"},
        ),
        (
            pd.DataFrame({"x": [1.0] * 45 + [99.0] * 5, "c": ["a"] * 50, "i": range(50)}),
            {("out_of_range", "x"): "fail"},
        ),
        (
            pd.DataFrame({"x": [1.0] * 50, "c": ["a"] * 45 + ["zzz"] * 5, "i": range(50)}),
            {("new_categories", "c"): "fail"},
        ),
        (
            pd.DataFrame({"x": ["1"] * 49 + ["oops"], "c": ["a"] * 50, "i": range(50)}),
            {("type_mismatch", "x"): "fail", ("column_retyped", "x"): "fail"},
        ),
        (
            pd.DataFrame({"x": [1.0] * 50, "i": range(50)}),
            {("column_removed", "c"): "fail"},
        ),
        (
            pd.DataFrame({"x": [1.0] * 50, "c": ["a"] * 50, "i": range(50), "new": 1}),
            {("column_added", "new"): "warn"},
        ),
        (
            pd.DataFrame({"x": [1.0] * 50, "c": ["a"] * 50, "i": [1.5] * 50}),
            {("column_retyped", "i"): "warn"},
        ),
        (
            pd.DataFrame({"x": [], "c": [], "i": []}),
            {("rows", None): "fail"},
        ),
    ],
    ids=[
        "clean",
        "missing-values",
        "infinities",
        "out-of-range",
        "new-category",
        "numbers-as-strings",
        "column-removed",
        "column-added",
        "integer-became-float",
        "empty-window",
    ],
)
def test_quality_checks_give_verdicts(current, expected):
    report = quality_report(QUALITY_REF, DatasetProfile.from_frame(current, QUALITY_REF))
    assert verdicts(report) == expected
    assert report.passed == ("fail" not in expected.values())


def test_new_category_check_names_examples():
    current = DatasetProfile.from_frame(pd.DataFrame({"c": ["a", "zzz", "yyy"]}), QUALITY_REF)
    check = next(
        c for c in quality_report(QUALITY_REF, current).checks if c.check == "new_categories"
    )
    assert "'yyy', 'zzz'" in check.message


# --- multivariate ----------------------------------------------------------------------------


def mixed_frame(rng, n, shift=0.0):
    a = rng.normal(size=n)
    b = 0.8 * a + 0.6 * rng.normal(size=n) + shift  # the marginals of a and b are unchanged...
    return pd.DataFrame({"a": a, "b": b, "c": rng.choice(list("xyz"), n)})


def test_domain_classifier_finds_no_drift_between_samples_of_one_distribution():
    rng = np.random.default_rng(8)
    result = domain_classifier_drift(mixed_frame(rng, 3_000), mixed_frame(rng, 3_000))
    assert not result.drifted and result.auc < 0.55


def test_domain_classifier_finds_a_change_in_the_joint_distribution():
    rng = np.random.default_rng(8)
    reference = mixed_frame(rng, 3_000)
    a = rng.normal(size=3_000)
    current = pd.DataFrame(
        {"a": a, "b": -0.8 * a + 0.6 * rng.normal(size=3_000), "c": rng.choice(list("xyz"), 3_000)}
    )  # ...but their correlation flipped
    result = domain_classifier_drift(reference, current, max_rows=2_000)
    assert result.drifted and result.auc > 0.7
    assert (result.reference_rows, result.current_rows) == (2_000, 2_000)


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        (pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame({"a": [1.0, 2.0]})),
        (pd.DataFrame({"a": range(50)}), pd.DataFrame({"b": range(50)})),
    ],
    ids=["too-few-rows", "no-common-columns"],
)
def test_domain_classifier_without_enough_data_is_a_defined_non_verdict(reference, current):
    result = domain_classifier_drift(reference, current)
    assert (result.auc, result.drifted) == (None, False)
    assert result.message
