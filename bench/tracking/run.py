"""Heron vs MLflow on tracking, search, registry and model loading; prints one table.

    bench/tracking/run.sh            # full run (about 25 minutes on a busy 2-core machine)
    bench/tracking/run.sh --quick    # smaller counts (about 7 minutes)

Both on SQLite, each both embedded (a client on the database in its own process) and
through its own server (``heron server`` and ``mlflow server`` with its default workers),
each server on a fresh store in a scratch folder. MLflow is the latest from PyPI in its own
venv, ``bench/.venv-mlflow``, created here when missing (``--upgrade-mlflow`` refreshes
it); its figures come from ``mlflow_side.py`` run by that venv's python, Heron's from
``heron_side.py`` run by this python. Raw figures go to ``bench/results/tracking-*.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
MLFLOW_VENV = BENCH / ".venv-mlflow"
MLFLOW_PYTHON = MLFLOW_VENV / "bin" / "python"
# heron server runs as shipped, authentication on: the clients hold this admin's token.
HERON_TOKEN = secrets.token_hex(32)
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]

FULL = {
    "sizes": {
        "heron": {
            "single_metrics": 100_000,
            "metric_batches": 100,
            "single_params": 3_000,
            "param_batches": 200,
        },
        "mlflow": {
            "single_metrics": 1_000,
            "metric_batches": 30,
            "single_params": 500,
            "param_batches": 50,
        },
    },
    "budget_s": 20.0,
    "reps": 3,
    "search_runs": 10_000,
    "search_reps": 20,
    "model_versions": 200,
    "infer_sample": 3,
    "predict_reps": 3,
}
QUICK = {
    "sizes": {
        "heron": {
            "single_metrics": 20_000,
            "metric_batches": 20,
            "single_params": 500,
            "param_batches": 20,
        },
        "mlflow": {
            "single_metrics": 200,
            "metric_batches": 5,
            "single_params": 100,
            "param_batches": 10,
        },
    },
    "budget_s": 5.0,
    "reps": 1,
    "search_runs": 1_000,
    "search_reps": 10,
    "model_versions": 20,
    "infer_sample": 1,
    "predict_reps": 3,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, one repetition")
    parser.add_argument("--search-runs", type=int, help="runs to search over (default 10,000)")
    parser.add_argument("--upgrade-mlflow", action="store_true", help="pip install -U mlflow")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    config = dict(QUICK if args.quick else FULL)
    if args.search_runs:
        config["search_runs"] = args.search_runs

    mlflow_version = ensure_mlflow(upgrade=args.upgrade_mlflow)
    load_before = os.getloadavg()
    scratch = Path(tempfile.mkdtemp(prefix="heron-bench-"))
    log(f"scratch folder {scratch}; MLflow {mlflow_version}")
    try:
        results = run_all(config, scratch)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    results["meta"] = machine_notes(mlflow_version, config, quick=args.quick)
    results["meta"]["load_average_before_after"] = [load_before, os.getloadavg()]
    out = BENCH / "results" / f"tracking-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print()
    print(render_table(results, config))
    meta = results["meta"]
    print(
        f"\nMLflow {meta['mlflow']}, Heron {meta['heron']}, Python {meta['python']}, "
        f"{meta['cores']} cores, {meta['memory_gb']} GB, load average (1 min) "
        f"{load_before[0]:.1f} before, {meta['load_average_before_after'][1][0]:.1f} after"
    )
    print(f"raw figures: {out.relative_to(BENCH.parent)}")


# --- the run ------------------------------------------------------------------------------


def run_all(config: dict[str, Any], scratch: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"heron": {}, "mlflow": {}}
    h, m = results["heron"], results["mlflow"]
    heron_root, mlflow_root = scratch / "heron-embedded", scratch / "mlflow-embedded"
    heron_srv_root, mlflow_srv_root = scratch / "heron-server", scratch / "mlflow-server"
    for folder in (heron_root, mlflow_root, heron_srv_root, mlflow_srv_root):
        folder.mkdir()
    mlflow_db = f"sqlite:///{mlflow_root / 'mlflow.db'}"
    mlflow_srv_db = f"sqlite:///{mlflow_srv_root / 'mlflow.db'}"
    heron_embedded = {"mode": "embedded", "root": str(heron_root)}
    mlflow_embedded = {"mode": "embedded", "root": str(mlflow_root), "uri": mlflow_db}

    with heron_server(heron_srv_root) as heron_url, mlflow_server(mlflow_srv_root) as mlflow_url:
        log("servers up; letting them settle before measuring idle memory")
        time.sleep(5)
        h["idle_rss_mb"], m["idle_rss_mb"] = server_rss(heron_url), server_rss(mlflow_url)
        heron_remote = {
            "mode": "server",
            "url": heron_url.url,
            "client_home": str(scratch / "heron-client"),
            "token": HERON_TOKEN,
        }
        mlflow_remote = {"mode": "server", "uri": mlflow_url.url, "root": str(mlflow_srv_root)}
        sides = [
            ("heron", h, heron_embedded, heron_remote),
            ("mlflow", m, mlflow_embedded, mlflow_remote),
        ]

        for side, out, embedded, remote in sides:
            for where, spec in (("embedded", embedded), ("server", remote)):
                log(f"{side}: metric and param logging, {where}")
                out[f"tracking_{where}"] = worker(
                    side,
                    task="tracking",
                    sizes=config["sizes"][side],
                    budget_s=config["budget_s"],
                    reps=config["reps"],
                    **spec,
                )

        n = config["search_runs"]
        for side, out, _embedded, remote in sides:
            log(f"{side}: populating {n:,} runs (into the server's database, embedded)")
            srv_root = heron_srv_root if side == "heron" else mlflow_srv_root
            embedded_on_server_db = {
                "mode": "embedded",
                "root": str(srv_root),
                "uri": mlflow_srv_db,
            }
            out["populate"] = worker(side, task="populate", n=n, **embedded_on_server_db)
            for where, spec in (("embedded", embedded_on_server_db), ("server", remote)):
                log(f"{side}: search_runs, {where}")
                out[f"search_{where}"] = worker(
                    side, task="search", reps=config["search_reps"], **spec
                )

        for side, out, embedded, remote in sides:
            for where, spec in (("embedded", embedded), ("server", remote)):
                log(f"{side}: registering {config['model_versions']} model versions, {where}")
                out[f"models_{where}"] = worker(
                    side,
                    task="models",
                    n=config["model_versions"],
                    infer_sample=config["infer_sample"] if where == "embedded" else 0,
                    **spec,
                )

        log("time to first prediction from fresh processes")
        compile_heron()
        reps = config["predict_reps"]
        h["predict_embedded"] = first_predictions(
            "heron", {"HERON_HOME": str(heron_root / ".heron")}, reps
        )
        h["predict_server"] = first_predictions(
            "heron",
            {
                "HERON_URL": heron_url.url,
                "HERON_TOKEN": HERON_TOKEN,
                "HERON_HOME": str(scratch / "heron-fresh"),
            },
            reps,
        )
        m["predict_embedded"] = first_predictions(
            "mlflow", {"MLFLOW_TRACKING_URI": mlflow_db}, reps
        )
        m["predict_server"] = first_predictions(
            "mlflow", {"MLFLOW_TRACKING_URI": mlflow_url.url}, reps
        )
        # The floor neither tool can go under: the same model from a plain joblib file.
        results["predict_floor"] = first_predictions(
            "floor", {"HERON_BENCH_MODEL": str(floor_model(scratch))}, reps
        )

        time.sleep(3)
        h["busy_rss_mb"], m["busy_rss_mb"] = server_rss(heron_url), server_rss(mlflow_url)
    return results


def worker(side: str, **task: Any) -> dict[str, Any]:
    """Run one task in the side's own venv; its ``RESULT`` line is the answer."""
    python = sys.executable if side == "heron" else str(MLFLOW_PYTHON)
    script = HERE / f"{side}_side.py"
    cwd = task.get("root") or tempfile.gettempdir()
    proc = subprocess.run(
        [python, str(script), json.dumps(task)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(),
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-5000:])
    raise SystemExit(f"{side} worker failed on {task['task']} ({task['mode']})")


PREDICT = {
    "heron": (
        "import sys, time\n"
        "import heron, pandas as pd\n"
        "model = heron.load_model('models:/m@champion')\n"
        "model.predict(pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns={features!r}))\n"
        "print('DONE', time.time() - float(sys.argv[1]))\n"
    ),
    "floor": (
        "import os, sys, time\n"
        "import joblib, pandas as pd\n"
        "model = joblib.load(os.environ['HERON_BENCH_MODEL'])\n"
        "model.predict(pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns={features!r}))\n"
        "print('DONE', time.time() - float(sys.argv[1]))\n"
    ),
    "mlflow": (
        "import sys, time\n"
        "import mlflow.pyfunc, pandas as pd\n"
        "model = mlflow.pyfunc.load_model('models:/m@champion')\n"
        "model.predict(pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns={features!r}))\n"
        "print('DONE', time.time() - float(sys.argv[1]))\n"
    ),
}


def compile_heron() -> None:
    """Write Heron's bytecode, as ``pip install`` does for MLflow's site-packages.

    The project venv holds Heron as an editable install, and with PYTHONDONTWRITEBYTECODE
    set (as on CI machines) every fresh process would compile Heron from source: a cost
    no installed package pays, which would be charged to Heron's cold start alone."""
    import compileall

    import heron

    compileall.compile_dir(Path(heron.__file__).parent, quiet=1)


def floor_model(scratch: Path) -> Path:
    """The benchmark's model (LogisticRegression on iris), pickled with joblib alone."""
    path = scratch / "floor-model.joblib"
    code = (
        "import sys, joblib\n"
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "X, y = load_iris(return_X_y=True, as_frame=True)\n"
        "joblib.dump(LogisticRegression(max_iter=300).fit(X, y), sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=clean_env())
    return path


def first_predictions(side: str, env: dict[str, str], reps: int) -> dict[str, Any]:
    """Seconds from starting a fresh interpreter to its first prediction by alias."""
    python = str(MLFLOW_PYTHON) if side == "mlflow" else sys.executable
    code = PREDICT[side].format(features=FEATURES)
    times = []
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(reps):
            start = time.time()
            proc = subprocess.run(
                [python, "-c", code, repr(start)],
                capture_output=True,
                text=True,
                cwd=cwd,
                env={**clean_env(), **env},
            )
            done = [line for line in proc.stdout.splitlines() if line.startswith("DONE ")]
            if not done:
                sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
                raise SystemExit(f"{side}: first prediction failed")
            times.append(float(done[0].split()[1]))
    return {"median_s": statistics.median(times), "times": times}


# --- servers ------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def heron_server(root: Path) -> Iterator[Server]:
    home = root / ".heron"
    env = {
        **clean_env(),
        "HERON_HOME": str(home),
        "HERON_DB_URL": f"sqlite:///{home / 'heron.db'}",
        "HERON_ADMIN_TOKEN": HERON_TOKEN,
    }
    port = free_port()
    heron_cli = Path(sys.executable).parent / "heron"
    cmd = [str(heron_cli), "server", "--port", str(port)]
    with serving(cmd, env, root, f"http://127.0.0.1:{port}", "/api/v1/health") as server:
        yield server


@contextlib.contextmanager
def mlflow_server(root: Path) -> Iterator[Server]:
    port = free_port()
    cmd = [
        str(MLFLOW_VENV / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with serving(cmd, clean_env(), root, f"http://127.0.0.1:{port}", "/health") as server:
        yield server


@contextlib.contextmanager
def serving(
    cmd: list[str], env: dict[str, str], cwd: Path, url: str, health: str
) -> Iterator[Server]:
    logfile = open(cwd / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{cmd[0]} exited: {(cwd / 'server.log').read_text()[-3000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(url + health, timeout=2) as response,
            ):
                if response.status == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{cmd[0]} did not answer on {url}{health}")
            time.sleep(0.2)
        yield Server(url, process)
    finally:
        stop(process)
        logfile.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and every process it started (its session only)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()
        _gone, alive = psutil.wait_procs(tree, timeout=10)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
    process.wait(timeout=10)


def server_rss(server: Server) -> dict[str, Any]:
    """Resident memory summed over the server's process tree (and PSS, which does not count
    pages shared between its workers twice), in MB."""
    root = psutil.Process(server.process.pid)
    procs = [root, *root.children(recursive=True)]
    rss = pss = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            info = proc.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
    return {"rss": rss / 2**20, "pss": pss / 2**20, "processes": len(procs)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This environment without HERON_* / MLFLOW_* settings, so each side sees only ours."""
    drop = ("HERON_", "MLFLOW_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


# --- MLflow's venv and the report ---------------------------------------------------------


def ensure_mlflow(upgrade: bool) -> str:
    if not MLFLOW_PYTHON.exists():
        log(f"creating {MLFLOW_VENV.relative_to(BENCH.parent)} with the latest MLflow")
        venv = [sys.executable, "-m", "venv", "--without-pip", str(MLFLOW_VENV)]
        subprocess.run(venv, check=True)
        subprocess.run([str(MLFLOW_PYTHON), "-m", "ensurepip", "--upgrade"], check=True)
        upgrade = True
    if upgrade:
        pip = [str(MLFLOW_PYTHON), "-m", "pip", "install", "-q", "-U"]
        subprocess.run([*pip, "mlflow", "scikit-learn", "pandas"], check=True)
    probe = subprocess.run(
        [str(MLFLOW_PYTHON), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return probe.stdout.strip()


def machine_notes(mlflow_version: str, config: dict[str, Any], quick: bool) -> dict[str, Any]:
    import platform

    import heron

    def versions(python: str, names: str) -> str:
        code = (
            "import importlib.metadata as m\n"
            f"print(', '.join(n + ' ' + m.version(n) for n in {names.split()!r}))"
        )
        return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()

    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "quick": quick,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "heron": heron.__version__,
        "mlflow": mlflow_version,
        "heron_venv": versions(sys.executable, "sqlalchemy fastapi uvicorn pydantic httpx"),
        "mlflow_venv": versions(str(MLFLOW_PYTHON), "sqlalchemy fastapi uvicorn pydantic"),
        "config": config,
    }


@dataclass
class Row:
    label: str
    unit: str
    heron: float | None
    mlflow: float | None
    lower_is_better: bool = False
    goal: float | None = None  # Heron's advantage (times) the issue asks for
    goal_text: str = ""

    def advantage(self) -> float | None:
        if not self.heron or not self.mlflow:
            return None
        return self.mlflow / self.heron if self.lower_is_better else self.heron / self.mlflow


def table_rows(r: dict[str, Any], config: dict[str, Any]) -> list[Row]:
    h, m = r["heron"], r["mlflow"]

    def both(key: str, path: list[str]) -> tuple[float | None, float | None]:
        def get(side: dict[str, Any]) -> float | None:
            value: Any = side.get(key)
            for part in path:
                if value is None:
                    return None
                value = value.get(part)
            return value

        return get(h), get(m)

    rows = []
    for where in ("embedded", "server"):
        t = f"tracking_{where}"
        rows += [
            Row(f"log_metric single calls, {where}", "metrics/s",
                *both(t, ["single_metrics", "per_s"]), goal=100, goal_text="≥ 100x"),
            Row(f"metrics in batches of 1,000, {where}", "metrics/s",
                *both(t, ["metric_batches", "per_s"]), goal=10, goal_text="≥ 10x"),
            Row(f"log_param single calls, {where}", "params/s",
                *both(t, ["single_params", "per_s"])),
            Row(f"params in batches of 100, {where}", "params/s",
                *both(t, ["param_batches", "per_s"])),
        ]  # fmt: skip
    n = config["search_runs"]
    for where in ("embedded", "server"):
        hs, ms = both(f"search_{where}", ["median_s"])
        rows.append(
            Row(f"search_runs page of 100, metric filter, {n:,} runs, {where}", "ms",
                hs and hs * 1000, ms and ms * 1000, lower_is_better=True, goal=5,
                goal_text="≥ 5x")
        )  # fmt: skip
    v = config["model_versions"]
    for where in ("embedded", "server"):
        rows.append(
            Row(f"register {v} model versions (log_model in a run), {where}", "s",
                *both(f"models_{where}", ["seconds"]), lower_is_better=True)
        )  # fmt: skip
    inferred = m.get("models_embedded", {}).get("inferred_per_version_s") or []
    heron_each = h.get("models_embedded", {}).get("per_version_s") or []
    if inferred and heron_each:
        rows.append(
            Row("one version, MLflow's default path (requirements inferred), embedded", "s",
                statistics.median(heron_each), statistics.median(inferred),
                lower_is_better=True)
        )  # fmt: skip
    for where in ("embedded", "server"):
        rows.append(
            Row(f"first prediction by alias, fresh process, {where} (median of 3)", "s",
                *both(f"predict_{where}", ["median_s"]), lower_is_better=True, goal=3,
                goal_text="≤ ⅓ time")
        )  # fmt: skip
    floor = (r.get("predict_floor") or {}).get("median_s")
    rows.append(
        Row("floor: same model by joblib.load, no registry, fresh process (median of 3)", "s",
            floor, None, lower_is_better=True)
    )  # fmt: skip
    hi, mi = both("idle_rss_mb", ["rss"])
    rows.append(Row("server idle RSS after start (process tree)", "MB", hi, mi,
                    lower_is_better=True, goal_text="Heron < 200 MB"))  # fmt: skip
    hb, mb = both("busy_rss_mb", ["rss"])
    rows.append(Row("server RSS, idle after the workload", "MB", hb, mb, lower_is_better=True))
    hp, mp = both("populate", ["per_s"])
    rows.append(Row(f"populating {n:,} runs (3 calls per run Heron, 2 MLflow), embedded",
                    "runs/s", hp, mp))  # fmt: skip
    return rows


def render_table(r: dict[str, Any], config: dict[str, Any]) -> str:
    lines = [
        "| figure | unit | Heron | MLflow | Heron's advantage | goal | met |",
        "|---|---|--:|--:|--:|---|---|",
    ]
    for row in table_rows(r, config):
        adv = row.advantage()
        if row.goal_text.startswith("Heron <"):
            met = "yes" if row.heron is not None and row.heron < 200 else "no"
        elif row.goal is not None and adv is not None:
            met = "yes" if adv >= row.goal else "no"
        else:
            met = ""
        lines.append(
            f"| {row.label} | {row.unit} | {fmt(row.heron)} | {fmt(row.mlflow)} | "
            f"{'' if adv is None else f'{adv:,.1f}x'} | {row.goal_text} | {met} |"
        )
    return "\n".join(lines)


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
