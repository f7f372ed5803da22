"""Relay of OTLP exports to an upstream trace store (an OpenTelemetry Collector, Tempo, Jaeger, ...).

Every export the service accepted is queued, unchanged (the decompressed body with its content
type), and sent on to `{endpoint}/v1/{signal}` by a few workers, so the service keeps its short
analysis window while long-term storage and scale stay with the engine built for them.

Ingestion never waits for the upstream: `submit` is O(1) and refuses (counts) what does not fit
the queue, which is bounded in requests and bytes (requests being retried included). Retries
follow the OTLP exporter rules: 429, 502, 503, 504 and connection errors are retried with
exponential backoff and jitter (honouring Retry-After), up to `max_attempts` and `max_elapsed`
seconds; any other answer is final. Everything forwarded, retried or dropped is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import aiohttp

log = logging.getLogger(__name__)

RETRYABLE = frozenset({429, 502, 503, 504})
SIGNALS = ("traces", "metrics", "logs")


class Export(NamedTuple):
    """One accepted OTLP export, as received."""

    signal: str
    body: bytes
    content_type: str


@dataclass
class RelayStats:
    """Counters exposed on /metrics."""

    forwarded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIGNALS, 0))
    retries: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {"queue_full": 0, "rejected": 0, "gave_up": 0,
                                                             "shutdown": 0})


@dataclass(frozen=True)
class RelayLimits:
    """Queue bounds and retry policy."""

    max_queue_requests: int = 1_000
    max_queue_bytes: int = 64 * 2**20
    max_attempts: int = 6
    max_elapsed: float = 120.0
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    timeout: float = 10.0
    workers: int = 2


class Relay:
    """Queues accepted exports and forwards them upstream with retries."""

    def __init__(self, endpoint: str, headers: Mapping[str, str] | None = None, limits: RelayLimits | None = None,
                 sleep: Callable[[float], asyncio.Future[None]] | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.headers = dict(headers or {})
        self.limits = limits or RelayLimits()
        self.stats = RelayStats()
        self.queued_bytes = 0  # in the queue or being sent
        self._queue: deque[Export] = deque()
        self._ready = asyncio.Event()
        self._in_flight = 0
        self._sleep = sleep or asyncio.sleep  # type: ignore[assignment]

    @property
    def queued(self) -> int:
        """Exports waiting or being sent."""
        return len(self._queue) + self._in_flight

    def submit(self, export: Export) -> bool:
        """Queue an export for the upstream; False (counted) when the queue is full."""
        size = len(export.body)
        if self.queued >= self.limits.max_queue_requests or self.queued_bytes + size > self.limits.max_queue_bytes:
            self.stats.dropped["queue_full"] += 1
            return False
        self._queue.append(export)
        self.queued_bytes += size
        self._ready.set()
        return True

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Forward until cancelled (a few workers share the queue)."""
        workers = [asyncio.create_task(self._work(session), name=f"relay {index}")
                   for index in range(self.limits.workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            for worker in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            self.stats.dropped["shutdown"] += len(self._queue)  # (in-flight ones were counted by _work)
            self._queue.clear()
            self.queued_bytes = 0

    async def _work(self, session: aiohttp.ClientSession) -> None:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            export = self._queue.popleft()
            self._in_flight += 1
            try:
                await self._forward(session, export)
            except asyncio.CancelledError:
                self.stats.dropped["shutdown"] += 1
                raise
            except Exception:  # noqa: BLE001 (one bad export must not stop the relay)
                log.exception("relay: a %s export failed unexpectedly; dropped", export.signal)
                self.stats.dropped["gave_up"] += 1
            finally:
                self._in_flight -= 1
                self.queued_bytes -= len(export.body)

    async def _forward(self, session: aiohttp.ClientSession, export: Export) -> None:
        url = f"{self.endpoint}/v1/{export.signal}"
        headers = {**self.headers, "Content-Type": export.content_type}
        started = time.monotonic()
        backoff = self.limits.initial_backoff
        for attempt in range(1, self.limits.max_attempts + 1):
            retry_after: float | None = None
            try:
                async with session.post(url, data=export.body, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=self.limits.timeout)) as response:
                    await response.read()
                    if response.status < 300:
                        self.stats.forwarded[export.signal] += 1
                        return
                    if response.status not in RETRYABLE:
                        self.stats.dropped["rejected"] += 1
                        log.warning("relay: %s answered %s to a %s export; dropped", url, response.status,
                                    export.signal)
                        return
                    retry_after = _seconds(response.headers.get("Retry-After"))
                    problem = f"HTTP {response.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                problem = f"{type(error).__name__}: {error}"
            # The upstream's Retry-After is honoured as asked (within max_elapsed); our own backoff is capped.
            delay = retry_after if retry_after is not None else min(random.uniform(backoff / 2, backoff),
                                                                    self.limits.max_backoff)
            if attempt == self.limits.max_attempts or time.monotonic() - started + delay > self.limits.max_elapsed:
                self.stats.dropped["gave_up"] += 1
                log.warning("relay: gave up on a %s export to %s after %d attempts (%s)", export.signal, url,
                            attempt, problem)
                return
            self.stats.retries += 1
            await self._sleep(delay)
            backoff = min(backoff * 2, self.limits.max_backoff)


def _seconds(value: str | None) -> float | None:
    """Retry-After in seconds (the delta form; an HTTP date falls back to the backoff)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
