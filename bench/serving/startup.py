"""Time to ready, resident memory after a short load, and modules loaded: ``heron serve``
against the bare ASGI app, on the store ``run.py`` builds (a monitor watching the endpoint).

Each server is started ``--runs`` times in turn; a run polls its readiness path every 10 ms
from process start, then wrk sends ``--load`` seconds of each of the four cells of ``run.py``
(1 and 100 rows, 8 and 64 connections) and the resident memory is read, as run.py does after
its last cell. Modules are counted in one extra start per server (``sys.modules`` once it
has served a little load).

    .venv/bin/python bench/serving/startup.py                  # 5 starts each, 2 s per cell
    .venv/bin/python bench/serving/startup.py --runs 9 --load 5
    .venv/bin/python bench/serving/startup.py --compare /tmp/before/src   # and another checkout
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import (  # the script's own folder is on sys.path
    HERE,
    VENV_BIN,
    WORK,
    Server,
    compile_heron,
    ensure_wrk,
    free_port,
    prepare_heron,
    rss_mb,
    run_wrk,
    started,
    write_bodies,
)

# Run a server's own command with a thread writing len(sys.modules) to a file every 0.1 s
# (uvicorn re-raises SIGTERM after its shutdown, so exit hooks do not run).
_COUNTING = (
    "import runpy, sys, threading, time\n"
    "out = sys.argv.pop(1)\n"
    "def count():\n"
    "    while True:\n"
    "        open(out, 'w').write(str(len(sys.modules)))\n"
    "        time.sleep(0.1)\n"
    "threading.Thread(target=count, daemon=True).start()\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def servers(home: Path, model_folder: Path, compare: Path | None) -> list[Server]:
    heron = [str(VENV_BIN / "heron"), "serve", "cancer", "--port", "{port}"]
    out = [
        Server("bare-asgi", [str(VENV_BIN / "uvicorn"), "bare_app:app", "--port", "{port}",
               "--log-level", "warning", "--no-access-log"], "/health", "instances",
               env={"MODEL_DIR": str(model_folder)}, cwd=HERE),
        Server("heron", heron, "/health/ready", "instances", env={"HERON_HOME": str(home)}),
    ]  # fmt: skip
    if compare is not None:
        # The other checkout's modules come first on the path (the install is editable).
        env = {"HERON_HOME": str(home), "PYTHONPATH": str(compare)}
        out.append(Server("heron-compared", heron, "/health/ready", "instances", env=env))
    return out


def counting(server: Server, out: Path) -> Server:
    script, *rest = server.command
    command = [sys.executable, "-c", _COUNTING, str(out), script, *rest]
    return Server(server.name, command, server.health, server.body_format, server.env, server.cwd)


def load(server: Server, port: int, wrk: str, bodies: dict, seconds: float) -> None:
    url = f"http://127.0.0.1:{port}/predict"
    for rows in (1, 100):
        for connections in (8, 64):
            run_wrk(wrk, url, bodies[(server.body_format, rows)], connections, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="starts per server")
    parser.add_argument("--load", type=float, default=2.0, help="seconds of wrk per cell")
    parser.add_argument("--reuse", action="store_true", help="keep the store of a former run")
    parser.add_argument(
        "--compare", type=Path, help="also serve with the src/ folder of another checkout"
    )
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    bodies = write_bodies()
    home = WORK / "startup-home"
    if args.reuse and (home / "models-folder").exists():
        model_folder = Path((home / "models-folder").read_text())
    else:
        model_folder = prepare_heron(home)
        (home / "models-folder").write_text(str(model_folder))
    compile_heron()
    if args.compare is not None:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(args.compare)], check=True)
    ready: dict[str, list[float]] = {}
    rss: dict[str, list[float]] = {}
    modules: dict[str, int] = {}
    print(f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
    for _ in range(args.runs):
        for server in servers(home, model_folder, args.compare):
            port = free_port()
            with started(server, port, poll=0.01) as (process, seconds):
                ready.setdefault(server.name, []).append(seconds)
                load(server, port, wrk, bodies, args.load)
                rss.setdefault(server.name, []).append(rss_mb(process))
            print(f"{server.name}: ready in {seconds:.2f}s", flush=True)
    for server in servers(home, model_folder, args.compare):
        out = WORK / f"modules-{server.name}.txt"
        port = free_port()
        with started(counting(server, out), port):
            load(server, port, wrk, bodies, 0.5)
            time.sleep(0.3)
        with contextlib.suppress(FileNotFoundError, ValueError):
            modules[server.name] = int(out.read_text())
    print("\n| server | ready, median (s) | runs (s) | RSS after load, median (MB) | runs (MB) "
          "| modules |")  # fmt: skip
    print("|---|---:|---|---:|---|---:|")
    for name, times in ready.items():
        print(
            f"| {name} | {statistics.median(times):.2f} | {', '.join(f'{t:.2f}' for t in times)} "
            f"| {statistics.median(rss[name]):.0f} | {', '.join(f'{m:.0f}' for m in rss[name])} "
            f"| {modules.get(name, '?')} |"
        )


if __name__ == "__main__":
    main()
