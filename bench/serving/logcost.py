"""CPU that prediction logging costs, measured in process (no HTTP, no load generator).

Two figures, each the CPU time of the thread that does the work, so a busy machine
changes them little (unlike throughput, see stalls.py and run.py):

- the request path: ``/predict`` called straight on the ASGI app N times, with the
  prediction log on and off; the difference is what logging adds to each request (the
  flusher does not run meanwhile: its batches are made too large to fall due);
- the flusher: the entries those requests queued, written in batches as the flusher
  writes them (every sink: the raw log, class probabilities, monitor profiles), per
  1,000 requests and as rows per CPU second, with each sink's share.

    .venv/bin/python bench/serving/logcost.py                  # 1-row requests, a monitor
    .venv/bin/python bench/serving/logcost.py --rows 100 --no-monitor
    .venv/bin/python bench/serving/logcost.py --profile flusher.prof   # cProfile of it

Not a test: compare runs made one after the other on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument("--requests", type=int, default=4000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-monitor", action="store_true", help="no monitor: no profiles")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the flusher into FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        body = prepare(home, not args.no_monitor, args.rows)
        run(home, body, args)


def prepare(home: Path, monitored: bool, rows: int) -> bytes:
    from sklearn.datasets import load_breast_cancer

    sys.path.insert(0, str(HERE))
    from run import prepare_heron

    prepare_heron(home, monitored=monitored)
    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    return json.dumps({"instances": X.head(rows).to_dict(orient="records")}).encode()


def run(home: Path, body: bytes, args: argparse.Namespace) -> None:
    import heron
    from heron._serving import ServeOptions
    from heron._serving._run import build_server

    settings = heron.Settings(home=home)
    # Nothing falls due while requests run: the flusher is timed on its own afterwards.
    held = dict(log_capacity=10**9, log_max_bytes=1 << 40, log_batch_size=10**9)
    logged = build_server(settings, ServeOptions("cancer", auth=False, log_interval=3600, **held))
    plain = build_server(settings, ServeOptions("cancer", auth=False, log_predictions=False))
    logged.load()
    plain.load()
    logger = logged.logger
    assert logger is not None
    defaults = ServeOptions("cancer")
    batch, due = defaults.log_batch_size, defaults.log_max_bytes // 4  # as PredictionLogger
    timers = _time_sinks(logger.sinks)
    on, off, flush, rows_per_s = [], [], [], []
    shares: dict[str, list[float]] = defaultdict(list)
    profiler = cProfile.Profile() if args.profile else None
    for _ in range(args.rounds + 1):  # the first round warms up, and loads the references
        off.append(_requests(plain, body, args.requests))
        on.append(_requests(logged, body, args.requests))
        for spent in timers.values():
            spent.clear()
        logger.batch_size, logger._due_bytes = batch, due  # the server's batches
        began = time.thread_time()
        if profiler is not None:
            profiler.enable()
        logger.flush()
        if profiler is not None:
            profiler.disable()
        cpu = time.thread_time() - began
        logger.batch_size, logger._due_bytes = 10**9, 1 << 40
        flush.append(cpu / args.requests)
        rows_per_s.append(args.requests * args.rows / cpu)
        for name, spent in timers.items():
            shares[name].append(sum(spent) / args.requests)
    logged.close()
    plain.close()
    del on[0], off[0], flush[0], rows_per_s[0]
    added = [a - b for a, b in zip(on, off, strict=True)]
    print(
        f"{args.rows} row(s) per request, {'no monitor' if args.no_monitor else 'a monitor'}; "
        f"median of {args.rounds} rounds of {args.requests} requests (CPU ms per 1,000 "
        "requests)"
    )
    print(f"  request path, log off: {_ms(off)}   log on: {_ms(on)}   added: {_ms(added)}")
    print(f"  flusher: {_ms(flush)}   ({statistics.median(rows_per_s):,.0f} rows per CPU second)")
    for name, spent in shares.items():
        print(f"    {name}: {_ms(spent)}")
    if profiler is not None:
        profiler.dump_stats(args.profile)


def _requests(server: Any, body: bytes, n: int) -> float:
    """CPU seconds per request of ``n`` calls of ``/predict`` on the ASGI app."""
    scope = {
        "type": "http",
        "path": "/predict",
        "method": "POST",
        "headers": [(b"content-type", b"application/json")],
    }
    message = {"type": "http.request", "body": body, "more_body": False}
    statuses = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(event: dict[str, Any]) -> None:
        if event["type"] == "http.response.start":
            statuses.append(event["status"])

    async def loop() -> float:
        began = time.thread_time()
        for _ in range(n):
            await server(scope, receive, send)
        return time.thread_time() - began

    cpu = asyncio.run(loop())
    assert set(statuses) == {200}, set(statuses)
    return cpu / n


def _time_sinks(sinks: list[Any]) -> dict[str, list[float]]:
    """Wrap each sink's ``write`` to record the CPU it takes, by the sink's class name."""
    timers: dict[str, list[float]] = {}
    for sink in sinks:
        sink.write = _timed(sink.write, timers.setdefault(type(sink).__name__, []))
    return timers


def _timed(write: Any, spent: list[float]) -> Any:
    def timed(endpoint: str, entries: list[Any]) -> None:
        began = time.thread_time()
        write(endpoint, entries)
        spent.append(time.thread_time() - began)

    return timed


def _ms(seconds: list[float]) -> str:
    """Median CPU ms per 1,000 requests, and the spread of the rounds."""
    values = sorted(s * 1e6 for s in seconds)
    return f"{statistics.median(values):6.1f} [{values[0]:.1f}-{values[-1]:.1f}]"


if __name__ == "__main__":
    main()
