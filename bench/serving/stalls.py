"""Event-loop stalls of a prediction server under wrk, and what its log flusher costs.

One ``heron serve``-like server (allocator limits, start-up heap frozen, uvicorn, one
worker) runs in this process, in a fresh interpreter (the store is made by a child process);
wrk loads it with single-row requests, as in run.py, for a few short runs in a row: the
first run is a new server's first seconds of traffic. Per run:

- wrk's requests/s and p50/p99 latency;
- loop lag: how late a 5 ms timer on the event loop fired (what every request waits for
  while the flusher holds the GIL or a garbage collection runs), p99 and max;
- full (generation-2) garbage collections and how long each took;
- CPU time of the server process per 1,000 requests (the logging cost, less noisy than
  throughput on a shared machine), of its log flusher thread and of the event loop's;
- context switches per request of the busiest threads (a thread trading the GIL with the
  event loop shows there); log entries dropped because the queue was full (a flusher that
  cannot keep up costs less CPU per request: read its figure with this one).

    .venv/bin/python bench/serving/stalls.py                 # monitor watching the endpoint
    .venv/bin/python bench/serving/stalls.py --no-freeze     # the heap as it was before
    .venv/bin/python bench/serving/stalls.py --no-monitor --rows 100 --connections 64

Not a test: the numbers depend on the machine; compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def prepare(home: Path, monitored: bool, rows: int) -> None:
    """run.py's store (cancer-clf@champion behind ``cancer``, watched by a monitor unless
    told not to) and a request body of ``rows`` rows in ``home/body.json``."""
    from sklearn.datasets import load_breast_cancer

    sys.path.insert(0, str(HERE))
    from run import prepare_heron

    prepare_heron(home, monitored=monitored)
    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    body = {"instances": X.head(rows).to_dict(orient="records")}
    (home / "body.json").write_text(json.dumps(body))


class Watched:
    """The server's ASGI app, with a timer on its event loop that records how late it fires."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lags: list[float] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            asyncio.get_running_loop().create_task(self._tick())
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)

    async def _tick(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(0.005)
            self.lags.append(time.perf_counter() - began - 0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5, help="seconds of wrk per run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument("--no-monitor", action="store_true", help="no monitor: no profiles")
    parser.add_argument("--no-log", action="store_true", help="prediction logging off")
    parser.add_argument("--no-freeze", action="store_true", help="leave the heap unfrozen")
    parser.add_argument("--prepare", metavar="HOME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare(Path(args.prepare), not args.no_monitor, args.rows)
        return
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        command = [sys.executable, __file__, "--prepare", str(home), "--rows", str(args.rows)]
        subprocess.run([*command, *(["--no-monitor"] if args.no_monitor else [])], check=True)
        serve(home, args)


def serve(home: Path, args: argparse.Namespace) -> None:
    import uvicorn

    import heron
    from heron._serving import ServeOptions
    from heron._serving._memory import freeze_heap
    from heron._serving._run import build_server

    options = ServeOptions("cancer", auth=False, log_predictions=not args.no_log)
    server = build_server(heron.Settings(home=home), options)  # as heron serve builds it
    server.start()
    if not args.no_freeze:
        freeze_heap()
    app = Watched(server)
    config = uvicorn.Config(app, port=0, lifespan="on", log_level="warning", access_log=False)
    http = uvicorn.Server(config)

    def load() -> None:
        while not http.started:
            time.sleep(0.05)
        port = http.servers[0].sockets[0].getsockname()[1]
        try:
            for run in range(args.runs):
                url = f"http://127.0.0.1:{port}/predict"
                measure(args, run, url, home / "body.json", app, server)
        finally:
            http.should_exit = True

    threading.Thread(target=load, daemon=True).start()
    http.run()
    server.close()


def measure(
    args: argparse.Namespace, run: int, url: str, body: Path, app: Watched, server: Any
) -> None:
    pauses: list[float] = []
    began: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                began.append(time.perf_counter())
            elif began:
                pauses.append(time.perf_counter() - began.pop())

    flusher = server.logger._thread if server.logger is not None else None
    cpu, process = _thread_cpu(flusher), time.process_time()
    loop, switches = _thread_cpu(threading.main_thread()), _context_switches()
    dropped = server.logger.dropped if server.logger is not None else 0
    app.lags.clear()
    gc.callbacks.append(on_gc)
    wrk = [shutil.which("wrk") or "wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s",
           "-s", str(HERE / "post.lua"), url, "--", str(body)]  # fmt: skip
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        wrk = ["taskset", "-c", str((os.cpu_count() or 1) - 1), *wrk]  # as run.py pins it
    out = subprocess.run(wrk, capture_output=True, text=True, check=True).stdout
    gc.callbacks.remove(on_gc)
    cpu, process = _thread_cpu(flusher) - cpu, time.process_time() - process
    loop = _thread_cpu(threading.main_thread()) - loop
    switches = {k: v - switches.get(k, 0) for k, v in _context_switches().items()}
    dropped = (server.logger.dropped if server.logger is not None else 0) - dropped
    fields = dict(
        p.split("=") for p in next(x for x in out.splitlines() if "RESULT" in x).split()[1:]
    )
    lags, requests = sorted(app.lags), int(fields["requests"])
    p99 = lags[int(len(lags) * 0.99)] if lags else 0.0
    print(
        f"run {run + 1}: {float(fields['rps']):6.0f} req/s  p50 {float(fields['p50']):6.2f} ms  "
        f"p99 {float(fields['p99']):7.2f} ms | loop lag p99 {p99 * 1000:5.1f} ms  max "
        f"{max(lags, default=0.0) * 1000:6.1f} ms | gen-2 GCs {[round(p * 1000) for p in pauses]}"
        f" ms | CPU per 1,000 requests: {process / requests * 1e6:5.1f} ms, of which the "
        f"flusher {cpu / requests * 1e6:5.1f}, the event loop {loop / requests * 1e6:5.1f} "
        f"(log entries dropped: {dropped}) | "
        f"context switches per request: {_per_request(switches, requests)}",
        flush=True,
    )


def _context_switches() -> dict[str, int]:
    """Voluntary + involuntary context switches of each thread of this process, by name:
    a thread handing the GIL back and forth with the event loop shows here."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    counts: dict[str, int] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        n = sum(int(x.split()[1]) for x in status.splitlines() if "ctxt_switches" in x)
        name = names.get(int(task.name), "other")
        counts[name] = counts.get(name, 0) + n
    return counts


def _per_request(switches: dict[str, int], requests: int) -> str:
    busy = sorted(switches.items(), key=lambda item: -item[1])[:3]
    return ", ".join(f"{name} {n / requests:.2f}" for name, n in busy if n)


def _thread_cpu(thread: Any) -> float:
    import psutil

    if thread is None:
        return 0.0
    for t in psutil.Process().threads():
        if t.id == thread.native_id:
            return float(t.user_time + t.system_time)
    return 0.0


if __name__ == "__main__":
    main()
