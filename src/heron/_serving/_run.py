"""Running prediction servers: one process, or several workers sharing one socket.

Workers are spawned processes, each a whole stateless server (its own poller and log
flusher), accepting from one listening socket the parent bound; the options travel to
them as arguments, not through the environment. Their Prometheus metrics go to files in a
folder the parent makes, so any worker answers a scrape for all of them (``_metrics``).

A server loads its endpoint (ready), listens, and only then starts what readiness does not
wait for: the poller and the heartbeats (``PredictionServer.follow``). SIGTERM (what process
managers send) closes the server like Ctrl-C does, so the queued prediction log is written
before the process ends.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from heron._serving._app import PredictionServer
from heron._serving._metrics import MULTIPROCESS_ENV
from heron._serving._options import ServeOptions
from heron._settings import Settings
from heron._threads import start_thread


def build_server(settings: Settings, options: ServeOptions) -> PredictionServer:
    """The server of this process (its allocator tuned before any thread starts); not
    started yet."""
    from heron._client import Client
    from heron._serving._memory import limit_arenas, limit_sqlite_heap

    # Two arenas: one for the event loop, one shared by the background threads, instead of
    # one per thread each keeping the memory the others freed; SQLite's page caches held
    # to 2 MB in all (see _memory): the log is appended to, not read back, and writes of
    # 80,000 rows took no longer than with 8 MB, which kept 6 MB more resident.
    limit_arenas(2)
    limit_sqlite_heap(2 * 1024 * 1024)
    # pandas allocates through pyarrow (string column labels); its default pool, mimalloc,
    # reserves 1 GiB and keeps 4 MB resident for those few bytes. A setting of the user's
    # wins; workers inherit this one.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    return PredictionServer(Client(settings=settings), options)


def serve(
    settings: Settings,
    options: ServeOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 8088,
    workers: int = 1,
    on_ready: Callable[[PredictionServer], None] | None = None,
) -> None:
    """Serve ``options.endpoint`` until interrupted."""
    if workers <= 1:
        _serve_one(settings, options, host=host, port=port, on_ready=on_ready)
        return
    sock = _bind(host, port)
    shared = _share_metrics()
    ctx = multiprocessing.get_context("spawn")
    processes = [
        ctx.Process(target=_worker, args=(settings, options, sock), name=f"heron-serve-{i}")
        for i in range(workers)
    ]
    for process in processes:
        process.start()

    def stop(signum: int, _frame: Any) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        stop(signal.SIGINT, None)
        for process in processes:
            process.join()
    finally:
        sock.close()
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)


def _share_metrics() -> str | None:
    """A fresh folder for the workers' metric files (they inherit the environment), or
    None when the user named one for prometheus-client already."""
    if os.environ.get(MULTIPROCESS_ENV):
        return None
    folder = tempfile.mkdtemp(prefix="heron-metrics-")
    os.environ[MULTIPROCESS_ENV] = folder
    return folder


def _worker(settings: Settings, options: ServeOptions, sock: socket.socket) -> None:
    _serve_one(settings, options, sock=sock)


class _Terminated(Exception):
    """SIGTERM arrived: close the server, then end by the signal."""


def _on_sigterm(signum: int, _frame: Any) -> None:
    raise _Terminated


def _serve_one(
    settings: Settings,
    options: ServeOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    sock: socket.socket | None = None,
    on_ready: Callable[[PredictionServer], None] | None = None,
) -> None:
    server = build_server(settings, options)
    if threading.current_thread() is not threading.main_thread():
        _serve_until_stopped(server, on_ready, host=host, port=port, sock=sock)
        return  # signals are the main thread's business
    # uvicorn re-raises the SIGTERM it shut down on after restoring the handler it found;
    # with the default one the process would end there, before the log is written.
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _serve_until_stopped(server, on_ready, host=host, port=port, sock=sock)
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)  # end as the signal says, as without the handler
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _serve_until_stopped(
    server: PredictionServer,
    on_ready: Callable[[PredictionServer], None] | None,
    **where: Any,
) -> None:
    from heron._serving._memory import collector_paused, freeze_heap

    try:
        with collector_paused():  # collections were a tenth of start-up (_memory)
            server.load()
            freeze_heap()  # what start-up built is never walked by a full collection
        if on_ready is not None:
            on_ready(server)
        _run_uvicorn(server, **where)
    finally:
        server.close()


def _run_uvicorn(
    server: PredictionServer, *, host: str, port: int, sock: socket.socket | None
) -> None:
    """Serve the loaded ``server`` with uvicorn; it follows its endpoint once listening."""
    import uvicorn

    class Listening(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                # Beside the event loop, so the first requests need not wait for it.
                start_thread(server.follow, "heron-follow")

    config = uvicorn.Config(
        server,
        host=host,
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        backlog=2048,
    )
    Listening(config).run(sockets=[sock] if sock is not None else None)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
