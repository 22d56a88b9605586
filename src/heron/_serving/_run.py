"""Running prediction servers: one process, or several workers sharing one socket.

Workers are spawned processes, each a whole stateless server (its own poller, log flusher
and metrics), accepting from one listening socket the parent bound; the options travel to
them as arguments, not through the environment.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
from collections.abc import Callable
from typing import Any

from heron._serving._app import PredictionServer, ServeOptions
from heron._settings import Settings


def build_server(settings: Settings, options: ServeOptions) -> PredictionServer:
    """The server of this process (its allocator tuned before any thread starts)."""
    from heron._client import Client
    from heron._serving._memory import limit_arenas, limit_sqlite_heap

    # Two arenas: one for the event loop, one shared by the background threads, instead of
    # one per thread each keeping the memory the others freed; SQLite's page caches held
    # to 8 MB in all (see _memory).
    limit_arenas(2)
    limit_sqlite_heap(8 * 1024 * 1024)
    server = PredictionServer(Client(settings=settings), options)
    server.start()
    return server


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
        server = build_server(settings, options)
        if on_ready is not None:
            on_ready(server)
        try:
            _run_uvicorn(server, host=host, port=port)
        finally:
            server.close()
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
    server = build_server(settings, options)
    try:
        _run_uvicorn(server, sock=sock)
    finally:
        server.close()


def _run_uvicorn(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None
) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        backlog=2048,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock] if sock is not None else None)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
