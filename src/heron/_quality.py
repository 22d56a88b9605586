"""Data-quality checks of a window against its reference, from the two profiles alone.

``quality_report`` runs these checks, each with a verdict pass / warn / fail:

| check               | fails when                                                     | default |
|---------------------|----------------------------------------------------------------|---------|
| ``rows``            | the current window is empty                                    |         |
| ``missing_rate``    | null share rises above the reference's by more than            | 0.05    |
| ``non_finite``      | ±inf share rises above the reference's by more than            | 0.01    |
| ``out_of_range``    | share outside the reference's bin range rises by more than     | 0.01    |
| ``new_categories``  | share of values outside the reference's categories rises by    | 0.01    |
| ``type_mismatch``   | share of values in a numeric column that are not numbers is >  | 0       |
| ``column_removed``  | a reference column is missing (fail)                           |         |
| ``column_added``    | a column the reference does not know appears (warn)            |         |
| ``column_retyped``  | dtype family changes (fail); integer <-> float (warn)          |         |
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from heron._drift import check_comparable
from heron._profiles import CategoricalProfile, DatasetProfile, NumericProfile

Verdict = Literal["pass", "warn", "fail"]

_DTYPE_FAMILIES = {
    "integer": "number",
    "float": "number",
    "string": "text",
    "category": "text",
    "object": "text",
    "boolean": "boolean",
    "datetime": "datetime",
    "timedelta": "timedelta",
}


class QualityConfig(BaseModel):
    """How much worse than the reference a window may be before a check fails."""

    model_config = ConfigDict(extra="forbid")

    missing_rate_increase: float = Field(0.05, ge=0)
    non_finite_increase: float = Field(0.01, ge=0)
    out_of_range_increase: float = Field(0.01, ge=0)
    new_category_increase: float = Field(0.01, ge=0)
    invalid_share: float = Field(0.0, ge=0)


class QualityCheck(BaseModel):
    check: str
    column: str | None = None
    verdict: Verdict
    value: float | None = None
    threshold: float | None = None
    message: str = ""


class QualityReport(BaseModel):
    checks: list[QualityCheck]
    passed: bool
    failed: int
    warned: int


def quality_report(
    reference: DatasetProfile, current: DatasetProfile, config: QualityConfig | None = None
) -> QualityReport:
    """Data-quality checks of a window against its reference, each with a verdict."""
    config = config or QualityConfig()
    checks = [_rows_check(current), *_schema_checks(reference, current)]
    for name, ref_col in reference.columns.items():
        cur_col = current.columns.get(name)
        if cur_col is None or current.rows == 0:
            continue
        check_comparable(name, ref_col, cur_col)
        checks.append(
            _increase_check(
                "missing_rate", name, _rate(ref_col.nulls, ref_col.rows),
                _rate(cur_col.nulls, cur_col.rows), config.missing_rate_increase, "null share",
            )
        )  # fmt: skip
        if isinstance(ref_col, NumericProfile) and isinstance(cur_col, NumericProfile):
            checks.extend(_numeric_checks(name, ref_col, cur_col, config))
        elif isinstance(ref_col, CategoricalProfile) and isinstance(cur_col, CategoricalProfile):
            checks.append(
                _increase_check(
                    "new_categories", name, _rate(ref_col.other, ref_col.count),
                    _rate(cur_col.other, cur_col.count), config.new_category_increase,
                    "share outside the reference's categories", cur_col.other_examples,
                )
            )  # fmt: skip
    failed = sum(c.verdict == "fail" for c in checks)
    warned = sum(c.verdict == "warn" for c in checks)
    return QualityReport(checks=checks, passed=failed == 0, failed=failed, warned=warned)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _rows_check(current: DatasetProfile) -> QualityCheck:
    empty = current.rows == 0
    return QualityCheck(
        check="rows",
        verdict="fail" if empty else "pass",
        value=float(current.rows),
        message="the current window is empty" if empty else f"{current.rows} rows",
    )


def _schema_checks(reference: DatasetProfile, current: DatasetProfile) -> list[QualityCheck]:
    checks = []
    for name in reference.columns:
        if name not in current.dtypes:
            checks.append(
                QualityCheck(
                    check="column_removed", column=name, verdict="fail",
                    message=f"column {name!r} is missing from the current data",
                )
            )  # fmt: skip
    for name, dtype in current.dtypes.items():
        before = reference.dtypes.get(name)
        if before is None:
            checks.append(
                QualityCheck(
                    check="column_added", column=name, verdict="warn",
                    message=f"column {name!r} ({dtype}) is not in the reference",
                )
            )  # fmt: skip
        elif before != dtype and _has_values(current, name):
            same_family = _DTYPE_FAMILIES.get(before) == _DTYPE_FAMILIES.get(dtype)
            checks.append(
                QualityCheck(
                    check="column_retyped", column=name,
                    verdict="warn" if same_family else "fail",
                    message=f"column {name!r} was {before}, is now {dtype}",
                )
            )  # fmt: skip
    return checks


def _has_values(profile: DatasetProfile, name: str) -> bool:
    """An all-null column's dtype says nothing about what the column holds."""
    column = profile.columns.get(name)
    return column is None or column.count > 0 or getattr(column, "invalid", 0) > 0


def _numeric_checks(
    name: str, ref: NumericProfile, cur: NumericProfile, config: QualityConfig
) -> list[QualityCheck]:
    outside_ref = _rate(ref.underflow + ref.overflow, ref.count)
    outside_cur = _rate(cur.underflow + cur.overflow, cur.count)
    invalid = _rate(cur.invalid, cur.rows)
    lo, hi = (ref.edges[0], ref.edges[-1]) if ref.edges else (None, None)
    return [
        _increase_check(
            "non_finite", name, _rate(ref.non_finite, ref.rows), _rate(cur.non_finite, cur.rows),
            config.non_finite_increase, "±inf share",
        ),
        _increase_check(
            "out_of_range", name, outside_ref, outside_cur, config.out_of_range_increase,
            f"share outside the reference range [{lo}, {hi}]",
        ),
        QualityCheck(
            check="type_mismatch", column=name,
            verdict="fail" if invalid > config.invalid_share else "pass",
            value=invalid, threshold=config.invalid_share,
            message=f"{cur.invalid} values are not numbers",
        ),
    ]  # fmt: skip


def _increase_check(
    check: str,
    column: str,
    before: float,
    after: float,
    allowed: float,
    what: str,
    examples: list[str] | None = None,
) -> QualityCheck:
    increase = after - before
    message = f"{what}: {after:.4f} (reference {before:.4f})"
    if examples:
        message += "; e.g. " + ", ".join(repr(e) for e in examples[:5])
    return QualityCheck(
        check=check,
        column=column,
        verdict="fail" if increase > allowed else "pass",
        value=increase,
        threshold=allowed,
        message=message,
    )
