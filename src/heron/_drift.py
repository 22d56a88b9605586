"""Drift tests computed from two profiles in O(bins).

Every drift test turns two column profiles (a reference and a current window, both built
against the reference's bin edges and categories) into a statistic where larger means more
drift. A column is drifted when BOTH hold:

- the effect is large enough to matter: ``statistic >= threshold``, and
- it is not noise: ``p_value < alpha`` (default 0.05), from a two-sample test on the same
  bins -- Kolmogorov-Smirnov on the binned CDFs for numeric columns (asymptotic Kolmogorov
  distribution with Stephens' correction, effective size n*m/(n+m)), chi-square on the
  2 x k contingency table (both sides are samples) for categorical ones.

The p-value alone never decides: at a million rows a 0.02-sd shift has p < 1e-30, yet its
effect sizes (Wasserstein 0.02 sd, KS D 0.008, PSI 0.0004) are far below the thresholds, so
it is not flagged. The effect threshold alone would cry wolf on tiny windows, which the
p-value stops. Binning makes both statistics slightly conservative.

| test              | kinds       | statistic                                        | threshold |
|-------------------|-------------|--------------------------------------------------|-----------|
| ``wasserstein``   | numeric     | earth mover's distance / reference std (default) | 0.1       |
| ``ks``            | numeric     | Kolmogorov-Smirnov D on the binned CDFs          | 0.1       |
| ``psi``           | both        | population stability index, shares floored 1e-4  | 0.2       |
| ``jensenshannon`` | both        | Jensen-Shannon distance, base 2 (0..1)           | 0.1       |
| ``chisquare``     | categorical | Cramer's V, balanced two-sample table (default)  | 0.1       |

Wasserstein is W1 between the two histograms with each bin's mass at that side's mean value in
the bin (profiles keep per-bin sums), divided by the reference's standard deviation; a
reference with zero variance leaves it unnormalized. Cramer's V is computed as if both
samples were the same size (``0.5 * sqrt(sum((p - q)**2 / ((p + q) / 2)))``), so it does not
shrink when the reference is much larger than the window; details carry the raw chi-square
and its degrees of freedom.
For orientation, a normal mean shift of 0.5 sd gives Wasserstein 0.5, KS 0.2, Jensen-Shannon
0.2, PSI about 0.25; a binary share moving from 50% to 60% gives Cramer's V 0.1.

The dataset drifts when the share of drifted columns among those tested is at least
``DriftConfig.drift_share`` (0.5). Tests and thresholds are set per column through
``DriftConfig.columns``; tests are looked up by name in a ``DriftTestRegistry``, and the
built-in ones are registered with ``register_drift_test`` exactly as a third-party test is.

Data-quality checks are in ``heron._quality``; multivariate (domain-classifier) drift, on
bounded samples of rows, is in ``heron._multivariate``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from heron._errors import InvalidInput
from heron._lazy import LazyModule
from heron._profiles import CategoricalProfile, DatasetProfile, NumericProfile

special: Any = LazyModule("scipy.special")  # imported on first use (see heron._lazy)


ColumnProfile = NumericProfile | CategoricalProfile
Kind = Literal["numeric", "categorical"]
Details = dict[str, float | int | str | bool | None]

DEFAULT_NUMERIC_TEST = "wasserstein"
DEFAULT_CATEGORICAL_TEST = "chisquare"
DEFAULT_ALPHA = 0.05
DEFAULT_DRIFT_SHARE = 0.5
PSI_FLOOR = 1e-4


# --- registry -------------------------------------------------------------------------------


class DriftOutcome(NamedTuple):
    """What a drift test computes; the caller applies threshold and alpha."""

    statistic: float
    p_value: float | None = None
    details: Details = {}


DriftFunction = Callable[[ColumnProfile, ColumnProfile], DriftOutcome]


@dataclass(frozen=True)
class DriftTest:
    """A named drift test: which column kinds it accepts and its default threshold."""

    name: str
    kinds: frozenset[str]
    threshold: float
    compute: DriftFunction
    description: str = ""


class DriftTestRegistry:
    """Drift tests by name. ``DEFAULT_DRIFT_TESTS`` holds the built-in ones."""

    def __init__(self, tests: Iterable[DriftTest] = ()) -> None:
        self._tests = {test.name: test for test in tests}

    def register(self, test: DriftTest) -> DriftTest:
        if test.name in self._tests:
            raise InvalidInput(f"drift test {test.name!r} is already registered", field="test")
        self._tests[test.name] = test
        return test

    def get(self, name: str) -> DriftTest:
        try:
            return self._tests[name]
        except KeyError:
            known = ", ".join(sorted(self._tests))
            raise InvalidInput(
                f"unknown drift test {name!r} (known: {known})", field="test"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._tests)

    def copy(self) -> DriftTestRegistry:
        return DriftTestRegistry(self._tests.values())


DEFAULT_DRIFT_TESTS = DriftTestRegistry()


def register_drift_test(
    name: str,
    *,
    kinds: Iterable[Kind],
    threshold: float,
    registry: DriftTestRegistry | None = None,
) -> Callable[[DriftFunction], DriftFunction]:
    """Register ``fn(reference, current) -> DriftOutcome`` as drift test ``name``."""

    def decorator(fn: DriftFunction) -> DriftFunction:
        target = DEFAULT_DRIFT_TESTS if registry is None else registry
        doc = (fn.__doc__ or "").strip().splitlines()
        target.register(DriftTest(name, frozenset(kinds), threshold, fn, doc[0] if doc else ""))
        return fn

    return decorator


# --- configuration and results --------------------------------------------------------------


class ColumnDriftConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test: str | None = None
    threshold: float | None = None
    skip: bool = False


_NO_OVERRIDES = ColumnDriftConfig()


class DriftConfig(BaseModel):
    """Which test runs on which column, and when a column and the dataset count as drifted."""

    model_config = ConfigDict(extra="forbid")

    numeric_test: str = DEFAULT_NUMERIC_TEST
    categorical_test: str = DEFAULT_CATEGORICAL_TEST
    thresholds: dict[str, float] = Field(default_factory=dict, description="by test name")
    alpha: float = Field(DEFAULT_ALPHA, gt=0, le=1)
    drift_share: float = Field(DEFAULT_DRIFT_SHARE, gt=0, le=1)
    columns: dict[str, ColumnDriftConfig] = Field(default_factory=dict)


class ColumnDrift(BaseModel):
    column: str
    kind: Kind
    test: str
    statistic: float
    threshold: float
    p_value: float | None = None
    drifted: bool
    details: Details = Field(default_factory=dict)


class DriftReport(BaseModel):
    columns: list[ColumnDrift]
    skipped: dict[str, str] = Field(default_factory=dict, description="column -> reason")
    tested_columns: int
    drifted_columns: int
    drift_share: float
    share_threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int

    def drifted_names(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]


# --- running tests --------------------------------------------------------------------------


def column_drift(
    column: str,
    reference: ColumnProfile,
    current: ColumnProfile,
    test: str | None = None,
    threshold: float | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    registry: DriftTestRegistry | None = None,
) -> ColumnDrift:
    """Run one drift test on one column; ``test`` defaults by kind (wasserstein/chisquare)."""
    kind: Kind = "numeric" if isinstance(reference, NumericProfile) else "categorical"
    check_comparable(column, reference, current)
    tests = DEFAULT_DRIFT_TESTS if registry is None else registry
    default = DEFAULT_NUMERIC_TEST if kind == "numeric" else DEFAULT_CATEGORICAL_TEST
    chosen = tests.get(test or default)
    if kind not in chosen.kinds:
        raise InvalidInput(
            f"drift test {chosen.name!r} does not apply to {kind} columns", field=column
        )
    outcome = chosen.compute(reference, current)
    limit = chosen.threshold if threshold is None else threshold
    significant = outcome.p_value is None or outcome.p_value < alpha
    return ColumnDrift(
        column=column,
        kind=kind,
        test=chosen.name,
        statistic=outcome.statistic,
        threshold=limit,
        p_value=outcome.p_value,
        drifted=bool(outcome.statistic >= limit and significant),
        details=outcome.details,
    )


def drift_report(
    reference: DatasetProfile,
    current: DatasetProfile,
    config: DriftConfig | None = None,
    *,
    registry: DriftTestRegistry | None = None,
) -> DriftReport:
    """Per-column drift verdicts and the dataset-level drift share."""
    config = config or DriftConfig()
    results: list[ColumnDrift] = []
    skipped: dict[str, str] = {}
    for name, ref_col in reference.columns.items():
        settings = config.columns.get(name, _NO_OVERRIDES)
        reason = _skip_reason(name, ref_col, current, settings)
        if reason:
            skipped[name] = reason
            continue
        is_numeric = isinstance(ref_col, NumericProfile)
        test = settings.test or (config.numeric_test if is_numeric else config.categorical_test)
        threshold = settings.threshold
        if threshold is None:
            threshold = config.thresholds.get(test)
        results.append(
            column_drift(
                name,
                ref_col,
                current.columns[name],
                test,
                threshold,
                alpha=config.alpha,
                registry=registry,
            )
        )
    for name in current.dtypes:
        if name not in reference.columns:
            skipped[name] = "not in the reference"
    drifted = sum(r.drifted for r in results)
    share = drifted / len(results) if results else 0.0
    return DriftReport(
        columns=results,
        skipped=skipped,
        tested_columns=len(results),
        drifted_columns=drifted,
        drift_share=share,
        share_threshold=config.drift_share,
        drifted=bool(results) and share >= config.drift_share,
        reference_rows=reference.rows,
        current_rows=current.rows,
    )


def _skip_reason(
    name: str, ref_col: ColumnProfile, current: DatasetProfile, settings: ColumnDriftConfig
) -> str | None:
    if settings.skip:
        return "skipped by configuration"
    if ref_col.count == 0:
        return "no values in the reference"
    if name not in current.columns:
        return "missing from the current data"
    if current.columns[name].count == 0:
        return "no values in the current data"
    return None


def check_comparable(column: str, reference: ColumnProfile, current: ColumnProfile) -> None:
    if type(reference) is not type(current):
        raise InvalidInput(
            f"column {column!r} is {reference.kind} in the reference but {current.kind} "
            "in the current profile; build the current profile against the reference",
            field=column,
        )
    same = (
        reference.edges == current.edges
        if isinstance(reference, NumericProfile)
        else reference.categories == current.categories  # type: ignore[union-attr]
    )
    if not same:
        raise InvalidInput(
            f"column {column!r}: the current profile was not built against this reference "
            "(bin edges or categories differ)",
            field=column,
        )


# --- statistics -----------------------------------------------------------------------------
# Histograms have a few dozen slots: plain Python over lists is several times faster here than
# numpy's per-call overhead, and keeps a whole report well under a millisecond.


def _counts(column: ColumnProfile) -> list[int]:
    if isinstance(column, NumericProfile):
        return [column.underflow, *column.counts, column.overflow]
    return [*column.counts, column.other]


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total for c in counts] if total else [0.0] * len(counts)


def _ks(ref: list[int], cur: list[int]) -> tuple[float, float]:
    """Two-sample KS on binned counts: D and its asymptotic p-value."""
    n, m = sum(ref), sum(cur)
    cdf_gaps = map(
        lambda below_ref, below_cur: abs(below_ref * m - below_cur * n),  # exact integers
        itertools.accumulate(ref),
        itertools.accumulate(cur),
    )
    statistic = max(cdf_gaps) / (n * m)
    root = math.sqrt(n * m / (n + m))
    return statistic, float(special.kolmogorov((root + 0.12 + 0.11 / root) * statistic))


def _chi_square(ref: list[int], cur: list[int]) -> tuple[float, int, float]:
    """Chi-square of the 2 x k table (both rows are samples): statistic, dof, p-value."""
    n, m = sum(ref), sum(cur)
    total = n + m
    chi2, dof = 0.0, -1
    for r, c in zip(ref, cur, strict=True):
        column = r + c
        if column:
            dof += 1
            expect_ref, expect_cur = n * column / total, m * column / total
            chi2 += (r - expect_ref) ** 2 / expect_ref + (c - expect_cur) ** 2 / expect_cur
    if dof < 1:
        return 0.0, 0, 1.0
    return chi2, dof, float(special.chdtrc(dof, chi2))


def _gate(reference: ColumnProfile, ref: list[int], cur: list[int]) -> tuple[float, Details]:
    """The significance p-value every built-in test reports, with the raw test's figures."""
    if isinstance(reference, NumericProfile):
        d, p = _ks(ref, cur)
        return p, {"ks_d": d}
    chi2, dof, p = _chi_square(ref, cur)
    return p, {"chi2": chi2, "dof": dof}


def _sizes(ref: list[int], cur: list[int]) -> Details:
    return {"reference_count": sum(ref), "current_count": sum(cur)}


@register_drift_test("ks", kinds=["numeric"], threshold=0.1)
def ks_test(reference: ColumnProfile, current: ColumnProfile) -> DriftOutcome:
    """Kolmogorov-Smirnov D between the binned CDFs."""
    ref, cur = _counts(reference), _counts(current)
    d, p = _ks(ref, cur)
    return DriftOutcome(d, p, _sizes(ref, cur))


@register_drift_test("psi", kinds=["numeric", "categorical"], threshold=0.2)
def psi_test(reference: ColumnProfile, current: ColumnProfile) -> DriftOutcome:
    """Population stability index; shares floored at 1e-4 so empty bins stay finite."""
    ref, cur = _counts(reference), _counts(current)
    psi = 0.0
    for p, q in zip(_shares(ref), _shares(cur), strict=True):
        p, q = max(p, PSI_FLOOR), max(q, PSI_FLOOR)
        psi += (q - p) * math.log(q / p)
    p_value, details = _gate(reference, ref, cur)
    return DriftOutcome(psi, p_value, {**_sizes(ref, cur), **details})


@register_drift_test("jensenshannon", kinds=["numeric", "categorical"], threshold=0.1)
def jensen_shannon_test(reference: ColumnProfile, current: ColumnProfile) -> DriftOutcome:
    """Jensen-Shannon distance (base 2, 0..1) between the binned distributions."""
    ref, cur = _counts(reference), _counts(current)
    divergence = 0.0
    for p, q in zip(_shares(ref), _shares(cur), strict=True):
        mid = (p + q) / 2
        if p:
            divergence += p * math.log2(p / mid) / 2
        if q:
            divergence += q * math.log2(q / mid) / 2
    p_value, details = _gate(reference, ref, cur)
    distance = math.sqrt(max(divergence, 0.0))
    return DriftOutcome(distance, p_value, {**_sizes(ref, cur), **details})


@register_drift_test("wasserstein", kinds=["numeric"], threshold=0.1)
def wasserstein_test(reference: ColumnProfile, current: ColumnProfile) -> DriftOutcome:
    """Earth mover's distance between the binned distributions, in reference std."""
    assert isinstance(reference, NumericProfile) and isinstance(current, NumericProfile)
    ref, cur = _counts(reference), _counts(current)
    distance = _binned_wasserstein(ref, reference.sums, cur, current.sums)
    scale = reference.std or 0.0
    normalized = scale > 0 and math.isfinite(scale)
    p_value, details = _gate(reference, ref, cur)
    details = {**_sizes(ref, cur), **details, "distance": distance, "normalized": normalized}
    if normalized:
        details["mean_shift_sd"] = (current.mean - reference.mean) / scale
    return DriftOutcome(distance / scale if normalized else distance, p_value, details)


def _binned_wasserstein(
    ref: list[int], ref_sums: list[float], cur: list[int], cur_sums: list[float]
) -> float:
    """W1 between the two sides with each bin's mass placed at that side's bin mean.

    Bin means carry the shape inside a bin, which matters most in the wide outer bins; for a
    normal shifted by 0.5 sd this gives 0.503 where linear-in-bin CDFs give 0.61.
    """
    inv_n, inv_m = 1 / sum(ref), 1 / sum(cur)
    masses = [(s / c, c * inv_n) for c, s in zip(ref, ref_sums, strict=True) if c]
    masses.extend((s / c, -c * inv_m) for c, s in zip(cur, cur_sums, strict=True) if c)
    masses.sort()
    distance = gap = 0.0
    previous = masses[0][0]
    for point, weight in masses:
        distance += abs(gap) * (point - previous)
        gap += weight
        previous = point
    return distance


@register_drift_test("chisquare", kinds=["categorical"], threshold=0.1)
def chi_square_test(reference: ColumnProfile, current: ColumnProfile) -> DriftOutcome:
    """Two-sample chi-square on category counts; statistic is the balanced Cramer's V."""
    ref, cur = _counts(reference), _counts(current)
    spread = 0.0
    for p, q in zip(_shares(ref), _shares(cur), strict=True):
        if p or q:
            spread += (p - q) ** 2 / ((p + q) / 2)
    chi2, dof, p_value = _chi_square(ref, cur)
    details: Details = {**_sizes(ref, cur), "chi2": chi2, "dof": dof}
    return DriftOutcome(0.5 * math.sqrt(spread), p_value, details)
