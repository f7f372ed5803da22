"""Pausing CPython's cycle collector around allocation-heavy work that makes no cycles.

A trace analysis allocates tens of thousands of short-lived containers. While they live they
are promoted through the collector's generations, and once they outnumber a quarter of the
long-lived objects (the tracer's spans) they trigger a full collection: about 45 ms per
100,000 live objects, paid inside the analysis and, the collector holding the interpreter
lock, by the event loop too. The analysis makes no reference cycles, so reference counting
frees all of it; pausing the cycle collector meanwhile costs nothing. Nested and concurrent
pauses (the worker thread and an inline analysis) are counted.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_resume = False  # whether the collector was enabled when the first pause began


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cycle collector disabled (re-enabled after the last concurrent pause)."""
    global _holders, _resume
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _resume:
                gc.enable()
