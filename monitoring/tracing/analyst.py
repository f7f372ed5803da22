"""Trace analyses for the HTTP API without stalling the event loop.

A trace's analysis is cached by the Tracer until the trace changes. Small traces are analysed
inline; larger ones from a snapshot in one worker thread, so probes and ingestion keep being
served meanwhile (the interpreter hands the lock back to the loop every few milliseconds).
Requests for the same trace and version share one analysis, and at most `max_pending`
analyses wait at once: beyond that the caller is told to retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .analysis import analyze
from .model import Tracer
from .spans import Trace

INLINE_SPANS = 1_000  # about a millisecond of analysis: not worth a thread hop


class AnalystBusy(Exception):
    """Too many analyses are waiting; retry later."""


class Analyst:
    """Answers `analysis(trace)` from the cache, inline, or from the worker thread."""

    def __init__(self, tracer: Tracer, observe: Callable[[float], None] | None = None,
                 inline_spans: int = INLINE_SPANS, max_pending: int = 8) -> None:
        self.tracer = tracer
        self._observe = observe or (lambda seconds: None)
        self._inline_spans = inline_spans
        self._max_pending = max_pending
        self._pending: dict[tuple[str, int], asyncio.Future[dict[str, Any]]] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trace-analysis")

    async def analysis(self, trace: Trace) -> dict[str, Any]:
        cached = self.tracer.cached(trace)
        if cached is not None:
            return cached
        key = (trace.trace_id, trace.version)
        pending = self._pending.get(key)
        if pending is None:
            snapshot = trace.snapshot()
            if len(snapshot.spans) <= self._inline_spans:
                return self.tracer.cache(*key, self._timed(snapshot))
            if len(self._pending) >= self._max_pending:
                raise AnalystBusy(f"{len(self._pending)} trace analyses are already waiting")
            pending = asyncio.get_running_loop().run_in_executor(self._executor, self._timed, snapshot)
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        analysis = await asyncio.shield(pending)  # one caller giving up doesn't cancel it for the others
        return self.tracer.cache(*key, analysis)

    def _timed(self, snapshot: Any) -> dict[str, Any]:
        started = time.perf_counter()
        analysis = analyze(snapshot)
        self._observe(time.perf_counter() - started)
        return analysis

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
