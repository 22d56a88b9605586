"""The demo's serving chapter (listed in ``heron._demo.CHAPTERS``): an endpoint, a prediction
server in this process on a free loopback port, traffic with a shifted batch, feedback, and
a live monitor check over the logged traffic."""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from heron._errors import AlreadyExists

if TYPE_CHECKING:
    from heron._client import Client

console = Console()

NORMAL_REQUESTS = 250
SHIFTED_ROWS = 50
FEEDBACK = 100


def serve_predictions(client: Client, state: dict[str, Any]) -> None:
    """Serve the champion: an endpoint, live traffic with a shift, feedback, a live check."""
    import httpx

    from heron._serving._app import PredictionServer
    from heron._serving._options import ServeOptions
    from heron.testing import serve_in_thread

    X, y = state["X"], state["y"]
    _ensure(lambda: client.create_endpoint("cancer", ["cancer-clf@champion"]))
    _ensure(lambda: client.create_monitor("cancer-live", "breast-cancer", endpoint="cancer",
                                          window="hour"))  # fmt: skip
    serving_log = logging.getLogger("heron.serving")
    level = serving_log.level
    serving_log.setLevel(logging.ERROR)  # the demo's server is on loopback, without tokens
    server = PredictionServer(client, ServeOptions("cancer", log_interval=0.1, auth=False))
    latencies: list[float] = []
    ids: list[str] = []
    try:
        server.start()
        with serve_in_thread(server) as url, httpx.Client(base_url=url) as http:
            traffic = X.sample(NORMAL_REQUESTS, random_state=1)  # like the training data
            for i in range(NORMAL_REQUESTS):
                started = time.perf_counter()
                r = http.post("/predict", json={"instances": [traffic.iloc[i].to_dict()]})
                latencies.append(time.perf_counter() - started)
                ids.append(r.raise_for_status().json()["request_id"])
            shifted = X.sample(SHIFTED_ROWS, random_state=2)
            shifted["mean radius"] *= 1.3
            shifted["worst texture"] += 8
            http.post("/predict", json={"instances": shifted.to_dict(orient="records")})
            feedback = [
                {"request_id": rid, "label": int(y.loc[traffic.index[i]])}
                for i, rid in enumerate(ids[:FEEDBACK])
            ]
            accepted = http.post("/feedback", json={"feedback": feedback}).json()["accepted"]
    finally:
        server.close()  # writes what is queued: the log, profiles and probabilities
        serving_log.setLevel(level)
    # Close the current hour early so the demo sees its window checked at once.
    checks = client.run_monitor("cancer-live", until=datetime.now(UTC) + timedelta(hours=1))
    if not checks:  # the demo ran before within this hour: show the stored check
        checks = client.list_monitor_checks("cancer-live", max_results=1).items
    state.update(endpoint="cancer", request_ids=ids, live_checks=checks)
    _print(latencies, accepted, checks)


def _ensure(create: Any) -> None:
    with contextlib.suppress(AlreadyExists):  # the demo ran before on this store
        create()


def _print(latencies: list[float], accepted: int, checks: list[Any]) -> None:
    table = Table(title="Served and monitored live", show_header=False, title_justify="left")
    table.add_row("endpoint", "cancer → cancer-clf@champion (prediction server on loopback)")
    table.add_row("requests", f"{len(latencies) + 1} ({len(latencies) + SHIFTED_ROWS} rows, "
                  f"one shifted batch of {SHIFTED_ROWS})")  # fmt: skip
    table.add_row("p50 latency", f"{statistics.median(latencies) * 1000:.2f} ms (client side)")
    table.add_row("feedback", f"{accepted} labels joined by request id")
    for check in checks:
        drifted = ", ".join(check.drifted_names()) or "none"
        table.add_row("live check", f"{check.rows} rows; drifted: {drifted}")
        figures = []
        if check.estimated_performance is not None:
            figures.append(f"estimated {check.estimated_performance.metrics['accuracy']:.3f}")
        if check.performance is not None:
            figures.append(f"realized {check.performance.metrics['accuracy']:.3f}")
        if figures:
            table.add_row("live accuracy", " · ".join(figures))
    console.print(table)
