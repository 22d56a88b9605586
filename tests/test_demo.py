"""``heron demo`` runs end to end on a fresh store, and again on the same store."""

from __future__ import annotations

from pathlib import Path

from heron._demo import run_demo
from heron.testing import embedded_client, heron_settings


def test_the_demo_runs_twice_on_one_store(tmp_path: Path) -> None:
    client = embedded_client(heron_settings(tmp_path))
    try:
        first = run_demo(client)
        checks = first["live_checks"]
        assert sum(c.rows for c in checks) == 300  # every served row, profiled
        assert {"mean radius", "worst texture"} <= {n for c in checks for n in c.drifted_names()}
        assert any(c.estimated_performance is not None for c in checks)
        again = run_demo(client)
        assert again["endpoint"] == "cancer" and again["live_checks"]
    finally:
        client.close()
