"""Running prediction servers: one process, or several workers sharing one socket.

Workers are spawned processes, each a whole stateless server (its own poller, log flusher
and metrics), accepting from one listening socket the parent bound; the options travel to
them as arguments, not through the environment.

A server listens at once and loads its endpoint in a thread meanwhile: /health/live answers
from the start, everything else 503 until the models are loaded and warmed, which is when
/health/ready turns 200 (time to ready is measured: the event loop's start-up overlaps the
load, and what ``PredictionServer.start`` does after readiness no longer delays it). A load
that fails stops the server and is raised where it was started. SIGTERM (what process
managers send) closes the server like Ctrl-C does, so the queued prediction log is written
before the process ends.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

from heron._serving._app import PredictionServer, ServeOptions
from heron._settings import Settings


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
    # uvicorn re-raises the SIGTERM it shut down on after restoring the handler it found;
    # with the default one the process would end there, before the log is written.
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        try:
            _run_uvicorn(server, on_ready, host=host, port=port, sock=sock)
        finally:
            server.close()
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)  # end as the signal says, as without the handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_uvicorn(
    server: PredictionServer,
    on_ready: Callable[[PredictionServer], None] | None,
    *,
    host: str,
    port: int,
    sock: socket.socket | None,
) -> None:
    """Serve with uvicorn while ``server`` starts in a thread; raise what stopped the start."""
    import uvicorn

    from heron._serving._memory import freeze_heap

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
    http = uvicorn.Server(config)
    failed: list[BaseException] = []

    def start() -> None:
        try:
            server.start()
        except BaseException as exc:
            failed.append(exc)
            http.should_exit = True
            return
        freeze_heap()  # what start-up built is never walked by a full collection (_memory)
        if on_ready is not None:
            on_ready(server)

    threading.Thread(target=start, name="heron-start", daemon=True).start()
    http.run(sockets=[sock] if sock is not None else None)
    if failed:
        raise failed[0]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
