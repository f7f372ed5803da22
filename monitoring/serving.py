"""Serving the application: aiohttp's runner plus a cut-off for clients that never finish a request.

aiohttp closes idle keep-alive connections (`keepalive_timeout`, the settings' idle_timeout) and
a slow body is bounded by request_timeout (http_bodies.read_body), but a new connection that
trickles its first request's headers is never timed out: enough of them hold every socket. The
guard here closes connections that have not completed a request's headers within idle_timeout.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from aiohttp import web
from aiohttp.web_server import Server

log = logging.getLogger(__name__)


async def cut_slow_starts(server: Server, timeout: float) -> None:
    """Every timeout/4 seconds, close connections open longer than `timeout` without a complete request."""
    first_seen: dict[int, float] = {}  # id(connection) -> when first seen (handlers take no weak references)
    while True:
        now = time.monotonic()
        connections = server.connections
        first_seen = {id(connection): first_seen.get(id(connection), now) for connection in connections}
        for connection in connections:
            seen = first_seen[id(connection)]
            # aiohttp counts a request once its headers are parsed (private; pinned version, tested).
            if connection._request_count == 0 and now - seen >= timeout:  # noqa: SLF001
                log.debug("closing a connection that sent no complete request in %.1f s", timeout)
                connection.force_close()
        await asyncio.sleep(timeout / 4)


async def serve(app: web.Application, host: str, port: int, idle_timeout: float) -> None:
    """Serve `app` until cancelled or a termination signal (then shut down gracefully)."""
    runner = web.AppRunner(app, handle_signals=True, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("listening on http://%s:%d", host, port)
        assert runner.server is not None
        await cut_slow_starts(runner.server, idle_timeout)
    finally:
        await runner.cleanup()


def tune_gc() -> None:
    """Collect garbage for a long-running service: what exists at start-up (modules, settings, the app) is
    never scanned again, and the youngest generation is collected every 20,000 allocations rather than 700.
    Each scrape allocates a few hundred short-lived objects; at the default, collections scanning a heap
    of thousands of agents' windows cost a tenth of the collector's CPU (benchmarks/collector.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def run(app: web.Application, host: str, port: int, idle_timeout: float) -> None:
    """Blocking: serve until SIGINT/SIGTERM."""
    tune_gc()
    try:
        asyncio.run(serve(app, host, port, idle_timeout))
    except (web.GracefulExit, KeyboardInterrupt):
        pass
