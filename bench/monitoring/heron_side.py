"""Heron's side of the benchmark; run with the project's venv: heron_side.py REF CUR OUT."""

from __future__ import annotations

import json
import statistics
import sys
import time

import pandas as pd
from _measure import frames_mb, phase, rss_mb

from heron._drift import drift_report
from heron._multivariate import domain_classifier_drift
from heron._profiles import DatasetProfile
from heron._quality import quality_report


def main(ref_path: str, cur_path: str, out_path: str) -> None:
    reference, current = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    out: dict = {
        "tool": "heron",
        "frames_mb": frames_mb(reference, current),
        "rss_loaded_mb": rss_mb(),
    }
    steps: dict = {}
    with phase(out, "drift"):
        start = time.perf_counter()
        ref_profile = DatasetProfile.from_frame(reference)
        steps["reference_profile_s"] = time.perf_counter() - start
        start = time.perf_counter()
        cur_profile = DatasetProfile.from_frame(current, ref_profile)
        steps["current_profile_s"] = time.perf_counter() - start
        report = drift_report(ref_profile, cur_profile)
    out["steps"] = steps
    values = reference.shape[0] * reference.shape[1]
    out["values_per_s_reference"] = values / steps["reference_profile_s"]
    out["values_per_s_window"] = current.size / steps["current_profile_s"]
    out["flagged"] = report.drifted_names()
    out["columns"] = {c.column: [c.test, c.statistic, c.drifted] for c in report.columns}

    stored = ref_profile.model_dump_json(), cur_profile.model_dump_json()
    out["profile_json_bytes"] = [len(s) for s in stored]
    parsed = [DatasetProfile.model_validate_json(s) for s in stored]
    out["compare_stored_ms"] = _median_ms(lambda: drift_report(*parsed))
    out["load_and_compare_ms"] = _median_ms(
        lambda: drift_report(*(DatasetProfile.model_validate_json(s) for s in stored))
    )
    out["quality_ms"] = _median_ms(lambda: quality_report(*parsed))
    with phase(out, "multivariate"):
        result = domain_classifier_drift(reference, current)
    out["multivariate_auc"] = result.auc
    with open(out_path, "w") as fh:
        json.dump(out, fh, indent=1)


def _median_ms(fn, repeat: int = 300) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


if __name__ == "__main__":
    main(*sys.argv[1:4])
