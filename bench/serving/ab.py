"""A/B of ``heron serve`` variants under load: what one flag or one setting costs.

Every variant serves the benchmark's endpoint (``run.py``'s store, with and without a
monitor); each round starts every variant afresh, and wrk takes them in turn (every other
round in reverse), so noise from other work on the machine, and from one process's memory
layout, hits all alike. Printed: requests/s per round, the median,
the cost against the first variant (1 - rps / first's rps, from each round's pair), and
each server's CPU per request and context switches per 1,000 requests by thread (``/proc``):
where the time goes, and how often a thread waited (for the GIL, or I/O).

    .venv/bin/python bench/serving/ab.py                      # log off / no monitor / monitor
    .venv/bin/python bench/serving/ab.py --rows 100 --rounds 7
    .venv/bin/python bench/serving/ab.py --variant "no-proba=monitor:--proba-rows-per-s 0"

A variant is ``NAME=HOME:FLAGS``: HOME is ``monitor`` or ``plain`` (the store without a
monitor), FLAGS are added to ``heron serve cancer --port P``, except ``NAME=VALUE`` with an
upper-case name, which sets that environment variable for the server. Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import (  # noqa: E402
    VENV_BIN,
    WORK,
    Server,
    drain,
    ensure_wrk,
    free_port,
    prepare_heron,
    run_wrk,
    started,
    write_bodies,
)

DEFAULT_VARIANTS = ["no-log=plain:--no-log", "no-monitor=plain:", "monitor=monitor:"]
TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu(process: psutil.Process) -> dict[str, tuple[float, int]]:
    """CPU seconds and context switches so far by thread name (threads of one name summed).
    A thread that waits for the GIL blocks, so its switches count its waits (with its I/O)."""
    cpu: dict[str, tuple[float, int]] = defaultdict(lambda: (0.0, 0))
    for task in Path(f"/proc/{process.pid}/task").iterdir():
        with contextlib.suppress(OSError):
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text().splitlines()
            switches = sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
            seconds, count = cpu[name]
            cpu[name] = (seconds + (int(fields[11]) + int(fields[12])) / TICKS, count + switches)
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", help="NAME=HOME:FLAGS (repeatable)")
    parser.add_argument("--rows", type=int, default=1, choices=(1, 100))
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    wrk, bodies = ensure_wrk(), write_bodies()
    homes = {"monitor": WORK / "ab-home", "plain": WORK / "ab-home-no-monitor"}
    prepare_heron(homes["monitor"])
    prepare_heron(homes["plain"], monitored=False)
    servers = []
    for spec in args.variant or DEFAULT_VARIANTS:
        name, rest = spec.split("=", 1)
        home, flags = rest.split(":", 1)
        env = {"HERON_HOME": str(homes[home])}
        options = []
        for token in flags.split():
            key, is_setting, value = token.partition("=")
            if is_setting and key.isupper():
                env[key] = value  # an environment variable for this variant's server
            else:
                options.append(token)
        command = [str(VENV_BIN / "heron"), "serve", "cancer", "--port", "{port}", *options]
        servers.append(Server(name, command, "/health/ready", "instances", env=env))
    body = bodies[("instances", args.rows)]
    rps: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    switches: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    requests: dict[str, float] = defaultdict(float)
    for round_ in range(args.rounds):
        # Fresh processes every round: two processes of one variant differ by up to 10 %
        # in throughput on this kind of machine (memory layout), as much as what is measured.
        with contextlib.ExitStack() as stack:
            live = {}
            for server in servers:
                port = free_port()
                process, _ = stack.enter_context(started(server, port))
                live[server.name] = (process, f"http://127.0.0.1:{port}/predict")
            for _, url in live.values():
                run_wrk(wrk, url, body, args.connections, 1)  # warm-up
                drain(url.rsplit("/", 1)[0])
            order = list(live.items()) if round_ % 2 == 0 else list(live.items())[::-1]
            for name, (process, url) in order:
                before = thread_cpu(process)
                result = run_wrk(wrk, url, body, args.connections, args.duration)
                after = thread_cpu(process)  # before the drain: the load's own CPU
                drain(url.rsplit("/", 1)[0])
                rps[name].append(result.rps)
                requests[name] += result.rps * args.duration
                for thread, (seconds, count) in after.items():
                    was_seconds, was_count = before.get(thread, (0.0, 0))
                    cpu[name][thread] += seconds - was_seconds
                    switches[name][thread] += count - was_count
                print(f"  round {round_ + 1} {name:>14}: {result.rps:8.0f} req/s", flush=True)
    first = servers[0].name
    print(
        f"\n{args.rows} row(s), {args.connections} connections, {args.rounds} rounds of "
        f"{args.duration:g} s; cost against {first}: 1 - rps / {first}'s, median of rounds"
    )
    for name, values in rps.items():
        costs = [1 - v / base for v, base in zip(values, rps[first], strict=True)]
        threads = sorted(cpu[name].items(), key=lambda kv: -kv[1])
        per_request = ", ".join(
            f"{thread} {seconds / requests[name] * 1e6:.0f}"
            for thread, seconds in threads
            if seconds / requests[name] * 1e6 >= 1
        )
        per_1000 = ", ".join(
            f"{thread} {count / requests[name] * 1000:.0f}"
            for thread, count in sorted(switches[name].items(), key=lambda kv: -kv[1])
            if count / requests[name] * 1000 >= 1
        )
        print(f"  {name:>14}: {statistics.median(values):8.0f} req/s  cost "
              f"{statistics.median(costs):5.2f}  CPU us/request: {per_request}")  # fmt: skip
        print(f"  {'':>14}  context switches per 1,000 requests: {per_1000}")


if __name__ == "__main__":
    main()
