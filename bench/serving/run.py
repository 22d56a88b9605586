"""Serving benchmark: Heron vs ``mlflow models serve`` vs a bare ASGI app (the floor).

Every server serves the same scikit-learn model (LogisticRegression on breast_cancer) with
one worker; load comes from wrk in a separate process, at 8 and 64 connections, with 1-row
and 100-row requests. Heron runs with prediction logging on (the endpoint watched by a
monitor, so per-minute profiles are built too, within their row budget), on without a monitor, and
off. Every round starts each server afresh. Reported: requests/s, p50 and p99 latency
(best round), logging's cost (median of rounds, each pair of runs back to back), resident
memory right after the runs and at rest a few seconds later, and time to ready (medians of
rounds). The printed table is written to
bench/serving/RESULTS.md with the command that made it.

    .venv/bin/python bench/serving/run.py                # everything (~15 min, more at first)
    .venv/bin/python bench/serving/run.py --duration 5 --skip-mlflow

Needs: wrk (installed with apt-get when missing) and MLflow from PyPI in its own venv,
bench/.venv-mlflow (created on first run). With two CPUs or more, wrk is pinned to the last
one; servers are not pinned (a server's background threads may use the other core).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORK = ROOT / "bench" / "results" / "serving"
MLFLOW_VENV = ROOT / "bench" / ".venv-mlflow"
VENV_BIN = Path(sys.executable).parent
MLFLOW_SPEC = "mlflow>=3.0"
REST_SECONDS = 12.0  # after the last run, before resident memory is read again


@dataclass
class Server:
    name: str
    command: list[str]
    health: str  # path answering 200 when ready
    body_format: str  # "instances" or "dataframe_split"
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


@dataclass
class Result:
    rps: float
    p50: float
    p99: float
    errors: int


# --- setup -------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (apt-get) ...", flush=True)
    if subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True).returncode:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def ensure_mlflow() -> Path:
    mlflow = MLFLOW_VENV / "bin" / "mlflow"
    if not mlflow.exists():
        print(f"creating {MLFLOW_VENV} with {MLFLOW_SPEC} (first run only) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        pip = [str(MLFLOW_VENV / "bin" / "pip"), "install", "-q"]
        subprocess.run([*pip, MLFLOW_SPEC, "scikit-learn", "pandas"], check=True)
    return mlflow


def write_bodies() -> dict[tuple[str, int], Path]:
    from sklearn.datasets import load_breast_cancer

    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    bodies = {}
    for rows in (1, 100):
        part = X.head(rows)
        forms = {
            "instances": {"instances": part.to_dict(orient="records")},
            "dataframe_split": {
                "dataframe_split": {"columns": list(X.columns), "data": part.to_numpy().tolist()}
            },
        }
        for form, payload in forms.items():
            path = WORK / f"body-{form}-{rows}.json"
            path.write_text(json.dumps(payload))
            bodies[(form, rows)] = path
    return bodies


def prepare_heron(home: Path, monitored: bool = True) -> Path:
    """A Heron store with cancer-clf@champion behind endpoint ``cancer``, watched by a
    monitor unless told not to (logging then costs what it does in production: the raw log,
    class probabilities and per-minute profiles, each within its budget); returns the model
    folder (the bare app loads the same files)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    import heron

    shutil.rmtree(home, ignore_errors=True)
    client = heron.Client(settings=heron.Settings(home=home))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=5000).fit(X, y)
    mv = client.log_model(model, "cancer-clf", input_example=X.head(3))
    client.set_alias("cancer-clf", "champion", mv.version)
    client.create_endpoint("cancer", ["cancer-clf@champion"])
    if monitored:
        client.log_dataset(X.assign(target=y), name="breast-cancer")
        client.create_monitor("live", "breast-cancer", endpoint="cancer", window="hour")
    folder = client.model_folder(mv)
    client.close()
    return folder


def prepare_mlflow(mlflow: Path) -> Path:
    out = WORK / "mlflow-model"
    python = mlflow.parent / "python"
    subprocess.run([str(python), str(HERE / "mlflow_model.py"), str(out)], check=True)
    return out


# --- running -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(command: list[str], cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu), *command]
    return command


@contextlib.contextmanager
def started(
    server: Server, port: int, poll: float = 0.02
) -> Iterator[tuple[psutil.Process, float]]:
    """Start a server; yield it and the seconds it took to answer its health check (asked
    every ``poll`` seconds)."""
    command = [part.replace("{port}", str(port)) for part in server.command]
    began = time.perf_counter()
    log = open(WORK / f"{server.name}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        command,
        env={**os.environ, **server.env},
        cwd=server.cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}{server.health}"
        # One client for all polls: httpx.get builds a client (and its TLS context) per call,
        # ~22 ms of CPU, which kept a core half busy beside the server being timed.
        with httpx.Client(timeout=1) as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{server.name} exited; see {log.name}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        break
                if time.perf_counter() - began > 180:
                    raise RuntimeError(f"{server.name} never became ready")
                time.sleep(poll)
        yield psutil.Process(process.pid), time.perf_counter() - began
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def rss_mb(process: psutil.Process) -> float:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


def run_wrk(wrk: str, url: str, body: Path, connections: int, duration: float) -> Result:
    command = pinned(
        [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s", "-s",
         str(HERE / "post.lua"), url, "--", str(body)],
        (os.cpu_count() or 1) - 1,
    )  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    fields = dict(part.split("=") for part in line.split()[1:])
    return Result(
        rps=float(fields["rps"]),
        p50=float(fields["p50"]),
        p99=float(fields["p99"]),
        errors=int(fields["errors"]) + int(fields["non2xx"]),
    )


def bench_all(
    servers: list[Server], wrk: str, bodies: dict[tuple[str, int], Path], args: argparse.Namespace
) -> dict[str, dict]:
    """Measure every cell in ``--rounds`` rounds. Each round starts every server afresh, one
    after another (its ready time undisturbed), then takes them in turn per cell (every
    other round in reverse order), so noise from other work on the machine hits all servers
    alike; fresh processes because two processes of one server differ by up to 10 % in
    throughput here (memory layout, see ``ab.py``), as much as logging costs. Kept: each
    server's best round per cell, all rounds, and the median of rounds for ready time and
    resident memory (after the runs, and at rest ``REST_SECONDS`` later)."""
    runs: dict[str, dict] = {s.name: {"ready": [], "rounds": {}, "rss": [], "rss_rest": []}
                             for s in servers}  # fmt: skip
    for round_ in range(args.rounds):
        print(f"round {round_ + 1} of {args.rounds}", flush=True)
        with contextlib.ExitStack() as stack:
            live = {}
            for server in servers:
                port = free_port()
                process, ready = stack.enter_context(started(server, port))
                path = "/invocations" if server.name == "mlflow" else "/predict"
                live[server.name] = (server, process, f"http://127.0.0.1:{port}{path}")
                runs[server.name]["ready"].append(ready)
                print(f"  {server.name}: ready in {ready:.2f}s", flush=True)
            _bench_round(live, wrk, bodies, args, round_, runs)
            for name, (_, process, url) in live.items():
                runs[name]["rss"].append(rss_mb(process))
                if name.startswith("heron"):
                    counts = log_counts(url.rsplit("/", 1)[0])
                    total = runs[name].setdefault("log", dict.fromkeys(counts, 0.0))
                    for key, value in counts.items():
                        total[key] += value
            # And at rest: what a server keeps once the load has stopped (Heron's flusher
            # gives freed memory back to the system every 5 s).
            time.sleep(REST_SECONDS)
            for name, (_, process, _) in live.items():
                runs[name]["rss_rest"].append(rss_mb(process))
    for run in runs.values():
        # The best round per cell, for the throughput and latency tables.
        run["results"] = {cell: max(rs, key=lambda r: r.rps) for cell, rs in run["rounds"].items()}
        for key in ("ready", "rss", "rss_rest"):
            run[key] = statistics.median(run[key])
    return runs


def _bench_round(
    live: dict[str, tuple[Server, psutil.Process, str]],
    wrk: str,
    bodies: dict[tuple[str, int], Path],
    args: argparse.Namespace,
    round_: int,
    runs: dict[str, dict],
) -> None:
    for rows in (1, 100):
        for server, _, url in live.values():
            body = bodies[(server.body_format, rows)].read_bytes()
            r = httpx.post(url, content=body, headers={"content-type": "application/json"})
            if r.status_code != 200:
                raise RuntimeError(f"{server.name} answered {r.status_code}: {r.text[:300]}")
        for connections in (8, 64):
            # Every other round in reverse: no server always runs right after another.
            order = list(live.items()) if round_ % 2 == 0 else list(live.items())[::-1]
            for name, (server, _, url) in order:
                body_path = bodies[(server.body_format, rows)]
                run_wrk(wrk, url, body_path, connections, args.warmup)
                result = run_wrk(wrk, url, body_path, connections, args.duration)
                if name.startswith("heron"):
                    drain(url.rsplit("/", 1)[0])
                runs[name]["rounds"].setdefault((rows, connections), []).append(result)
                print(
                    f"  {name:>16} {rows:>3} rows, {connections:>2} conns: "
                    f"{result.rps:8.0f} req/s  p50 {result.p50:7.2f} ms  "
                    f"p99 {result.p99:7.2f} ms  errors {result.errors}",
                    flush=True,
                )


def drain(base: str, timeout: float = 30.0) -> None:
    """Wait until a Heron server's prediction-log queue is empty, and a moment more for
    the batch being written: its flusher, still writing after the load stopped, would
    otherwise take CPU from the next server's run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = httpx.get(f"{base}/metrics").text.splitlines()
        queued = [x for x in lines if x.startswith("heron_prediction_log_queue")]
        if all(float(x.rsplit(" ", 1)[1]) == 0 for x in queued):
            break
        time.sleep(0.1)
    time.sleep(0.5)


def log_counts(base: str) -> dict[str, float]:
    """Requests answered and prediction-log entries dropped (queue full), from /metrics:
    a server whose flusher falls behind logs less, and costs less, than it should."""
    from prometheus_client.parser import text_string_to_metric_families

    names = {
        "heron_requests_total": "requests",
        "heron_prediction_log_dropped_total": "dropped",
        "heron_prediction_log_sink_cpu_seconds_total": "flusher_cpu",
        "heron_prediction_log_sink_seconds_total": "flusher_wall",
    }
    totals = dict.fromkeys(names.values(), 0.0)
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
        for sample in family.samples:
            if sample.name in names:
                totals[names[sample.name]] += sample.value
    return totals


# --- report --------------------------------------------------------------------------------


def report(runs: dict[str, dict], seconds: float, rounds: int, load: float) -> str:
    names = list(runs)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average before the run: "
        f"{load:.1f}. Best of {rounds} rounds of {seconds:.0f} s of wrk per cell, "
        "servers started afresh each round and taken in turn; one worker per server. "
        "Memory and ready time: median of rounds.",
        "",
        "| rows | conns | " + " | ".join(f"{n} req/s · p50 · p99 (ms)" for n in names) + " |",
        "|---:|---:|" + "---|" * len(names),
    ]
    for rows in (1, 100):
        for conns in (8, 64):
            cells = []
            for name in names:
                r = runs[name]["results"][(rows, conns)]
                cells.append(
                    f"{r.rps:,.0f} · {r.p50:.2f} · {r.p99:.2f}"
                    + (f" ({r.errors} errors)" if r.errors else "")
                )
            lines.append(f"| {rows} | {conns} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| server | resident memory after the load (MB) | at rest, "
        f"{REST_SECONDS:.0f} s later (MB) | ready (s) |",
        "|---|---:|---:|---:|",
    ]
    for name in names:
        run = runs[name]
        lines.append(f"| {name} | {run['rss']:.0f} | {run['rss_rest']:.0f} | {run['ready']:.2f} |")
    logged = [name for name in names if runs[name].get("log", {}).get("requests")]
    if logged:
        lines += [
            "",
            "| server | requests | log entries dropped (queue full) | flusher CPU per 1,000 "
            "requests (ms) | flusher wall / CPU time |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in logged:
            counts = runs[name]["log"]
            share = counts["dropped"] / counts["requests"]
            cpu = counts["flusher_cpu"] / counts["requests"] * 1e6
            waited = counts["flusher_wall"] / counts["flusher_cpu"] if counts["flusher_cpu"] else 0
            lines.append(
                f"| {name} | {counts['requests']:,.0f} | {counts['dropped']:,.0f} ({share:.1%}) "
                f"| {cpu:.1f} | {waited:.1f} |"
            )
    lines += ["", *ratios(runs)]
    return "\n".join(lines)


def ratios(runs: dict[str, dict]) -> list[str]:
    out = [
        "| ratio | 1 row · 8 | 1 row · 64 | 100 rows · 8 | 100 rows · 64 |",
        "|---|---:|---:|---:|---:|",
    ]

    def row(label: str, fn) -> None:  # type: ignore[no-untyped-def]
        cells = []
        for rows in (1, 100):
            for conns in (8, 64):
                try:
                    cells.append(f"{fn(rows, conns):.2f}")
                except KeyError:
                    cells.append("-")
        out.append(f"| {label} | " + " | ".join(cells) + " |")

    def res(name: str, rows: int, conns: int) -> Result:
        return runs[name]["results"][(rows, conns)]

    def paired_cost(name: str, rows: int, conns: int) -> float:
        """Logging's cost as the median over rounds of 1 - on/off, each round's two runs
        made one after the other: the machine's slow drifts (seconds to minutes, +-10 %
        here) hit both runs of a pair alike, where the best rounds may come from different
        minutes."""
        on, off = runs[name]["rounds"][(rows, conns)], runs["heron-no-log"]["rounds"][(rows, conns)]
        return statistics.median(1 - a.rps / b.rps for a, b in zip(on, off, strict=True))

    row(
        "Heron / bare ASGI, throughput",
        lambda r, c: res("heron", r, c).rps / res("bare-asgi", r, c).rps,
    )
    if "mlflow" in runs:
        row(
            "Heron / MLflow, throughput",
            lambda r, c: res("heron", r, c).rps / res("mlflow", r, c).rps,
        )
        row("Heron p99 / MLflow p99", lambda r, c: res("heron", r, c).p99 / res("mlflow", r, c).p99)
    row("logging cost (1 - on/off), median of rounds", lambda r, c: paired_cost("heron", r, c))
    row("same, no monitor (no profiles)", lambda r, c: paired_cost("heron-no-monitor", r, c))
    row(
        "logging cost from the best rounds",
        lambda r, c: 1 - res("heron", r, c).rps / res("heron-no-log", r, c).rps,
    )
    if "mlflow" in runs:
        out.append("")
        out.append(
            "Resident memory Heron / MLflow: "
            f"{runs['heron']['rss'] / runs['mlflow']['rss']:.2f} after the load, "
            f"{runs['heron']['rss_rest'] / runs['mlflow']['rss_rest']:.2f} at rest"
        )
    return out


def compile_heron() -> None:
    """Byte-compile Heron's own modules, as pip does for an installed package. The
    editable install here is otherwise compiled from source at every start when
    PYTHONDONTWRITEBYTECODE is set, while site-packages (the bare app's and MLflow's
    imports) are compiled once at install: time to ready would then measure the compiler."""
    import heron

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(heron.__file__).parent)], check=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per cell (best is kept)")
    parser.add_argument("--skip-mlflow", action="store_true", help="leave MLflow out")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    WORK.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    bodies = write_bodies()
    home = WORK / "heron-home"
    model_folder = prepare_heron(home)
    plain = WORK / "heron-home-no-monitor"
    prepare_heron(plain, monitored=False)
    compile_heron()
    heron_env = {"HERON_HOME": str(home)}
    servers = [
        Server("bare-asgi", [str(VENV_BIN / "uvicorn"), "bare_app:app", "--port", "{port}",
               "--log-level", "warning", "--no-access-log"], "/health", "instances",
               env={"MODEL_DIR": str(model_folder)}, cwd=HERE),
        Server("heron", [str(VENV_BIN / "heron"), "serve", "cancer", "--port", "{port}"],
               "/health/ready", "instances", env=heron_env),
        Server("heron-no-log", [str(VENV_BIN / "heron"), "serve", "cancer", "--port", "{port}",
               "--no-log"], "/health/ready", "instances", env=heron_env),
        Server("heron-no-monitor", [str(VENV_BIN / "heron"), "serve", "cancer", "--port",
               "{port}"], "/health/ready", "instances", env={"HERON_HOME": str(plain)}),
    ]  # fmt: skip
    if not args.skip_mlflow:
        mlflow = ensure_mlflow()
        model = prepare_mlflow(mlflow)
        servers.append(
            Server(
                "mlflow",
                [str(mlflow), "models", "serve", "-m", str(model), "--env-manager", "local",
                 "-h", "127.0.0.1", "-p", "{port}"],
                "/health",
                "dataframe_split",
                # mlflow starts uvicorn from its venv's bin by name
                env={"PATH": f"{mlflow.parent}{os.pathsep}{os.environ.get('PATH', '')}"},
            )
        )  # fmt: skip
    runs = bench_all(servers, wrk, bodies, args)
    command = "python bench/serving/run.py " + " ".join(sys.argv[1:])
    table = report(runs, args.duration, args.rounds, load)
    print("\n" + table)
    if not args.no_write:
        (HERE / "RESULTS.md").write_text(
            "# Serving benchmark results\n\n"
            f"Command: `{command.strip()}` (from the repository root, with the project's venv)\n\n"
            + table
            + "\n"
        )


if __name__ == "__main__":
    main()
