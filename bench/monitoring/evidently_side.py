"""Evidently's side of the benchmark; run with bench/.venv-evidently: evidently_side.py REF CUR OUT.

Default DataDriftPreset, as a user would run it; a column counts as flagged when Evidently's
own per-column drift test fails.
"""

from __future__ import annotations

import json
import sys

import evidently
import pandas as pd
from _measure import frames_mb, phase, rss_mb
from data import CATEGORICAL, NUMERIC
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def main(ref_path: str, cur_path: str, out_path: str) -> None:
    reference, current = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    out: dict = {
        "tool": f"evidently {evidently.__version__}",
        "frames_mb": frames_mb(reference, current),
        "rss_loaded_mb": rss_mb(),
    }
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    with phase(out, "drift"):
        snapshot = Report([DataDriftPreset()], include_tests=True).run(
            current_data=Dataset.from_pandas(current, data_definition=definition),
            reference_data=Dataset.from_pandas(reference, data_definition=definition),
        )
        result = snapshot.dict()
    columns = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("column") is not None:
            columns[config["column"]] = [config.get("method"), metric["value"], False]
    for test in result["tests"]:
        column = test["metric_config"]["params"].get("column")
        if column in columns and test["status"] == "FAIL":
            columns[column][2] = True
    out["columns"] = columns
    out["flagged"] = [name for name, (_, _, drifted) in columns.items() if drifted]
    with open(out_path, "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
