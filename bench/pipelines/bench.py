"""Pipeline benchmark: ``.venv/bin/python bench/pipelines/bench.py`` from the repo root.

Measures Heron (and Metaflow, when ``bench/.venv-metaflow`` exists) on this machine:
a 3- and a 20-step chain of trivial steps from a fresh process (interpreter start, imports,
store, run), the per-step overhead, the cost of a cache hit, and the speed-up of two
independent 2-second CPU-bound branches on local processes and Ray versus in-process.
Prints a table; RESULTS.md keeps the last one.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PY = sys.executable
sys.path.insert(0, str(HERE))


def fresh_process(chain: str, executor: str, home: Path, n: int) -> float:
    env = {**os.environ, "HERON_HOME": str(home), "PYTHONPATH": str(HERE)}
    start = time.perf_counter()
    subprocess.run([PY, str(HERE / "fresh.py"), chain, executor, str(n)], env=env, check=True)
    return time.perf_counter() - start


def median_of(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(fn() for _ in range(repeat))


def heron_rows(rows: list[tuple[str, str, str]]) -> dict[str, float]:
    import workloads

    import heron

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="heron-bench-") as scratch:
        home = Path(scratch) / ".heron"
        fresh_process("3", "inprocess", home, -1)  # create and migrate the store once
        counter = iter(range(10_000))
        for chain in ("3", "20"):
            for executor in ("inprocess", "local"):
                t = median_of(
                    lambda c=chain, e=executor: fresh_process(c, e, home, next(counter)), 3
                )
                figures[f"fresh{chain}-{executor}"] = t
                rows.append(
                    (f"{chain}-step chain, fresh process ({executor})", "Heron", f"{t:.2f} s")
                )
        client = heron.Client(settings=heron.Settings(home=home))
        for executor in ("inprocess", "local"):

            def once(length: int, executor: str = executor) -> float:
                p = workloads.chain3 if length == 3 else workloads.chain20
                start = time.perf_counter()
                heron.run_pipeline(
                    p, params={"n": next(counter)}, executor=executor, client=client, progress=False
                )
                return time.perf_counter() - start

            per_step = (median_of(lambda: once(20)) - median_of(lambda: once(3))) / 17
            figures[f"step-{executor}"] = per_step
            rows.append((f"per-step overhead ({executor})", "Heron", f"{per_step * 1000:.1f} ms"))
        # cache hits: the same 20-step run again, every step served from the cache
        heron.run_pipeline(workloads.chain20, params={"n": -5}, client=client, progress=False)

        def hit() -> float:
            start = time.perf_counter()
            r = heron.run_pipeline(
                workloads.chain20, params={"n": -5}, client=client, progress=False
            )
            assert all(s.cached for s in r.steps.values())
            return time.perf_counter() - start

        per_hit = median_of(hit) / 20
        figures["hit"] = per_hit
        rows.append(("cache hit, per step", "Heron", f"{per_hit * 1000:.1f} ms"))
        base = None
        for executor in ("inprocess", "local", "ray"):
            if executor == "ray":
                try:
                    import ray

                    ray.init(
                        num_cpus=2,
                        include_dashboard=False,
                        logging_level="error",
                        log_to_driver=False,
                    )
                    heron.run_pipeline(
                        workloads.branches,
                        params={"seconds": 0.1},
                        executor="ray",
                        client=client,
                        progress=False,
                    )
                except ImportError:
                    continue
            start = time.perf_counter()
            r = heron.run_pipeline(
                workloads.branches, executor=executor, client=client, progress=False
            )
            assert r.status == "succeeded", r.error
            took = time.perf_counter() - start
            base = base or took
            figures[f"branches-{executor}"] = took
            label = f"{took:.2f} s" + ("" if executor == "inprocess" else f" (x{base / took:.2f})")
            rows.append((f"two 2 s CPU branches ({executor})", "Heron", label))
        client.close()
    return figures


METAFLOW_CHAIN = """
from metaflow import FlowSpec, step

class Chain{n}(FlowSpec):
{steps}

if __name__ == "__main__":
    Chain{n}()
"""


def metaflow_chain(n: int) -> str:
    names = ["start", *[f"s{i}" for i in range(1, n - 1)], "end"]
    body = []
    for i, name in enumerate(names):
        nxt = f"        self.next(self.{names[i + 1]})\n" if i + 1 < n else ""
        value = "0" if i == 0 else "self.x + 1"
        body.append(f"    @step\n    def {name}(self):\n        self.x = {value}\n{nxt}")
    return METAFLOW_CHAIN.format(n=n, steps="\n".join(body))


METAFLOW_BRANCHES = """
import time
from metaflow import FlowSpec, step

def burn(seconds):
    count, end = 0, time.process_time() + seconds
    while time.process_time() < end:
        for _ in range(10_000):
            count += 1
    return count

class Branches(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)
    @step
    def a(self):
        self.x = burn(2.0)
        self.next(self.join)
    @step
    def b(self):
        self.x = burn(2.0)
        self.next(self.join)
    @step
    def join(self, inputs):
        self.x = sum(i.x for i in inputs)
        self.next(self.end)
    @step
    def end(self):
        pass

if __name__ == "__main__":
    Branches()
"""


def metaflow_rows(rows: list[tuple[str, str, str]], heron_figures: dict[str, float]) -> None:
    venv = ROOT / "bench" / ".venv-metaflow" / "bin" / "python"
    if not venv.exists():
        rows.append(("(Metaflow not installed: see RESULTS.md)", "Metaflow", "-"))
        return
    with tempfile.TemporaryDirectory(prefix="metaflow-bench-") as scratch:
        env = {**os.environ, "USERNAME": "bench", "METAFLOW_DEFAULT_DATASTORE": "local"}
        times = {}
        for n in (3, 20):
            flow = Path(scratch) / f"chain{n}.py"
            flow.write_text(metaflow_chain(n))

            def once(flow: Path = flow) -> float:
                start = time.perf_counter()
                subprocess.run(
                    [str(venv), str(flow), "--quiet", "run"],
                    cwd=scratch,
                    env=env,
                    check=True,
                    capture_output=True,
                )
                return time.perf_counter() - start

            once()  # first run creates the datastore
            times[n] = median_of(once, 3)
            rows.append((f"{n}-step chain, fresh process", "Metaflow", f"{times[n]:.2f} s"))
        per_step = (times[20] - times[3]) / 17 * 1000
        rows.append(("per-step overhead", "Metaflow", f"{per_step:.0f} ms"))
        flow = Path(scratch) / "branches.py"
        flow.write_text(METAFLOW_BRANCHES)
        start = time.perf_counter()
        subprocess.run(
            [str(venv), str(flow), "--quiet", "run"],
            cwd=scratch,
            env=env,
            check=True,
            capture_output=True,
        )
        took = time.perf_counter() - start
        base = heron_figures.get("branches-inprocess", took)
        rows.append(
            (
                "two 2 s CPU branches",
                "Metaflow",
                f"{took:.2f} s (x{base / took:.2f} vs Heron in-process)",
            )
        )


def main() -> None:
    rows: list[tuple[str, str, str]] = []
    figures = heron_rows(rows)
    metaflow_rows(rows, figures)
    goals = {
        "fresh3-inprocess": (
            "3-step run from a fresh process ≤ 1 s",
            figures["fresh3-inprocess"] <= 1.0,
        ),
        "step-local": ("per-step overhead ≤ 20 ms (local)", figures["step-local"] <= 0.020),
        "hit": ("cache hit ≤ 10 ms", figures["hit"] <= 0.010),
        "branches-local": (
            "two-branch speed-up ≥ 1.8x (local)",
            figures["branches-inprocess"] / figures["branches-local"] >= 1.8,
        ),
    }
    if "branches-ray" in figures:
        goals["branches-ray"] = (
            "two-branch speed-up ≥ 1.8x (Ray)",
            figures["branches-inprocess"] / figures["branches-ray"] >= 1.8,
        )
    width = max(len(r[0]) for r in rows)
    print(f"{'workload'.ljust(width)}  {'tool':9}  result")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 30}")
    for workload, tool, value in rows:
        print(f"{workload.ljust(width)}  {tool:9}  {value}")
    print()
    for text, met in goals.values():
        print(f"goal {'met' if met else 'MISSED'}: {text}")


if __name__ == "__main__":
    main()
