"""Monitoring benchmark: Heron's drift report against Evidently's on the same data.

    .venv/bin/python bench/monitoring/run.py --rows 100000 1000000

Builds seeded synthetic frames (bench/monitoring/data.py), writes them to Parquet under
bench/results/monitoring/, and runs each tool in its own process: Heron with this Python,
Evidently (latest from PyPI, with pandas<3, which Evidently 0.7 needs) in
bench/.venv-evidently, created here when missing. Prints one markdown table per row count:
wall time, peak memory, and which columns each tool flagged against the truth.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENV = ROOT / "bench" / ".venv-evidently"
RESULTS = ROOT / "bench" / "results" / "monitoring"
EVIDENTLY_REQUIREMENTS = ["evidently", "pandas<3", "pyarrow"]

sys.path.insert(0, str(HERE))
from data import NEGLIGIBLE, SHIFTED, make_frames  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-evidently", action="store_true")
    args = parser.parse_args()
    if not args.skip_evidently:
        ensure_evidently_venv()
    print(machine_line())
    print(truth_lines())
    for rows in args.rows:
        results = run_rows(rows, args.seed, args.skip_evidently)
        print(table(rows, results))


def ensure_evidently_venv() -> None:
    python = VENV / "bin" / "python"
    if python.exists():
        return
    print(f"creating {VENV.relative_to(ROOT)} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_REQUIREMENTS]
    subprocess.run(pip, check=True)


def run_rows(rows: int, seed: int, skip_evidently: bool) -> dict[str, dict]:
    folder = RESULTS / str(rows)
    folder.mkdir(parents=True, exist_ok=True)
    reference, current = make_frames(rows, seed)
    ref_path, cur_path = folder / "reference.parquet", folder / "current.parquet"
    reference.to_parquet(ref_path, index=False)
    current.to_parquet(cur_path, index=False)
    del reference, current
    sides = {"heron": (sys.executable, HERE / "heron_side.py")}
    if not skip_evidently:
        sides["evidently"] = (str(VENV / "bin" / "python"), HERE / "evidently_side.py")
    results = {}
    for name, (python, script) in sides.items():
        out = folder / f"{name}.json"
        print(f"[{rows:,} rows] running {name} ...", file=sys.stderr, flush=True)
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(
            [python, str(script), str(ref_path), str(cur_path), str(out)], check=True, env=env
        )
        results[name] = json.loads(out.read_text())
    return results


def verdict(flagged: list[str]) -> tuple[str, str]:
    found = [c for c in SHIFTED if c in flagged]
    extra = sorted(c for c in flagged if c not in SHIFTED)
    return f"{len(found)}/{len(SHIFTED)}", ", ".join(extra) or "none"


def table(rows: int, results: dict[str, dict]) -> str:
    lines = [
        f"\n### {rows:,} rows a side\n",
        "| tool | wall time | CPU time | peak RSS | peak above loaded frames | frames in memory "
        "| shifted found | false alarms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for side in results.values():
        drift = side["drift"]
        found, extra = verdict(side["flagged"])
        extra_mb = drift["peak_extra_mb"]
        lines.append(
            f"| {side['tool']} | {drift['seconds']:.2f} s | {drift['cpu_seconds']:.2f} s "
            f"| {drift['peak_rss_mb']:.0f} MB | {extra_mb:.0f} MB "
            f"({extra_mb / side['frames_mb']:.2f}x) | {side['frames_mb']:.0f} MB "
            f"| {found} | {extra} |"
        )
    heron = results["heron"]
    if "evidently" in results:
        ev, hd = results["evidently"]["drift"], heron["drift"]
        lines.append(
            f"\nEvidently / Heron: wall time {ev['seconds'] / hd['seconds']:.0f}x, "
            f"CPU time {ev['cpu_seconds'] / hd['cpu_seconds']:.0f}x, "
            f"peak above frames {ev['peak_extra_mb'] / max(hd['peak_extra_mb'], 1):.0f}x, "
            f"peak RSS {ev['peak_rss_mb'] / hd['peak_rss_mb']:.1f}x"
        )
    steps = heron["steps"]
    lines += [
        "",
        "| Heron detail | figure |",
        "|---|---|",
        f"| reference profile (quantile edges), 25 columns | {steps['reference_profile_s']:.2f} s "
        f"= {heron['values_per_s_reference'] / 1e6:.1f} M values/s |",
        f"| window profile on reference edges | {steps['current_profile_s']:.2f} s "
        f"= {heron['values_per_s_window'] / 1e6:.1f} M values/s |",
        f"| compare two stored profiles (drift report) | {heron['compare_stored_ms']:.3f} ms |",
        f"| parse two profiles from JSON + compare | {heron['load_and_compare_ms']:.3f} ms |",
        f"| data-quality report from profiles | {heron['quality_ms']:.3f} ms |",
        f"| profile JSON size (reference, window) | {heron['profile_json_bytes'][0]:,} B, "
        f"{heron['profile_json_bytes'][1]:,} B |",
        f"| multivariate: domain classifier on 10k rows a side | "
        f"{heron['multivariate']['seconds']:.2f} s, AUC {heron['multivariate_auc']:.3f} |",
    ]
    lines += [
        "",
        "| column | truth | " + " | ".join(results) + " |",
        "|---|---|" + "---|" * len(results),
    ]
    names = list(next(iter(results.values()))["columns"])
    for name in names:
        truth = SHIFTED.get(name) or (
            f"negligible: {NEGLIGIBLE[name]}" if name in NEGLIGIBLE else ""
        )
        cells = []
        for side in results.values():
            test, statistic, drifted = side["columns"][name]
            mark = "**drift**" if drifted else "-"
            cells.append(f"{mark} {short(test)} {statistic:.3f}")
        if truth or any(side["columns"][name][2] for side in results.values()):
            lines.append(f"| {name} | {truth or 'unchanged'} | " + " | ".join(cells) + " |")
    lines.append("\n(unchanged columns flagged by neither tool are left out of this table)")
    return "\n".join(lines)


def short(test: str) -> str:
    return {
        "Wasserstein distance (normed)": "wasserstein",
        "Jensen-Shannon distance": "jensenshannon",
    }.get(test, test)


def machine_line() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"machine: {cpu}, {os.cpu_count()} cpus, Python {platform.python_version()}, heron {commit}"
    )


def truth_lines() -> str:
    shifted = "; ".join(f"{k} ({v})" for k, v in SHIFTED.items())
    negligible = "; ".join(f"{k} ({v})" for k, v in NEGLIGIBLE.items())
    return f"truth: shifted {shifted}\nnegligible, must not be flagged: {negligible}"


if __name__ == "__main__":
    main()
